import Foundation
import QISyncCore
import QISyncDomain
@testable import QISyncShell
@testable import QISyncStore
import Testing

/// A command that fails changes nothing: every write command, with each kind of invalid
/// option, leaves the replica's logs, tables and directory exactly as they were.
@Suite("A failed command changes nothing")
struct FailedCommandTests {
    /// Bad lines; I, P, L, A and M stand for an initiative, PDSA cycle, learning entry, adaptation and measure.
    static let lines = [
        "initiative add", "initiative add --title ''", "initiative add --title x --score 7", "initiative add --title x --status nope",
        "initiative add --title x --method magic", "initiative add --title x --team " + String(repeating: "é", count: 201),
        "initiative add --title x --frobnicate 1",
        "initiative set I", "initiative set I --score 9", "initiative set I --status closed --score 11", "initiative set 0000 --title x",
        "initiative restore I", "initiative delete ffffffff",
        "pdsa add I", "pdsa add I --change-idea x --as-planned perhaps", "pdsa add ffff --change-idea x", "pdsa add I --change-idea x --number -2",
        "pdsa set P --as-planned maybe", "pdsa close P --act maybe", "pdsa close P --act adopt --as-planned sort-of",
        "log add ''", "log add '   '", "log add x --sofft S9", "log add x --skill juggling", "log add x --effect great",
        "log add x --date 2026-13-01", "log add x --initiative nope", "log add x --pdsa I",
        "log set L --effect helped --sofft S9", "log set L --date yesterday",
        "adapt I --title y --nature tweak", "adapt I --title y --fidelity total", "adapt I --title y --reason weather",
        "adapt I --title y --into I", "adapt I --into ffffffff", "adapt --title y", "adapt I --title y --when never",
        "adapt I --into I --nature tailor",
        "share I --override-pii", "share ffffffff", "unshare I",
        "resolve I title --use 1", "resolve I title --use 1 --value x", "resolve I exists --keep --delete",
        "enrol not-a-request", "revoke nobody", "trust add RYJ 1234", "trust add rx 0000", "trust remove RYJ",
        "peer add hub 127.0.0.1:99999", "peer add 'bad name' 127.0.0.1:1",
        "bundle import /nonexistent.bundle", "bundle export /tmp/x.bundle --for nobody --all",
        "measure add I --name x --unit furlongs", "measure add I", "measure set M --target lots", "measure add P --name x",
        "data add M 2026-13-01 4", "data add M 2025-01-01 x", "data add M 2025-01-01 5/0", "data add M 2025-01-01 5/", "data add M 2025-01-01 -",
        "data add I 2025-01-01 4", "data add M 2099-01-01 4", "data add M 2025-01-01 4 --note 'NHS 943 476 5919'", "data import M /nonexistent.csv",
        "event add M", "event add M --rebase 2025-01-01 --baseline 3", "event add M --annotate 2025-01-01", "event add M --baseline 1",
        "event add M --text 'no date'", "chart M --rules wizard", "chart M --chart pie", "chart M --rebase someday", "chart M --width 5",
        "report I", "report learning --by mood", "report learning --since yesterday", "redact I title", "redact I status --reason 'a long enough reason'",
    ]

    @Test("each bad line fails and the replica is unchanged", arguments: lines)
    func badLine(line: String) throws {
        let h = try ShellHarness(site: "hub", kind: .hub)
        let initiative = try h.addInitiative("Reduce falls")
        let pdsa = try #require(try h.records.add(.pdsa, fields: ["initiative": initiative, "change-idea": "Bed rails"]).id.hex)
        let learning = try h.records.add(.learning, fields: ["text": "Huddles helped"]).id.hex
        let adaptation = try h.records.adapt(source: initiative, sourceTrust: nil, sourceID: nil, sourceHash: nil, into: nil, title: "Falls, nights",
                                             fields: [:], reasons: []).adaptation.id.hex
        let measure = try h.records.add(.measure, fields: ["initiative": initiative, "name": "Falls per 1,000 bed days"]).id.hex
        _ = try h.records.addDataPoint(measure: measure, period: "2025-01-01", valueText: "4", note: nil, excluded: nil)
        let replica = h.records.replica
        let before = (try replica.versionVector(), try replica.canonicalState(), try replica.directoryRecords(), try replica.peers())
        var concrete = line
        for (placeholder, id) in [("I", initiative), ("P", pdsa), ("L", learning), ("A", adaptation), ("M", measure)] {
            concrete = concrete.replacingOccurrences(of: " \(placeholder) ", with: " \(id.prefix(8)) ")
            if concrete.hasSuffix(" \(placeholder)") { concrete = String(concrete.dropLast(2)) + " \(id.prefix(8))" }
        }
        let result = h.run(concrete)
        #expect(result.outcome != .success, "'\(concrete)' should fail")
        #expect(!result.err.isEmpty, "'\(concrete)' should say why")
        #expect(try replica.versionVector() == before.0, "'\(concrete)' wrote to a log")
        #expect(try replica.canonicalState() == before.1, "'\(concrete)' changed the tables")
        #expect(try replica.directoryRecords() == before.2, "'\(concrete)' changed the directory")
        #expect(try replica.peers() == before.3, "'\(concrete)' changed the peers")
    }
}
