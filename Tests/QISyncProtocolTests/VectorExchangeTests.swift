import QISyncCore
import QISyncProtocol
import Testing

/// A store holding the first `lengths[i]` entries of each signer's log.
private func store(_ signers: [SiteSigner], _ full: [MemoryStore], lengths: [Int]) -> MemoryStore {
    var store = MemoryStore()
    for (index, signer) in signers.enumerated() where lengths[index] > 0 {
        let log = LogID(origin: signer.origin, scope: .trust)
        store.logs[log] = Array(full[index].logs[log]!.prefix(lengths[index]))
    }
    return store
}

/// The VECTOR messages a side sent, merged.
private func sentVector(_ side: Side) -> VersionVector {
    var merged = VersionVector()
    for case .vector(let vector) in side.sent { merged.positions.merge(vector.positions) { a, _ in a } }
    return merged
}

@Suite("Vector exchange by bucket (protocol version 2)")
struct VectorExchangeTests {
    static let signers = (0..<60).map { _ in SiteSigner() }
    static let full = signers.map { MemoryStore.with($0, entries: 6) }

    @Test("replicas in step send bucket digests and an empty VECTOR, however many logs they hold")
    func inStep() throws {
        let lengths = [Int](repeating: 4, count: Self.signers.count)
        var a = Side(Self.signers[0], store: store(Self.signers, Self.full, lengths: lengths))
        var b = Side(Self.signers[1], store: store(Self.signers, Self.full, lengths: lengths))
        try pump(&a, &b)
        guard case .finish? = a.result, case .finish? = b.result else {
            Issue.record("did not finish: \(String(describing: a.result)) \(String(describing: b.result))")
            return
        }
        #expect(sentVector(a).positions.isEmpty && sentVector(b).positions.isEmpty)
        #expect(a.sent.contains { if case .vectorDigests = $0 { true } else { false } })
    }

    @Test("over random holdings, both sides end with the union, and VECTOR lists only logs of buckets whose digests differ")
    func randomHoldings() throws {
        var random = SplitMix64(seed: 4471)
        for round in 0..<60 {
            let base = Self.signers.indices.map { _ in Int(random.next() % 5) }
            // Mostly in step: a few logs differ on either side.
            var la = base, lb = base
            for _ in 0..<Int(random.next() % 4) { la[Int(random.next() % UInt64(la.count))] = Int(random.next() % 7) }
            for _ in 0..<Int(random.next() % 4) { lb[Int(random.next() % UInt64(lb.count))] = Int(random.next() % 7) }
            var a = Side(Self.signers[0], store: store(Self.signers, Self.full, lengths: la))
            var b = Side(Self.signers[1], store: store(Self.signers, Self.full, lengths: lb))
            let (va, vb) = (a.store.vector, b.store.vector)
            try pump(&a, &b)
            guard case .finish? = a.result, case .finish? = b.result else {
                Issue.record("round \(round) did not finish: \(String(describing: a.result)) \(String(describing: b.result))")
                return
            }
            let union = store(Self.signers, Self.full, lengths: zip(la, lb).map { max($0, $1) }).vector
            #expect(a.store.vector == union && b.store.vector == union, "round \(round)")
            let differing = Set((0..<VersionVector.bucketCount).filter { va.bucketDigests[$0] != vb.bucketDigests[$0] })
            #expect(sentVector(a) == va.restricted(toBuckets: differing), "round \(round)")
            #expect(sentVector(b) == vb.restricted(toBuckets: differing), "round \(round)")
        }
    }

    @Test("a forked log's bucket digests differ, so its position is sent for the peer to find the fork")
    func forkFound() throws {
        let signer = Self.signers[2]
        var a = Side(Self.signers[0], store: .with(signer, entries: 3))
        var other = MemoryStore()
        let change = Change(rows: [RowWrite(table: 2, key: [UInt8](repeating: 9, count: 16), cells: [CellWrite(column: 4, value: .text("forked"))])])
        let entry = LogEntry(signer: signer, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash, hlc: HLC(rawValue: 1), change: change)
        other.logs[LogID(origin: signer.origin, scope: .trust)] = [entry]
        var b = Side(Self.signers[1], store: other)
        try pump(&a, &b)
        #expect(sentVector(a) == a.store.vector.restricted(toBuckets: [VersionVector.bucket(of: LogID(origin: signer.origin, scope: .trust))]))
        #expect(!sentVector(a).positions.isEmpty)
    }
}
