import Foundation
import GRDB
import QISyncCore
import QISyncStore

/// One field's change in a record's history.
public struct HistoryLine: Sendable {
    /// How a change relates to the other changes of the same field.
    public enum Relation: Sendable, Equatable {
        /// It followed the change before it.
        case edit
        /// It was made without seeing these sites' changes to the field (a conflict, unless
        /// they wrote the same value).
        case concurrent(with: [String])
        /// It settled this many competing values.
        case resolution(of: Int)
    }

    /// When (the HLC's wall-clock part, milliseconds since 1970).
    public let milliseconds: UInt64
    /// Which site (and its trust) wrote it.
    public let site: String
    /// The log entry.
    public let entry: String
    /// The field, or `+tag` / `-tag`, or `exists`.
    public let field: String
    /// The value or values it replaced (several, joined by " | ", for a resolution).
    public let old: String
    /// The value written.
    public let new: String
    /// How it relates to the field's other changes.
    public let relation: Relation
}

/// A conflicted cell: its record, field and competing values.
public struct ConflictView: Sendable {
    /// The record's kind.
    public let kind: RecordKind
    /// The record (for a tag, the record it tags).
    public let id: RecordID
    /// The field, `exists`, or `TAGSET:TAG`.
    public let field: String
    /// The competing values, the displayed one first: the value, the site that wrote it, when
    /// (milliseconds since 1970), and for `exists` what the write did ("deleted it", "edited title, status").
    public let heads: [(value: String, site: String, milliseconds: UInt64, detail: String)]
    /// The trust that owns the record: only its sites may settle the conflict.
    public let owner: String
    /// Whether this replica's trust owns the record (and so may settle it).
    public let isOwn: Bool
    /// Whether this is records that must be unique sharing a value (PDSA cycles sharing a number,
    /// data points sharing a period; its values are the records), not a cell's concurrent values.
    public var isUniqueClash = false
}

extension QIRecords {
    /// The name of the site that owns an origin key, with its trust: from its site row, or, for
    /// a ward of another trust (whose row stays in its trust, ``SiteKind/siteRowScope``), from
    /// its enrolment.
    func siteName(_ origin: OriginID, db: Database) throws -> String {
        if let row = try Row.fetchOne(db, sql: "SELECT trust, name FROM site WHERE id = ?", arguments: [Data(origin.bytes)]) {
            return "\(row[0] as String? ?? "?")/\(row[1] as String? ?? "?")"
        }
        let directory = try replica.directory(db)
        if let enrolment = directory.enrolments[origin] ?? directory.heldEnrolments[origin] {
            return "\(enrolment.trustCode)/\(enrolment.siteName)"
        }
        return "site \(origin.short)"
    }

