import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

/// How a new replica belongs to its trust.
public enum TrustMembership: Sendable {
    /// The trust's first site (its hub): this key becomes the trust key, kept in `trust.key`
    /// beside the replica, and the site enrols itself.
    case founding(TrustKey)
    /// A site joining an existing trust whose key has this fingerprint; its hub must enrol it.
    case joining(KeyFingerprint)
}

/// A trust pinned by this replica.
public struct TrustPin: Equatable, Sendable {
    /// The trust's ODS code.
    public let code: String
    /// Its key's fingerprint.
    public let fingerprint: KeyFingerprint
    /// Whether it is this replica's own trust.
    public let isOwn: Bool
    /// How many of its sites are enrolled here.
    public let sites: Int
    /// Whether it is pinned by the trust's hub for all its sites, not on this replica itself.
    public var isTrustWide = false
}

/// An entry or change this replica refused, for `audit`.
public struct Refusal: Equatable, Sendable {
    /// When (milliseconds since 1970).
    public let milliseconds: UInt64
    /// Where it came from (a peer's name or address, or a bundle), when known.
    public let source: String?
    /// The log entry.
    public let ref: VersionRef
    /// Whether the entry was kept in its log (with its changes left out) or not kept at all.
    public let stored: Bool
    /// Why.
    public let reason: String
}

/// What importing directory records did.
public struct DirectoryImport: Equatable, Sendable {
    /// Records new to this replica and kept.
    public var added = 0
    /// Records already held.
    public var known = 0
    /// Records not kept, with why (an unpinned trust, a bad signature).
    public var ignored: [String] = []
}

extension Replica {
    // MARK: Reading the directory

    /// Everything this replica knows about trusts and sites.
    public func directory() throws -> TrustDirectory {
        try database.read { db in try directory(db) }
    }

    /// The directory as of `db`'s transaction. Reading and verifying every certificate costs
    /// time, so the result is kept until the directory's version (bumped by every change, in
    /// this process or another) moves on.
    func directory(_ db: Database) throws -> TrustDirectory {
        let version = try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'directory_version'")) ?? 0
        if let cached = directoryCache.value(for: version) { return cached }
        let directory = try loadDirectory(db)
        directoryCache.store(directory, for: version)
        return directory
    }

