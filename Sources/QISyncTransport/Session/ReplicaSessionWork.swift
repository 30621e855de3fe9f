import Foundation
import QISyncCore
import QISyncIdentity
import QISyncProtocol
import QISyncStore

/// What a piece of replica work gave back, for the ``SyncSession`` that asked for it.
public enum SessionWorkResult: Sendable {
    /// The peer is accepted: the vector of the logs it may receive, and this side's directory
    /// records by trust when they are to be exchanged.
    case authorized(vector: VersionVector, directory: DirectoryIndex)
    /// What will be sent (entries, bytes, up to which vector).
    case offer(Offer)
    /// The next batch to send (empty when there is no more).
    case batch([LogEntry])
    /// A received batch was applied in one transaction.
    case applied(id: UInt64, applied: UInt64, bytes: UInt64, conflicts: UInt64, refused: UInt64)
    /// Work that needs no answer (the directory was taken in).
    case done
    /// The work failed; the session ends with this error.
    case failed(SyncError)
}

extension SyncSession {
    /// Hands the session the result of the replica work it asked for.
    public mutating func take(_ result: SessionWorkResult) -> [Action] {
        switch result {
        case .authorized(let vector, let directory): peerAuthorized(vector: vector, directory: directory)
        case .offer(let offer): offerReady(entries: offer.entries, bytes: offer.bytes, through: offer.through)
        case .batch(let entries): batchLoaded(entries)
        case .applied(let id, let applied, let bytes, let conflicts, let refused):
            batchApplied(id: id, applied: applied, bytes: bytes, conflicts: conflicts, refused: refused)
        case .done: []
        case .failed(let error): failed(error)
        }
    }
}

/// One side's replica work in a sync session: what a ``SyncSession`` asks of the replica
/// (accept the peer, take in its directory, offer, read batches, apply batches), done
/// synchronously. The TCP handler runs each call on the replica's thread pool, one after
/// another; the in-process carrier (``LocalSync``, for tests and simulations) calls them
/// directly. Either way the same code decides what a peer may receive and how what arrives
/// is applied.
public final class ReplicaSessionWork: @unchecked Sendable {
    // One session uses it, and its calls are made one after another (the TCP handler chains
    // them on the thread pool), so its fields need no lock.
    /// The replica worked on.
    public let replica: Replica
    /// Which ways this side syncs.
    public let direction: SyncDirection
    /// A dry run (`sync plan`): what arrives is collected, previewed and dropped.
    public let dryRun: Bool
    /// Who the transport proved the peer to be (TLS), or nil in the plaintext test mode, where
    /// the peer's HELLO is taken at its word.
    public var proven: PeerIdentity?
    /// The logs the peer may receive, once it is authorised: every log for a site of this trust,
    /// shared logs only for another trust's.
    public private(set) var peerScopes: Set<Scope> = []
    /// The peer as `TRUST/site`, once authorised.
    public private(set) var peerName: String?
    /// Why received entries were refused here, the first of each reason.
    public private(set) var refusals: [String] = []
    private var plannedEntries: [LogEntry] = []
    private var plannedDirectory: [DirectoryRecord] = []

    /// Work for one session on `replica`.
    public init(replica: Replica, direction: SyncDirection, dryRun: Bool = false, proven: PeerIdentity? = nil) {
        self.replica = replica
        self.direction = direction
        self.dryRun = dryRun
        self.proven = proven
    }

    /// The protocol versions this side offers (all it speaks, unless a test or tool narrows them
    /// to act as an older peer).
    public var versions = WireLimits.versions

    /// This side's HELLO.
    public func hello() throws -> Hello {
        var hello = replica.hello(direction: direction, directoryDigest: try replica.directoryDigest(), dryRun: dryRun)
        hello.versions = versions
        return hello
    }

    /// Does what `action` asks of the replica, or returns nil when it is not replica work
    /// (sending, progress, the end of the session).
    /// With `checked`, an `apply` takes the batch as ``check(batch:)`` found it (checked ahead,
    /// beside the apply of the batch before).
    public func perform(_ action: SyncSession.Action, checked: Result<VerifiedBatch, SyncError>? = nil) -> SessionWorkResult? {
        switch action {
        case .authorize(let peer, let sendsDirectory): return authorize(peer, sendsDirectory: sendsDirectory)
        case .applyDirectory(let records): return applyDirectory(records)
        case .prepareOffer(let peerVector): return offer(for: peerVector)
        case .loadBatch(let after, let through, let maxEntries, let maxBytes):
            do { return .batch(try replica.entries(after: after, through: through, scopes: peerScopes, maxEntries: maxEntries, maxBytes: maxBytes)) } catch {
                return .failed(SyncError(.internalError, "could not read entries: \(error)"))
            }
        case .apply(let batch, let entries): return apply(batch: batch, entries: entries, checked: checked)
        case .send, .progress, .finish, .fail: return nil
        }
    }

