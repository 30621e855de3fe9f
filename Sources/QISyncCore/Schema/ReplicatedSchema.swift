/// The SQLite type of a replicated column and the limits on its values.
public enum ColumnType: Sendable, Equatable {
    /// UTF-8 text of at most `maxLength` Unicode scalar values (``Value/length(of:)``).
    case text(maxLength: Int)
    /// A 64-bit integer.
    case integer
    /// A floating-point number.
    case real
    /// Raw bytes (record ids).
    case blob

    /// The SQL type name.
    public var sqlName: String {
        switch self {
        case .text: "TEXT"
        case .integer: "INTEGER"
        case .real: "REAL"
        case .blob: "BLOB"
        }
    }
}

/// A column of a replicated table.
public struct ColumnSpec: Sendable, Equatable {
    /// Its number in the change encoding, 1...63 (0 is the row's existence register).
    public let id: UInt16
    /// Its name in the materialised table.
    public let name: String
    /// Its type.
    public let type: ColumnType

    /// Creates a column.
    public init(_ id: UInt16, _ name: String, _ type: ColumnType) {
        precondition((1...63).contains(id), "column ids are 1...63")
        self.id = id
        self.name = name
        self.type = type
    }
}

/// How a replicated table's rows are keyed.
public enum TableKind: Sendable, Equatable {
    /// Records with a global id (`id` column).
    case entity
    /// Members of a set belonging to a parent record: the key is the parent id then the
    /// member's text; materialised as (`parent`, `value`).
    case set(parentTable: String)
}

/// Who may write a replicated table's rows.
public enum Ownership: Sendable, Equatable {
    /// Records owned by the trust named in their id (``RecordID/isOwned(byTrust:)``); when
    /// `ownerColumn` is set, a write to it must name the writing site's own trust.
    case record(ownerColumn: UInt16?)
    /// Members of a set belong to the trust that owns the parent record (the key's first 16 bytes).
    case parentRecord
    /// Rows keyed by a site key: only that site writes its own row.
    case originKey
}

/// A replicated table: its number, name, kind and columns.
public struct TableSpec: Sendable, Equatable {
    /// Its number in the change encoding.
    public let id: UInt16
    /// The materialised table's name.
    public let name: String
    /// How rows are keyed.
    public let kind: TableKind
    /// The replicated columns (none for a set).
    public let columns: [ColumnSpec]
    /// Who may write its rows.
    public let ownership: Ownership
    /// The columns of an IG lead's override of the PII guard, when the table has one: its text
    /// may be set only together with the owner trust key's signature of it (``PIIOverride``).
    public let overrideColumns: PIIOverride.Columns?

    /// Creates a table. By default an entity table's rows are records owned through their
    /// id, and a set's members belong to their parent's owner.
    public init(id: UInt16, name: String, kind: TableKind = .entity, columns: [ColumnSpec] = [], ownership: Ownership? = nil,
                overrideColumns: PIIOverride.Columns? = nil) {
        self.overrideColumns = overrideColumns
        self.id = id
        self.name = name
        self.kind = kind
        self.columns = columns
        switch kind {
        case .entity: self.ownership = ownership ?? .record(ownerColumn: nil)
        case .set: self.ownership = ownership ?? .parentRecord
        }
    }

    /// The column with this number.
    public func column(id: UInt16) -> ColumnSpec? { columns.first { $0.id == id } }

    /// The column with this name.
    public func column(named name: String) -> ColumnSpec? { columns.first { $0.name == name } }

    /// Whether a key is well-formed for this table.
    public func isValidKey(_ key: [UInt8]) -> Bool {
        switch kind {
        case .entity: return key.count == 16 || key.count == 32
        case .set: return key.count > 16 && String(validating: key[16...], as: UTF8.self) != nil
        }
    }
}

/// The set of replicated tables a replica materialises.
public struct ReplicatedSchema: Sendable {
    /// The tables, by number.
    public let tables: [TableSpec]
    /// Indexes of the materialised tables, for the queries the application runs (a table and
    /// its columns, in order). Local only: they change nothing that replicates.
    public let indexes: [(table: String, columns: [String])]
    private let byID: [UInt16: Int]
    private let byName: [String: Int]

