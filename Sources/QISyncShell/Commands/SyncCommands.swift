import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import QISyncCore
import QISyncDomain
import QISyncProtocol
import QISyncStore
import QISyncTransport

/// The logger for sync and serve: swift-log to standard error.
let syncLogger: Logger = {
    var logger = Logger(label: "qisync", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = ProcessInfo.processInfo.environment["QISYNC_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}()

/// `serve`: answers sync sessions from peers.
struct ServeCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve this replica to peers that sync with it.",
        discussion: """
            From the command line it runs until Ctrl-C or SIGTERM, then stops accepting, closes open \
            sessions (a batch being applied is committed whole or not at all), writes each into the \
            sync history and exits; it logs each \
            session to standard error. Inside the shell it runs in the background while you keep \
            working, logging to serve.log in the replica's folder (not over your typing): 'serve \
            --status' says where it listens and how many sessions it has had, 'serve --log' shows the \
            log's end, 'serve --stop' stops it, and leaving the shell stops it too. 'status' says \
            whether the replica is being served, by this shell or another process. \
            Every session runs over mutual TLS 1.3: only enrolled, unrevoked sites of this trust \
            and of trusts pinned here ('trust add') get in, and sites of other trusts receive \
            shared records only. Refused connections and entries are listed by 'audit'.
            """)

    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1:\(PeerAddress.defaultPort); 0.0.0.0:\(PeerAddress.defaultPort) for every interface).", valueName: "HOST:PORT"))
    var listen = "127.0.0.1:\(PeerAddress.defaultPort)"

    @Flag(help: "Inside the shell: stop the background server.")
    var stop = false

    @Flag(help: "Say whether this replica is being served, where, and how many sessions it has had.")
    var status = false

    @Flag(help: "Show the end of the background server's log (serve.log in the replica's folder).")
    var log = false

    @Option(help: "End a session when its peer is silent for this many seconds.")
    var timeout = 60

    @OptionGroup var globals: GlobalOptions

    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        if status {
            if let serving = ServingState.read(home: replica.home) {
                context.out.line("serving \(replica.identity.trustCode)/\(replica.identity.siteName) on \(serving.address) since \(context.times.text(serving.milliseconds))"
                                 + "\(serving.pid == getpid() ? " (this shell)" : " (process \(serving.pid))"); \(Plural.count(try replica.syncHistory(limit: 100_000).filter { $0.role == "server" && $0.startedMilliseconds >= serving.milliseconds }.count, "session", "sessions")) since")
            } else {
                context.out.line("not serving")
            }
            return
        }
        if log {
            let path = ServingState.logURL(home: replica.home).path
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DomainError("no server log yet (\(path)); 'serve' in the shell writes one") }
            for line in text.split(separator: "\n").suffix(40) { context.out.line(String(line)) }
            return
        }
        if stop {
            guard context.inShell, let server = context.backgroundServer else { throw DomainError("no server is running in this shell") }
            try server.close().wait()
            context.backgroundServer = nil
            ServingState.clear(home: replica.home)
            context.out.line("stopped serving")
            return
        }
        let address: PeerAddress
        do { address = try PeerAddress(parsing: listen) } catch { throw DomainError(error.description) }
        guard (1...3600).contains(timeout) else { throw DomainError("--timeout takes 1 to 3600 seconds") }
        if context.inShell, let server = context.backgroundServer {
            throw DomainError("already serving on \(server.address); 'serve --stop' first")
        }
        if let other = ServingState.read(home: replica.home), other.pid != getpid() {
            context.notices.line("note: process \(other.pid) is already serving this replica on \(other.address)")
        }
        let logger = context.inShell ? ServingState.fileLogger(home: replica.home) : syncLogger
        let server: SyncServer
        do {
            server = try SyncServer.start(replica: replica, address: address, logger: logger, timeout: .seconds(Int64(timeout))) { client, report in
                let who = report.peerIdentity ?? "an unidentified peer"
                if let error = report.error {
                    logger.warning("sync with \(who) at \(client) failed after \(report.counters.entriesIn) in, \(report.counters.entriesOut) out: \(error)")
                } else {
                    let refused = report.counters.refusedIn > 0 ? ", \(report.counters.refusedIn) refused" : ""
                    logger.info("synced with \(who) at \(client): \(report.counters.entriesIn) entries in\(refused), \(report.counters.entriesOut) out")
                }
            }.wait()
        } catch {
            throw DomainError("could not listen on \(address): \(error)")
        }
        let identity = replica.identity
        ServingState.write(home: replica.home, address: server.address, milliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
        if context.inShell {
            context.backgroundServer = server
            context.out.line("serving \(identity.trustCode)/\(identity.siteName) on \(server.address) in the background; its log goes to \(ServingState.logURL(home: replica.home).path) ('serve --log'); 'serve --stop' stops it")
            return
        }
        context.out.line("serving \(identity.trustCode)/\(identity.siteName) on \(server.address) (Ctrl-C to stop)")
        Self.waitForTermination()
        context.notices.line("stopping: closing sessions…")
        try? server.close().wait()
        ServingState.clear(home: replica.home)
        context.notices.line("stopped")
    }

    /// Blocks until SIGINT or SIGTERM.
    static func waitForTermination() {
        let stopped = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stopped.signal() }
            source.resume()
            sources.append(source)
        }
        stopped.wait()
        sources.forEach { $0.cancel() }
    }
}

