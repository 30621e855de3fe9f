import Crypto
import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import QISyncTransport
import Testing

/// Patient details typed by mistake: the IG lead redacts them on the hub, and the redaction
/// reaches every replica, taking the text out of the tables and the history while every log
/// still verifies.
@Suite("Redaction")
struct RedactionTests {
    static let nhsNumber = "943 476 5919"

    /// Whether any log body or table of the replica still holds `text`.
    static func holds(_ h: ShellHarness, _ text: String) throws -> Bool {
        try h.records.replica.read { db in
            let bodies = try Data.fetchAll(db, sql: "SELECT body FROM log")
            let pending = try Data.fetchAll(db, sql: "SELECT entry FROM pending_entry")
            let learning = try String.fetchAll(db, sql: "SELECT coalesce(text, '') FROM learning")
            let needle = Data(text.utf8)
            return (bodies + pending).contains { $0.range(of: needle) != nil } || learning.contains { $0.contains(text) }
        }
    }

    @Test("a redaction on the hub clears the text and its history here, then on a ward, another trust and a replica that never saw it; every log still verifies")
    func redactEverywhere() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        let ward = try ShellHarness(site: "ward-7", trustKey: key)
        let later = try ShellHarness(site: "ward-9", trustKey: key)
        let partner = try ShellHarness(trust: "RYJ", site: "hub", kind: .hub)
        try hub.meet(ward)
        try hub.meet(later)
        try hub.meet(partner)
        let made = hub.run("log add 'Mrs Evans fell, NHS \(Self.nhsNumber), bay 4' --json")
        let id = String(try #require((try JSONSerialization.jsonObject(with: Data(made.out.utf8)) as? [String: Any])?["id"] as? String).prefix(8))
        #expect(hub.run("log set \(id) --text 'Fall in bay 4 at night, NHS \(Self.nhsNumber)'").outcome == .success)
        #expect(hub.run("share \(id) --override-pii --reason 'checked with the IG lead at the time'").outcome == .success)
        for peer in [ward, partner] {
            #expect(LocalSync.run(client: peer.records.replica, server: hub.records.replica).client.error == nil)
            #expect(try Self.holds(peer, Self.nhsNumber))
        }

        let keyless = try ShellHarness(site: "ward-3", membership: .joining(key.fingerprint))
        #expect(keyless.run("redact \(id) text --reason 'patient details typed by mistake' --yes").err.contains("only the trust's hub"))
        #expect(partner.run("redact \(id) text --reason 'patient details typed by mistake' --yes").err.contains("belongs to trust RXH"))
        #expect(hub.run("redact \(id) text --yes").err.contains("--reason"))
        #expect(hub.run("redact \(id) effect --reason 'patient details typed by mistake' --yes").err.contains("no text field"))
        #expect(hub.run("redact \(id) text --reason 'patient details typed by mistake'").err.contains("add --yes"))
        #expect(try Self.holds(hub, Self.nhsNumber), "refusals changed nothing")
        let redacted = hub.run("redact \(id) text --reason 'patient details typed by mistake' --yes")
        #expect(redacted.outcome == .success, "\(redacted.err)")
        #expect(redacted.out.contains("These values") && redacted.out.contains("in 3 entries"), "\(redacted.out)")
        #expect(try !Self.holds(hub, Self.nhsNumber))
        #expect(hub.run("log show \(id)").out.contains(Redaction.marker))
        #expect(!hub.run("history \(id)").out.contains(Self.nhsNumber))
        #expect(hub.run("verify").outcome == .success)
        #expect(hub.run("audit").out.contains("redaction"))

        // A ward and another trust that held the text lose it with their next sync.
        for peer in [ward, partner] {
            let outcome = LocalSync.run(client: peer.records.replica, server: hub.records.replica)
            #expect(outcome.client.error == nil && outcome.server.error == nil)
            #expect(try !Self.holds(peer, Self.nhsNumber), "\(peer.records.replica.identity.siteName) still holds the text")
            #expect(try peer.records.list(.learning).first?.text("text") == Redaction.marker)
            #expect(peer.run("verify").outcome == .success, "\(peer.run("verify").out)")
            #expect(peer.run("audit").out.contains("redaction"))
        }
        // A replica that never held the entry receives it redacted, and it chains and verifies.
        let fresh = LocalSync.run(client: later.records.replica, server: ward.records.replica)
        #expect(fresh.client.error == nil, "\(String(describing: fresh.client.error))")
        #expect(try !Self.holds(later, Self.nhsNumber))
        #expect(try later.records.list(.learning).count == 1)
        #expect(later.run("verify").outcome == .success)
        // Nothing of the entry's place in its log moved: the hub's next entry still chains everywhere.
        #expect(hub.run("log add 'Huddles helped'").outcome == .success)
        for peer in [ward, later] {
            #expect(LocalSync.run(client: peer.records.replica, server: hub.records.replica).client.error == nil)
            #expect(try peer.records.list(.learning).count == 2)
        }
    }

