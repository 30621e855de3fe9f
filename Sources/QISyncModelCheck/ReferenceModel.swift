import Crypto
import Foundation
import GRDB
import QISyncCore
import QISyncIdentity
import QISyncStore

/// The rules of protocol/SPEC.md sections 4–6 and 14, written again as plainly as possible,
/// as the oracle the replicas are checked against: no database, no order of arrival, no
/// incremental bookkeeping. Given every entry a trust may hold, it works out which are
/// admitted, which changes apply, every cell's heads, values and conflicts.
struct ReferenceModel {
    /// One cell: a row's column.
    struct Cell: Hashable, CustomStringConvertible {
        let row: RowName
        let column: UInt16
        var description: String { "table \(row.table) row \(Hex.encode(row.key.prefix(6))) column \(column)" }
    }

    /// A materialised row: existence, newest write applied, column values.
    struct RowState: Equatable {
        var live: Int64 = 0
        var updated: UInt64 = 0
        var values: [UInt16: Value] = [:]
    }

    /// What a trust's replicas must hold.
    struct State: Equatable {
        var held: Set<VersionRef> = []
        var refused: Set<VersionRef> = []
        var rows: [RowName: RowState] = [:]
        var versions: [RowName: [VersionRef: Int64]] = [:]
        var conflicts: Set<Cell> = []
    }

    /// Facts about the world the rules depend on: each site's trust, each trust's key, each revocation.
    let trustOf: [OriginID: String]
    let trustKeys: [String: [UInt8]]
    let cuts: [OriginID: [Scope: LogPosition]]
    let schema: ReplicatedSchema
    /// Cells each entry's trust has redacted (SPEC 12): their value is the marker, whatever the entry held.
    var redacted: [VersionRef: Set<Cell>] = [:]

    /// Section 14, rule 1, for a replica of `viewer`: may it hold this entry at all?
    func admits(_ entry: LogEntry, viewer: String, hashes: [VersionRef: [UInt8]]) -> Bool {
        guard let trust = trustOf[entry.origin] else { return false }
        if entry.scope == .trust && trust != viewer { return false }
        if let cut = cuts[entry.origin] {
            guard let position = cut[entry.scope], entry.seq <= position.seq else { return false }
            let atCut = VersionRef(origin: entry.origin, scope: entry.scope, seq: position.seq)
            if let hash = hashes[atCut], hash != position.hash { return false }
        }
        return true
    }

    /// Section 14, rule 2: does every row of the change belong to the origin's trust (and is any
    /// override signed by its key)?
    func applies(_ change: Change, origin: OriginID) -> Bool {
        guard let trust = trustOf[origin] else { return false }
        let tag = Array(SHA256.hash(data: Array("qisync-owner-1".utf8) + Array(trust.utf8)).prefix(4))
        for row in change.rows {
            guard let table = schema.table(id: row.table) else { return false }
            switch table.kind {
            case .set:
                guard row.key.count > 16, Array(row.key[12..<16]) == tag else { return false }
            case .entity where table.id == 1:
                guard row.key == origin.bytes else { return false }
            case .entity:
                guard row.key.count == 16, Array(row.key.suffix(4)) == tag else { return false }
                if let owner = row.cells.first(where: { $0.column == 1 }), owner.value != .text(trust) { return false }
                let text = row.cells.first { $0.column == 63 }?.value ?? .null
                let signature = row.cells.first { $0.column == 62 }?.value ?? .null
                switch (text, signature) {
                case (.null, .null): break
                case (.text(let reason), .blob(let bytes)):
                    guard let key = trustKeys[trust], let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
                    var message = ByteWriter()
                    message.write(raw: Array("qisync-pii-override-1".utf8))
                    message.write(varint: UInt64(row.table))
                    message.write(lengthPrefixed: row.key)
                    message.write(string: reason)
                    guard publicKey.isValidSignature(bytes, for: message.bytes) else { return false }
                default: return false
                }
            }
        }
        return true
    }

    /// Sections 4 to 6: the state every replica of `viewer` must reach holding `entries` (all the
    /// world's, each once).
    func state(for viewer: String, entries: [LogEntry]) -> State {
        var state = State()
        let hashes = Dictionary(entries.map { ($0.ref, $0.hash) }, uniquingKeysWith: { a, _ in a })
        struct Write { let ref: VersionRef; let stamp: Stamp; let value: Value; let supersedes: [VersionRef] }
        var writes: [Cell: [Write]] = [:]
        var rowsWritten: [RowName: Set<VersionRef>] = [:]
        var rowHLC: [RowName: UInt64] = [:]
        for entry in entries where admits(entry, viewer: viewer, hashes: hashes) {
            state.held.insert(entry.ref)
            guard let change = try? entry.change() else { continue }
            guard applies(change, origin: entry.origin) else {
                state.refused.insert(entry.ref)
                continue
            }
            for row in change.rows {
                let name = RowName(table: row.table, key: row.key)
                rowsWritten[name, default: []].insert(entry.ref)
                rowHLC[name] = max(rowHLC[name] ?? 0, entry.hlc.rawValue)
                for cell in row.cells {
                    let key = Cell(row: name, column: cell.column)
                    let value = redacted[entry.ref]?.contains(key) == true ? Value.text(Redaction.marker) : cell.value
                    writes[key, default: []].append(
                        Write(ref: entry.ref, stamp: Stamp(hlc: entry.hlc, origin: entry.origin), value: value, supersedes: cell.supersedes))
                }
            }
        }
        for (name, refs) in rowsWritten {
            state.versions[name] = Dictionary(uniqueKeysWithValues: refs.map { ($0, Int64(0)) })
            state.rows[name] = RowState(live: 0, updated: rowHLC[name] ?? 0, values: [:])
        }
        for (cell, cellWrites) in writes {
            let superseded = Set(cellWrites.flatMap(\.supersedes))
            let heads = cellWrites.filter { !superseded.contains($0.ref) }
            for head in heads { state.versions[cell.row]![head.ref]! |= 1 << Int64(cell.column) }
            if Set(heads.map(\.value)).count > 1 { state.conflicts.insert(cell) }
            let winner = heads.max { $0.stamp < $1.stamp }
            if cell.column == 0 {
                state.rows[cell.row]!.live = winner?.value.integer ?? 0
            } else if var value = winner?.value, value != .null {
                // A REAL column keeps an integer written to it as a real (SQLite's affinity).
                if case .integer(let i) = value, schema.table(id: cell.row.table)?.column(id: cell.column)?.type == .real { value = .real(Double(i)) }
                state.rows[cell.row]!.values[cell.column] = value
            }
        }
        return state
    }

