import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncShell
@testable import QISyncStore
import Testing

/// A shell on a temporary replica, capturing what it prints.
final class ShellHarness {
    let root: URL
    let records: QIRecords
    let shell: Shell
    var out: [String] = []
    var err: [String] = []

    /// A replica of `trust`; replicas given the same `trustKey` belong to the same trust.
    init(trust: String = "RXH", site: String = "ward-7", kind: SiteKind = .ward, trustKey: TrustKey = TrustKey(),
         membership: TrustMembership? = nil) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-shell-\(UUID().uuidString)")
        records = try QIRecords.create(home: root, trustCode: trust, trustName: "Test Trust", siteName: site, kind: kind,
                                       membership: membership ?? .founding(trustKey))
        var captureOut: (String) -> Void = { _ in }
        var captureErr: (String) -> Void = { _ in }
        shell = Shell(records: records, out: OutputSink { captureOut($0) }, err: OutputSink { captureErr($0) })
        captureOut = { [unowned self] in out.append($0) }
        captureErr = { [unowned self] in err.append($0) }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Lets two replicas accept each other, as after a first sync: each pins the other's
    /// trust (when it differs) and holds the other's enrolment.
    func meet(_ other: ShellHarness) throws {
        for (a, b) in [(self, other), (other, self)] {
            if let pin = try b.records.replica.trustPins().first(where: \.isOwn), pin.code != a.records.replica.identity.trustCode {
                try a.records.replica.pinTrust(code: pin.code, fingerprint: pin.fingerprint)
            }
        }
        try records.replica.importDirectory(try other.records.replica.directoryRecords())
        try other.records.replica.importDirectory(try records.replica.directoryRecords())
    }

    /// Runs lines as a script; returns the exit code.
    @discardableResult
    func script(_ lines: [String], keepGoing: Bool = false) -> Int32 {
        shell.runScript(Data(lines.joined(separator: "\n").utf8), keepGoing: keepGoing)
    }

    /// Runs one line and returns what it printed.
    func run(_ line: String) -> (outcome: Shell.Outcome, out: String, err: String) {
        out = []
        err = []
        let outcome = shell.execute(line)
        return (outcome, out.joined(separator: "\n"), err.joined(separator: "\n"))
    }

    /// Adds an initiative through the shell and returns its full id.
    func addInitiative(_ title: String) throws -> String {
        let result = run("initiative add --title '\(title)' --json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        return try #require(json["id"] as? String)
    }
}

@Suite("Shell")
struct ShellTests {
    @Test("a script runs every line and exits 0")
    func scriptRuns() throws {
        let h = try ShellHarness()
        let code = h.script([
            "# a comment", "",
            "initiative add --title \"Reduce falls on ward 7\" --score 2.5 --method lean",
            "initiative list",
        ])
        #expect(code == 0)
        #expect(h.err.isEmpty)
        #expect(h.out.contains { $0.contains("Reduce falls on ward 7") && $0.contains("2.5") })
        #expect(try h.records.list(.initiative).count == 1)
    }

    @Test("a script stops at the first failing line, names it, and exits non-zero")
    func scriptStops() throws {
        let h = try ShellHarness()
        let code = h.script(["initiative add --title one", "initiative add --title two --status flying", "initiative add --title three"])
        #expect(code != 0)
        #expect(h.err.contains { $0.contains("line 2") })
        #expect(try h.records.list(.initiative).map { $0.text("title") } == ["one"])
    }

    @Test("a script's record lines are written in windows around other commands; output keeps the lines' order; a failure mid-window keeps the lines before it")
    func scriptWindows() throws {
        let h = try ShellHarness()
        let code = h.script(["initiative add --title 'one £5'", "initiative add --title 'two at 37°C'", "status",
                             "initiative add --title 'three, Ysbyty Gwynedd'", "initiative add --title four --status flying", "initiative add --title five"])
        #expect(code != 0)
        #expect(h.err.contains { $0.contains("line 5") })
        #expect(Set(try h.records.list(.initiative).map { $0.text("title") }) == ["one £5", "two at 37°C", "three, Ysbyty Gwynedd"])
        let text = h.out.joined(separator: "\n")
        let positions = ["one £5", "two at 37°C", "file size", "three, Ysbyty Gwynedd"].map { text.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil } && positions.map { $0! } == positions.map { $0! }.sorted(), "\(text)")
        #expect(!text.contains("five"))
        #expect(try h.records.replica.verify().isSound)
    }

