import Foundation
import GRDB
import GRDBSQLite

/// SQLite's integrity check in linear time, answering as `PRAGMA integrity_check` does.
///
/// `PRAGMA integrity_check` is `PRAGMA quick_check` (every page, cell, record, free page and
/// NOT NULL or CHECK constraint) plus a look-up in every index for every row of its table, and a
/// uniqueness check of unique indexes. Those look-ups go to the index pages at random, one
/// B-tree descent each: at a million entries they were nine tenths of the check's time and
/// most of its reads (6.1 s against 0.65 s for `quick_check`, in the sqlite3 CLI).
///
/// Here the quick check runs first, then every index is checked against its table by two
/// sequential scans: each table row's index tuple (the index's columns, then the rowid) is
/// summed, in any order, with the same sum over the index's entries read from the index alone;
/// the index's entries must also come in strictly increasing order by SQLite's comparison
/// (which is what a look-up relies on), and, in a unique index, no two may share their key
/// unless it holds a NULL. The sums are of Swift's `Hasher`, keyed afresh in every process,
/// so a damaged file cannot be made to match them. Equal sums, counts and order: the index
/// holds exactly its table's rows, where a look-up finds them, which is what the look-ups
/// establish. Anything else — a difference, an index this check does not model (on
/// expressions, descending, another collation, partial, of a table without rowid) — is
/// handed to `PRAGMA integrity_check(table)`, whose answer stands: the fast path only ever says
/// "ok" for an index it has checked, and every message is SQLite's own.
enum IntegrityCheck {
    /// `ok`, or SQLite's messages joined by "; ". `db` must not be in a transaction: each step
    /// reads in one of its own, ended by a rollback, because once a statement has met a record
    /// SQLite cannot read, SQLite fails whatever else that transaction runs (its commit too).
    static func run(_ db: Database) throws -> String {
        func reading<T>(_ body: () throws -> T) throws -> T {
            var result: T?
            try db.inTransaction(.deferred) {
                result = try body()
                return .rollback
            }
            return result!
        }
        let quick = try reading { try String.fetchAll(db, sql: "PRAGMA quick_check") }
        guard quick == ["ok"] else {
            return try reading { try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
        }
        var messages: [String] = []
        for table in try reading({ try indexedTables(db) }) {
            // A scan that fails (a record SQLite cannot read) is SQLite's check's to name too.
            if let indexes = table.indexes, (try? reading { try indexesMatch(db, table: table.name, indexes: indexes) }) == true { continue }
            let answer = try reading { try String.fetchAll(db, sql: "PRAGMA integrity_check(\(quoted(table.name)))") }
            if answer != ["ok"] { messages += answer }
        }
        return messages.isEmpty ? "ok" : messages.joined(separator: "; ")
    }

    /// An index this check models: plain columns of a rowid table, ascending, BINARY collation.
    struct Index {
        var name: String
        var columns: [String]
        var unique: Bool
    }

    /// Every table with indexes; `indexes` is nil when one of them is not modelled.
    static func indexedTables(_ db: Database) throws -> [(name: String, indexes: [Index]?)] {
        let tables = try Row.fetchAll(db, sql: "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
        var out: [(name: String, indexes: [Index]?)] = []
        for table in tables {
            let name: String = table["name"]
            let withoutRowid: Bool = table["wr"]
            // A table without rowid is its primary key's index: the quick check covers it.
            let list = try Row.fetchAll(db, sql: "SELECT name, \"unique\", partial FROM pragma_index_list(?) WHERE NOT (? AND origin = 'pk')", arguments: [name, withoutRowid])
            guard !list.isEmpty else { continue }
            var indexes: [Index]? = []
            for entry in list {
                let indexName: String = entry["name"]
                let partial: Bool = entry["partial"]
                let keys = try Row.fetchAll(db, sql: "SELECT cid, name, desc, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno", arguments: [indexName])
                let plain = !withoutRowid && !partial && !keys.isEmpty && keys.allSatisfy { key in
                    (key["cid"] as Int) >= 0 && !(key["desc"] as Bool) && (key["coll"] as String?) == "BINARY"
                }
                guard plain else { indexes = nil; break }
                indexes?.append(Index(name: indexName, columns: keys.map { $0["name"] }, unique: entry["unique"]))
            }
            out.append((name, indexes))
        }
        return out
    }

    /// Whether every index holds exactly its table's rows, in order, unique where it must be.
    static func indexesMatch(_ db: Database, table: String, indexes: [Index]) throws -> Bool {
        // The table: every row's tuple for every index, from one scan.
        let columns = Array(Set(indexes.flatMap(\.columns))).sorted()
        let position = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, Int32($0 + 1)) })
        var tableSums = [TupleSum](repeating: TupleSum(), count: indexes.count)
        let picks = indexes.map { $0.columns.map { position[$0]! } }
        try RawRows.forEach(db, sql: "SELECT rowid, \(columns.map(quoted).joined(separator: ", ")) FROM \(quoted(table)) NOT INDEXED") { handle in
            for (index, pick) in picks.enumerated() {
                tableSums[index].add(handle, columns: pick, rowid: 0)
            }
            return true
        }
        // Each index, read alone (a covering scan, in its order).
        for (index, definition) in indexes.enumerated() {
            var sum = TupleSum()
            let keyColumns = Int32(definition.columns.count)
            let pick = Array(0..<keyColumns)
            var previous = IndexTuple(), current = IndexTuple()
            var ordered = true
            try RawRows.forEach(db, sql: "SELECT \(definition.columns.map(quoted).joined(separator: ", ")), rowid FROM \(quoted(table)) INDEXED BY \(quoted(definition.name))") { handle in
                sum.add(handle, columns: pick, rowid: keyColumns)
                current.read(handle, count: keyColumns + 1)
                if sum.count > 1 {
                    // After the entry before it: by key, or by rowid under an equal key (which
                    // a unique index allows only when the key holds a NULL).
                    let k = Int(keyColumns)
                    let keyOrder = current.compare(to: previous, columns: k)
                    let inOrder = keyOrder > 0 || (keyOrder == 0 && current.compare(to: previous, columns: k + 1, from: k) > 0
                                                   && !(definition.unique && !current.hasNull(columns: k)))
                    guard inOrder else {
                        ordered = false
                        return false
                    }
                }
                swap(&previous, &current)
                return true
            }
            guard ordered, sum == tableSums[index] else { return false }
        }
        return true
    }

    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}

