import QISyncCore
import QISyncProtocol
import Testing

/// An in-memory store of logs standing in for a replica: the state machine needs no database.
struct MemoryStore {
    var logs: [LogID: [LogEntry]] = [:]

    var vector: VersionVector {
        VersionVector(logs.mapValues { LogPosition(seq: $0.last!.seq, hash: $0.last!.hash) })
    }

    func entries(after cursor: VersionVector, through limit: VersionVector? = nil, maxEntries: Int) -> [LogEntry] {
        var out: [LogEntry] = []
        for log in logs.keys.sorted() {
            for entry in logs[log]! where entry.seq > cursor.seq(of: log) && entry.seq <= (limit?.seq(of: log) ?? .max) && out.count < maxEntries {
                out.append(entry)
            }
        }
        return out
    }

    func offer(for peer: VersionVector) -> (UInt64, UInt64, VersionVector) {
        let missing = entries(after: peer, maxEntries: .max)
        return (UInt64(missing.count), missing.reduce(0) { $0 + UInt64($1.body.count) }, vector)
    }

    mutating func apply(_ entries: [LogEntry]) {
        for entry in entries {
            let log = LogID(origin: entry.origin, scope: entry.scope)
            if entry.seq == UInt64(logs[log, default: []].count) + 1 { logs[log, default: []].append(entry) }
        }
    }

    static func with(_ signer: SiteSigner, entries count: Int) -> MemoryStore {
        var store = MemoryStore()
        var previous = LogEntry.genesisHash
        for seq in 1...max(count, 1) where count > 0 {
            let change = Change(rows: [RowWrite(table: 2, key: Array(repeating: UInt8(seq % 256), count: 16), cells: [CellWrite(column: 4, value: .text("entry \(seq)"))])])
            let entry = LogEntry(signer: signer, scope: .trust, seq: UInt64(seq), previousHash: previous, hlc: HLC(rawValue: UInt64(seq)), change: change)
            previous = entry.hash
            store.logs[LogID(origin: signer.origin, scope: .trust), default: []].append(entry)
        }
        return store
    }
}

/// One side: a session, its store, and what it has sent.
struct Side {
    var session: SyncSession
    var store: MemoryStore
    var outbox: [SyncMessage] = []
    var result: SyncSession.Action?
    var maxUnacknowledged = 0
    var unacknowledged = Set<UInt64>()

    /// Directory records this side holds, and those the peer sent it.
    var directory: DirectoryIndex = .empty
    var receivedDirectory: [DirectoryRecord] = []
    /// Every message this side sent, in order.
    var sent: [SyncMessage] = []

    init(_ signer: SiteSigner, store: MemoryStore, sends: Bool = true, receives: Bool = true, versions: ClosedRange<UInt64> = WireLimits.versions,
         directory: DirectoryIndex = .empty) {
        self.store = store
        self.directory = directory
        session = SyncSession(hello: Hello(versions: versions, origin: signer.origin, trust: "RXH", site: "s", kind: "ward", sends: sends, receives: receives,
                                           directoryDigest: DirectoryRecord.digest(of: directory.allRecords)))
    }

    /// Runs actions to completion, doing the store's work at once.
    mutating func run(_ actions: [SyncSession.Action]) {
        var queue = actions
        while !queue.isEmpty {
            let action = queue.removeFirst()
            switch action {
            case .send(let message):
                if case .batch(let id, _) = message {
                    unacknowledged.insert(id)
                    maxUnacknowledged = max(maxUnacknowledged, unacknowledged.count)
                }
                outbox.append(message)
                sent.append(message)
            case .authorize:
                queue += session.peerAuthorized(vector: store.vector, directory: directory)
            case .applyDirectory(let records):
                receivedDirectory += records
            case .prepareOffer(let peer):
                let (entries, bytes, through) = store.offer(for: peer)
                queue += session.offerReady(entries: entries, bytes: bytes, through: through)
            case .loadBatch(let cursor, let through, let maxEntries, _):
                queue += session.batchLoaded(store.entries(after: cursor, through: through, maxEntries: min(maxEntries, 10)))
            case .apply(let id, let entries):
                store.apply(entries)
                queue += session.batchApplied(id: id, applied: UInt64(entries.count), bytes: 0, conflicts: 0)
            case .progress: break
            case .finish, .fail: result = action
            }
        }
    }

    mutating func deliver(_ message: SyncMessage) {
        if case .ack(let id, _, _, _) = message { unacknowledged.remove(id) }
        run(session.received(message))
    }
}

