import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport

/// The NHS in one process: trusts of a hub and wards, each a real SQLite replica, syncing on
/// demand through the real session state machines (``LocalSync``: every message encoded,
/// compressed, framed and decoded as on the wire, no sockets) or by bundle files.
///
/// A round's exchanges run side by side on every core, as sites across the country sync at
/// once: each trust's wards meet their hub one after another on one thread, no exchange
/// touching another trust's sites; hubs meet in waves of meetings of different hubs. The
/// result is the same however the threads interleave. Everything else runs on one thread
/// (hence `@unchecked Sendable`).
final class Simulation: @unchecked Sendable {
    struct Options {
        var trusts = 5
        var wards = 3
        /// Wards per trust that only ever exchange bundles with their hub.
        var bundleWards = 1
        /// Rounds in which sites make changes.
        var activeRounds = 5
        /// Changes made per round, across all sites.
        var editsPerRound = 20
        /// Of the initiatives made, the share of them shared with other trusts (percent).
        var sharePercent = 30
        /// Chance a ward meets its hub in a round (percent).
        var wardSyncPercent = 60
        /// Chance a hub meets a random other hub in a round (percent).
        var hubSyncPercent = 60
        /// Rounds after the last change before giving up on convergence.
        var quietRoundsLimit = 200
        var seed: UInt64 = 1
    }

    /// Shared between threads only as ``Simulation`` says: a trust's sites are used by one thread at a time.
    final class Site: @unchecked Sendable {
        let name: String
        let trust: Int
        let isHub: Bool
        let bundleOnly: Bool
        let records: QIRecords
        var replica: Replica { records.replica }
        init(name: String, trust: Int, isHub: Bool, bundleOnly: Bool, records: QIRecords) {
            self.name = name
            self.trust = trust
            self.isHub = isHub
            self.bundleOnly = bundleOnly
            self.records = records
        }
    }

    struct Report {
        var replicas = 0
        var rounds = 0
        var roundsToHubs: Int?
        var roundsToAll: Int?
        var syncs = 0
        var bundles = 0
        var bytes: UInt64 = 0
        var bytesPerRound: [UInt64] = []
        var edits = 0
        var shared = 0
        var largestReplica = 0
        var converged = false
        var problems: [String] = []
        var setupSeconds = 0.0
        var seconds = 0.0
        /// Bytes of a sync with nothing to move, once converged: a ward with its hub, and two hubs.
        var quietWardSync: UInt64 = 0
        var quietHubSync: UInt64 = 0
        /// Sync bytes by message name, and bundle and receipt bytes, over the whole run.
        var bytesByKind: [String: UInt64] = [:]
        /// Seconds spent in syncs and in bundle exchanges.
        var syncSeconds = 0.0
        var bundleSeconds = 0.0

        /// Adds what exchanges run apart (a trust's wards with its hub) counted.
        mutating func add(_ part: Report) {
            syncs += part.syncs
            bundles += part.bundles
            bytesByKind.merge(part.bytesByKind, uniquingKeysWith: +)
            problems += part.problems
            syncSeconds += part.syncSeconds
            bundleSeconds += part.bundleSeconds
        }
    }

    let options: Options
    let root: URL
    var rng: SplitMix64
    var trusts: [[Site]] = []
    var hubs: [Site] { trusts.map { $0[0] } }
    var sites: [Site] { trusts.flatMap { $0 } }
    var sharedIDs: Set<RecordID> = []
    var clock: UInt64 = 1_800_000_000_000

    init(options: Options, root: URL) {
        self.options = options
        self.root = root
        rng = SplitMix64(seed: options.seed)
    }

