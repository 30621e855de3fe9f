import Foundation
import GRDB
import QISyncCore

/// One cell's current head: a value not superseded by any other write.
public struct CellHead: Sendable, Equatable {
    /// The entry that wrote it.
    public let ref: VersionRef
    /// When.
    public let hlc: HLC
    /// The value written.
    public let value: Value
}

/// A change that touched a record, for `history`.
public struct RecordChange: Sendable {
    /// The entry.
    public let ref: VersionRef
    /// When it was written.
    public let hlc: HLC
    /// The cells it wrote to the row.
    public let cells: [CellWrite]
}

/// What a replica will send a peer: entries and bytes of change bodies beyond the peer's
/// vector, up to ``through``.
public struct Offer: Sendable, Equatable {
    /// How many entries.
    public var entries: UInt64
    /// How many bytes of change bodies.
    public var bytes: UInt64
    /// How far each log is offered: the sender sends nothing beyond it in this session.
    public var through: VersionVector
}

/// How big a replica's logs are.
public struct LogSize: Sendable {
    /// The log.
    public let log: LogID
    /// The number of entries held.
    public let entries: Int
    /// The bytes of their bodies.
    public let bytes: Int
}

extension Replica {
    /// The version vector: per (origin, scope), the highest contiguous entry held and its hash.
    public func versionVector() throws -> VersionVector {
        try database.read { db in try currentVector(db) }
    }

    /// The version vector as of `db`'s transaction, kept while nothing can have changed it: a
    /// sync reads it for its HELLO, its offer and every batch, and nationally it has thousands
    /// of logs. Kept only for reads of committed content (not inside a write or a window), by
    /// this connection's write generation and SQLite's `data_version` (which moves when another
    /// connection, in this process or another, commits).
    func currentVector(_ db: Database) throws -> VersionVector {
        guard let generation = database.cleanReadGeneration else { return try Self.versionVector(db) }
        // A statement that reads the file first, so the transaction's snapshot is taken and
        // `data_version` speaks for it.
        _ = try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'directory_version'"))
        let key = VectorCache.Key(generation: generation, dataVersion: try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0)
        if let known = vectorCache.value(for: key) { return known }
        let vector = try Self.versionVector(db)
        vectorCache.store(vector, for: key)
        return vector
    }

    static func versionVector(_ db: Database) throws -> VersionVector {
        var vector = VersionVector()
        // A cursor, its blobs read in place: nationally a vector has thousands of logs, and
        // copying each row (and each blob into `Data` first) was most of the time.
        let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT origin.key, vector.scope, vector.seq, vector.hash FROM vector JOIN origin ON origin.id = vector.origin"))
        while let row = try rows.next() {
            let origin = try row.withUnsafeData(atIndex: 0) { data in try OriginID(bytes: data.map { [UInt8]($0) } ?? []) }
            let log = LogID(origin: origin, scope: Scope(rawValue: UInt8(row[1] as Int64)) ?? .trust)
            vector.positions[log] = LogPosition(seq: UInt64(bitPattern: row[2]), hash: try row.withUnsafeData(atIndex: 3) { $0.map { [UInt8]($0) } ?? [] })
        }
        return vector
    }

    /// The entries this replica holds beyond `vector`, in log order, for the given scopes.
    ///
    /// Each log is one indexed range read on `(origin, scope, seq)`.
    public func entries(after vector: VersionVector, scopes: Set<Scope> = Set(Scope.allCases)) throws -> [LogEntry] {
        try entries(after: vector, scopes: scopes, maxEntries: .max, maxBytes: .max)
    }

