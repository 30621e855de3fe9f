import Crypto
import Foundation
import GRDB
import GRDBSQLite
import QISyncCore

/// The materialised state of a replica written out in a form that does not depend on local
/// row numbers: every table's rows, every register's heads and every conflict, by key.
///
/// Two replicas that hold the same entries have equal canonical states, byte for byte.
public struct CanonicalState: Equatable, Sendable {
    /// Lines per section (a table name, `heads` or `conflicts`), sorted. A table's lines hold
    /// its key columns, `live`, `updated_hlc` and its columns, quoted and separated by U+001F.
    public let sections: [String: [String]]
    /// Each table's column names, in the order its lines hold them, and how many are its key.
    public var columns: [String: (names: [String], keys: Int)] = [:]

    public static func == (lhs: CanonicalState, rhs: CanonicalState) -> Bool { lhs.sections == rhs.sections }

    static let separator = "\u{1F}"

    /// The queries that write a database's canonical state out: each section's name and its
    /// SQL, which yields one line per row, head or conflict (in no order; add ` ORDER BY line`).
    static func sectionQueries(schema: ReplicatedSchema) -> (queries: [(String, String)], columns: [String: (names: [String], keys: Int)]) {
        var queries: [(String, String)] = []
        var names: [String: (names: [String], keys: Int)] = [:]
        var heads: [String] = []
        var conflicts: [String] = []
        for table in schema.tables {
            let keys = StoreSchema.keyColumns(of: table)
            let columns = keys + ["live", "updated_hlc"] + table.columns.map(\.name)
            names[table.name] = (columns, keys.count)
            let keyExpression = keys.map { "quote(t.\($0))" }.joined(separator: " || '/' || ")
            queries.append((table.name, "SELECT \(columns.map { "quote(\($0))" }.joined(separator: " || char(31) || ")) AS line FROM \(table.name)"))
            heads.append("""
                SELECT '\(table.name)|' || \(keyExpression) || '|' || hex(origin.key) || '|' || log.scope || '|' || log.seq || '|' || rv.heads AS line
                FROM row_version rv JOIN \(table.name) t ON t.rowid = rv.rid JOIN log ON log.id = rv.chg JOIN origin ON origin.id = log.origin
                WHERE rv.tbl = \(table.id)
                UNION ALL
                SELECT '\(table.name)|' || \(keyExpression) || '|' || hex(origin.key) || '|' || log.scope || '|' || log.seq || '|' || t.base_heads
                FROM \(table.name) t JOIN log ON log.id = t.base_chg JOIN origin ON origin.id = log.origin
                """)
            conflicts.append("""
                SELECT '\(table.name)|' || \(keyExpression) || '|' || c.col AS line FROM conflict c JOIN \(table.name) t ON t.rowid = c.rid WHERE c.tbl = \(table.id)
                """)
        }
        queries.append(("heads", "SELECT line FROM (\(heads.joined(separator: " UNION ALL ")))"))
        queries.append(("conflicts", "SELECT line FROM (\(conflicts.joined(separator: " UNION ALL ")))"))
        return (queries, names)
    }

    /// Reads the canonical state of a database.
    static func read(_ db: Database, schema: ReplicatedSchema) throws -> CanonicalState {
        let (queries, names) = sectionQueries(schema: schema)
        var sections: [String: [String]] = [:]
        for (name, sql) in queries { sections[name] = try String.fetchAll(db, sql: sql + " ORDER BY line") }
        var state = CanonicalState(sections: sections)
        state.columns = names
        return state
    }

    /// Each section's digest (a table's, `heads`, `conflicts`): an order-free digest of its rows
    /// (``rawDigest(_:_:)``), read without sorting or making text of them. `verify` compares the
    /// replica's with its rebuild's, which appended every entry under the local number it has in
    /// the replica (the digests name a head's change by that number).
    static func digests(_ db: Database, schema: ReplicatedSchema) throws -> [String: [UInt64]] {
        try digestQueries(schema: schema).mapValues { try rawDigest(db, $0) }
    }

