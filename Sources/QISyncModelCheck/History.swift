import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport

/// A history: a list of operation codes. Each code picks an operation (a write of any record
/// kind, a sync, a bundle, a direct delivery of entries, a directory event, a clock step) and
/// its arguments, so a shorter list is a shorter history (what a shrinker wants), and the same
/// list run on a fresh world repeats exactly.
public struct History: Sendable, CustomStringConvertible {
    /// The operation codes.
    public var codes: [UInt64]

    /// A history from its codes.
    public init(codes: [UInt64]) { self.codes = codes }

    /// A random history of `length` operations from `seed`.
    public static func random(seed: UInt64, length: Int) -> History {
        var generator = SplitMix64(seed: seed)
        return History(codes: (0..<length).map { _ in generator.next() })
    }

    public var description: String { "History(codes: [\(codes.map { "0x" + String($0, radix: 16) }.joined(separator: ", "))])" }

    /// Runs every operation on `world`.
    public func run(on world: World) {
        var bundles: [Bundle] = []
        for (index, code) in codes.enumerated() {
            var step = Step(world: world, code: code, bundles: bundles)
            step.perform()
            bundles = step.bundles
            world.log.append("\(index): \(step.summary)")
            world.clock.advance(1 + code % 3)
        }
    }
}

/// A bundle made during a history, waiting to be imported (perhaps twice, perhaps late).
struct Bundle {
    let from: Site
    let to: Site
    let path: String
}

/// One operation of a history, decoded from its code.
struct Step {
    let world: World
    var rng: SplitMix64
    let choice: UInt64
    var bundles: [Bundle]
    var summary = ""

    init(world: World, code: UInt64, bundles: [Bundle]) {
        self.world = world
        rng = SplitMix64(seed: code)
        choice = code % 100
        self.bundles = bundles
    }

    mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[Int(rng.next() % UInt64(items.count))] }
    mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }

    static let texts = ["Reduce falls on ward 7b", "Huddles made it easier to speak up", "café naïve — £5, 37°C",
                        "Llanfair­pwllgwyngyll night-shift handover", "Bed-rail check at every handover", "Ysbyty Gwynedd: ôl-ofal",
                        "Fewer pressure ulcers by March", "Discharge before noon"]

    mutating func text() -> String { pick(Self.texts)! + " \(rng.next() % 1000)" }

    mutating func perform() {
        guard let site = pick(world.sites) else { return }
        summary = "operation \(choice) at \(site.name):"
        do {
            switch choice {
            case 0..<12: try add(.initiative, at: site)
            case 12..<18: try add(.pdsa, at: site)
            case 18..<26: try add(.learning, at: site)
            case 26..<30: try adapt(at: site)
            case 30..<44: try setField(at: site)
            case 44..<49: try setExists(at: site, exists: false)
            case 49..<52: try setExists(at: site, exists: true)
            case 52..<58: try tag(at: site)
            case 58..<62: try share(at: site)
            case 62..<64: try unshare(at: site)
            case 64..<68: try resolve(at: site)
            case 68..<80: sync(from: site)
            case 80..<86: try bundle(at: site)
            case 86..<89: try deliverRaw(from: site)
            case 89..<91: try enrolWard()
            case 91..<93: try revokeWard()
            case 93..<96: try togglePin()
            case 96..<97: try makeWardHub()
            case 97..<99: try redact(at: site)
            default:
                let step = rng.next() % 10_000
                world.clock.advance(step)
                summary = "clock +\(step) ms"
            }
        } catch let error as DomainError {
            summary += " refused: \(error.message)"
        } catch let error as StoreError {
            summary += " refused: \(error)"
        } catch {
            summary += " FAILED: \(error)"
            world.unexpected.append("\(summary)")
        }
    }

    // MARK: Records

    /// Ids of live or all records of a kind held at a site, owned by its trust when `owned`.
    func ids(_ kind: RecordKind, at site: Site, owned: Bool, live: Bool? = true) throws -> [RecordID] {
        try site.replica.read { db in
            var conditions: [String] = []
            if let live { conditions.append("live = \(live ? 1 : 0)") }
            if owned { conditions.append("owner_trust = '\(site.trust)'") }
            let condition = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Data.fetchAll(db, sql: "SELECT id FROM \(kind.rawValue) \(condition) ORDER BY id").map { try RecordID(bytes: Array($0)) }
        }
    }

    mutating func anyRecord(at site: Site, owned: Bool, live: Bool? = true) throws -> (RecordKind, RecordID)? {
        let kind = pick(RecordKind.allCases)!
        return try pick(ids(kind, at: site, owned: owned, live: live)).map { (kind, $0) }
    }

    mutating func add(_ kind: RecordKind, at site: Site) throws {
        var fields: [String: String] = [:]
        var tags: [String: [String]] = [:]
        switch kind {
        case .initiative:
            fields = ["title": text(), "status": pick(Vocabulary.statuses)!]
            if chance(40) { fields["score"] = pick(["1.0", "2.5", "3.5"])! }
        case .pdsa:
            guard let initiative = try pick(ids(.initiative, at: site, owned: true)) else { return }
            fields = ["initiative": initiative.hex, "change-idea": text()]
            if chance(20) { fields["number"] = "1" }
        case .learning:
            fields = ["text": text(), "effect": pick(Vocabulary.effects)!]
            if chance(50), let initiative = try pick(ids(.initiative, at: site, owned: true)) { fields["initiative"] = initiative.hex }
            tags["sofft"] = (0..<Int(rng.next() % 3)).map { _ in pick(Vocabulary.soffts.map(\.code))! }
        case .adaptation: return
        case .measure:
            guard let initiative = try pick(ids(.initiative, at: site, owned: true)) else { return }
            fields = ["initiative": initiative.hex, "name": text(), "direction": pick(Vocabulary.directions)!, "chart": pick(["xmr", "run"])!]
        case .datapoint:
            guard let measure = try pick(ids(.measure, at: site, owned: true)) else { return }
            // Few periods, so two sites often add the same one offline.
            fields = ["measure": measure.hex, "period": String(format: "2026-0%d-01", Int(rng.next() % 6) + 1), "value": String(rng.next() % 50)]
        case .chartEvent:
            guard let measure = try pick(ids(.measure, at: site, owned: true)) else { return }
            fields = ["measure": measure.hex, "type": "annotation", "date": "2026-03-01", "text": text()]
        }
        let view = try site.records.add(kind, fields: fields, tags: tags)
        summary = "\(site.name) adds \(kind.rawValue) \(view.id.short)"
    }

    mutating func adapt(at site: Site) throws {
        guard let source = try pick(ids(.initiative, at: site, owned: false)) else { return }
        let result = try site.records.adapt(source: source.hex, sourceTrust: nil, sourceID: nil, sourceHash: nil, into: nil, title: text(),
                                            fields: ["nature": pick(Vocabulary.frameNature)!], reasons: [pick(Vocabulary.reasons)!])
        summary = "\(site.name) adapts \(source.short) into \(result.initiative.id.short)"
    }

    mutating func setField(at site: Site) throws {
        guard let (kind, id) = try anyRecord(at: site, owned: true) else { return }
        let field: (String, String)
        switch kind {
        case .initiative: field = pick([("title", text()), ("status", pick(Vocabulary.statuses)!), ("score", "2.0"), ("aim", text())])!
        case .pdsa: field = pick([("prediction", text()), ("as-planned", "yes"), ("number", String(rng.next() % 4 + 1))])!
        case .learning: field = pick([("text", text()), ("effect", pick(Vocabulary.effects)!)])!
        case .adaptation: field = pick([("kept", text()), ("fidelity", pick(Vocabulary.fidelity)!)])!
        case .measure: field = pick([("name", text()), ("target", String(rng.next() % 40))])!
        case .datapoint: field = pick([("value", String(rng.next() % 50)), ("note", text()), ("period", String(format: "2026-0%d-01", Int(rng.next() % 6) + 1))])!
        case .chartEvent: field = ("text", text())
        }
        try site.records.set(id.hex, as: kind, fields: [field.0: field.1])
        summary = "\(site.name) sets \(kind.rawValue) \(id.short) \(field.0)"
    }

    mutating func setExists(at site: Site, exists: Bool) throws {
        guard let (kind, id) = try anyRecord(at: site, owned: true, live: exists ? nil : true) else { return }
        summary = "\(site.name) \(exists ? "restores" : "deletes") \(kind.rawValue) \(id.short)"
        try site.records.setExists(id.hex, as: kind, exists: exists)
    }

    mutating func tag(at site: Site) throws {
        guard let id = try pick(ids(.learning, at: site, owned: true)) else { return }
        let tag = pick(Vocabulary.soffts.map(\.code))!
        let add = chance(60)
        summary = "\(site.name) \(add ? "tags" : "untags") learning \(id.short) \(tag)"
        try site.records.set(id.hex, as: .learning, fields: [:], addTags: add ? ["sofft": [tag]] : [:], removeTags: add ? [:] : ["sofft": [tag]])
    }

    mutating func share(at site: Site) throws {
        guard let (kind, id) = try anyRecord(at: site, owned: true) else { return }
        let override = site.isHub && chance(20) ? "reviewed with the IG lead, aggregate data only" : nil
        summary = "\(site.name) shares \(kind.rawValue) \(id.short)\(override == nil ? "" : " with an override")"
        try site.records.share(id.hex, overrideReason: override)
    }

    mutating func unshare(at site: Site) throws {
        guard let (kind, id) = try anyRecord(at: site, owned: true) else { return }
        summary = "\(site.name) unshares \(kind.rawValue) \(id.short)"
        try site.records.unshare(id.hex)
    }

    /// The trust's hub redacts a text field of one of its trust's records (its value now and in history).
    mutating func redact(at site: Site) throws {
        guard site.isHub, let kind = pick([RecordKind.initiative, .learning]), let id = pick(try ids(kind, at: site, owned: true, live: nil)) else { return }
        // Fields every record of the kind has text in (the title, the entry's text).
        let field = kind == .initiative ? "title" : "text"
        summary = "\(site.name) redacts \(field) of \(kind.rawValue) \(id.short)"
        try site.records.redact(id.hex, fields: [field], reason: "patient details typed by mistake")
    }

    mutating func resolve(at site: Site) throws {
        guard let conflict = pick(try site.records.conflicts()) else { return }
        summary = "\(site.name) resolves \(conflict.kind.rawValue) \(conflict.id.short) \(conflict.field)"
        if conflict.isUniqueClash {
            let value = conflict.kind == .pdsa ? String(Int(rng.next() % 12) + 1) : String(format: "2026-%02d-01", Int(rng.next() % 12) + 1)
            try site.records.resolve(conflict.id.hex, field: conflict.field, pick: nil, value: value)
        } else if conflict.field == "exists" {
            try site.records.resolve(conflict.id.hex, field: "exists", pick: nil, value: chance(70) ? "keep" : "delete")
        } else {
            try site.records.resolve(conflict.id.hex, field: conflict.field, pick: Int(rng.next() % UInt64(conflict.heads.count)) + 1, value: nil)
        }
    }

    // MARK: Delivery

    mutating func sync(from site: Site) {
        guard let peer = pick(world.sites.filter { world.mayMeet(site, $0) }) else { return }
        let direction = pick([SyncDirection.both, .both, .pull, .push])!
        let cut: Int? = chance(25) ? Int(rng.next() % 14) : nil
        let outcome = LocalSync.run(client: site.replica, server: peer.replica, direction: direction, cutAfterFrames: cut)
        summary = "sync \(site.name) → \(peer.name) \(direction)\(cut.map { " cut after \($0) frames" } ?? ""): "
            + "\(outcome.client.counters.entriesIn) in, \(outcome.client.counters.entriesOut) out"
        for error in [outcome.client.error, outcome.server.error].compactMap({ $0 }) {
            summary += "; \(error)"
            // Refused identities and cut connections are what the rules allow; anything else is a finding.
            if ![.notAuthorised, .connectionLost, .shuttingDown].contains(error.code), !(cut != nil && error.fromPeer) {
                world.unexpected.append("\(summary)")
            }
        }
    }

    mutating func bundle(at site: Site) throws {
        if chance(50), !bundles.isEmpty {
            let bundle = bundles[Int(rng.next() % UInt64(bundles.count))]
            if chance(70) { bundles.removeAll { $0.path == bundle.path } }
            summary = "\(bundle.to.name) imports a bundle from \(bundle.from.name)"
            let result = try BundleCarrier.importBundle(replica: bundle.to.replica, path: bundle.path, now: world.clock.milliseconds)
            summary += ": \(result.report.applied + result.report.released) applied, \(result.report.waiting) waiting"
            if chance(60), let receipt = try? BundleReceipt(parsing: result.receipt) {
                try BundleCarrier.remember(receipt, at: bundle.from.replica)
            }
            return
        }
        guard let peer = pick(world.sites.filter { world.mayMeet(site, $0) }) else { return }
        let external = peer.trust != site.trust
        let target = BundleTarget(trust: peer.trust, site: external ? "" : String(peer.name.split(separator: "/").last!),
                                  siteKey: external ? nil : peer.replica.identity.origin)
        var since = VersionVector()
        var peerDirectory: [DirectoryGroup]?
        if chance(50), let known = try site.replica.knownVector(of: peer.replica.identity.origin) {
            since = known.vector
            peerDirectory = try site.replica.knownDirectory(of: peer.replica.identity.origin)
        }
        summary = "\(site.name) exports a bundle for \(peer.name)"
        let path = world.root.appendingPathComponent("bundle-\(world.bundleCount).bundle").path
        world.bundleCount += 1
        let header = try BundleCarrier.export(replica: site.replica, for: target, since: since, peerDirectory: peerDirectory,
                                              now: world.clock.milliseconds, to: path,
                                              check: site.records.checkLeavingTrust)
        summary += ": \(header.entries) entries"
        // A bundle for another trust opens only at its hub.
        bundles.append(Bundle(from: site, to: external ? world.trusts.first { $0.code == peer.trust }!.hub : peer, path: path))
    }

    /// Entries handed straight to another replica: a random part of what `site` holds, in any
    /// order, inside runs without their own signatures, sometimes twice.
    mutating func deliverRaw(from site: Site) throws {
        guard let peer = pick(world.sites.filter { $0 !== site }) else { return }
        var entries = try site.replica.entries(after: VersionVector())
        entries = entries.filter { _ in chance(60) }
        // Within each run of consecutive entries, only the last keeps its signature (if it had one).
        entries.sort { ($0.origin, $0.scope, $0.seq) < ($1.origin, $1.scope, $1.seq) }
        var delivered: [LogEntry] = []
        for (index, entry) in entries.enumerated() {
            let next = index + 1 < entries.count ? entries[index + 1] : nil
            let continues = next.map { $0.origin == entry.origin && $0.scope == entry.scope && $0.seq == entry.seq + 1 } ?? false
            delivered.append(continues && chance(70) ? entry.withoutSignature() : entry)
        }
        // A run must end signed; drop trailing unsigned entries of each run that lost its end.
        delivered = LogRunFilter.signedRuns(delivered)
        if chance(30) { delivered += delivered.prefix(3) }
        var generator = rng
        delivered.shuffle(using: &generator)
        rng = generator
        // A redacted entry travels with its redaction records, as DIRECTORY precedes batches in a
        // session or a bundle (SPEC 9, 15); without them it would be refused as forged.
        if delivered.contains(where: \.isRedacted) {
            try peer.replica.importDirectory(try site.replica.directoryRecords().filter { $0.kind == .redaction })
        }
        let report = try peer.replica.apply(delivered, source: "raw from \(site.name)")
        summary = "raw \(site.name) → \(peer.name): \(delivered.count) entries, \(report.applied) applied, \(report.refused) refused, \(report.waiting) waiting"
    }

    // MARK: Directory

    mutating func enrolWard() throws {
        guard let trust = pick(world.trusts), trust.sites.count < 5 else { return }
        let site = try world.addSite(to: trust, hub: false)
        summary = "\(trust.code) enrols \(site.name)"
    }

    mutating func revokeWard() throws {
        guard let site = pick(world.sites.filter { !$0.isHub && !$0.revoked }) else { return }
        summary = "\(site.trust) revokes \(site.name)"
        try world.revoke(site)
    }

    mutating func togglePin() throws {
        guard let trust = pick(world.trusts), let other = pick(world.trusts.filter { $0 !== trust }) else { return }
        let pinned = try trust.hub.replica.trustPins().contains { $0.code == other.code }
        summary = "\(trust.code) \(pinned ? "unpins" : "pins") \(other.code)"
        if pinned { try trust.hub.replica.unpinTrust(code: other.code) } else { try trust.hub.replica.pinTrust(code: other.code, fingerprint: other.key.fingerprint) }
    }

    mutating func makeWardHub() throws {
        guard let site = pick(world.sites.filter { !$0.isHub && !$0.revoked }), let trust = world.trusts.first(where: { $0.code == site.trust }) else { return }
        _ = try trust.hub.replica.enrol(site.replica.enrolmentRequest(kind: .hub))
        summary = "\(trust.code) enrols \(site.name) again as a hub"
    }
}

/// Keeps, of entries sorted by log and number, only runs that end with a signed entry.
enum LogRunFilter {
    static func signedRuns(_ entries: [LogEntry]) -> [LogEntry] {
        var kept: [LogEntry] = []
        var run: [LogEntry] = []
        func flush() {
            while let last = run.last, last.signature == nil { run.removeLast() }
            kept += run
            run = []
        }
        for entry in entries {
            if let last = run.last, !(last.origin == entry.origin && last.scope == entry.scope && last.seq + 1 == entry.seq) { flush() }
            run.append(entry)
        }
        flush()
        return kept
    }
}
