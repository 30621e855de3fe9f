import QISyncCore

/// What a session has done so far, for progress lines and the closing summary.
public struct SyncCounters: Sendable, Equatable {
    /// Entries and entry bytes the peer announced it will send.
    public var expectedIn: (entries: UInt64, bytes: UInt64) = (0, 0)
    /// Entries and entry bytes this side will send.
    public var expectedOut: (entries: UInt64, bytes: UInt64) = (0, 0)
    /// Entries received and applied (acknowledged by this side).
    public var entriesIn: UInt64 = 0
    /// Entry bytes received and applied.
    public var bytesIn: UInt64 = 0
    /// Entries sent and acknowledged by the peer.
    public var entriesOut: UInt64 = 0
    /// Entry bytes sent and acknowledged.
    public var bytesOut: UInt64 = 0
    /// Conflicts that appeared here while applying the peer's entries.
    public var conflictsIn: UInt64 = 0
    /// Conflicts the peer reported appearing there.
    public var conflictsOut: UInt64 = 0
    /// Received entries this side refused (see its audit).
    public var refusedIn: UInt64 = 0
    /// Sent entries the peer refused (see the peer's audit).
    public var refusedOut: UInt64 = 0
    /// Directory records received from the peer, and sent to it.
    public var directoryIn: UInt64 = 0
    public var directoryOut: UInt64 = 0

    public init() {}

    public static func == (lhs: SyncCounters, rhs: SyncCounters) -> Bool {
        lhs.expectedIn == rhs.expectedIn && lhs.expectedOut == rhs.expectedOut && lhs.entriesIn == rhs.entriesIn
            && lhs.bytesIn == rhs.bytesIn && lhs.entriesOut == rhs.entriesOut && lhs.bytesOut == rhs.bytesOut
            && lhs.conflictsIn == rhs.conflictsIn && lhs.conflictsOut == rhs.conflictsOut
            && lhs.refusedIn == rhs.refusedIn && lhs.refusedOut == rhs.refusedOut
            && lhs.directoryIn == rhs.directoryIn && lhs.directoryOut == rhs.directoryOut
    }
}

/// One sync session with one peer, as a state machine: events in, actions out. It does no
/// I/O; the transport (or a bundle reader, or a test) performs the actions it returns.
///
/// Both sides run the same machine. Each sends HELLO; once the driver has accepted the peer's
/// identity (``Action/authorize(peer:sendsDirectory:)``), and when the two directory digests
/// differ, each sends its directory records (version 1), or its SUMMARY by trust, then HAVE
/// for the trusts whose digests differ, then the records the peer keeps and lacks (version 2);
/// then its version vector; each then
/// sends what the other lacks (OFFER, BATCH…) and DONE once every batch is acknowledged;
/// each applies what it receives batch by batch, acknowledging each. The session ends when
/// both sides have sent DONE and every received batch is acknowledged.
public struct SyncSession {
    /// What the driver must do.
    public enum Action: Equatable, Sendable {
        /// Encode and send this message.
        case send(SyncMessage)
        /// Check the peer's HELLO against who it proved to be, choose what it may receive, and
        /// answer with ``SyncSession/peerAuthorized(vector:directory:)`` (or ``SyncSession/failed(_:)``).
        /// `directory` must index this side's records when `sendsDirectory` is true (trust-wide
        /// pins left out for a peer of another trust).
        case authorize(peer: Hello, sendsDirectory: Bool)
        /// Verify and keep the peer's directory records; no answer is needed, but the driver
        /// must do this before any later replica work of the session.
        case applyDirectory([DirectoryRecord])
        /// Work out how many entries and bytes the peer lacks, and up to which vector, checking the
        /// peer's vector for forks; answer with ``SyncSession/offerReady(entries:bytes:through:)``
        /// or ``SyncSession/failed(_:)``.
        case prepareOffer(peerVector: VersionVector)
        /// Read the next batch of entries beyond `after` and not beyond `through` (what was
        /// offered), at most about the given counts; answer with ``SyncSession/batchLoaded(_:)``.
        case loadBatch(after: VersionVector, through: VersionVector, maxEntries: Int, maxBytes: Int)
        /// Verify and apply these entries in one transaction; answer with
        /// ``SyncSession/batchApplied(id:applied:bytes:conflicts:refused:)`` or ``SyncSession/failed(_:)``.
        case apply(batch: UInt64, entries: [LogEntry])
        /// Report progress (counters changed).
        case progress(SyncCounters)
        /// The session completed: close the connection.
        case finish(SyncCounters)
        /// The session failed: close the connection (any ERROR for the peer was sent first).
        case fail(SyncError)
    }

