import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

/// An enrolled site as this replica knows it, for `site list`.
public struct SiteSummary: Sendable {
    /// Its latest enrolment held here.
    public let enrolment: Enrolment
    /// When its trust revoked it, if a revocation in force is held here.
    public let revokedMilliseconds: UInt64?
    /// Whether its trust is pinned here (its entries are accepted).
    public let trustPinned: Bool
    /// When this replica last heard from it directly: a sync with it, or a bundle or receipt it made.
    public let lastSeenMilliseconds: UInt64?
    /// When it wrote the latest entry held here (its hybrid logical clock).
    public let lastEntryMilliseconds: UInt64?
    /// How many of its entries this replica holds.
    public let entries: UInt64
}

extension Replica {
    /// Every site whose enrolment this replica holds, of every trust, with when it was last
    /// heard from and what of it is held here.
    public func sites() throws -> [SiteSummary] {
        let directory = try directory()
        var all = directory.heldEnrolments
        for (site, enrolment) in directory.enrolments { all[site] = enrolment }
        return try database.read { db in
            try all.values.map { enrolment in
                let key = Data(enrolment.site.bytes)
                let session = try Int64.fetchOne(db, sql: "SELECT max(started_ms) FROM sync_session WHERE peer_site = ?", arguments: [key])
                let vector = try Int64.fetchOne(db, sql: "SELECT updated_ms FROM peer_vector WHERE site = ?", arguments: [key])
                let log = try Row.fetchOne(db, sql: """
                    SELECT max(log.hlc), sum(vector.seq) FROM origin JOIN vector ON vector.origin = origin.id
                    LEFT JOIN log ON log.origin = origin.id AND log.scope = vector.scope AND log.seq = vector.seq
                    WHERE origin.key = ?
                    """, arguments: [key])
                let seen = [session, vector].compactMap { $0 }.max().map { UInt64(max(0, $0)) }
                let lastHLC = (log?[0] as Int64?).map { HLC(rawValue: UInt64(bitPattern: $0)).milliseconds }
                let revocation = directory.revocations[enrolment.site]
                return SiteSummary(enrolment: enrolment, revokedMilliseconds: revocation?.revokedMilliseconds,
                                   trustPinned: directory.isPinned(enrolment), lastSeenMilliseconds: enrolment.site == identity.origin ? nil : seen,
                                   lastEntryMilliseconds: lastHLC, entries: UInt64(max(0, (log?[1] as Int64?) ?? 0)))
            }.sorted { ($0.enrolment.trustCode, $0.enrolment.siteName) < ($1.enrolment.trustCode, $1.enrolment.siteName) }
        }
    }
}