    /// Where two databases' canonical states differ in `sections` (those whose digests differ;
    /// `live` the replica's tables, `rebuilt` the rebuild from its logs), written out as lines,
    /// sorted and read side by side in order rather than held in memory, to name what differs:
    /// at most `limit` lines, then a count of the rest.
    static func differences(live: Database, rebuilt: Database, schema: ReplicatedSchema, sections: Set<String>, limit: Int = 40) throws -> [String] {
        var (queries, names) = sectionQueries(schema: schema)
        queries = queries.filter { sections.contains($0.0) }
        var onlyHere: [String: [String]] = [:], onlyRebuilt: [String: [String]] = [:]
        var kept = 0, beyond = 0
        var unnamed: [String] = []
        func note(_ line: String, _ into: inout [String: [String]], _ section: String) {
            // Each differing row gives a line on each side: keep enough to name `limit` of them.
            if kept < 4 * limit {
                into[section, default: []].append(line)
                kept += 1
            } else {
                beyond += 1
            }
        }
        for (section, sql) in queries {
            let mine = try String.fetchCursor(live, sql: sql + " ORDER BY line"), theirs = try String.fetchCursor(rebuilt, sql: sql + " ORDER BY line")
            var a = try mine.next(), b = try theirs.next()
            var named = false
            while a != nil || b != nil {
                if let x = a, let y = b, x == y {
                    a = try mine.next()
                    b = try theirs.next()
                    continue
                }
                named = true
                if let x = a, b == nil || x.utf8.lexicographicallyPrecedes(b!.utf8) {
                    note(x, &onlyHere, section)
                    a = try mine.next()
                } else if let y = b {
                    note(y, &onlyRebuilt, section)
                    b = try theirs.next()
                }
            }
            // The lines join each head to the entry it names: a head naming no entry held shows
            // only in the digest.
            if !named { unnamed.append("\(section): differs from the rebuild in a head or row that names no entry held") }
        }
        var here = CanonicalState(sections: onlyHere), there = CanonicalState(sections: onlyRebuilt)
        here.columns = names
        there.columns = names
        var out = here.differences(from: there, limit: limit) + unnamed
        if beyond > 0, !out.contains(where: { $0.hasPrefix("…and") }) { out.append("…and more (\(beyond) further lines differ)") }
        return out
    }

    /// What each section's digest is taken over: the rows its lines are made of, as raw values,
    /// each query tagged with its table. A head names its change by its local number in the log
    /// rather than by site, log and number (the lines join every head to the log and quote
    /// every value: most of `verify`'s time went there).
    static func digestQueries(schema: ReplicatedSchema) -> [String: [(tag: String, sql: String)]] {
        var queries: [String: [(tag: String, sql: String)]] = [:]
        for table in schema.tables {
            let keys = StoreSchema.keyColumns(of: table)
            let keyList = keys.map { "t.\($0)" }.joined(separator: ", ")
            queries[table.name] = [(table.name, "SELECT \((keys + ["live", "updated_hlc"] + table.columns.map(\.name)).joined(separator: ", ")) FROM \(table.name)")]
            queries["heads", default: []] += [
                (table.name, "SELECT \(keyList), rv.chg, rv.heads FROM row_version rv JOIN \(table.name) t ON t.rowid = rv.rid WHERE rv.tbl = \(table.id)"),
                (table.name, "SELECT \(keyList), t.base_chg, t.base_heads FROM \(table.name) t WHERE t.base_chg IS NOT NULL"),
            ]
            queries["conflicts", default: []].append(
                (table.name, "SELECT \(keyList), c.col FROM conflict c JOIN \(table.name) t ON t.rowid = c.rid WHERE c.tbl = \(table.id)"))
        }
        return queries
    }

    /// A digest of the rows some queries yield, whatever their order (``DigestSum``): each
    /// row is its query's tag, then each value as SQLite holds it. Values are read in place,
    /// never copied out.
    static func rawDigest(_ db: Database, _ queries: [(tag: String, sql: String)]) throws -> [UInt64] {
        var sum = DigestSum()
        for (tag, sql) in queries {
            let tagBytes = Array(tag.utf8)
            try RawRows.forEach(db, sql: sql) { handle in
                sum.startRow(tagBytes)
                for column in 0..<sqlite3_column_count(handle) {
                    switch RawColumn(handle, column) {
                    case .integer(let value): sum.append(integer: value)
                    case .real(let value): sum.append(real: value)
                    case .text(let bytes): sum.append(kind: DigestSum.text, bytes.baseAddress, bytes.count)
                    case .blob(let bytes): sum.append(kind: DigestSum.blob, bytes.baseAddress, bytes.count)
                    case .null: sum.appendNull()
                    }
                }
                sum.endRow()
                return true
            }
        }
        return sum.value
    }

    /// Where two states differ, naming each record and field: `self` is the replica's tables,
    /// `other` the rebuild from its logs. At most `limit` lines, then a count of the rest.
    public func differences(from other: CanonicalState, limit: Int = 40) -> [String] {
        var out: [String] = []
        for name in Set(sections.keys).union(other.sections.keys).sorted() {
            let mine = Set(sections[name] ?? [])
            let theirs = Set(other.sections[name] ?? [])
            let onlyHere = mine.subtracting(theirs), onlyRebuilt = theirs.subtracting(mine)
            guard !onlyHere.isEmpty || !onlyRebuilt.isEmpty else { continue }
            guard let (columns, keyCount) = columns[name] ?? other.columns[name] else {
                // Heads and conflicts: their lines name the table and row themselves.
                out += onlyHere.sorted().map { "\(name): \(Self.readable($0)) is in the tables but not in the rebuild" }
                out += onlyRebuilt.sorted().map { "\(name): \(Self.readable($0)) is missing from the tables" }
                continue
            }
            func split(_ line: String) -> [String] { line.components(separatedBy: Self.separator) }
            func key(_ fields: [String]) -> String { fields.prefix(keyCount).map(Self.readable).joined(separator: "/") }
            let here = Dictionary(onlyHere.map { (key(split($0)), split($0)) }, uniquingKeysWith: { first, _ in first })
            let rebuilt = Dictionary(onlyRebuilt.map { (key(split($0)), split($0)) }, uniquingKeysWith: { first, _ in first })
            for row in Set(here.keys).union(rebuilt.keys).sorted() {
                switch (here[row], rebuilt[row]) {
                case (_?, nil): out.append("\(name) \(row): in the tables, but no entry held writes it")
                case (nil, _?): out.append("\(name) \(row): its entries are held, but the row is missing from the tables")
                case (let a?, let b?):
                    let fields = columns.indices.filter { $0 >= keyCount && $0 < min(a.count, b.count) && a[$0] != b[$0] }.map { index in
                        "\(columns[index]) is \(Self.readable(a[index])) (the logs give \(Self.readable(b[index])))"
                    }
                    out.append("\(name) \(row): " + (fields.isEmpty ? "differs" : fields.joined(separator: "; ")))
                default: break
                }
            }
        }
        if out.count > limit { out = Array(out.prefix(limit)) + ["…and \(out.count - limit) more"] }
        return out
    }

