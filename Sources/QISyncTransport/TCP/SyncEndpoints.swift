import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import QISyncCore
import QISyncProtocol
import QISyncStore

/// Which ways a sync moves entries.
public enum SyncDirection: String, Sendable, CaseIterable {
    /// Both ways (the default).
    case both
    /// Only from the peer to this replica.
    case pull
    /// Only from this replica to the peer.
    case push
}

extension Replica {
    /// This replica's HELLO.
    func hello(direction: SyncDirection, directoryDigest: [UInt8], dryRun: Bool = false) -> Hello {
        Hello(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, kind: identity.kind.rawValue,
              sends: direction != .pull && !dryRun, receives: direction != .push, directoryDigest: directoryDigest, dryRun: dryRun)
    }
}

/// The threads that do sessions' replica work (reading, applying, recording).
///
/// The work blocks — on fsync, and on SQLite's write lock while another writer (a shell, a
/// second session) holds it, for up to its busy timeout — so the pool has more threads than
/// the machine has cores: NIO's shared pool (one thread per core) let two sessions waiting on
/// the lock stall every other session's handshake and HELLO on a two-core machine.
public enum SyncWorkers {
    public static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(8, 2 * System.coreCount))
        pool.start()
        return pool
    }()
}

/// How long a peer may stay silent before the session fails.
public let defaultSyncTimeout = TimeAmount.seconds(60)

func addSyncHandlers(to channel: Channel, replica: Replica, direction: SyncDirection, tls: NIOSSLContext?, threadPool: NIOThreadPool,
                     logger: Logger, timeout: TimeAmount, completion: SyncCompletion, isServer: Bool, dryRun: Bool = false,
                     progress: (@Sendable (SyncCounters) -> Void)?) -> EventLoopFuture<Void> {
    channel.eventLoop.makeCompletedFuture {
        let operations = channel.pipeline.syncOperations
        // The idle timeout comes first so that a peer stalling the TLS handshake is dropped too.
        try operations.addHandler(IdleStateHandler(readTimeout: timeout))
        var verification: PeerVerification?
        if let tls {
            let check = PeerVerification()
            let callback = TLSSetup.verificationCallback(replica: replica, verification: check)
            if isServer {
                try operations.addHandler(NIOSSLServerHandler(context: tls, customVerificationCallback: callback))
            } else {
                try operations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil, customVerificationCallback: callback))
            }
            verification = check
        }
        try operations.addHandlers([
            ByteToMessageHandler(FrameDecoder()),
            SyncConnectionHandler(replica: replica, direction: direction, verification: verification, threadPool: threadPool,
                                  logger: logger, completion: completion, completesWhenNeverActive: isServer, dryRun: dryRun, progress: progress),
        ])
    }
}

/// The TLS context for a replica's connections, or nil in the plaintext test mode (which
/// refuses anything but a loopback address).
func tlsContext(replica: Replica, security: TransportSecurity, host: String, isServer: Bool) throws -> NIOSSLContext? {
    switch security {
    case .mutualTLS:
        return try TLSSetup.context(replica: replica, isServer: isServer)
    case .plaintextLoopbackForTests:
        guard TLSSetup.isLoopback(host) else {
            throw SyncError(.notAuthorised, "plaintext sync is for tests on loopback addresses only; \(host) is not one")
        }
        return nil
    }
}

/// A replica serving sync sessions to any number of peers at once.
public final class SyncServer: Sendable {
    private let channel: Channel
    private let connections: ConnectionRegistry
    /// Where it listens.
    public let localAddress: SocketAddress

    /// Where it listens, as `HOST:PORT`.
    public var address: String { PeerAddress.describe(localAddress) }

    private init(channel: Channel, connections: ConnectionRegistry) {
        self.channel = channel
        self.connections = connections
        localAddress = channel.localAddress!
    }

