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
            guard let (scope, edits) = try build(db), !edits.isEmpty else { return nil }
            let materializer = try Materializer(db: db, schema: schema)
            var rows: [RowWrite] = []
            for edit in edits {
                var heads: [Int64: Int64] = [:]
                if let rid = try materializer.rowID(table: edit.table, key: edit.key) {
                    heads = try materializer.versions(table: edit.table, row: rid).versions
                }
                var cells: [CellWrite] = []
                for (column, value) in edit.values {
                    let bit: Int64 = 1 << Int64(column)
                    let superseded = try heads.filter { $0.value & bit != 0 }.keys.map { try materializer.ref(of: $0) }.sorted()
                    cells.append(CellWrite(column: column, value: value, supersedes: superseded))
                }
                rows.append(RowWrite(table: edit.table, key: edit.key, cells: cells))
            }
            let change = Change(rows: rows)
            do { try schema.validate(change) } catch let error as DecodingError { throw StoreError(error.message) }
            if let violation = schema.ownershipViolation(of: change, origin: identity.origin, trust: identity.trustCode, isHub: identity.kind == .hub) {
                throw StoreError("refused: \(violation). A trust changes only its own records; adapt another trust's record instead ('qisync adapt')")
            }

            let stored = try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'hlc'")) ?? 0
            var clock = HybridLogicalClock(last: HLC(rawValue: UInt64(bitPattern: stored)))
            let hlc = clock.tick(now: now())
            try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE key = 'hlc'").execute(arguments: [Int64(bitPattern: hlc.rawValue)])
            let position = try logPosition(db, LogID(origin: identity.origin, scope: scope))
            let entry = LogEntry(signer: signer, scope: scope, seq: (position?.seq ?? 0) + 1,
                                 previousHash: position?.hash ?? LogEntry.genesisHash, hlc: hlc, change: change)
            try materializer.append(entry, change: change)
            return entry
        }
    }

    func logPosition(_ db: Database, _ log: LogID) throws -> LogPosition? {
        let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT vector.seq, vector.hash FROM vector JOIN origin ON origin.id = vector.origin
            WHERE origin.key = ? AND vector.scope = ?
            """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue)])
        return row.map { LogPosition(seq: UInt64(bitPattern: $0[0]), hash: Array($0[1] as Data)) }
    }
}
