import ArgumentParser
@preconcurrency import Foundation

/// `qisync-chaos`: faults injected into real `qisync` processes on loopback — kill -9 during
/// syncs, imports, scripts and a background serve; cut, corrupted, delayed and duplicated bytes;
/// a full disk and a read-only replica; many writers at once; clocks hours off; a soak of random
/// syncs; hostile input to the shell — each trial bounded in time and reproducible by seed.
/// After every trial every replica must pass `verify`, nothing acknowledged may be lost, and a
/// clean sync must bring the replicas together. Prints a table: trials, faults, failures, time.
@main
struct ChaosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qisync-chaos",
        abstract: "Inject faults into real qisync processes and check that nothing is lost or corrupted.")

    @Option(help: "Trials of each kill and network kind (the others run fewer).") var trials = 100
    @Option(help: "The first seed; trial i of a kind uses seed + i.") var seed: UInt64 = 1
    @Option(help: "Only these kinds (comma-separated names: killSync, killImport, killScript, killServe, network, diskFull, writers, clocks, soak, hostileShell).")
    var only: String?
    @Flag(help: "The short version, as the test suite runs it: a few trials of each kind, smaller data.") var short = false
    @Option(help: "The qisync executable (default: the one built beside this).") var qisync: String?
    @Flag(help: "Print each trial's notes (what the fault did).") var verbose = false

    mutating func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        if short { setenv("QISYNC_CHAOS_SHORT", "1", 1) }
        let binary = qisync ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("no qisync at \(binary); build it first") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-chaos-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let q = Qisync(binary: binary, root: root)
        print("making the replicas the trials start from…")
        let templates = try Templates(q, hubWrites: short ? 150 : 600, wardWrites: short ? 500 : 1500)
        let runner = Trials(q: q, templates: templates)
        let chosen = only.map { names in Set(names.split(separator: ",").map { String($0) }) }
        let kinds = TrialKind.allCases.filter { chosen?.contains("\($0)") ?? true }
        var rows: [(kind: TrialKind, trials: Int, faults: Int, failures: Int, seconds: Double)] = []
        var allFailures: [String] = []
        for kind in kinds {
            let count = short ? Self.shortCount(kind) : Self.count(kind, trials)
            let started = Date()
            var faults = 0, failures = 0
            for index in 0..<count {
                let trialSeed = seed &+ UInt64(index)
                let result = runner.run(kind, seed: trialSeed)
                faults += result.faults
                failures += result.failures.count
                for failure in result.failures { allFailures.append("\(kind) seed \(trialSeed): \(failure)") }
                if verbose { for note in result.notes { print("  \(kind) seed \(trialSeed): \(note)") } }
                if !result.failures.isEmpty { print("FAILED \(kind) seed \(trialSeed):\n  " + result.failures.joined(separator: "\n  ")) }
            }
            rows.append((kind, count, faults, failures, Date().timeIntervalSince(started)))
            print("\(kind.rawValue): \(count) \(count == 1 ? "trial" : "trials"), \(faults) \(faults == 1 ? "fault" : "faults"), \(failures) \(failures == 1 ? "failure" : "failures"), \(String(format: "%.0f", Date().timeIntervalSince(started))) s")
        }
        let width = rows.map { $0.kind.rawValue.count }.max() ?? 10
        print("")
        print("trial".padding(toLength: width, withPad: " ", startingAt: 0) + "  trials  faults  failures  time")
        for row in rows {
            print(row.kind.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: "  %6d  %6d  %8d  %4.0f s", row.trials, row.faults, row.failures, row.seconds))
        }
        let total = rows.reduce((0, 0, 0, 0.0)) { ($0.0 + $1.trials, $0.1 + $1.faults, $0.2 + $1.failures, $0.3 + $1.seconds) }
        print("total".padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  %6d  %6d  %8d  %4.0f s", total.0, total.1, total.2, total.3))
        if !allFailures.isEmpty { throw ExitCode.failure }
    }

    /// Trials per kind in the long run: the kill and network kinds `trials` times, the slow ones fewer.
    static func count(_ kind: TrialKind, _ trials: Int) -> Int {
        switch kind {
        case .killSync, .killImport, .killScript, .killServe, .network: trials
        case .diskFull, .writers, .clocks: max(1, trials / 10)
        case .soak, .hostileShell: max(1, trials / 50)
        }
    }

    static func shortCount(_ kind: TrialKind) -> Int {
        switch kind {
        case .killSync, .killImport, .killScript, .network: 3
        default: 1
        }
    }
}