    /// About `maxEntries` entries and `maxBytes` of change bodies beyond `vector`, in log order: a
    /// batch for a peer whose vector is `vector`. Each log's part ends with a signed entry, so it
    /// may run past the limits until one (the last entry of every log held is signed). With
    /// `through`, no log goes beyond its position there (what was offered).
    public func entries(after vector: VersionVector, through limit: VersionVector? = nil, scopes: Set<Scope> = Set(Scope.allCases),
                        maxEntries: Int, maxBytes: Int) throws -> [LogEntry] {
        try database.read { db in
            try Self.entries(db, held: try currentVector(db), after: vector, through: limit, scopes: scopes, maxEntries: maxEntries, maxBytes: maxBytes)
        }
    }

    /// Calls `body` with each entry of one log after `seq` (through `last`) in order, read with a
    /// cursor, one at a time; each entry's previous hash is the hash worked out for the one
    /// before it (`previousHash` for the first). `body` also gets the entry's local number in
    /// the log table, and returns false to stop.
    static func forEachEntry(_ db: Database, log: LogID, after seq: UInt64 = 0, previousHash: [UInt8] = LogEntry.genesisHash,
                             through last: UInt64 = UInt64(Int64.max), _ body: (LogEntry, _ id: Int64) throws -> Bool) throws {
        try forEachEntry(db, log: log, after: seq, previousHash: previousHash, through: last) { entry, id, _ in try body(entry, id) }
    }

