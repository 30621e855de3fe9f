import Foundation
import GRDB
import QISyncCore
@testable import QISyncStore
import Testing

/// `verify`'s integrity check (``IntegrityCheck``): SQLite's quick check, then each index
/// against its table by two sequential scans, handing anything that differs to
/// `PRAGMA integrity_check(table)`. It must say "ok" exactly when SQLite's full check does,
/// with SQLite's own messages otherwise.
@Suite("Integrity check")
struct IntegrityCheckTests {
    let folder: URL
    let path: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-integrity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        path = folder.appendingPathComponent("check.sqlite").path
    }

    /// Values of every type SQLite orders: NULLs, integers and reals that are equal or nearly
    /// so, text (NHS text, the empty string, one string the start of another) and blobs.
    static func value(_ generator: inout SplitMix64) -> DatabaseValue {
        let texts = ["", "a", "ab", "B", "£100", "°C", "Llanfairpwll", "Ysbyty Gwynedd", "café", "cafe\u{301}", "Ŵ", "✓", "\u{1F}"]
        switch Int.random(in: 0..<9, using: &generator) {
        case 0: return .null
        case 1: return Int64.random(in: -3...3, using: &generator).databaseValue
        case 2: return [Int64.min, Int64.max, 0, 1 << 53, (1 << 53) + 1].randomElement(using: &generator)!.databaseValue
        case 3: return [-0.0, 0.0, 1.0, 2.5, -2.5, 3.0, 9.007199254740993e15, 9.223372036854775807e18, -9.3e18, 1e-300].randomElement(using: &generator)!.databaseValue
        case 4, 5: return texts.randomElement(using: &generator)!.databaseValue
        case 6: return (texts.randomElement(using: &generator)! + texts.randomElement(using: &generator)!).databaseValue
        case 7: return Data((0..<Int.random(in: 0...3, using: &generator)).map { _ in UInt8.random(in: 0...2, using: &generator) }).databaseValue
        default: return Double(Int.random(in: -3...3, using: &generator)).databaseValue
        }
    }

    /// A table of untyped, integer, real and text columns under plain, composite and unique
    /// indexes, filled with random values, then updated and thinned so pages split and merge.
    func makeDatabase(seed: UInt64, rows: Int = 600) throws -> DatabaseQueue {
        let queue = try DatabaseQueue(path: path)
        var generator = SplitMix64(seed: seed)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE t (a, b, c, n INTEGER, r REAL, s TEXT);
                CREATE INDEX t_a ON t(a);
                CREATE INDEX t_b_a ON t(b, a);
                CREATE UNIQUE INDEX t_c ON t(c);
                CREATE INDEX t_n_r_s ON t(n, r, s);
                """)
            for index in 0..<rows {
                let c: DatabaseValue = Int.random(in: 0..<4, using: &generator) == 0 ? .null : "c\(index)-\(Int.random(in: 0...9, using: &generator))".databaseValue
                try db.execute(sql: "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", arguments: [
                    Self.value(&generator), Self.value(&generator), c, Self.value(&generator), Self.value(&generator), Self.value(&generator),
                ])
            }
            for _ in 0..<(rows / 4) {
                try db.execute(sql: "UPDATE t SET a = ?, r = ? WHERE rowid = ?", arguments: [Self.value(&generator), Self.value(&generator), Int.random(in: 1...rows, using: &generator)])
                try db.execute(sql: "DELETE FROM t WHERE rowid = ?", arguments: [Int.random(in: 1...rows, using: &generator)])
            }
        }
        return queue
    }

    /// Redefines an index behind SQLite's back (the file stays as it was).
    func redefine(_ name: String, as sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(sql: "UPDATE sqlite_schema SET sql = ? WHERE name = ?", arguments: [sql, name])
            try db.execute(sql: "PRAGMA writable_schema = OFF")
        }
        try queue.close()
    }

    /// Runs `change` while `index` is defined as covering no row, so the index is not kept
    /// up to date with it: an entry missing, left behind, or holding an old value.
    func changeUnseen(by index: String, _ sql: String, change: String) throws {
        try redefine(index, as: sql + " WHERE 0")
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: change) }
        try queue.close()
        try redefine(index, as: sql)
    }

    @Test("sound databases of random values of every type pass the linear check, without SQLite's", arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func soundPasses(seed: UInt64) throws {
        let queue = try makeDatabase(seed: seed)
        try queue.inDatabase { db in
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            let tables = try IntegrityCheck.indexedTables(db)
            #expect(tables.map(\.name) == ["t"])
            let indexes = try #require(tables.first?.indexes)
            #expect(indexes.map(\.name).sorted() == ["t_a", "t_b_a", "t_c", "t_n_r_s"])
            #expect(indexes.first { $0.name == "t_c" }?.unique == true)
            // The fast path itself finds them sound: order, uniqueness (NULLs repeat) and sums.
            #expect(try IntegrityCheck.indexesMatch(db, table: "t", indexes: indexes))
            #expect(try IntegrityCheck.run(db) == "ok")
        }
    }

    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case entryMissing, entryLeftBehind, entryStale, duplicateInUnique, descendingReadAscending, caseFoldedReadBinary, overAnotherColumn
        var testDescription: String { rawValue }
    }

    @Test("every kind of index damage is found, and named in SQLite's own words", arguments: Damage.allCases)
    func damageFound(damage: Damage) throws {
        var queue = try makeDatabase(seed: 7)
        let plain = "CREATE INDEX t_a ON t(a)"
        switch damage {
        case .entryMissing:
            try queue.close()
            try changeUnseen(by: "t_a", plain, change: "INSERT INTO t (a, c) VALUES ('unseen', 'c-unseen')")
        case .entryLeftBehind:
            try queue.close()
            try changeUnseen(by: "t_a", plain, change: "DELETE FROM t WHERE rowid = (SELECT max(rowid) FROM t)")
        case .entryStale:
            try queue.close()
            try changeUnseen(by: "t_a", plain, change: "UPDATE t SET a = 'changed' WHERE rowid = (SELECT min(rowid) FROM t)")
        case .duplicateInUnique:
            // Two rows with one key, indexed while the index was not unique.
            try queue.write { db in
                try db.execute(sql: "DROP INDEX t_c; CREATE INDEX t_c ON t(c); UPDATE t SET c = 'twice' WHERE rowid IN (SELECT rowid FROM t LIMIT 2)")
            }
            try queue.close()
            try redefine("t_c", as: "CREATE UNIQUE INDEX t_c ON t(c)")
        case .descendingReadAscending:
            try queue.write { db in try db.execute(sql: "DROP INDEX t_a; CREATE INDEX t_a ON t(a DESC)") }
            try queue.close()
            try redefine("t_a", as: plain)
        case .caseFoldedReadBinary:
            try queue.write { db in
                try db.execute(sql: "UPDATE t SET s = CASE rowid % 3 WHEN 0 THEN 'apple' WHEN 1 THEN 'Banana' ELSE 'cherry' END")
                try db.execute(sql: "CREATE INDEX t_s ON t(s COLLATE NOCASE)")
            }
            try queue.close()
            try redefine("t_s", as: "CREATE INDEX t_s ON t(s)")
        case .overAnotherColumn:
            try queue.close()
            try redefine("t_b_a", as: "CREATE INDEX t_b_a ON t(b, s)")
        }
        queue = try DatabaseQueue(path: path)
        try queue.inDatabase { db in
            let sqlite = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            #expect(sqlite != ["ok"], "the damage is real")
            let answer = try IntegrityCheck.run(db)
            #expect(answer != "ok")
            #expect(Set(answer.components(separatedBy: "; ")) == Set(sqlite))
        }
    }

    @Test("indexes the linear check does not model (descending, another collation, on an expression, partial, of a table without rowid) are SQLite's to check")
    func unmodelledIndexes() throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE d (a, b); CREATE INDEX d_a ON d(a DESC);
                CREATE TABLE n (a TEXT); CREATE INDEX n_a ON n(a COLLATE NOCASE);
                CREATE TABLE e (a, b); CREATE INDEX e_ab ON e(a + b);
                CREATE TABLE p (a, b); CREATE INDEX p_a ON p(a) WHERE b > 0;
                CREATE TABLE w (k PRIMARY KEY, a) WITHOUT ROWID; CREATE INDEX w_a ON w(a);
                CREATE TABLE plain (a); CREATE INDEX plain_a ON plain(a);
                CREATE TABLE w2 (k PRIMARY KEY, a) WITHOUT ROWID;
                """)
            for i in 0..<50 {
                for table in ["d", "e", "p", "w"] { try db.execute(sql: "INSERT INTO \(table) VALUES (?, ?)", arguments: [i, i % 3]) }
                try db.execute(sql: "INSERT INTO n VALUES (?)", arguments: [i % 2 == 0 ? "Ab\(i)" : "aB\(i)"])
                try db.execute(sql: "INSERT INTO plain VALUES (?)", arguments: [i])
                try db.execute(sql: "INSERT INTO w2 VALUES (?, ?)", arguments: [i, i])
            }
        }
        try queue.inDatabase { db in
            let tables = Dictionary(uniqueKeysWithValues: try IntegrityCheck.indexedTables(db).map { ($0.name, $0.indexes) })
            // A table without rowid and no other index is all the quick check's: not listed.
            #expect(tables.keys.sorted() == ["d", "e", "n", "p", "plain", "w"])
            for name in ["d", "e", "n", "p", "w"] { #expect(tables[name]! == nil, "\(name)") }
            #expect(tables["plain"]!?.map(\.name) == ["plain_a"])
            #expect(try IntegrityCheck.run(db) == "ok")
        }
        try queue.close()
        // Damage to one of them is still found, by SQLite's check of its table.
        try changeUnseen(by: "d_a", "CREATE INDEX d_a ON d(a DESC)", change: "DELETE FROM d WHERE a = 7")
        try DatabaseQueue(path: path).inDatabase { db in
            let answer = try IntegrityCheck.run(db)
            #expect(answer != "ok" && answer.contains("d_a"), "\(answer)")
        }
    }

    @Test("integers and reals compare by value, exactly, as SQLite orders them")
    func integerAgainstReal() {
        let cases: [(Int64, Double, Int)] = [
            (1, 1.0, 0), (1, 1.5, -1), (2, 1.5, 1), (-1, -0.5, -1), (0, -0.0, 0),
            ((1 << 53) + 1, 9_007_199_254_740_992.0, 1),  // 2^53 + 1 against 2^53: a Double cannot tell them apart
            (Int64.max, 9.223372036854775807e18, -1),  // the real is 2^63
            (Int64.min, -9.223372036854775808e18, 0), (Int64.min, -9.3e18, 1), (0, .infinity, -1), (0, -.infinity, 1),
        ]
        for (integer, real, order) in cases {
            #expect(IndexTuple.compare(integer: integer, real: real) == order, "\(integer) against \(real)")
        }
    }
}