    enum State: Equatable {
        case idle
        case awaitingHello
        case authorizing
        case awaitingSummary
        case awaitingHave
        case awaitingDirectory
        case awaitingVectorDigests
        case awaitingVector
        case exchanging
        case finished
        case failed
    }

    private let hello: Hello
    private var state: State = .idle
    private var sending = false
    private var receiving = false
    private var cursor = VersionVector()
    private var offered = VersionVector()
    private var loading = false
    private var sourceExhausted = false
    private var nextBatch: UInt64 = 1
    private var unacknowledged: [UInt64: (entries: UInt64, bytes: UInt64)] = [:]
    private var applying: Set<UInt64> = []
    private var nextExpectedBatch: UInt64 = 1
    private var receivedEntries: UInt64 = 0
    private var sentDone = false
    private var peerDone = false
    private var peerOffered = false
    private var deferred: [SyncMessage] = []
    /// Version 2: this side's directory, its vector (sent after DIRECTORY), the peer's SUMMARY.
    private var directory = DirectoryIndex.empty
    private var pendingVector = VersionVector()
    private var peerSummary: [DirectoryGroup] = []
    /// Version 2: the buckets of the two vectors whose digests agreed.
    private var agreedBuckets: Set<Int> = []
    /// The counters so far.
    public private(set) var counters = SyncCounters()
    /// The peer's HELLO, once received.
    public private(set) var peer: Hello?
    /// The negotiated protocol version.
    public private(set) var version: UInt64?

    /// Creates a session that introduces itself with `hello`.
    public init(hello: Hello) {
        self.hello = hello
    }

    /// What the peer holds as far as this side knows: its vector, advanced by every entry sent
    /// (all of them acknowledged once the session has finished).
    public var peerHolds: VersionVector { cursor }

    /// Whether this side sends entries in this session (known after HELLO).
    public var isSending: Bool { sending }

    /// Whether the session has ended, well or badly.
    public var isOver: Bool { state == .finished || state == .failed }

    // MARK: Events

    /// Starts the session: sends HELLO.
    public mutating func start() -> [Action] {
        guard state == .idle else { return [] }
        state = .awaitingHello
        return [.send(.hello(hello))]
    }

