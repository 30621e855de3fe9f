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
        let (status, output) = try await runTool("qisync-chaos", ["--short", "--seed", "\(UInt64(Date().timeIntervalSince1970) % 1000)"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("total") && output.contains("kill -9 during a sync"), "\(output)")
    }
}
