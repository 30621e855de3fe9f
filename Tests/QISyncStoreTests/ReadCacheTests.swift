import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore
import Testing

/// The version vector and the directory records are kept between reads (a national sync reads
/// them many times); what is kept must always be what the file holds.
@Suite("Kept vectors and directories")
struct ReadCacheTests {
    let harness: TestReplicas
    init() throws { harness = try TestReplicas() }

    static func edit(_ text: String) -> RowEdit {
        RowEdit(table: RecordKind.initiative.table.id, key: RecordID.random(owner: "RXH").bytes, values: [(4, .text(text))])
    }

    /// The vector as a fresh connection reads it: nothing kept.
    static func fresh(_ replica: Replica) throws -> VersionVector {
        try Replica.open(home: replica.home, schema: QISchema.schema).versionVector()
    }

    @Test("a vector kept by one connection follows writes made through another (as another process would make them)")
    func otherConnection() throws {
        let hub = try harness.make("hub")
        let other = try Replica.open(home: hub.home, schema: QISchema.schema)
        try hub.write(scope: .trust, edits: [Self.edit("Ward 7b £5")])
        let first = try hub.versionVector()
        #expect(try hub.versionVector() == first)
        for round in 0..<5 {
            try other.write(scope: round % 2 == 0 ? .shared : .trust, edits: [Self.edit("Ysbyty Gwynedd, round \(round)")])
            let seen = try hub.versionVector()
            #expect(seen == (try other.versionVector()))
            #expect(seen == (try Self.fresh(hub)))
            let own = LogID(origin: hub.identity.origin, scope: .trust)
            #expect(seen.positions[own]!.seq >= first.positions[own]!.seq)
        }
        #expect(try hub.versionVector() != first)
        // What a peer holds is written without touching the log: the kept vector stays right.
        try hub.rememberPeerVector(site: other.identity.origin, vector: try hub.versionVector(), source: "sync")
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
        try other.write(scope: .trust, edits: [Self.edit("after the peer's vector")])
        try hub.rememberPeerVector(site: other.identity.origin, vector: VersionVector(), source: "receipt")
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
        // And the other way round, through this connection's own writes.
        _ = try other.versionVector()
        try hub.write(scope: .trust, edits: [Self.edit("Café at 37°C")])
        #expect(try other.versionVector() == (try Self.fresh(hub)))
    }

    @Test("a vector read inside a window, a failed write or a preview is not kept past what was rolled back")
    func rolledBack() throws {
        let hub = try harness.make("hub")
        let ward = try harness.make("ward")
        try ward.write(scope: .shared, edits: [Self.edit("from the ward")])
        try hub.write(scope: .trust, edits: [Self.edit("first")])
        let before = try hub.versionVector()
        // A preview applies the ward's entries and rolls them back.
        _ = try hub.preview(try ward.entries(after: VersionVector()))
        #expect(try hub.versionVector() == before)
        #expect(try Self.fresh(hub) == before)
        // A write refused part-way leaves the vector where it was.
        #expect(throws: (any Error).self) { try hub.write(scope: .trust, edits: [Self.edit(String(repeating: "x", count: 300))]) }
        #expect(try hub.versionVector() == before)
        // Inside a window: each read sees the window's writes so far; after it, the committed ones.
        var inside: [VersionVector] = []
        try hub.writeWindow {
            try hub.write(scope: .trust, edits: [Self.edit("one")])
            inside.append(try hub.versionVector())
            try hub.write(scope: .trust, edits: [Self.edit("two")])
            inside.append(try hub.versionVector())
        }
        let own = LogID(origin: hub.identity.origin, scope: .trust)
        #expect(inside.map { $0.positions[own]!.seq } == [before.positions[own]!.seq + 1, before.positions[own]!.seq + 2])
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
        #expect(try hub.versionVector().positions[own]!.seq == before.positions[own]!.seq + 2)
        // Applied for real, the ward's entries move it.
        _ = try hub.apply(try ward.entries(after: VersionVector()))
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
        #expect(try hub.versionVector().positions[LogID(origin: ward.identity.origin, scope: .shared)] != nil)
    }

