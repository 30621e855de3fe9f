import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore
import QISyncTransport

/// What running one history found.
public struct Finding: Sendable, CustomStringConvertible {
    /// The history's seed, when it was made from one.
    public var seed: UInt64?
    /// The operations run.
    public var operations: Int
    /// Divergences and failures; empty when every check held.
    public var problems: [String]
    /// What happened, one line per operation (kept only for failing histories).
    public var log: [String]

    public var description: String {
        (["\(problems.count) problems after \(operations) operations\(seed.map { " (seed \($0))" } ?? ""):"] + problems.map { "  - " + $0 })
            .joined(separator: "\n")
    }
}

/// Runs histories on fresh worlds and checks, after a final exchange, what the rules promise:
/// the replicas of a trust hold identical state, every replica holds exactly what its trust may
/// (its own logs and other trusts' shared logs, minus what revocations cut off), refusals are
/// the same everywhere, `verify` is clean everywhere, and every replica's state equals the
/// ``ReferenceModel``'s.
public enum Checker {
    /// The shape of the worlds histories run in.
    public struct Shape: Sendable {
        public var trusts: Int
        public var wards: Int
        public init(trusts: Int = 2, wards: Int = 2) {
            self.trusts = trusts
            self.wards = wards
        }
    }

    /// Runs `history` on a new world and checks it.
    public static func check(_ history: History, shape: Shape = Shape(), seed: UInt64? = nil, keepLog: Bool = false) -> Finding {
        let world: World
        do { world = try World(seed: seed ?? history.codes.first ?? 0, trustCount: shape.trusts, wards: shape.wards) } catch {
            return Finding(seed: seed, operations: 0, problems: ["could not make the world: \(error)"], log: [])
        }
        history.run(on: world)
        var problems = world.unexpected
        do {
            try finalExchange(world)
            problems += try compare(world)
        } catch {
            problems.append("the final exchange or the checks failed: \(error)")
        }
        return Finding(seed: seed, operations: history.codes.count, problems: problems, log: problems.isEmpty && !keepLog ? [] : world.log)
    }

    /// Pins every trust again at every hub, then syncs wards with their hubs and hubs with each
    /// other until nothing moves.
    static func finalExchange(_ world: World) throws {
        for trust in world.trusts {
            let pinned = Set(try trust.hub.replica.trustPins().map(\.code))
            for other in world.trusts where other !== trust && !pinned.contains(other.code) {
                try trust.hub.replica.pinTrust(code: other.code, fingerprint: other.key.fingerprint)
            }
        }
        for _ in 0..<6 {
            var moved: UInt64 = 0
            func sync(_ a: Site, _ b: Site) {
                let outcome = LocalSync.run(client: a.replica, server: b.replica)
                moved += outcome.client.counters.entriesIn + outcome.client.counters.entriesOut
                if let error = outcome.client.error ?? outcome.server.error, !a.revoked && !b.revoked {
                    world.unexpected.append("final exchange \(a.name) → \(b.name): \(error)")
                }
            }
            for trust in world.trusts { for ward in trust.sites.dropFirst() where !ward.revoked { sync(ward, trust.hub) } }
            for (i, a) in world.trusts.enumerated() { for b in world.trusts[(i + 1)...] { sync(a.hub, b.hub) } }
            for trust in world.trusts { for ward in trust.sites.dropFirst() where !ward.revoked { sync(ward, trust.hub) } }
            world.clock.advance(10)
            if moved == 0 { break }
        }
    }

    static func compare(_ world: World) throws -> [String] {
        var problems = world.unexpected
        for site in world.sites {
            let report = try site.replica.verify()
            if !report.isSound { problems.append("\(site.name) fails verify: \(report.logProblems + report.directoryProblems + report.differences)") }
            // The folded rebuild gives the materializer's digests on every sound replica.
            if report.isSound, report.rebuiltInScratch { problems.append("\(site.name): verify's folded rebuild differs from the materializer's") }
        }
        var all: [VersionRef: LogEntry] = [:]
        for site in world.sites { for entry in try site.replica.entries(after: VersionVector()) { all[entry.ref] = entry } }
        var trustOf: [OriginID: String] = [:]
        for site in world.sites { trustOf[site.replica.identity.origin] = site.trust }
        var model = ReferenceModel(trustOf: trustOf, trustKeys: Dictionary(uniqueKeysWithValues: world.trusts.map { ($0.code, $0.key.publicKey) }),
                                   cuts: world.revocations.mapValues(\.lastAccepted), schema: QISchema.schema)
        // Redactions: every record any replica holds that the entry's own trust signed.
        var redactions: [VersionRef: [Redaction]] = [:]
        for site in world.sites {
            for record in try site.replica.directoryRecords() where record.kind == .redaction {
                guard let redaction = try? Redaction(record: record), let trust = trustOf[redaction.entry.origin],
                      let key = world.trusts.first(where: { $0.code == trust })?.key.publicKey, redaction.trustKey == key,
                      !(redactions[redaction.entry]?.contains(redaction) ?? false) else { continue }
                redactions[redaction.entry, default: []].append(redaction)
                for cell in redaction.cells {
                    model.redacted[redaction.entry, default: []].insert(ReferenceModel.Cell(row: RowName(table: cell.table, key: cell.key), column: cell.column))
                }
            }
        }
        // After the final exchange no replica holds a redacted entry's text: its body is the one the latest redaction vouches for.
        for site in world.sites where !site.revoked {
            for entry in try site.replica.entries(after: VersionVector()) {
                guard let list = redactions[entry.ref] else { continue }
                let latest = list.max { ($0.cells.count, $0.redactedMilliseconds, Hex.encode($0.record.digest)) < ($1.cells.count, $1.redactedMilliseconds, Hex.encode($1.record.digest)) }
                if let latest, !latest.vouches(for: entry) {
                    problems.append("\(site.name) holds entry \(entry.ref) \(entry.isRedacted ? "with an earlier redaction" : "unredacted") after its redaction reached everyone")
                }
            }
        }
        for trust in world.trusts {
            let members = trust.sites.filter { !$0.revoked }
            let states = try members.map { try $0.replica.canonicalState() }
            for (site, state) in zip(members, states).dropFirst() where state != states[0] {
                problems.append("\(site.name) differs from \(members[0].name): \(state.differences(from: states[0]))")
            }
            let vectors = try members.map { try $0.replica.versionVector() }
            for (site, vector) in zip(members, vectors).dropFirst() where vector != vectors[0] {
                problems.append("\(site.name)'s version vector differs from \(members[0].name)'s")
            }
            let expected = model.state(for: trust.code, entries: Array(all.values))
            for site in members {
                for difference in ReferenceModel.differences(try ReferenceModel.snapshot(of: site.replica), expected) {
                    problems.append("\(site.name) differs from the model: \(difference)")
                }
            }
        }
        return problems
    }
}
