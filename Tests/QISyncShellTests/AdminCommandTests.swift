import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import QISyncTransport
import Testing

/// What an administrator does when something is wrong: verify names it, repair rebuilds
/// the tables, backup and restore keep a copy and put it back without forking the site's log.
@Suite("Verify, repair, backup and restore")
struct AdminCommandTests {
    /// Changes the replica's database file behind qisync's back, as a stray tool would.
    static func tamper(_ h: ShellHarness, _ sql: String) throws {
        let queue = try DatabaseQueue(path: h.records.replica.databasePath)
        try queue.write { db in try db.execute(sql: sql) }
        try queue.close()
    }

    @Test("verify checks the signatures of the directory records held and names one altered since it was kept; repair cannot mend it and changes nothing")
    func verifyDirectoryRecords() throws {
        let h = try ShellHarness()
        _ = try h.addInitiative("Reduce falls at Ysbyty Gwynedd")
        let sound = h.run("verify")
        #expect(sound.outcome == .success && sound.out.contains("directory records: signatures and digests ok"), "\(sound.out)")
        // The site's own enrolment, its consent's last byte flipped behind qisync's back.
        let queue = try DatabaseQueue(path: h.records.replica.databasePath)
        try queue.write { db in
            let record = try #require(try Data.fetchOne(db, sql: "SELECT record FROM directory_record WHERE kind = 1"))
            var bytes = Array(record)
            bytes[bytes.count - 1] ^= 0x01
            try db.execute(sql: "UPDATE directory_record SET record = ? WHERE kind = 1", arguments: [Data(bytes)])
            // A new directory version, as a new process would read the file afresh.
            try db.execute(sql: "UPDATE meta SET value = abs(random()) WHERE key = 'directory_version'")
        }
        try queue.close()
        let state = try h.records.replica.canonicalState()
        let verify = h.run("verify")
        #expect(verify.outcome != .success)
        #expect(verify.out.contains("directory records: signatures and digests FAILED") && verify.out.contains("an enrolment record held")
                && verify.out.contains("consent"), "\(verify.out)")
        let repair = h.run("repair --yes")
        #expect(repair.outcome != .success && repair.out.contains("an enrolment record held"), "\(repair.out)")
        #expect(try h.records.replica.canonicalState() == state)
    }

    @Test("verify names each record and field the tables get wrong; repair shows them, asks, and rebuilds the tables from the logs")
    func repair() throws {
        let h = try ShellHarness()
        let id = try h.addInitiative("Reduce falls at Ysbyty Gwynedd")
        #expect(h.run("log add 'Huddles helped' --sofft S1").outcome == .success)
        let before = try h.records.replica.canonicalState()
        #expect(h.run("repair").out.contains("nothing to repair"))
        try Self.tamper(h, "UPDATE initiative SET title = 'Tampered', status = 'closed' WHERE id = X'\(id)'")
        try Self.tamper(h, "DELETE FROM learning")

        let verify = h.run("verify")
        #expect(verify.outcome != .success)
        #expect(verify.out.contains("initiative \(id.prefix(8)): ") && verify.out.contains("title is 'Tampered' (the logs give 'Reduce falls at Ysbyty Gwynedd')")
                && verify.out.contains("status is 'closed'"), "\(verify.out)")
        #expect(verify.out.contains("learning ") && verify.out.contains("missing from the tables"), "\(verify.out)")

        let unconfirmed = h.run("repair")
        #expect(unconfirmed.out.contains("title is 'Tampered'") && unconfirmed.err.contains("add --yes"))
        h.shell.context.ask = { _ in "n" }
        #expect(h.run("repair").out.contains("not repaired"))
        h.shell.context.ask = nil
        let repaired = h.run("repair --yes")
        #expect(repaired.outcome == .success && repaired.out.contains("repaired"), "\(repaired.err)")
        #expect(try h.records.replica.canonicalState() == before)
        #expect(h.run("verify").outcome == .success)
        #expect(try h.records.replica.adminEvents().contains { $0.kind == "repair" })
    }

    @Test("verify finds a register's heads or conflicts changed behind qisync's back, and a head naming no entry held")
    func headsAndConflicts() throws {
        for (sql, expected) in [
            ("UPDATE initiative SET base_heads = 1", "heads: initiative|"),
            ("INSERT INTO conflict (tbl, rid, col) SELECT \(RecordKind.initiative.table.id), rowid, 4 FROM initiative", "conflicts: initiative|"),
            ("UPDATE initiative SET base_chg = base_chg + 1000000", "is missing from the tables"),
            ("INSERT INTO row_version (tbl, rid, chg, heads) SELECT \(RecordKind.initiative.table.id), rowid, 1000000, 1 FROM initiative",
             "heads: differs from the rebuild in a head or row that names no entry held"),
        ] {
            let h = try ShellHarness()
            _ = try h.addInitiative("Reduce falls at Ysbyty Gwynedd, 37°C")
            #expect(h.run("verify").outcome == .success)
            try Self.tamper(h, sql)
            let verify = h.run("verify")
            #expect(verify.outcome != .success, "\(sql)")
            #expect(verify.out.contains(expected), "\(sql): \(verify.out)")
            let repaired = h.run("repair --yes")
            #expect(repaired.outcome == .success, "\(sql): \(repaired.err)")
            #expect(h.run("verify").outcome == .success, "\(sql)")
        }
    }

    @Test("repair refuses when the logs themselves are damaged, naming the log and entry")
    func damagedLog() throws {
        let h = try ShellHarness()
        _ = try h.addInitiative("Reduce falls")
        _ = try h.addInitiative("Sepsis screening")
        try Self.tamper(h, "UPDATE log SET body = body || X'00' WHERE seq = 2 AND scope = 0")
        let verify = h.run("verify").out
        #expect(verify.contains("RXH/ward-7's trust log") && verify.contains("entry 2"), "\(verify)")
        let repair = h.run("repair --yes")
        #expect(repair.outcome != .success && repair.err.contains("cannot mend"), "\(repair.err)")
    }

    @Test("backup writes a checked copy of a live replica; restore puts it back, holds writing until a sync returns later entries, and the site's log does not fork")
    func backupAndRestore() throws {
        let key = TrustKey()
        let ward = try ShellHarness(site: "ward-7", trustKey: key), hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        try ward.meet(hub)
        _ = try ward.addInitiative("Falls at night")
        let file = ward.root.appendingPathComponent("ward-7.backup").path
        let made = ward.run("backup \(file)")
        #expect(made.outcome == .success && made.out.contains("holds no keys"), "\(made.err)")
        #expect(ward.run("backup \(file)").err.contains("already exists"), "a backup never replaces a file")
        let check = ward.run("restore \(file) --check")
        #expect(check.outcome == .success && check.out.contains("sound"), "\(check.err)")

        // After the backup the ward writes more and syncs it to the hub; then its disk is lost.
        _ = try ward.addInitiative("Written after the backup")
        #expect(LocalSync.run(client: ward.records.replica, server: hub.records.replica).client.error == nil)
        let held = try ward.records.replica.versionVector()
        #expect(ward.run("restore \(file)").err.contains("add --yes"))
        let restored = ward.run("restore \(file) --yes")
        #expect(restored.outcome == .success, "\(restored.err)")
        #expect(try ward.records.list(.initiative).map { $0.text("title") } == ["Falls at night"])
        #expect(ward.run("status").out.contains("HELD"))
        let refused = ward.run("initiative add --title 'Too soon'")
        #expect(refused.err.contains("restored from a backup") && refused.err.contains("sync with a peer"), "\(refused.err)")

        // A sync brings back what the ward wrote after the backup, and writing resumes.
        #expect(LocalSync.run(client: ward.records.replica, server: hub.records.replica).client.error == nil)
        #expect(try ward.records.replica.versionVector() == held)
        #expect(try ward.records.replica.writesHeldSince() == nil)
        #expect(ward.run("initiative add --title 'After the restore'").outcome == .success)
        let outcome = LocalSync.run(client: ward.records.replica, server: hub.records.replica)
        #expect(outcome.client.error == nil && outcome.server.counters.refusedIn == 0, "the ward's log did not fork")
        #expect(try hub.records.list(.initiative).count == 3)
        let events = try ward.records.replica.adminEvents().map(\.kind)
        #expect(events.contains("restore") && events.contains("writes resumed"))
    }

    @Test("restore refuses another site's backup, a damaged one and a file that is not a backup, and changes nothing")
    func refusedRestores() throws {
        let a = try ShellHarness(site: "ward-7"), b = try ShellHarness(site: "ward-8")
        _ = try a.addInitiative("Falls")
        let other = b.root.appendingPathComponent("ward-8.backup").path
        #expect(b.run("backup \(other)").outcome == .success)
        let before = try a.records.replica.canonicalState()
        #expect(a.run("restore \(other) --yes").err.contains("another site"))
        let mine = a.root.appendingPathComponent("ward-7.backup").path
        #expect(a.run("backup \(mine)").outcome == .success)
        let damaged = try DatabaseQueue(path: mine)
        try damaged.write { db in try db.execute(sql: "UPDATE initiative SET title = 'Changed in the copy'") }
        try damaged.close()
        let result = a.run("restore \(mine) --yes")
        #expect(result.err.contains("damaged") && result.out.contains("title is 'Changed in the copy'"), "\(result.out) \(result.err)")
        let junk = a.root.appendingPathComponent("notes.txt").path
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: junk))
        #expect(a.run("restore \(junk) --yes").err.contains("not a qisync backup"))
        #expect(a.run("restore \(a.root.appendingPathComponent("missing").path)").err.contains("does not exist"))
        #expect(try a.records.replica.canonicalState() == before)
        #expect(try a.records.replica.writesHeldSince() == nil)
    }
}