    /// Creates a schema.
    public init(tables: [TableSpec], indexes: [(table: String, columns: [String])] = []) {
        self.tables = tables
        self.indexes = indexes
        byID = Dictionary(uniqueKeysWithValues: tables.enumerated().map { ($1.id, $0) })
        byName = Dictionary(uniqueKeysWithValues: tables.enumerated().map { ($1.name, $0) })
    }

    /// The table with this number.
    public func table(id: UInt16) -> TableSpec? { byID[id].map { tables[$0] } }

    /// The table with this name.
    public func table(named name: String) -> TableSpec? { byName[name].map { tables[$0] } }

    /// Why a site of `trust` (key `origin`) may not make this change, or nil when it may: every
    /// row it writes must belong to that trust (or, for site rows, to that site), and an IG-lead
    /// override must carry the trust key's signature (`trustKey`, the trust's raw public key, when
    /// known). The decision depends only on the change, the site's trust and that trust's key, so
    /// every replica makes the same one. `ownerTag`, when given, is
    /// ``RecordID/ownerTag(ofTrust:)`` of `trust`, worked out once by a caller judging many changes.
    public func ownershipViolation(of change: Change, origin: OriginID, trust: String, ownerTag: [UInt8]? = nil, trustKey: [UInt8]?) -> String? {
        let tag = ownerTag ?? RecordID.ownerTag(ofTrust: trust)
        func owned(_ key: ArraySlice<UInt8>) -> Bool { key.count == 16 && key.suffix(4).elementsEqual(tag) }
        for row in change.rows {
            guard let table = table(id: row.table) else { return "it writes to unknown table \(row.table)" }
            if let columns = table.overrideColumns, let problem = PIIOverride.problem(with: row, columns: columns, trustKey: trustKey) {
                return "\(problem) (\(table.name) record \(Hex.encode(row.key.prefix(4))))"
            }
            switch table.ownership {
            case .originKey:
                if row.key != origin.bytes { return "it writes another site's \(table.name) row" }
            case .record(let ownerColumn):
                guard owned(row.key[...]) else {
                    return "it changes \(table.name) record \(Hex.encode(row.key.prefix(4))), which trust \(trust) does not own"
                }
                if let ownerColumn, let cell = row.cells.first(where: { $0.column == ownerColumn }), cell.value != .text(trust) {
                    return "it names another trust as the owner of \(table.name) record \(Hex.encode(row.key.prefix(4)))"
                }
            case .parentRecord:
                guard row.key.count > 16, owned(row.key.prefix(16)) else {
                    return "it changes the \(table.name) of a record trust \(trust) does not own"
                }
            }
        }
        return nil
    }

    /// Checks a change against the schema: known tables and columns, well-formed keys, typed values.
    public func validate(_ change: Change) throws(DecodingError) {
        for row in change.rows {
            guard let table = table(id: row.table) else { throw DecodingError("unknown table \(row.table)") }
            guard table.isValidKey(row.key) else { throw DecodingError("malformed key for table \(table.name)") }
            for cell in row.cells {
                if cell.column == 0 {
                    guard case .integer(let v) = cell.value, v == 0 || v == 1 else {
                        throw DecodingError("existence of a \(table.name) row must be 0 or 1")
                    }
                    continue
                }
                guard let column = table.column(id: cell.column) else {
                    throw DecodingError("unknown column \(cell.column) of table \(table.name)")
                }
                switch (column.type, cell.value) {
                case (_, .null), (.integer, .integer), (.real, .real), (.real, .integer), (.blob, .blob): break
                case (.text(let max), .text(let s)):
                    guard Value.length(of: s) <= max else {
                        throw DecodingError("\(table.name).\(column.name) is longer than \(max) characters (Unicode scalar values)")
                    }
                default: throw DecodingError("\(table.name).\(column.name) has a value of the wrong type")
                }
            }
        }
    }
}
