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
    }
}