/// An order-free sum of tuples: the 64-bit hash of each (type and bytes of each value, then
/// the rowid), summed, and the number of tuples. Swift's `Hasher` is keyed afresh in every
/// process, so no damage can be made to match it; by chance, one in 2^64.
struct TupleSum: Equatable {
    private(set) var count = 0
    private var sum: UInt64 = 0

    /// Adds the tuple of a statement's `columns`, then its column `rowid`.
    mutating func add(_ handle: OpaquePointer, columns: [Int32], rowid: Int32) {
        var hasher = Hasher()
        func combine(_ column: Int32) {
            switch RawColumn(handle, column) {
            case .null: hasher.combine(SQLITE_NULL)
            case .integer(let value):
                hasher.combine(SQLITE_INTEGER)
                hasher.combine(value)
            case .real(let value):
                hasher.combine(SQLITE_FLOAT)
                hasher.combine(value.bitPattern)
            case .text(let bytes):
                hasher.combine(SQLITE_TEXT)
                hasher.combine(bytes.count)
                hasher.combine(bytes: bytes)
            case .blob(let bytes):
                hasher.combine(SQLITE_BLOB)
                hasher.combine(bytes.count)
                hasher.combine(bytes: bytes)
            }
        }
        for column in columns { combine(column) }
        combine(rowid)
        count += 1
        sum &+= UInt64(bitPattern: Int64(hasher.finalize()))
    }
}

