import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import Testing

/// The QI records as people work with them: adaptations like the other records, an
/// initiative shown with everything that hangs off it, sharing it whole, PDSA cycle numbers,
/// paragraphs and dates in learning entries, and list options that say why they are refused.
@Suite("QI records in the shell")
struct RecordCommandTests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("adaptations are listed, shown, changed, deleted and restored like the other records")
    func adaptations() throws {
        let h = try ShellHarness()
        let source = String(try h.addInitiative("Falls bundle").prefix(8))
        let made = try Self.json(h.run("adapt \(source) --title 'Falls bundle, Ysbyty Gwynedd' --nature tailor --reason staffing --json").out)
        let id = String(try #require((made["adaptation"] as? [String: Any])?["id"] as? String).prefix(8))

        #expect(h.run("adaptation list").out.contains(id))
        #expect(h.run("adaptation show \(id)").out.contains("tailor"))
        let changed = h.run("adaptation set \(id) --nature substitute --fidelity consistent --reason estate --remove-reason staffing --json")
        #expect(changed.outcome == .success, "\(changed.err)")
        let fields = try #require(try Self.json(changed.out)["fields"] as? [String: Any])
        #expect(fields["nature"] as? String == "substitute" && fields["fidelity"] as? String == "consistent")
        #expect((try Self.json(changed.out)["tags"] as? [String: [String]])?["reason"] == ["estate"])
        #expect(h.run("adaptation set \(id) --nature sideways").err.contains("tailor"), "a bad choice lists the good ones")

        #expect(h.run("adaptation delete \(id)").outcome == .success)
        #expect(!h.run("adaptation list").out.contains(id))
        #expect(h.run("adaptation list --deleted").out.contains(id))
        #expect(h.run("adaptation delete \(id)").err.contains("already deleted"))
        #expect(h.run("adaptation restore \(id)").outcome == .success)
        #expect(h.run("adaptation list").out.contains(id))
        #expect(h.run("help adaptation").out.contains("restore"))
    }

    @Test("initiative show lists its PDSA cycles, learning entries and adaptations, and those made from it")
    func initiativeShowsRelated() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Reduce falls").prefix(8))
        #expect(h.run("pdsa add \(id) --change-idea 'Bed rails at night'").outcome == .success)
        #expect(h.run("log add 'Huddles at 07:45 helped' --initiative \(id)").outcome == .success)
        #expect(h.run("adapt \(id) --title 'Falls, Ward 7 (nights)'").outcome == .success)
        let shown = h.run("initiative show \(id)").out
        for expected in ["PDSA cycles (1)", "Bed rails at night", "learning entries (1)", "Huddles at 07:45 helped",
                         "adaptations made from it (1)", "Falls, Ward 7 (nights)"] {
            #expect(shown.contains(expected), "initiative show lacks '\(expected)':\n\(shown)")
        }
        let json = try Self.json(h.run("initiative show \(id) --json").out)
        #expect((json["pdsa"] as? [Any])?.count == 1 && (json["learning"] as? [Any])?.count == 1)
        #expect((json["adapted_elsewhere"] as? [Any])?.count == 1 && (json["adaptations"] as? [Any])?.isEmpty == true)
    }

    @Test("share of an initiative says what is left unshared; --with-related shares it all in one change")
    func shareWithRelated() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Reduce falls").prefix(8))
        #expect(h.run("pdsa add \(id) --change-idea 'Bed rails'").outcome == .success)
        #expect(h.run("pdsa add \(id) --change-idea 'Night lights'").outcome == .success)
        #expect(h.run("log add 'Huddles helped' --initiative \(id)").outcome == .success)
        let origin = h.records.replica.identity.origin
        let sharedLog = LogID(origin: origin, scope: .shared)

        let plain = h.run("share \(id)")
        #expect(plain.outcome == .success)
        #expect(plain.out.contains("Not shared with it: 2 PDSA cycles and 1 learning entry"), "\(plain.out)")
        #expect(plain.out.contains("share \(id) --with-related"))
        #expect(h.run("unshare \(id)").outcome == .success)

        let before = try h.records.replica.versionVector().seq(of: sharedLog)
        let whole = h.run("share \(id) --with-related")
        #expect(whole.outcome == .success, "\(whole.err)")
        #expect(!whole.out.contains("not shared"))
        #expect(try h.records.replica.versionVector().seq(of: sharedLog) == before + 1, "one change shares them all")
        for kind in [RecordKind.pdsa, .learning] {
            #expect(try h.records.list(kind, filter: ListFilter()).allSatisfy { $0.scope == .shared })
        }
    }

    @Test("share --with-related checks every record for patient data first and shares nothing when one holds it")
    func shareWithRelatedGuard() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Reduce falls").prefix(8))
        #expect(h.run("log add 'Mrs Jones in bed 4 fell, NHS 943 476 5919' --initiative \(id)").outcome == .success)
        let before = try h.records.replica.versionVector()
        let refused = h.run("share \(id) --with-related")
        #expect(refused.outcome != .success)
        #expect(refused.err.contains("NHS number"), "\(refused.err)")
        #expect(try h.records.replica.versionVector() == before)
    }

    @Test("--limit below 1 and --from after --to say why they are refused", arguments: [
        ("initiative list --limit 0", "--limit 0"), ("log list --limit=-1", "--limit -1"), ("adaptation list --limit 0", "--limit 0"),
        ("log list --from 2026-03-01 --to 2026-01-01", "is after --to"), ("audit --limit 0", "at least 1"),
    ])
    func listOptions(line: String, expected: String) throws {
        let h = try ShellHarness()
        let result = h.run(line)
        #expect(result.outcome != .success)
        #expect(result.err.contains(expected), "\(line): \(result.err)")
    }

    @Test("PDSA cycle numbers are unique within an initiative: a taken number is refused on add, set and restore")
    func uniqueNumbers() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Reduce falls").prefix(8))
        let other = String(try h.addInitiative("Sepsis screening").prefix(8))
        #expect(h.run("pdsa add \(id) --change-idea 'Bed rails'").outcome == .success)
        let second = try Self.json(h.run("pdsa add \(id) --change-idea 'Night lights' --json").out)
        let cycle = String(try #require(second["id"] as? String).prefix(8))
        #expect((second["fields"] as? [String: Any])?["number"] as? Int == 2)

        let before = try h.records.replica.versionVector()
        let duplicate = h.run("pdsa add \(id) --change-idea 'Alarms' --number 1")
        #expect(duplicate.err.contains("already has a PDSA cycle #1") && duplicate.err.contains("next free number is 3"), "\(duplicate.err)")
        #expect(h.run("pdsa set \(cycle) --number 1").err.contains("already has a PDSA cycle #1"))
        #expect(try h.records.replica.versionVector() == before, "refusals change nothing")
        #expect(h.run("pdsa add \(other) --change-idea 'Screen at triage' --number 1").outcome == .success, "another initiative has its own numbers")
        #expect(h.run("pdsa set \(cycle) --number 7").outcome == .success)

        // A deleted cycle keeps its number; a new cycle does not take it, and a restore that
        // would clash asks for a new number.
        #expect(h.run("pdsa delete \(cycle)").outcome == .success)
        let third = try Self.json(h.run("pdsa add \(id) --change-idea 'Sensor mats' --json").out)
        #expect((third["fields"] as? [String: Any])?["number"] as? Int == 8)
        #expect(h.run("pdsa set \(String((third["id"] as! String).prefix(8))) --number 7").outcome == .success)
        let restore = h.run("pdsa restore \(cycle)")
        #expect(restore.err.contains("pdsa restore \(cycle) --number N"), "\(restore.err)")
        #expect(h.run("pdsa restore \(cycle) --number 9").outcome == .success)
        #expect(try h.records.conflicts().isEmpty)
    }

    @Test("two sites that each add cycle 4 offline see a conflict after sync, settled by renumbering one")
    func numberClashAfterSync() throws {
        let key = TrustKey()
        let a = try ShellHarness(site: "hub", kind: .hub, trustKey: key), b = try ShellHarness(site: "ward-2", trustKey: key)
        try a.meet(b)
        let id = String(try a.addInitiative("Reduce falls").prefix(8))
        for _ in 0..<3 { #expect(a.run("pdsa add \(id) --change-idea 'Earlier cycle'").outcome == .success) }
        try b.records.replica.apply(try a.records.replica.entries(after: VersionVector()))
        #expect(a.run("pdsa add \(id) --change-idea 'Bed rails at the hub'").outcome == .success)
        #expect(b.run("pdsa add \(id) --change-idea 'Night lights on the ward'").outcome == .success)
        try b.records.replica.apply(try a.records.replica.entries(after: b.records.replica.versionVector()))
        try a.records.replica.apply(try b.records.replica.entries(after: a.records.replica.versionVector()))

        for side in [a, b] {
            let listed = side.run("conflicts")
            #expect(listed.out.contains("number") && listed.out.contains("Bed rails at the hub") && listed.out.contains("Night lights on the ward"),
                    "\(listed.out)")
            #expect(listed.out.contains("pdsa set ID --number N"))
            let json = try #require(try JSONSerialization.jsonObject(with: Data(side.run("conflicts --json").out.utf8)) as? [[String: Any]])
            #expect(json.count == 1 && json[0]["type"] as? String == "shared-number" && (json[0]["values"] as? [Any])?.count == 2)
        }
        let cycles = try a.records.list(.pdsa, filter: ListFilter()).filter { $0.text("number") == "4" }
        #expect(cycles.count == 2 && cycles.allSatisfy { $0.conflictedFields.contains("number") })
        let ward = try #require(cycles.first { $0.text("change-idea").contains("ward") })
        #expect(a.run("pdsa show \(ward.id.short)").out.contains("conflict"))
        #expect(a.run("resolve \(ward.id.short) number --use 1").err.contains("--value N"))
        #expect(a.run("resolve \(ward.id.short) number --value 4").err.contains("already has a PDSA cycle #4"))
        #expect(a.run("resolve \(ward.id.short) number --value 5").outcome == .success)
        #expect(try a.records.conflicts().isEmpty)
        try b.records.replica.apply(try a.records.replica.entries(after: b.records.replica.versionVector()))
        #expect(try b.records.conflicts().isEmpty)
        #expect(try b.records.record(.pdsa, ward.id).text("number") == "5")
    }

    @Test("learning text keeps paragraphs typed with \\n in double quotes; whitespace-only text is refused")
    func paragraphs() throws {
        let h = try ShellHarness()
        let made = h.run("log add \"Huddles at 07:45 helped.\\nNext: try them on nights, 18°C in the day room.\" --json")
        #expect(made.outcome == .success, "\(made.err)")
        let fields = try #require(try Self.json(made.out)["fields"] as? [String: Any])
        #expect(fields["text"] as? String == "Huddles at 07:45 helped.\nNext: try them on nights, 18°C in the day room.")
        let id = String(try #require(try Self.json(made.out)["id"] as? String).prefix(8))
        let shown = h.run("log show \(id)").out
        #expect(shown.contains("Huddles at 07:45 helped.\n") && shown.contains("Next: try them on nights"), "\(shown)")
        #expect(!h.run("log list").out.contains("helped.\nNext"), "a table keeps each entry on one line")
        #expect(h.run("log add \"  \\n \\t \"").err.contains("only spaces"))
    }

    @Test("a learning date after today is refused unless --allow-future")
    func futureDates() throws {
        let h = try ShellHarness()
        let tomorrow = DateText.today(now: Date().addingTimeInterval(86_400 * 2))
        let refused = h.run("log add 'Planned away day' --date \(tomorrow)")
        #expect(refused.err.contains("in the future") && refused.err.contains("--allow-future"), "\(refused.err)")
        #expect(h.run("log add 'Planned away day' --date \(tomorrow) --allow-future").outcome == .success)
        let id = String(try h.records.list(.learning, filter: ListFilter())[0].id.short)
        #expect(h.run("log set \(id) --date 2099-01-01").err.contains("in the future"))
        #expect(h.run("log set \(id) --date \(DateText.today())").outcome == .success)
        #expect(h.run("log add 'Today' --date \(DateText.today())").outcome == .success, "today is not the future")
    }
}
