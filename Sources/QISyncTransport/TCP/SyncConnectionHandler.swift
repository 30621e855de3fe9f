import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import QISyncCore
import QISyncIdentity
import QISyncProtocol
import QISyncStore

/// Drives one ``SyncSession`` over one connection: decodes frames into messages, runs the
/// session's actions, and does the replica's work on a thread pool, one job at a time and in order.
final class SyncConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let replica: Replica
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let verification: PeerVerification?
    /// The replica's side of the session; used only from the thread pool, one job at a time.
    private let work: ReplicaSessionWork
    private let progress: (@Sendable (SyncCounters) -> Void)?
    private let completion: SyncCompletion
    private var session: SyncSession?
    private var encoder: PayloadEncoder?
    private var decoder: PayloadDecoder?
    private var waiting: [ByteBuffer] = []
    private var report = SyncReport(counters: SyncCounters(), started: Date())
    private var lastWrite: EventLoopFuture<Void>?
    private var databaseJobs: EventLoopFuture<Void>?
    private var context: ChannelHandlerContext?
    private var finished = false
    /// Whether this session set its replica up for receiving batches (and must undo it).
    private var receivingBatches = false
    private let completesWhenNeverActive: Bool
    /// A dry run (`sync plan`): what arrives is collected, previewed and dropped.
    private let dryRun: Bool
    /// The dry run's session is over and its plan is being worked out: the connection may close meanwhile.
    private var planPending = false

    /// `verification` is the TLS handshake's conclusion about the peer; nil in the plaintext test mode.
    init(replica: Replica, direction: SyncDirection, verification: PeerVerification?, threadPool: NIOThreadPool, logger: Logger,
         completion: SyncCompletion, completesWhenNeverActive: Bool, dryRun: Bool = false, progress: (@Sendable (SyncCounters) -> Void)?) {
        self.completesWhenNeverActive = completesWhenNeverActive
        self.dryRun = dryRun
        self.replica = replica
        work = ReplicaSessionWork(replica: replica, direction: direction, dryRun: dryRun)
        self.verification = verification
        self.threadPool = threadPool
        self.logger = logger
        self.completion = completion
        self.progress = progress
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        report.started = Date()
        // Over TLS the session starts once the handshake has proved who the peer is.
        if verification == nil { startSession(context: context) }
        context.fireChannelActive()
    }

    private func startSession(context: ChannelHandlerContext) {
        do {
            encoder = try PayloadEncoder()
            decoder = try PayloadDecoder()
        } catch {
            finish(with: SyncError(.internalError, "could not start compression: \(error)"))
            return
        }
        let work = self.work
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // A session that may receive batches sets the replica up for them until it finishes.
        let receives = !work.dryRun && work.direction != .push
        receivingBatches = receives
        threadPool.runIfActive(eventLoop: context.eventLoop) { () -> Hello in
            if receives { try work.replica.beginReceivingBatches() }
            return try work.hello()
        }
            .whenComplete { result in
                let handler = bound.value
                switch result {
                case .success(let hello):
                    var session = SyncSession(hello: hello)
                    let actions = session.start()
                    handler.session = session
                    handler.run(actions)
                    let waiting = handler.waiting
                    handler.waiting = []
                    for payload in waiting { handler.receive(payload) }
                case .failure(let error):
                    handler.finish(with: SyncError(.internalError, "could not read this replica's directory: \(error)"))
                }
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        report.wireIn += UInt64(payload.readableBytes + 4)
        if session == nil { waiting.append(payload) } else { receive(payload) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if planPending {
            context.fireChannelInactive()
            return
        }
        if var session {
            let actions = session.connectionClosed()
            self.session = session
            run(actions)
        }
        finish(with: SyncError(.connectionLost, "the connection closed before the sync finished"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let syncError = error as? SyncError {
            fail(syncError)
        } else if case .failure(let refusal)? = verification?.result {
            fail(SyncError(.notAuthorised, "refused the peer during the TLS handshake: \(refusal.message)"))
        } else if error is NIOSSLError || error is BoringSSLError {
            // No frame yet means the peer may still be refusing this site (TLS 1.3 checks the
            // client after the client has finished its side of the handshake).
            fail(TLSFailure.explain(error, handshakeDone: report.wireIn > 0))
        } else {
            fail(SyncError(.connectionLost, "\(error)"))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            fail(SyncError(.timeout, "nothing from the peer for too long"))
        } else if case TLSUserEvent.handshakeCompleted = event, session == nil, encoder == nil {
            startSession(context: context)
            context.fireUserInboundEventTriggered(event)
        } else if event is ServerShutdownEvent {
            fail(SyncError(.shuttingDown, "the server is shutting down; sync again later to carry on"))
        } else if event is SyncCancelEvent {
            fail(SyncError(.cancelled, "cancelled by this site's user; what was acknowledged is kept"))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Running the session

    private func receive(_ payload: ByteBuffer) {
        guard var session, !session.isOver, let decoder else { return }
        let actions: [SyncSession.Action]
        do {
            let message = try decoder.message(from: payload)
            logger.trace("received \(message.name)")
            actions = session.received(message)
        } catch {
            actions = session.failed(error)
        }
        self.session = session
        run(actions)
    }

    private func fail(_ error: SyncError) {
        guard var session else {
            finish(with: error)
            return
        }
        let actions = session.failed(error)
        self.session = session
        run(actions)
        finish(with: error)
    }

    private func run(_ actions: [SyncSession.Action]) {
        for action in actions { run(action) }
    }

    private func run(_ action: SyncSession.Action) {
        guard let context else { return }
        switch action {
        case .send(let message):
            do {
                guard let encoder else { return }
                let frame = FrameEncoder.frame(try encoder.payload(for: message), allocator: context.channel.allocator)
                report.wireOut += UInt64(frame.readableBytes)
                lastWrite = context.writeAndFlush(wrapOutboundOut(frame))
            } catch {
                finish(with: SyncError(.internalError, "could not compress a \(message.name): \(error)"))
            }
        case .progress(let counters):
            report.counters = counters
            progress?(counters)
        case .finish(let counters) where dryRun:
            report.counters = counters
            planPending = true
            let work = self.work
            let peerHolds = session?.peerHolds ?? VersionVector()
            database(run: { try work.plan(peerHolds: peerHolds) }, afterSessionEnds: true) { handler, result in
                handler.planPending = false
                switch result {
                case .success(let plan):
                    handler.report.plan = plan
                    handler.finish(with: nil)
                case .failure(let error):
                    handler.finish(with: SyncError(.internalError, "could not work out the plan: \(error)"))
                }
                return nil
            }
        case .finish(let counters):
            report.counters = counters
            finish(with: nil)
        case .fail(let error):
            finish(with: error)
        case .authorize:
            if let verification {
                // The session may go on only as the peer the TLS handshake proved.
                guard case .success(let proven)? = verification.result else {
                    fail(SyncError(.notAuthorised, "the peer's identity was not established"))
                    return
                }
                let work = self.work
                database(run: { work.proven = proven }) { _, _ in nil }
            }
            perform(action)
        case .applyDirectory, .prepareOffer, .loadBatch, .apply:
            perform(action)
        }
    }

    /// Has the replica do what the session asked, on the thread pool after any earlier job, and
    /// hands the result back to the session; new refusal reasons are logged as they appear.
    ///
    /// A batch to apply is checked (chains, signatures, encoding) on the pool at once, beside
    /// the apply of the batch before, and applied after it: the TCP path's two cores share
    /// the work as a bundle import's do.
    private func perform(_ action: SyncSession.Action) {
        let work = self.work
        guard let context else { return }
        var checking = context.eventLoop.makeSucceededFuture(Result<VerifiedBatch, SyncError>?.none)
        if case .apply(_, let entries) = action, !work.dryRun {
            checking = threadPool.runIfActive(eventLoop: context.eventLoop) { Optional(work.check(batch: entries)) }
        }
        database(after: checking, run: { checked -> (SessionWorkResult?, String?, [String]) in
            (work.perform(action, checked: checked), work.peerName, work.refusals)
        }) { handler, outcome in
            switch outcome {
            case .success(let (result, peerName, refusals)):
                if handler.report.peerIdentity == nil { handler.report.peerIdentity = peerName }
                for reason in refusals where !handler.report.refusals.contains(reason) {
                    handler.logger.warning("refused entries from \(peerName ?? "the peer"): \(reason)")
                    handler.report.refusals.append(reason)
                }
                guard let result else { return nil }
                return handler.session?.take(result)
            case .failure(let error):
                return handler.session?.failed(SyncError(.internalError, "\(error)"))
            }
        }
    }

    /// Runs blocking replica work on the thread pool after any earlier job, then hands the
    /// result to `then` on the event loop, which returns the session's next actions.
    /// With `afterSessionEnds`, `then` runs even though the session is over (the dry run's plan).
    private func database<T: Sendable>(run work: @escaping @Sendable () throws -> T, afterSessionEnds: Bool = false,
                                       then: @escaping (SyncConnectionHandler, Result<T, Error>) -> [SyncSession.Action]?) {
        guard let context else { return }
        database(after: context.eventLoop.makeSucceededVoidFuture(), run: { _ in try work() }, afterSessionEnds: afterSessionEnds, then: then)
    }

    /// `database(run:)` for work that needs `input` too: it starts once `input` is ready and
    /// every earlier job is done.
    private func database<Input: Sendable, T: Sendable>(after input: EventLoopFuture<Input>, run work: @escaping @Sendable (Input) throws -> T,
                                                        afterSessionEnds: Bool = false,
                                                        then: @escaping (SyncConnectionHandler, Result<T, Error>) -> [SyncSession.Action]?) {
        guard let context else { return }
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let boundThen = NIOLoopBound(then, eventLoop: eventLoop)
        let pool = threadPool
        let previous = databaseJobs ?? eventLoop.makeSucceededVoidFuture()
        let job = previous.and(input).flatMap { _, value in pool.runIfActive(eventLoop: eventLoop) { try work(value) } }
        databaseJobs = job.map { _ in }.recover { _ in }
        job.whenComplete { result in
            let handler = bound.value
            guard afterSessionEnds || handler.session?.isOver == false else { return }
            if let actions = boundThen.value(handler, result) { handler.run(actions) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if self.context == nil, !finished {
            // Never connected: the session did not start. A client's bootstrap reports the
            // connection failure itself (with the address and reason); a server's must not leak.
            finished = true
            if completesWhenNeverActive { completion.fail(SyncError(.connectionLost, "the connection closed before it opened")) }
            return
        }
        if planPending {
            self.context = nil
            return
        }
        finish(with: SyncError(.connectionLost, "the connection closed before the sync finished"))
        self.context = nil
    }

    private func finish(with error: SyncError?) {
        guard !finished else { return }
        finished = true
        if receivingBatches {
            receivingBatches = false
            // After the session's last database job (the settings must outlast its applies).
            let replica = work.replica
            let pool = threadPool
            if let context {
                let eventLoop = context.eventLoop
                (databaseJobs ?? eventLoop.makeSucceededVoidFuture()).whenComplete { _ in
                    _ = pool.runIfActive(eventLoop: eventLoop) { replica.endReceivingBatches() }
                }
            } else {
                replica.endReceivingBatches()
            }
        }
        report.seconds = max(Date().timeIntervalSince(report.started), 1e-6)
        report.error = error
        report.peer = session?.peer
        if error == nil { report.peerHolds = session?.peerHolds }
        if let error { logger.debug("sync failed: \(error)") } else { logger.debug("sync finished") }
        completion.succeed(report)
        guard let context else { return }
        let channel = context.channel
        (lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Sent down a connection's pipeline when its server shuts down.
struct ServerShutdownEvent {}
