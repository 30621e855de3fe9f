import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

extension Replica {
    /// The trust's name as its hub records it, when this replica holds the hub's site row (a
    /// hub of this trust, enrolled by this trust's key) and it is not this site.
    public func hubTrustName() throws -> String? {
        try hubTrustName(rows: try hubRows())
    }

    private func hubTrustName(rows: [(id: [UInt8], name: String?)]) throws -> String? {
        // Only a row that names the trust needs the directory (whose every record is verified
        // the first time a process reads it).
        guard rows.contains(where: { $0.name?.isEmpty == false }) else { return nil }
        let directory = try directory()
        return rows.compactMap { row -> String? in
            guard let origin = try? OriginID(bytes: row.id), directory.trust(of: origin) == identity.trustCode,
                  directory.enrolments[origin]?.kind == SiteKind.hub.rawValue, directory.revocations[origin] == nil,
                  let name = row.name, !name.isEmpty else { return nil }
            return name
        }.first
    }

    /// The live site rows of this trust's hubs other than this site: each site's key and the
    /// trust's name as that row gives it.
    private func hubRows() throws -> [(id: [UInt8], name: String?)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, trust_name FROM site WHERE trust = ? AND kind = 'hub' AND live = 1 AND id != ?",
                             arguments: [identity.trustCode, Data(identity.origin.bytes)]).map { (Array($0[0] as Data), $0[1]) }
        }
    }

    /// The trust's name this replica uses now (its hub's, once taken).
    public func currentTrustName() throws -> String {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'trust_name'") } ?? identity.trustName
    }

    /// Takes the hub's name for the trust when it differs from the one this site was given
    /// at `init --join` (or none was): the name is kept, this site's own row says it from now
    /// on, and the change is recorded for `audit`. Returns the new name, or nil when nothing changed.
    @discardableResult
    public func adoptHubTrustName() throws -> (old: String, new: String)? {
        let current = try currentTrustName()
        // Every command opening a replica asks, so the usual answer — every hub's row already
        // names the trust as this site does — is found without building the directory, whose
        // first reading in a process verifies every record held (a national directory's
        // thousands of enrolments on every command otherwise).
        let rows = try hubRows()
        guard rows.contains(where: { $0.name?.isEmpty == false && $0.name != current }) else { return nil }
        guard let hubName = try hubTrustName(rows: rows), hubName != current else { return nil }
        try write { db in
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'trust_name'", arguments: [hubName])
            try recordAdminEvent(db, kind: "trust name", subject: identity.trustCode,
                                 detail: current.isEmpty ? "took '\(hubName)' from the hub" : "'\(current)' → '\(hubName)', as the hub names the trust")
            return (identity.kind.siteRowScope, [RowEdit(table: Self.siteTable.id, key: identity.origin.bytes, values: [(2, .text(hubName))])])
        }
        return (current, hubName)
    }
}