/// One index entry's values as read, kept to compare with the next entry (buffers reused).
struct IndexTuple {
    private var types: [Int32] = []
    private var numbers: [UInt64] = []
    private var ranges: [Range<Int>] = []
    private var bytes: [UInt8] = []

    mutating func read(_ handle: OpaquePointer, count: Int32) {
        types.removeAll(keepingCapacity: true)
        numbers.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        for column in 0..<count {
            var number: UInt64 = 0
            let start = bytes.count
            switch RawColumn(handle, column) {
            case .null: types.append(SQLITE_NULL)
            case .integer(let integer):
                types.append(SQLITE_INTEGER)
                number = UInt64(bitPattern: integer)
            case .real(let real):
                types.append(SQLITE_FLOAT)
                number = real.bitPattern
            case .text(let stored):
                types.append(SQLITE_TEXT)
                bytes.append(contentsOf: stored)
            case .blob(let stored):
                types.append(SQLITE_BLOB)
                bytes.append(contentsOf: stored)
            }
            numbers.append(number)
            ranges.append(start..<bytes.count)
        }
    }

    func hasNull(columns: Int) -> Bool { types.prefix(columns).contains(SQLITE_NULL) }

    /// SQLite's order of two tuples' columns `from..<columns` (BINARY collation): NULL before
    /// numbers, numbers (integer and real compared by value) before text, text before blobs;
    /// text and blobs byte by byte, the shorter first when one begins the other.
    func compare(to other: IndexTuple, columns: Int, from start: Int = 0) -> Int {
        for column in start..<columns {
            let order = Self.compare(self, column, other, column)
            if order != 0 { return order }
        }
        return 0
    }

    private static func rank(_ type: Int32) -> Int {
        switch type {
        case SQLITE_NULL: 0
        case SQLITE_INTEGER, SQLITE_FLOAT: 1
        case SQLITE_TEXT: 2
        default: 3
        }
    }

    private static func compare(_ a: IndexTuple, _ i: Int, _ b: IndexTuple, _ j: Int) -> Int {
        let (ta, tb) = (a.types[i], b.types[j])
        let (ra, rb) = (rank(ta), rank(tb))
        if ra != rb { return ra < rb ? -1 : 1 }
        switch ra {
        case 0: return 0
        case 1:
            switch (ta == SQLITE_INTEGER, tb == SQLITE_INTEGER) {
            case (true, true):
                let (x, y) = (Int64(bitPattern: a.numbers[i]), Int64(bitPattern: b.numbers[j]))
                return x < y ? -1 : (x > y ? 1 : 0)
            case (false, false):
                let (x, y) = (Double(bitPattern: a.numbers[i]), Double(bitPattern: b.numbers[j]))
                return x < y ? -1 : (x > y ? 1 : 0)
            case (true, false): return compare(integer: Int64(bitPattern: a.numbers[i]), real: Double(bitPattern: b.numbers[j]))
            case (false, true): return -compare(integer: Int64(bitPattern: b.numbers[j]), real: Double(bitPattern: a.numbers[i]))
            }
        default:
            let (x, y) = (a.ranges[i], b.ranges[j])
            let common = min(x.count, y.count)
            let order = a.bytes.withUnsafeBufferPointer { p in
                b.bytes.withUnsafeBufferPointer { q in common == 0 ? 0 : memcmp(p.baseAddress! + x.lowerBound, q.baseAddress! + y.lowerBound, common) }
            }
            if order != 0 { return order < 0 ? -1 : 1 }
            return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
        }
    }

    /// An integer against a real, exactly (a Double cannot hold every Int64).
    static func compare(integer: Int64, real: Double) -> Int {
        if real < -9_223_372_036_854_775_808.0 { return 1 }
        if real >= 9_223_372_036_854_775_808.0 { return -1 }
        let whole = Int64(real)  // toward zero; exact below 2^63
        if integer != whole { return integer < whole ? -1 : 1 }
        let exact = Double(whole)
        return exact < real ? -1 : (exact > real ? 1 : 0)
    }
}
