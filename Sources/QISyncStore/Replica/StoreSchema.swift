import Foundation
import GRDB
import QISyncCore

/// The SQLite layout of a replica: the engine's own tables and a materialised table per replicated table.
///
/// Each materialised table has its key columns, `live` (the existence register's value),
/// `updated_hlc` (the newest write applied to the row), `base_chg`/`base_heads` and the
/// replicated columns.
///
/// Engine tables:
/// - `origin(id, key)`: local numbers for origin keys, to keep other rows small.
/// - `log(id, origin, scope, seq, hlc, hash, body, sig, packed)`: every entry of every origin's logs;
///   `(origin, scope, seq)` is unique and indexed, so "entries after a vector" is a range read.
///   `sig` is NULL for an entry received inside a run, whose signature the run's last entry covers.
///   `packed` is NULL, or the body's length when the body is packed in its block (`body` empty).
/// - `log_block(id, origin, scope, first, data)`: the bodies of 128 consecutive entries of a log,
///   from entry `first`, deflated together (``LogBlocks``); `log_packing`, empty but while a block
///   is packed, holds its rows aside as they are written again.
/// - `vector(origin, scope, seq, hash)`: the highest contiguous entry held per log.
/// - `pending_entry(origin, scope, seq, entry)`: verified entries waiting for a predecessor.
/// - `row_version(tbl, rid, chg, heads)`: every change that touched a materialised row, with
///   a bit mask of the columns it is still a head of (bit 0 = existence). It is both the
///   multi-value registers and the history index. The change that created a row when nothing
///   was superseded is kept in the row itself instead (`base_chg`, `base_heads`): most rows
///   are written once, and this saves a row and an insert per record.
/// - `pending_supersede(origin, scope, seq, tbl, key, col)`: supersessions of writes not yet received.
/// - `conflict(tbl, rid, col)`: cells with more than one head.
/// - `meta(key, value)`: identity, clock, schema version.
/// - `peer(name, address)` and `sync_session(…)`: this replica's peers and sync history (local, never replicated).
/// - `trust_pin(code, fingerprint, own, added_ms)`: the trusts this replica accepts, by key fingerprint.
/// - `directory_record(digest, kind, record)`: the directory records held (enrolments, revocations,
///   bundle keys, trust-wide pins), each verified and kept exactly as received so it can be passed on;
///   what they decide is worked out from the whole set (``TrustDirectory``).
/// - `directory_reading(digest, reading)`: what each held enrolment's certificates say
///   (``Enrolment/reading``), by record digest, so reading the directory parses no certificate.
/// - `admin_event(…)`: enrolments, revocations, trust pins and bundles, for `audit`.
/// - `refusal(…)`: entries and changes refused, with the reason, for `audit`.
enum StoreSchema {
    static let version = 3

    static func create(_ db: Database, schema: ReplicatedSchema) throws {
        try db.execute(sql: """
            CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
            CREATE TABLE origin (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE);
            CREATE TABLE log (
                id INTEGER PRIMARY KEY, origin INTEGER NOT NULL, scope INTEGER NOT NULL, seq INTEGER NOT NULL,
                hlc INTEGER NOT NULL, hash BLOB NOT NULL, body BLOB NOT NULL, sig BLOB, packed INTEGER);
            CREATE UNIQUE INDEX log_position ON log(origin, scope, seq);
            CREATE TABLE vector (
                origin INTEGER NOT NULL, scope INTEGER NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,
                PRIMARY KEY (origin, scope)) WITHOUT ROWID;
            CREATE TABLE pending_entry (
                origin BLOB NOT NULL, scope INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
                PRIMARY KEY (origin, scope, seq)) WITHOUT ROWID;
            CREATE TABLE row_version (
                tbl INTEGER NOT NULL, rid INTEGER NOT NULL, chg INTEGER NOT NULL, heads INTEGER NOT NULL,
                PRIMARY KEY (tbl, rid, chg)) WITHOUT ROWID;
            CREATE TABLE pending_supersede (
                origin INTEGER NOT NULL, scope INTEGER NOT NULL, seq INTEGER NOT NULL,
                tbl INTEGER NOT NULL, key BLOB NOT NULL, col INTEGER NOT NULL,
                PRIMARY KEY (origin, scope, seq, tbl, key, col)) WITHOUT ROWID;
            CREATE TABLE conflict (
                tbl INTEGER NOT NULL, rid INTEGER NOT NULL, col INTEGER NOT NULL,
                PRIMARY KEY (tbl, rid, col)) WITHOUT ROWID;
            """)
        try createLogBlocks(db)
        for table in schema.tables {
            try db.execute(sql: ddl(for: table))
        }
        try createMissingTables(db, schema: schema)
        try createLocalTables(db)
    }