    /// The same, with each packed entry's block as stored (deflated; nil for an entry kept in its row).
    static func forEachEntry(_ db: Database, log: LogID, after seq: UInt64 = 0, previousHash: [UInt8] = LogEntry.genesisHash,
                             through last: UInt64 = UInt64(Int64.max), _ body: (LogEntry, _ id: Int64, _ block: [UInt8]?) throws -> Bool) throws {
        var previous = previousHash
        let bodies = LogBodies()
        let rows = try Row.fetchCursor(db.cachedStatement(sql: """
            SELECT log.seq, log.hlc, log.body, log.sig, log.id, log.packed, log.origin FROM log JOIN origin ON origin.id = log.origin
            WHERE origin.key = ? AND log.scope = ? AND log.seq > ? AND log.seq <= ? ORDER BY log.seq
            """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: seq), Int64(bitPattern: last)])
        while let row = try rows.next() {
            let number = UInt64(bitPattern: row[0])
            let (change, block) = try bodies.bodyAndBlock(db, origin: row[6], scope: Int64(log.scope.rawValue), seq: number, stored: row[2], packed: row[5])
            let entry = LogEntry(origin: log.origin, scope: log.scope, seq: number, previousHash: previous,
                                 hlc: HLC(rawValue: UInt64(bitPattern: row[1])), body: change,
                                 signature: (row[3] as Data?).map(Array.init))
            previous = entry.hash
            guard try body(entry, row[4], block) else { return }
        }
    }

    /// `held` is the replica's vector as of `db` (read here when not given).
    static func entries(_ db: Database, held: VersionVector? = nil, after vector: VersionVector, through limit: VersionVector? = nil,
                        scopes: Set<Scope>, maxEntries: Int, maxBytes: Int) throws -> [LogEntry] {
        var ours = try held ?? versionVector(db)
        if let limit {
            var capped: [LogID: LogPosition] = [:]
            for (log, position) in ours.positions {
                if let cap = limit.positions[log] { capped[log] = cap.seq < position.seq ? cap : position }
            }
            ours.positions = capped
        }
        var entries: [LogEntry] = []
        var bytes = 0
        for (log, position) in ours.positions.sorted(by: { $0.key < $1.key }) where scopes.contains(log.scope) {
            let from = vector.seq(of: log)
            guard position.seq > from else { continue }
            guard entries.count < maxEntries, bytes < maxBytes else { break }
            var previous = LogEntry.genesisHash
            if from > 0 {
                guard let hash = try Data.fetchOne(db.cachedStatement(sql: """
                    SELECT log.hash FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                    """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: from)]) else { continue }
                previous = Array(hash)
            }
            try forEachEntry(db, log: log, after: from, previousHash: previous, through: position.seq) { entry, _ in
                entries.append(entry)
                bytes += entry.body.count
                // Stop at a limit only on a signed entry, so every run handed out ends with a signature.
                return !((bytes >= maxBytes || entries.count >= maxEntries) && entry.signature != nil)
            }
        }
        return entries
    }

    /// What this replica holds beyond a peer's vector: how many entries and bytes of change bodies,
    /// and the vector they reach (``Offer/through``), read in one transaction so the counts and
    /// the entries later sent up to that vector agree exactly.
    ///
    /// Throws ``LogRejection`` when the peer's vector shows a log that has forked: the peer
    /// holds a different entry at a place this replica also holds.
    public func offer(for peerVector: VersionVector, scopes: Set<Scope> = Set(Scope.allCases)) throws -> Offer {
        try database.read { db in
            let ours = try currentVector(db)
            var offer = Offer(entries: 0, bytes: 0, through: VersionVector())
            for (log, position) in ours.positions where scopes.contains(log.scope) {
                offer.through.positions[log] = position
                let theirs = peerVector.positions[log]
                let from = theirs?.seq ?? 0
                if let theirs, theirs.seq > 0, theirs.seq <= position.seq {
                    // At our own head the vector has the hash; only an older place needs the log.
                    // (Statements from GRDB's cache: this runs once per log, thousands a sync nationally.)
                    let held = theirs.seq == position.seq ? position.hash : try Data.fetchOne(db.cachedStatement(sql: """
                        SELECT log.hash FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                        """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: theirs.seq)]).map(Array.init)
                    guard held == theirs.hash else {
                        throw LogRejection(ref: VersionRef(origin: log.origin, scope: log.scope, seq: theirs.seq),
                                           reason: "the peer holds a different entry at this place (a forked log)")
                    }
                }
                guard position.seq > from else { continue }
                offer.entries += position.seq - from
                // A peer that holds none of the log is offered all of it: its running count of
                // bytes says how many (reading every body for it was a twentieth of a full sync).
                if from == 0, let size = try Row.fetchOne(db.cachedStatement(sql: """
                    SELECT log_size.entries, log_size.bytes FROM log_size JOIN origin ON origin.id = log_size.origin
                    WHERE origin.key = ? AND log_size.scope = ?
                    """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue)]), size[0] as Int64 == Int64(bitPattern: position.seq) {
                    offer.bytes += UInt64(size[1] as Int64)
                    continue
                }
                offer.bytes += UInt64(try Int64.fetchOne(db.cachedStatement(sql: """
                    SELECT coalesce(sum(length(log.body) + coalesce(log.packed, 0)), 0) FROM log JOIN origin ON origin.id = log.origin
                    WHERE origin.key = ? AND log.scope = ? AND log.seq > ? AND log.seq <= ?
                    """), arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: from), Int64(bitPattern: position.seq)]) ?? 0)
            }
            return offer
        }
    }

    /// The current heads of one cell, newest first (the first is the displayed value).
    public func heads(table: UInt16, key: [UInt8], column: UInt16) throws -> [CellHead] {
        try database.read { db in
            let materializer = try Materializer(db: db, schema: schema)
            guard let rid = try materializer.rowID(table: table, key: key) else { return [] }
            let bit: Int64 = 1 << Int64(column)
            var heads: [CellHead] = []
            for (change, mask) in try materializer.versions(table: table, row: rid).versions where mask & bit != 0 {
                let stamp = try materializer.stamp(of: change)
                heads.append(CellHead(ref: try materializer.ref(of: change), hlc: stamp.hlc,
                                      value: try materializer.value(writtenBy: change, table: table, key: key, column: column)))
            }
            return heads.sorted { Stamp(hlc: $0.hlc, origin: $0.ref.origin) > Stamp(hlc: $1.hlc, origin: $1.ref.origin) }
        }
    }

    /// The change an entry held here carries, or nil when it is not held.
    public func change(at ref: VersionRef) throws -> Change? {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT log.body, log.packed, log.origin FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                """, arguments: [Data(ref.origin.bytes), Int64(ref.scope.rawValue), Int64(bitPattern: ref.seq)]) else { return nil }
            return try Change(decodingBody: try LogBodies().body(db, origin: row[2], scope: Int64(ref.scope.rawValue), seq: ref.seq,
                                                                  stored: row[0], packed: row[1]))
        }
    }

    /// The cells whose heads hold more than one value: (table, key, column).
    public func conflicts() throws -> [(table: TableSpec, key: [UInt8], column: UInt16)] {
        try database.read { db in
            var result: [(TableSpec, [UInt8], UInt16)] = []
            for row in try Row.fetchAll(db, sql: "SELECT tbl, rid, col FROM conflict ORDER BY tbl, rid, col") {
                guard let table = schema.table(id: UInt16(row[0] as Int64)) else { continue }
                let rid: Int64 = row[1]
                guard let keyRow = try Row.fetchOne(db, sql: "SELECT \(StoreSchema.keyColumns(of: table).joined(separator: ", ")) FROM \(table.name) WHERE rowid = ?", arguments: [rid]) else { continue }
                var key = Array(keyRow[0] as Data)
                if case .set = table.kind { key += Array((keyRow[1] as String).utf8) }
                result.append((table, key, UInt16(row[2] as Int64)))
            }
            return result
        }
    }

    /// Every change that touched a row, oldest first.
    public func history(table: UInt16, key: [UInt8]) throws -> [RecordChange] {
        try database.read { db in
            let materializer = try Materializer(db: db, schema: schema)
            guard let rid = try materializer.rowID(table: table, key: key) else { return [] }
            var changes: [RecordChange] = []
            for change in try materializer.versions(table: table, row: rid).versions.keys {
                let body = try materializer.change(change)
                let cells = body.rows.filter { $0.table == table && $0.key == key }.flatMap(\.cells)
                changes.append(RecordChange(ref: try materializer.ref(of: change), hlc: try materializer.stamp(of: change).hlc, cells: cells))
            }
            return changes.sorted { Stamp(hlc: $0.hlc, origin: $0.ref.origin) < Stamp(hlc: $1.hlc, origin: $1.ref.origin) }
        }
    }

    /// Entries and bytes per log.
    public func logSizes() throws -> [LogSize] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT origin.key, log_size.scope, log_size.entries, log_size.bytes FROM log_size JOIN origin ON origin.id = log_size.origin
                WHERE log_size.entries > 0
                """).map { row in
                LogSize(log: LogID(origin: try OriginID(bytes: Array(row[0] as Data)), scope: Scope(rawValue: UInt8(row[1] as Int64)) ?? .trust),
                        entries: row[2], bytes: row[3])
            }.sorted { $0.log < $1.log }
        }
    }

    /// Entries waiting for a missing predecessor.
    public func waitingEntryCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM pending_entry") ?? 0 }
    }

    /// The size of the database file and its write-ahead log, in bytes.
    public func fileSize() -> Int {
        let files = FileManager.default
        return [databasePath, databasePath + "-wal"].reduce(0) { total, path in
            total + ((try? files.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
    }

    /// Writes the write-ahead log back into the main file.
    public func checkpoint() throws {
        try database.writeWithoutTransaction { db in _ = try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }
}

/// The last version vector read, by the write generation and `data_version` it was read at.
/// Readers on several threads share it.
final class VectorCache: @unchecked Sendable {
    struct Key: Equatable {
        var generation: UInt64
        var dataVersion: Int64
    }
    // The lock guards `entry`.
    private let lock = NSLock()
    private var entry: (key: Key, vector: VersionVector)?

    func value(for key: Key) -> VersionVector? {
        lock.withLock { entry?.key == key ? entry?.vector : nil }
    }

    func store(_ vector: VersionVector, for key: Key) {
        lock.withLock { entry = (key, vector) }
    }
}