/// Pumps messages between two sides until both are quiet; every message goes through the codec.
func pump(_ a: inout Side, _ b: inout Side) throws {
    let encoders = (try PayloadEncoder(), try PayloadEncoder())
    let decoders = (try PayloadDecoder(), try PayloadDecoder())
    a.run(a.session.start())
    b.run(b.session.start())
    var rounds = 0
    while !(a.outbox.isEmpty && b.outbox.isEmpty), rounds < 10_000 {
        rounds += 1
        if !a.outbox.isEmpty {
            let message = a.outbox.removeFirst()
            b.deliver(try decoders.1.message(from: try encoders.0.payload(for: message)))
        }
        if !b.outbox.isEmpty {
            let message = b.outbox.removeFirst()
            a.deliver(try decoders.0.message(from: try encoders.1.payload(for: message)))
        }
    }
}

@Suite("Sync session state machine")
struct SessionTests {
    let signers = (SiteSigner(), SiteSigner())

    @Test("both sides end with each other's entries, in batches within the window")
    func bothWays() throws {
        var a = Side(signers.0, store: .with(signers.0, entries: 95))
        var b = Side(signers.1, store: .with(signers.1, entries: 7))
        try pump(&a, &b)
        guard case .finish(let countersA)? = a.result, case .finish(let countersB)? = b.result else {
            Issue.record("did not finish: \(String(describing: a.result)) \(String(describing: b.result))")
            return
        }
        #expect(countersA.entriesOut == 95 && countersA.entriesIn == 7)
        #expect(countersB.entriesOut == 7 && countersB.entriesIn == 95)
        #expect(a.store.vector == b.store.vector)
        #expect(a.maxUnacknowledged <= WireLimits.window && a.maxUnacknowledged > 1)
    }

    @Test("replicas already in step exchange only hellos, vectors, empty offers and DONE")
    func inStep() throws {
        let shared = MemoryStore.with(signers.0, entries: 20)
        var a = Side(signers.0, store: shared), b = Side(signers.1, store: shared)
        try pump(&a, &b)
        guard case .finish(let counters)? = a.result else { Issue.record("did not finish"); return }
        #expect(counters.entriesIn == 0 && counters.entriesOut == 0)
    }

    @Test("a pull-only side sends nothing")
    func pullOnly() throws {
        var a = Side(signers.0, store: .with(signers.0, entries: 5), sends: false)
        var b = Side(signers.1, store: .with(signers.1, entries: 5))
        try pump(&a, &b)
        #expect(a.store.logs.count == 2 && b.store.logs.count == 1)
        guard case .finish? = b.result else { Issue.record("did not finish"); return }
    }

    @Test("versions that do not overlap end the session with an error on both sides")
    func versionMismatch() throws {
        var a = Side(signers.0, store: MemoryStore(), versions: 1...1)
        var b = Side(signers.1, store: MemoryStore(), versions: 2...3)
        try pump(&a, &b)
        guard case .fail(let errorA)? = a.result, case .fail(let errorB)? = b.result else { Issue.record("expected failures"); return }
        #expect(errorA.code == .versionMismatch && errorB.code == .versionMismatch)
    }

    @Test("messages out of turn are refused with an ERROR", arguments: [
        SyncMessage.done, .ack(id: 1, applied: 1, conflicts: 0, refused: 0), .batch(id: 1, entries: []), .offer(entries: 1, bytes: 1),
    ])
    func outOfTurn(message: SyncMessage) {
        var side = Side(signers.0, store: MemoryStore())
        side.run(side.session.start())
        side.deliver(message)
        guard case .fail(let error)? = side.result else { Issue.record("expected a failure"); return }
        #expect(error.code == .unexpectedMessage)
        #expect(side.outbox.contains { if case .error(.unexpectedMessage, _) = $0 { true } else { false } })
    }

    @Test("an ERROR from the peer ends the session without answering")
    func peerError() {
        var side = Side(signers.0, store: MemoryStore())
        side.run(side.session.start())
        side.deliver(.error(.entriesRefused, "bad signature"))
        #expect(side.result == .fail(SyncError(.entriesRefused, "bad signature", fromPeer: true)))
        #expect(side.outbox.count == 1)  // only its HELLO
    }

    @Test("a closed connection mid-session is a failure; after finishing it is not")
    func closed() throws {
        var side = Side(signers.0, store: MemoryStore())
        side.run(side.session.start())
        #expect(side.session.connectionClosed() == [.fail(SyncError(.connectionLost, "the connection closed before the sync finished"))])
        var a = Side(signers.0, store: MemoryStore()), b = Side(signers.1, store: MemoryStore())
        try pump(&a, &b)
        #expect(a.session.connectionClosed().isEmpty)
    }