    /// A message arrived from the peer.
    public mutating func received(_ message: SyncMessage) -> [Action] {
        if isOver { return [] }
        if case .error(let code, let text) = message {
            state = .failed
            return [.fail(SyncError(code, text, fromPeer: true))]
        }
        switch (state, message) {
        case (.awaitingHello, .hello(let peerHello)):
            let low = max(hello.versions.lowerBound, peerHello.versions.lowerBound)
            let high = min(hello.versions.upperBound, peerHello.versions.upperBound)
            guard low <= high else {
                return fail(.versionMismatch, "this side speaks protocol versions \(hello.versions), the peer \(peerHello.versions)")
            }
            peer = peerHello
            version = high
            sending = hello.sends && peerHello.receives
            receiving = hello.receives && peerHello.sends
            state = .authorizing
            return [.authorize(peer: peerHello, sendsDirectory: directoriesDiffer)]
        case (.authorizing, _):
            // The peer may run ahead of this side's check; its messages wait for the answer.
            guard deferred.count < 2 else { return fail(.unexpectedMessage, "\(message.name) before this side accepted the peer") }
            deferred.append(message)
            return []
        case (.awaitingSummary, .summary(let groups)):
            peerSummary = groups
            state = .awaitingHave
            return [.send(.have(directory.wanted(from: groups)))]
        case (.awaitingHave, .have(let digests)):
            state = .awaitingDirectory
            let records = directory.records(for: peerSummary, peerHas: Set(digests))
            counters.directoryOut = UInt64(records.count)
            return [.send(.directory(records)), .send(.vectorDigests(pendingVector.bucketDigests))]
        case (.awaitingDirectory, .directory(let records)):
            counters.directoryIn = UInt64(records.count)
            state = isVersion2 ? .awaitingVectorDigests : .awaitingVector
            return [.applyDirectory(records)]
        case (.awaitingVectorDigests, .vectorDigests(let digests)):
            let own = pendingVector.bucketDigests
            agreedBuckets = Set((0..<VersionVector.bucketCount).filter { own[$0] == digests[$0] })
            state = .awaitingVector
            let differing = Set(0..<VersionVector.bucketCount).subtracting(agreedBuckets)
            return [.send(.vector(pendingVector.restricted(toBuckets: differing)))]
        case (.awaitingVector, .vector(var peerVector)):
            state = .exchanging
            if isVersion2 {
                // Where the digests agreed the peer holds what this side holds.
                for (log, position) in pendingVector.restricted(toBuckets: agreedBuckets).positions where peerVector.positions[log] == nil {
                    peerVector.positions[log] = position
                }
            }
            cursor = peerVector
            if sending { return [.prepareOffer(peerVector: peerVector)] }
            sourceExhausted = true
            return [.send(.offer(entries: 0, bytes: 0))] + finishSendingIfDone()
        case (.exchanging, .offer(let entries, let bytes)):
            guard !peerOffered else { return fail(.unexpectedMessage, "a second OFFER") }
            guard receiving || entries == 0 else { return fail(.unexpectedMessage, "an OFFER of entries this side did not ask for") }
            guard entries <= WireLimits.maximumSessionInflated, bytes <= WireLimits.maximumSessionInflated else {
                return fail(.malformedMessage, "an OFFER of \(entries) entries and \(bytes) bytes, more than a session can carry")
            }
            peerOffered = true
            counters.expectedIn = (entries, bytes)
            return [.progress(counters)]
        case (.exchanging, .batch(let id, let entries)):
            guard peerOffered, !peerDone, receiving else { return fail(.unexpectedMessage, "a BATCH this side did not ask for") }
            guard id == nextExpectedBatch else { return fail(.unexpectedMessage, "batch \(id) where batch \(nextExpectedBatch) was due") }
            guard applying.count < WireLimits.window else {
                return fail(.unexpectedMessage, "batch \(id) while \(applying.count) batches await acknowledgement (at most \(WireLimits.window))")
            }
            let (total, overflow) = receivedEntries.addingReportingOverflow(UInt64(entries.count))
            guard !overflow, total <= counters.expectedIn.entries else {
                return fail(.unexpectedMessage, "batch \(id) brings more entries than the \(counters.expectedIn.entries) offered")
            }
            receivedEntries = total
            nextExpectedBatch += 1
            applying.insert(id)
            return [.apply(batch: id, entries: entries)]
        case (.exchanging, .ack(let id, let applied, let conflicts, let refused)):
            guard let sent = unacknowledged.removeValue(forKey: id) else { return fail(.unexpectedMessage, "an ACK for batch \(id), which is not awaiting one") }
            guard applied.addingReportingOverflow(refused) == (sent.entries, false) else {
                return fail(.unexpectedMessage, "batch \(id) had \(sent.entries) entries; the peer applied \(applied) and refused \(refused)")
            }
            counters.entriesOut += applied
            counters.refusedOut += refused
            counters.bytesOut += sent.bytes
            // A count from the peer: it may be anything, so it saturates rather than overflows.
            counters.conflictsOut = counters.conflictsOut.addingReportingOverflow(conflicts).overflow ? .max : counters.conflictsOut + conflicts
            return [.progress(counters)] + loadMoreIfRoom() + finishSendingIfDone()
        case (.exchanging, .done):
            guard peerOffered, !peerDone else { return fail(.unexpectedMessage, "DONE out of turn") }
            peerDone = true
            return finishIfComplete()
        default:
            return fail(.unexpectedMessage, "\(message.name) while \(state)")
        }
    }

    /// Whether the session speaks version 2 (directories by trust, vectors by bucket).
    var isVersion2: Bool { (version ?? 1) >= 2 }

    /// Whether the two sides hold different directory records (known after HELLO).
    var directoriesDiffer: Bool { peer.map { $0.directoryDigest != hello.directoryDigest } ?? false }

