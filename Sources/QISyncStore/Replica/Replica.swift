import Foundation
import CSQLiteSettings
import GRDB
import QISyncCore
import QISyncIdentity

/// One replica: a SQLite file of origin logs and materialised tables, and the site's signing key.
///
/// Every write goes through ``write(_:)`` and becomes one signed log entry; entries from
/// other replicas come in through ``apply(_:)``. Both run in one SQLite transaction each.
public final class Replica: Sendable {
    /// The folder that holds the replica.
    public let home: URL
    /// Who this replica is.
    public let identity: ReplicaIdentity
    /// The tables it materialises.
    public let schema: ReplicatedSchema
    let signer: SiteSigner
    let database: ReplicaDatabase
    let now: @Sendable () -> UInt64
    let directoryCache = DirectoryCache()
    let vectorCache = VectorCache()
    /// Sync sessions taking in batches now (``beginReceivingBatches()``).
    let receiving = UseCount()
    /// Checkpoints the write-ahead log beside the applying while batches are taken in.
    let checkpointer = WALCheckpointer.Slot()
    /// Warnings about the key files found when the replica was opened (readable by others).
    public let keyWarnings: [String]

    /// The database file's name inside the home folder.
    public static let databaseName = "replica.sqlite"
    /// The site key file's name inside the home folder.
    public static let keyName = "site.key"

    /// The replicated table of sites, which every schema includes as table 1.
    public static let siteTable = TableSpec(id: 1, name: "site", columns: [
        ColumnSpec(1, "trust", .text(maxLength: 5)),
        ColumnSpec(2, "trust_name", .text(maxLength: 200)),
        ColumnSpec(3, "name", .text(maxLength: 100)),
        ColumnSpec(4, "kind", .text(maxLength: 8)),
    ], ownership: .originKey)