    @Test("a list shows a page of 100 by default and says when there may be more; --limit shows more")
    func listPages() throws {
        let h = try ShellHarness()
        #expect(h.script((0...100).map { "initiative add --title 'Falls £\($0) at 37°C'" }) == 0)
        let page = h.run("initiative list")
        #expect(page.out.split(separator: "\n").count == 102 && page.err.contains("the first 100 shown") && page.err.contains("--limit"), "\(page.err)")
        let all = h.run("initiative list --limit 200")
        #expect(all.out.split(separator: "\n").count == 103 && all.err.isEmpty)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(h.run("initiative list --json --limit 101").out.utf8)) as? [[String: Any]])
        #expect(json.count == 101)
    }

    @Test("--keep-going runs every line but still exits non-zero")
    func scriptKeepsGoing() throws {
        let h = try ShellHarness()
        let code = h.script(["initiative add --title one", "nonsense", "initiative add --title three"], keepGoing: true)
        #expect(code != 0)
        #expect(Set(try h.records.list(.initiative).map { $0.text("title") }) == ["one", "three"])
    }

    @Test("a line that is not UTF-8 is refused and nothing on it runs")
    func notUTF8() throws {
        let h = try ShellHarness()
        var bytes = Array("initiative add --title caf".utf8)
        bytes += [0xE9, 0x0A]
        let code = h.shell.runScript(Data(bytes), keepGoing: false)
        #expect(code != 0)
        #expect(h.err.contains { $0.contains("line 1") && $0.contains("UTF-8") })
        #expect(try h.records.list(.initiative).isEmpty)
    }

