import ArgumentParser
import Foundation
import GRDB
import QISyncCore
import QISyncDomain

/// The line-oriented shell: each line is parsed with the same command tree as the CLI and run
/// on one open replica.
public final class Shell {
    /// What running one line did.
    public enum Outcome: Equatable {
        case success
        case failure(exitCode: Int32)
        case exit
    }

    let context: CommandContext
    let err: OutputSink
    /// The commands this shell has parsed, by shape: see ``CommandTemplates``.
    let templates = CommandTemplates()

    /// Creates a shell on a replica's records.
    public init(records: QIRecords, out: OutputSink, err: OutputSink) {
        context = CommandContext(records: records, out: out, notices: err, inShell: true)
        self.err = err
    }

    /// The prompt: trust and site.
    public var prompt: String {
        let identity = context.records.replica.identity
        return "\(identity.trustCode)/\(identity.siteName)> "
    }

    /// Runs one line.
    public func execute(_ line: String) -> Outcome {
        run(Self.prepare(line, templates: templates))
    }

    /// A line read and parsed, not yet run: the part of a line that depends on nothing but
    /// its text, so a script can parse lines ahead on another thread while it runs earlier ones.
    enum PreparedLine {
        case nothing
        case exit
        case help([String])
        case refused(String)
        case command(ParsableCommand, words: [String])
        case failed(Error)
    }