    /// A side that has received the peer's HELLO, VECTOR and an OFFER of `offered` entries, ready for batches.
    func receiving(offered: UInt64) -> Side {
        let peer = SiteSigner()
        var side = Side(signers.0, store: MemoryStore())
        side.run(side.session.start())
        side.deliver(.hello(Hello(origin: peer.origin, trust: "RXH", site: "p", kind: "ward")))
        side.deliver(.vectorDigests(VersionVector().bucketDigests))
        side.deliver(.vector(VersionVector()))
        side.deliver(.offer(entries: offered, bytes: 100))
        return side
    }

    @Test("a hostile OFFER, ACK or BATCH ends the session with an ERROR and never crashes", arguments: [
        [SyncMessage.offer(entries: .max, bytes: .max)],
        [.batch(id: 2, entries: [])],
        [.batch(id: 1, entries: []), .batch(id: 1, entries: [])],
        [.ack(id: 1, applied: .max, conflicts: .max, refused: 1)],
        [.ack(id: 7, applied: 0, conflicts: 0, refused: 0)],
    ])
    func hostileNumbers(messages: [SyncMessage]) {
        var side = receiving(offered: 3)
        if case .offer = messages[0] { side = Side(signers.0, store: MemoryStore()); side.run(side.session.start())
            side.deliver(.hello(Hello(origin: SiteSigner().origin, trust: "RXH", site: "p", kind: "ward")))
            side.deliver(.vectorDigests(VersionVector().bucketDigests)); side.deliver(.vector(VersionVector())) }
        for message in messages { side.deliver(message) }
        guard case .fail(let error)? = side.result else { Issue.record("expected a failure for \(messages)"); return }
        #expect([.unexpectedMessage, .malformedMessage].contains(error.code))
    }

    @Test("a peer that sends more batches than the window, or more entries than it offered, is refused")
    func windowAndOffer() {
        let store = MemoryStore.with(signers.1, entries: 20)
        let all = store.entries(after: VersionVector(), maxEntries: .max)
        // The side applies nothing yet: every batch stays unacknowledged.
        var side = receiving(offered: 20)
        var applying: [SyncSession.Action] = []
        for id in 1...UInt64(WireLimits.window + 1) {
            applying = side.session.received(.batch(id: id, entries: [all[Int(id) - 1]]))
            if case .fail = applying.last { break }
        }
        guard case .fail(let error)? = applying.last else { Issue.record("a batch past the window was taken"); return }
        #expect(error.code == .unexpectedMessage && error.message.contains("await acknowledgement"))

        var greedy = receiving(offered: 1)
        greedy.deliver(.batch(id: 1, entries: Array(all.prefix(2))))
        guard case .fail(let overOffer)? = greedy.result else { Issue.record("more entries than offered were taken"); return }
        #expect(overOffer.message.contains("more entries than the 1 offered"))
    }

    @Test("a sender never sends beyond what it offered, even when its log grows during the session")
    func offerHolds() throws {
        var a = Side(signers.0, store: .with(signers.0, entries: 30))
        var b = Side(signers.1, store: MemoryStore())
        a.run(a.session.start())
        b.run(b.session.start())
        let encoders = (try PayloadEncoder(), try PayloadEncoder())
        let decoders = (try PayloadDecoder(), try PayloadDecoder())
        var grown = false
        var rounds = 0
        while !(a.outbox.isEmpty && b.outbox.isEmpty), rounds < 10_000 {
            rounds += 1
            if !a.outbox.isEmpty {
                let message = a.outbox.removeFirst()
                if case .offer = message, !grown {
                    // The sender's log grows after its OFFER went out.
                    a.store = .with(signers.0, entries: 60)
                    grown = true
                }
                b.deliver(try decoders.1.message(from: try encoders.0.payload(for: message)))
            }
            if !b.outbox.isEmpty { a.deliver(try decoders.0.message(from: try encoders.1.payload(for: message(b.outbox.removeFirst())))) }
        }
        guard case .finish(let counters)? = b.result else { Issue.record("did not finish: \(String(describing: b.result))"); return }
        #expect(counters.entriesIn == 30)
        #expect(b.store.vector.seq(of: LogID(origin: signers.0.origin, scope: .trust)) == 30)
    }

    func message(_ m: SyncMessage) -> SyncMessage { m }
}