    @Test("--json on a create prints the new record with its id")
    func jsonCreate() throws {
        let h = try ShellHarness()
        let id = try h.addInitiative("Sepsis screening")
        #expect(RecordID(hex: id) != nil)
        let shown = h.run("initiative show \(id.prefix(6)) --json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(shown.out.utf8)) as? [String: Any])
        #expect((json["fields"] as? [String: Any])?["title"] as? String == "Sepsis screening")
    }

    @Test("a bad SOFFT code lists the six")
    func badSOFFT() throws {
        let h = try ShellHarness()
        let result = h.run("log add 'Huddles helped' --sofft S7")
        #expect(result.outcome != .success)
        for code in ["S1", "S2", "S3", "S4", "S5", "S6"] { #expect(result.err.contains(code)) }
        #expect(try h.records.list(.learning).isEmpty)
    }

    @Test("learning entries are filtered by SOFFT, skill, effect and date")
    func learningFilters() throws {
        let h = try ShellHarness()
        let id = try h.addInitiative("Falls")
        #expect(h.script([
            "log add 'Huddles helped' --initiative \(id.prefix(8)) --sofft S1 --sofft s4 --skill soft --effect helped --date 2026-01-05",
            "log add 'Rota gaps hindered' --sofft S2 --skill technical --effect hindered --date 2026-03-01",
        ]) == 0)
        var filter = ListFilter()
        filter.sofft = "S4"
        #expect(try h.records.list(.learning, filter: filter).map { $0.text("text") } == ["Huddles helped"])
        let byEffect = h.run("log list --effect hindered --json")
        #expect(byEffect.out.contains("Rota gaps hindered") && !byEffect.out.contains("Huddles"))
        let byDate = h.run("log list --from 2026-02-01")
        #expect(byDate.out.contains("Rota gaps") && !byDate.out.contains("Huddles"))
        let byInitiative = h.run("log list --initiative \(id.prefix(8))")
        #expect(byInitiative.out.contains("Huddles") && !byInitiative.out.contains("Rota"))
        #expect(h.run("log list --from 2026-13-01").err.contains("YYYY-MM-DD"))
    }

    @Test("an unknown id suggests close matches; a malformed one says what an id is")
    func unknownIDs() throws {
        let h = try ShellHarness()
        let id = try h.addInitiative("Falls")
        let last = id[id.index(id.startIndex, offsetBy: 7)]
        let typo = String(id.prefix(7)) + (last == "0" ? "1" : "0")
        let result = h.run("initiative show \(typo)")
        #expect(result.err.contains("did you mean") && result.err.contains(String(id.prefix(8))))
        #expect(h.run("initiative show zz").err.contains("hex digits"))
    }

    @Test("sql is read-only: writes, ATTACH, pragmas, transactions and runaway queries are refused, and nothing changes", arguments: [
        "DELETE FROM initiative", "UPDATE initiative SET title = 'x'", "INSERT INTO meta VALUES ('a', 1)", "DROP TABLE log",
        "ATTACH DATABASE 'ATTACHED' AS evil", "PRAGMA writable_schema = 1", "PRAGMA max_page_count = 1", "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA soft_heap_limit = 1", "PRAGMA hard_heap_limit = 1", "COMMIT", "BEGIN", "SAVEPOINT s", "VACUUM",
        "SELECT 1; DELETE FROM initiative", "CREATE TEMP TABLE t (x)",
    ])
    func sqlReadOnly(statement: String) throws {
        let h = try ShellHarness()
        _ = try h.addInitiative("Falls")
        let before = try h.records.replica.canonicalState()
        let vector = try h.records.replica.versionVector()
        let files = try FileManager.default.contentsOfDirectory(atPath: h.root.path).sorted()
        let sql = statement.replacingOccurrences(of: "ATTACHED", with: h.root.appendingPathComponent("attached.sqlite").path)
        let result = h.run("sql \"\(sql)\"")
        #expect(result.outcome != .success, "\(statement) must be refused")
        #expect(result.err.contains("read-only") || result.err.contains("one statement"), "\(result.err)")
        #expect(try h.records.replica.versionVector() == vector)
        #expect(try h.records.replica.canonicalState() == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: h.root.path).sorted() == files, "no file is made")
        // The replica still reads and writes as before.
        #expect(h.run("sql \"SELECT title FROM initiative\"").out.contains("Falls"))
        _ = try h.addInitiative("Still writable")
        #expect(try h.records.list(.initiative).count == 2)
    }

    @Test("sql reads, describes tables, keeps numbers as numbers in JSON, and stops a query that runs away")
    func sqlReads() throws {
        let h = try ShellHarness()
        _ = try h.addInitiative("Falls")
        #expect(h.run("sql \"SELECT title FROM initiative\"").out.contains("Falls"))
        #expect(h.run("sql \"PRAGMA table_info(initiative)\"").out.contains("title"))
        #expect(h.run("sql \"SELEC nonsense\"").err.contains("SQL error"))
        let json = h.run("sql --json \"SELECT 2 AS n, 2.5 AS r, 'x' AS t, NULL AS z\"").out
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(rows.first?["n"] as? Int == 2 && rows.first?["r"] as? Double == 2.5 && rows.first?["t"] as? String == "x" && rows.first?["z"] is NSNull)
        let started = Date()
        let runaway = h.run("sql --timeout 0.5 \"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c\"")
        #expect(runaway.err.contains("was stopped"))
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("over-long text and invalid choices are refused and change nothing")
    func badValues() throws {
        let h = try ShellHarness()
        let vector = try h.records.replica.versionVector()
        #expect(h.run("initiative add --title \(String(repeating: "x", count: 201))").err.contains("200"))
        #expect(h.run("initiative add --title ok --status flying").err.contains("proposed, active"))
        #expect(h.run("initiative add --title ok --score 7").err.contains("0.5 to 5.0"))
        #expect(h.run("initiative add --team 'no title'").err.contains("--title"))
        #expect(h.run("initiative add --title ok --colour red").outcome == .failure(exitCode: 64))
        #expect(h.run("frobnicate").outcome == .failure(exitCode: 64))
        #expect(h.run("initiative add --title 'unclosed").err.contains("quote"))
        #expect(try h.records.replica.versionVector() == vector)
    }

    @Test("set, delete, restore and history through the shell")
    func editAndHistory() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Falls").prefix(8))
        #expect(h.script(["initiative set \(id) --status active --score 3", "initiative delete \(id)"]) == 0)
        #expect(try h.records.list(.initiative).isEmpty)
        #expect(h.run("initiative set \(id) --team x").err.contains("restore"))
        #expect(h.run("initiative restore \(id)").outcome == .success)
        let history = h.run("history \(id)").out
        #expect(history.contains("proposed → active"))
        #expect(history.contains("yes → no") && history.contains("no → yes"))
        #expect(history.contains("RXH/ward-7"))
    }

    @Test("share publishes to the shared log; unshare stops it")
    func sharing() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Falls").prefix(8))
        let shared = h.records.replica.identity.origin
        let before = try h.records.replica.versionVector().seq(of: LogID(origin: shared, scope: .shared))
        #expect(h.run("share \(id)").outcome == .success)
        #expect(try h.records.replica.versionVector().seq(of: LogID(origin: shared, scope: .shared)) == before + 1)
        #expect(h.run("share \(id)").err.contains("already shared"))
        #expect(h.run("initiative set \(id) --aim 'half the falls'").outcome == .success)
        #expect(try h.records.replica.versionVector().seq(of: LogID(origin: shared, scope: .shared)) == before + 2)
        #expect(h.run("unshare \(id)").outcome == .success)
        let trustBefore = try h.records.replica.versionVector().seq(of: LogID(origin: shared, scope: .trust))
        #expect(h.run("initiative set \(id) --aim 'fewer falls'").outcome == .success)
        #expect(try h.records.replica.versionVector().seq(of: LogID(origin: shared, scope: .trust)) == trustBefore + 1)
    }

    @Test("adapt records the source's trust, id and content hash; lineage follows it")
    func adaptAndLineage() throws {
        let h = try ShellHarness()
        let source = try h.addInitiative("Falls bundle")
        let hash = h.records.contentHash(of: try h.records.record(.initiative, RecordID(hex: source)!))
        let result = h.run("adapt \(source.prefix(8)) --title 'Falls bundle, nights' --kept 'handover check' --nature tailor --what content --reason staffing --reason estate --json")
        #expect(result.outcome == .success, "\(result.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        let adaptation = try #require(json["adaptation"] as? [String: Any])
        let fields = try #require(adaptation["fields"] as? [String: Any])
        #expect(fields["source-id"] as? String == source)
        #expect(fields["source-hash"] as? String == hash)
        #expect((adaptation["tags"] as? [String: [String]])?["reason"] == ["estate", "staffing"])
        let local = try #require((json["initiative"] as? [String: Any])?["id"] as? String)
        let lineage = h.run("lineage \(local.prefix(8))").out
        #expect(lineage.contains(String(source.prefix(8))) && lineage.contains("Falls bundle, nights"))
        #expect(h.run("adapt \(source.prefix(8)) --nature sideways --title x").err.contains("tailor"))
    }

    @Test("conflicts from two sites are listed and resolved through the shell")
    func conflictsAndResolve() throws {
        let key = TrustKey()
        let a = try ShellHarness(site: "hub", trustKey: key), b = try ShellHarness(site: "ward-2", trustKey: key)
        try a.meet(b)
        let id = String(try a.addInitiative("Falls").prefix(8))
        try b.records.replica.apply(try a.records.replica.entries(after: VersionVector()))
        #expect(a.run("initiative set \(id) --status active").outcome == .success)
        #expect(b.run("initiative set \(id) --status closed").outcome == .success)
        try b.records.replica.apply(try a.records.replica.entries(after: b.records.replica.versionVector()))
        try a.records.replica.apply(try b.records.replica.entries(after: a.records.replica.versionVector()))
        let listed = a.run("conflicts").out
        #expect(listed.contains("status") && listed.contains("active") && listed.contains("closed"))
        #expect(a.run("initiative show \(id)").out.contains("conflict"))
        #expect(a.run("resolve \(id) title --use 1").err.contains("not in conflict"))
        #expect(a.run("resolve \(id) status --value sustaining").outcome == .success)
        #expect(a.run("conflicts").out.contains("(none)"))
        try b.records.replica.apply(try a.records.replica.entries(after: b.records.replica.versionVector()))
        #expect(try b.records.record(.initiative, try b.records.locate(id).id).text("status") == "sustaining")
        #expect(try b.records.conflicts().isEmpty)
    }

    @Test("a record of another trust cannot be edited here, only adapted")
    func otherTrustsRecord() throws {
        let mine = try ShellHarness(trust: "RXH"), theirs = try ShellHarness(trust: "RYJ", site: "hub")
        try mine.meet(theirs)
        let id = String(try theirs.addInitiative("Their falls work").prefix(8))
        #expect(theirs.run("share \(id)").outcome == .success)
        try mine.records.replica.apply(try theirs.records.replica.entries(after: VersionVector(), scopes: [.shared]))
        let result = mine.run("initiative set \(id) --status closed")
        #expect(result.err.contains("belongs to trust RYJ") && result.err.contains("adapt"))
        #expect(mine.run("adapt \(id) --title 'Our falls work'").outcome == .success)
    }

    @Test("help lists the commands; help COMMAND shows its options")
    func help() throws {
        let h = try ShellHarness()
        let all = h.run("help").out
        for command in ["initiative", "pdsa", "log", "adapt", "lineage", "share", "conflicts", "resolve", "history", "sql", "status", "verify"] {
            #expect(all.contains(command))
        }
        let add = h.run("help initiative add")
        #expect(add.outcome == .success && add.out.contains("--title") && add.out.contains("--score"))
    }

    @Test("every command's summary and discussion read as prose: no runs of spaces left inside a sentence")
    func helpTextIsTidy() throws {
        var pending: [(String, ParsableCommand.Type)] = [("qisync", QisyncCommand.self)]
        var seen = 0
        while let (path, command) = pending.popLast() {
            let configuration = command.configuration
            seen += 1
            for text in [configuration.abstract, configuration.discussion] {
                #expect(!text.contains("  "), "\(path): \(text)")
            }
            pending += configuration.subcommands.map { ("\(path) \($0.configuration.commandName ?? "")", $0) }
        }
        #expect(seen > 40)
    }

    @Test("status and verify report on the replica")
    func statusAndVerify() throws {
        let h = try ShellHarness()
        _ = try h.addInitiative("Falls")
        let status = h.run("status").out
        #expect(status.contains("RXH") && status.contains("ward-7") && status.contains("initiative") && status.contains("trust"))
        let verify = h.run("verify")
        #expect(verify.outcome == .success && verify.out.contains("matches"))
    }

    @Test("PDSA cycles are numbered per initiative and closed with an act")
    func pdsa() throws {
        let h = try ShellHarness()
        let id = String(try h.addInitiative("Falls").prefix(8))
        #expect(h.script([
            "pdsa add \(id) --change-idea 'Check bed rails at handover' --prediction 'fewer falls'",
            "pdsa add \(id) --change-idea 'Night checks'",
        ]) == 0)
        let cycles = try h.records.list(.pdsa)
        #expect(cycles.map { $0.text("number") } == ["1", "2"])
        #expect(h.run("pdsa close \(cycles[0].id.short) --act adopt --results 'two fewer falls'").outcome == .success)
        #expect(try h.records.record(.pdsa, cycles[0].id).text("act") == "adopt")
        #expect(h.run("pdsa close \(cycles[1].id.short) --act maybe").err.contains("adopt, adapt"))
    }

    @Test("learning entries and PDSA cycles can be corrected, deleted and restored")
    func correctLearningAndCycles() throws {
        let h = try ShellHarness()
        let initiative = String(try h.addInitiative("Falls").prefix(8))
        let added = h.run("log add 'Huddles helpd' --sofft S1 --skill soft --json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(added.out.utf8)) as? [String: Any])
        let id = String(try #require(json["id"] as? String).prefix(8))
        let changed = h.run("log set \(id) --text 'Huddles helped' --initiative \(initiative) --add-sofft S4 --remove-sofft s1 --add-skill learning")
        #expect(changed.outcome == .success, "\(changed.err)")
        let entry = try h.records.record(.learning, try h.records.locate(id).id)
        #expect(entry.text("text") == "Huddles helped")
        #expect(entry.tags["sofft"] == ["S4"] && entry.tags["skill"] == ["learning", "soft"])
        #expect(h.run("log show \(id)").out.contains("Huddles helped"))
        #expect(h.run("log set \(id)").err.contains("nothing to change"))
        #expect(h.run("log set \(id) --add-sofft S9").err.contains("S6"))
        #expect(h.run("log delete \(id)").outcome == .success)
        #expect(try h.records.list(.learning).isEmpty)
        #expect(h.run("log restore \(id)").outcome == .success)
        #expect(try h.records.list(.learning).count == 1)
        let history = h.run("history \(id)").out
        #expect(history.split(separator: "\n").contains { $0.contains("sofft:S4") && $0.contains("added") }
                && history.split(separator: "\n").contains { $0.contains("sofft:S1") && $0.contains("added → removed") }, "\(history)")

        #expect(h.run("pdsa add \(initiative) --change-idea 'Night checks'").outcome == .success)
        let cycle = try #require(try h.records.list(.pdsa).first).id.short
        #expect(h.run("pdsa set \(cycle) --plan 'Two wards, four weeks' --as-planned no").outcome == .success)
        #expect(try h.records.record(.pdsa, try h.records.locate(cycle).id).text("plan") == "Two wards, four weeks")
        #expect(h.run("pdsa delete \(cycle)").outcome == .success)
        #expect(try h.records.list(.pdsa).isEmpty)
        #expect(h.run("pdsa restore \(cycle)").outcome == .success)
        #expect(try h.records.list(.pdsa).count == 1)
    }

    @Test("tab completion offers commands, subcommands, options and ids")
    func completion() throws {
        let h = try ShellHarness()
        let id = try h.addInitiative("Falls")
        #expect(h.shell.completions(line: "init", word: "init") == ["initiative"])
        #expect(h.shell.completions(line: "initiative ", word: "") == ["add", "delete", "list", "restore", "set", "show"])
        #expect(h.shell.completions(line: "initiative add --ti", word: "--ti") == ["--title"])
        #expect(h.shell.completions(line: "initiative show \(id.prefix(3))", word: String(id.prefix(3))).contains(String(id.prefix(8))))
    }

    @Test("tab completion offers an option's vocabulary, and ids of live records with their titles")
    func completionValues() throws {
        let h = try ShellHarness()
        #expect(h.shell.completions(line: "log add x --sofft ", word: "") == ["S1", "S2", "S3", "S4", "S5", "S6"])
        #expect(h.shell.completions(line: "initiative add --status a", word: "a") == ["active", "abandoned"])
        #expect(h.shell.completions(line: "adapt x --nature ta", word: "ta") == ["tailor"])
        let kept = try h.addInitiative("Falls on ward 7b"), gone = try h.addInitiative("Old idea")
        #expect(h.run("initiative delete \(gone.prefix(8))").outcome == .success)
        let candidates = h.shell.candidates(line: "initiative show ", word: "")
        #expect(candidates.map(\.text) == [String(kept.prefix(8))], "deleted records are left out")
        #expect(candidates.first?.detail == "initiative: Falls on ward 7b")
        #expect(h.shell.candidates(line: "log add x --initiative ", word: "").map(\.text) == [String(kept.prefix(8))])
    }

    @Test("the tokenizer handles quotes and escapes", arguments: [
        ("a b  c", ["a", "b", "c"]), ("log add \"two words\"", ["log", "add", "two words"]),
        ("x 'it''s'", ["x", "its"]), ("x \"say \\\"hi\\\"\"", ["x", "say \"hi\""]), ("x ''", ["x", ""]),
        ("log add \"First paragraph.\\nSecond, at 37°C.\"", ["log", "add", "First paragraph.\nSecond, at 37°C."]),
        ("x 'a\\nb'", ["x", "a\\nb"]), ("x a\\tb \\\\n", ["x", "a\tb", "\\n"]),
    ])
    func tokenizer(line: String, words: [String]) throws {
        #expect(try LineTokenizer.words(line) == words)
    }
}

