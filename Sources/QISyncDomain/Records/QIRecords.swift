import Foundation
import GRDB
import QISyncCore
import QISyncStore
import QISyncIdentity

/// The QI records of one replica: what the shell's commands do, on top of the replica store.
///
/// Every change goes through ``Replica/write(_:)`` and so becomes one signed log entry.
public final class QIRecords: Sendable {
    /// The replica underneath.
    public let replica: Replica
    let now: @Sendable () -> Date
    let newID: @Sendable (String) -> RecordID

    /// Wraps an open replica. `now` is the wall clock and `newID` makes a new record's id for a
    /// trust; both are replaced only by simulations that must repeat exactly.
    public init(replica: Replica, now: @escaping @Sendable () -> Date = { Date() },
                newID: @escaping @Sendable (String) -> RecordID = { RecordID.random(owner: $0) }) {
        self.replica = replica
        self.now = now
        self.newID = newID
    }

    /// Opens the replica in `home`.
    public static func open(home: URL) throws -> QIRecords {
        QIRecords(replica: try Replica.open(home: home, schema: QISchema.schema))
    }

    /// Creates a replica in `home`: a trust's founding hub (with a new trust key) or a site joining it.
    public static func create(home: URL, trustCode: String, trustName: String, siteName: String, kind: SiteKind,
                              membership: TrustMembership = .founding(TrustKey())) throws -> QIRecords {
        QIRecords(replica: try Replica.create(home: home, trustCode: trustCode, trustName: trustName, siteName: siteName, kind: kind,
                                              schema: QISchema.schema, membership: membership))
    }

    var trust: String { replica.identity.trustCode }

    // MARK: Finding records

    /// Finds the record an id or unique id prefix names, among one kind or all.
    public func locate(_ text: String, as kind: RecordKind? = nil) throws -> (kind: RecordKind, id: RecordID) {
        let prefix: RecordIDPrefix
        do { prefix = try RecordIDPrefix(text) } catch { throw DomainError(error.message) }
        let kinds = kind.map { [$0] } ?? RecordKind.allCases
        let matches = try replica.read { db in
            try kinds.flatMap { kind in
                try Data.fetchAll(db, sql: "SELECT id FROM \(kind.rawValue) WHERE id BETWEEN ? AND ? LIMIT 5",
                                  arguments: [Data(prefix.lowerBound), Data(prefix.upperBound)])
                    .map { (kind, try RecordID(bytes: Array($0))) }
            }
        }
        let what = kind?.rawValue ?? "record"
        if matches.count == 1 { return (matches[0].0, matches[0].1) }
        if matches.isEmpty {
            let near = try closeMatches(to: prefix.text, kinds: kinds)
            let hint = near.isEmpty ? "list them with '\(kind?.commandName ?? "initiative") list'" : "did you mean " + near.joined(separator: ", ") + "?"
            throw DomainError("no \(what) has an id starting '\(text)'; \(hint)")
        }
        let names = matches.map { "\($0.1.short) (\($0.0.rawValue))" }.joined(separator: ", ")
        throw DomainError("'\(text)' matches more than one \(what): \(names); type more of the id")
    }

    /// Ids sharing the longest possible start with `text`.
    private func closeMatches(to text: String, kinds: [RecordKind]) throws -> [String] {
        var length = text.count - 1
        while length > 0 {
            let prefix = try RecordIDPrefix(String(text.prefix(length)))
            let found = try replica.read { db in
                try kinds.flatMap { kind in
                    try Data.fetchAll(db, sql: "SELECT id FROM \(kind.rawValue) WHERE id BETWEEN ? AND ? LIMIT 3",
                                      arguments: [Data(prefix.lowerBound), Data(prefix.upperBound)])
                        .map { "\(try RecordID(bytes: Array($0)).short) (\(kind.rawValue))" }
                }
            }
            if !found.isEmpty { return Array(found.prefix(3)) }
            length -= 1
        }
        return []
    }

