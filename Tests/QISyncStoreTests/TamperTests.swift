import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// Altered, forged, reordered or missing entries are refused and leave the replica as it was.
@Suite("Tampered entries")
struct TamperTests {
    let table = RecordKind.initiative.table.id
    /// Kept for the whole test: its folder holds the replicas.
    let harness: TestReplicas

    init() throws { harness = try TestReplicas() }

    /// A source replica with a trust log of five entries, and an empty receiver.
    func setUp() throws -> (TestReplicas, Replica, Replica, [LogEntry]) {
        let source = try harness.make("source"), receiver = try harness.make("receiver")
        let key = [UInt8](repeating: 1, count: 12) + RecordID.ownerTag(ofTrust: "RXH")
        try source.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(1)), (4, .text("v0"))])])
        for i in 1...4 {
            try source.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(4, .text("v\(i)"))])])
        }
        let entries = try source.entries(after: VersionVector()).filter { $0.scope == .trust }
        return (harness, source, receiver, entries)
    }

    func rebuilt(_ entry: LogEntry, seq: UInt64? = nil, previousHash: [UInt8]? = nil, body: [UInt8]? = nil, signature: [UInt8]? = nil) -> LogEntry {
        LogEntry(origin: entry.origin, scope: entry.scope, seq: seq ?? entry.seq, previousHash: previousHash ?? entry.previousHash,
                 hlc: entry.hlc, body: body ?? entry.body, signature: signature ?? entry.signature)
    }

    func expectRefusedAndUnchanged(_ receiver: Replica, _ entries: [LogEntry]) throws {
        let state = try receiver.canonicalState()
        let vector = try receiver.versionVector()
        #expect(throws: LogRejection.self) { try receiver.apply(entries) }
        #expect(try receiver.canonicalState() == state)
        #expect(try receiver.versionVector() == vector)
        #expect(try receiver.waitingEntryCount() == 0)
    }

    @Test("a changed byte in any entry of a run is refused", arguments: 0..<5)
    func changedByte(index: Int) throws {
        let (_, _, receiver, entries) = try setUp()
        var body = entries[index].body
        body[body.count - 2] ^= 0x01
        var altered = entries
        altered[index] = rebuilt(entries[index], body: body)
        try expectRefusedAndUnchanged(receiver, altered)
    }

    @Test("an entry signed with another key is refused")
    func wrongKey() throws {
        let (_, _, receiver, entries) = try setUp()
        let forger = SiteSigner()
        var forged = entries
        forged[4] = rebuilt(entries[4], signature: forger.sign(entries[4].hash))
        try expectRefusedAndUnchanged(receiver, forged)
    }

    @Test("reordered entries are refused")
    func reordered() throws {
        let (_, _, receiver, entries) = try setUp()
        var swapped = entries
        swapped[1] = rebuilt(entries[2], seq: 2)
        swapped[2] = rebuilt(entries[1], seq: 3)
        try expectRefusedAndUnchanged(receiver, swapped)
    }

    @Test("a dropped middle entry, the rest renumbered, is refused")
    func missingEntry() throws {
        let (_, _, receiver, entries) = try setUp()
        let shortened = [entries[0], entries[1], rebuilt(entries[3], seq: 3), rebuilt(entries[4], seq: 4)]
        try expectRefusedAndUnchanged(receiver, shortened)
    }

    @Test("an entry that contradicts one already held is refused (a forked log)")
    func fork() throws {
        let (_, source, receiver, entries) = try setUp()
        try receiver.apply(entries)
        let forger = try SiteSigner(rawRepresentation: Array(FileManager.default.contents(atPath: source.home.appendingPathComponent(Replica.keyName).path)!))
        let change = Change(rows: [RowWrite(table: table, key: [UInt8](repeating: 1, count: 12) + RecordID.ownerTag(ofTrust: "RXH"), cells: [CellWrite(column: 4, value: .text("fork"))])])
        let fork = LogEntry(signer: forger, scope: .trust, seq: 3, previousHash: entries[1].hash, hlc: entries[2].hlc, change: change)
        try expectRefusedAndUnchanged(receiver, [fork])
    }

    @Test("a malformed change body is refused even when correctly signed")
    func malformedBody() throws {
        let (_, source, receiver, _) = try setUp()
        let signer = try SiteSigner(rawRepresentation: Array(FileManager.default.contents(atPath: source.home.appendingPathComponent(Replica.keyName).path)!))
        let bad = Change(rows: [RowWrite(table: 999, key: [1], cells: [])])
        let entry = LogEntry(signer: signer, scope: .shared, seq: 2, previousHash: try source.versionVector().positions[LogID(origin: signer.origin, scope: .shared)]!.hash,
                             hlc: HLC(rawValue: 1), change: bad)
        let shared = try source.entries(after: VersionVector()).filter { $0.scope == .shared }
        try expectRefusedAndUnchanged(receiver, shared + [entry])
    }

    @Test("entries inside a run may come without their own signature; a run may not end without one")
    func impliedSignatures() throws {
        let (_, _, receiver, entries) = try setUp()
        // The last entry's signature covers the four before it through the chain.
        let stripped = entries.dropLast().map { $0.withoutSignature() } + [entries.last!]
        try expectRefusedAndUnchanged(receiver, Array(stripped.dropLast()))
        try receiver.apply(stripped)
        #expect(try receiver.versionVector().seq(of: LogID(origin: entries[0].origin, scope: .trust)) == 5)
        #expect(try receiver.verify().isSound)
        // Handed on, the entries still end each run with a signature.
        let relayed = try receiver.entries(after: VersionVector()).filter { $0.scope == .trust }
        #expect(relayed.last?.signature != nil && relayed.first?.signature == nil)
        let third = try harness.make("third")
        try third.apply(relayed)
        #expect(try third.verify().isSound)
    }

    @Test("a batch for a peer ends each log's part with a signed entry, past the limit if need be")
    func batchesEndSigned() throws {
        let (_, _, receiver, entries) = try setUp()
        try receiver.apply(entries.dropLast().map { $0.withoutSignature() } + [entries.last!])
        let batch = try receiver.entries(after: VersionVector(), scopes: [.trust], maxEntries: 2, maxBytes: .max)
        #expect(batch.count == 5 && batch.last?.signature != nil)
    }

    @Test("verify notices a materialised table changed behind the engine's back")
    func verifyFindsTampering() throws {
        let (_, source, _, _) = try setUp()
        let clean = try source.verify()
        #expect(clean.isSound && !clean.rebuiltInScratch)
        let queue = try DatabaseQueue(path: source.databasePath)
        try queue.write { db in try db.execute(sql: "UPDATE initiative SET title = 'forged'") }
        let report = try source.verify()
        // The folded rebuild finds the tables differ; the scratch rebuild names the rows.
        #expect(!report.isSound && report.rebuiltInScratch)
        #expect(report.differences.contains { $0.hasPrefix("initiative") })
    }

    @Test("verify reports SQLite's integrity check finding an index that disagrees with its table, and running counts that disagree with the rows")
    func verifyFindsDamagedFile() throws {
        let (_, source, _, _) = try setUp()
        #expect(try source.verify().integrity == "ok")
        // Redefine the creation-date index over another column behind SQLite's back: its
        // entries no longer match the rows, as after a torn write of an index page.
        let queue = try DatabaseQueue(path: source.databasePath)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(sql: "UPDATE sqlite_schema SET sql = 'CREATE INDEX initiative_by_created_ms ON initiative(title)' WHERE name = 'initiative_by_created_ms'")
            try db.execute(sql: "PRAGMA writable_schema = OFF")
        }
        try queue.close()
        let damaged = try source.verify()
        #expect(!damaged.isSound)
        #expect(damaged.integrity != "ok" && damaged.integrity.contains("initiative_by_created_ms"), "\(damaged.integrity)")
        // The counts are checked on the same connection as the integrity: a count set wrong is named.
        let repaired = try DatabaseQueue(path: source.databasePath)
        try repaired.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(sql: "UPDATE sqlite_schema SET sql = 'CREATE INDEX initiative_by_created_ms ON initiative(created_ms)' WHERE name = 'initiative_by_created_ms'")
            try db.execute(sql: "PRAGMA writable_schema = OFF")
            try db.execute(sql: "UPDATE row_count SET live = live + 5 WHERE tbl = 'initiative'")
        }
        try repaired.close()
        let miscounted = try source.verify()
        #expect(miscounted.integrity == "ok")
        #expect(miscounted.differences.contains { $0.hasPrefix("counts: initiative is counted as") }, "\(miscounted.differences)")
    }

    @Test("an index entry SQLite cannot read (its record's header damaged on disk) is reported by verify, in SQLite's words, not thrown")
    func verifyReportsUnreadableIndexEntry() throws {
        let (_, source, _, _) = try setUp()
        let records = QIRecords(replica: source, now: { Date() })
        for index in 0..<30 { _ = try records.add(.initiative, fields: ["title": "Falls £\(index) at 21°C"]) }
        let path = source.databasePath
        let page: Int = try DatabaseQueue(path: path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            return try Int.fetchOne(db, sql: "SELECT pageno FROM dbstat WHERE name = 'initiative_by_created_ms' AND pagetype = 'leaf'")!
        }
        // The last cell of the index's leaf page (its highest key): its payload's length, then
        // the record's header length, set past the end of the payload (it cannot be read).
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let pageStart = UInt64((page - 1) * 4096)
        try handle.seek(toOffset: pageStart)
        let header = try #require(try handle.read(upToCount: 4096))
        #expect(header[0] == 0x0A, "a leaf page of an index")
        let cells = Int(header[3]) << 8 | Int(header[4])
        let last = 8 + 2 * (cells - 1)
        let cell = UInt64(header[last]) << 8 | UInt64(header[last + 1])
        try handle.seek(toOffset: pageStart + cell + 1)
        try handle.write(contentsOf: Data([0x23]))
        try handle.close()
        // SQLite's own check names it (rather than failing): so must verify.
        let sqlite = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        #expect(sqlite != ["ok"] && sqlite.joined().contains("initiative_by_created_ms"), "\(sqlite)")
        let report = try source.verify()
        #expect(!report.isSound)
        #expect(report.integrity.contains("initiative_by_created_ms"), "\(report.integrity)")
    }

    @Test("on a replica with one random bit of an index flipped on disk, verify answers as SQLite's full integrity check does, never throwing in its place (60 seeds)")
    func verifyAnswersAsSQLiteOnFlippedBits() throws {
        let (harness, source, _, _) = try setUp()
        let records = QIRecords(replica: source, now: { Date() })
        for index in 0..<300 { _ = try records.add(.initiative, fields: ["title": "Falls £\(index) at 21°C — Ysbyty Gwynedd"]) }
        let pages: [Int] = try DatabaseQueue(path: source.databasePath).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            // The initiatives' two indexes: verify reads them only in its integrity check.
            return try Int.fetchAll(db, sql: """
                SELECT pageno FROM dbstat WHERE name IN ('initiative_by_created_ms', 'sqlite_autoindex_initiative_1') AND pagetype = 'leaf'
                """)
        }
        #expect(pages.count >= 3)
        let original = try Data(contentsOf: URL(fileURLWithPath: source.databasePath))
        var generator = SplitMix64(seed: 1616)
        var reported = 0, damaged = 0
        for seed in 0..<60 {
            let home = harness.root.appendingPathComponent("flipped-\(seed)")
            try FileManager.default.copyItem(at: source.home, to: home)
            var bytes = original
            let page = pages.randomElement(using: &generator)!
            let offset = (page - 1) * 4096 + Int.random(in: 1400..<4096, using: &generator)
            bytes[offset] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
            let path = home.appendingPathComponent(Replica.databaseName).path
            try bytes.write(to: URL(fileURLWithPath: path))
            let sqlite = try? DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            let report = try? Replica.open(home: home, schema: QISchema.schema).verify()
            if let sqlite {
                // What SQLite names, verify names, in SQLite's words; never a throw in its place.
                #expect(report.map { Set($0.integrity.components(separatedBy: "; ")) } == Set(sqlite), "seed \(seed): \(report?.integrity ?? "threw") against \(sqlite)")
                if sqlite != ["ok"] { damaged += 1 }
                reported += 1
            }
        }
        #expect(damaged >= 5 && reported >= 30, "\(damaged) damaged, \(reported) reported by SQLite")
    }

    @Test("a backup's check reads the backup's own file: its damaged index is found, the replica's is not blamed on it, and the backup is left as it was")
    func backupCheckReadsItsOwnFile() throws {
        let (harness, source, _, _) = try setUp()
        let file = harness.root.appendingPathComponent("source.backup").path
        _ = try source.backup(to: file)
        func redefine(_ path: String, over column: String) throws {
            let queue = try DatabaseQueue(path: path)
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA writable_schema = ON")
                try db.execute(sql: "UPDATE sqlite_schema SET sql = 'CREATE INDEX initiative_by_created_ms ON initiative(\(column))' WHERE name = 'initiative_by_created_ms'")
                try db.execute(sql: "PRAGMA writable_schema = OFF")
            }
            try queue.close()
        }
        func journalMode() throws -> String {
            try DatabaseQueue(path: file, configuration: { var c = Configuration(); c.readonly = true; return c }()).read { db in
                try String.fetchOne(db, sql: "PRAGMA journal_mode")!
            }
        }
        let mode = try journalMode()
        #expect(try source.verifyBackup(file).isSound)
        try redefine(file, over: "title")
        let damagedBackup = try source.verifyBackup(file)
        #expect(!damagedBackup.isSound && damagedBackup.integrity.contains("initiative_by_created_ms"), "\(damagedBackup.integrity)")
        #expect(try source.verify().integrity == "ok")
        // The other way round: the backup mended, the replica damaged.
        try redefine(file, over: "created_ms")
        try redefine(source.databasePath, over: "title")
        #expect(try source.verifyBackup(file).integrity == "ok")
        #expect(try source.verify().integrity.contains("initiative_by_created_ms"))
        #expect(try journalMode() == mode)
    }

    @Test("verify's rebuild, handed to its own thread in chunks, matches a replica of many chunks from two sites, and names one row changed among them")
    func verifyManyChunks() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub")
        let ward = try harness.make("ward")
        var keys: [[UInt8]] = []
        for site in [hub, ward] {
            try site.writeWindow {
                for index in 0..<700 {
                    let key = RecordID.random(owner: "RXH").bytes
                    keys.append(key)
                    _ = try site.write(scope: index % 3 == 0 ? .shared : .trust, edits: [
                        RowEdit(table: RecordKind.initiative.table.id, key: key, values: [(0, .integer(1)), (4, .text("Ward \(index): Llanfair £\(index)"))]),
                    ])
                }
            }
        }
        _ = try hub.apply(try ward.entries(after: VersionVector()))
        let clean = try hub.verify()
        #expect(clean.isSound, "\(clean.differences) \(clean.logProblems)")
        #expect(clean.entries >= 1_400)
        let queue = try DatabaseQueue(path: hub.databasePath)
        let forged = try #require(keys.last)
        try queue.write { db in try db.execute(sql: "UPDATE initiative SET title = 'forged' WHERE id = ?", arguments: [Data(forged)]) }
        let report = try hub.verify()
        #expect(!report.isSound)
        #expect(report.differences.count == 1 && report.differences.first?.hasPrefix("initiative \(Hex.encode(forged).prefix(8))") == true,
                "\(report.differences)")
    }

    @Test("verify checks each log's last signature, which vouches for the chain: an altered middle entry is named; a damaged middle signature only with --all-signatures")
    func verifyFindsAlteredLog() throws {
        let (_, source, _, entries) = try setUp()
        #expect(entries.count >= 4)
        let queue = try DatabaseQueue(path: source.databasePath)
        let middle = Int64(entries[1].seq)
        let clause = "scope = \(Scope.trust.rawValue) AND seq = \(middle) AND origin = (SELECT id FROM origin WHERE key = ?)"
        let original = try queue.read { db in try Row.fetchOne(db, sql: "SELECT body, sig FROM log WHERE \(clause)", arguments: [Data(source.identity.origin.bytes)]) }
        let body: Data = try #require(original?["body"]), signature: Data = try #require(original?["sig"])

        // A changed byte in a middle entry's body: its hash changes, so the last signature fails, and the entry is named.
        var altered = body
        altered[altered.count - 1] ^= 0x01
        try queue.write { db in try db.execute(sql: "UPDATE log SET body = ? WHERE \(clause)", arguments: [altered, Data(source.identity.origin.bytes)]) }
        let report = try source.verify()
        #expect(!report.isSound && report.logProblems.contains { $0.contains("entry \(middle): its signature does not match") }, "\(report.logProblems)")

        // The body put back, its signature damaged: the chain is intact and the last signature vouches for it,
        // but a peer sent a batch ending at this entry would refuse it: --all-signatures finds it.
        var damaged = signature
        damaged[0] ^= 0x01
        try queue.write { db in try db.execute(sql: "UPDATE log SET body = ?, sig = ? WHERE \(clause)", arguments: [body, damaged, Data(source.identity.origin.bytes)]) }
        #expect(try source.verify().isSound)
        let full = try source.verify(allSignatures: true)
        #expect(!full.isSound && full.logProblems.contains { $0.contains("entry \(middle)") }, "\(full.logProblems)")
    }

    @Test("an entry dated more than a day ahead of the receiver's clock is refused until the clocks agree")
    func clockFarAhead() throws {
        let source = try harness.make("ahead"), receiver = try harness.make("behind")
        _ = try source.write(scope: .trust, edits: [RowEdit(table: table, key: RecordID.random(owner: "RXH").bytes, values: [(0, .integer(1)), (4, .text("now"))])])
        harness.clock.advance(2 * 24 * 3600 * 1000)
        _ = try source.write(scope: .trust, edits: [RowEdit(table: table, key: RecordID.random(owner: "RXH").bytes, values: [(0, .integer(1)), (4, .text("future"))])])
        harness.clock.milliseconds -= 2 * 24 * 3600 * 1000
        let entries = try source.entries(after: VersionVector(), scopes: [.trust])
        // Each entry alone (signed), then the two as one run (only the last signed).
        let report = try receiver.apply(entries)
        #expect(report.applied == 1 && report.refused == 1)
        #expect(report.refusalReasons.first?.contains("more than a day ahead") == true)
        #expect(try receiver.versionVector().seq(of: LogID(origin: source.identity.origin, scope: .trust)) == 1)
        #expect(try receiver.verify().isSound)
        let fresh = try harness.make("fresh")
        let run = entries.enumerated().map { $0.offset < entries.count - 1 ? $0.element.withoutSignature() : $0.element }
        let asRun = try fresh.apply(run)
        #expect(asRun.applied == 0 && asRun.refused == 2, "the unsigned first entry cannot be kept alone")
        #expect(try fresh.verify().isSound)
        // Once the receiver's clock has caught up, the same entry is taken.
        harness.clock.advance(2 * 24 * 3600 * 1000)
        #expect(try receiver.apply(entries).applied == 1)
        #expect(try receiver.verify().isSound)
    }

    @Test("a batch of many logs' runs (checked on every core) is refused for the first bad run in order, and a sound one applies whole")
    func manyRuns() throws {
        let receiver = try harness.make("receiver")
        var batch: [LogEntry] = []
        for index in 0..<16 {
            let site = try harness.make("site-\(index)")
            for round in 0..<(1 + index % 3) {
                try site.write(scope: .shared, edits: [RowEdit(table: table, key: RecordID.random(owner: "RXH").bytes,
                                                               values: [(0, .integer(1)), (4, .text("Ysbyty £\(index).\(round) at 37°C"))])])
            }
            batch += try site.entries(after: VersionVector()).filter { $0.scope == .shared }
        }
        let runs = try LogRun.runs(of: batch)
        #expect(runs.count == 16)
        // Two runs with their last signature broken: the earlier is the one named.
        var broken = batch
        for run in [runs[11], runs[5]] {
            let last = broken.firstIndex { $0.ref == run.entries.last!.ref }!
            var signature = broken[last].signature!
            signature[3] ^= 0x40
            broken[last] = rebuilt(broken[last], signature: signature)
        }
        let state = try receiver.canonicalState()
        do {
            _ = try receiver.apply(broken)
            Issue.record("a batch with broken signatures was applied")
        } catch let rejection as LogRejection {
            #expect(rejection.ref == runs[5].entries.last!.ref)
        }
        #expect(try receiver.canonicalState() == state)
        let report = try receiver.apply(batch)
        #expect(report.refused == 0)
        #expect(try receiver.versionVector().positions.filter { $0.key.scope == .shared }.count >= 16)
    }
}
