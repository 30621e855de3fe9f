import Foundation
import NIOCore
import QISyncCore
import QISyncIdentity
import QISyncProtocol
import QISyncStore

/// A sync session between two replicas in one process, with no sockets: a third carrier for
/// the protocol, beside TCP and bundle files, for model-based tests and simulations.
///
/// Each side checks the other as the TLS handshake would (the peer's certificate chain against
/// its own directory) and then runs the same ``SyncSession`` and ``ReplicaSessionWork`` a TCP
/// connection runs; every message is encoded, compressed, framed and decoded as on the wire.
/// The connection can be cut after any number of frames, as a network would cut it.
public enum LocalSync {
    /// How one session went, from each side.
    public struct Outcome: Sendable {
        /// The connecting side's report.
        public var client: SyncReport
        /// The answering side's report.
        public var server: SyncReport
        /// Frames that crossed, both ways.
        public var frames: Int
        /// Framed bytes sent, both ways, by message name (HELLO, VECTOR, BATCH…).
        public var bytesByMessage: [String: UInt64] = [:]
    }

    /// Runs one session. `cutAfterFrames` drops the connection once that many frames have
    /// crossed (both ways together). Both sides remember what the other holds afterwards,
    /// as a TCP sync does, so later bundles start from there.
    /// `clientVersions` narrows the protocol versions the client offers (to act as an older peer).
    public static func run(client: Replica, server: Replica, direction: SyncDirection = .both, cutAfterFrames: Int? = nil,
                           clientVersions: ClosedRange<UInt64> = WireLimits.versions) -> Outcome {
        var a = End(replica: client, direction: direction)
        a.work.versions = clientVersions
        var b = End(replica: server, direction: .both)
        // The handshake: each side must accept the other's certificate chain.
        for (end, peer) in [(a, server), (b, client)] {
            let check: Result<PeerIdentity, IdentityError>
            do { check = try end.replica.directory().verifyPeer(chain: try peer.credentials().chain) } catch {
                check = .failure(IdentityError("\(error)"))
            }
            switch check {
            case .success(let identity): end.work.proven = identity
            case .failure(let refusal):
                let error = SyncError(.notAuthorised, "refused the peer during the handshake: \(refusal.message)")
                a.report.error = error
                b.report.error = error
                return Outcome(client: a.report, server: b.report, frames: 0)
            }
        }
        a.start()
        b.start()
        var frames = 0
        var cut = false
        while !(a.outbox.isEmpty && b.outbox.isEmpty) {
            for direction in 0..<2 {
                if let limit = cutAfterFrames, frames >= limit {
                    cut = true
                    break
                }
                if direction == 0, !a.outbox.isEmpty {
                    frames += 1
                    b.receive(a.outbox.removeFirst())
                } else if direction == 1, !b.outbox.isEmpty {
                    frames += 1
                    a.receive(b.outbox.removeFirst())
                }
            }
            if cut { break }
        }
        a.close()
        b.close()
        let tally = a.bytesByMessage.merging(b.bytesByMessage, uniquingKeysWith: +)
        for (end, peer) in [(a, b), (b, a)] where end.report.error == nil {
            if let site = peer.replica.identity.origin as OriginID?, let holds = end.report.peerHolds, end.report.counters.refusedOut == 0 {
                try? end.replica.rememberPeerVector(site: site, vector: holds, source: "sync")
            }
        }
        return Outcome(client: a.report, server: b.report, frames: frames, bytesByMessage: tally)
    }

    /// One side of the session.
    struct End {
        let replica: Replica
        let work: ReplicaSessionWork
        var session: SyncSession?
        let encoder: PayloadEncoder?
        let decoder: PayloadDecoder?
        var outbox: [ByteBuffer] = []
        var report = SyncReport(counters: SyncCounters(), started: Date())
        var bytesByMessage: [String: UInt64] = [:]
        var over = false

        init(replica: Replica, direction: SyncDirection) {
            self.replica = replica
            work = ReplicaSessionWork(replica: replica, direction: direction)
            encoder = try? PayloadEncoder()
            decoder = try? PayloadDecoder()
        }

        mutating func start() {
            do {
                var session = SyncSession(hello: try work.hello())
                let actions = session.start()
                self.session = session
                run(actions)
            } catch {
                finish(SyncError(.internalError, "could not start: \(error)"))
            }
        }

        mutating func receive(_ frame: ByteBuffer) {
            guard var session, !over, let decoder else { return }
            var buffer = frame
            let actions: [SyncSession.Action]
            do {
                guard let payload = try FrameDecoder.nextFrame(from: &buffer) else { throw SyncError(.malformedMessage, "a partial frame") }
                report.wireIn += UInt64(frame.readableBytes)
                actions = session.received(try decoder.message(from: payload))
            } catch let error as SyncError {
                actions = session.failed(error)
            } catch {
                actions = session.failed(SyncError(.malformedMessage, "\(error)"))
            }
            self.session = session
            run(actions)
        }

        mutating func close() {
            guard var session, !over else { return }
            let actions = session.connectionClosed()
            self.session = session
            run(actions)
            finish(SyncError(.connectionLost, "the connection closed before the sync finished"))
        }

        mutating func run(_ actions: [SyncSession.Action]) {
            var queue = actions
            while !queue.isEmpty {
                let action = queue.removeFirst()
                if let result = work.perform(action) {
                    queue += session?.take(result) ?? []
                    report.peerIdentity = work.peerName
                    report.refusals = work.refusals
                    continue
                }
                switch action {
                case .send(let message):
                    guard let encoder, let payload = try? encoder.payload(for: message) else {
                        finish(SyncError(.internalError, "could not encode a \(message.name)"))
                        return
                    }
                    let frame = FrameEncoder.frame(payload)
                    report.wireOut += UInt64(frame.readableBytes)
                    bytesByMessage[message.name, default: 0] += UInt64(frame.readableBytes)
                    outbox.append(frame)
                case .progress(let counters): report.counters = counters
                case .finish(let counters):
                    report.counters = counters
                    finish(nil)
                case .fail(let error): finish(error)
                default: break
                }
            }
        }

        mutating func finish(_ error: SyncError?) {
            guard !over else { return }
            over = true
            report.error = error
            report.peer = session?.peer
            if let session { report.counters = session.counters }
            if error == nil { report.peerHolds = session?.peerHolds }
            report.seconds = max(Date().timeIntervalSince(report.started), 1e-6)
        }
    }
}
