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
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return .success }
        let words: [String]
        do { words = try LineTokenizer.words(trimmed) } catch {
            err.line("error: \(error.description)")
            return .failure(exitCode: ExitCode.validationFailure.rawValue)
        }
        switch words.first {
        case "exit", "quit": return .exit
        case "help": return help(Array(words.dropFirst()))
        default: break
        }
        if words.contains("--help") || words.contains("-h") {
            return help(words.filter { $0 != "--help" && $0 != "-h" })
        }
        if let problem = QisyncCommand.unknownCommand(Array(words.prefix { !$0.hasPrefix("-") }.prefix(2)), extra: ["help", "exit", "quit"]) {
            err.line("error: \(problem)")
            return .failure(exitCode: ExitCode.validationFailure.rawValue)
        }
        do {
            let parsed = try QisyncCommand.parseAsRoot(words)
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
    public func runScript(_ input: Data, keepGoing: Bool) -> Int32 {
        var status: Int32 = 0
        var lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            var bytes = Array(raw)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard let line = String(validating: bytes, as: UTF8.self) else {
                err.line("line \(number): not valid UTF-8; nothing on this line was run")
                status = 65
                if keepGoing { continue } else { return status }
            }
            switch execute(line) {
            case .success: continue
            case .exit: return status
            case .failure(let code):
                err.line("line \(number): failed: \(line)")
                status = code
                if !keepGoing { return status }
            }
        }
        return status
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
        discussion: "A script stops at the first failing line and exits non-zero, naming the line; --keep-going runs every line.")

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
