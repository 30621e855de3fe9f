import Foundation
import Testing

/// The short version of the fault suite (tools/chaos): real qisync processes killed during
/// syncs, imports, scripts and a background serve; a faulty network; a full disk and a
/// read-only replica; many writers at once; clocks off; a soak; hostile shell input. The long
/// version is `bash tools/chaos/run.sh`.
@Suite("Faults injected into real processes (short)")
struct ChaosTests {
    @Test("every trial of the short fault suite holds", .timeLimit(.minutes(15)))
    func short() async throws {
        let chaos = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync-chaos")
        let process = Process()
        process.executableURL = chaos
        process.arguments = ["--short", "--seed", "\(UInt64(Date().timeIntervalSince1970) % 1000)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = await onOwnThread {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return output
        }
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("total") && output.contains("kill -9 during a sync"), "\(output)")
    }
}