    /// Starts listening on `address`. Each finished or failed session is recorded in the
    /// replica's sync history, then passed to `onSession` with the client's address.
    public static func start(replica: Replica, address: PeerAddress, security: TransportSecurity = .mutualTLS,
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             threadPool: NIOThreadPool = SyncWorkers.pool, logger: Logger, timeout: TimeAmount = defaultSyncTimeout,
                             onSession: (@Sendable (String, SyncReport) -> Void)? = nil) -> EventLoopFuture<SyncServer> {
        let connections = ConnectionRegistry()
        let contexts: ServerTLSContexts
        do { contexts = try ServerTLSContexts(replica: replica, security: security, host: address.host) } catch {
            return group.next().makeFailedFuture(error)
        }
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let client = channel.remoteAddress.map(PeerAddress.describe) ?? "unknown"
                connections.add(channel)
                let completion = SyncCompletion(channel.eventLoop.makePromise(of: SyncReport.self))
                completion.future.whenSuccess { report in
                    var record = SyncRecord(report: report, peerName: report.peerIdentity, address: client,
                                            role: "server", direction: .both)
                    if report.peer?.dryRun == true, report.error == nil { record.outcome = "ok (the peer's dry run: it kept nothing)" }
                    let finished = record
                    // Off the event loop, but counted: closing the server waits for it. `onSession`
                    // hears of the session once it is in the history.
                    connections.recordsBeingWritten.enter()
                    threadPool.submit { _ in
                        defer { connections.recordsBeingWritten.leave() }
                        do {
                            try replica.recordSync(finished)
                            if report.error == nil, report.peer?.dryRun == false, report.counters.refusedOut == 0,
                               let site = report.peer?.origin, let holds = report.peerHolds {
                                try replica.rememberPeerVector(site: site, vector: holds, source: "sync")
                            }
                        } catch { logger.warning("could not record a sync session: \(error)") }
                        onSession?(client, report)
                    }
                }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                // Which certificate to present reads the replica (is this site enrolled yet?):
                // off the event loop, which every connection of the process shares, so a busy
                // replica never holds up other sessions' reads and timers.
                return TLSSetup.handshakeChecks.runIfActive(eventLoop: channel.eventLoop) { try contexts.current() }.flatMap { tls in
                    addSyncHandlers(to: channel, replica: replica, direction: .both, tls: tls, threadPool: threadPool, logger: logger,
                                    timeout: timeout, completion: completion, isServer: true, progress: nil)
                }
            }
            .bind(host: address.host, port: address.port)
            .map { SyncServer(channel: $0, connections: connections) }
    }

    /// Stops accepting and closes every session in progress; an unacknowledged batch is
    /// either applied whole or not at all (one transaction). It completes once every ended
    /// session is in the sync history, so a process may exit as soon as it does.
    public func close() -> EventLoopFuture<Void> {
        let open = connections.all()
        for connection in open { connection.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent()) }
        let closed = open.map { connection in
            // The handler sends ERROR 9 and closes; close anyway if it has not within a second.
            connection.eventLoop.scheduleTask(in: .seconds(1)) { connection.close(promise: nil) }
            return connection.closeFuture
        }
        let eventLoop = channel.eventLoop, connections = connections
        return channel.close().and(EventLoopFuture.andAllComplete(closed, on: eventLoop)).flatMap { _ in
            // A session's record is counted before its connection's close completes (its end is
            // reported as its handler is removed, which comes first), so none is missed here.
            let written = eventLoop.makePromise(of: Void.self)
            connections.recordsBeingWritten.notify(queue: .global()) { written.succeed(()) }
            return written.futureResult
        }
    }
}

/// A server's TLS context, made again when the site's own certificate changes (a ward that
/// receives its enrolment while serving presents it from the next connection on).
final class ServerTLSContexts: Sendable {
    private let replica: Replica
    private let security: TransportSecurity
    private let cached: NIOLockedValueBox<(enrolled: Bool, context: NIOSSLContext?)>

    init(replica: Replica, security: TransportSecurity, host: String) throws {
        self.replica = replica
        self.security = security
        let context = try tlsContext(replica: replica, security: security, host: host, isServer: true)
        cached = NIOLockedValueBox((try replica.ownEnrolment() != nil, context))
    }

    /// The context for a new connection.
    func current() throws -> NIOSSLContext? {
        guard security == .mutualTLS else { return nil }
        let enrolled = try replica.ownEnrolment() != nil
        if let context = cached.withLockedValue({ $0.enrolled == enrolled ? $0.context : nil }) { return context }
        let context = try TLSSetup.context(replica: replica, isServer: true)
        cached.withLockedValue { $0 = (enrolled, context) }
        return context
    }
}

/// The open connections of a server, so shutting down can close them, and the session
/// records still being written, so shutting down can wait for them.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
    let recordsBeingWritten = DispatchGroup()

    func add(_ channel: Channel) { channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: Channel) { _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    func all() -> [Channel] { channels.withLockedValue { Array($0.values) } }
}

