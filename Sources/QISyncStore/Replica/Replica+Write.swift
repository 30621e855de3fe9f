import Foundation
import GRDB
import QISyncCore

/// The values one local write gives one row.
public struct RowEdit: Sendable {
    /// The table's number.
    public var table: UInt16
    /// The row's key.
    public var key: [UInt8]
    /// Column numbers and values; column 0 is existence (1 = exists, 0 = deleted).
    public var values: [(UInt16, Value)]

    /// Creates an edit.
    public init(table: UInt16, key: [UInt8], values: [(UInt16, Value)]) {
        self.table = table
        self.key = key
        self.values = values
    }
}

extension Replica {
    /// Writes edits as one change in the given scope's log.
    @discardableResult
    public func write(scope: Scope, edits: [RowEdit]) throws -> LogEntry {
        guard let entry = try write({ _ in (scope, edits) }) else { throw StoreError("internal: empty write") }
        return entry
    }

    /// Reads what it needs and writes in one transaction: `build` returns the scope and edits, or nil to write nothing.
    ///
    /// Each written cell supersedes the cell's current heads, so an edit of a conflicted
    /// cell resolves the conflict.
    @discardableResult
    public func write(_ build: (Database) throws -> (Scope, [RowEdit])?) throws -> LogEntry? {
        try database.write { db -> LogEntry? in
            if try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'writes_held'")) != nil {
                throw StoreError("""
                    this replica was restored from a backup, so writing is held: sync with a peer first (it may hold entries                     this site wrote after the backup; writing before they are back would fork this site's log, and peers would                     refuse what follows). If no other replica ever received this site's later entries, 'restore --resume-writing' ends the hold
                    """)
            }
            guard let (scope, edits) = try build(db), !edits.isEmpty else { return nil }
            let materializer = try Materializer(db: db, schema: schema)
            var rows: [RowWrite] = []
            for edit in try withExistence(edits) {
                var heads: [Int64: Int64] = [:]
                if let rid = try materializer.rowID(table: edit.table, key: edit.key) {
                    heads = try materializer.versions(table: edit.table, row: rid).versions
                }
                var cells: [CellWrite] = []
                if !edit.values.contains(where: { $0.0 == 0 }) {
                    // An edit says the row exists: it supersedes the existence heads that say so,
                    // and leaves a delete it has not seen standing, so the two show as a conflict.
                    let existence = try heads.filter { $0.value & 1 != 0 }.keys.map { head in
                        (head, try materializer.value(writtenBy: head, table: edit.table, key: edit.key, column: 0))
                    }
                    if !existence.isEmpty, !existence.contains(where: { $0.1 == .integer(1) }) {
                        throw StoreError("\(schema.table(id: edit.table)?.name ?? "the record") \(Hex.encode(edit.key.prefix(4))) is deleted; restore it before changing it")
                    }
                    // A tag's parent that is not held here is not conjured into existence.
                    if edit.values.isEmpty && existence.isEmpty { continue }
                    let superseded = try existence.filter { $0.1 == .integer(1) }.map { try materializer.ref(of: $0.0) }.sorted()
                    cells.append(CellWrite(column: 0, value: .integer(1), supersedes: superseded))
                }
                for (column, value) in edit.values {
                    let bit: Int64 = 1 << Int64(column)
                    let superseded = try heads.filter { $0.value & bit != 0 }.keys.map { try materializer.ref(of: $0) }.sorted()
                    cells.append(CellWrite(column: column, value: value, supersedes: superseded))
                }
                rows.append(RowWrite(table: edit.table, key: edit.key, cells: cells.sorted { $0.column < $1.column }))
            }
            let change = Change(rows: rows)
            do { try schema.validate(change) } catch let error as DecodingError { throw StoreError(error.message) }
            if let violation = schema.ownershipViolation(of: change, origin: identity.origin, trust: identity.trustCode,
                                                         trustKey: trustKey(ofSite: identity.origin, in: try directory(db))) {
                throw StoreError("refused: \(violation). A trust changes only its own records; adapt another trust's record instead ('qisync adapt')")
            }

            let stored = try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'hlc'")) ?? 0
            var clock = HybridLogicalClock(last: HLC(rawValue: UInt64(bitPattern: stored)))
            let hlc = clock.tick(now: now())
            try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE key = 'hlc'").execute(arguments: [Int64(bitPattern: hlc.rawValue)])
            let position = try logPosition(db, LogID(origin: identity.origin, scope: scope))
            let entry = LogEntry(signer: signer, scope: scope, seq: (position?.seq ?? 0) + 1,
                                 previousHash: position?.hash ?? LogEntry.genesisHash, hlc: hlc, change: change,
                                 signed: !database.isWindowOpen)
            try materializer.append(entry, change: change)
            return entry
        }
    }

    /// The edits with each set member's parent record named too, when it is not already: adding
    /// or removing a tag is an edit of the record, so it also says the record exists (SPEC 5).
    private func withExistence(_ edits: [RowEdit]) throws -> [RowEdit] {
        var result = edits
        var named = Set(edits.map { RowName(table: $0.table, key: $0.key) })
        for edit in edits {
            guard let table = schema.table(id: edit.table), case .set(let parentName) = table.kind,
                  let parent = schema.table(named: parentName), edit.key.count > 16 else { continue }
            let name = RowName(table: parent.id, key: Array(edit.key.prefix(16)))
            if named.insert(name).inserted { result.append(RowEdit(table: name.table, key: name.key, values: [])) }
        }
        return result
    }

    func logPosition(_ db: Database, _ log: LogID) throws -> LogPosition? {
        let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT vector.seq, vector.hash FROM vector JOIN origin ON origin.id = vector.origin
            WHERE origin.key = ? AND vector.scope = ?
            """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue)])
        return row.map { LogPosition(seq: UInt64(bitPattern: $0[0]), hash: Array($0[1] as Data)) }
    }
}
