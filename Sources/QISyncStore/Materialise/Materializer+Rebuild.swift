import Foundation
import GRDB
import QISyncCore

extension Materializer {
    /// Materialises rows again from the changes still held that wrote them, after `removed`
    /// changes left the log (entries a revocation cut off). Each row is cleared, then its
    /// remaining changes are applied in the order they were appended here; a supersession of a
    /// change not yet re-applied waits for it, as on first arrival, so the result is exactly
    /// what applying the remaining entries to an empty replica gives (`verify`'s rebuild).
    /// A row no remaining change wrote is removed.
    func rebuild(_ rows: Set<RowName>, removed: Set<Int64>) throws {
        for name in rows.sorted(by: { ($0.table, Hex.encode($0.key)) < ($1.table, Hex.encode($1.key)) }) {
            let statements = try statements(for: name.table)
            let table = statements.table
            guard let rid = try rowID(table: name.table, key: name.key) else { continue }
            let remaining = try versions(table: name.table, row: rid).versions.keys.filter { !removed.contains($0) }.sorted()
            try db.execute(sql: "DELETE FROM row_version WHERE tbl = ? AND rid = ?", arguments: [Int64(name.table), rid])
            try db.execute(sql: "DELETE FROM conflict WHERE tbl = ? AND rid = ?", arguments: [Int64(name.table), rid])
            try db.execute(sql: "DELETE FROM pending_supersede WHERE tbl = ? AND key = ?", arguments: [Int64(name.table), Data(name.key)])
            guard !remaining.isEmpty else {
                try db.execute(sql: "DELETE FROM \(table.name) WHERE rowid = ?", arguments: [rid])
                continue
            }
            let cleared = (["live = 0", "updated_hlc = 0", "base_chg = NULL", "base_heads = NULL"] + table.columns.map { "\($0.name) = NULL" })
            try db.execute(sql: "UPDATE \(table.name) SET \(cleared.joined(separator: ", ")) WHERE rowid = ?", arguments: [rid])
            excluded.formUnion(remaining)
            for change in remaining {
                guard let meta = try Row.fetchOne(db, sql: "SELECT origin, scope, seq, hlc FROM log WHERE id = ?", arguments: [change]),
                      let scope = Scope(rawValue: UInt8(meta[1] as Int64)) else { continue }
                guard let write = try self.change(change).rows.first(where: { $0.table == name.table && $0.key == name.key }) else { continue }
                excluded.remove(change)
                try materialise(write, change: change, entry: EntryStamp(
                    origin: meta[0], scope: scope, seq: UInt64(bitPattern: meta[2]), hlc: HLC(rawValue: UInt64(bitPattern: meta[3]))))
            }
            excluded.subtract(remaining)
        }
        try writeCounts()
    }
}