    /// Marks the directory changed, inside the transaction that changes it. The new version is
    /// random, not the next number: a change rolled back (a preview) must not leave behind a
    /// cached directory that a later, different change would seem to match.
    func bumpDirectoryVersion(_ db: Database) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('directory_version', ?)",
                       arguments: [Int64.random(in: 1...Int64.max)])
    }

    private func loadDirectory(_ db: Database) throws -> TrustDirectory {
        var directory = TrustDirectory(ownTrust: identity.trustCode, ownSite: identity.origin)
        var pins: [String: KeyFingerprint] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT code, fingerprint FROM trust_pin") {
            pins[row[0]] = try KeyFingerprint(bytes: Array(row[1] as Data))
        }
        // The hub's decisions for the whole trust, signed by the trust key (the latest per code
        // wins); a pin made on this replica itself stands whatever the hub decided.
        let ownKey = pins[identity.trustCode]
        var decided: [String: TrustWidePin] = [:]
        for data in try Data.fetchAll(db, sql: "SELECT record FROM trust_wide_pin ORDER BY at_ms") {
            let pin = try TrustWidePin(record: DirectoryRecord(kind: .trustPin, bytes: Array(data)))
            if pin.trustFingerprint == ownKey { decided[pin.code] = pin }
        }
        for (code, pin) in decided where pins[code] == nil && code != identity.trustCode && pin.pinned {
            pins[code] = pin.fingerprint
        }
        directory.pins = pins
        for data in try Data.fetchAll(db, sql: "SELECT record FROM enrolment") {
            let enrolment = try Enrolment(record: DirectoryRecord(kind: .enrolment, bytes: Array(data)))
            directory.enrolments[enrolment.site] = enrolment
        }
        for data in try Data.fetchAll(db, sql: "SELECT record FROM revocation") {
            let revocation = try Revocation(record: DirectoryRecord(kind: .revocation, bytes: Array(data)))
            directory.revocations[revocation.site] = revocation
        }
        for data in try Data.fetchAll(db, sql: "SELECT record FROM bundle_key") {
            let key = try TrustBundleKey(record: DirectoryRecord(kind: .bundleKey, bytes: Array(data)))
            directory.bundleKeys[key.trustFingerprint] = key
        }
        return directory
    }

    /// The directory records held, to pass on to a peer.
    public func directoryRecords() throws -> [DirectoryRecord] {
        try database.read { db in
            try Data.fetchAll(db, sql: "SELECT record FROM enrolment ORDER BY site").map { DirectoryRecord(kind: .enrolment, bytes: Array($0)) }
                + Data.fetchAll(db, sql: "SELECT record FROM revocation ORDER BY site").map { DirectoryRecord(kind: .revocation, bytes: Array($0)) }
                + Data.fetchAll(db, sql: "SELECT record FROM bundle_key ORDER BY fingerprint").map { DirectoryRecord(kind: .bundleKey, bytes: Array($0)) }
                + Data.fetchAll(db, sql: "SELECT record FROM trust_wide_pin ORDER BY code, at_ms").map { DirectoryRecord(kind: .trustPin, bytes: Array($0)) }
        }
    }

    /// The digest of the directory records held (``DirectoryRecord/digest(of:)``).
    public func directoryDigest() throws -> [UInt8] { DirectoryRecord.digest(of: try directoryRecords()) }

    /// The trusts pinned here, own trust first, then those pinned here, then those the hub pinned
    /// for the whole trust.
    public func trustPins() throws -> [TrustPin] {
        let directory = try directory()
        let local = try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT code, trust_pin.fingerprint, own, (SELECT count(*) FROM enrolment WHERE enrolment.trust = trust_pin.code
                    AND enrolment.fingerprint = trust_pin.fingerprint) FROM trust_pin ORDER BY own DESC, code
                """).map { row in
                TrustPin(code: row[0], fingerprint: try KeyFingerprint(bytes: Array(row[1] as Data)), isOwn: row[2], sites: row[3])
            }
        }
        let wide = directory.pins.filter { code, _ in !local.contains { $0.code == code } }.sorted { $0.key < $1.key }.map { code, fingerprint in
            var pin = TrustPin(code: code, fingerprint: fingerprint, isOwn: false,
                               sites: directory.enrolments.values.filter { $0.trustCode == code && $0.trustFingerprint == fingerprint }.count)
            pin.isTrustWide = true
            return pin
        }
        return local + wide
    }

    /// This site's own enrolment, once it holds it.
    public func ownEnrolment() throws -> Enrolment? { try directory().enrolments[identity.origin] }

    /// This trust's public directory records (its sites' enrolments and its bundle key), for
    /// another trust to take in when it pins this one, so it can seal a first bundle to it.
    public func trustCard() throws -> [DirectoryRecord] {
        let directory = try directory()
        guard let own = directory.pins[identity.trustCode] else { return [] }
        return directory.enrolments.values.filter { $0.trustFingerprint == own }.sorted { $0.siteName < $1.siteName }.map(\.record)
            + (directory.bundleKeys[own].map { [$0.record] } ?? [])
    }

    /// Whether a site is its trust's hub: this site by its own kind, another by its enrolment.
    func isHub(_ site: OriginID, in directory: TrustDirectory) -> Bool {
        site == identity.origin ? identity.kind == .hub : directory.enrolments[site]?.kind == SiteKind.hub.rawValue
    }

    /// This site's request to be enrolled by its hub.
    public func enrolmentRequest() -> EnrolmentRequest {
        EnrolmentRequest(trustCode: identity.trustCode, siteName: identity.siteName, kind: identity.kind.rawValue, signer: signer)
    }

    /// The trust key, on the hub that holds it.
    public func trustKey() throws -> TrustKey? { try TrustKey.read(home: home) }

    /// What this site presents in the TLS handshake.
    public func credentials() throws -> SiteCredentials {
        try SiteCredentials(signer: signer, enrolment: try ownEnrolment(), trustCode: identity.trustCode,
                            siteName: identity.siteName, kind: identity.kind.rawValue)
    }

    /// Entries and changes refused here, newest first.
    public func refusals(limit: Int = 1000) throws -> [Refusal] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT at_ms, source, origin, scope, seq, stored, reason FROM refusal ORDER BY id DESC LIMIT ?",
                             arguments: [limit]).map { row in
                Refusal(milliseconds: UInt64(bitPattern: row[0]), source: row[1],
                        ref: VersionRef(origin: try OriginID(bytes: Array(row[2] as Data)), scope: Scope(rawValue: UInt8(row[3] as Int64)) ?? .trust,
                                        seq: UInt64(bitPattern: row[4])),
                        stored: row[5], reason: row[6])
            }
        }
    }

    // MARK: Changing the directory

    /// Verifies directory records (from a peer or a file) and keeps those of trusts pinned here.
    @discardableResult
    public func importDirectory(_ records: [DirectoryRecord]) throws -> DirectoryImport {
        try database.write { db in try importDirectory(db, records) }
    }

    func importDirectory(_ db: Database, _ records: [DirectoryRecord]) throws -> DirectoryImport {
        var result = DirectoryImport()
        // The trust's own pin decisions first: they decide which other trusts' records to keep.
        let decisions = records.filter { $0.kind == .trustPin }
        var current = try directory(db)
        for record in decisions { try keep(db, record, current: current, result: &result) }
        if !decisions.isEmpty {
            try bumpDirectoryVersion(db)
            current = try directory(db)
        }
        for record in records where record.kind != .trustPin { try keep(db, record, current: current, result: &result) }
        if result.added > 0 { try bumpDirectoryVersion(db) }
        return result
    }

    /// Verifies one record against the directory as it was and keeps it when its trust is pinned.
    private func keep(_ db: Database, _ record: DirectoryRecord, current: TrustDirectory, result: inout DirectoryImport) throws {
        do {
            switch record.kind {
            case .enrolment:
                let enrolment = try Enrolment(record: record)
                guard current.isPinned(enrolment) else {
                    throw IdentityError("the enrolment of \(enrolment.trustCode)/\(enrolment.siteName) is for a trust not pinned here with that key")
                }
                try db.execute(sql: "INSERT OR IGNORE INTO enrolment (site, trust, fingerprint, name, kind, record) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [Data(enrolment.site.bytes), enrolment.trustCode, Data(enrolment.trustFingerprint.bytes),
                                           enrolment.siteName, enrolment.kind, Data(record.bytes)])
            case .revocation:
                let revocation = try Revocation(record: record)
                guard current.isPinned(revocation) else { throw IdentityError("a revocation signed by a key not pinned here") }
                try db.execute(sql: "INSERT OR IGNORE INTO revocation (site, fingerprint, revoked_ms, record) VALUES (?, ?, ?, ?)",
                               arguments: [Data(revocation.site.bytes), Data(revocation.trustFingerprint.bytes),
                                           Int64(bitPattern: revocation.revokedMilliseconds), Data(record.bytes)])
            case .trustPin:
                let pin = try TrustWidePin(record: record)
                // Only this trust's own decisions matter here; others' are not kept.
                guard let own = current.pins[identity.trustCode], pin.trustFingerprint == own else {
                    throw IdentityError("a trust pin made by another trust")
                }
                try db.execute(sql: "INSERT OR IGNORE INTO trust_wide_pin (code, at_ms, record) VALUES (?, ?, ?)",
                               arguments: [pin.code, Int64(bitPattern: pin.milliseconds), Data(record.bytes)])
            case .bundleKey:
                let key = try TrustBundleKey(record: record)
                guard current.pins.values.contains(key.trustFingerprint) else { throw IdentityError("a bundle key signed by a key not pinned here") }
                try db.execute(sql: "INSERT OR IGNORE INTO bundle_key (fingerprint, record) VALUES (?, ?)",
                               arguments: [Data(key.trustFingerprint.bytes), Data(record.bytes)])
            }
            if db.changesCount > 0 { result.added += 1 } else { result.known += 1 }
        } catch let error as IdentityError {
            result.ignored.append(error.message)
        }
    }

    func pin(_ db: Database, code: String, fingerprint: KeyFingerprint, own: Bool) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO trust_pin (code, fingerprint, own, added_ms) VALUES (?, ?, ?, ?)",
                       arguments: [code, Data(fingerprint.bytes), own, Int64(bitPattern: now())])
        try bumpDirectoryVersion(db)
    }

    /// Pins another trust by its key's fingerprint, read out by that trust's administrator.
    public func pinTrust(code: String, fingerprint: KeyFingerprint) throws {
        try ReplicaIdentity.validateTrustCode(code)
        guard code != identity.trustCode else {
            throw StoreError("\(code) is this replica's own trust; its key was fixed when the replica was made")
        }
        try database.write { db in
            try pin(db, code: code, fingerprint: fingerprint, own: false)
            try decideForTrust(db, code: code, fingerprint: fingerprint, pinned: true)
        }
    }

    /// On the hub, records a trust-wide decision (signed by the trust key) that the trust's
    /// other sites follow when it reaches them.
    private func decideForTrust(_ db: Database, code: String, fingerprint: KeyFingerprint, pinned: Bool) throws {
        guard let trustKey = try trustKey() else { return }
        let pin = TrustWidePin(code: code, fingerprint: fingerprint, pinned: pinned, at: now(), by: trustKey)
        _ = try importDirectory(db, [pin.record])
    }

    /// Stops accepting a trust: its sites can no longer connect and new entries from them are refused.
    /// What was already accepted stays.
    public func unpinTrust(code: String) throws {
        guard code != identity.trustCode else { throw StoreError("\(code) is this replica's own trust and cannot be removed") }
        try database.write { db in
            let fingerprint = try Data.fetchOne(db, sql: "SELECT fingerprint FROM trust_pin WHERE code = ?", arguments: [code])
            try db.execute(sql: "DELETE FROM trust_pin WHERE code = ?", arguments: [code])
            guard db.changesCount > 0, let fingerprint else {
                throw StoreError("trust \(code) is not pinned here\(try directory(db).pins[code] != nil ? " itself: the hub pinned it for the whole trust ('trust remove' there)" : ""); 'qisync trust list' shows those that are")
            }
            try bumpDirectoryVersion(db)
            try decideForTrust(db, code: code, fingerprint: try KeyFingerprint(bytes: Array(fingerprint)), pinned: false)
        }
    }

    /// The hub enrols a site of its own trust from the site's request and keeps the enrolment;
    /// it reaches every replica through sync, or as a file (``Enrolment/fileText(with:)``).
    public func enrol(_ request: EnrolmentRequest) throws -> Enrolment {
        guard let trustKey = try trustKey() else {
            throw StoreError("only the hub that holds the trust key (\(home.appendingPathComponent(TrustKey.fileName).path)) can enrol sites")
        }
        guard request.trustCode == identity.trustCode else {
            throw StoreError("the request is to join trust \(request.trustCode); this hub enrols sites of \(identity.trustCode)")
        }
        let enrolment = try Enrolment.issue(site: request.site, siteName: request.siteName, kind: request.kind,
                                            trustCode: identity.trustCode, by: trustKey)
        try database.write { db in
            if let existing = try Data.fetchOne(db, sql: "SELECT site FROM revocation WHERE site = ?", arguments: [Data(request.site.bytes)]), !existing.isEmpty {
                throw StoreError("site key \(request.siteFingerprint) was revoked and cannot be enrolled again; the site must make a new key ('qisync init --join')")
            }
            try db.execute(sql: "DELETE FROM enrolment WHERE site = ?", arguments: [Data(request.site.bytes)])
            try bumpDirectoryVersion(db)
            let report = try importDirectory(db, [enrolment.record])
            guard report.ignored.isEmpty else { throw StoreError(report.ignored.joined(separator: "; ")) }
        }
        return enrolment
    }

    /// Takes in this site's own enrolment, carried by hand from the hub.
    public func acceptEnrolment(_ enrolment: Enrolment) throws {
        guard enrolment.site == identity.origin else {
            throw StoreError("this enrolment is for site key \(KeyFingerprint(publicKey: enrolment.site.bytes)), not this site's (\(KeyFingerprint(publicKey: identity.origin.bytes)))")
        }
        let report = try importDirectory([enrolment.record])
        guard report.ignored.isEmpty else {
            throw StoreError("the enrolment was signed by a trust key whose fingerprint (\(enrolment.trustFingerprint)) is not the one this site joined with")
        }
    }

    /// The hub revokes a site of its trust: entries it appended after what this hub holds are
    /// refused everywhere the revocation reaches, and it can no longer connect.
    public func revoke(site: OriginID) throws -> Revocation {
        guard let trustKey = try trustKey() else { throw StoreError("only the hub that holds the trust key can revoke sites") }
        guard site != identity.origin else { throw StoreError("a hub cannot revoke itself") }
        return try database.write { db in
            let directory = try directory(db)
            guard let enrolment = directory.enrolments[site], enrolment.trustCode == identity.trustCode else {
                throw StoreError("site \(site.short) is not an enrolled site of \(identity.trustCode)")
            }
            var cut: [Scope: LogPosition] = [:]
            for scope in Scope.allCases {
                if let position = try logPosition(db, LogID(origin: site, scope: scope)) { cut[scope] = position }
            }
            let revocation = Revocation.issue(site: site, lastAccepted: cut, at: now(), by: trustKey)
            _ = try importDirectory(db, [revocation.record])
            return revocation
        }
    }

    /// Finds an enrolled site by name or key prefix.
    public func enrolledSite(named text: String) throws -> Enrolment {
        let enrolments = try directory().enrolments.values
        let matches = enrolments.filter { $0.siteName == text || $0.name == text || Hex.encode($0.site.bytes).hasPrefix(text.lowercased()) }
        guard matches.count == 1, let match = matches.first else {
            let names = enrolments.map(\.name).sorted().joined(separator: ", ")
            throw StoreError(matches.isEmpty ? "no enrolled site is called '\(text)' (enrolled: \(names.isEmpty ? "none" : names))"
                                             : "'\(text)' matches \(matches.count) sites; give the trust too (TRUST/site) or more of the key")
        }
        return match
    }

    func recordRefusal(_ db: Database, entry: LogEntry, stored: Bool, reason: String, source: String?) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO refusal (at_ms, source, origin, scope, seq, stored, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [Int64(bitPattern: now()), source, Data(entry.origin.bytes), Int64(entry.scope.rawValue),
                             Int64(bitPattern: entry.seq), stored, reason])
    }
}

extension Enrolment {
    /// `TRUST/site`.
    public var name: String { "\(trustCode)/\(siteName)" }
}

/// The last directory read, by version. Readers on several threads share it.
final class DirectoryCache: @unchecked Sendable {
    // The lock guards `entry`.
    private let lock = NSLock()
    private var entry: (version: Int64, directory: TrustDirectory)?

    func value(for version: Int64) -> TrustDirectory? {
        lock.lock()
        defer { lock.unlock() }
        return entry?.version == version ? entry?.directory : nil
    }

    func store(_ directory: TrustDirectory, for version: Int64) {
        lock.lock()
        defer { lock.unlock() }
        entry = (version, directory)
    }
}
