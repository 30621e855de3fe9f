import Foundation
import GRDB
import QISyncCore
import QISyncStore

extension QIRecords {
    /// Publishes a record: appends its whole current state (fields and tags) to this site's
    /// shared log; later edits follow it there.
    @discardableResult
    public func share(_ reference: String) throws -> RecordView {
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        guard current.scope == .trust else { throw DomainError("\(kind.rawValue) \(id.short) is already shared") }
        guard current.live else { throw DomainError("\(kind.rawValue) \(id.short) is deleted; restore it before sharing") }
        try replica.write { db -> (Scope, [RowEdit])? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM \(kind.rawValue) WHERE id = ?", arguments: [Data(id.bytes)]) else { return nil }
            var edit = RowEdit(table: kind.table.id, key: id.bytes, values: [(0, .integer(row["live"]))])
            for field in kind.allFields {
                edit.values.append((field.column, field.name == "scope" ? .text(Scope.shared.description) : Value(row[field.columnName] as DatabaseValue)))
            }
            var edits = [edit]
            for set in kind.tagSets {
                for tag in try Row.fetchAll(db, sql: "SELECT value, live FROM \(set.table.name) WHERE parent = ?", arguments: [Data(id.bytes)]) {
                    edits.append(RowEdit(table: set.table.id, key: set.key(parent: id, tag: tag[0]), values: [(0, .integer(tag[1]))]))
                }
            }
            return (.shared, edits)
        }
        return try record(kind, id)
    }

    /// Stops publishing a record: later edits stay in the trust log. What was sent is not recalled.
    @discardableResult
    public func unshare(_ reference: String) throws -> RecordView {
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        guard current.scope == .shared else { throw DomainError("\(kind.rawValue) \(id.short) is not shared") }
        let scope = kind.field(named: "scope")!
        try replica.write(scope: .shared, edits: [RowEdit(table: kind.table.id, key: id.bytes, values: [(scope.column, .text(Scope.trust.description))])])
        return try record(kind, id)
    }
}
