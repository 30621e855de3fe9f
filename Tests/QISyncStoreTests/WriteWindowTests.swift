import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// Write windows: one transaction around many writes (a script's), each write still atomic.
@Suite("Write windows")
struct WriteWindowTests {
    let harness: TestReplicas
    init() throws { harness = try TestReplicas() }

    static func title(_ replica: Replica, _ text: String) -> RowEdit {
        RowEdit(table: RecordKind.initiative.table.id, key: RecordID.random(owner: "RXH").bytes, values: [(4, .text(text))])
    }

    static func titles(_ replica: Replica) throws -> [String] {
        try replica.read { db in try String.fetchAll(db, sql: "SELECT title FROM initiative ORDER BY title") }
    }

    /// What another process sees: its own connection to the file.
    func titlesFromOutside(_ replica: Replica) throws -> [String] {
        let queue = try DatabaseQueue(path: replica.databasePath)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchAll(db, sql: "SELECT title FROM initiative ORDER BY title") }
    }

    @Test("a window's writes are seen inside it at once, by others only once it commits; a failed write inside leaves nothing and the rest stand")
    func window() throws {
        let replica = try harness.make("hub")
        let before = try replica.versionVector()
        try replica.writeWindow {
            try replica.write(scope: .trust, edits: [Self.title(replica, "Café £5 at 37°C")])
            #expect(try Self.titles(replica) == ["Café £5 at 37°C"])
            #expect(try titlesFromOutside(replica).isEmpty)
            // A title over its limit is refused: only that write is undone.
            let refused = Self.title(replica, String(repeating: "x", count: 300))
            #expect(throws: (any Error).self) { try replica.write(scope: .trust, edits: [refused]) }
            try replica.write(scope: .trust, edits: [Self.title(replica, "Ysbyty Gwynedd")])
        }
        #expect(try titlesFromOutside(replica) == ["Café £5 at 37°C", "Ysbyty Gwynedd"])
        let after = try replica.versionVector()
        let own = LogID(origin: replica.identity.origin, scope: .trust)
        #expect((after.positions[own]?.seq ?? 0) == (before.positions[own]?.seq ?? 0) + 2)
        #expect(try replica.verify().isSound)
    }

    @Test("a window signs only the last entry of each log it wrote; its chain verifies here and at a peer")
    func oneSignaturePerLog() throws {
        let hub = try harness.make("hub")
        let single = try hub.write(scope: .trust, edits: [Self.title(hub, "on its own")])
        #expect(single.signature != nil, "a write outside a window is signed at once")
        try hub.writeWindow {
            for title in ["Ward 7 £2", "Ysbyty Gwynedd", "37°C"] { try hub.write(scope: .trust, edits: [Self.title(hub, title)]) }
            try hub.write(scope: .shared, edits: [Self.title(hub, "shared one")])
            // A write refused inside the window leaves the last good entry to be signed.
            #expect(throws: (any Error).self) { try hub.write(scope: .trust, edits: [Self.title(hub, String(repeating: "x", count: 300))]) }
        }
        let entries = try hub.entries(after: VersionVector())
        let trust = entries.filter { $0.scope == .trust }, shared = entries.filter { $0.scope == .shared }
        #expect(trust.map { $0.signature != nil } == [true, false, false, true])
        #expect(shared.last?.signature != nil)
        #expect(trust.last!.hasValidSignature && shared.last!.hasValidSignature)
        #expect(try hub.verify(allSignatures: true).isSound)
        let ward = try harness.make("ward")
        let report = try ward.apply(entries)
        #expect(report.refused == 0)
        #expect(try Self.titles(ward) == (try Self.titles(hub)))
        #expect(try ward.verify(allSignatures: true).isSound)
    }

    @Test("a window that throws keeps what it wrote before the error")
    func throwing() throws {
        let replica = try harness.make("hub")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try replica.writeWindow {
                try replica.write(scope: .trust, edits: [Self.title(replica, "kept")])
                throw Stop()
            }
        }
        #expect(try titlesFromOutside(replica) == ["kept"])
    }

    @Test("another thread's read waits for the window and never sees what it has not committed")
    func otherThreads() async throws {
        let replica = try harness.make("hub")
        let seen = await withCheckedContinuation { (continuation: CheckedContinuation<[String], Never>) in
            let entered = DispatchSemaphore(value: 0)
            let thread = Thread {
                try? replica.writeWindow {
                    try replica.write(scope: .trust, edits: [Self.title(replica, "first")])
                    entered.signal()
                    usleep(300_000)
                    try replica.write(scope: .trust, edits: [Self.title(replica, "second")])
                }
            }
            thread.start()
            Thread {
                entered.wait()
                continuation.resume(returning: (try? Self.titles(replica)) ?? ["read failed"])
            }.start()
        }
        #expect(seen == ["first", "second"])
    }
}
