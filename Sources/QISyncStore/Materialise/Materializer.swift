import CompressNIO
import Foundation
import GRDB
import QISyncCore

/// Appends entries to the log and folds their changes into the materialised tables.
///
/// Lives for one transaction. It trusts its input: entries reaching it have been
/// verified (chain, signature, schema) by ``Replica``. The merge rule itself is
/// ``MultiValueRegister``; this type keeps the registers in `row_version`.
final class Materializer {
    let db: Database
    let schema: ReplicatedSchema
    private var originIDs: [OriginID: Int64] = [:]
    private var stamps: [Int64: Stamp] = [:]
    private var changes: [Int64: Change] = [:]
    private var hasPendingSupersede: Bool
    /// Changes held in the log but not (yet) materialised again while rows are rebuilt: a
    /// supersession of one of them waits as if the change had not arrived.
    var excluded: Set<Int64> = []
    /// Whether a block of a log's bodies is packed as its last entry is appended
    /// (``LogBlocks``): not in `verify`'s scratch rebuild, which is only digested.
    var packsBodies = true
    private var compressor: ZlibCompressor?
    private let bodies = LogBodies()
    private var tableStatements: [UInt16: TableStatements] = [:]
    private let insertLog: FastStatement
    private let upsertVector: FastStatement
    private let findChange: FastStatement
    private let selectVersions: Statement
    private let insertVersion: FastStatement
    private let updateVersion: Statement
    /// Entries and body bytes appended per log (origin number, scope), and rows inserted live
    /// and deleted per table, since the running counts were last written (``writeCounts()``).
    private var appendedToLogs: [LogKey: (Int64, Int64)] = [:]
    private var insertedRows: [String: (Int64, Int64)] = [:]

    struct LogKey: Hashable {
        let origin: Int64
        let scope: UInt8
    }

    /// The statements for one materialised table (a class: fetched for every row written, a
    /// struct of them was copied, and each reference retained, every time), prepared from
    /// their text (``TableSQL``).
    final class TableStatements {
        let sql: TableSQL
        let lookup: FastStatement
        let insertIfNew: FastStatement
        let selectBase: FastStatement
        let updateBase: FastStatement
        var table: TableSpec { sql.table }
        var columnIndex: [UInt16: Int] { sql.columnIndex }

        init(_ sql: TableSQL, db: Database) throws {
            self.sql = sql
            lookup = try FastStatement(db, sql: sql.lookup)
            insertIfNew = try FastStatement(db, sql: sql.insertIfNew)
            selectBase = try FastStatement(db, sql: sql.selectBase)
            updateBase = try FastStatement(db, sql: sql.updateBase)
        }
    }

