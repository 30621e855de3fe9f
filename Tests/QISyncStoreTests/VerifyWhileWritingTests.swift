import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// `verify` reads the logs on one connection and the tables' digests on a twin of its snapshot
/// (``SnapshotTwin``), while other connections — a serving shell, a sync — keep writing.
@Suite("Verify while writing")
struct VerifyWhileWritingTests {
    @Test("verify, run while another connection writes an entry every moment, sees one snapshot: sound, and never needing its scratch rebuild")
    func verifyWhileWriting() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub")
        let table = RecordKind.initiative.table.id
        @Sendable func edit(_ index: Int) -> RowEdit {
            let key = withUnsafeBytes(of: UInt64(index).bigEndian) { Array($0) } + [0, 0, 0, 0] + RecordID.ownerTag(ofTrust: "RXH")
            return RowEdit(table: table, key: key, values: [(0, .integer(1)), (4, .text("Falls £\(index) — Ysbyty Gwynedd"))])
        }
        try hub.writeWindow {
            for index in 0..<400 { try hub.write(scope: .trust, edits: [edit(index)]) }
        }
        // Another connection to the same replica (as another process would be) writing
        // one entry at a time, as fast as it can, until told to stop (or 4,000 entries).
        let writer = try Replica.open(home: hub.home, schema: QISchema.schema)
        let stop = Locked(false), written = Locked(0)
        let writing = BackgroundWork {
            var index = 400
            while !stop.read(), index < 4_400 {
                try writer.write(scope: .trust, edits: [edit(index)])
                written.change { $0 += 1 }
                index += 1
            }
        }
        var reports: [VerifyReport] = []
        var writtenDuring = 0
        for _ in 0..<6 {
            let before = written.read()
            reports.append(try hub.verify())
            writtenDuring += written.read() - before
        }
        stop.change { $0 = true }
        try writing.value()
        #expect(writtenDuring > 6, "entries were written while verify ran")
        for report in reports {
            #expect(report.isSound, "\(report.logProblems) \(report.differences) \(report.integrity)")
            // Had the tables' digests been read in a later snapshot than the logs, they would
            // differ from the fold's, and the scratch rebuild would have had to answer.
            #expect(!report.rebuiltInScratch)
        }
        let last = try hub.verify()
        #expect(last.isSound && !last.rebuiltInScratch && last.entries > 400 + writtenDuring)
    }
}

/// A value one thread changes and another reads.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func read() -> Value { lock.withLock { value } }
    func change(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}
