import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore

/// A fake wall clock that tests move by hand.
final class TestClock: @unchecked Sendable {
    // Tests drive one clock from one task at a time.
    var milliseconds: UInt64 = 1_800_000_000_000
    func advance(_ by: UInt64 = 1) { milliseconds += by }
}

/// Temporary replicas, removed when the value is released. Replicas of one trust share its
/// trust key; every replica holds every other's enrolment and pins every trust, as if they
/// had all synced their directories already.
final class TestReplicas {
    let root: URL
    let clock = TestClock()
    private var trustKeys: [String: TrustKey] = [:]
    private var made: [Replica] = []

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// A new replica with a site key made from `keySeed`, so origin order is reproducible.
    func make(_ name: String, trust: String = "RXH", keySeed: UInt64? = nil, signer given: SiteSigner? = nil) throws -> Replica {
        var signer = given ?? SiteSigner()
        if let keySeed {
            var generator = SplitMix64(seed: keySeed)
            signer = try SiteSigner(rawRepresentation: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        let clock = self.clock
        let key = trustKeys[trust] ?? TrustKey()
        trustKeys[trust] = key
        let replica = try Replica.create(home: root.appendingPathComponent(name), trustCode: trust, trustName: "Trust \(trust)",
                                         siteName: name, kind: .hub, schema: QISchema.schema, signer: signer, membership: .founding(key),
                                         now: { clock.milliseconds })
        for other in made {
            for (a, b) in [(other, replica), (replica, other)] where a.identity.trustCode != b.identity.trustCode {
                try a.pinTrust(code: b.identity.trustCode, fingerprint: trustKeys[b.identity.trustCode]!.fingerprint)
            }
        }
        for other in made {
            try other.importDirectory(try replica.directoryRecords())
            try replica.importDirectory(try other.directoryRecords())
        }
        made.append(replica)
        return replica
    }

    /// Every directory record the replicas made so far hold.
    func directoryRecords() throws -> [DirectoryRecord] {
        Array(Set(try made.flatMap { try $0.directoryRecords() }))
    }
}
