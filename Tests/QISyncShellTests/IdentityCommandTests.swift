import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import Testing

@Suite("Identity, trust and audit commands")
struct IdentityCommandTests {
    @Test("whoami prints the fingerprints to read out; a ward joins, is enrolled by file, and says so")
    func enrolByFile() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", trustKey: key)
        let who = hub.run("whoami")
        #expect(who.outcome == .success && who.out.contains(key.fingerprint.description) && who.out.contains("held here"))
        let ward = try ShellHarness(site: "ward-9", membership: .joining(key.fingerprint))
        #expect(ward.run("whoami").out.contains("not yet"))
        let request = ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = hub.root.appendingPathComponent("ward-9.enrolment").path
        let enrolled = hub.run("enrol \(request) --out \(file)")
        #expect(enrolled.outcome == .success && enrolled.out.contains("enrolled RXH/ward-9"))
        #expect(ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines) == request)
        // A ward cannot enrol anyone: it holds no trust key.
        #expect(ward.run("enrol \(request)").err.contains("only the hub"))
        let accepted = ward.run("enrol --accept \(file)")
        #expect(accepted.outcome == .success && accepted.out.contains("RXH/ward-9"))
        #expect(ward.run("whoami").out.contains("enrolled        yes"))
        // Another site's enrolment file is refused, and a damaged one.
        let stranger = try ShellHarness(site: "stranger", membership: .joining(key.fingerprint))
        #expect(stranger.run("enrol --accept \(file)").err.contains("not this site's"))
        try Data("qisync-enrolment 1\n@@@\n".utf8).write(to: URL(fileURLWithPath: file + ".bad"))
        #expect(stranger.run("enrol --accept \(file).bad").err.contains("damaged"))
        #expect(hub.run("enrol qisync-enrol-request:AAAA").err.contains("damaged"))
    }

    @Test("a ward enrolled by a key other than the one it joined with refuses the enrolment")
    func wrongTrustKey() throws {
        let ward = try ShellHarness(site: "ward", membership: .joining(TrustKey().fingerprint))
        let rogueHub = try ShellHarness(site: "hub")
        let file = rogueHub.root.appendingPathComponent("e").path
        #expect(rogueHub.run("enrol \(ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines)) --out \(file)").outcome == .success)
        #expect(ward.run("enrol --accept \(file)").err.contains("not the one this site joined with"))
        #expect(try ward.records.replica.ownEnrolment() == nil)
    }

    @Test("trust add, list and remove, with clear errors")
    func trustPins() throws {
        let hub = try ShellHarness(site: "hub")
        let other = TrustKey().fingerprint
        #expect(hub.run("trust add RYJ \(other)").out.contains("pinned trust RYJ"))
        let listed = hub.run("trust list --json").out
        #expect(listed.contains("RYJ") && listed.contains(other.description) && listed.contains("RXH"))
        #expect(hub.run("trust add RXH \(other)").err.contains("own trust"))
        #expect(hub.run("trust add RYJ 1234").err.contains("not a fingerprint"))
        #expect(hub.run("trust add ryj \(other)").err.contains("not a trust code"))
        #expect(hub.run("trust remove RXH").err.contains("cannot be removed"))
        #expect(hub.run("trust remove RYJ").outcome == .success)
        #expect(hub.run("trust remove RYJ").err.contains("not pinned"))
    }

    @Test("revoke on the hub; a ward cannot revoke")
    func revoke() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", trustKey: key)
        let ward = try ShellHarness(site: "ward-3", membership: .joining(key.fingerprint))
        #expect(hub.run("enrol \(ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines))").outcome == .success)
        #expect(hub.run("revoke nowhere").err.contains("no enrolled site is called"))
        // Where no one can answer (a script, a pipe), revoking needs --yes.
        let records = try hub.records.replica.directoryRecords()
        #expect(hub.run("revoke ward-3").err.contains("add --yes"))
        // At a terminal it asks; anything but y or yes leaves the site enrolled.
        var asked: [String] = []
        hub.shell.context.ask = { asked.append($0); return "n" }
        #expect(hub.run("revoke ward-3").out.contains("not revoked"))
        #expect(asked.first?.contains("Revoke RXH/ward-3") == true && asked.first?.contains("cannot be undone") == true)
        #expect(try hub.records.replica.directoryRecords() == records, "declining changed nothing")
        hub.shell.context.ask = { _ in "yes" }
        #expect(hub.run("revoke ward-3").out.contains("revoked RXH/ward-3"))
        #expect(try hub.records.replica.directory().revocations[ward.records.replica.identity.origin] != nil)
        hub.shell.context.ask = nil
        #expect(hub.run("revoke ward-3 --yes").out.contains("already revoked"))
        let trusts = hub.run("trust list").out
        #expect(trusts.contains("revoked") && trusts.contains("pinned"), "\(trusts)")
        #expect(try hub.records.replica.trustPins().first?.revokedSites == 1)
        let sites = hub.run("site list").out
        #expect(sites.split(separator: "\n").contains { $0.contains("RXH/ward-3") && $0.contains("revoked") }, "\(sites)")
        #expect(hub.run("enrol \(ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines))").err.contains("revoked"))
        #expect(ward.run("revoke hub").err.contains("only the hub"))
    }

    @Test("audit shows sessions and refusals; audit export writes CSV and JSON, never over a file")
    func audit() throws {
        let hub = try ShellHarness(site: "hub"), foreign = try ShellHarness(trust: "RYJ", site: "hub")
        try hub.meet(foreign)
        let id = try foreign.addInitiative("Theirs")
        #expect(foreign.run("share \(id.prefix(8))").outcome == .success)
        // A forged edit of a record RYJ does not own, signed by RYJ's own site.
        let mine = try hub.addInitiative("Ours")
        let head = try #require(try foreign.records.replica.versionVector().positions[LogID(origin: foreign.records.replica.identity.origin, scope: .shared)])
        let forged = LogEntry(signer: foreign.records.replica.signer, scope: .shared, seq: head.seq + 1, previousHash: head.hash,
            hlc: HLC(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000), counter: 0),
            change: Change(rows: [RowWrite(table: RecordKind.initiative.table.id, key: try #require(RecordID(hex: mine)).bytes,
                                           cells: [CellWrite(column: 4, value: .text("Taken"))])]))
        let report = try hub.records.replica.apply(try foreign.records.replica.entries(after: VersionVector(), scopes: [.shared]) + [forged],
                                                    source: "RYJ/hub")
        #expect(report.refused == 1)
        try hub.records.replica.recordSync(SyncRecord(peer: "ryj", address: "127.0.0.1:7744", role: "client", startedMilliseconds: 1_900_000_000_000,
                                                      seconds: 0.5, direction: "both", sent: 0, received: 3, rawBytes: 10, wireBytes: 20,
                                                      conflicts: 0, outcome: "ok", peerVector: nil, refused: 1))
        let shown = hub.run("audit")
        #expect(shown.outcome == .success && shown.out.contains("ryj") && shown.out.contains("does not own") && shown.out.contains("RYJ/hub"))
        let csv = hub.root.appendingPathComponent("audit.csv").path
        #expect(hub.run("audit export \(csv)").out.contains("wrote 1 session, 1 administrative act and 1 refusal"))
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        #expect(text.hasPrefix("section,time,peer,address,role,direction,sent,received,refused,conflicts,seconds,outcome\r\n"))
        #expect(text.contains("\r\nrefusal,") && text.contains("does not own"))
        #expect(hub.run("audit export \(csv)").err.contains("exists"))
        let json = hub.root.appendingPathComponent("audit.json").path
        #expect(hub.run("audit export \(json)").outcome == .success)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        #expect((parsed["refusals"] as? [[String: String]])?.first?["reason"]?.contains("does not own") == true)
        #expect((parsed["sessions"] as? [[String: String]])?.first?["refused"] == "1")
        #expect(try hub.records.record(.initiative, try #require(RecordID(hex: mine))).text("title") == "Ours")
        #expect(try hub.records.replica.verify().isSound)
    }
}