    /// Reads one record, deleted or not.
    public func record(_ kind: RecordKind, _ id: RecordID) throws -> RecordView {
        try replica.read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT rowid, * FROM \(kind.rawValue) WHERE id = ?"), arguments: [Data(id.bytes)]) else {
                throw DomainError("no \(kind.rawValue) \(id.short)")
            }
            return try view(kind, row: row, db: db)
        }
    }

    func view(_ kind: RecordKind, row: Row, db: Database) throws -> RecordView {
        let id = try RecordID(bytes: Array(row["id"] as Data))
        var values: [String: Value] = [:]
        // Each field's column found once among the row's (a look-up by name scans them all).
        var columns: [String: Int] = [:]
        for (index, name) in row.columnNames.enumerated() where columns[name] == nil { columns[name] = index }
        for field in kind.allFields {
            values[field.name] = Value(columns[field.columnName].map { row[$0] as DatabaseValue } ?? .null)
        }
        var tags: [String: [String]] = [:]
        for set in kind.tagSets {
            tags[set.name] = try String.fetchAll(db.cachedStatement(sql: "SELECT value FROM \(set.table.name) WHERE parent = ? AND live = 1 ORDER BY value"), arguments: [Data(id.bytes)])
        }
        let rowid: Int64 = row["rowid"]
        var conflicted = try Int64.fetchAll(db.cachedStatement(sql: "SELECT col FROM conflict WHERE tbl = ? AND rid = ? ORDER BY col"), arguments: [Int64(kind.table.id), rowid])
            .map { col in col == 0 ? "exists" : kind.allFields.first { Int64($0.column) == col }?.name ?? "column \(col)" }
        if let key = kind.uniqueKey, let parent = kind.field(named: key.parent), let field = kind.field(named: key.field),
           (row["live"] as Int64) == 1, !conflicted.contains(key.field),
           try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(kind.rawValue) WHERE \(parent.columnName) = ? AND \(field.columnName) = ? AND live = 1 AND id != ?)"),
                             arguments: [row[parent.columnName] as DatabaseValue, row[field.columnName] as DatabaseValue, Data(id.bytes)]) == true {
            // Two sites each added "cycle 4" (or the March data point) offline: a clash, shown like a conflict.
            conflicted.append(key.field)
        }
        return RecordView(kind: kind, id: id, values: values, tags: tags, live: (row["live"] as Int64) == 1,
                          updated: HLC(rawValue: UInt64(bitPattern: row["updated_hlc"])), conflictedFields: conflicted)
    }

    // MARK: Adding and changing

    /// Adds a record of `kind` from typed field values and tags; returns it as stored.
    @discardableResult
    public func add(_ kind: RecordKind, fields: [String: String], tags: [String: [String]] = [:], allowFuture: Bool = false) throws -> RecordView {
        let record = try prepare(kind, fields: fields, tags: tags, allowFuture: allowFuture)
        try replica.write { db in (record.scope, try record.edits(db)) }
        return try self.record(kind, record.id)
    }

    /// A new record checked and ready to write: its id, values and tags, worked out before any
    /// write, so a command that fails changes nothing.
    struct NewRecord {
        let kind: RecordKind
        let id: RecordID
        var values: [String: Value]
        let tags: [(TagSet, [String])]

        /// The log it is written to.
        var scope: Scope { values["scope"]?.text.flatMap(Scope.init(name:)) ?? .trust }

        /// The edits that create it (a PDSA cycle without a number gets the next free one; one
        /// with a number already taken in its initiative is refused).
        func edits(_ db: Database) throws -> [RowEdit] {
            var values = self.values
            if kind == .pdsa, values["number"] == nil, case .blob(let initiative)? = values["initiative"] {
                // Deleted cycles keep their numbers, so restoring one never clashes with a newer cycle.
                let highest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(number) FROM pdsa WHERE initiative = ?"), arguments: [Data(initiative)]) ?? 0
                values["number"] = .integer(highest + 1)
            }
            try QIRecords.requireUnique(kind, values: values, excluding: id, db: db)
            var edit = RowEdit(table: kind.table.id, key: id.bytes, values: [(0, .integer(1))])
            for field in kind.allFields {
                if let value = values[field.name], value != .null { edit.values.append((field.column, value)) }
            }
            var edits = [edit]
            for (set, members) in tags {
                edits += members.map { RowEdit(table: set.table.id, key: set.key(parent: id, tag: $0), values: [(0, .integer(1))]) }
            }
            return edits
        }
    }

    /// Checks typed fields and tags for a new record of `kind` (with `preset` values already
    /// decided, such as the initiative a new adaptation belongs to) and gives it an id.
    /// `parent`, when given, is the record it belongs to, already read (a bulk import reads it once).
    func prepare(_ kind: RecordKind, fields: [String: String], tags: [String: [String]] = [:], preset: [String: Value] = [:],
                 allowFuture: Bool = false, parent known: RecordView? = nil) throws -> NewRecord {
        var values = try parse(kind, fields: fields, forAdd: true, allowFuture: allowFuture).merging(preset) { _, new in new }
        for field in kind.fields where field.required && values[field.name] == nil {
            throw DomainError("\(kind.commandName) add needs --\(field.name) (\(field.help))")
        }
        switch kind {
        case .initiative: values["status"] = values["status"] ?? .text("proposed")
        case .learning:
            values["date"] = values["date"] ?? .text(DateText.today(now: now()))
            values["effect"] = values["effect"] ?? .text("neutral")
        default: break
        }
        let parsedTags = try parse(kind, tags: tags)
        values["owner-trust"] = .text(trust)
        values["scope"] = .text(Scope.trust.description)
        values["created"] = .integer(Int64(now().timeIntervalSince1970 * 1000))
        // A chart travels with what it measures: a measure of a shared initiative, and the data
        // and chart events of a shared measure, are shared as they are made (the PII guard first).
        let parentKind: RecordKind? = kind == .measure ? .initiative : (kind == .datapoint || kind == .chartEvent) ? .measure : nil
        if let parentKind, case .blob(let bytes)? = values[parentKind.rawValue], let parentID = try? RecordID(bytes: bytes),
           let parent = known?.id == parentID ? known : try? record(parentKind, parentID), parent.scope == .shared, parent.ownerTrust == trust {
            for field in kind.fields {
                guard case .text = field.kind, let text = values[field.name]?.text, let finding = PIIGuard.scan(text).first else { continue }
                throw DomainError("refused: \(parentKind.noun) \(parentID.short) is shared, so this \(kind.noun) would be too, and its \(field.name) holds what looks like \(finding)")
            }
            values["scope"] = .text(Scope.shared.description)
        }
        return NewRecord(kind: kind, id: newID(replica.identity.trustCode), values: values, tags: parsedTags)
    }

    /// Changes fields and tags of a record this trust owns.
    @discardableResult
    public func set(_ reference: String, as kind: RecordKind? = nil, fields: [String: String],
                    addTags: [String: [String]] = [:], removeTags: [String: [String]] = [:], system: [String: Value] = [:],
                    allowFuture: Bool = false) throws -> RecordView {
        let (kind, id) = try locate(reference, as: kind)
        let current = try record(kind, id)
        try requireOwned(current)
        guard current.live else { throw DomainError("\(kind.rawValue) \(id.short) is deleted; restore it first with '\(kind.commandName) restore \(id.short)'") }
        let values = try parse(kind, fields: fields, forAdd: false, allowFuture: allowFuture).merging(system) { _, new in new }
        let added = try parse(kind, tags: addTags)
        let removed = try parse(kind, tags: removeTags)
        guard !values.isEmpty || !added.isEmpty || !removed.isEmpty else {
            throw DomainError("nothing to change: give --FIELD VALUE options (fields: \(kind.fields.map(\.name).joined(separator: ", ")))")
        }
        if current.scope == .shared, current.text("pii-override").isEmpty {
            // Edits of a shared record go to the shared log, which leaves the trust: the PII guard runs first.
            for (name, value) in values {
                if case .text(let text) = value, let finding = PIIGuard.scan(text).first {
                    throw DomainError("refused: \(kind.rawValue) \(id.short) is shared, and its new \(name) holds what looks like \(finding); patient-identifiable data and staff names must not leave the trust")
                }
            }
        }
        var edits: [RowEdit] = []
        if !values.isEmpty {
            edits.append(RowEdit(table: kind.table.id, key: id.bytes, values: kind.allFields.compactMap { field in values[field.name].map { (field.column, $0) } }))
        }
        for (set, members) in added { edits += members.map { RowEdit(table: set.table.id, key: set.key(parent: id, tag: $0), values: [(0, .integer(1))]) } }
        for (set, members) in removed { edits += members.map { RowEdit(table: set.table.id, key: set.key(parent: id, tag: $0), values: [(0, .integer(0))]) } }
        try replica.write { db in
            try self.checkedUnique(kind, id: id, current: current, values: values, db: db)
            return (current.scope, edits)
        }
        return try record(kind, id)
    }

    /// Deletes (`exists = false`) or restores (`exists = true`) a record; a restore may also
    /// set fields in the same write (a PDSA cycle whose number was taken meanwhile needs a new one).
    @discardableResult
    public func setExists(_ reference: String, as kind: RecordKind? = nil, exists: Bool, fields: [String: String] = [:]) throws -> RecordView {
        let (kind, id) = try locate(reference, as: kind)
        let current = try record(kind, id)
        try requireOwned(current)
        if current.live == exists && current.conflictedFields.contains("exists") == false {
            throw DomainError("\(kind.rawValue) \(id.short) is already \(exists ? "there (not deleted)" : "deleted")")
        }
        guard exists || fields.isEmpty else { throw DomainError("a delete changes no fields") }
        let values = try parse(kind, fields: fields, forAdd: false)
        var cells: [(UInt16, Value)] = [(0, .integer(exists ? 1 : 0))]
        cells += kind.allFields.compactMap { field in values[field.name].map { (field.column, $0) } }
        try replica.write { db in
            if exists {
                do {
                    try QIRecords.requireUnique(kind, values: current.values.merging(values) { _, new in new }, excluding: id, db: db)
                } catch let error as DomainError where kind == .pdsa && values["number"] == nil {
                    throw DomainError(error.message + ". Restore it with a new number: 'pdsa restore \(id.short) --number N'")
                }
            }
            return (current.scope, [RowEdit(table: kind.table.id, key: id.bytes, values: cells)])
        }
        return try record(kind, id)
    }

    /// Closes a PDSA cycle with its act decision and optional study fields, in one write.
    @discardableResult
    public func closeCycle(_ reference: String, act: String, fields: [String: String]) throws -> RecordView {
        var all = fields
        all["act"] = act
        return try set(reference, as: .pdsa, fields: all, system: ["closed": .integer(Int64(now().timeIntervalSince1970 * 1000))])
    }

    /// Refuses a record whose unique field a live record of the same parent (other than
    /// `excluding`) already has: a PDSA cycle's number within its initiative, a data point's
    /// period within its measure.
    static func requireUnique(_ kind: RecordKind, values: [String: Value], excluding: RecordID, db: Database) throws {
        guard let key = kind.uniqueKey, let parentField = kind.field(named: key.parent), let field = kind.field(named: key.field),
              case .blob(let parent)? = values[key.parent], let value = values[key.field], value != .null else { return }
        guard let holder = try Data.fetchOne(db, sql: """
            SELECT id FROM \(kind.rawValue) WHERE \(parentField.columnName) = ? AND \(field.columnName) = ? AND live = 1 AND id != ?
            """, arguments: [Data(parent), value.databaseValue, Data(excluding.bytes)]) else { return }
        let other = try RecordID(bytes: Array(holder))
        switch kind {
        case .pdsa:
            let next = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(number) FROM pdsa WHERE initiative = ?"), arguments: [Data(parent)]) ?? 0) + 1
            throw DomainError("this initiative already has a PDSA cycle #\(Display.text(value)) (\(other.short)); cycle numbers are unique within an initiative. The next free number is \(next)")
        default:
            throw DomainError("this measure already has a data point for \(Display.text(value)) (\(other.short)); change that one with 'data set \(other.short) --value …', or delete it first")
        }
    }

    /// A write that changes a record's unique field or its parent, checked for a clash in the
    /// same transaction as the write.
    private func checkedUnique(_ kind: RecordKind, id: RecordID, current: RecordView, values: [String: Value], db: Database) throws {
        guard let key = kind.uniqueKey, values[key.field] != nil || values[key.parent] != nil else { return }
        try QIRecords.requireUnique(kind, values: current.values.merging(values) { _, new in new }, excluding: id, db: db)
    }

    func requireOwned(_ view: RecordView) throws {
        guard view.ownerTrust == trust else {
            throw DomainError("\(view.kind.rawValue) \(view.id.short) belongs to trust \(view.ownerTrust); only its own sites change it. Record how you adapted it instead: 'adapt \(view.id.short) --title …'")
        }
    }

    // MARK: Parsing typed input

    func parse(_ kind: RecordKind, fields: [String: String], forAdd: Bool, allowFuture: Bool = false) throws -> [String: Value] {
        var values: [String: Value] = [:]
        for (name, text) in fields.sorted(by: { $0.key < $1.key }) {
            guard let field = kind.field(named: name) else {
                throw DomainError("\(kind.rawValue) has no field '\(name)'; its fields are: \(kind.fields.map(\.name).joined(separator: ", "))")
            }
            switch field.kind {
            case .system:
                throw DomainError("\(name) is set by qisync itself\(name == "scope" ? "; use 'share' or 'unshare'" : "")")
            case .reference(let target):
                if text.isEmpty {
                    guard !field.required else { throw DomainError("\(name) cannot be empty") }
                    values[name] = .null
                } else {
                    let (_, id) = try locate(text, as: target)
                    let target = try record(target, id)
                    guard target.live else { throw DomainError("\(target.kind.rawValue) \(id.short) is deleted; restore it first or pick another") }
                    values[name] = .blob(id.bytes)
                }
            case .date:
                let value = try field.parse(text)
                let today = DateText.today(now: now())
                if !allowFuture, text > today {
                    throw DomainError("--\(name) \(text) is in the future (today is \(today)); give --allow-future if you mean it")
                }
                values[name] = value
            default:
                values[name] = try field.parse(text)
            }
        }
        return values
    }

    func parse(_ kind: RecordKind, tags: [String: [String]]) throws -> [(TagSet, [String])] {
        try tags.sorted(by: { $0.key < $1.key }).compactMap { name, members in
            guard !members.isEmpty else { return nil }
            guard let set = kind.tagSets.first(where: { $0.name == name }) else {
                throw DomainError("\(kind.rawValue) records have no \(name) tags")
            }
            return (set, try Array(Set(members.map(set.parse))).sorted())
        }
    }
}
