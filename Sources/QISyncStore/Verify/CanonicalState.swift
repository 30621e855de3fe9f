import Crypto
import Foundation
import GRDB
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

    /// Where two databases' canonical states differ (`live` the replica's tables, `rebuilt` the
    /// rebuild from its logs), read side by side in order rather than held in memory: at most
    /// `limit` lines, then a count of the rest.
    ///
    /// Each section is first compared by a digest of its lines that does not depend on their
    /// order (the sum of their SHA-256 hashes), read without sorting; only a section whose
    /// digests differ is sorted and read side by side to name what differs.
    static func differences(live: Database, rebuilt: Database, schema: ReplicatedSchema, limit: Int = 40) throws -> [String] {
        var (queries, names) = sectionQueries(schema: schema)
        queries = try queries.filter { _, sql in try digest(live, sql) != digest(rebuilt, sql) }
        var onlyHere: [String: [String]] = [:], onlyRebuilt: [String: [String]] = [:]
        var kept = 0, beyond = 0
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
            while a != nil || b != nil {
                if let x = a, let y = b, x == y {
                    a = try mine.next()
                    b = try theirs.next()
                } else if let x = a, b == nil || x.utf8.lexicographicallyPrecedes(b!.utf8) {
                    note(x, &onlyHere, section)
                    a = try mine.next()
                } else if let y = b {
                    note(y, &onlyRebuilt, section)
                    b = try theirs.next()
                }
            }
        }
        var here = CanonicalState(sections: onlyHere), there = CanonicalState(sections: onlyRebuilt)
        here.columns = names
        there.columns = names
        var out = here.differences(from: there, limit: limit)
        if beyond > 0, !out.contains(where: { $0.hasPrefix("…and") }) { out.append("…and more (\(beyond) further lines differ)") }
        return out
    }

    /// A digest of the lines a query yields, whatever their order: the sum, modulo 2^256, of
    /// each line's SHA-256, with the number of lines.
    static func digest(_ db: Database, _ sql: String) throws -> [UInt64] {
        var sum = [UInt64](repeating: 0, count: 4)
        var count: UInt64 = 0
        let lines = try String.fetchCursor(db, sql: sql)
        while let line = try lines.next() {
            count += 1
            let words = SHA256.hash(data: Data(line.utf8)).withUnsafeBytes { raw in (0..<4).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) } }
            var carry: UInt64 = 0
            for index in 0..<4 {
                let (partial, overflow1) = sum[index].addingReportingOverflow(words[index])
                let (total, overflow2) = partial.addingReportingOverflow(carry)
                sum[index] = total
                carry = (overflow1 ? 1 : 0) + (overflow2 ? 1 : 0)
            }
        }
        return sum + [count]
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
