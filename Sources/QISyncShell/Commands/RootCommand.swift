import ArgumentParser
import CEditLine
import CTerminal
import Foundation
import NIOCore
import QISyncDomain
import QISyncProtocol
import QISyncTransport

/// The `qisync` command tree. The shell parses each line with this same tree, so every shell
/// command is also a CLI subcommand and the two never drift apart.
public struct QisyncCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qisync",
        abstract: "An offline-first replica of NHS quality-improvement work.",
        discussion: """
            Each replica is one SQLite file plus the site's signing key (and, on a trust's hub, the \
            trust key), in --home (or $QISYNC_HOME, default ~/.qisync). Every change is a signed, \
            hash-chained entry in this site's log. Start with 'qisync init', then 'qisync shell'.
            --home DIR may also come first: 'qisync --home DIR COMMAND'.
            """,
        version: QisyncCommand.version,
        subcommands: [
            InitCommand.self, ShellCommand.self, StatusCommand.self, VerifyCommand.self, RepairCommand.self, BackupCommand.self, RestoreCommand.self,
            InitiativeCommand.self, PDSACommand.self, LogCommand.self, AdaptCommand.self, AdaptationCommand.self, LineageCommand.self,
            MeasureCommand.self, DataCommand.self, EventCommand.self, ChartCommand.self, ReportCommand.self,
            ShareCommand.self, UnshareCommand.self, RedactCommand.self, ConflictsCommand.self, ResolveCommand.self, HistoryCommand.self,
            SQLCommand.self, ServeCommand.self, PeerCommand.self, SyncCommand.self,
            BundleCommand.self, WhoamiCommand.self, EnrolCommand.self, RevokeCommand.self, TrustCommand.self, SiteCommand.self, AuditCommand.self,
        ]
    )

    public init() {}

    /// This build's version, with the protocol and replica formats it speaks.
    public static let version = "qisync 0.9.0 (sync protocol \(WireLimits.versions.lowerBound) to \(WireLimits.versions.upperBound), bundle format \(BundleFile.version), replica schema 2)"

    /// The command line with options given before the command (`qisync --home DIR COMMAND`,
    /// as `git -C` or `psql -d`) moved after it, where the command tree reads them.
    public static func normalise(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--home", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--home=") || first == "--utc" || first == "--json" {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty, !rest.isEmpty else { return arguments }
        return Array(rest) + leading
    }

    /// When the leading words name no command, what to say instead: the nearest command's name.
    public static func unknownCommand(_ words: [String], extra: [String] = []) -> String? {
        var type: ParsableCommand.Type = QisyncCommand.self
        var path: [String] = []
        for word in words {
            let subcommands = type.configuration.subcommands
            guard !subcommands.isEmpty, !word.hasPrefix("-") else { return nil }
            let names = subcommands.map { $0.configuration.commandName ?? String(describing: $0).lowercased() } + (path.isEmpty ? extra : [])
            if let next = subcommands.first(where: { ($0.configuration.commandName ?? String(describing: $0).lowercased()) == word }) {
                type = next
                path.append(word)
                continue
            }
            if path.isEmpty && extra.contains(word) { return nil }
            // A default subcommand takes what is not a subcommand's name (`sync hub`).
            if type.configuration.defaultSubcommand != nil { return nil }
            let near = names.map { ($0, Self.distance($0, word)) }.filter { $0.1 <= max(2, word.count / 3) }.min { $0.1 < $1.1 }
            let context = path.isEmpty ? "" : "'\(path.joined(separator: " "))' has no "
            let hint = near.map { "; did you mean '\((path + [$0.0]).joined(separator: " "))'?" } ?? "; type 'help\(path.isEmpty ? "" : " " + path.joined(separator: " "))' for the list"
            return path.isEmpty ? "unknown command '\(word)'\(hint)" : "\(context)command '\(word)'\(hint)"
        }
        return nil
    }

    /// The edit distance between two words (insertions, deletions, substitutions).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() { current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))) }
            previous = current
        }
        return previous[b.count]
    }
}