    /// Every change to a record and its tags: when, which site, old → new, and whether it was
    /// concurrent with other changes of the field or settled several of them. Changes that wrote
    /// what was already there (an edit saying the record exists) are left out.
    public func history(_ reference: String) throws -> [HistoryLine] {
        let (kind, id) = try locate(reference)
        var rows: [(key: (UInt16, [UInt8]), label: String?)] = [((kind.table.id, id.bytes), nil)]
        for set in kind.tagSets {
            let members = try replica.read { db in
                try String.fetchAll(db, sql: "SELECT value FROM \(set.table.name) WHERE parent = ?", arguments: [Data(id.bytes)])
            }
            rows += members.map { ((set.table.id, set.key(parent: id, tag: $0)), "\(set.name):\($0)") }
        }
        struct Write { let ref: VersionRef; let stamp: Stamp; let value: Value; let supersedes: [VersionRef]; let site: String }
        var events: [(Stamp, HistoryLine)] = []
        for (key, label) in rows {
            var cells: [UInt16: [Write]] = [:]
            for change in try replica.history(table: key.0, key: key.1) {
                let site = try replica.read { db in try siteName(change.ref.origin, db: db) }
                for cell in change.cells {
                    cells[cell.column, default: []].append(Write(ref: change.ref, stamp: Stamp(hlc: change.hlc, origin: change.ref.origin),
                                                                 value: cell.value, supersedes: cell.supersedes, site: site))
                }
            }
            for (column, writes) in cells {
                let field: Field? = column == 0 ? nil : kind.allFields.first { $0.column == column }
                if field?.name == "pii-override-signature" { continue }
                let render: (Value) -> String = { value in
                    if column == 0 { return label == nil ? (value == .integer(1) ? "yes" : "no") : (value == .integer(1) ? "added" : "removed") }
                    return Display.text(value, field: field)
                }
                let byRef = Dictionary(writes.map { ($0.ref, $0) }, uniquingKeysWith: { first, _ in first })
                // What each write saw, directly or through the writes it superseded.
                var seen: [VersionRef: Set<VersionRef>] = [:]
                func ancestors(_ ref: VersionRef) -> Set<VersionRef> {
                    if let known = seen[ref] { return known }
                    seen[ref] = []
                    var result = Set<VersionRef>()
                    for parent in byRef[ref]?.supersedes ?? [] where byRef[parent] != nil {
                        result.insert(parent)
                        result.formUnion(ancestors(parent))
                    }
                    seen[ref] = result
                    return result
                }
                for write in writes {
                    let replaced = write.supersedes.compactMap { byRef[$0] }
                    let unchanged = replaced.isEmpty ? (write.value == .null || (column == 0 && label == nil && write.value == .integer(1)))
                                                     : replaced.allSatisfy { $0.value == write.value }
                    let concurrent = writes.filter { other in
                        other.ref != write.ref && !ancestors(write.ref).contains(other.ref) && !ancestors(other.ref).contains(write.ref)
                    }
                    if unchanged && concurrent.allSatisfy({ $0.value == write.value }) { continue }
                    let relation: HistoryLine.Relation = replaced.count > 1 ? .resolution(of: replaced.count)
                        : concurrent.isEmpty ? .edit : .concurrent(with: Array(Set(concurrent.map(\.site))).sorted())
                    let name = label.map { column == 0 ? $0 : $0 } ?? (field?.name ?? "exists")
                    events.append((write.stamp, HistoryLine(milliseconds: write.stamp.hlc.milliseconds, site: write.site, entry: write.ref.description,
                                                            field: name, old: replaced.map { render($0.value) }.joined(separator: " | "),
                                                            new: render(write.value), relation: relation)))
                }
            }
        }
        return events.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Every conflicted cell, with its competing values. For a conflict on `exists` (a delete
    /// against a concurrent edit), each value says what its write did: deleted the record, or
    /// edited which fields and tags.
    public func conflicts() throws -> [ConflictView] {
        try cellConflicts() + uniqueClashes()
    }

    /// Records that must be unique within a parent but are not, because two sites each added
    /// one offline (PDSA cycles sharing a number within an initiative, data points sharing a
    /// period within a measure): one conflict per clash, on the unique field, its values the
    /// records that share it. Settled by giving one of them another value (`pdsa set ID --number
    /// N`, `data set ID --period DATE`, or `resolve ID FIELD --value V`) or deleting one.
    func uniqueClashes() throws -> [ConflictView] {
        var clashes: [ConflictView] = []
        for kind in RecordKind.allCases {
            guard let key = kind.uniqueKey, let parent = kind.field(named: key.parent), let field = kind.field(named: key.field) else { continue }
            let groups = try replica.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(parent.columnName), \(field.columnName) FROM \(kind.rawValue) WHERE live = 1 AND \(field.columnName) IS NOT NULL
                    GROUP BY \(parent.columnName), \(field.columnName) HAVING count(*) > 1 ORDER BY 1, 2
                    """).map { ($0[0] as DatabaseValue, $0[1] as DatabaseValue) }
            }
            for (parentValue, value) in groups {
                let ids = try replica.read { db in
                    try Data.fetchAll(db, sql: """
                        SELECT id FROM \(kind.rawValue) WHERE \(parent.columnName) = ? AND \(field.columnName) = ? AND live = 1 ORDER BY created_ms, id
                        """, arguments: [parentValue, value]).map { try RecordID(bytes: Array($0)) }
                }
                let records = try ids.map { try record(kind, $0) }
                let heads = try records.map { member in
                    let head = try replica.heads(table: kind.table.id, key: member.id.bytes, column: field.column).first
                    let site = try head.map { head in try replica.read { db in try siteName(head.ref.origin, db: db) } } ?? "?"
                    let shown = kind == .pdsa ? "#\(member.text(key.field))" : member.text(key.field)
                    return (value: shown, site: site, milliseconds: head?.hlc.milliseconds ?? 0, detail: "\(kind.noun) \(member.id.short) \(member.headline)")
                }
                let owner = records[0].ownerTrust
                clashes.append(ConflictView(kind: kind, id: records[0].id, field: key.field, heads: heads, owner: owner, isOwn: owner == trust, isUniqueClash: true))
            }
        }
        return clashes
    }

    private func cellConflicts() throws -> [ConflictView] {
        try replica.conflicts().compactMap { table, key, column in
            let heads = try replica.heads(table: table.id, key: key, column: column)
            let kind = RecordKind.allCases.first { $0.table.id == table.id }
            let tagSet = RecordKind.allCases.lazy.compactMap { kind in kind.tagSets.first { $0.table.id == table.id }.map { (kind, $0) } }.first
            guard let recordKind = kind ?? tagSet?.0 else { return nil }
            let recordKey = Array(key.prefix(16))
            let sites = try replica.read { db in try heads.map { try siteName($0.ref.origin, db: db) } }
            let described = try zip(heads, sites).map { head, site in
                (value: column == 0 ? (head.value == .integer(1) ? (tagSet == nil ? "kept" : "added") : (tagSet == nil ? "deleted" : "removed")) : Display.text(head.value),
                 site: site, milliseconds: head.hlc.milliseconds,
                 detail: column == 0 && tagSet == nil ? try describeWrite(head.ref, kind: recordKind, record: recordKey, wrote: head.value) : "")
            }
            let id = try RecordID(bytes: recordKey)
            let owner = try record(recordKind, id).ownerTrust
            let field: String
            if let kind {
                field = column == 0 ? "exists" : kind.allFields.first { $0.column == column }?.name ?? "column \(column)"
            } else {
                field = "\(tagSet!.1.name):\(String(decoding: key.dropFirst(16), as: UTF8.self))"
            }
            return ConflictView(kind: recordKind, id: id, field: field, heads: described, owner: owner, isOwn: owner == trust)
        }
    }

    /// What the write behind an existence head did to a record: deleted or restored it, or
    /// edited these fields and tags.
    private func describeWrite(_ ref: VersionRef, kind: RecordKind, record: [UInt8], wrote value: Value) throws -> String {
        guard value == .integer(1) else { return "deleted it" }
        guard let change = try replica.change(at: ref) else { return "" }
        var edits: [String] = []
        for row in change.rows {
            if row.table == kind.table.id, row.key == record {
                edits += row.cells.compactMap { cell in kind.fields.first { $0.column == cell.column && !$0.isSystem }?.name }
            } else if row.key.count > 16, Array(row.key.prefix(16)) == record, let set = kind.tagSets.first(where: { $0.table.id == row.table }) {
                let tag = String(decoding: row.key.dropFirst(16), as: UTF8.self)
                edits.append((row.cells.first { $0.column == 0 }?.value == .integer(0) ? "-" : "+") + "\(set.name):\(tag)")
            }
        }
        let wroteExistence = change.rows.contains { $0.table == kind.table.id && $0.key == record && $0.cells.count == 1 }
        if edits.isEmpty { return wroteExistence ? "restored it" : "kept it" }
        return "edited " + edits.joined(separator: ", ")
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
        if let unique = kind.uniqueKey, name == unique.field, current.conflictedFields.contains(name),
           !MultiValueRegister.isConflict(try replica.heads(table: table, key: key, column: column).map(\.value)) {
            // Records sharing a unique value: settled by giving this one another.
            guard pick == nil, let text else {
                throw DomainError("\(kind.noun) \(id.short) shares its \(name) with another of its \(unique.parent): give it a new one with --value \(kind == .pdsa ? "N" : "DATE")")
            }
            return try set(reference, as: kind, fields: [name: text])
        }
        let heads = try replica.heads(table: table, key: key, column: column)
        guard MultiValueRegister.isConflict(heads.map(\.value)) else {
            throw DomainError("\(name) of \(kind.rawValue) \(id.short) is not in conflict; change it with '\(kind.commandName) set'")
        }
        let value: Value
        switch (pick, text) {
        case (let index?, nil):
            guard (1...heads.count).contains(index) else { throw DomainError("--use takes 1 to \(heads.count): the values 'conflicts' lists, in order") }
            value = heads[index - 1].value
        case (nil, let text?):
            if column == 0 {
                switch text.lowercased() {
                case "yes", "exists", "keep", "kept", "add", "added": value = .integer(1)
                case "no", "deleted", "delete", "remove", "removed": value = .integer(0)
                default: throw DomainError("for '\(name)' give --keep (keep the record, with every edit) or --delete")
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
