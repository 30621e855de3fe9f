import Foundation
import Testing

/// The small size of the NHS simulation (tools/sim): trusts of a hub and wards, some wards by
/// bundle only, syncing on demand through the real session state machines until every replica
/// holds every shared change. The full size is `qisync-sim --trusts 220 --wards 10`.
@Suite("The NHS by simulation (small)")
struct SimulationTests {
    @Test("four trusts of a hub and two wards converge to the same shared state", .timeLimit(.minutes(5)))
    func small() async throws {
        let seed = UInt64(Date().timeIntervalSince1970) % 1000
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-sim-\(UUID().uuidString)").path
        let (status, output) = try await runTool("qisync-sim", ["--trusts", "4", "--wards", "2", "--seed", "\(seed)", "--dir", folder])
        #expect(status == 0, "seed \(seed): \(output)")
        #expect(output.contains("converged to identical shared state: yes"), "seed \(seed): \(output)")
        #expect(output.contains("12 replicas"), "\(output)")
        // The bytes by kind (each message, bundle files, receipts) add up to the bytes moved,
        // quiet syncs after convergence aside (they are counted by kind, not in the rounds).
        let lines = output.split(separator: "\n")
        let moved = lines.first { $0.contains("bytes moved:") }.flatMap { line in
            line.split(separator: "bytes moved: ").last?.split(separator: " ").first.flatMap { UInt64($0) }
        }
        let quiet = lines.first { $0.contains("a sync with nothing to move") }.map { line in
            line.split(separator: " ").compactMap { UInt64($0) }.reduce(0, +)
        }
        let kinds = lines.first { $0.contains("bytes by kind:") }.map { line in
            line.split(separator: ":", maxSplits: 1)[1].split(separator: ",").compactMap { $0.split(separator: " ").last.flatMap { UInt64($0) } }
        } ?? []
        #expect(kinds.count >= 6, "\(output)")
        #expect(moved != nil && quiet != nil && kinds.reduce(0, +) == moved! + quiet!, "\(output)")
    }
}