@Suite("Bundle commands")
struct BundleCommandTests {
    /// A hub and its ward-5, enrolled through the shell (`enrol --out`, `enrol --accept`).
    static func hubAndWard() throws -> (ShellHarness, ShellHarness) {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        let ward = try ShellHarness(site: "ward-5", membership: .joining(key.fingerprint))
        let file = hub.root.appendingPathComponent("ward-5.enrolment").path
        #expect(hub.run("enrol \(ward.run("enrol --request").out.trimmingCharacters(in: .whitespacesAndNewlines)) --out \(file)").outcome == .success)
        #expect(ward.run("enrol --accept \(file)").outcome == .success)
        return (hub, ward)
    }

    @Test("a receipt for a bundle made too long ago: refused with a way on when nothing else is known, else the last vector known is used")
    func evictedReceipt() throws {
        let (hub, ward) = try Self.hubAndWard()
        _ = try ward.addInitiative("Ysbyty Gwynedd: £5 at 37°C")
        func bundle(_ name: String) -> String { ward.root.appendingPathComponent("\(name).bundle").path }
        #expect(ward.run("bundle export \(bundle("first")) --for hub --all").outcome == .success)
        #expect(hub.run("bundle import \(bundle("first"))").outcome == .success)
        // The ward makes as many bundles again as it keeps expectations of: the first one's is set aside.
        for index in 0..<Replica.bundleExpectationsKept {
            #expect(ward.run("bundle export \(bundle("more-\(index)")) --for hub --all").outcome == .success)
        }
        _ = try ward.addInitiative("Café discharge lounge")
        let refused = ward.run("bundle export \(bundle("late")) --for hub --since-vector \(bundle("first")).receipt")
        #expect(refused.outcome != .success && refused.err.contains("too long ago") && refused.err.contains("--all"), "\(refused.err)")
        #expect(!FileManager.default.fileExists(atPath: bundle("late")))
        // A fresh receipt tells the ward what the hub holds; the old one then falls back to that.
        #expect(hub.run("bundle import \(bundle("more-\(Replica.bundleExpectationsKept - 1)"))").outcome == .success)
        #expect(ward.run("bundle export \(bundle("next")) --for hub --since-vector \(bundle("more-\(Replica.bundleExpectationsKept - 1)")).receipt").outcome == .success)
        let fallback = ward.run("bundle export \(bundle("late-2")) --for hub --since-vector \(bundle("first")).receipt")
        #expect(fallback.outcome == .success && fallback.out.contains("too long ago") && fallback.out.contains("1 entry "), "\(fallback.out) \(fallback.err)")
        #expect(hub.run("bundle import \(bundle("late-2"))").outcome == .success)
        #expect(Set(try hub.records.list(.initiative).map { $0.text("title") }) == ["Ysbyty Gwynedd: £5 at 37°C", "Café discharge lounge"])
    }

