import Foundation
import GRDB
import QISyncCore
import QISyncStore

/// One field's change in a record's history.
public struct HistoryLine: Sendable {
    /// When.
    public let time: String
    /// Which site (and its trust) wrote it.
    public let site: String
    /// The log entry.
    public let entry: String
    /// The field, or `+tag` / `-tag`, or `exists`.
    public let field: String
    /// The value before (as this replica saw it in causal order).
    public let old: String
    /// The value written.
    public let new: String
}

/// A conflicted cell: its record, field and competing values.
public struct ConflictView: Sendable {
    /// The record's kind.
    public let kind: RecordKind
    /// The record (for a tag, the record it tags).
    public let id: RecordID
    /// The field, `exists`, or `TAGSET:TAG`.
    public let field: String
    /// The competing values, the displayed one first.
    public let heads: [(value: String, site: String, time: String)]
}

extension QIRecords {
    /// The name of the site that owns an origin key, with its trust.
    func siteName(_ origin: OriginID, db: Database) throws -> String {
        if let row = try Row.fetchOne(db, sql: "SELECT trust, name FROM site WHERE id = ?", arguments: [Data(origin.bytes)]) {
            return "\(row[0] as String? ?? "?")/\(row[1] as String? ?? "?")"
        }
        return "site \(origin.short)"
    }

    /// Every change to a record and its tags: when, which site, old → new.
    public func history(_ reference: String) throws -> [HistoryLine] {
        let (kind, id) = try locate(reference)
        var rows: [(key: (UInt16, [UInt8]), label: String?)] = [((kind.table.id, id.bytes), nil)]
        for set in kind.tagSets {
            let members = try replica.read { db in
                try String.fetchAll(db, sql: "SELECT value FROM \(set.table.name) WHERE parent = ?", arguments: [Data(id.bytes)])
            }
            rows += members.map { ((set.table.id, set.key(parent: id, tag: $0)), "\(set.name):\($0)") }
        }
        var events: [(Stamp, HistoryLine)] = []
        for (key, label) in rows {
            var last: [UInt16: Value] = [:]
            for change in try replica.history(table: key.0, key: key.1) {
                let site = try replica.read { db in try siteName(change.ref.origin, db: db) }
                for cell in change.cells {
                    let field: Field? = cell.column == 0 ? nil : kind.allFields.first { $0.column == cell.column }
                    let name = label.map { cell.value == .integer(1) ? "+\($0)" : "-\($0)" } ?? (field?.name ?? "exists")
                    let render: (Value?) -> String = { value in
                        guard let value else { return "" }
                        if cell.column == 0 { return value == .integer(1) ? "yes" : "no" }
                        return Display.text(value, field: field)
                    }
                    let line = HistoryLine(time: DateText.timestamp(milliseconds: change.hlc.milliseconds), site: site, entry: change.ref.description,
                                           field: name, old: render(last[cell.column]), new: render(cell.value))
                    let unchanged = last[cell.column].map { $0 == cell.value } ?? (cell.value == .null)
                    if !unchanged { events.append((Stamp(hlc: change.hlc, origin: change.ref.origin), line)) }
                    last[cell.column] = cell.value
                }
            }
        }
        return events.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Every conflicted cell, with its competing values.
    public func conflicts() throws -> [ConflictView] {
        try replica.conflicts().compactMap { table, key, column in
            let heads = try replica.heads(table: table.id, key: key, column: column)
            let described = try replica.read { db in
                try heads.map { head in
                    (value: column == 0 ? (head.value == .integer(1) ? "exists" : "deleted") : Display.text(head.value),
                     site: try siteName(head.ref.origin, db: db), time: DateText.timestamp(milliseconds: head.hlc.milliseconds))
                }
            }
            if let kind = RecordKind.allCases.first(where: { $0.table.id == table.id }) {
                let field = column == 0 ? "exists" : kind.allFields.first { $0.column == column }?.name ?? "column \(column)"
                return ConflictView(kind: kind, id: try RecordID(bytes: key), field: field, heads: described)
            }
            for kind in RecordKind.allCases {
                if let set = kind.tagSets.first(where: { $0.table.id == table.id }) {
                    let tag = String(decoding: key.dropFirst(16), as: UTF8.self)
                    return ConflictView(kind: kind, id: try RecordID(bytes: Array(key.prefix(16))), field: "\(set.name):\(tag)", heads: described)
                }
            }
            return nil
        }
    }

    /// Resolves a conflicted field by writing one of its values (1 = the displayed one) or a new value.
    @discardableResult
    public func resolve(_ reference: String, field name: String, pick: Int?, value text: String?) throws -> RecordView {
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        let (table, key, column, field): (UInt16, [UInt8], UInt16, Field?) = try {
            if name == "exists" { return (kind.table.id, id.bytes, 0, nil) }
            if let colon = name.firstIndex(of: ":"), let set = kind.tagSets.first(where: { $0.name == name[..<colon] }) {
                let tag = try set.parse(String(name[name.index(after: colon)...]))
                return (set.table.id, set.key(parent: id, tag: tag), 0, nil)
            }
            guard let field = kind.field(named: name) else {
                throw DomainError("\(kind.rawValue) has no field '\(name)'; conflicts are listed by 'conflicts'")
            }
            return (kind.table.id, id.bytes, field.column, field)
        }()
        let heads = try replica.heads(table: table, key: key, column: column)
        guard heads.count > 1 else {
            throw DomainError("\(name) of \(kind.rawValue) \(id.short) is not in conflict; change it with '\(kind.rawValue) set'")
        }
        let value: Value
        switch (pick, text) {
        case (let index?, nil):
            guard (1...heads.count).contains(index) else { throw DomainError("--use takes 1 to \(heads.count): the values 'conflicts' lists, in order") }
            value = heads[index - 1].value
        case (nil, let text?):
            if column == 0 {
                switch text.lowercased() {
                case "yes", "exists", "keep": value = .integer(1)
                case "no", "deleted", "delete": value = .integer(0)
                default: throw DomainError("for 'exists' give --value yes (keep the record) or --value no (delete it)")
                }
            } else if let field, case .reference(let target) = field.kind {
                value = .blob(try locate(text, as: target).id.bytes)
            } else if let field {
                value = try field.parse(text)
            } else {
                throw DomainError("internal: no field for \(name)")
            }
        default:
            throw DomainError("give exactly one of --use N (one of the listed values) or --value TEXT (a new value)")
        }
        try replica.write(scope: current.scope, edits: [RowEdit(table: table, key: key, values: [(column, value)])])
        return try record(kind, id)
    }
}