/// Whether a replica is being served, and where: a small file beside it while a server runs
/// (`serving`: address, process, since), so `status` in another process can tell.
enum ServingState {
    static func url(home: URL) -> URL { home.appendingPathComponent("serving") }
    static func logURL(home: URL) -> URL { home.appendingPathComponent("serve.log") }

    static func write(home: URL, address: String, milliseconds: UInt64) {
        try? "\(address)\n\(getpid())\n\(milliseconds)\n".write(to: url(home: home), atomically: true, encoding: .utf8)
    }

    static func clear(home: URL) { try? FileManager.default.removeItem(at: url(home: home)) }

    /// The server serving this replica, if its process is still running.
    static func read(home: URL) -> (address: String, pid: Int32, milliseconds: UInt64)? {
        guard let text = try? String(contentsOf: url(home: home), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 3, let pid = Int32(lines[1]), let since = UInt64(lines[2]), kill(pid, 0) == 0 else { return nil }
        return (lines[0], pid, since)
    }

    /// A logger appending to serve.log, for a server running in the shell's background.
    static func fileLogger(home: URL) -> Logger {
        let path = logURL(home: home).path
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = FileHandle(forWritingAtPath: path)
        _ = try? handle?.seekToEnd()
        var logger = Logger(label: "qisync") { label in FileLogHandler(handle: handle, label: label) }
        logger.logLevel = ProcessInfo.processInfo.environment["QISYNC_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return logger
    }
}

/// A swift-log handler appending timestamped lines to a file.
struct FileLogHandler: LogHandler {
    let handle: FileHandle?
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    private static let lock = NSLock()

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = "\(Times.json(UInt64(Date().timeIntervalSince1970 * 1000))) \(event.level) \(event.message)\n"
        Self.lock.lock()
        defer { Self.lock.unlock() }
        try? handle?.write(contentsOf: Data(text.utf8))
    }
}

/// `peer add|list|remove`.
struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Name the replicas this one syncs with.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Add a peer: a name and where it serves (HOST:PORT).")
        @Argument(help: "A name for the peer, e.g. hub.") var name: String
        @Argument(help: ArgumentHelp("Where it serves, HOST:PORT (default port \(PeerAddress.defaultPort)).", valueName: "HOST:PORT")) var address: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let parsed: PeerAddress
            do { parsed = try PeerAddress(parsing: address) } catch { throw DomainError(error.description) }
            guard parsed.port != 0 else { throw DomainError("a peer's port cannot be 0") }
            try context.records.replica.addPeer(name: name, address: parsed.description)
            context.out.line(globals.json ? "{\"name\": \"\(name)\", \"address\": \"\(parsed)\"}" : "added peer \(name) at \(parsed)")
        }
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(
            abstract: "List peers with their last sync, its outcome and how far behind each is; then the sites that sync with this replica (a hub's wards).",
            discussion: "'behind' counts the entries held here that the peer did not hold after the last good sync, of those it may receive: another trust is sent shared records only.")
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let peers = try context.records.replica.peers()
            let visitors = try context.records.replica.visitors()
            if globals.json {
                context.out.json(["peers": peers.map(PeerRendering.json), "synced_with_us": visitors.map(PeerRendering.json)])
                return
            }
            context.out.line("peers (this replica syncs with them)")
            context.out.table(["name", "address", "last sync", "outcome", "behind"], peers.map { PeerRendering.row($0, times: context.times) })
            if peers.isEmpty { context.out.line("  add one with: peer add NAME HOST:PORT") }
            if !visitors.isEmpty {
                context.out.line()
                context.out.line("sites that sync with this replica")
                context.out.table(["site", "from", "last sync", "outcome", "behind"], visitors.map { PeerRendering.row($0, times: context.times) })
            }
        }
    }

    struct Remove: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a peer (its sync history stays).")
        @Argument(help: "The peer's name.") var name: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.records.replica.removePeer(name: name)
            context.out.line("removed peer \(name)")
        }
    }
}