    @Test("export, show, plan, import and the receipt round trip, from the shell")
    func roundTrip() throws {
        let (hub, ward) = try Self.hubAndWard()
        _ = try ward.addInitiative("Carried by hand")
        let bundle = ward.root.appendingPathComponent("to-hub.bundle").path
        #expect(ward.run("bundle export \(bundle) --for hub").err.contains("--since-vector"))
        let exported = ward.run("bundle export \(bundle) --for hub --all")
        #expect(exported.outcome == .success && exported.out.contains("for RXH/hub"))
        #expect(ward.run("bundle export \(bundle) --for hub --all").err.contains("exists"))
        let shown = hub.run("bundle show \(bundle)")
        #expect(shown.out.contains("RXH/ward-5") && shown.out.contains("valid") && shown.out.contains("RXH/ward-5 trust"))
        let planned = hub.run("bundle plan \(bundle)")
        #expect(planned.out.contains("nothing: this was a dry run") && planned.out.contains("would take"))
        #expect(try hub.records.list(.initiative).isEmpty)
        #expect(hub.run("bundle verify \(bundle)").out.contains("ok"))
        let imported = hub.run("bundle import \(bundle)")
        #expect(imported.outcome == .success && imported.out.contains("receipt"))
        #expect(try hub.records.list(.initiative).map { $0.text("title") } == ["Carried by hand"])
        // The receipt goes back; the next export carries only what is new.
        _ = try ward.addInitiative("Second trip")
        let next = ward.root.appendingPathComponent("to-hub-2.bundle").path
        #expect(ward.run("bundle export \(next) --for hub --since-vector \(bundle).receipt").out.contains("1 entry "))
        // A ward cannot read a receipt that is not from the bundle's target.
        #expect(ward.run("bundle export \(next).x --for ward-5 --since-vector \(bundle).receipt").err.contains("not from"))
        #expect(hub.run("bundle import \(next)").outcome == .success)
        #expect(try hub.records.list(.initiative).count == 2)
        // Damaged files are refused and change nothing.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: next))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: next + ".bad"))
        #expect(hub.run("bundle import \(next).bad").err.contains("altered"))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: next + ".short"))
        #expect(hub.run("bundle import \(next).short").err.contains("cut short"))
        #expect(try hub.records.list(.initiative).count == 2)
    }
}
