import Foundation
import GRDB
import QISyncCore

/// What a backup file holds.
public struct BackupSummary: Sendable {
    /// The site it is a backup of, `TRUST/site`.
    public let site: String
    /// Logs and entries held.
    public let logs: Int
    public let entries: UInt64
    /// The newest entry's time (milliseconds since 1970), if any.
    public let newestMilliseconds: UInt64?
    /// Entries this site itself wrote, per log scope.
    public let ownEntries: [Scope: UInt64]
    /// The file's size in bytes.
    public let bytes: UInt64
}

extension Replica {
    /// Writes a consistent copy of this replica's database to `path` with SQLite's online
    /// backup, while it stays in use: to a temporary file beside `path`, made self-contained
    /// (no write-ahead log) and renamed into place, so `path` is never half written. An
    /// existing file is not replaced. The site and trust keys are not included.
    public func backup(to path: String) throws -> BackupSummary {
        let files = FileManager.default
        guard !files.fileExists(atPath: path) else { throw StoreError("\(path) already exists; choose a new file name (a backup never replaces a file)") }
        let url = URL(fileURLWithPath: path)
        let partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(UUID().uuidString)")
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { try? files.removeItem(atPath: partial.path + suffix) } }
        do {
            let copy = try DatabaseQueue(path: partial.path)
            try database.backup(to: copy)
            try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try copy.close()
        } catch let error as DatabaseError {
            throw StoreError("could not write the backup \(path): \(error.message ?? "\(error)")")
        }
        try? files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: partial.path)
        guard link(partial.path, path) == 0 else {
            throw StoreError("could not write the backup \(path): \(String(cString: strerror(errno)))")
        }
        return try summary(ofBackup: path)
    }

    /// Opens a backup file read-only, checks it is a replica of this site, and hands it to
    /// `body`. A backup made by an earlier version of qisync (an older schema) is brought up to
    /// date in a copy beside the replica first, removed afterwards (or when the replica is next
    /// opened, if a crash left it): a backup stays restorable after an upgrade.
    private func withBackup<T>(_ path: String, _ body: (DatabaseQueue, ReplicaIdentity) throws -> T) throws -> T {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path) does not exist") }
        var queue: DatabaseQueue
        let meta: [String: DatabaseValue]
        do {
            queue = try DatabaseQueue(path: path, configuration: Self.configuration(readonly: true))
            meta = try queue.read { db in
                try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, value FROM meta").map { ($0[0] as String, $0[1] as DatabaseValue) })
            }
        } catch let error as DatabaseError {
            throw StoreError("\(path) is not a qisync backup (\(error.message ?? "unreadable"))")
        }
        guard let version = Int.fromDatabaseValue(meta["schema_version"] ?? .null), (1...StoreSchema.version).contains(version) else {
            throw StoreError("\(path) was made by another version of qisync (schema \(meta["schema_version"]?.description ?? "?"), this one reads 1 to \(StoreSchema.version))")
        }
        guard let origin = Data.fromDatabaseValue(meta["origin"] ?? .null), Array(origin) == identity.origin.bytes else {
            let site = String.fromDatabaseValue(meta["site"] ?? .null) ?? "?"
            let trust = String.fromDatabaseValue(meta["trust"] ?? .null) ?? "?"
            try? queue.close()
            throw StoreError("\(path) is a backup of \(trust)/\(site), another site; a replica restores only its own backups")
        }
        let backupIdentity = ReplicaIdentity(trustCode: identity.trustCode, trustName: String.fromDatabaseValue(meta["trust_name"] ?? .null) ?? "",
                                             siteName: identity.siteName, kind: identity.kind, origin: identity.origin)
        var upgraded: String?
        defer {
            try? queue.close()
            if let upgraded { for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: upgraded + suffix) } }
        }
        if version < StoreSchema.version {
            try queue.close()
            let copy = home.appendingPathComponent("\(Self.scratchPrefix)backup-\(UUID().uuidString).sqlite").path
            upgraded = copy
            do {
                try FileManager.default.copyItem(atPath: path, toPath: copy)
                queue = try DatabaseQueue(path: copy)
                try queue.write { db in try StoreSchema.bringUpToDate(db, from: version, schema: schema) }
            } catch let error as DatabaseError {
                throw StoreError("\(path), made by an earlier version of qisync, could not be brought up to date (\(error.message ?? "\(error)"))")
            }
        }
        return try body(queue, backupIdentity)
    }

    /// What a backup of this site holds.
    public func summary(ofBackup path: String) throws -> BackupSummary {
        try withBackup(path) { queue, _ in try queue.read { db in
            let vector = try Self.versionVector(db)
            let newest = try Int64.fetchOne(db, sql: "SELECT max(hlc) FROM log").map { HLC(rawValue: UInt64(bitPattern: $0)).milliseconds }
            var own: [Scope: UInt64] = [:]
            for scope in Scope.allCases { own[scope] = vector.seq(of: LogID(origin: identity.origin, scope: scope)) }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
            return BackupSummary(site: "\(identity.trustCode)/\(identity.siteName)", logs: vector.positions.count,
                                 entries: vector.positions.values.reduce(0) { $0 + $1.seq }, newestMilliseconds: newest, ownEntries: own, bytes: size)
        } }
    }

    /// Checks a backup of this site as `verify` checks a replica: SQLite's integrity, every
    /// chain and signature, and its tables against a rebuild from its logs.
    public func verifyBackup(_ path: String) throws -> VerifyReport {
        try withBackup(path) { queue, backupIdentity in try verifyBackup(queue, identity: backupIdentity) }
    }

    private func verifyBackup(_ queue: DatabaseQueue, identity backupIdentity: ReplicaIdentity) throws -> VerifyReport {
        try Replica(home: home, identity: backupIdentity, schema: schema, signer: signer, database: queue, now: now).verify()
    }

    /// Replaces this replica's content with a checked backup of it, with SQLite's backup
    /// (other connections see the restored content at once). Writes are then held until a
    /// sync or receipt shows no peer holds entries this site wrote after the backup (writing
    /// before that would fork this site's logs, and peers would refuse what follows).
    public func restore(from path: String) throws {
        try withBackup(path) { queue, backupIdentity in
            let report = try verifyBackup(queue, identity: backupIdentity)
            guard report.isSound else {
                throw StoreError("\(path) is damaged: " + (report.logProblems + report.directoryProblems + report.differences + (report.integrity == "ok" ? [] : [report.integrity])).prefix(3).joined(separator: "; "))
            }
            try database.restore(from: queue)
        }
        try database.write { db in
            try StoreSchema.createLocalTables(db)
            // A new directory version, so no process keeps a directory it read before the restore.
            try bumpDirectoryVersion(db)
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('writes_held', ?)", arguments: [Int64(bitPattern: now())])
            try recordAdminEvent(db, kind: "restore", subject: (path as NSString).lastPathComponent,
                                 detail: "restored from \(path); writes held until a sync shows no newer entries of this site elsewhere")
        }
        directoryCache.clear()
    }

    /// When writes were held after a restore (milliseconds since 1970), or nil.
    public func writesHeldSince() throws -> UInt64? {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'writes_held'") }.map { UInt64(bitPattern: $0) }
    }

    /// Lets writes resume after a restore; `reason` says why (recorded for `audit`).
    public func resumeWrites(reason: String) throws {
        try database.write { db in
            guard try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'writes_held'") != nil else { return }
            try db.execute(sql: "DELETE FROM meta WHERE key = 'writes_held'")
            try recordAdminEvent(db, kind: "writes resumed", subject: "\(identity.trustCode)/\(identity.siteName)", detail: reason)
        }
    }

    /// Resumes writes held after a restore once a peer's vector shows it holds no entry of
    /// this site's logs that this replica lacks.
    func resumeWritesIfCaughtUp(with peerVector: VersionVector, peer: String) throws {
        guard try writesHeldSince() != nil else { return }
        let ours = try versionVector()
        let behind = Scope.allCases.contains { scope in
            let log = LogID(origin: identity.origin, scope: scope)
            return peerVector.seq(of: log) > ours.seq(of: log)
        }
        if !behind { try resumeWrites(reason: "\(peer) holds nothing of this site's logs that it lacks") }
    }
}
