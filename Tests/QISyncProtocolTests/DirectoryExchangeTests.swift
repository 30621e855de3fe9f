import QISyncCore
import QISyncProtocol
import Testing

/// A directory for the exchange tests: trusts (by a one-byte name) pinned, records held of each.
private func index(pins: Set<UInt8>, holds: [UInt8: [DirectoryRecord]]) -> DirectoryIndex {
    DirectoryIndex(groups: Dictionary(uniqueKeysWithValues: holds.map { (trust($0.key), $0.value) }), pinned: Set(pins.map(trust)))
}

private func trust(_ name: UInt8) -> [UInt8] { [UInt8](repeating: name, count: 32) }

private func record(_ name: UInt16) -> DirectoryRecord {
    DirectoryRecord(kind: .enrolment, bytes: [UInt8(name >> 8), UInt8(name & 0xff)] + [UInt8](repeating: 7, count: 200))
}

/// The DIRECTORY messages a side sent, their records together.
private func sentRecords(_ side: Side) -> [DirectoryRecord] {
    side.sent.flatMap { message -> [DirectoryRecord] in if case .directory(let records) = message { records } else { [] } }
}

@Suite("Directory exchange by trust (protocol version 2)")
struct DirectoryExchangeTests {
    let signers = (SiteSigner(), SiteSigner())

    @Test("each side receives only the records of trusts it pins that it lacks, and the session still syncs entries")
    func onlyWhatIsKeptAndLacking() throws {
        let a = index(pins: [1, 2], holds: [1: [record(1), record(2)], 2: [record(3)]])
        let b = index(pins: [1, 3], holds: [1: [record(1), record(4)], 3: [record(5)]])
        var sideA = Side(signers.0, store: .with(signers.0, entries: 3), directory: a)
        var sideB = Side(signers.1, store: MemoryStore(), directory: b)
        try pump(&sideA, &sideB)
        guard case .finish? = sideA.result, case .finish? = sideB.result else {
            Issue.record("did not finish: \(String(describing: sideA.result)) \(String(describing: sideB.result))")
            return
        }
        #expect(sideA.session.version == 2)
        #expect(sideA.receivedDirectory == [record(4)])
        #expect(sideB.receivedDirectory == [record(2)])
        #expect(sideB.store.vector == sideA.store.vector)
        // HAVE lists only trust 1's digests (the one both list with different digests).
        let haves = sideA.sent.compactMap { message -> [[UInt8]]? in if case .have(let d) = message { d } else { nil } }
        #expect(haves == [[record(1).digest, record(2).digest]])
    }

    @Test("a trust the peer will pin (by the trust-wide pins it is receiving) has its records sent in the same session")
    func willPin() throws {
        let hub = DirectoryIndex(groups: [trust(1): [record(1)], trust(4): [record(40), record(41)], trust(5): [record(50)]],
                                 pinned: Set([1, 4, 5].map(trust)), peerWillPin: Set([1, 4].map(trust)))
        var sideA = Side(signers.0, store: MemoryStore(), directory: hub)
        var sideB = Side(signers.1, store: MemoryStore(), directory: index(pins: [1], holds: [1: [record(1)]]))
        try pump(&sideA, &sideB)
        #expect(Set(sideB.receivedDirectory) == [record(40), record(41)])
    }

    @Test("sides whose shared trusts agree send empty DIRECTORY messages, however much else either holds")
    func nothingWhenTheSharedPartAgrees() throws {
        let common = [record(1), record(2)]
        let a = index(pins: [1, 2], holds: [1: common, 2: (10..<60).map(record)])
        let b = index(pins: [1, 3], holds: [1: common, 3: (100..<160).map(record)])
        var sideA = Side(signers.0, store: MemoryStore(), directory: a)
        var sideB = Side(signers.1, store: MemoryStore(), directory: b)
        try pump(&sideA, &sideB)
        #expect(sentRecords(sideA).isEmpty && sentRecords(sideB).isEmpty)
        #expect(sideA.sent.contains { if case .summary = $0 { true } else { false } })
        guard case .finish? = sideA.result, case .finish? = sideB.result else {
            Issue.record("did not finish")
            return
        }
    }