    /// The wall clock in milliseconds since 1970.
    public static let systemClock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }

    init(home: URL, identity: ReplicaIdentity, schema: ReplicatedSchema, signer: SiteSigner, database: DatabaseQueue,
                 now: @escaping @Sendable () -> UInt64, keyWarnings: [String] = []) {
        self.keyWarnings = keyWarnings
        self.home = home
        self.identity = identity
        self.schema = schema
        self.signer = signer
        self.database = ReplicaDatabase(database)
        self.now = now
        // A window's entries are written unsigned; the last of each log is signed as it commits,
        // and its signature covers the rest through the hash chain (SPEC section 3).
        self.database.beforeWindowCommit = { [signer, origin = identity.origin] db in
            try Self.signLogTails(db, origin: origin, signer: signer)
        }
    }

    /// The path of the database file this replica's connection has open: `replica.sqlite` in
    /// its home, or the backup `restore` checks through a replica built on it.
    public var databasePath: String { database.queue.path }

    /// Process-wide SQLite settings, made before SQLite is first used: its memory statistics
    /// off (nothing here reads them, and they took a mutex on every allocation and free: a
    /// twentieth of a bundle import's applying thread).
    private static let processSettings: Void = { _ = qisync_sqlite_disable_memory_statistics() }()

    static func configuration(readonly: Bool = false) -> Configuration {
        Self.processSettings
        var configuration = Configuration()
        configuration.readonly = readonly
        configuration.busyMode = .timeout(10)
        // A script's write window keeps one transaction open across accesses (ReplicaDatabase).
        configuration.allowsUnsafeTransactions = true
        configuration.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
        }
        return configuration
    }

    /// Creates a new replica in `home` with the site key `signer` (a new one by default), and
    /// records the site in its shared log. A founding site (a trust's hub) keeps the trust
    /// key beside the replica and enrols itself; a joining site pins its trust's fingerprint
    /// and waits for its hub to enrol it.
    public static func create(
        home: URL, trustCode: String, trustName: String, siteName: String, kind: SiteKind,
        schema: ReplicatedSchema, signer: SiteSigner = SiteSigner(), membership: TrustMembership = .founding(TrustKey()),
        now: @escaping @Sendable () -> UInt64 = systemClock
    ) throws -> Replica {
        try ReplicaIdentity.validateTrustCode(trustCode)
        // A joining site may leave the name empty: it takes its hub's.
        let joining: Bool
        if case .joining = membership { joining = true } else { joining = false }
        guard joining || !trustName.trimmingCharacters(in: .whitespaces).isEmpty, Value.length(of: trustName) <= 200 else {
            throw StoreError("the trust name must be 1 to 200 characters")
        }
        guard !siteName.isEmpty, Value.length(of: siteName) <= 100 else { throw StoreError("the site name must be 1 to 100 characters") }
        let files = FileManager.default
        let databaseURL = home.appendingPathComponent(databaseName)
        if files.fileExists(atPath: databaseURL.path) {
            throw StoreError("a replica already exists at \(home.path); use it, or choose another folder with --home")
        }
        try files.createDirectory(at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let keyURL = home.appendingPathComponent(keyName)
        do { try SecretFile.create(keyURL, bytes: signer.rawRepresentation) } catch { throw StoreError(error.message) }
        let identity = ReplicaIdentity(trustCode: trustCode, trustName: trustName, siteName: siteName, kind: kind, origin: signer.origin)
        let trustKeyURL = home.appendingPathComponent(TrustKey.fileName)
        var wroteTrustKey = false
        do {
            if case .founding(let trustKey) = membership {
                try trustKey.write(to: trustKeyURL)
                wroteTrustKey = true
            }
            let database = try DatabaseQueue(path: databaseURL.path, configuration: configuration())
            try database.write { db in
                try StoreSchema.create(db, schema: schema)
                let meta: [(String, DatabaseValueConvertible)] = [
                    ("schema_version", StoreSchema.version), ("trust", trustCode), ("trust_name", trustName),
                    ("site", siteName), ("kind", kind.rawValue), ("origin", Data(signer.origin.bytes)), ("hlc", 0),
                ]
                for (key, value) in meta {
                    try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
                }
            }
            let replica = Replica(home: home, identity: identity, schema: schema, signer: signer, database: database, now: now)
            switch membership {
            case .founding(let trustKey):
                try database.write { db in try replica.pin(db, code: trustCode, fingerprint: trustKey.fingerprint, own: true) }
                let request = EnrolmentRequest(trustCode: trustCode, siteName: siteName, kind: kind.rawValue, signer: signer)
                let enrolment = try Enrolment.issue(request: request, issued: Date(timeIntervalSince1970: Double(now() / 1000)), by: trustKey)
                try replica.importDirectory([enrolment.record, TrustBundleKey(trustKey: trustKey).record])
            case .joining(let fingerprint):
                try database.write { db in try replica.pin(db, code: trustCode, fingerprint: fingerprint, own: true) }
            }
            try replica.write(scope: kind.siteRowScope, edits: [RowEdit(table: siteTable.id, key: signer.origin.bytes, values: [
                (0, .integer(1)), (1, .text(trustCode)), (2, .text(trustName)), (3, .text(siteName)), (4, .text(kind.rawValue)),
            ])])
            return replica
        } catch {
            try? files.removeItem(at: databaseURL)
            try? files.removeItem(at: keyURL)
            if wroteTrustKey { try? files.removeItem(at: trustKeyURL) }
            throw error
        }
    }

    /// Opens the replica in `home`.
    public static func open(home: URL, schema: ReplicatedSchema, now: @escaping @Sendable () -> UInt64 = systemClock) throws -> Replica {
        let databaseURL = home.appendingPathComponent(databaseName)
        guard FileManager.default.fileExists(atPath: databaseURL.path) else {
            throw StoreError("no replica at \(home.path): create one with 'qisync init --trust CODE --trust-name NAME --site NAME', or point --home (or QISYNC_HOME) at an existing one")
        }
        let keyFile: (bytes: [UInt8], warning: String?)
        do { keyFile = try SecretFile.read(home.appendingPathComponent(keyName)) } catch {
            throw StoreError("the site key \(home.appendingPathComponent(keyName).path) is missing or unreadable")
        }
        let signer = try SiteSigner(rawRepresentation: keyFile.bytes)
        var warnings = keyFile.warning.map { [$0] } ?? []
        if let trustKey = try? TrustKey.readWithWarning(home: home), let warning = trustKey.warning { warnings.append(warning) }
        let database = try DatabaseQueue(path: databaseURL.path, configuration: configuration())
        let meta: [String: DatabaseValue]
        do {
            meta = try database.read { db in
                try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, value FROM meta").map { ($0[0] as String, $0[1] as DatabaseValue) })
            }
        } catch let error as DatabaseError {
            throw StoreError("\(databaseURL.path) is not a qisync replica (\(error.message ?? "unreadable"))")
        }
        guard let version = Int.fromDatabaseValue(meta["schema_version"] ?? .null), (1...StoreSchema.version).contains(version) else {
            throw StoreError("\(databaseURL.path) is not a qisync replica of schema version \(StoreSchema.version) (this build reads versions 1 to \(StoreSchema.version))")
        }
        guard let originData = Data.fromDatabaseValue(meta["origin"] ?? .null), Array(originData) == signer.origin.bytes else {
            throw StoreError("the site key in \(home.path) does not belong to this replica")
        }
        try database.write { db in try StoreSchema.bringUpToDate(db, from: version, schema: schema) }
        let identity = ReplicaIdentity(
            trustCode: String.fromDatabaseValue(meta["trust"] ?? .null) ?? "",
            trustName: String.fromDatabaseValue(meta["trust_name"] ?? .null) ?? "",
            siteName: String.fromDatabaseValue(meta["site"] ?? .null) ?? "",
            kind: SiteKind(rawValue: String.fromDatabaseValue(meta["kind"] ?? .null) ?? "") ?? .ward,
            origin: signer.origin)
        var replica = Replica(home: home, identity: identity, schema: schema, signer: signer, database: database, now: now, keyWarnings: warnings)
        replica.removeScratchFiles()
        // A site that joined its trust takes the trust's name from the hub once it holds the
        // hub's record (the name typed at 'init --join' may differ, or be missing).
        if identity.kind != .hub || (try? replica.trustKey()) == nil, let (_, name) = try? replica.adoptHubTrustName() {
            let renamed = ReplicaIdentity(trustCode: identity.trustCode, trustName: name, siteName: identity.siteName, kind: identity.kind, origin: identity.origin)
            replica = Replica(home: home, identity: renamed, schema: schema, signer: signer, database: database, now: now, keyWarnings: warnings)
        }
        return replica
    }

    /// Reads, from one snapshot. (For people's own SQL, `ReadOnlyQuery` opens a read-only connection.)
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try database.read(body)
    }

    /// Runs `body` with its writes in one transaction (a write window), committed when it
    /// returns or throws: each write stays atomic (a failed write leaves nothing, the writes
    /// before it stand), and a sync or server on another thread waits until the window commits,
    /// so nothing uncommitted is ever sent or acknowledged. For scripts; keep windows short.
    /// If the commit fails, none of the window's writes are kept and the error is thrown.
    public func writeWindow<T>(_ body: () throws -> T) throws -> T {
        try database.window(body)
    }

    /// Signs the last entry of each of this site's logs when it is unsigned (written in a window).
    static func signLogTails(_ db: Database, origin: OriginID, signer: SiteSigner) throws {
        for scope in Scope.allCases {
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT log.id, log.hash FROM log JOIN origin ON origin.id = log.origin
                WHERE origin.key = ? AND log.scope = ? AND log.sig IS NULL
                  AND log.seq = (SELECT max(seq) FROM log l2 WHERE l2.origin = origin.id AND l2.scope = ?)
                """), arguments: [Data(origin.bytes), Int64(scope.rawValue), Int64(scope.rawValue)]) else { continue }
            let id: Int64 = row[0]
            let hash = Array(row[1] as Data)
            try db.cachedStatement(sql: "UPDATE log SET sig = ? WHERE id = ?").execute(arguments: [Data(signer.sign(hash)), id])
        }
    }
}

/// How many users something has; `begin` says whether this is the first, `end` the last.
final class UseCount: @unchecked Sendable {
    // The lock guards `count`.
    private let lock = NSLock()
    private var count = 0

    func begin() -> Bool { lock.withLock { count += 1; return count == 1 } }
    func end() -> Bool { lock.withLock { count = max(0, count - 1); return count == 0 } }
}