@Suite("The qisync executable")
struct ExecutableTests {
    /// The built `qisync` next to the test bundle.
    var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync")
    }

    func run(_ arguments: [String], input: String? = nil, home: URL) throws -> (code: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments + ["--home", home.path]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data((input ?? "").utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test("init, CLI subcommands and a piped script, with exit codes")
    func endToEnd() throws {
        #expect(FileManager.default.isExecutableFile(atPath: binary.path), "build the qisync product first")
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        #expect(try run(["init", "--trust", "RXH", "--trust-name", "Royal X", "--site", "hub", "--kind", "hub"], home: home).code == 0)
        let again = try run(["init", "--trust", "RXH", "--trust-name", "Royal X", "--site", "hub"], home: home)
        #expect(again.code != 0 && again.err.contains("already exists"))
        let keyMode = try FileManager.default.attributesOfItem(atPath: home.appendingPathComponent("site.key").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let trustKeyMode = try FileManager.default.attributesOfItem(atPath: home.appendingPathComponent("trust.key").path)[.posixPermissions] as? Int
        #expect(trustKeyMode == 0o600)
        #expect(try run(["initiative", "add", "--title", "Falls"], home: home).code == 0)
        let list = try run(["initiative", "list", "--json"], home: home)
        #expect(list.code == 0 && list.out.contains("\"Falls\""))
        let script = try run(["shell"], input: "initiative list\ninitiative add --title\ninitiative add --title never\n", home: home)
        #expect(script.code != 0 && script.err.contains("line 2"))
        #expect(try run(["sql", "SELECT count(*) AS n FROM initiative", "--json"], home: home).out.contains("1"))
        #expect(try run(["initiative", "list", "--bogus"], home: home).code == 64)
        #expect(try run(["verify"], home: home).code == 0)
    }
}

@Suite("Sync from the shell")
struct ShellSyncTests {
    @Test("the shell serves in the background while people keep working; peers and sync work from it")
    func backgroundServe() throws {
        let key = TrustKey()
        let hub = try ShellHarness(site: "hub", trustKey: key), ward = try ShellHarness(site: "ward-2", trustKey: key)
        let served = hub.run("serve --listen 127.0.0.1:0")
        #expect(served.outcome == .success && served.out.contains("in the background"))
        let address = try #require(served.out.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression).map { String(served.out[$0]) })
        #expect(hub.run("serve --listen 127.0.0.1:0").err.contains("already serving"))
        _ = try hub.addInitiative("Made while serving")
        #expect(ward.run("peer add hub \(address)").outcome == .success)
        #expect(ward.run("peer add hub \(address)").err.contains("already a peer"))
        let synced = ward.run("sync hub --json")
        #expect(synced.outcome == .success, "\(synced.err)")
        #expect(synced.out.contains("\"outcome\" : \"ok\""))
        #expect(try ward.records.list(.initiative).map { $0.text("title") } == ["Made while serving"])
        let status = ward.run("status").out
        #expect(status.contains("hub") && status.contains("up to date"))
        #expect(ward.run("sync hub --pull --push").err.contains("--pull and --push"))
        #expect(ward.run("sync nowhere").err.contains("no peer called 'nowhere'"))
        #expect(hub.run("serve --stop").outcome == .success)
        let refused = ward.run("sync hub")
        #expect(refused.outcome != .success && refused.err.contains("could not connect"))
        #expect(try ward.records.replica.peers().first?.lastSync?.outcome.hasPrefix("failed") == true)
        #expect(ward.run("peer remove hub").outcome == .success)
        #expect(ward.run("peer remove hub").err.contains("no peer called"))
    }
}

@Suite("Sync output")
struct SyncOutputTests {
    @Test("byte counts read naturally", arguments: [(0, "0 bytes"), (999, "999 bytes"), (20_400, "20.4 KB"), (82_000_000, "82.0 MB"), (3_000_000_000, "3.00 GB")])
    func bytes(count: UInt64, text: String) {
        #expect(SyncRendering.bytes(count) == text)
    }
}

@Suite("PII guard")
struct PIIGuardTests {
    @Test("NHS numbers are found by their Modulus 11 check digit, however they are spaced", arguments: [
        ("Pt 943 476 5919 fell twice", true), ("ref 9434765919.", true), ("943-476-5919", true),
        ("943 476 5918", false),            // wrong check digit
        ("phone 0113 243 3144", false),     // 11 digits
        ("audit of 1234567890 forms", false),
    ])
    func nhsNumbers(text: String, found: Bool) {
        #expect(PIIGuard.scan(text).contains { $0.kind == "an NHS number" } == found)
    }

    @Test("a check digit of 10 is never valid; 11 means 0")
    func checkDigits() {
        // 6 × 2 = 12, 12 mod 11 = 1, so the check would be 10: no last digit makes it valid.
        for last in 0...9 { #expect(!PIIGuard.isValidNHSNumber([0, 0, 0, 0, 0, 0, 0, 0, 6, last])) }
        // 5 × 2 = 10, 11 − 10 = 1.
        #expect(PIIGuard.isValidNHSNumber([0, 0, 0, 0, 0, 0, 0, 0, 5, 1]))
        // A sum divisible by 11 gives 11, which stands for 0.
        #expect(PIIGuard.isValidNHSNumber([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(PIIGuard.isValidNHSNumber([9, 4, 3, 4, 7, 6, 5, 9, 1, 9]))
    }

    @Test("dates and postcodes count only next to a patient word", arguments: [
        ("patient born 12/03/1956 was discharged", true),
        ("DOB 1956-03-12", true),
        ("the audit ran from 12/03/2026 to 30/04/2026", false),
        ("patient lives at LS1 4AP near the hospital", true),
        ("the LS1 4AP site hosted the workshop", false),
    ])
    func datesAndPostcodes(text: String, found: Bool) {
        #expect(!PIIGuard.scan(text).isEmpty == found, "\(PIIGuard.scan(text))")
    }

    @Test("staff named by title and surname are found; roles are not", arguments: [
        ("Dr Patel led the huddle", true),
        ("Sister O'Brien ran nights", true),
        ("the ward sister led the huddle", false),
        ("Matron and the falls lead agreed", false),
        ("Mrs Jones-Smith audited it", true),
    ])
    func staffNames(text: String, found: Bool) {
        #expect(PIIGuard.scan(text).contains { $0.kind.contains("staff") } == found, "\(PIIGuard.scan(text))")
    }

    @Test("only the hub (the IG lead) may override the guard; every replica refuses an override from anywhere else")
    func overrideOnlyOnHub() throws {
        let ward = try ShellHarness()
        let id = String(try ward.addInitiative("Falls").prefix(8))
        #expect(ward.run("initiative set \(id) --team 'Dr Patel and nights'").outcome == .success)
        let refused = ward.run("share \(id)")
        #expect(refused.err.contains("team") && refused.err.contains("staff"))
        #expect(ward.run("share \(id) --override-pii --reason 'checked with the IG lead by phone'").err.contains("only the trust's IG lead"))
        let full = try ward.records.locate(id).id
        #expect(throws: (any Error).self) {
            try ward.records.replica.write(scope: .trust, edits: [RowEdit(table: RecordKind.initiative.table.id, key: full.bytes, values: [(63, .text("self-approved"))])])
        }
        #expect(try ward.records.record(.initiative, full).text("pii-override").isEmpty)
    }

    @Test("share refuses patient data, naming the field, and changes nothing; an IG-lead override with a reason is recorded")
    func shareGuard() throws {
        let h = try ShellHarness(site: "hub", kind: .hub)
        let id = String(try h.addInitiative("Falls").prefix(8))
        #expect(h.run("initiative set \(id) --problem 'Pt 943 476 5919 fell twice on nights'").outcome == .success)
        let vector = try h.records.replica.versionVector()
        let refused = h.run("share \(id)")
        #expect(refused.outcome != .success && refused.err.contains("problem") && refused.err.contains("NHS number"))
        #expect(try h.records.replica.versionVector() == vector)
        #expect(h.run("share \(id) --override-pii").err.contains("--reason"))
        #expect(h.run("share \(id) --override-pii --reason short").err.contains("10 to 500"))
        let shared = h.run("share \(id) --override-pii --reason 'synthetic test number, not a real patient'")
        #expect(shared.outcome == .success, "\(shared.err)")
        let record = try h.records.record(.initiative, try h.records.locate(id).id)
        #expect(record.scope == .shared && record.text("pii-override").hasPrefix("synthetic test number"))
        #expect(h.run("history \(id)").out.contains("pii-override"))
    }
}
