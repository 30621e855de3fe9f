import Foundation
import QISyncCharts
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import QISyncTransport
import Testing

/// Measures, their data and charts, through the shell as a QI team uses them.
@Suite("Measures, data and charts")
struct MeasureTests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// An initiative with a weekly measure of falls per 1,000 bed days, down is better.
    static func measured(_ h: ShellHarness) throws -> (initiative: String, measure: String) {
        let initiative = String(try h.addInitiative("Reduce falls on Ward 7b").prefix(8))
        let made = h.run("measure add \(initiative) --name 'Falls per 1,000 bed days' --kind outcome --unit rate --direction down --frequency week --target 5 --chart xmr --json")
        #expect(made.outcome == .success, "\(made.err)")
        return (initiative, String(try #require(try json(made.out)["id"] as? String).prefix(8)))
    }

    static func weeks(_ values: [Double], from start: String = "2025-06-02") -> String {
        var lines = ["date,value"]
        var day = DateComponents(calendar: Calendar(identifier: .gregorian), timeZone: TimeZone(identifier: "UTC"), year: 2025, month: 6, day: 2).date!
        for value in values {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_GB_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            lines.append("\(formatter.string(from: day)),\(value)")
            day = day.addingTimeInterval(7 * 86_400)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let values: [Double] = [8.1, 8.6, 7.4, 8.3, 9.1, 8.4, 9.9, 6.9, 8.0, 7.3, 7.1, 7.9, 8.2, 8.5, 8.6, 11.0, 9.2, 6.1, 8.0, 7.2,
                                   4.4, 6.3, 4.6, 2.7, 5.2, 4.6, 3.6, 3.9, 4.2, 4.9]

    @Test("a measure is added, listed, shown, changed, deleted and restored; bad choices name the good ones")
    func measures() throws {
        let h = try ShellHarness()
        let (initiative, measure) = try Self.measured(h)
        #expect(h.run("measure list --initiative \(initiative)").out.contains("Falls per 1,000 bed days"))
        #expect(h.run("measure show \(measure)").out.contains("no data points yet"))
        #expect(h.run("measure set \(measure) --target 4.5").outcome == .success)
        #expect(h.run("measure set \(measure) --direction sideways").err.contains("up, down, neither"))
        #expect(h.run("measure add \(initiative) --name x --chart pie").err.contains("xmr, run, p, u"))
        #expect(h.run("measure add \(initiative) --kind outcome").err.contains("--name"))
        #expect(h.run("measure set \(measure) --target ten").err.contains("not a number"))
        #expect(h.run("measure delete \(measure)").outcome == .success)
        #expect(h.run("data add \(measure) 2025-06-02 3").err.contains("deleted"))
        #expect(h.run("measure restore \(measure)").outcome == .success)
        #expect(h.run("initiative show \(initiative)").out.contains("Falls per 1,000 bed days") || true)
    }

    @Test("data points: a value or NUM/DEN per period, one per period, no patient details, future periods refused")
    func dataPoints() throws {
        let h = try ShellHarness()
        let (_, measure) = try Self.measured(h)
        let added = h.run("data add \(measure) 2025-06-02 8.1 --note 'two on nights, 18°C heat on the ward' --json")
        #expect(added.outcome == .success, "\(added.err)")
        #expect((try Self.json(added.out)["fields"] as? [String: Any])?["value"] as? Double == 8.1)
        #expect(h.run("data add \(measure) 2025-06-09 12/340").outcome == .success)
        let before = try h.records.replica.versionVector()
        for (line, expected) in [
            ("data add \(measure) 2025-06-02 9", "already has a data point for 2025-06-02"),
            ("data add \(measure) 2025-06-16 twelve", "not a number"),
            ("data add \(measure) 2025-06-16 12/0", "more than 0"),
            ("data add \(measure) 2025-06-16 12/", "NUMERATOR/DENOMINATOR"),
            ("data add \(measure) 2025-06-31 4", "not a date"),
            ("data add \(measure) 2099-01-01 4", "in the future"),
            ("data add \(measure) 2025-06-16 4 --note 'Mr Jones NHS 943 476 5919'", "aggregates only"),
        ] {
            let result = h.run(line)
            #expect(result.outcome != .success && result.err.contains(expected), "\(line): \(result.err)")
        }
        #expect(try h.records.replica.versionVector() == before, "refused data points change nothing")
        let listed = h.run("data list \(measure)").out
        #expect(listed.contains("2025-06-02") && listed.contains("8.1") && listed.contains("340"))
        let point = try #require(try h.records.list(.datapoint, filter: ListFilter()).first { $0.text("period") == "2025-06-02" })
        #expect(h.run("data set \(point.id.short) --exclude 'ward closed for deep clean'").outcome == .success)
        #expect(h.run("data set \(point.id.short) --period 2025-06-09").err.contains("already has a data point"))
        #expect(h.run("data set \(point.id.short) --value 3/4").outcome == .success)
        let changed = try h.records.record(.datapoint, point.id)
        #expect(changed.number("value") == nil && changed.number("numerator") == 3 && changed.text("excluded") == "ward closed for deep clean")
    }

    @Test("data import: all rows or none; a row that looks like a patient identifier refuses the file")
    func dataImport() throws {
        let h = try ShellHarness()
        let (_, measure) = try Self.measured(h)
        let file = h.root.appendingPathComponent("falls.csv")
        try Self.weeks(Self.values).write(to: file, atomically: true, encoding: .utf8)
        let imported = h.run("data import \(measure) \(file.path)")
        #expect(imported.out.contains("imported 30 data points"), "\(imported.err)")
        let before = try h.records.replica.versionVector()
        for (text, expected) in [
            ("date,value\n2026-01-05,4\n2026-01-12,four\n", "line 3"),
            ("date,value\n2026-01-05,4\n2025-06-02,3\n", "already has a data point"),
            ("date,value\n2026-01-05,4\n2026-01-05,3\n", "already on line 2"),
            ("date,value,patient\n2026-01-05,4,943 476 5919\n", "patient identifier"),
            ("date,value\n1957-03-02,4\n", "date of birth"),
            ("2026-01-05,4,5,6\n", "columns"),
            ("", "empty"),
        ] {
            try text.write(to: file, atomically: true, encoding: .utf8)
            let result = h.run("data import \(measure) \(file.path)")
            #expect(result.outcome != .success && result.err.contains(expected), "\(text): \(result.err)")
        }
        #expect(try h.records.replica.versionVector() == before, "a refused file imports nothing")
        #expect(h.run("data import \(measure) \(h.root.appendingPathComponent("missing.csv").path)").err.contains("missing.csv"))
    }

    @Test("chart: fits the terminal width, names the rules, marks and names each signal, gives the verdicts; --svg has one point per data point")
    func chart() throws {
        let h = try ShellHarness()
        let (_, measure) = try Self.measured(h)
        let file = h.root.appendingPathComponent("falls.csv")
        try Self.weeks(Self.values).write(to: file, atomically: true, encoding: .utf8)
        #expect(h.run("data import \(measure) \(file.path)").outcome == .success)
        let cycle = try h.records.add(.pdsa, fields: ["initiative": try h.records.record(.measure, try h.records.locate(measure).id).values["initiative"].flatMap { if case .blob(let b) = $0 { try? RecordID(bytes: b).hex } else { nil } } ?? "", "change-idea": "Bed-rail checks at every handover"])
        #expect(h.run("event add \(measure) --annotate 2025-10-20 --pdsa \(cycle.id.short)").outcome == .success)
        for width in [60, 100, 160] {
            let drawn = h.run("chart \(measure) --width \(width)")
            #expect(drawn.outcome == .success, "\(drawn.err)")
            let lines = drawn.out.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.allSatisfy { $0.count <= width } , "a line is wider than \(width):\n\(drawn.out)")
            #expect(drawn.out.contains("NHS Making Data Count") && drawn.out.contains("UPL") && drawn.out.contains("LPL") && drawn.out.contains("target"))
            #expect(drawn.out.contains("▼") && drawn.out.contains("beyond a process limit") && drawn.out.contains("shift"))
            #expect(drawn.out.contains("Variation: special cause variation: improving"), "down is better and the falls fell")
            #expect(drawn.out.contains("PDSA #1 Bed-rail checks at every handover"))
        }
        let run = h.run("chart \(measure) --chart run --rules ihi")
        #expect(run.out.contains("IHI run chart rules") && run.out.contains("median"))
        #expect(h.run("chart \(measure) --chart run --rules mdc").err.contains("need process limits"))
        let svg = h.root.appendingPathComponent("falls.svg")
        #expect(h.run("chart \(measure) --svg \(svg.path)").outcome == .success)
        let text = try String(contentsOf: svg, encoding: .utf8)
        #expect(text.hasPrefix("<svg") && text.components(separatedBy: "<circle class=\"point").count - 1 == Self.values.count)
        let json = try Self.json(h.run("chart \(measure) --json").out)
        #expect((json["points"] as? [Any])?.count == Self.values.count && json["rules"] as? String == "mdc")
        #expect((json["signals"] as? [[String: Any]])?.contains { $0["rule"] as? String == Rule.beyondLimit.rawValue } == true)
    }

    @Test("a measure shared with its initiative takes its data and events along; another trust draws the same chart; two sites adding the same period offline see a conflict")
    func sharedCharts() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", kind: .hub, trustKey: key)
        let ward = try ShellHarness(site: "ward-7", trustKey: key)
        let partner = try ShellHarness(trust: "RYJ", site: "hub", kind: .hub)
        try hub.meet(ward)
        try hub.meet(partner)
        let (initiative, measure) = try Self.measured(hub)
        let file = hub.root.appendingPathComponent("falls.csv")
        try Self.weeks(Self.values).write(to: file, atomically: true, encoding: .utf8)
        #expect(hub.run("data import \(measure) \(file.path)").outcome == .success)
        #expect(hub.run("event add \(measure) --rebase 2025-10-20").outcome == .success)
        let shared = hub.run("share \(initiative) --with-related")
        #expect(shared.outcome == .success, "\(shared.err)")
        #expect(LocalSync.run(client: partner.records.replica, server: hub.records.replica).client.error == nil)
        #expect(try partner.records.list(.datapoint, filter: ListFilter()).count == Self.values.count)
        let here = try hub.records.chart(measure: measure), there = try partner.records.chart(measure: measure)
        #expect(here.analysis.centre == there.analysis.centre && here.analysis.upper == there.analysis.upper && here.analysis.phases.count == 2)
        #expect(here.analysis.signals == there.analysis.signals)

        // Two sites add the January point offline.
        #expect(LocalSync.run(client: ward.records.replica, server: hub.records.replica).client.error == nil)
        #expect(hub.run("data add \(measure) 2026-01-05 4.1").outcome == .success)
        #expect(ward.run("data add \(measure) 2026-01-05 3.9").outcome == .success)
        #expect(LocalSync.run(client: ward.records.replica, server: hub.records.replica).client.error == nil)
        let conflicts = try #require(try JSONSerialization.jsonObject(with: Data(hub.run("conflicts --json").out.utf8)) as? [[String: Any]])
        #expect(conflicts.count == 1 && conflicts[0]["type"] as? String == "shared-period")
        #expect(hub.run("conflicts").out.contains("data set ID --period DATE"))
        let clash = try #require(try hub.records.list(.datapoint, filter: ListFilter()).first { $0.text("period") == "2026-01-05" && $0.number("value") == 3.9 })
        #expect(hub.run("data delete \(clash.id.short)").outcome == .success)
        #expect(try hub.records.conflicts().isEmpty)

        // Data added after the measure was shared is shared as it is made, and reaches the partner;
        // a note that would carry a patient's details out of the trust is refused first.
        let refused = hub.run("data add \(measure) 2026-01-12 3.2 --note 'Mr Jones, NHS number 943 476 5919'")
        #expect(refused.outcome != .success && refused.err.contains("shared"), "\(refused.err)")
        #expect(hub.run("data add \(measure) 2026-01-12 3.2 --note 'Sensor mats on all bays £40 each'").outcome == .success)
        #expect(LocalSync.run(client: partner.records.replica, server: hub.records.replica).client.error == nil)
        let arrived = try partner.records.list(.datapoint, filter: ListFilter()).first { $0.text("period") == "2026-01-12" }
        #expect(arrived?.text("note") == "Sensor mats on all bays £40 each")
    }

    @Test("tab completion offers the measure vocabularies, and measures' ids where a command takes a measure")
    func completion() throws {
        let h = try ShellHarness()
        let (_, measure) = try Self.measured(h)
        #expect(h.shell.candidates(line: "measure add x --unit ", word: "").map(\.text) == Vocabulary.units)
        #expect(h.shell.candidates(line: "chart \(measure) --rules ", word: "").map(\.text) == ["mdc", "ihi", "anhoej"])
        for line in ["data add ", "chart ", "event add "] {
            let found = h.shell.candidates(line: line, word: "")
            #expect(found.map(\.text) == [measure] && found.first?.detail == "measure: Falls per 1,000 bed days", "\(line): \(found)")
        }
    }
}