/// How peers are shown.
enum PeerRendering {
    static func row(_ peer: Peer, times: Times) -> [String] {
        [peer.name, peer.address,
         peer.lastSync.map { times.text($0.startedMilliseconds) } ?? "never",
         peer.lastSync?.outcome ?? "",
         peer.behind.map { $0 == 0 ? "up to date" : Plural.count($0, "entry", "entries") } ?? "unknown"]
    }

    static func json(_ peer: Peer) -> [String: Any] {
        var json: [String: Any] = ["name": peer.name, "address": peer.address]
        if let last = peer.lastSync {
            json["last_sync"] = Times.json(last.startedMilliseconds)
            json["outcome"] = last.outcome
            json["sent"] = last.sent
            json["received"] = last.received
        }
        if let behind = peer.behind { json["behind"] = behind }
        return json
    }
}

/// `sync PEER` and `sync plan PEER`: one session with a peer, or a dry run of one.
struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync with a peer (by name, or HOST:PORT): both ways unless --pull or --push. 'sync plan PEER' is a dry run.",
        discussion: """
            Each side sends only what the other lacks, in batches; each batch is verified, applied in one \
            transaction and acknowledged. If the sync is cut off, what was acknowledged stays, and the next \
            sync carries on from there. Sessions run over mutual TLS 1.3; a peer of another trust gets \
            shared records only. In the shell, Ctrl-C cancels a sync (what was acknowledged stays), and the
            cancelled session is recorded for 'audit'.
            """,
        subcommands: [Run.self, Plan.self],
        defaultSubcommand: Run.self)

    struct Run: ReplicaCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Sync with a peer (what 'sync PEER' does).", shouldDisplay: false)
        @Argument(help: ArgumentHelp("A peer's name ('peer list'), or HOST:PORT.", valueName: "PEER")) var peer: String
        @Flag(help: "Only take the peer's entries.") var pull = false
        @Flag(help: "Only send this replica's entries.") var push = false
        @Option(help: "Give up when the peer is silent for this many seconds.") var timeout = 60
        @OptionGroup var globals: GlobalOptions

        func run(in context: CommandContext) throws {
            guard !(pull && push) else { throw DomainError("--pull and --push together mean nothing moves; give one or neither") }
            try SyncCommand.perform(context, peer: peer, direction: pull ? .pull : push ? .push : .both, dryRun: false, timeout: timeout, json: globals.json)
        }
    }

    struct Plan: ReplicaCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "A dry run of 'sync': what would arrive (entries, records), be refused and conflict, and what would be sent; nothing is kept or sent.",
            discussion: """
                Connects, fetches what the peer would send and works out, without keeping anything or \
                sending anything, what would arrive, what would be refused and which conflicts would appear \
                here, and what this side would send.
                """)
        @Argument(help: ArgumentHelp("A peer's name ('peer list'), or HOST:PORT.", valueName: "PEER")) var peer: String
        @Option(help: "Give up when the peer is silent for this many seconds.") var timeout = 60
        @OptionGroup var globals: GlobalOptions

        func run(in context: CommandContext) throws {
            try SyncCommand.perform(context, peer: peer, direction: .pull, dryRun: true, timeout: timeout, json: globals.json)
        }
    }

    /// Resolves a peer by name or address, with the reason when neither works.
    static func address(of peer: String, replica: Replica) throws -> (PeerAddress, Peer?) {
        let named = try replica.peer(named: peer)
        let names = try replica.peers().map(\.name)
        let unknown = DomainError("no peer called '\(peer)'\(names.isEmpty ? "" : " (peers: \(names.joined(separator: ", ")))"); add one with 'peer add NAME HOST:PORT', or give HOST:PORT")
        // An unknown name is not tried as a host: an address needs its port.
        guard named != nil || peer.contains(":") else { throw unknown }
        do { return (try PeerAddress(parsing: named?.address ?? peer), named) } catch {
            if named == nil, peer.contains(":") { throw DomainError(error.description) }
            throw unknown
        }
    }

    static func perform(_ context: CommandContext, peer: String, direction: SyncDirection, dryRun: Bool, timeout: Int, json: Bool) throws {
        guard (1...3600).contains(timeout) else { throw DomainError("--timeout takes 1 to 3600 seconds") }
        let replica = context.records.replica
        let (address, named) = try address(of: peer, replica: replica)
        let meter = ProgressMeter(sink: context.notices, enabled: isatty(STDERR_FILENO) == 1 && !json)
        let report: SyncReport
        do {
            report = try context.cancellable { cancellation in
                SyncClient.sync(replica: replica, address: address, direction: direction, dryRun: dryRun, logger: syncLogger,
                                timeout: .seconds(Int64(timeout)), cancellation: cancellation, progress: { meter.update($0) })
            }
        } catch let error as SyncError {
            meter.clear()
            try? replica.recordSync(SyncRecord(peer: named?.name, address: address.description, role: "client",
                                               startedMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000), seconds: 0,
                                               direction: direction.rawValue, sent: 0, received: 0, rawBytes: 0, wireBytes: 0,
                                               conflicts: 0, outcome: "failed: \(error.message)", peerVector: nil))
            throw DomainError(error.message)
        }
        meter.clear()
        if dryRun {
            if let error = report.error { throw DomainError("sync plan with \(named?.name ?? address.description) failed: \(error)") }
            guard let plan = report.plan else { throw DomainError("the peer ended the session before the plan was complete") }
            PlanRendering.render(from: report.peerIdentity ?? address.description, incoming: plan.incoming, records: plan.incomingRecords,
                                 outgoing: plan.outgoing, json: json, to: context.out)
            return
        }
        try replica.recordSync(SyncRecord(report: report, peerName: named?.name, address: address.description, role: "client", direction: direction))
        if report.error == nil, let site = report.peer?.origin, let holds = report.peerHolds {
            try replica.rememberPeerVector(site: site, vector: holds, source: "sync")
        }
        if report.error == nil { context.adoptHubTrustName() }
        let conflicts = try context.records.conflicts().count
        if json {
            context.out.json(SyncRendering.json(report, direction: direction, conflictsNow: conflicts))
        } else {
            SyncRendering.summary(report, address: address, direction: direction, conflictsNow: conflicts, to: context.out)
        }
        if let error = report.error {
            let next = error.code == .notAuthorised ? "Nothing was exchanged." : "What was acknowledged is kept; run sync again to carry on."
            throw DomainError("sync with \(named?.name ?? address.description) \(error.code == .cancelled ? "was cancelled" : "failed: \(error)"). \(next)")
        }
    }
}