    @Test("a redacted body without its trust's redaction record is refused, and another trust cannot redact our entries")
    func forgedRedactions() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        let ward = try ShellHarness(site: "ward-7", trustKey: key)
        let partnerKey = TrustKey()
        let partner = try ShellHarness(trust: "RYJ", site: "hub", kind: .hub, trustKey: partnerKey)
        try hub.meet(ward)
        try ward.meet(partner)
        _ = try hub.addInitiative("Reduce falls")
        let entries = try hub.records.replica.entries(after: VersionVector(), scopes: [.trust])
        let target = try #require(entries.last)
        // A relay rewrites the entry's content under its old hash: the signature still checks, the chain still links.
        let forged = target.redacted(to: Change(rows: try target.change().rows.map { row in
            var row = row
            for index in row.cells.indices where row.cells[index].value != .integer(1) { row.cells[index].value = .text("Forged") }
            return row
        }))
        #expect(forged.hasValidSignature)
        #expect(throws: LogRejection.self) { try ward.records.replica.apply(entries.dropLast() + [forged]) }
        #expect(try ward.records.list(.initiative).isEmpty)

        // A partner trust's key signs a redaction of our entry: it is not in force, and nothing changes.
        try ward.records.replica.apply(entries)
        let before = try ward.records.replica.canonicalState()
        let cells = Set(try target.change().rows.flatMap { row in row.cells.filter { $0.column > 0 }.map { Redaction.Cell(table: row.table, key: row.key, column: $0.column) } })
        let (theirs, _) = try Redaction.issue(entry: target, cells: cells, reason: "not theirs to redact", at: 1, by: partnerKey)
        try ward.records.replica.importDirectory([theirs.record])
        #expect(try ward.records.replica.canonicalState() == before)
        #expect(try ward.records.replica.redactions().isEmpty)
    }

    @Test("a bundle carries the redaction and the redacted entries")
    func throughBundles() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        let ward = try ShellHarness(site: "ward-7", trustKey: key)
        try hub.meet(ward)
        let made = hub.run("log add 'NHS \(Self.nhsNumber) in the notes' --json")
        let id = String(try #require((try JSONSerialization.jsonObject(with: Data(made.out.utf8)) as? [String: Any])?["id"] as? String).prefix(8))
        #expect(hub.run("redact \(id) text --reason 'an NHS number typed by mistake' --yes").outcome == .success)
        let file = hub.root.appendingPathComponent("for-ward.bundle").path
        #expect(hub.run("bundle export \(file) --for RXH/ward-7 --all").outcome == .success)
        let imported = ward.run("bundle import \(file)")
        #expect(imported.outcome == .success, "\(imported.err)")
        #expect(try ward.records.list(.learning).first?.text("text") == Redaction.marker)
        #expect(try !Self.holds(ward, Self.nhsNumber))
        #expect(ward.run("verify").outcome == .success)
    }
}
