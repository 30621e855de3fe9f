import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

extension Replica {
    /// The trust's name as its hub records it, when this replica holds the hub's site row (a
    /// hub of this trust, enrolled by this trust's key) and it is not this site.
    public func hubTrustName() throws -> String? {
        let directory = try directory()
        return try database.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, trust_name FROM site WHERE trust = ? AND kind = 'hub' AND live = 1 AND id != ?",
                                        arguments: [identity.trustCode, Data(identity.origin.bytes)])
            return rows.compactMap { row -> String? in
                guard let origin = try? OriginID(bytes: Array(row[0] as Data)), directory.trust(of: origin) == identity.trustCode,
                      directory.enrolments[origin]?.kind == SiteKind.hub.rawValue, directory.revocations[origin] == nil,
                      let name = row[1] as String?, !name.isEmpty else { return nil }
                return name
            }.first
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
        guard let hubName = try hubTrustName() else { return nil }
        let current = try currentTrustName()
        guard hubName != current else { return nil }
        try write { db in
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'trust_name'", arguments: [hubName])
            try recordAdminEvent(db, kind: "trust name", subject: identity.trustCode,
                                 detail: current.isEmpty ? "took '\(hubName)' from the hub" : "'\(current)' → '\(hubName)', as the hub names the trust")
            return (.shared, [RowEdit(table: Self.siteTable.id, key: identity.origin.bytes, values: [(2, .text(hubName))])])
        }
        return (current, hubName)
    }
}