/// A progress line on standard error, redrawn in place: entries and bytes done of the total, rate, time left.
final class ProgressMeter: @unchecked Sendable {
    // The lock guards every field; progress arrives on an event-loop thread.
    private let lock = NSLock()
    private let sink: OutputSink
    private let enabled: Bool
    private let started = Date()
    private var lastDrawn = Date.distantPast
    private var drawn = false

    init(sink: OutputSink, enabled: Bool) {
        self.sink = sink
        self.enabled = enabled
    }

    func update(_ counters: SyncCounters) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDrawn) >= 0.2 else { return }
        lastDrawn = now
        drawn = true
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + Self.line(counters, elapsed: now.timeIntervalSince(started))).utf8))
    }

    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func line(_ c: SyncCounters, elapsed: Double) -> String {
        let doneEntries = c.entriesIn + c.entriesOut, totalEntries = c.expectedIn.entries + c.expectedOut.entries
        let doneBytes = c.bytesIn + c.bytesOut, totalBytes = c.expectedIn.bytes + c.expectedOut.bytes
        let rate = elapsed > 0 ? Double(doneEntries) / elapsed : 0
        let left = rate > 0 ? Double(totalEntries - min(doneEntries, totalEntries)) / rate : 0
        return String(format: "syncing: %llu/%llu entries, %@/%@, %.0f entries/s, %.0f s left",
                      doneEntries, totalEntries, SyncRendering.bytes(doneBytes), SyncRendering.bytes(totalBytes), rate, left)
    }
}