    func chance(_ percent: Int) -> Bool { Int(rng.next() % 100) < percent }
    func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }

    static func trustCode(_ index: Int) -> String { String(format: "S%03d", index) }

    /// Makes the trusts: each hub founds its trust and enrols its wards (handing each the
    /// enrolment and directory, as `enrol --out` and `enrol --accept` do); every hub pins every
    /// other trust. Trusts are made side by side, then hubs pin side by side.
    func setUp() throws {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let keys = (0..<options.trusts).map { _ in TrustKey() }
        trusts = try Self.sideBySide(Array(keys.enumerated())) { index, key in try self.makeTrust(index, key) }
        _ = try Self.sideBySide(Array(trusts.enumerated())) { index, members in
            for (other, key) in keys.enumerated() where other != index {
                try members[0].replica.pinTrust(code: Self.trustCode(other), fingerprint: key.fingerprint)
            }
        }
    }

    /// `body` of each item on every core (``ParallelMap``), in order; the first error thrown is thrown.
    static func sideBySide<Item: Sendable, Output: Sendable>(_ items: [Item], _ body: @Sendable (Item) throws -> Output) throws -> [Output] {
        try ParallelMap.map(items) { item in Result { try body(item) } }.map { try $0.get() }
    }

    /// Hubs' meetings, in waves of meetings of different hubs: a meeting comes in a later wave
    /// than every earlier one of either of its hubs, so each hub meets the others in the order
    /// drawn, and running a wave's meetings side by side ends a round as if they had all met one
    /// after another.
    static func waves(of meetings: [(Site, Site)]) -> [[(Site, Site)]] {
        var waves: [[(Site, Site)]] = []
        var lastWave: [ObjectIdentifier: Int] = [:]
        for (hub, other) in meetings {
            let wave = max(lastWave[ObjectIdentifier(hub)] ?? -1, lastWave[ObjectIdentifier(other)] ?? -1) + 1
            if wave == waves.count { waves.append([]) }
            waves[wave].append((hub, other))
            lastWave[ObjectIdentifier(hub)] = wave
            lastWave[ObjectIdentifier(other)] = wave
        }
        return waves
    }

    /// A trust's hub, founding it with `key`, and its wards, enrolled.
    func makeTrust(_ index: Int, _ key: TrustKey) throws -> [Site] {
        let code = Self.trustCode(index)
        let hub = try Replica.create(home: root.appendingPathComponent("\(code)-hub"), trustCode: code, trustName: "Trust \(code)",
                                     siteName: "hub", kind: .hub, schema: QISchema.schema, membership: .founding(key))
        var members = [Site(name: "\(code)/hub", trust: index, isHub: true, bundleOnly: false, records: QIRecords(replica: hub))]
        for ward in 0..<options.wards {
            let replica = try Replica.create(home: root.appendingPathComponent("\(code)-ward-\(ward)"), trustCode: code,
                                             trustName: "Trust \(code)", siteName: "ward-\(ward)", kind: .ward,
                                             schema: QISchema.schema, membership: .joining(key.fingerprint))
            let (enrolment, _) = try hub.enrol(replica.enrolmentRequest())
            try replica.acceptEnrolment(enrolment)
            try replica.importDirectory(try hub.directoryRecords())
            members.append(Site(name: "\(code)/ward-\(ward)", trust: index, isHub: false, bundleOnly: ward < options.bundleWards,
                                records: QIRecords(replica: replica)))
        }
        return members
    }

    /// One site records an initiative; some are shared with other trusts.
    func edit(_ report: inout Report) throws {
        let site = pick(sites)
        let wards = ["Ward 7b", "Ysbyty Gwynedd AMU", "Café & discharge lounge", "Llandudno ED"]
        let made = try site.records.add(.initiative, fields: [
            "title": "Reduce falls at 37°C, £\(rng.next() % 900) a month (\(site.name) #\(report.edits))",
            "team": pick(wards), "aim": "Fewer falls by March, measured weekly",
        ])
        report.edits += 1
        if chance(options.sharePercent) {
            _ = try site.records.share(made.id.hex)
            sharedIDs.insert(made.id)
            report.shared += 1
        }
    }

    /// A ward and its hub exchange bundles both ways, each export starting from what the
    /// other's last receipt said it holds.
    func exchangeBundles(_ ward: Site, _ hub: Site, _ report: inout Report) throws -> UInt64 {
        let started = Date()
        defer { report.bundleSeconds += Date().timeIntervalSince(started) }
        var bytes: UInt64 = 0
        for (from, to) in [(ward, hub), (hub, ward)] {
            let target = BundleTarget(trust: Self.trustCode(to.trust), site: String(to.name.split(separator: "/").last!),
                                      siteKey: to.replica.identity.origin)
            let since = try from.replica.knownVector(of: to.replica.identity.origin)?.vector ?? VersionVector()
            let path = root.appendingPathComponent("bundle-\(UUID().uuidString).bundle").path
            try BundleCarrier.export(replica: from.replica, for: target, since: since,
                                     peerDirectory: try from.replica.knownDirectory(of: to.replica.identity.origin), now: clock, to: path)
            let size = UInt64((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
            let imported = try BundleCarrier.importBundle(replica: to.replica, path: path, now: clock)
            let receipt = try BundleReceipt(parsing: imported.receipt)
            try BundleCarrier.remember(receipt, at: from.replica)
            bytes += size + UInt64(imported.receipt.count)
            report.bytesByKind["bundle file", default: 0] += size
            report.bytesByKind["receipt", default: 0] += UInt64(imported.receipt.count)
            try? FileManager.default.removeItem(atPath: path)
            report.bundles += 1
        }
        return bytes
    }

    func sync(_ client: Site, _ server: Site, _ report: inout Report) -> UInt64 {
        let started = Date()
        let outcome = LocalSync.run(client: client.replica, server: server.replica)
        report.syncSeconds += Date().timeIntervalSince(started)
        report.syncs += 1
        report.bytesByKind.merge(outcome.bytesByMessage, uniquingKeysWith: +)
        if let error = outcome.client.error ?? outcome.server.error {
            report.problems.append("\(client.name) with \(server.name): \(error)")
        }
        return outcome.client.wireIn + outcome.client.wireOut
    }

    /// How many of the shared initiatives each replica holds.
    func sharedHeld(_ site: Site) throws -> Int {
        try site.replica.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM initiative WHERE scope = 'shared' AND live = 1") ?? 0
        }
    }

    /// The shared initiatives a replica holds, as one line each, sorted.
    func sharedState(_ site: Site) throws -> [String] {
        try site.replica.read { db in
            try String.fetchAll(db, sql: "SELECT hex(id) || char(31) || title || char(31) || team FROM initiative WHERE scope = 'shared' AND live = 1 ORDER BY id")
        }
    }

    func run() throws -> Report {
        var report = Report()
        let started = Date()
        try setUp()
        report.setupSeconds = Date().timeIntervalSince(started)
        report.replicas = sites.count
        var round = 0
        var quiet = 0
        while true {
            round += 1
            clock += 60_000
            var bytes: UInt64 = 0
            // What exchanges run apart moved and counted, added to the round's.
            func tally(_ parts: [(moved: UInt64, counted: Report)]) {
                for part in parts {
                    bytes += part.moved
                    report.add(part.counted)
                }
            }
            if round <= options.activeRounds {
                for _ in 0..<options.editsPerRound { try edit(&report) }
            }
            // Which wards meet their hub is drawn in order, so a seed always gives the same
            // round; then trusts' exchanges run side by side.
            let meetings = trusts.map { members in members.dropFirst().filter { _ in chance(options.wardSyncPercent) } }
            tally(try Self.sideBySide(Array(zip(hubs, meetings))) { hub, wards in
                var part = Report()
                var moved: UInt64 = 0
                for ward in wards { moved += ward.bundleOnly ? try self.exchangeBundles(ward, hub, &part) : self.sync(ward, hub, &part) }
                return (moved, part)
            })
            if hubs.count > 1 {
                var meetings: [(Site, Site)] = []
                for hub in hubs where chance(options.hubSyncPercent) { meetings.append((hub, pick(hubs.filter { $0 !== hub }))) }
                for wave in Self.waves(of: meetings) {
                    tally(try Self.sideBySide(wave) { hub, other in
                        var part = Report()
                        return (self.sync(hub, other, &part), part)
                    })
                }
            }
            report.bytes += bytes
            report.bytesPerRound.append(bytes)
            // Progress on stderr, so a long run shows how far it has got.
            FileHandle.standardError.write(Data(String(format: "round %d: %llu bytes, %.0f s so far\n", round, bytes,
                                                        Date().timeIntervalSince(started)).utf8))
            guard round >= options.activeRounds else { continue }
            quiet += 1
            let total = sharedIDs.count
            if report.roundsToHubs == nil, try hubs.allSatisfy({ try sharedHeld($0) == total }) { report.roundsToHubs = quiet }
            if try sites.allSatisfy({ try sharedHeld($0) == total }) {
                report.roundsToAll = quiet
                break
            }
            if quiet >= options.quietRoundsLimit { break }
        }
        report.rounds = round
        let states = try sites.map(sharedState)
        report.converged = report.roundsToAll != nil && states.allSatisfy { $0 == states[0] } && states[0].count == sharedIDs.count
        for (site, state) in zip(sites, states) where state != states[0] {
            report.problems.append("\(site.name) holds \(state.count) shared initiatives, \(sites[0].name) \(states[0].count), and they differ")
        }
        report.largestReplica = sites.map { $0.replica.fileSize() }.max() ?? 0
        if let members = trusts.first, let ward = members.dropFirst().first(where: { !$0.bundleOnly }) {
            report.quietWardSync = sync(ward, members[0], &report)
        }
        if hubs.count > 1 { report.quietHubSync = sync(hubs[0], hubs[1], &report) }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
