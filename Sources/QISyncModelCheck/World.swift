import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore
import QISyncTransport

/// A wall clock the world moves by hand, shared by every replica in it, so a history repeats
/// exactly from its operation codes.
final class ManualClock: @unchecked Sendable {
    // One history runs on one thread; the lock keeps the clock sound if that ever changes.
    private let lock = NSLock()
    private var now: UInt64 = 1_800_000_000_000

    var milliseconds: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return now
    }

    func advance(_ by: UInt64) {
        lock.lock()
        now += by
        lock.unlock()
    }
}

/// Record ids from a seeded generator, so a history repeats exactly.
final class SeededIDs: @unchecked Sendable {
    // Used from the history's one thread; the lock keeps it sound anyway.
    private let lock = NSLock()
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    func next(owner: String) -> RecordID {
        lock.lock()
        defer { lock.unlock() }
        return RecordID.random(owner: owner, using: &generator)
    }
}

/// One replica of the world: its records, its trust and whether it is its trust's hub.
public final class Site {
    /// The site's name, `TRUST/name`.
    public let name: String
    /// Its trust's code.
    public let trust: String
    /// Whether it founded its trust (holds the trust key).
    public let isHub: Bool
    /// Its records.
    public let records: QIRecords
    /// Whether its trust revoked it.
    public internal(set) var revoked = false

    init(name: String, trust: String, isHub: Bool, records: QIRecords) {
        self.name = name
        self.trust = trust
        self.isHub = isHub
        self.records = records
    }

    /// The replica.
    public var replica: Replica { records.replica }
}

/// A trust of the world: its code, key, hub and wards.
public final class Trust {
    /// Its ODS code.
    public let code: String
    /// Its trust key.
    public let key: TrustKey
    /// Its sites, the hub first.
    public internal(set) var sites: [Site] = []

    init(code: String, key: TrustKey) {
        self.code = code
        self.key = key
    }

    /// The hub.
    public var hub: Site { sites[0] }
}

/// Several trusts, each a hub and wards, every replica a real SQLite replica in a temporary
/// folder, sharing one manual clock. Histories of operations run against it
/// (``History``); ``Checker`` then checks what the replicas agree on.
public final class World {
    /// The trusts.
    public private(set) var trusts: [Trust] = []
    /// Every site, in the order made.
    public var sites: [Site] { trusts.flatMap(\.sites) }
    /// The revocations issued, by site key.
    public private(set) var revocations: [OriginID: Revocation] = [:]
    let clock = ManualClock()
    var bundleCount = 0
    let ids: SeededIDs
    let root: URL
    var keys: SplitMix64
    /// Operations that failed for a reason that is not a refusal the rules allow: each one is a finding.
    public internal(set) var unexpected: [String] = []
    /// What happened, one line per operation, for a failing history's report.
    public internal(set) var log: [String] = []

    /// Makes `trustCount` trusts, each with a hub and `wards` wards; every hub pins every other trust.
    public init(seed: UInt64, trustCount: Int, wards: Int) throws {
        ids = SeededIDs(seed: seed ^ 0x5EED)
        keys = SplitMix64(seed: seed ^ 0xC0FFEE)
        root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for code in ["RXH", "RYJ", "RAA", "RBB"].prefix(trustCount) {
            let trust = Trust(code: code, key: try TrustKey(rawRepresentation: randomKeyBytes()))
            trusts.append(trust)
            try addSite(to: trust, hub: true)
            for _ in 0..<wards { try addSite(to: trust, hub: false) }
        }
        for trust in trusts {
            for other in trusts where other !== trust {
                try trust.hub.replica.pinTrust(code: other.code, fingerprint: other.key.fingerprint)
            }
        }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func randomKeyBytes() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255, using: &keys) } }

    /// Adds a site: a hub founds its trust; a ward joins, and its hub enrols it and hands it
    /// the enrolment file (so it knows its hub before they meet).
    @discardableResult
    func addSite(to trust: Trust, hub: Bool) throws -> Site {
        let name = hub ? "hub" : "ward-\(trust.sites.count)"
        let signer = try SiteSigner(rawRepresentation: randomKeyBytes())
        let clock = self.clock, ids = self.ids
        let replica = try Replica.create(
            home: root.appendingPathComponent("\(trust.code)-\(name)"), trustCode: trust.code, trustName: "Trust \(trust.code)",
            siteName: name, kind: hub ? .hub : .ward, schema: QISchema.schema, signer: signer,
            membership: hub ? .founding(trust.key) : .joining(trust.key.fingerprint), now: { clock.milliseconds })
        let records = QIRecords(replica: replica, now: { Date(timeIntervalSince1970: Double(clock.milliseconds) / 1000) },
                                newID: { ids.next(owner: $0) })
        let site = Site(name: "\(trust.code)/\(name)", trust: trust.code, isHub: hub, records: records)
        if !hub {
            let (enrolment, _) = try trust.hub.replica.enrol(replica.enrolmentRequest())
            try replica.acceptEnrolment(enrolment)
            try replica.importDirectory(try trust.hub.replica.directoryRecords())
        }
        trust.sites.append(site)
        clock.advance(1000)
        return site
    }

    /// The hub revokes one of its wards, and remembers the revocation for the model.
    func revoke(_ site: Site) throws {
        guard let trust = trusts.first(where: { $0.code == site.trust }), !site.isHub, !site.revoked else { return }
        if let revocation = try trust.hub.replica.revoke(site: site.replica.identity.origin) {
            revocations[site.replica.identity.origin] = revocation
            site.revoked = true
        }
    }

    /// The trust of a site key, as the world made it.
    public func trust(of origin: OriginID) -> Trust? {
        trusts.first { $0.sites.contains { $0.replica.identity.origin == origin } }
    }

    /// Every site may sync with: wards with their own hub and each other, hubs with every hub.
    func mayMeet(_ a: Site, _ b: Site) -> Bool {
        a !== b && (a.trust == b.trust || (a.isHub && b.isHub))
    }
}