    static func prepare(_ line: String, templates: CommandTemplates) -> PreparedLine {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return .nothing }
        let words: [String]
        do { words = try LineTokenizer.words(trimmed) } catch { return .refused(error.description) }
        switch words.first {
        case "exit", "quit": return .exit
        case "help": return .help(Array(words.dropFirst()))
        default: break
        }
        if words.contains("--help") || words.contains("-h") {
            return .help(words.filter { $0 != "--help" && $0 != "-h" })
        }
        if let problem = QisyncCommand.unknownCommand(Array(words.prefix { !$0.hasPrefix("-") }.prefix(2)), extra: ["help", "exit", "quit"]) {
            return .refused(problem)
        }
        do { return .command(try parse(words, templates: templates), words: words) } catch { return .failed(error) }
    }

    func run(_ prepared: PreparedLine) -> Outcome {
        do {
            let parsed: ParsableCommand, words: [String]
            switch prepared {
            case .nothing: return .success
            case .exit: return .exit
            case .help(let words): return help(words)
            case .refused(let problem):
                err.line("error: \(problem)")
                return .failure(exitCode: ExitCode.validationFailure.rawValue)
            case .failed(let error): throw error
            case .command(let command, let lineWords): (parsed, words) = (command, lineWords)
            }
            let subcommands = type(of: parsed).configuration.subcommands
            if !subcommands.isEmpty {
                let names = subcommands.map { $0.configuration.commandName ?? Self.defaultName($0) }
                err.line("error: '\(words[0])' needs one of: \(names.joined(separator: ", ")) (see 'help \(words[0])')")
                return .failure(exitCode: ExitCode.validationFailure.rawValue)
            }
            guard let command = parsed as? any ReplicaCommand else {
                err.line("error: '\(words[0])' is not available inside the shell; run 'qisync \(words[0])' from the command line")
                return .failure(exitCode: 1)
            }
            if let home = command.globals.home, GlobalOptions.resolveHome(home).standardizedFileURL != context.records.replica.home.standardizedFileURL {
                err.line("error: this shell is open on \(context.records.replica.home.path); --home cannot point elsewhere inside it")
                return .failure(exitCode: ExitCode.validationFailure.rawValue)
            }
            context.times = Times(utc: command.globals.utc)
            try command.run(in: context)
            return .success
        } catch {
            let error = FailureMessages.explain(error)
            let code = QisyncCommand.exitCode(for: error)
            let message = QisyncCommand.fullMessage(for: error)
            if code == .success {
                context.out.line(message)
                return .success
            }
            err.line(message.hasPrefix("Error:") ? "error:" + message.dropFirst("Error:".count) : "error: \(message)")
            return .failure(exitCode: code.rawValue)
        }
    }

    /// Runs a script: stops at the first failing line unless `keepGoing`; returns the exit code.
    ///
    /// Runs of record commands are written in windows of one transaction each (up to
    /// ``windowLines`` lines or a quarter of a second), not one per line: each line stays
    /// atomic, a failing line leaves nothing and stops the script with everything before it
    /// kept, and other commands (sync, serve, bundle, backup…) run between windows.
    public func runScript(_ input: Data, keepGoing: Bool) -> Int32 {
        var status: Int32 = 0
        var lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var index = 0
        let texts = lines.map { raw -> String? in
            var bytes = Array(raw)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            return String(validating: bytes, as: UTF8.self)
        }
        let parser = ScriptParser(texts, templates: templates)
        defer { parser.stop() }

        /// Runs line `index` and moves past it; false when the script must stop.
        func step() -> Bool {
            let number = index + 1
            let prepared = parser.take(index)
            index += 1
            guard let line = texts[number - 1], let prepared else {
                err.line("line \(number): not valid UTF-8; nothing on this line was run")
                status = 65
                return keepGoing
            }
            switch run(prepared) {
            case .success: return true
            case .exit: return false
            case .failure(let code):
                err.line("line \(number): failed: \(line)")
                status = code
                return keepGoing
            }
        }

        while index < lines.count {
            guard Self.windowable(lines[index]) else {
                if !step() { return status }
                continue
            }
            let first = index
            var goOn = true
            // What the window's lines print is shown once their writes are committed: a line
            // reported done is a line kept, even if the process is killed in the window.
            let sinks = [context.out, err, context.notices]
            sinks.forEach { $0.hold() }
            do {
                try context.records.replica.writeWindow {
                    let started = DispatchTime.now().uptimeNanoseconds
                    repeat {
                        goOn = step()
                    } while goOn && index < lines.count && Self.windowable(lines[index]) && index - first < Self.windowLines
                        && DispatchTime.now().uptimeNanoseconds - started < 250_000_000
                }
                sinks.forEach { $0.release() }
            } catch {
                sinks.forEach { $0.discard() }
                let what = index - first <= 1 ? "line \(first + 1) could not be saved" : "lines \(first + 1) to \(index) could not be saved, so none of them were kept"
                err.line("error: \(what): \(FailureMessages.explain(error))")
                return 74
            }
            if !goOn { return status }
        }
        return status
    }

    /// Parses a line's words as the command they name. A line naming a command directly
    /// (`initiative add …`) is parsed by that command alone: rebuilding the whole command tree
    /// for every line was most of a script line's cost. Anything else, and every error, goes
    /// through the whole tree, so messages and usage are the same either way.
    static func parse(_ words: [String], templates: CommandTemplates) throws -> ParsableCommand {
        for length in [2, 1] where words.count >= length {
            let name = words.prefix(length).joined(separator: " ")
            if let command = leaves[name], let parsed = try? templates.parse(command, named: name, Array(words.dropFirst(length))) {
                return parsed
            }
        }
        return try QisyncCommand.parseAsRoot(words)
    }

    /// Every command without subcommands, by the words that name it.
    static let leaves: [String: ParsableCommand.Type] = {
        var found: [String: ParsableCommand.Type] = [:]
        for command in QisyncCommand.configuration.subcommands {
            let name = command.configuration.commandName ?? defaultName(command)
            let subcommands = command.configuration.subcommands
            if subcommands.isEmpty { found[name] = command }
            for subcommand in subcommands where subcommand.configuration.subcommands.isEmpty {
                found["\(name) \(subcommand.configuration.commandName ?? defaultName(subcommand))"] = subcommand
            }
        }
        return found
    }()

    /// The most lines one write window of a script holds.
    static let windowLines = 5_000

    /// The commands a script runs inside a write window: the record commands, which work on
    /// this replica alone on the shell's own thread (not sync, serve, bundles, backups, the
    /// directory or `sql`).
    static let windowedCommands: Set<String> = [
        "initiative", "pdsa", "log", "adapt", "adaptation", "lineage", "measure", "data", "event", "chart", "report",
        "share", "unshare", "conflicts", "resolve", "history", "whoami",
    ]

    static func windowable(_ line: Data.SubSequence) -> Bool {
        let word = line.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            .prefix { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") }
        guard let text = String(bytes: word, encoding: .utf8) else { return false }
        return windowedCommands.contains(text)
    }

    /// Runs lines from a reader until end of input or `exit`, reporting errors and carrying on.
    public func runInteractive<Reader: LineReader>(_ reader: inout Reader) {
        context.out.line("qisync shell on \(context.records.replica.home.path). Type 'help' for commands, 'exit' to leave.")
        if Reader.self == EditLineReader.self { context.ask = EditLineReader.ask }
        while let line = reader.readLine(prompt: prompt) {
            if execute(line) == .exit { break }
        }
        stopBackgroundServer()
    }

    /// Stops a server the shell runs in the background, saying so.
    func stopBackgroundServer() {
        guard let server = context.backgroundServer else { return }
        context.out.line("stopping the server on \(server.address)…")
        try? server.close().wait()
        context.backgroundServer = nil
        ServingState.clear(home: context.records.replica.home)
    }

    // MARK: Help

    private func help(_ words: [String]) -> Outcome {
        if words.isEmpty {
            context.out.line("Commands (each is also 'qisync COMMAND' on the command line):")
            var rows: [[String]] = []
            for command in QisyncCommand.configuration.subcommands where command != ShellCommand.self && command != InitCommand.self {
                let name = command.configuration.commandName ?? ""
                let subcommands = command.configuration.subcommands.compactMap { $0.configuration.commandName ?? Self.defaultName($0) }
                rows.append([subcommands.isEmpty ? name : "\(name) \(subcommands.joined(separator: "|"))", command.configuration.abstract])
            }
            rows.append(["help [COMMAND]", "Show this list, or a command's options."])
            rows.append(["exit", "Leave the shell (or press Ctrl-D)."])
            let width = rows.map { $0[0].count }.max() ?? 0
            for row in rows { context.out.line("  " + row[0].padding(toLength: width, withPad: " ", startingAt: 0) + "  " + row[1]) }
            context.out.line("Every command takes --json. Ids can be shortened to any unique start. Quote text with spaces;")
            context.out.line("within \"double quotes\" \\n starts a new paragraph (log add \"First.\\nSecond.\"); 'single quotes' keep every character as typed.")
            return .success
        }
        let (type, used) = Self.command(for: words)
        guard used == words.count else {
            err.line("error: " + (QisyncCommand.unknownCommand(words) ?? "no command '\(words.joined(separator: " "))'; type 'help' for the list"))
            return .failure(exitCode: ExitCode.validationFailure.rawValue)
        }
        context.out.line(QisyncCommand.helpMessage(for: type, columns: 100))
        return .success
    }

    /// The deepest command named by the leading words, and how many words named it.
    static func command(for words: [String]) -> (ParsableCommand.Type, Int) {
        var type: ParsableCommand.Type = QisyncCommand.self
        var used = 0
        for name in words {
            guard let sub = type.configuration.subcommands.first(where: { ($0.configuration.commandName ?? defaultName($0)) == name }) else { break }
            type = sub
            used += 1
        }
        return (type, used)
    }

    static func defaultName(_ type: ParsableCommand.Type) -> String {
        String(describing: type).lowercased()
    }

    // MARK: Completion

    /// One completion: the text to insert, and what it is (an id's title), when that helps choose.
    public struct Candidate: Equatable {
        public let text: String
        public let detail: String?
    }

    /// Completions for the word being typed, given the whole line so far.
    public func completions(line: String, word: String) -> [String] { candidates(line: line, word: word).map(\.text) }

    /// The words an option takes, when they come from a fixed list.
    static let vocabularies: [String: [String]] = [
        "--sofft": Vocabulary.soffts.map(\.code), "--skill": Vocabulary.skillKinds, "--culture": Vocabulary.cultureFeatures,
        "--status": Vocabulary.statuses, "--method": Vocabulary.methods, "--effect": Vocabulary.effects, "--act": Vocabulary.acts,
        "--when": Vocabulary.frameWhen, "--planned": Vocabulary.framePlanned, "--what": Vocabulary.frameWhat,
        "--nature": Vocabulary.frameNature, "--fidelity": Vocabulary.fidelity, "--reason": Vocabulary.reasons,
        "--as-planned": ["yes", "no"], "--format": ["csv", "json"], "--score": Vocabulary.ihiScores.keys.sorted().map { String($0) },
        "--kind": Vocabulary.measureKinds, "--unit": Vocabulary.units, "--direction": Vocabulary.directions,
        "--frequency": Vocabulary.frequencies, "--chart": Vocabulary.charts, "--rules": ["mdc", "ihi", "anhoej"], "--by": ["sofft", "skill", "culture"],
    ]

    /// Options whose value is a record's id, and of which kind.
    static let idOptions: [String: RecordKind] = ["--initiative": .initiative, "--pdsa": .pdsa, "--into": .initiative, "--measure": .measure]

    /// Commands whose first argument is a record of another kind than their own (`data add MEASURE …`).
    static let firstArgumentKinds: [String: RecordKind] = [
        "data add": .measure, "data list": .measure, "data import": .measure, "event add": .measure, "event list": .measure,
        "chart": .measure, "measure add": .initiative, "pdsa add": .initiative, "report": .initiative, "report initiative": .initiative,
        "adapt": .initiative, "lineage": .initiative,
    ]

    /// Completions with what they are: command names, option names, an option's vocabulary, or
    /// ids of live records (of the kind the command works on) with their titles.
    public func candidates(line: String, word: String) -> [Candidate] {
        let words = (try? LineTokenizer.words(line)) ?? line.split(separator: " ").map(String.init)
        let typed = line.hasSuffix(" ") || line.isEmpty ? words : Array(words.dropLast())
        if let option = typed.last, option.hasPrefix("--") {
            if let values = Self.vocabularies[option] { return values.filter { $0.lowercased().hasPrefix(word.lowercased()) }.map { Candidate(text: $0, detail: nil) } }
            if let kind = Self.idOptions[option] { return idCandidates(prefix: word, kind: kind) }
        }
        let commandType = Self.command(for: typed).0
        var names: [String] = commandType.configuration.subcommands
            .filter { $0 != ShellCommand.self && $0 != InitCommand.self && $0.configuration.shouldDisplay }
            .map { $0.configuration.commandName ?? Self.defaultName($0) }
        if typed.isEmpty { names += ["help", "exit"] }
        if word.hasPrefix("-") { return Self.optionNames(commandType).filter { $0.hasPrefix(word) }.sorted().map { Candidate(text: $0, detail: nil) } }
        if !names.isEmpty { return names.filter { $0.hasPrefix(word) }.sorted().map { Candidate(text: $0, detail: nil) } }
        // `data add MEASURE`, `chart MEASURE`: the kind the command's first argument names.
        for length in [2, 1] where typed.count == length {
            if let kind = Self.firstArgumentKinds[typed.prefix(length).joined(separator: " ")] { return idCandidates(prefix: word, kind: kind) }
        }
        // `initiative show …`, `pdsa close …`: ids of that kind; elsewhere any record.
        let kind = typed.count >= 2 ? RecordKind.allCases.first { $0.commandName == typed[0] } : nil
        return idCandidates(prefix: word, kind: kind)
    }

    static func optionNames(_ type: ParsableCommand.Type) -> [String] {
        let help = type.helpMessage(columns: 200)
        var names: Set<String> = []
        for token in help.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }) where token.hasPrefix("--") && token.count > 2 {
            names.insert(String(token))
        }
        return Array(names)
    }

    /// Shortened ids of live records starting with `prefix`, with their titles; of one kind when
    /// the command names one (`pdsa show …`). Deleted records are left out.
    private func idCandidates(prefix: String, kind: RecordKind?) -> [Candidate] {
        guard prefix.isEmpty || (try? RecordIDPrefix(prefix)) != nil else { return [] }
        let range = try? RecordIDPrefix(prefix.isEmpty ? "0" : prefix)
        let low = prefix.isEmpty ? [UInt8](repeating: 0, count: 16) : range!.lowerBound
        let high = prefix.isEmpty ? [UInt8](repeating: 0xFF, count: 16) : range!.upperBound
        let records = context.records
        let found: [RecordView] = (try? (kind.map { [$0] } ?? RecordKind.allCases).flatMap { kind -> [RecordView] in
            let ids = try records.replica.read { db in
                try Data.fetchAll(db, sql: "SELECT id FROM \(kind.rawValue) WHERE id BETWEEN ? AND ? AND live = 1 ORDER BY id LIMIT 50",
                                  arguments: [Data(low), Data(high)])
            }
            return try ids.map { try records.record(kind, RecordID(bytes: Array($0))) }
        }) ?? []
        return found.map { Candidate(text: $0.id.short, detail: "\($0.kind.commandName): \($0.headline)") }
    }
}

