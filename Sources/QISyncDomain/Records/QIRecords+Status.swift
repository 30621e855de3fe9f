import Foundation
import GRDB
import QISyncCore
import QISyncStore

/// What `status` reports about a replica.
public struct ReplicaStatus: Sendable {
    /// Who the replica is.
    public let identity: ReplicaIdentity
    /// Where it lives.
    public let home: String
    /// Per record kind: live and deleted counts.
    public let counts: [(kind: String, live: Int, deleted: Int)]
    /// Per log: its site, scope, highest contiguous entry, head hash, entries held and their bytes.
    public let logs: [(site: String, log: LogID, seq: UInt64, head: String, entries: Int, bytes: Int)]
    /// Entries waiting for a missing predecessor.
    public let waiting: Int
    /// Cells in conflict.
    public let conflicts: Int
    /// Database file plus write-ahead log, in bytes.
    public let fileBytes: Int
}

extension QIRecords {
    /// Identity, record counts, version vector, log sizes and file size.
    public func status() throws -> ReplicaStatus {
        let vector = try replica.versionVector()
        let sizes = Dictionary(uniqueKeysWithValues: try replica.logSizes().map { ($0.log, $0) })
        return try replica.read { db in
            let counts = try RecordKind.allCases.map { kind in
                // Running counts kept with the rows (StoreSchema.createCounters): no scan, whatever the size.
                let row = try Row.fetchOne(db, sql: "SELECT live, deleted FROM row_count WHERE tbl = ?", arguments: [kind.rawValue])
                return (kind: kind.rawValue, live: row?[0] as Int? ?? 0, deleted: row?[1] as Int? ?? 0)
            }
            let logs = try vector.positions.sorted { $0.key < $1.key }.map { log, position in
                (site: try siteName(log.origin, db: db), log: log, seq: position.seq, head: String(Hex.encode(position.hash).prefix(12)),
                 entries: sizes[log]?.entries ?? 0, bytes: sizes[log]?.bytes ?? 0)
            }
            return ReplicaStatus(
                identity: replica.identity, home: replica.home.path, counts: counts, logs: logs,
                waiting: try Int.fetchOne(db, sql: "SELECT count(*) FROM pending_entry") ?? 0,
                conflicts: try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0,
                fileBytes: replica.fileSize())
        }
    }

    /// Runs one read-only SQL statement on its own read-only connection; anything that would
    /// write, attach or change a setting is refused, and a query running past `timeLimit`
    /// seconds is stopped.
    public func query(_ sql: String, timeLimit: Double = 10, limit: Int = 10_000) throws -> QueryResult {
        try TextCheck.validate(sql, field: "the query")
        do { return try replica.readOnlyQuery(sql, timeLimit: timeLimit, rowLimit: limit) } catch { throw DomainError(error.message) }
    }
}