    /// Checks the peer's HELLO against the identity the transport proved, and chooses what it
    /// may receive.
    func authorize(_ peer: Hello, sendsDirectory: Bool) -> SessionWorkResult {
        let trust: String
        if let proven {
            guard peer.origin == proven.site, peer.trust == proven.trustCode else {
                return .failed(SyncError(.notAuthorised, "the peer's HELLO names site \(peer.trust)/\(peer.site) (\(peer.origin.short)), but its TLS certificate proves it is \(proven.name) (\(proven.site.short))"))
            }
            trust = proven.trustCode
            peerName = proven.name
        } else {
            trust = peer.trust
            peerName = "\(peer.trust)/\(peer.site)"
        }
        peerScopes = trust == replica.identity.trustCode ? Set(Scope.allCases) : [.shared]
        do {
            var vector = try replica.versionVector()
            vector.positions = vector.positions.filter { peerScopes.contains($0.key.scope) }
            return .authorized(vector: vector, directory: sendsDirectory ? try replica.directoryIndex(forPeerOfTrust: trust) : .empty)
        } catch {
            return .failed(SyncError(.internalError, "could not read the version vector: \(error)"))
        }
    }

    func applyDirectory(_ records: [DirectoryRecord]) -> SessionWorkResult {
        if dryRun {
            plannedDirectory = records
            return .done
        }
        do {
            _ = try replica.importDirectory(records)
            return .done
        } catch {
            return .failed(SyncError(.internalError, "could not keep the peer's directory records: \(error)"))
        }
    }

    func offer(for peerVector: VersionVector) -> SessionWorkResult {
        do { return .offer(try replica.offer(for: peerVector, scopes: peerScopes)) } catch let error as LogRejection {
            return .failed(SyncError(.forkedLog, error.description))
        } catch {
            return .failed(SyncError(.internalError, "\(error)"))
        }
    }

    /// Checks a batch as applying it would (its runs' chains and signatures, its changes'
    /// encoding and schema), without the database: it can run while the batch before is applied.
    public func check(batch entries: [LogEntry]) -> Result<VerifiedBatch, SyncError> {
        do { return .success(try replica.verify(batch: entries)) } catch let error as LogRejection {
            return .failure(SyncError(.entriesRefused, error.description))
        } catch {
            return .failure(SyncError(.entriesRefused, "\(error)"))
        }
    }

    func apply(batch id: UInt64, entries: [LogEntry], checked: Result<VerifiedBatch, SyncError>? = nil) -> SessionWorkResult {
        let bytes = entries.reduce(0) { $0 + UInt64($1.body.count) }
        if dryRun {
            plannedEntries += entries
            return .applied(id: id, applied: 0, bytes: bytes, conflicts: 0, refused: UInt64(entries.count))
        }
        do {
            let verified: VerifiedBatch
            switch checked ?? check(batch: entries) {
            case .success(let batch): verified = batch
            case .failure(let error): return .failed(error)
            }
            let report = try replica.apply(verified, source: peerName)
            for reason in report.refusalReasons where !refusals.contains(reason) { refusals.append(reason) }
            return .applied(id: id, applied: UInt64(entries.count - report.refused), bytes: bytes,
                            conflicts: UInt64(report.newConflicts), refused: UInt64(report.refused))
        } catch let error as LogRejection {
            return .failed(SyncError(.entriesRefused, error.description))
        } catch {
            return .failed(SyncError(.entriesRefused, "\(error)"))
        }
    }

    /// For a dry run, once the session is over: what applying what arrived would do here, and
    /// what this side would have sent a peer holding `peerHolds`.
    public func plan(peerHolds: VersionVector) throws -> SyncPlan {
        let incoming = try replica.preview(plannedEntries, directory: plannedDirectory, source: "sync plan")
        let outgoing = try replica.entries(after: peerHolds, scopes: peerScopes)
        return SyncPlan(incoming: incoming, incomingRecords: SyncPlan.records(in: plannedEntries),
                        outgoing: (UInt64(outgoing.count), outgoing.reduce(0) { $0 + UInt64($1.body.count) }, SyncPlan.records(in: outgoing)))
    }
}
