import Foundation
import GRDB
import QISyncCore

/// The materialised state of a replica written out in a form that does not depend on local
/// row numbers: every table's rows, every register's heads and every conflict, by key.
///
/// Two replicas that hold the same entries have equal canonical states, byte for byte.
public struct CanonicalState: Equatable, Sendable {
    /// Lines per section (a table name, `heads` or `conflicts`), sorted.
    public let sections: [String: [String]]

    /// Reads the canonical state of a database.
    static func read(_ db: Database, schema: ReplicatedSchema) throws -> CanonicalState {
        var sections: [String: [String]] = [:]
        var heads: [String] = []
        var conflicts: [String] = []
        for table in schema.tables {
            let keys = StoreSchema.keyColumns(of: table)
            let columns = keys + ["live", "updated_hlc"] + table.columns.map(\.name)
            let keyExpression = keys.map { "quote(t.\($0))" }.joined(separator: " || '/' || ")
            sections[table.name] = try Row.fetchAll(db, sql: "SELECT \(columns.map { "quote(\($0))" }.joined(separator: " || '|' || ")) FROM \(table.name) ORDER BY \(keys.joined(separator: ", "))")
                .map { $0[0] as String }
            heads += try String.fetchAll(db, sql: """
                SELECT '\(table.name)|' || \(keyExpression) || '|' || hex(origin.key) || '|' || log.scope || '|' || log.seq || '|' || rv.heads
                FROM row_version rv JOIN \(table.name) t ON t.rowid = rv.rid JOIN log ON log.id = rv.chg JOIN origin ON origin.id = log.origin
                WHERE rv.tbl = \(table.id)
                UNION ALL
                SELECT '\(table.name)|' || \(keyExpression) || '|' || hex(origin.key) || '|' || log.scope || '|' || log.seq || '|' || t.base_heads
                FROM \(table.name) t JOIN log ON log.id = t.base_chg JOIN origin ON origin.id = log.origin
                """)
            conflicts += try String.fetchAll(db, sql: """
                SELECT '\(table.name)|' || \(keyExpression) || '|' || c.col FROM conflict c JOIN \(table.name) t ON t.rowid = c.rid WHERE c.tbl = \(table.id)
                """)
        }
        sections["heads"] = heads.sorted()
        sections["conflicts"] = conflicts.sorted()
        return CanonicalState(sections: sections)
    }

    /// Short descriptions of where two states differ.
    public func differences(from other: CanonicalState) -> [String] {
        var out: [String] = []
        for name in Set(sections.keys).union(other.sections.keys).sorted() {
            let mine = Set(sections[name] ?? [])
            let theirs = Set(other.sections[name] ?? [])
            let missing = theirs.subtracting(mine).count
            let extra = mine.subtracting(theirs).count
            if missing + extra > 0 { out.append("\(name): \(extra) rows only here, \(missing) rows only in the rebuild") }
        }
        return out
    }
}

extension Replica {
    /// The replica's canonical materialised state.
    public func canonicalState() throws -> CanonicalState {
        try database.read { db in try CanonicalState.read(db, schema: schema) }
    }
}