    /// The same state read from a replica's tables.
    static func snapshot(of replica: Replica) throws -> State {
        var state = State()
        try replica.read { db in
            for row in try Row.fetchAll(db, sql: "SELECT origin.key, log.scope, log.seq FROM log JOIN origin ON origin.id = log.origin") {
                state.held.insert(VersionRef(origin: try OriginID(bytes: Array(row[0] as Data)), scope: Scope(rawValue: UInt8(row[1] as Int64))!,
                                             seq: UInt64(bitPattern: row[2])))
            }
            for row in try Row.fetchAll(db, sql: "SELECT origin, scope, seq FROM refusal WHERE stored = 1") {
                let ref = VersionRef(origin: try OriginID(bytes: Array(row[0] as Data)), scope: Scope(rawValue: UInt8(row[1] as Int64))!,
                                     seq: UInt64(bitPattern: row[2]))
                if state.held.contains(ref) { state.refused.insert(ref) }
            }
            for table in replica.schema.tables {
                let isSet: Bool = if case .set = table.kind { true } else { false }
                let keys = isSet ? "parent, value" : "id"
                var names: [Int64: RowName] = [:]
                let columns = table.columns.map(\.name).joined(separator: ", ")
                for row in try Row.fetchAll(db, sql: "SELECT rowid, \(keys), live, updated_hlc\(columns.isEmpty ? "" : ", " + columns) FROM \(table.name)") {
                    let key = isSet ? Array(row["parent"] as Data) + Array((row["value"] as String).utf8) : Array(row["id"] as Data)
                    let name = RowName(table: table.id, key: key)
                    names[row["rowid"]] = name
                    var values: [UInt16: Value] = [:]
                    for column in table.columns {
                        let value = Value(row[column.name] as DatabaseValue)
                        if value != .null { values[column.id] = value }
                    }
                    state.rows[name] = RowState(live: row["live"], updated: UInt64(bitPattern: row["updated_hlc"]), values: values)
                }
                let versionRows = try Row.fetchAll(db, sql: """
                    SELECT rv.rid, origin.key, log.scope, log.seq, rv.heads FROM row_version rv JOIN log ON log.id = rv.chg
                    JOIN origin ON origin.id = log.origin WHERE rv.tbl = ?
                    UNION ALL
                    SELECT t.rowid, origin.key, log.scope, log.seq, t.base_heads FROM \(table.name) t JOIN log ON log.id = t.base_chg
                    JOIN origin ON origin.id = log.origin
                    """, arguments: [Int64(table.id)])
                for row in versionRows {
                    guard let name = names[row[0]] else { continue }
                    let ref = VersionRef(origin: try OriginID(bytes: Array(row[1] as Data)), scope: Scope(rawValue: UInt8(row[2] as Int64))!,
                                         seq: UInt64(bitPattern: row[3]))
                    state.versions[name, default: [:]][ref] = row[4]
                }
                for row in try Row.fetchAll(db, sql: "SELECT rid, col FROM conflict WHERE tbl = ?", arguments: [Int64(table.id)]) {
                    if let name = names[row[0]] { state.conflicts.insert(Cell(row: name, column: UInt16(row[1] as Int64))) }
                }
            }
        }
        return state
    }

    /// Where a replica's state differs from the model's, in a few lines.
    static func differences(_ actual: State, _ expected: State) -> [String] {
        var out: [String] = []
        func describe<T>(_ items: some Collection<T>, _ what: String) {
            if !items.isEmpty { out.append("\(items.count) \(what), e.g. \(items.prefix(2).map { "\($0)" }.joined(separator: "; "))") }
        }
        describe(expected.held.subtracting(actual.held), "entries missing")
        describe(actual.held.subtracting(expected.held), "entries held that should not be")
        describe(expected.refused.symmetricDifference(actual.refused), "entries refused differently")
        let rowNames = Set(actual.rows.keys).union(expected.rows.keys)
        describe(rowNames.filter { actual.rows[$0] != expected.rows[$0] }.map { name in
            "table \(name.table) row \(Hex.encode(name.key.prefix(6))): \(String(describing: actual.rows[name])) vs model \(String(describing: expected.rows[name]))"
        }, "rows differ")
        describe(rowNames.filter { actual.versions[$0] != expected.versions[$0] }.map { name in
            "table \(name.table) row \(Hex.encode(name.key.prefix(6))): heads \(String(describing: actual.versions[name])) vs model \(String(describing: expected.versions[name]))"
        }, "rows' heads differ")
        describe(expected.conflicts.symmetricDifference(actual.conflicts), "conflicts differ")
        return out
    }
}

