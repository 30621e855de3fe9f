import Foundation
import Testing

/// The small size of the NHS simulation (tools/sim): trusts of a hub and wards, some wards by
/// bundle only, syncing on demand through the real session state machines until every replica
/// holds every shared change. The full size is `qisync-sim --trusts 220 --wards 10`.
@Suite("The NHS by simulation (small)")
struct SimulationTests {
    @Test("four trusts of a hub and two wards converge to the same shared state", .timeLimit(.minutes(5)))
    func small() async throws {
        let sim = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync-sim")
        let process = Process()
        process.executableURL = sim
        let seed = UInt64(Date().timeIntervalSince1970) % 1000
        process.arguments = ["--trusts", "4", "--wards", "2", "--seed", "\(seed)",
                             "--dir", FileManager.default.temporaryDirectory.appendingPathComponent("qisync-sim-\(UUID().uuidString)").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = await onOwnThread {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return output
        }
        #expect(process.terminationStatus == 0, "seed \(seed): \(output)")
        #expect(output.contains("converged to identical shared state: yes"), "seed \(seed): \(output)")
        #expect(output.contains("12 replicas"), "\(output)")
    }
}