    /// The table of packed log blocks (a rowid table: a block is kilobytes, which SQLite keeps
    /// whole in its page or in full overflow pages, where a WITHOUT ROWID table would not).
    static func createLogBlocks(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE log_block (id INTEGER PRIMARY KEY, origin INTEGER NOT NULL, scope INTEGER NOT NULL, first INTEGER NOT NULL, data BLOB NOT NULL);
            CREATE UNIQUE INDEX log_block_position ON log_block(origin, scope, first);
            CREATE TABLE log_packing (
                id INTEGER PRIMARY KEY, origin INTEGER, scope INTEGER, seq INTEGER, hlc INTEGER, hash BLOB, sig BLOB, packed INTEGER);
            """)
    }

    /// Tables that are this replica's own business and never replicate: its peers and its
    /// sync sessions. Created when missing, so replicas made before they existed gain them.
    static func createLocalTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS peer (name TEXT PRIMARY KEY NOT NULL, address TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS sync_session (
                id INTEGER PRIMARY KEY, peer TEXT, address TEXT NOT NULL, role TEXT NOT NULL, started_ms INTEGER NOT NULL,
                seconds REAL NOT NULL, direction TEXT NOT NULL, sent INTEGER NOT NULL, received INTEGER NOT NULL,
                raw_bytes INTEGER NOT NULL, wire_bytes INTEGER NOT NULL, conflicts INTEGER NOT NULL, outcome TEXT NOT NULL,
                peer_vector BLOB);
            CREATE INDEX IF NOT EXISTS sync_session_peer ON sync_session(peer, id);
            CREATE TABLE IF NOT EXISTS trust_pin (
                code TEXT PRIMARY KEY NOT NULL, fingerprint BLOB NOT NULL, own INTEGER NOT NULL, added_ms INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS directory_record (
                digest BLOB PRIMARY KEY NOT NULL, kind INTEGER NOT NULL, record BLOB NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS admin_event (
                id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS peer_vector (
                site BLOB PRIMARY KEY NOT NULL, vector BLOB NOT NULL, updated_ms INTEGER NOT NULL, source TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS peer_directory (
                site BLOB PRIMARY KEY NOT NULL, summary BLOB NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS bundle_expectation (
                id INTEGER PRIMARY KEY, bundle BLOB UNIQUE NOT NULL, vector BLOB NOT NULL, created_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS refusal (
                id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, source TEXT, origin BLOB NOT NULL, scope INTEGER NOT NULL,
                seq INTEGER NOT NULL, stored INTEGER NOT NULL, reason TEXT NOT NULL, UNIQUE (origin, scope, seq));
            """)
        if try !db.tableExists("directory_reading") {
            // What each held enrolment's certificates say, so reading the directory parses none
            // (``Enrolment/reading``); made for the records held when a replica made before it opens.
            try db.execute(sql: "CREATE TABLE directory_reading (digest BLOB PRIMARY KEY NOT NULL, reading BLOB NOT NULL) WITHOUT ROWID")
            try Replica.keepReadingsOfHeld(db, checkingSignatures: false)
        }
        let sessionColumns = try db.columns(in: "sync_session").map(\.name)
        if !sessionColumns.contains("refused") {
            try db.execute(sql: "ALTER TABLE sync_session ADD COLUMN refused INTEGER NOT NULL DEFAULT 0")
        }
        if !sessionColumns.contains("peer_site") {
            // The peer site's key, when the session got as far as its HELLO.
            try db.execute(sql: "ALTER TABLE sync_session ADD COLUMN peer_site BLOB")
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS sync_session_site ON sync_session(peer_site, id)")
        }
        if !sessionColumns.contains("peer_trust") {
            // The peer's trust as its HELLO said and its certificate proved (NULL before it was kept).
            try db.execute(sql: "ALTER TABLE sync_session ADD COLUMN peer_trust TEXT")
        }
    }

    /// Brings a replica file of schema `version` up to date: migrated when older, and given the
    /// local and replicated tables it lacks (a replica when opened, an older backup before it is
    /// read).
    static func bringUpToDate(_ db: Database, from version: Int, schema: ReplicatedSchema) throws {
        if version < Self.version { try migrate(db, from: version, schema: schema) }
        try createLocalTables(db)
        try createMissingTables(db, schema: schema)
    }

    /// Brings a replica made by an earlier version up to date, in one transaction. Version 1
    /// kept directory records in a table per kind and had no override signature column;
    /// version 2 kept every log body in its row (its entries stay so; blocks completed from now
    /// on are packed). An earlier build refuses a replica of a later version rather than read
    /// packed entries as empty.
    static func migrate(_ db: Database, from version: Int, schema: ReplicatedSchema) throws {
        if version < 2 {
            try createLocalTables(db)
            for table in schema.tables {
                let existing = Set(try db.columns(in: table.name).map(\.name))
                for column in table.columns where !existing.contains(column.name) {
                    try db.execute(sql: "ALTER TABLE \(table.name) ADD COLUMN \(column.name) \(column.type.sqlName)")
                }
            }
            for (old, kind) in [("enrolment", 1), ("revocation", 2), ("bundle_key", 3), ("trust_wide_pin", 4)] where try db.tableExists(old) {
                for record in try Data.fetchAll(db, sql: "SELECT record FROM \(old)") {
                    let digest = DirectoryRecord(kind: DirectoryRecord.Kind(rawValue: UInt8(kind))!, bytes: Array(record)).digest
                    try db.execute(sql: "INSERT OR IGNORE INTO directory_record (digest, kind, record) VALUES (?, ?, ?)",
                                   arguments: [Data(digest), kind, record])
                }
                try db.execute(sql: "DROP TABLE \(old)")
            }
            try Replica.keepReadingsOfHeld(db, checkingSignatures: false)
        }
        if version < 3 {
            try db.execute(sql: "ALTER TABLE log ADD COLUMN packed INTEGER")
            try createLogBlocks(db)
        }
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'schema_version'", arguments: [Self.version])
    }

    /// Creates the materialised tables of schema tables a replica made by an earlier version
    /// does not have yet (they start empty: no entry held can have written them).
    static func createMissingTables(_ db: Database, schema: ReplicatedSchema) throws {
        for table in schema.tables where try !db.tableExists(table.name) {
            try db.execute(sql: ddl(for: table))
        }
        for index in schema.indexes {
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS \(indexName(index)) ON \(index.table)(\(index.columns.joined(separator: ", ")))")
        }
        try createCounters(db, schema: schema)
    }

    /// The name of one of the schema's indexes for reads: `initiative_by_created_ms`.
    static func indexName(_ index: (table: String, columns: [String])) -> String {
        "\(index.table)_by_\(index.columns.joined(separator: "_"))"
    }

    /// Drops what only serves reads and `status` — the tables' secondary indexes and the
    /// triggers that keep the running counts — from a database that will only be rebuilt and
    /// compared (`verify`'s scratch): the rows, heads and conflicts it builds are the same
    /// without them, and keeping them up was a tenth of `verify`'s time at 112,000 entries.
    static func dropReadAids(_ db: Database, schema: ReplicatedSchema) throws {
        for index in schema.indexes {
            try db.execute(sql: "DROP INDEX IF EXISTS \(indexName(index))")
        }
        try db.execute(sql: "DROP TRIGGER IF EXISTS log_size_remove; DROP TRIGGER IF EXISTS log_size_rewrite")
        for table in schema.tables {
            try db.execute(sql: "DROP TRIGGER IF EXISTS \(table.name)_count_update; DROP TRIGGER IF EXISTS \(table.name)_count_delete")
        }
    }

    /// Running counts that `status` reads instead of scanning: each table's live and deleted
    /// rows and each log's entries and bytes, kept in the same transaction as the rows they
    /// count (`verify` checks them): inserts by the ``Materializer``, the only writer of new
    /// entries and rows, once per run (``Materializer/writeCounts()``); updates and deletes by
    /// triggers. Replicas made while inserts were counted by triggers lose those triggers when
    /// opened. Counted once when a replica made before the counts is first opened.
    static func createCounters(_ db: Database, schema: ReplicatedSchema) throws {
        let fresh = try !db.tableExists("log_size")
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS log_size (
                origin INTEGER NOT NULL, scope INTEGER NOT NULL, entries INTEGER NOT NULL, bytes INTEGER NOT NULL,
                PRIMARY KEY (origin, scope)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS row_count (tbl TEXT PRIMARY KEY NOT NULL, live INTEGER NOT NULL, deleted INTEGER NOT NULL) WITHOUT ROWID;
            DROP TRIGGER IF EXISTS log_size_insert;
            DROP TRIGGER IF EXISTS log_size_delete;
            DROP TRIGGER IF EXISTS log_size_update;
            CREATE TRIGGER IF NOT EXISTS log_size_remove AFTER DELETE ON log BEGIN
                UPDATE log_size SET entries = entries - 1, bytes = bytes - length(OLD.body) - coalesce(OLD.packed, 0)
                WHERE origin = OLD.origin AND scope = OLD.scope;
            END;
            CREATE TRIGGER IF NOT EXISTS log_size_rewrite AFTER UPDATE OF body, packed ON log BEGIN
                UPDATE log_size SET bytes = bytes - length(OLD.body) - coalesce(OLD.packed, 0) + length(NEW.body) + coalesce(NEW.packed, 0)
                WHERE origin = OLD.origin AND scope = OLD.scope;
            END;
            """)
        for table in schema.tables {
            let name = table.name
            try db.execute(sql: """
                DROP TRIGGER IF EXISTS \(name)_count_insert;
                CREATE TRIGGER IF NOT EXISTS \(name)_count_update AFTER UPDATE OF live ON \(name) WHEN OLD.live IS NOT NEW.live BEGIN
                    UPDATE row_count SET live = live + coalesce(NEW.live = 1, 0) - coalesce(OLD.live = 1, 0),
                        deleted = deleted + coalesce(NEW.live = 0, 0) - coalesce(OLD.live = 0, 0) WHERE tbl = '\(name)';
                END;
                CREATE TRIGGER IF NOT EXISTS \(name)_count_delete AFTER DELETE ON \(name) BEGIN
                    UPDATE row_count SET live = live - coalesce(OLD.live = 1, 0), deleted = deleted - coalesce(OLD.live = 0, 0) WHERE tbl = '\(name)';
                END;
                """)
        }
        guard fresh else { return }
        try db.execute(sql: """
            INSERT INTO log_size SELECT origin, scope, count(*), sum(length(body) + coalesce(packed, 0)) FROM log GROUP BY origin, scope;
            DELETE FROM row_count;
            """)
        for table in schema.tables {
            try db.execute(sql: "INSERT INTO row_count SELECT '\(table.name)', coalesce(sum(live = 1), 0), coalesce(sum(live = 0), 0) FROM \(table.name)")
        }
    }

    /// Where the running counts differ from the rows and entries they count (for `verify`).
    static func counterDifferences(_ db: Database, schema: ReplicatedSchema) throws -> [String] {
        var out: [String] = []
        for table in schema.tables {
            let counted = try Row.fetchOne(db, sql: "SELECT live, deleted FROM row_count WHERE tbl = ?", arguments: [table.name])
            let actual = try Row.fetchOne(db, sql: "SELECT coalesce(sum(live = 1), 0), coalesce(sum(live = 0), 0) FROM \(table.name)")!
            let (live, deleted) = (counted?[0] as Int? ?? 0, counted?[1] as Int? ?? 0)
            if live != actual[0] as Int || deleted != actual[1] as Int {
                out.append("counts: \(table.name) is counted as \(live) live and \(deleted) deleted, but holds \(actual[0] as Int) and \(actual[1] as Int)")
            }
        }
        let wrongLogs = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM (SELECT origin, scope, count(*) AS n, sum(length(body) + coalesce(packed, 0)) AS b FROM log GROUP BY origin, scope) AS actual
            LEFT JOIN log_size USING (origin, scope) WHERE log_size.entries IS NOT actual.n OR log_size.bytes IS NOT actual.b
            """) ?? 0
        if wrongLogs > 0 { out.append("counts: \(wrongLogs) logs' entry or byte counts differ from the entries held") }
        return out
    }

    static func ddl(for table: TableSpec) -> String {
        let columns = table.columns.map { "\($0.name) \($0.type.sqlName)" }
        switch table.kind {
        case .entity:
            return "CREATE TABLE \(table.name) (id BLOB NOT NULL UNIQUE, live INTEGER NOT NULL DEFAULT 0, "
                + "updated_hlc INTEGER NOT NULL DEFAULT 0, base_chg INTEGER, base_heads INTEGER" + columns.map { ", " + $0 }.joined() + ")"
        case .set:
            return "CREATE TABLE \(table.name) (parent BLOB NOT NULL, value TEXT NOT NULL, live INTEGER NOT NULL DEFAULT 0, "
                + "updated_hlc INTEGER NOT NULL DEFAULT 0, base_chg INTEGER, base_heads INTEGER, UNIQUE (parent, value))"
        }
    }

    /// The columns that identify a materialised row, in key order.
    static func keyColumns(of table: TableSpec) -> [String] {
        table.kind == .entity ? ["id"] : ["parent", "value"]
    }

    /// The values of a row key's columns.
    static func keyValues(_ key: [UInt8], of table: TableSpec) -> [Value] {
        switch table.kind {
        case .entity: return [.blob(key)]
        case .set: return [.blob(Array(key.prefix(16))), .text(String(decoding: key.dropFirst(16), as: UTF8.self))]
        }
    }
}