    @Test("with a version-1 peer every record is sent, as version 1 says")
    func versionOnePeerGetsEverything() throws {
        let a = index(pins: [1], holds: [1: [record(1)], 2: [record(3)]])
        let b = index(pins: [1], holds: [1: [record(4)]])
        var sideA = Side(signers.0, store: MemoryStore(), directory: a)
        var sideB = Side(signers.1, store: MemoryStore(), versions: 1...1, directory: b)
        try pump(&sideA, &sideB)
        #expect(sideA.session.version == 1)
        #expect(Set(sideB.receivedDirectory) == [record(1), record(3)])
        #expect(sideA.receivedDirectory == [record(4)])
        #expect(!sideA.sent.contains { if case .summary = $0 { true } else { false } })
    }

    @Test("HAVE or DIRECTORY out of turn, and SUMMARY in version 1, are refused", arguments: [
        SyncMessage.have([]), .directory([]), .summary([]),
    ])
    func outOfTurn(message: SyncMessage) throws {
        var sideA = Side(signers.0, store: MemoryStore(), directory: index(pins: [1], holds: [1: [record(1)]]))
        let peer = Hello(versions: message == .summary([]) ? 1...1 : 2...2, origin: signers.1.origin, trust: "RXH", site: "p", kind: "ward",
                         directoryDigest: [UInt8](repeating: 9, count: 32))
        sideA.run(sideA.session.start())
        sideA.deliver(.hello(peer))
        // Version 2: SUMMARY is due, then HAVE (so DIRECTORY is sent after a SUMMARY, before HAVE).
        // Version 1: DIRECTORY is due.
        if message == .directory([]) {
            sideA.deliver(.summary([]))
            #expect(sideA.result == nil)
        }
        sideA.deliver(message)
        guard case .fail(let error)? = sideA.result else {
            Issue.record("not refused: \(String(describing: sideA.result))")
            return
        }
        #expect(error.code == .unexpectedMessage)
    }

    @Test("over random directories, each side ends holding the other's records of the trusts it pins, and no record is sent twice or needlessly")
    func randomDirectories() throws {
        var random = SplitMix64(seed: 2611)
        for round in 0..<150 {
            func draw() -> (pins: Set<UInt8>, holds: [UInt8: [DirectoryRecord]]) {
                var pins = Set<UInt8>()
                var holds: [UInt8: [DirectoryRecord]] = [:]
                for t in UInt8(1)...6 {
                    if random.next() % 2 == 0 { pins.insert(t) }
                    let names = (0..<8).filter { _ in random.next() % 3 == 0 }.map { UInt16(t) * 100 + UInt16($0) }
                    if !names.isEmpty { holds[t] = names.map(record) }
                }
                return (pins, holds)
            }
            let (pa, ha) = draw(), (pb, hb) = draw()
            var sideA = Side(signers.0, store: MemoryStore(), directory: index(pins: pa, holds: ha))
            var sideB = Side(signers.1, store: MemoryStore(), directory: index(pins: pb, holds: hb))
            try pump(&sideA, &sideB)
            for (receiver, sender, pins, holds, theirs) in [(sideA, sideB, pa, ha, hb), (sideB, sideA, pb, hb, ha)] {
                let expected = Set(pins.flatMap { t in Set(theirs[t] ?? []).subtracting(holds[t] ?? []) })
                #expect(Set(receiver.receivedDirectory) == expected, "round \(round)")
                #expect(receiver.receivedDirectory.count == expected.count, "round \(round): a record sent twice")
                #expect(sentRecords(sender).count == expected.count, "round \(round)")
            }
        }
    }
}