/// Lets a person stop a sync in progress (Ctrl-C): the session ends with `ERROR` 13, telling
/// the peer, and what was acknowledged stays.
public final class SyncCancellation: Sendable {
    private let state = NIOLockedValueBox<(channel: Channel?, cancelled: Bool)>((nil, false))

    /// A cancellation not yet asked for.
    public init() {}

    func attach(_ channel: Channel) {
        let cancelNow = state.withLockedValue { state -> Bool in
            state.channel = channel
            return state.cancelled
        }
        if cancelNow { channel.pipeline.fireUserInboundEventTriggered(SyncCancelEvent()) }
    }

    /// Stops the session (now, or as soon as its connection opens).
    public func cancel() {
        let channel = state.withLockedValue { state -> Channel? in
            state.cancelled = true
            return state.channel
        }
        channel?.pipeline.fireUserInboundEventTriggered(SyncCancelEvent())
    }
}

/// Sent down a connection's pipeline when its user cancels the sync.
struct SyncCancelEvent {}

/// Syncs a replica with a peer, as the connecting side.
public enum SyncClient {
    /// Connects to `address` and runs one session. The future succeeds with how it went
    /// (``SyncReport/error`` is set when the session failed) and fails when it cannot connect.
    /// With `dryRun` (`sync plan`), nothing is sent and nothing received is kept: the report's
    /// ``SyncReport/plan`` says what a real sync would do.
    public static func sync(replica: Replica, address: PeerAddress, direction: SyncDirection = .both, security: TransportSecurity = .mutualTLS,
                            dryRun: Bool = false,
                            group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, threadPool: NIOThreadPool = SyncWorkers.pool,
                            logger: Logger, timeout: TimeAmount = defaultSyncTimeout, cancellation: SyncCancellation? = nil,
                            progress: (@Sendable (SyncCounters) -> Void)? = nil) -> EventLoopFuture<SyncReport> {
        let completion = SyncCompletion(group.next().makePromise(of: SyncReport.self))
        let tls: NIOSSLContext?
        do { tls = try tlsContext(replica: replica, security: security, host: address.host, isServer: false) } catch {
            completion.fail(error)
            return completion.future
        }
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                addSyncHandlers(to: channel, replica: replica, direction: direction, tls: tls, threadPool: threadPool, logger: logger,
                                timeout: timeout, completion: completion, isServer: false, dryRun: dryRun, progress: progress)
                    .map { cancellation?.attach(channel) }
            }
            .connect(host: address.host, port: address.port)
            .whenFailure { error in
                let reason = "\(error)".contains("refused") ? "connection refused; is 'qisync serve' running there?" : "\(error)"
                completion.fail(SyncError(.connectionLost, "could not connect to \(address): \(reason)"))
            }
        return completion.future
    }
}

/// A session's result, completed once: by the handler when the session ends, or by the
/// bootstrap when the connection cannot be made, whichever comes first.
final class SyncCompletion: Sendable {
    private let promise: EventLoopPromise<SyncReport>
    private let completed = NIOLockedValueBox(false)

    init(_ promise: EventLoopPromise<SyncReport>) { self.promise = promise }

    var future: EventLoopFuture<SyncReport> { promise.futureResult }

    func succeed(_ report: SyncReport) {
        if takeTurn() { promise.succeed(report) }
    }

    func fail(_ error: Error) {
        if takeTurn() { promise.fail(error) }
    }

    private func takeTurn() -> Bool {
        completed.withLockedValue { done in
            defer { done = true }
            return !done
        }
    }
}

extension SyncRecord {
    /// The record of a session for the sync history.
    public init(report: SyncReport, peerName: String?, address: String, role: String, direction: SyncDirection) {
        self.init(peer: peerName, address: address, role: role, startedMilliseconds: UInt64(report.started.timeIntervalSince1970 * 1000),
                  seconds: report.seconds, direction: direction.rawValue, sent: report.counters.entriesOut, received: report.counters.entriesIn,
                  rawBytes: report.rawBytes, wireBytes: report.wireIn + report.wireOut, conflicts: report.counters.conflictsIn,
                  outcome: report.error.map { $0.code == .cancelled ? "cancelled: \($0.message)" : "failed: \($0)" } ?? "ok",
                  peerVector: report.peerHolds, refused: report.counters.refusedIn, peerSite: report.peer?.origin,
                  peerTrust: report.peer?.trust)
    }
}