    @Test("directory records taken in kind by kind are kept in the order and with the digest a fresh read gives")
    func directoryKept() throws {
        // A hub enrols wards and pins other trusts for the whole trust: records of two kinds.
        let key = TrustKey()
        func make(_ name: String, _ membership: TrustMembership) throws -> Replica {
            try Replica.create(home: harness.root.appendingPathComponent(name), trustCode: "RXH", trustName: "Trust RXH", siteName: name,
                               kind: name == "hub" ? .hub : .ward, schema: QISchema.schema, membership: membership)
        }
        let hub = try make("hub", .founding(key))
        for index in 0..<6 { _ = try hub.enrol(try make("ward-\(index)", .joining(key.fingerprint)).enrolmentRequest()) }
        for code in ["RYJ", "RAL", "R1H"] { try hub.pinTrust(code: code, fingerprint: TrustKey().fingerprint) }
        let follower = try make("follower", .joining(key.fingerprint))
        try follower.acceptEnrolment(try hub.enrol(follower.enrolmentRequest()).0)
        let records = try hub.directoryRecords()
        #expect(Set(records.map(\.kind)).count >= 2)
        // Taken in, in pieces and shuffled, then all again: each time, kept and fresh agree.
        var generator = SplitMix64(seed: 7)
        let pieces = stride(from: 0, to: records.count, by: 3).map { Array(records[$0..<min($0 + 3, records.count)]) }
        for piece in pieces.shuffled(using: &generator) + [records] {
            _ = try follower.importDirectory(piece.shuffled(using: &generator))
            let reopened = try Replica.open(home: follower.home, schema: QISchema.schema)
            #expect(try follower.directoryRecords() == (try reopened.directoryRecords()))
            #expect(try follower.directoryDigest() == (try reopened.directoryDigest()))
            #expect(try follower.directory().enrolments.keys.sorted() == (try reopened.directory().enrolments.keys.sorted()))
            #expect(try follower.directory().pins == (try reopened.directory().pins))
        }
        #expect(try follower.directoryDigest() == (try hub.directoryDigest()))
        #expect(try follower.directory().enrolments.count == 8)
        #expect(try follower.directory().pins.count == 4)
    }

    @Test("sessions receiving batches share the larger cache and rarer checkpoints; the last to end restores SQLite's defaults")
    func receivingSettings() throws {
        let hub = try harness.make("hub")
        func settings() throws -> [Int] {
            try hub.read { db in [try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0, try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 0] }
        }
        #expect(try settings() == [-2000, 1000])
        try hub.beginReceivingBatches()
        try hub.beginReceivingBatches()
        #expect(try settings() == [-65536, 10000])
        hub.endReceivingBatches()
        #expect(try settings() == [-65536, 10000], "one session still receives")
        // Writes and reads go on as ever meanwhile.
        try hub.write(scope: .trust, edits: [Self.edit("Llandudno £3 at 37°C")])
        hub.endReceivingBatches()
        #expect(try settings() == [-2000, 1000])
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
    }

    @Test("while batches are received, what is committed is copied into the database file in the background; otherwise it waits for SQLite's own checkpoint")
    func backgroundCheckpoint() throws {
        let hub = try harness.make("hub")
        // The write-ahead log's index (SQLite's file format, "WAL-index format"): the frames in
        // the log (mxFrame, byte 16 of the header) and those copied back into the database
        // file (nBackfill, byte 96), in the machine's byte order.
        func log() throws -> (frames: UInt32, copied: UInt32) {
            let index = try Data(contentsOf: URL(fileURLWithPath: hub.databasePath + "-shm"))
            func word(_ at: Int) -> UInt32 { index.subdata(in: at..<at + 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
            return (word(16), word(96))
        }
        try hub.write(scope: .trust, edits: [Self.edit("Ysbyty Gwynedd: £12 a day")])
        let idle = try log()
        #expect(idle.copied < idle.frames, "a few pages wait in the log for SQLite's checkpoint at 1,000")
        try hub.beginReceivingBatches()
        for text in ["Cwm Taf 38°C", "Llandudno £3", "Ward 7b"] { try hub.write(scope: .trust, edits: [Self.edit(text)]) }
        var receiving = try log()
        for _ in 0..<100 where receiving.copied < receiving.frames {
            Thread.sleep(forTimeInterval: 0.05)
            receiving = try log()
        }
        #expect(receiving.frames > 0 && receiving.copied == receiving.frames, "copied within 5 s, with no checkpoint asked for here")
        hub.endReceivingBatches()
        try hub.write(scope: .trust, edits: [Self.edit("Betsi Cadwaladr")])
        // Nothing should happen now: three of the checkpointer's intervals give one that was
        // left running the time to show itself.
        Thread.sleep(forTimeInterval: 3 * 0.1)
        let after = try log()
        #expect(after.copied < after.frames, "the background checkpoints stop with the last session")
        #expect(try hub.versionVector() == (try Self.fresh(hub)))
    }
}
