import ArgumentParser
import Foundation
import QISyncCore
@testable import QISyncShell
import Testing

/// A script's later lines of a shape are filled into the first line's parsed command
/// (``CommandTemplates``): the result must be exactly what the argument parser makes of the
/// line, for every command that opts in, or the line must go to the argument parser.
@Suite struct CommandTemplateTests {
    /// Every command a script may fill from a template, by the words that name it.
    static let templated: [String: any TemplatedCommand.Type] = Shell.leaves.compactMapValues { $0 as? any TemplatedCommand.Type }

    /// Values people type.
    static let values = [
        "Reduce falls", "£4.50 a day", "Keep the ward at 21 °C", "Ysbyty Gwynedd, Bangor", "Llanfairpwllgwyll",
        "café's “aim”", "a=b", "x --title y", "help", "0", "12/340", "2026-03-01", " ", "ab\ncd",
    ]
    /// Values the argument parser reads by rules of its own: lines with them go to it whole.
    static let odd = ["-1", "--json", "-", ""]

    static func value(_ rng: inout SplitMix64) -> String {
        (Int.random(in: 0..<10, using: &rng) == 0 ? odd : values).randomElement(using: &rng)!
    }

    /// The argument parser's result, as text (every option's value shows in it), or its error.
    static func direct(_ command: ParsableCommand.Type, _ words: [String]) -> String {
        do { return String(reflecting: try command.parse(words)) } catch { return "error: \(command.message(for: error))" }
    }

    /// A random line for a command with these slots: some of its options (repeatable ones maybe
    /// twice, text ones now and then twice), flags, and arguments among them.
    static func randomLine<Command>(_ slots: CommandSlots<Command>, _ rng: inout SplitMix64) -> [String] {
        var parts: [[String]] = []
        for name in slots.text.keys.sorted() where Int.random(in: 0..<3, using: &rng) == 0 {
            parts.append(["--\(name)", value(&rng)])
            if Int.random(in: 0..<20, using: &rng) == 0 { parts.append(["--\(name)", value(&rng)]) }
        }
        for name in slots.lists.keys.sorted() {
            for _ in 0..<Int.random(in: 0..<3, using: &rng) { parts.append(["--\(name)", value(&rng)]) }
        }
        for name in slots.flags.sorted() where Int.random(in: 0..<3, using: &rng) == 0 { parts.append(["--\(name)"]) }
        parts.shuffle(using: &rng)
        // Arguments keep their order among themselves, wherever they stand among the options.
        let extra = Int.random(in: 0..<6, using: &rng) == 0 ? Int.random(in: -1...1, using: &rng) : 0
        for _ in 0..<(slots.arguments.count + extra).clamped(0, 4) {
            parts.insert([value(&rng)], at: Int.random(in: 0...parts.count, using: &rng))
        }
        if Int.random(in: 0..<25, using: &rng) == 0 { parts.append(["--nonsense"]) }
        if Int.random(in: 0..<25, using: &rng) == 0, !parts.isEmpty { parts[0][0] += "=x" }
        return parts.flatMap { $0 }
    }

    @Test("a line filled into a template of its shape is what the argument parser makes of it", arguments: templated.keys.sorted())
    func fillMatchesTheParser(name: String) async throws {
        // A thread with a large stack: the argument parser's reflection runs deep in a debug build.
        await onOwnThread { Self.run(Self.templated[name]!, seed: UInt64(name.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) })) }
    }

    private static func run<Command: TemplatedCommand>(_ command: Command.Type, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var filled = 0
        for _ in 0..<300 {
            let words = Self.randomLine(command.slots, &rng)
            check(command, words, &rng, &filled)
        }
        // Most random lines have a shape the slots cover and a primer line the parser accepts.
        #expect(filled > 100, "only \(filled) of 300 lines were filled from a template")
    }

    /// Parses a primer line of `words`' shape (other values), then fills `words` into it and
    /// compares with the argument parser's own result.
    private static func check<Command: TemplatedCommand>(_ command: Command.Type, _ words: [String], _ rng: inout SplitMix64,
                                                         _ filled: inout Int) {
        let expected = Self.direct(command, words)
        guard let shape = LineShape(words[...], slots: Command.slots) else { return }
        // Same shape, other values: words that are values or arguments are swapped for others of
        // the same shape (so the primer's own shape is the same).
        let primerWords = words.map { word -> String in
            if word.hasPrefix("-") { return word }
            return ["Primer", "Wrexham Maelor", "x"].randomElement(using: &rng)!
        }
        #expect(LineShape(primerWords[...], slots: Command.slots)?.key == shape.key)
        guard let template = try? command.parse(primerWords) else {
            // The parser refuses the shape itself: no template, so the line goes to the parser.
            #expect(expected.hasPrefix("error:"), "parser refused \(primerWords) but took \(words)")
            return
        }
        let result: String
        do { result = String(reflecting: try CommandTemplates.fill(template, shape)) } catch { result = "error: \(command.message(for: error))" }
        #expect(result == expected, "\(words)")
        if !expected.hasPrefix("error:") {
            filled += 1
            // The text compared shows every value: the primer's own differs wherever the line has one.
            if !shape.values.isEmpty || !shape.arguments.isEmpty { #expect(String(reflecting: template) != result) }
        }
    }

    @Test("the shell fills a script's later lines from the first, keeping NHS text exactly")
    func shellUsesTemplates() throws {
        let harness = try ShellHarness()
        let titles = ["Reduce falls", "Cadw’r ward yn 21 °C", "£0 a month — café", "Ysbyty Glan Clwyd"]
        let script = titles.map { "initiative add --title '\($0)' --team 'Ward 7b' --aim 'Cut falls by 10%'" }.joined(separator: "\n")
        #expect(harness.shell.runScript(Data(script.utf8), keepGoing: false) == 0)
        #expect(harness.shell.templates.shapes == ["initiative add --title = --team = --aim ="])
        let stored = try harness.records.list(.initiative).map { $0.text("title") }
        #expect(stored.sorted() == titles.sorted())
        // A line of the same command in another shape is parsed whole and makes a template of its own.
        #expect(harness.shell.execute("initiative add --team 'Ward 9' --title 'Hand hygiene'") == .success)
        #expect(harness.shell.templates.shapes.count == 2)
        // An error in a line of a known shape still gets the parser's message.
        #expect(harness.shell.execute("initiative add --title 'A' --team 'B' --aim") != .success)
        #expect(harness.err.last?.contains("--aim") == true)
    }
}

private extension Int {
    func clamped(_ low: Int, _ high: Int) -> Int { Swift.min(Swift.max(self, low), high) }
}