    /// A quoted SQL value as people read it: blobs (ids) as their first 8 hex digits, text at most 60 characters.
    static func readable(_ quoted: String) -> String {
        if quoted.hasPrefix("X'"), quoted.hasSuffix("'") {
            return String(quoted.dropFirst(2).dropLast().prefix(8)).lowercased()
        }
        let text = quoted.replacingOccurrences(of: Self.separator, with: "|")
        return text.count > 60 ? String(text.prefix(57)) + "…" : text
    }
}

extension Replica {
    /// The replica's canonical materialised state.
    public func canonicalState() throws -> CanonicalState {
        try database.read { db in try CanonicalState.read(db, schema: schema) }
    }
}

/// An order-free digest of rows: the sum, modulo 2^256, of the SHA-256 of each row (a tag,
/// then each value's type, length and bytes as SQLite holds them), with the number of rows.
/// The rows read from a database (``CanonicalState/rawDigest(_:_:)``) and the rows
/// ``FoldedRebuild`` works out are summed by this one type, so the two compare.
struct DigestSum {
    static let text: UInt8 = 3
    static let blob: UInt8 = 4
    private var sum = [UInt64](repeating: 0, count: 4)
    private var count: UInt64 = 0
    private var row: [UInt8] = []

    /// The four words of the sum, then the number of rows.
    var value: [UInt64] { sum + [count] }

    /// Two digests' rows together: the sums added, the counts too.
    static func adding(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var sum = Array(a.prefix(4))
        addWords(to: &sum) { b[$0] }
        return sum + [a[4] &+ b[4]]
    }

    /// Adds four 64-bit words, the least significant first, to a 256-bit sum, carrying.
    private static func addWords(to sum: inout [UInt64], _ word: (Int) -> UInt64) {
        var carry: UInt64 = 0
        for index in 0..<4 {
            let (partial, overflow1) = sum[index].addingReportingOverflow(word(index))
            let (total, overflow2) = partial.addingReportingOverflow(carry)
            sum[index] = total
            carry = (overflow1 ? 1 : 0) + (overflow2 ? 1 : 0)
        }
    }

    mutating func startRow(_ tag: [UInt8]) {
        row.removeAll(keepingCapacity: true)
        row.append(contentsOf: tag)
    }

    private mutating func append(word: UInt64) { withUnsafeBytes(of: word.littleEndian) { row.append(contentsOf: $0) } }

    mutating func append(integer: Int64) {
        row.append(1)
        append(word: UInt64(bitPattern: integer))
    }

    mutating func append(real: Double) {
        row.append(2)
        append(word: real.bitPattern)
    }

    mutating func appendNull() { row.append(0) }

    mutating func append(kind: UInt8, _ pointer: UnsafeRawPointer?, _ length: Int) {
        row.append(kind)
        append(word: UInt64(length))
        if let pointer, length > 0 { row.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: length)) }
    }

    /// A value as SQLite gives it back from a column of its own type.
    mutating func append(_ value: Value) {
        switch value {
        case .null: appendNull()
        case .integer(let i): append(integer: i)
        case .real(let d): append(real: d)
        case .text(let s):
            var s = s
            s.withUTF8 { append(kind: Self.text, $0.baseAddress, $0.count) }
        case .blob(let b): b.withUnsafeBytes { append(kind: Self.blob, $0.baseAddress, $0.count) }
        }
    }

    /// The digest of the row appended since ``startRow(_:)``, not added to the sum.
    func rowDigest() -> SHA256Digest { SHA256.hash(data: row) }

    /// Adds the row appended since ``startRow(_:)``.
    mutating func endRow() { add(digest: rowDigest()) }

    /// Adds a row by its digest (32 bytes).
    mutating func add(digest: some ContiguousBytes) {
        count += 1
        digest.withUnsafeBytes { raw in Self.addWords(to: &sum) { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
    }
}