/// `qisync shell`.
struct ShellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Open the interactive shell on the replica; from a pipe or file, run its lines as a script.",
        discussion: """
            A script stops at the first failing line and exits non-zero, naming the line, with every line before it kept; \
            --keep-going runs every line. Runs of record commands are written in windows of one transaction each (every \
            line still all or nothing), and a window's output is printed once it is committed.
            """)

    @Flag(name: .customLong("keep-going"), help: "In a script, run every line even after one fails (still exit non-zero).")
    var keepGoing = false

    @OptionGroup var globals: GlobalOptions

    mutating func run() throws {
        let records = try QIRecords.open(home: globals.homeURL)
        let shell = Shell(records: records, out: .standardOutput(), err: .standardError())
        for warning in records.replica.keyWarnings { shell.err.line(warning) }
        if isatty(STDIN_FILENO) == 1 {
            var reader = EditLineReader(historyPath: records.replica.home.appendingPathComponent("shell_history").path,
                                        complete: shell.candidates)
            shell.runInteractive(&reader)
        } else {
            let code = shell.runScript(FileHandle.standardInput.readDataToEndOfFile(), keepGoing: keepGoing)
            shell.stopBackgroundServer()
            if code != 0 { throw ExitCode(code) }
        }
    }
}

/// Parses a script's lines ahead, on threads of their own (one per core), while the shell runs
/// earlier ones: parsing (the argument parser reflects over every option of a command, each
/// time) costs more than running a record line, and depends on nothing but the line's text.
final class ScriptParser: @unchecked Sendable {
    private let lines: [String?]
    private var parsed: [Shell.PreparedLine?]
    private var done: [Bool]
    /// The next line no parser has claimed.
    private var next = 0
    private var taken = 0
    private var stopped = false
    /// Parsers waiting for room ahead, and the line the shell waits for (if it does): who
    /// needs waking. Waking on every line cost more than parsing one from a template.
    private var idleParsers = 0
    private var awaited: Int?
    private let condition = NSCondition()
    /// How far ahead of the line being run the parsers may go.
    private let ahead = 2_048

