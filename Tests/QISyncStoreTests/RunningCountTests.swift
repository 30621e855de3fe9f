import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// The running counts `status` reads (entries and bytes per log, live and deleted rows per
/// table) are written once per run by the materializer rather than by a trigger per insert;
/// whatever order entries arrive in, they must stay what a count of the rows gives.
@Suite("Running counts")
struct RunningCountTests {
    let harness: TestReplicas
    init() throws { harness = try TestReplicas() }

    static func edit(_ text: String, live: Bool = true) -> RowEdit {
        RowEdit(table: RecordKind.initiative.table.id, key: RecordID.random(owner: "RXH").bytes,
                values: [(0, .integer(live ? 1 : 0)), (4, .text(text))])
    }

    /// Entries per log as the counts hold them, beside the entries the log holds.
    static func logCounts(_ replica: Replica) throws -> (counted: [LogID: Int], held: [LogID: Int]) {
        let counted = Dictionary(uniqueKeysWithValues: try replica.logSizes().map { ($0.log, $0.entries) })
        var held: [LogID: Int] = [:]
        for entry in try replica.entries(after: VersionVector()) { held[LogID(origin: entry.origin, scope: entry.scope), default: 0] += 1 }
        return (counted, held)
    }

    static func expectSound(_ replica: Replica, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try replica.verify()
        #expect(report.differences == [], sourceLocation: sourceLocation)
        #expect(report.isSound, sourceLocation: sourceLocation)
        let (counted, held) = try logCounts(replica)
        #expect(counted == held, sourceLocation: sourceLocation)
        // An offer to a peer that holds nothing takes its bytes from the counts.
        let everything = try replica.entries(after: VersionVector())
        let offer = try replica.offer(for: VersionVector())
        #expect(offer.entries == UInt64(everything.count), sourceLocation: sourceLocation)
        #expect(offer.bytes == everything.reduce(0) { $0 + UInt64($1.body.count) }, sourceLocation: sourceLocation)
    }

    @Test("counts, and offers to a peer that holds nothing, follow local writes, batches of many runs, runs that wait for a gap and are released, a table rebuild and a redaction")
    func batchesAndGaps() throws {
        let hub = try harness.make("hub")
        let ward = try harness.make("ward")
        let named = Self.edit("Dr Siân Llewelyn's ward, 07700 900123")
        _ = try hub.write(scope: .trust, edits: [named])
        for index in 0..<6 {
            _ = try hub.write(scope: index % 2 == 0 ? .trust : .shared, edits: [Self.edit("Ward \(index) £\(index)"), Self.edit("gone \(index)", live: false)])
            _ = try ward.write(scope: .trust, edits: [Self.edit("Ysbyty \(index), 37°C")])
        }
        try Self.expectSound(hub)
        // One batch of two logs' runs, then a batch whose entries miss their predecessor (they
        // wait), then the predecessor, which releases them.
        let entries = try hub.entries(after: VersionVector())
        let trust = entries.filter { $0.scope == .trust }, shared = entries.filter { $0.scope == .shared }
        _ = try ward.apply(Array(trust.prefix(1)) + Array(shared.prefix(1)))
        try Self.expectSound(ward)
        let waiting = try ward.apply(Array(trust.dropFirst(2)))
        #expect(waiting.waiting == trust.count - 2)
        try Self.expectSound(ward)
        let released = try ward.apply([trust[1]] + Array(shared.dropFirst()))
        #expect(released.released == trust.count - 2)
        try Self.expectSound(ward)
        #expect(try Self.logCounts(ward).counted[LogID(origin: hub.identity.origin, scope: .trust)] == trust.count)
        // Applying the same entries again changes no count.
        _ = try ward.apply(entries)
        try Self.expectSound(ward)
        try ward.rebuildTables()
        try Self.expectSound(ward)
        // A redaction replaces a body (bytes counted by a trigger), here and where it spreads.
        let redactions = try hub.redact(table: named.table, key: named.key, columns: [4], reason: "a name and a phone number")
        #expect(redactions.count == 1)
        try Self.expectSound(hub)
        _ = try ward.importDirectory(redactions.map(\.record))
        try Self.expectSound(ward)
    }

    @Test("a replica made while inserts were counted by triggers loses them when opened, and counts each insert once")
    func olderReplica() throws {
        let hub = try harness.make("hub")
        _ = try hub.write(scope: .trust, edits: [Self.edit("before")])
        // What an earlier version created: a trigger per insert into the log and each table.
        let queue = try DatabaseQueue(path: hub.databasePath)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TRIGGER log_size_insert AFTER INSERT ON log BEGIN
                    INSERT INTO log_size VALUES (NEW.origin, NEW.scope, 1, length(NEW.body))
                    ON CONFLICT (origin, scope) DO UPDATE SET entries = entries + 1, bytes = bytes + length(NEW.body);
                END;
                CREATE TRIGGER initiative_count_insert AFTER INSERT ON initiative BEGIN
                    INSERT INTO row_count VALUES ('initiative', coalesce(NEW.live = 1, 0), coalesce(NEW.live = 0, 0))
                    ON CONFLICT (tbl) DO UPDATE SET live = live + coalesce(NEW.live = 1, 0), deleted = deleted + coalesce(NEW.live = 0, 0);
                END;
                """)
        }
        let reopened = try Replica.open(home: hub.home, schema: QISchema.schema)
        let left = try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN ('log_size_insert', 'initiative_count_insert')")
        }
        #expect(left == [])
        _ = try reopened.write(scope: .trust, edits: [Self.edit("after, Llanelli"), Self.edit("after, deleted", live: false)])
        try Self.expectSound(reopened)
    }
}