/// How a sync's outcome is shown.
enum SyncRendering {
    /// A byte count for people: "512 bytes", "20.4 KB", "82 MB" (decimal units, as `ls -h --si`).
    static func bytes(_ count: UInt64) -> String {
        switch count {
        case ..<1000: return "\(count) bytes"
        case ..<1_000_000: return String(format: "%.1f KB", Double(count) / 1e3)
        case ..<1_000_000_000: return String(format: "%.1f MB", Double(count) / 1e6)
        default: return String(format: "%.2f GB", Double(count) / 1e9)
        }
    }

    static func summary(_ report: SyncReport, address: PeerAddress, direction: SyncDirection, conflictsNow: Int, to out: OutputSink) {
        let peer = report.peerIdentity.map { "\($0) at \(address)" } ?? "\(address)"
        let c = report.counters
        var refused: [(String, String)] = []
        if c.refusedIn > 0 {
            refused.append(("refused here", Plural.count(c.refusedIn, "entry", "entries") + ": " + report.refusals.joined(separator: "; ") + " (see 'audit')"))
        }
        if c.refusedOut > 0 { refused.append(("refused there", Plural.count(c.refusedOut, "entry", "entries") + " (the peer's 'audit' says why)")) }
        out.fields([
            ("peer", peer),
            ("direction", direction.rawValue),
            ("received", Plural.count(c.entriesIn, "entry", "entries") + " (\(bytes(c.bytesIn)))"),
            ("sent", Plural.count(c.entriesOut, "entry", "entries") + " (\(bytes(c.bytesOut)))"),
            ("on the wire", "\(bytes(report.wireIn)) in, \(bytes(report.wireOut)) out"),
            ("time", String(format: "%.2f s", report.seconds)),
            ("conflicts", "\(c.conflictsIn) appeared here, \(c.conflictsOut) at the peer; \(conflictsNow) open here\(conflictsNow > 0 ? " (see 'conflicts')" : "")"),
        ] + refused + [
            ("outcome", report.error.map { "FAILED: \($0)" } ?? "ok"),
        ])
    }

    static func json(_ report: SyncReport, direction: SyncDirection, conflictsNow: Int) -> [String: Any] {
        let c = report.counters
        var json: [String: Any] = [
            "direction": direction.rawValue, "received": c.entriesIn, "sent": c.entriesOut, "raw_bytes_in": c.bytesIn,
            "raw_bytes_out": c.bytesOut, "wire_bytes_in": report.wireIn, "wire_bytes_out": report.wireOut,
            "seconds": report.seconds, "conflicts_appeared": c.conflictsIn, "conflicts_open": conflictsNow,
            "outcome": report.error.map { "failed: \($0)" } ?? "ok",
            "refused_here": c.refusedIn, "refused_there": c.refusedOut, "refusal_reasons": report.refusals,
        ]
        if let peer = report.peer { json["peer"] = ["trust": peer.trust, "site": peer.site, "kind": peer.kind, "identity": report.peerIdentity ?? ""] }
        return json
    }
}