    init(db: Database, schema: ReplicatedSchema) throws {
        self.db = db
        self.schema = schema
        hasPendingSupersede = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM pending_supersede)")) ?? false
        insertLog = try FastStatement(db, sql: "INSERT INTO log (origin, scope, seq, hlc, hash, body, sig, id, packed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        upsertVector = try FastStatement(db, sql: """
            INSERT INTO vector (origin, scope, seq, hash) VALUES (?, ?, ?, ?)
            ON CONFLICT (origin, scope) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
            """)
        findChange = try FastStatement(db, sql: "SELECT id FROM log WHERE origin = ? AND scope = ? AND seq = ?")
        selectVersions = try db.cachedStatement(sql: "SELECT chg, heads FROM row_version WHERE tbl = ? AND rid = ?")
        insertVersion = try FastStatement(db, sql: "INSERT OR REPLACE INTO row_version (tbl, rid, chg, heads) VALUES (?, ?, ?, ?)")
        updateVersion = try db.cachedStatement(sql: "UPDATE row_version SET heads = ? WHERE tbl = ? AND rid = ? AND chg = ?")
    }

    // MARK: Origins and versions

    /// The local number of an origin, adding it when new.
    func originID(_ origin: OriginID) throws -> Int64 {
        if let id = originIDs[origin] { return id }
        let data = Data(origin.bytes)
        let id: Int64
        if let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM origin WHERE key = ?"), arguments: [data]) {
            id = existing
        } else {
            try db.cachedStatement(sql: "INSERT INTO origin (key) VALUES (?)").execute(arguments: [data])
            id = db.lastInsertedRowID
        }
        originIDs[origin] = id
        return id
    }

    /// The local id of an applied entry, or nil when it has not been applied.
    func localChange(_ ref: VersionRef) throws -> Int64? {
        var known = originIDs[ref.origin]
        if known == nil {
            known = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM origin WHERE key = ?"), arguments: [Data(ref.origin.bytes)])
        }
        guard let origin = known else { return nil }
        originIDs[ref.origin] = origin
        guard let change = try findChange.fetchInt64([.integer(origin), .integer(Int64(ref.scope.rawValue)), .integer(Int64(bitPattern: ref.seq))]),
              !excluded.contains(change) else { return nil }
        return change
    }

    /// The stamp (HLC, origin) of an applied entry.
    func stamp(of change: Int64) throws -> Stamp {
        if let stamp = stamps[change] { return stamp }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT log.hlc, origin.key FROM log JOIN origin ON origin.id = log.origin WHERE log.id = ?"), arguments: [change]) else {
            throw StoreError("internal: log entry \(change) is missing")
        }
        let stamp = Stamp(hlc: HLC(rawValue: UInt64(bitPattern: row[0])), origin: try OriginID(bytes: Array(row[1] as Data)))
        stamps[change] = stamp
        return stamp
    }

    /// The version name of an applied entry.
    func ref(of change: Int64) throws -> VersionRef {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT origin.key, log.scope, log.seq FROM log JOIN origin ON origin.id = log.origin WHERE log.id = ?"), arguments: [change]) else {
            throw StoreError("internal: log entry \(change) is missing")
        }
        return VersionRef(origin: try OriginID(bytes: Array(row[0] as Data)), scope: Scope(rawValue: UInt8(row[1] as Int64))!, seq: UInt64(bitPattern: row[2]))
    }

    /// The change an applied entry carries.
    func change(_ id: Int64) throws -> Change {
        if let change = changes[id] { return change }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT body, packed, origin, scope, seq FROM log WHERE id = ?"), arguments: [id]) else {
            throw StoreError("internal: log entry \(id) is missing")
        }
        let body = try bodies.body(db, origin: row[2], scope: row[3], seq: UInt64(bitPattern: row[4]), stored: row[0], packed: row[1])
        let change = try Change(decodingBody: body)
        if changes.count > 1024 { changes.removeAll(keepingCapacity: true) }
        changes[id] = change
        return change
    }

    /// The value an applied entry wrote to one cell.
    func value(writtenBy id: Int64, table: UInt16, key: [UInt8], column: UInt16) throws -> Value {
        let change = try change(id)
        for row in change.rows where row.table == table && row.key == key {
            if let cell = row.cells.first(where: { $0.column == column }) { return cell.value }
        }
        return .null
    }

    // MARK: Rows

    func statements(for tableID: UInt16) throws -> TableStatements {
        if let statements = tableStatements[tableID] { return statements }
        guard let table = schema.table(id: tableID) else { throw StoreError("unknown table \(tableID)") }
        let statements = try TableStatements(TableSQL.of(table), db: db)
        tableStatements[tableID] = statements
        return statements
    }

    /// The text of a table's statements, made once a process: every write has a materializer
    /// of its own, and making the text again for each was a twentieth of a script line's time.
    struct TableSQL {
        let table: TableSpec
        let lookup: String
        let insertIfNew: String
        let selectBase: String
        let updateBase: String
        let columnIndex: [UInt16: Int]

        init(_ table: TableSpec) {
            self.table = table
            let keys = StoreSchema.keyColumns(of: table)
            let names = keys + ["live", "updated_hlc", "base_chg", "base_heads"] + table.columns.map(\.name)
            lookup = "SELECT rowid FROM \(table.name) WHERE " + keys.map { "\($0) = ?" }.joined(separator: " AND ")
            insertIfNew = "INSERT OR IGNORE INTO \(table.name) (\(names.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))"
            selectBase = "SELECT base_chg, base_heads FROM \(table.name) WHERE rowid = ?"
            updateBase = "UPDATE \(table.name) SET base_heads = ? WHERE rowid = ?"
            columnIndex = Dictionary(uniqueKeysWithValues: table.columns.enumerated().map { ($1.id, $0) })
        }

        // The lock guards `made`; a table of the same name in another schema is made again.
        private static let lock = NSLock()
        nonisolated(unsafe) private static var made: [String: TableSQL] = [:]

        static func of(_ table: TableSpec) -> TableSQL {
            if let known = lock.withLock({ made[table.name] }), known.table == table { return known }
            let sql = TableSQL(table)
            lock.withLock { made[table.name] = sql }
            return sql
        }
    }

    /// The materialised row id of a key, or nil.
    func rowID(table: UInt16, key: [UInt8]) throws -> Int64? {
        let statements = try statements(for: table)
        return try statements.lookup.fetchInt64(StoreSchema.keyValues(key, of: statements.table))
    }

    /// Each change that touched a row, with the mask of columns it is a head of: the row's
    /// base version (kept in the row) and the others (kept in `row_version`).
    func versions(table: UInt16, row: Int64) throws -> (versions: [Int64: Int64], base: Int64?) {
        var versions: [Int64: Int64] = [:]
        let base = try statements(for: table).selectBase.fetchRow([.integer(row)])
        if let base, case .integer(let change) = base[0], case .integer(let heads) = base[1] { versions[change] = heads }
        let rows = try Row.fetchCursor(selectVersions, arguments: [Int64(table), row])
        while let row = try rows.next() { versions[row[0]] = row[1] }
        return (versions, base.flatMap { $0[0].integer })
    }

    // MARK: Applying

    /// Appends a verified entry whose predecessor is the log's current head, and materialises it.
    ///
    /// When applying a run, only its last entry needs to move the version vector (`updatesVector`).
    /// An entry whose change was refused is kept in its log, so the chain goes on, but changes
    /// nothing (`materialises` false). It takes the next local number, or `given` (`verify`'s
    /// rebuild keeps the numbers the replica gave its entries, so the heads of the two compare).
    /// With `block`, the entry's body is kept in that block of its log, made ready beforehand
    /// (``LogBlocks/prepare(_:)``), whose entries are all appended one after another now: the
    /// block is written with its first entry.
    @discardableResult
    func append(_ entry: LogEntry, change: Change, updatesVector: Bool = true, materialises: Bool = true, id given: Int64? = nil,
                packedIn block: [UInt8]? = nil) throws -> Int64 {
        let origin = try originID(entry.origin)
        if let block, entry.seq % LogBlocks.entries == 1 {
            try db.cachedStatement(sql: "INSERT INTO log_block (origin, scope, first, data) VALUES (?, ?, ?, ?)")
                .execute(arguments: [origin, Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq), Data(block)])
        }
        try insertLog.execute([
            .integer(origin), .integer(Int64(entry.scope.rawValue)), .integer(Int64(bitPattern: entry.seq)),
            .integer(Int64(bitPattern: entry.hlc.rawValue)), .blob(entry.hash), .blob(block == nil ? entry.body : []),
            entry.signature.map(Value.blob) ?? .null, given.map(Value.integer) ?? .null,
            block == nil ? .null : .integer(Int64(entry.body.count)),
        ])
        let id = db.lastInsertedRowID
        stamps[id] = Stamp(hlc: entry.hlc, origin: entry.origin)
        Self.add(1, Int64(entry.body.count), to: &appendedToLogs[LogKey(origin: origin, scope: entry.scope.rawValue), default: (0, 0)])
        if updatesVector {
            try upsertVector.execute([.integer(origin), .integer(Int64(entry.scope.rawValue)), .integer(Int64(bitPattern: entry.seq)), .blob(entry.hash)])
        }
        if packsBodies, block == nil, entry.seq % LogBlocks.entries == 0 { try packBlock(endingWith: entry, origin: origin) }
        if materialises {
            let stamp = EntryStamp(origin: origin, scope: entry.scope, seq: entry.seq, hlc: entry.hlc)
            for row in change.rows {
                try materialise(row, change: id, entry: stamp)
            }
        }
        if updatesVector { try writeCounts() }
        return id
    }

    /// Packs the block of bodies `entry` completes, when its rows allow (``LogBlocks/pack``).
    /// The counts are written first, so the rows' deletion lowers counts that hold them, and
    /// the packed entries are counted again.
    private func packBlock(endingWith entry: LogEntry, origin: Int64) throws {
        try writeCounts()
        if compressor == nil { compressor = try ZlibCompressor(algorithm: .zlib, configuration: ZlibConfiguration(compressionLevel: 1)) }
        guard let bytes = try LogBlocks.pack(db, origin: origin, scope: Int64(entry.scope.rawValue), last: entry.seq, compressor: compressor!) else { return }
        Self.add(Int64(LogBlocks.entries), bytes, to: &appendedToLogs[LogKey(origin: origin, scope: entry.scope.rawValue), default: (0, 0)])
    }

    /// Writes the running counts `status` reads (`log_size`, `row_count`) for the entries
    /// appended and rows inserted since they were last written. Counting in a trigger per
    /// inserted entry and row cost a tenth of a bundle import; here they are written once per
    /// run, when the version vector moves (every sequence of appends ends so), and after a
    /// replay or rebuild. Updates and deletes are still counted by triggers.
    func writeCounts() throws {
        for (log, added) in appendedToLogs {
            try db.cachedStatement(sql: """
                INSERT INTO log_size VALUES (?, ?, ?, ?)
                ON CONFLICT (origin, scope) DO UPDATE SET entries = entries + excluded.entries, bytes = bytes + excluded.bytes
                """).execute(arguments: [log.origin, Int64(log.scope), added.0, added.1])
        }
        for (table, added) in insertedRows {
            try db.cachedStatement(sql: """
                INSERT INTO row_count VALUES (?, ?, ?)
                ON CONFLICT (tbl) DO UPDATE SET live = live + excluded.live, deleted = deleted + excluded.deleted
                """).execute(arguments: [table, added.0, added.1])
        }
        appendedToLogs.removeAll(keepingCapacity: true)
        insertedRows.removeAll(keepingCapacity: true)
    }

    /// Counts a row just inserted into a materialised table, as `row_count` counts: live when
    /// its `live` is 1, deleted when 0.
    private func countInsertedRow(_ table: String, live: Int64) {
        guard live == 0 || live == 1 else { return }
        Self.add(live, 1 - live, to: &insertedRows[table, default: (0, 0)])
    }

    /// Adds to a pair of counts in place (one dictionary look-up where two assignments make two).
    private static func add(_ first: Int64, _ second: Int64, to counts: inout (Int64, Int64)) {
        counts.0 += first
        counts.1 += second
    }

    /// Materialises an entry already in the log (row `id`) again, for a rebuild of the tables.
    func replay(_ entry: LogEntry, id: Int64, change: Change) throws {
        let origin = try originID(entry.origin)
        stamps[id] = Stamp(hlc: entry.hlc, origin: entry.origin)
        let stamp = EntryStamp(origin: origin, scope: entry.scope, seq: entry.seq, hlc: entry.hlc)
        for row in change.rows {
            try materialise(row, change: id, entry: stamp)
        }
        try writeCounts()
    }

    /// Where an applied entry sits: its local origin number, log, number and clock.
    struct EntryStamp {
        let origin: Int64
        let scope: Scope
        let seq: UInt64
        let hlc: HLC
    }

    func materialise(_ row: RowWrite, change id: Int64, entry: EntryStamp) throws {
        let origin = entry.origin
        let statements = try statements(for: row.table)
        let table = statements.table
        let keyValues = StoreSchema.keyValues(row.key, of: table)
        let hlc = Int64(bitPattern: entry.hlc.rawValue)
        if !hasPendingSupersede, row.cells.allSatisfy({ $0.supersedes.isEmpty }) {
            // Try it as a new row: if nothing supersedes anything, every written cell has this
            // change as its only head. INSERT OR IGNORE saves a lookup when the row is new.
            var values = [Value](repeating: .null, count: table.columns.count)
            var live: Int64 = 0
            var mask: Int64 = 0
            for cell in row.cells {
                mask |= 1 << Int64(cell.column)
                if cell.column == 0 {
                    live = cell.value.integer ?? 0
                } else if let index = statements.columnIndex[cell.column] {
                    values[index] = cell.value
                }
            }
            var arguments = keyValues
            arguments.reserveCapacity(keyValues.count + 4 + values.count)
            arguments.append(contentsOf: [.integer(live), .integer(hlc), .integer(id), .integer(mask)])
            arguments.append(contentsOf: values)
            try statements.insertIfNew.execute(arguments)
            if db.changesCount == 1 {
                countInsertedRow(table.name, live: live)
                return
            }
        }

        let rid: Int64
        if let existing = try statements.lookup.fetchInt64(keyValues) {
            rid = existing
        } else {
            try statements.insertIfNew.execute(keyValues + [.integer(0), .integer(0), .null, .null] + [Value](repeating: .null, count: table.columns.count))
            rid = db.lastInsertedRowID
            countInsertedRow(table.name, live: 0)
        }
        let (original, base) = try versions(table: row.table, row: rid)
        if original[id] != nil { return }
        var versions = original
        var ownMask: Int64 = 0
        var assignments: [(String, DatabaseValue)] = []

        for cell in row.cells {
            let bit: Int64 = 1 << Int64(cell.column)
            let before = Set(versions.compactMap { $0.value & bit != 0 ? $0.key : nil })
            let previousWinner = try winner(before)

            var isSuperseded = false
            if hasPendingSupersede {
                try db.cachedStatement(
                    sql: "DELETE FROM pending_supersede WHERE origin = ? AND scope = ? AND seq = ? AND tbl = ? AND key = ? AND col = ?").execute(
                    arguments: [origin, Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq), Int64(row.table), Data(row.key), Int64(cell.column)])
                isSuperseded = db.changesCount > 0
            }
            var superseded = Set<Int64>()
            for ref in cell.supersedes {
                if let applied = try localChange(ref) {
                    superseded.insert(applied)
                } else {
                    try db.cachedStatement(
                        sql: "INSERT OR IGNORE INTO pending_supersede (origin, scope, seq, tbl, key, col) VALUES (?, ?, ?, ?, ?, ?)").execute(
                        arguments: [try originID(ref.origin), Int64(ref.scope.rawValue), Int64(bitPattern: ref.seq), Int64(row.table), Data(row.key), Int64(cell.column)])
                    hasPendingSupersede = true
                }
            }
            let after = MultiValueRegister.apply(heads: before, write: id, supersedes: superseded, isSuperseded: isSuperseded)
            for version in before.subtracting(after) { versions[version]! &= ~bit }
            if after.contains(id) { ownMask |= bit }

            let newWinner = try winner(after)
            if newWinner != previousWinner || newWinner == id {
                let value: Value
                switch newWinner {
                case nil: value = cell.column == 0 ? .integer(0) : .null
                case id: value = cell.value
                case let other?: value = try self.value(writtenBy: other, table: row.table, key: row.key, column: cell.column)
                }
                let name = cell.column == 0 ? "live" : table.column(id: cell.column)!.name
                assignments.append((name, value.databaseValue))
            }
            if after.count > 1, try MultiValueRegister.isConflict(after.map { head in
                head == id ? cell.value : try value(writtenBy: head, table: row.table, key: row.key, column: cell.column)
            }) {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO conflict (tbl, rid, col) VALUES (?, ?, ?)").execute(arguments: [Int64(row.table), rid, Int64(cell.column)])
            } else if before.count > 1 {
                try db.cachedStatement(sql: "DELETE FROM conflict WHERE tbl = ? AND rid = ? AND col = ?").execute(arguments: [Int64(row.table), rid, Int64(cell.column)])
            }
        }
        for (version, mask) in versions where original[version] != mask {
            if version == base {
                try statements.updateBase.execute([.integer(mask), .integer(rid)])
            } else {
                try updateVersion.execute(arguments: [mask, Int64(row.table), rid, version])
            }
        }
        try insertVersion.execute([.integer(Int64(row.table)), .integer(rid), .integer(id), .integer(ownMask)])
        let sets = assignments.map { "\($0.0) = ?" } + ["updated_hlc = max(updated_hlc, ?)"]
        // From GRDB's statement cache: a table's updates come in few shapes, and preparing one
        // (its triggers compiled with it) cost more than running it.
        try db.cachedStatement(sql: "UPDATE \(table.name) SET \(sets.joined(separator: ", ")) WHERE rowid = ?").execute(
            arguments: StatementArguments(assignments.map(\.1) + [hlc.databaseValue, rid.databaseValue]))
    }

    private func winner(_ heads: Set<Int64>) throws -> Int64? {
        var best: (Int64, Stamp)?
        for head in heads {
            let stamp = try stamp(of: head)
            if best == nil || best!.1 < stamp { best = (head, stamp) }
        }
        return best?.0
    }
}
