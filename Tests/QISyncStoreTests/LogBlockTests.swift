import Foundation
import GRDB
import QISyncCore
import QISyncDomain
@testable import QISyncStore
import Testing

/// Log bodies packed 128 to a block (``LogBlocks``): every path that writes, reads, cuts or
/// rewrites a log's entries gives back exactly what was written, and the running counts and
/// `verify` agree, whether an entry's body is in its row or in its block.
@Suite("Log bodies packed by the block")
struct LogBlockTests {
    let table = RecordKind.initiative.table.id
    let title = RecordKind.initiative.table.column(named: "title")!.id

    /// Writes `count` initiatives to `site`'s trust log in windows of `window` (each window's
    /// last entry is signed); every seventh entry edits the record written 40 entries before,
    /// so writing reads earlier bodies back. Returns the entries as written, in order.
    @discardableResult
    func write(_ site: Replica, count: Int, window: Int = 100, text: (Int) -> String = { "Ward \($0), Llanelli: £\($0) a bed at 37°C" }) throws -> [LogEntry] {
        var written: [LogEntry] = []
        var keys: [[UInt8]] = []
        for start in stride(from: 0, to: count, by: window) {
            try site.writeWindow {
                for index in start..<min(count, start + window) {
                    let key = index % 7 == 6 && index >= 40 ? keys[index - 40] : RecordID.random(owner: "RXH").bytes
                    keys.append(key)
                    written.append(try site.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(title, .text(text(index)))])]))
                }
            }
        }
        return written
    }

    /// The entries of `site`'s log held by `replica`, in order.
    func log(of site: Replica, in replica: Replica) throws -> [LogEntry] {
        try replica.entries(after: VersionVector()).filter { $0.origin == site.identity.origin && $0.scope == .trust }
    }

    /// How many of a log's entries are packed, and the blocks held.
    func packing(_ replica: Replica, of site: Replica) throws -> (packed: Int, raw: Int, blocks: [Int64]) {
        let queue = try DatabaseQueue(path: replica.databasePath)
        defer { try? queue.close() }
        return try queue.read { db in
            let origin = try #require(try Int64.fetchOne(db, sql: "SELECT id FROM origin WHERE key = ?", arguments: [Data(site.identity.origin.bytes)]))
            let counts = try #require(try Row.fetchOne(db, sql: "SELECT count(packed), count(*) - count(packed) FROM log WHERE origin = ? AND scope = ?",
                                                       arguments: [origin, Int64(Scope.trust.rawValue)]))
            let blocks = try Int64.fetchAll(db, sql: "SELECT first FROM log_block WHERE origin = ? AND scope = ? ORDER BY first",
                                            arguments: [origin, Int64(Scope.trust.rawValue)])
            return (counts[0], counts[1], blocks)
        }
    }

    /// Verify finds the replica sound both ways: folding its logs, and rebuilding them through
    /// the materializer in its scratch database (which keeps the packed blocks as stored).
    func expectSound(_ replica: Replica, _ comment: Comment? = nil) throws {
        for tuning in [FoldedRebuild.Tuning(), FoldedRebuild.Tuning(folds: false)] {
            let report = try replica.verify(allSignatures: true, fold: tuning)
            #expect(report.isSound && report.rebuiltInScratch == !tuning.folds,
                    "\(comment?.rawValue ?? ""), folding \(tuning.folds): \(report.logProblems) \(report.differences) \(report.integrity)")
        }
    }

    @Test("a log's whole blocks are packed as they fill and read back exactly; a peer taking the log in uneven batches packs its own, whole blocks in a batch made ready beforehand, the rest as they fill")
    func packedAsWrittenAndAsReceived() throws {
        let harness = try TestReplicas()
        let source = try harness.make("source"), receiver = try harness.make("receiver")
        let written = try write(source, count: 300, window: 10)  // signed every 10: a run may end there
        let held = try log(of: source, in: source)
        #expect(held.map(\.hash) == written.map(\.hash) && held.map(\.body) == written.map(\.body))
        let sourcePacking = try packing(source, of: source)
        #expect(sourcePacking.packed == 256 && sourcePacking.raw == 44 && sourcePacking.blocks == [1, 129])
        try expectSound(source, "source")

        // Entries 1–100, 101–290 (block 129–256 whole inside: made ready), 291–300.
        for range in [0..<100, 100..<290, 290..<300] {
            let report = try receiver.apply(Array(held[range]))
            #expect(report.applied == range.count)
        }
        let received = try log(of: source, in: receiver)
        #expect(received.map(\.hash) == written.map(\.hash) && received.map(\.body) == written.map(\.body))
        #expect(try packing(receiver, of: source).blocks == [1, 129])
        #expect(try receiver.canonicalState().sections["initiative"] == source.canonicalState().sections["initiative"])
        try expectSound(receiver, "receiver")
        // A status reads the running counts: entries and bytes of the bodies, wherever they are kept.
        let bytes = written.reduce(0) { $0 + $1.body.count }
        let logs = try receiver.logSizes().filter { $0.log.origin == source.identity.origin && $0.log.scope == Scope.trust }
        #expect(logs.count == 1 && logs.first?.entries == 300 && logs.first?.bytes == bytes, "\(logs)")
    }

    @Test("entries of two logs arriving between each other's stay in their rows (their rows are not consecutive) and read back exactly")
    func interleavedStayUnpacked() throws {
        let harness = try TestReplicas()
        let a = try harness.make("a"), b = try harness.make("b"), receiver = try harness.make("receiver")
        // Every entry signed (a window each), so each may arrive alone.
        let fromA = try write(a, count: 130, window: 1), fromB = try write(b, count: 130, window: 1)
        #expect(try packing(a, of: a).blocks == [1])
        let heldA = try log(of: a, in: a), heldB = try log(of: b, in: b)
        for index in 0..<130 {
            _ = try receiver.apply([heldA[index]])
            _ = try receiver.apply([heldB[index]])
        }
        #expect(try log(of: a, in: receiver).map(\.hash) == fromA.map(\.hash))
        #expect(try log(of: b, in: receiver).map(\.body) == fromB.map(\.body))
        #expect(try packing(receiver, of: a).blocks.isEmpty && packing(receiver, of: b).blocks.isEmpty)
        try expectSound(receiver)
    }

    @Test("a revocation that cuts a log inside a packed block keeps the entries before the cut, their bodies back in their rows, and the counts right")
    func revocationCutsInsideABlock() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub"), ward = try harness.make("ward"), peer = try harness.make("peer")
        let written = try write(ward, count: 300)  // signed at 100, 200 and 300
        let held = try log(of: ward, in: ward)
        _ = try hub.apply(Array(held[0..<200]))
        _ = try peer.apply(held)
        #expect(try packing(peer, of: ward).blocks == [1, 129])
        let revocation = try #require(try hub.revoke(site: ward.identity.origin))
        _ = try peer.importDirectory([revocation.record])

        let kept = try log(of: ward, in: peer)
        #expect(kept.count == 200 && kept.map(\.hash) == Array(written[0..<200]).map(\.hash) && kept.map(\.body) == Array(written[0..<200]).map(\.body))
        let after = try packing(peer, of: ward)
        #expect(after.blocks == [1] && after.packed == 128 && after.raw == 72, "\(after)")
        #expect(try peer.canonicalState().sections["initiative"] == hub.canonicalState().sections["initiative"])
        try expectSound(peer)
    }

    @Test("a redaction of a packed entry rewrites its block: the text is gone from every block, the entry keeps its hash, and verify is clean")
    func redactionRewritesTheBlock() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub")
        let written = try write(hub, count: 150, text: { $0 == 5 ? "Patient Siân Jones, NHS 485 777 3456" : "Ward \($0)" })
        #expect(try packing(hub, of: hub).blocks == [1])
        let key = try #require(try Change(decodingBody: written[5].body).rows.first).key
        _ = try hub.redact(table: table, key: key, columns: [title], reason: "patient details")

        let queue = try DatabaseQueue(path: hub.databasePath)
        let blocks = try queue.read { db in try Data.fetchAll(db, sql: "SELECT data FROM log_block") }
        try queue.close()
        #expect(blocks.count == 1)
        for block in blocks {
            for body in try LogBlocks.decode(Array(block)) {
                #expect(!String(decoding: body, as: UTF8.self).contains("Siân"))
            }
        }
        let held = try log(of: hub, in: hub)
        #expect(held.map(\.hash) == written.map(\.hash))
        #expect(held[5].body != written[5].body && held[4].body == written[4].body && held[6].body == written[6].body)
        try expectSound(hub)
    }

    @Test("verify's rebuild keeps the replica's packed blocks and reads a conflicting head's value from them; a log missing a block's first entry keeps that block's bodies in their rows and is reported, not thrown")
    func verifyRebuildReadsFromBlocks() throws {
        let harness = try TestReplicas()
        let a = try harness.make("a"), b = try harness.make("b")
        // a writes 20 records; b takes them; then each edits them 108 and 128 times, neither
        // seeing the other's edits, so every record ends with a head from each log: the
        // rebuild, applying one log after the other, reads the first's heads' values back to
        // find the conflicts, and every one of them is in a packed block (entries 1–128).
        let base = try write(a, count: 20, window: 10, text: { "Ward \($0), Ysbyty Gwynedd" })
        let keys = try base.map { try #require(try Change(decodingBody: $0.body).rows.first?.key) }
        _ = try b.apply(try log(of: a, in: a))
        for (site, count) in [(a, 108), (b, 128)] {
            for start in stride(from: 0, to: count, by: 10) {
                try site.writeWindow {
                    for index in start..<min(count, start + 10) {
                        _ = try site.write(scope: .trust, edits: [RowEdit(table: table, key: keys[index % keys.count],
                                                                          values: [(title, .text("\(site.identity.siteName) \(index): £\(index), 37°C"))])])
                    }
                }
            }
        }
        _ = try a.apply(try log(of: b, in: b))
        _ = try b.apply(try log(of: a, in: a))
        // On a, both logs are packed (each came in one consecutive run); on b, a's log is not (its
        // 20 records came before b's own entries, the rest after).
        #expect(try packing(a, of: a).blocks == [1] && packing(a, of: b).blocks == [1] && packing(b, of: b).blocks == [1])
        for replica in [a, b] {
            #expect(try replica.canonicalState().sections["conflicts"]?.count == keys.count)
            try expectSound(replica, "\(replica.identity.siteName)")
        }

        // The log the rebuild applies first loses its entry 1 (the first of its packed block):
        // the rest of that block's bodies are read from the block, and the loss is reported.
        let first = [a, b].min { LogID(origin: $0.identity.origin, scope: .trust) < LogID(origin: $1.identity.origin, scope: .trust) }!
        let queue = try DatabaseQueue(path: a.databasePath)
        try queue.write { db in
            try db.execute(sql: "DELETE FROM log WHERE seq = 1 AND scope = ? AND origin = (SELECT id FROM origin WHERE key = ?)",
                           arguments: [Int64(Scope.trust.rawValue), Data(first.identity.origin.bytes)])
        }
        try queue.close()
        let report = try a.verify()
        #expect(!report.isSound && report.logProblems.contains { $0.contains("entry 1 is missing") }, "\(report.logProblems)")
    }

    @Test("a damaged block is reported as damage, with what to do, and nothing reads past it")
    func damagedBlock() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub")
        try write(hub, count: 130)
        let queue = try DatabaseQueue(path: hub.databasePath)
        try queue.write { db in
            var data = Array(try #require(try Data.fetchOne(db, sql: "SELECT data FROM log_block")))
            data[data.count / 2] ^= 0xFF
            try db.execute(sql: "UPDATE log_block SET data = ?", arguments: [Data(data)])
        }
        try queue.close()
        for attempt in [{ _ = try hub.entries(after: VersionVector()) }, { _ = try hub.verify() }] {
            do {
                try attempt()
                Issue.record("a damaged block was read")
            } catch let error as StoreError {
                #expect(error.message.contains("log block") && error.message.contains("damaged"), "\(error)")
            }
        }
    }

    /// Puts a replica file whose entries are all unpacked back in version 2's layout: no packed
    /// column, no blocks, the old count triggers.
    static func downgradeToVersion2(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: """
                DROP TRIGGER log_size_remove; DROP TRIGGER log_size_rewrite;
                ALTER TABLE log DROP COLUMN packed; DROP TABLE log_block; DROP TABLE log_packing;
                CREATE TRIGGER log_size_delete AFTER DELETE ON log BEGIN
                    UPDATE log_size SET entries = entries - 1, bytes = bytes - length(OLD.body) WHERE origin = OLD.origin AND scope = OLD.scope;
                END;
                CREATE TRIGGER log_size_update AFTER UPDATE OF body ON log BEGIN
                    UPDATE log_size SET bytes = bytes - length(OLD.body) + length(NEW.body) WHERE origin = OLD.origin AND scope = OLD.scope;
                END;
                UPDATE meta SET value = 2 WHERE key = 'schema_version';
                """)
        }
        try queue.close()
    }

    @Test("a backup made before the blocks (schema version 2) is checked and restored, brought up to date in a copy removed afterwards; one of a later version is refused")
    func olderBackupRestores() throws {
        let harness = try TestReplicas()
        let ward = try harness.make("ward")
        let before = try write(ward, count: 100)
        let file = harness.root.appendingPathComponent("ward.backup").path
        _ = try ward.backup(to: file)
        try Self.downgradeToVersion2(file)
        try write(ward, count: 60)

        #expect(try ward.summary(ofBackup: file).entries == 101)  // its site record and the 100
        #expect(try ward.verifyBackup(file).isSound)
        try ward.restore(from: file)
        #expect(try log(of: ward, in: ward).map(\.hash) == before.map(\.hash))
        try expectSound(ward)
        let left = try FileManager.default.contentsOfDirectory(atPath: ward.home.path).filter { $0.hasPrefix(".verify-scratch") }
        #expect(left.isEmpty, "\(left)")
        // The backup itself is untouched (still version 2), and one from a later version is refused.
        let later = try DatabaseQueue(path: file)
        #expect(try later.read { db in try Int.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema_version'") } == 2)
        try later.write { db in try db.execute(sql: "UPDATE meta SET value = 9 WHERE key = 'schema_version'") }
        try later.close()
        #expect(throws: StoreError.self) { try ward.verifyBackup(file) }
        do {
            _ = try ward.summary(ofBackup: file)
            Issue.record("a backup of a later version was read")
        } catch let error as StoreError {
            #expect(error.message.contains("another version of qisync"), "\(error)")
        }
    }

    @Test("a replica of the layout before blocks (schema version 2) opens, keeps its entries as they are, and packs the blocks that fill from then on")
    func olderReplicaMigrates() throws {
        let harness = try TestReplicas()
        let hub = try harness.make("hub")
        let before = try write(hub, count: 100)
        try Self.downgradeToVersion2(hub.databasePath)
        let reopened = try Replica.open(home: hub.home, schema: QISchema.schema)
        let after = try write(reopened, count: 200)
        let held = try log(of: reopened, in: reopened)
        #expect(held.map(\.hash) == (before + after).map(\.hash))
        // Block 1–128 was begun before: its rows are consecutive (nothing came between), so it packs too.
        #expect(try packing(reopened, of: reopened).blocks == [1, 129])
        try expectSound(reopened)
        let version = try DatabaseQueue(path: hub.databasePath)
        #expect(try version.read { db in try Int.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema_version'") } == 3)
        try version.close()
    }

    @Test("whatever the order, splitting and repetition of two long logs' batches, a receiver ends with exactly the sources' entries and state, packed or not, and verify is clean", arguments: 0..<12)
    func anyArrival(seed: UInt64) throws {
        var generator = SplitMix64(seed: 0xB10C + seed)
        let harness = try TestReplicas()
        let a = try harness.make("a"), b = try harness.make("b"), receiver = try harness.make("receiver")
        // Windows of random lengths: each window's last entry is signed, and only there may a batch end.
        var perLog: [[[LogEntry]]] = []
        for source in [a, b] {
            var count = 0
            while count < 400 {
                let window = Int.random(in: 1...90, using: &generator)
                try write(source, count: window, window: window, text: { "\(source.identity.siteName) \(count + $0): Llanfairpwll £\($0), 37°C" })
                count += window
            }
            let held = try log(of: source, in: source)
            let signed = held.indices.filter { held[$0].signature != nil }
            // Batches of one to four windows.
            var batches: [[LogEntry]] = []
            var start = 0
            while start < held.count {
                let ends = signed.filter { $0 >= start }
                let end = ends[min(ends.count - 1, Int.random(in: 0...3, using: &generator))]
                batches.append(Array(held[start...end]))
                start = end + 1
            }
            perLog.append(batches)
        }
        // The two logs' batches interleaved at random; some a little early (they wait for their
        // predecessors), some twice.
        var order: [[LogEntry]] = []
        var next = [0, 0]
        while next[0] < perLog[0].count || next[1] < perLog[1].count {
            let pick = next[0] == perLog[0].count ? 1 : next[1] == perLog[1].count ? 0 : Int.random(in: 0...1, using: &generator)
            order.append(perLog[pick][next[pick]])
            next[pick] += 1
        }
        for index in order.indices where Int.random(in: 0..<4, using: &generator) == 0 {
            order.swapAt(index, min(order.count - 1, index + Int.random(in: 1...3, using: &generator)))
        }
        for batch in order {
            _ = try receiver.apply(batch)
            if Int.random(in: 0..<8, using: &generator) == 0 { _ = try receiver.apply(batch) }
        }
        #expect(try receiver.waitingEntryCount() == 0)
        for source in [a, b] {
            let held = try log(of: source, in: source), received = try log(of: source, in: receiver)
            #expect(received.map(\.hash) == held.map(\.hash) && received.map(\.body) == held.map(\.body), "seed \(seed)")
            let sizes = try receiver.logSizes().filter { $0.log == LogID(origin: source.identity.origin, scope: .trust) }
            #expect(sizes.first?.entries == held.count && sizes.first?.bytes == held.reduce(0) { $0 + $1.body.count }, "seed \(seed)")
        }
        let expected = try Set(a.canonicalState().sections["initiative"]! + b.canonicalState().sections["initiative"]!)
        #expect(try Set(receiver.canonicalState().sections["initiative"]!) == expected, "seed \(seed)")
        try expectSound(receiver, "seed \(seed)")
    }
}