    private let templates: CommandTemplates

    init(_ lines: [String?], templates: CommandTemplates, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.lines = lines
        self.templates = templates
        parsed = Array(repeating: nil, count: lines.count)
        done = Array(repeating: false, count: lines.count)
        guard lines.count > 1 else { return }
        for _ in 0..<max(1, min(threads, 4)) {
            let thread = Thread { [self] in work() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !stopped && next < lines.count && next - taken >= ahead {
                idleParsers += 1
                condition.wait()
                idleParsers -= 1
            }
            guard !stopped, next < lines.count else {
                condition.unlock()
                return
            }
            let index = next
            next += 1
            condition.unlock()
            let prepared = lines[index].map { Shell.prepare($0, templates: templates) }
            condition.lock()
            parsed[index] = prepared
            done[index] = true
            if awaited == index { condition.broadcast() }
            condition.unlock()
        }
    }

    /// Line `index` parsed (nil when it is not valid UTF-8), parsing it here if no parser
    /// has claimed it. Lines are taken in order.
    func take(_ index: Int) -> Shell.PreparedLine? {
        condition.lock()
        defer { condition.unlock() }
        taken = index + 1
        // Parsers stop `ahead` lines on; wake them when there is room for a good many more.
        if idleParsers > 0 && next - taken <= ahead / 2 { condition.broadcast() }
        if lines.count <= 1 || stopped { return lines[index].map { Shell.prepare($0, templates: templates) } }
        if index >= next {
            // Not claimed yet: parse it here rather than wait.
            next = max(next, index + 1)
            condition.unlock()
            let prepared = lines[index].map { Shell.prepare($0, templates: templates) }
            condition.lock()
            return prepared
        }
        awaited = index
        while !done[index] { condition.wait() }
        awaited = nil
        let prepared = parsed[index]
        parsed[index] = nil
        return prepared
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