/// Options every command takes.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica's folder (default: $QISYNC_HOME, else ~/.qisync).", valueName: "DIR"))
    var home: String?

    @Flag(name: .long, help: "Print JSON for scripts instead of tables.")
    var json = false

    @Flag(name: .long, help: "Show times in UTC rather than local time.")
    var utc = false

    public init() {}

    static let slots = CommandSlots<Self>(text: ["home": \.home], flags: ["json", "utc"])

    /// The replica folder this command uses.
    var homeURL: URL { Self.resolveHome(home) }

    /// Resolves `--home`, `$QISYNC_HOME` and the default, in that order.
    static func resolveHome(_ option: String?) -> URL {
        if let option, !option.isEmpty { return URL(fileURLWithPath: (option as NSString).expandingTildeInPath) }
        if let env = ProcessInfo.processInfo.environment["QISYNC_HOME"], !env.isEmpty {
            return URL(fileURLWithPath: (env as NSString).expandingTildeInPath)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".qisync")
    }
}

/// What a command works on: the open replica and where its output goes.
public final class CommandContext {
    /// The replica's records.
    public let records: QIRecords
    /// Output.
    public let out: OutputSink
    /// Progress lines and notices (standard error).
    public let notices: OutputSink
    /// True inside the interactive shell or a shell script, false for a one-off CLI command.
    public let inShell: Bool
    /// The server the shell runs in the background, if any.
    var backgroundServer: SyncServer?
    /// How times are shown (set from each command's `--utc`).
    var times = Times(utc: false)
    /// Asks the person a question and returns their answer, when someone is at a terminal to
    /// answer; nil in scripts and pipes, where commands that need confirming need `--yes`.
    var ask: ((String) -> String?)?

    /// Takes the hub's name for the trust when a sync, bundle or enrolment brought a different
    /// one, and says so.
    func adoptHubTrustName() {
        guard let (old, new) = try? records.replica.adoptHubTrustName() else { return }
        notices.line(old.isEmpty ? "this trust is '\(new)' (as its hub names it)"
                                 : "this trust is '\(new)' at its hub, not '\(old)' as given at init; the hub's name is used from now on")
    }

    /// Whether the person confirms `question` (typing y or yes); with `yes` given, true without
    /// asking. Where no one can answer, an error saying to give `--yes`.
    func confirm(_ question: String, yes: Bool, what: String) throws -> Bool {
        if yes { return true }
        guard let ask else { throw DomainError("\(what) needs confirming: add --yes (nothing was changed)") }
        let answer = ask(question + " [y/N] ")?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return answer == "y" || answer == "yes"
    }

    /// Creates a context.
    public init(records: QIRecords, out: OutputSink, notices: OutputSink = .standardError(), inShell: Bool = false) {
        self.records = records
        self.out = out
        self.notices = notices
        self.inShell = inShell
    }

    deinit { _ = try? backgroundServer?.close().wait() }

    /// Waits for a sync, cancelling it when the person presses Ctrl-C (in the shell, or at a
    /// terminal running one command); the cancelled session ends cleanly and is recorded.
    func cancellable(_ start: (SyncCancellation?) -> EventLoopFuture<SyncReport>) throws -> SyncReport {
        let cancellation = SyncCancellation()
        // Not cleared here: the shell clears it as it shows the prompt, so a Ctrl-C pressed
        // once the line was read, while the sync was still starting, cancels it.
        if !inShell { qisync_install_sigint() }
        let future = start(cancellation)
        // Woken as soon as the sync ends (a sleep between looks kept every sync waiting up
        // to 20 ms more, a third of a no-op sync); a Ctrl-C is looked for every 20 ms meanwhile.
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { _ in done.signal() }
        while done.wait(timeout: .now() + .milliseconds(20)) == .timedOut {
            if qisync_take_interrupt() == 1 {
                notices.line("cancelling the sync (what was acknowledged is kept)…")
                cancellation.cancel()
            }
        }
        return try future.wait()
    }
}

/// A command that works on an open replica. From the CLI it opens the replica in `--home`;
/// in the shell it runs on the shell's replica.
protocol ReplicaCommand: ParsableCommand {
    var globals: GlobalOptions { get }
    func run(in context: CommandContext) throws
}

extension ReplicaCommand {
    mutating func run() throws {
        do {
            let context = CommandContext(records: try QIRecords.open(home: globals.homeURL), out: .standardOutput())
            context.times = Times(utc: globals.utc)
            if isatty(STDIN_FILENO) == 1 {
                context.ask = { question in
                    FileHandle.standardError.write(Data(question.utf8))
                    return Swift.readLine()
                }
            }
            for warning in context.records.replica.keyWarnings { context.notices.line(warning) }
            try run(in: context)
        } catch {
            throw FailureMessages.explain(error)
        }
    }
}
