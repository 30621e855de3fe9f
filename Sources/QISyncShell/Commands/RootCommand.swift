import ArgumentParser
import Foundation
import QISyncDomain
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
            """,
        subcommands: [
            InitCommand.self, ShellCommand.self, StatusCommand.self, VerifyCommand.self,
            InitiativeCommand.self, PDSACommand.self, LogCommand.self, AdaptCommand.self, LineageCommand.self,
            ShareCommand.self, UnshareCommand.self, ConflictsCommand.self, ResolveCommand.self, HistoryCommand.self,
            SQLCommand.self, ServeCommand.self, PeerCommand.self, SyncCommand.self,
            BundleCommand.self, WhoamiCommand.self, EnrolCommand.self, RevokeCommand.self, TrustCommand.self, AuditCommand.self,
        ]
    )

    public init() {}
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

    /// Creates a context.
    public init(records: QIRecords, out: OutputSink, notices: OutputSink = .standardError(), inShell: Bool = false) {
        self.records = records
        self.out = out
        self.notices = notices
        self.inShell = inShell
    }

    deinit { _ = try? backgroundServer?.close().wait() }
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
            for warning in context.records.replica.keyWarnings { context.notices.line(warning) }
            try run(in: context)
        } catch {
            throw FailureMessages.explain(error)
        }
    }
}