    /// The driver accepted the peer: `vector` is what this side holds of the logs the peer
    /// may receive, `directory` this side's directory records by trust (when asked for).
    public mutating func peerAuthorized(vector: VersionVector, directory: DirectoryIndex) -> [Action] {
        guard state == .authorizing else { return [] }
        var actions: [Action] = []
        pendingVector = vector
        if isVersion2 && !directoriesDiffer {
            state = .awaitingVectorDigests
            actions.append(.send(.vectorDigests(vector.bucketDigests)))
        } else if isVersion2 {
            self.directory = directory
            state = .awaitingSummary
            actions.append(.send(.summary(directory.summary)))
        } else if !directoriesDiffer {
            state = .awaitingVector
            actions.append(.send(.vector(vector)))
        } else {
            state = .awaitingDirectory
            counters.directoryOut = UInt64(directory.allRecords.count)
            actions += [.send(.directory(directory.allRecords)), .send(.vector(vector))]
        }
        let waiting = deferred
        deferred = []
        for message in waiting where !isOver { actions += received(message) }
        return actions
    }

    /// The driver worked out what the peer lacks: `entries` entries and `bytes` bytes of change
    /// bodies, up to `through`; the batches that follow never go beyond it, so the OFFER holds.
    public mutating func offerReady(entries: UInt64, bytes: UInt64, through: VersionVector) -> [Action] {
        guard state == .exchanging, sending else { return [] }
        counters.expectedOut = (entries, bytes)
        offered = through
        if entries == 0 { sourceExhausted = true }
        return [.send(.offer(entries: entries, bytes: bytes))] + loadMoreIfRoom() + finishSendingIfDone()
    }

    /// The driver read the next batch (empty when there is nothing more).
    public mutating func batchLoaded(_ entries: [LogEntry]) -> [Action] {
        guard state == .exchanging, loading else { return [] }
        loading = false
        guard !entries.isEmpty else {
            sourceExhausted = true
            return finishSendingIfDone()
        }
        for entry in entries {
            cursor.positions[LogID(origin: entry.origin, scope: entry.scope)] = LogPosition(seq: entry.seq, hash: entry.hash)
        }
        let id = nextBatch
        nextBatch += 1
        unacknowledged[id] = (UInt64(entries.count), entries.reduce(0) { $0 + UInt64($1.body.count) })
        return [.send(.batch(id: id, entries: entries))] + loadMoreIfRoom()
    }

    /// The driver applied a received batch in one transaction: `applied` entries took effect,
    /// `refused` did not (the batch's entries are the two together).
    public mutating func batchApplied(id: UInt64, applied: UInt64, bytes: UInt64, conflicts: UInt64, refused: UInt64 = 0) -> [Action] {
        guard state == .exchanging, applying.remove(id) != nil else { return [] }
        counters.entriesIn += applied
        counters.refusedIn += refused
        counters.bytesIn += bytes
        counters.conflictsIn += conflicts
        return [.send(.ack(id: id, applied: applied, conflicts: conflicts, refused: refused)), .progress(counters)] + finishIfComplete()
    }

    /// The driver could not do what was asked (entries refused, a forked log, a database error),
    /// or the transport failed (a frame too large, a corrupt stream, a timeout): tell the peer and stop.
    public mutating func failed(_ error: SyncError) -> [Action] {
        guard !isOver else { return [] }
        return fail(error.code, error.message)
    }

    /// The connection closed.
    public mutating func connectionClosed() -> [Action] {
        guard !isOver else { return [] }
        state = .failed
        return [.fail(SyncError(.connectionLost, "the connection closed before the sync finished"))]
    }

    // MARK: Helpers

    private mutating func fail(_ code: SyncErrorCode, _ message: String) -> [Action] {
        state = .failed
        return [.send(.error(code, message)), .fail(SyncError(code, message))]
    }

    private mutating func loadMoreIfRoom() -> [Action] {
        guard sending, !loading, !sourceExhausted, unacknowledged.count < WireLimits.window else { return [] }
        loading = true
        return [.loadBatch(after: cursor, through: offered, maxEntries: WireLimits.batchEntries, maxBytes: WireLimits.batchBytes)]
    }

    private mutating func finishSendingIfDone() -> [Action] {
        guard !sentDone, sourceExhausted, !loading, unacknowledged.isEmpty else { return [] }
        sentDone = true
        return [.send(.done)] + finishIfComplete()
    }

    private mutating func finishIfComplete() -> [Action] {
        guard sentDone, peerDone, applying.isEmpty, state == .exchanging else { return [] }
        state = .finished
        return [.finish(counters)]
    }
}
