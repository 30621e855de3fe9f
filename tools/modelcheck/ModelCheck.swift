import ArgumentParser
@preconcurrency import Foundation
import QISyncModelCheck

/// `qisync-modelcheck`: runs many random histories on fresh worlds of trusts and checks each
/// against the reference model (see Sources/QISyncModelCheck). A failing history is shrunk to
/// a short one and printed with its seed and operation codes, to keep as a regression test.
@main
struct ModelCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qisync-modelcheck",
        abstract: "Run random multi-trust histories and check every replica against the reference model.")

    @Option(help: "How many histories.") var histories = 1000
    @Option(help: "The first seed; history i uses seed + i.") var seed: UInt64 = 1
    @Option(help: "Operations per history: lowest and highest, as LOW-HIGH.") var length = "20-80"
    @Option(help: "Trusts per world.") var trusts = 2
    @Option(help: "Wards per trust at the start.") var wards = 2
    @Flag(help: "Print each history's line.") var verbose = false
    @Flag(help: "Print every operation of every history (with --histories 1 to read one).") var trace = false

    mutating func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let bounds = length.split(separator: "-").compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] >= 1, bounds[0] <= bounds[1] else { throw ValidationError("--length is LOW-HIGH, e.g. 20-80") }
        let shape = Checker.Shape(trusts: trusts, wards: wards)
        let started = Date()
        var operations = 0
        var failures: [Finding] = []
        for index in 0..<histories {
            let seed = self.seed &+ UInt64(index)
            let history = History.random(seed: seed, length: bounds[0] + Int(seed % UInt64(bounds[1] - bounds[0] + 1)))
            let finding = Checker.check(history, shape: shape, seed: seed, keepLog: trace)
            if trace { print(finding.log.joined(separator: "\n")) }
            operations += finding.operations
            if verbose { print("seed \(seed): \(finding.operations) operations, \(finding.problems.count) problems") }
            if !finding.problems.isEmpty {
                let small = Shrinker.shrink(history, shape: shape, seed: seed)
                print("FAILED seed \(seed):\n\(finding)\nshrunk to \(small.codes.count) operations: \(small)")
                print(Checker.check(small, shape: shape, seed: seed).log.joined(separator: "\n"))
                failures.append(finding)
            }
            if (index + 1) % 100 == 0 {
                print("\(index + 1) histories, \(operations) operations, \(failures.count) divergent, \(Int(Date().timeIntervalSince(started))) s")
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print("histories  \(histories)\noperations \(operations)\ndivergent  \(failures.count)\ntime       \(String(format: "%.0f", seconds)) s (\(String(format: "%.1f", Double(histories) / seconds)) histories/s)")
        if !failures.isEmpty { throw ExitCode.failure }
    }
}
