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
    /// How many of its sites are enrolled here (revoked ones not counted).
    public let sites: Int
    /// Whether it is pinned by the trust's hub for all its sites, not on this replica itself.
    public var isTrustWide = false
    /// How many of its sites were revoked.
    public var revokedSites = 0
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

/// An administrative act recorded for `audit`: an enrolment, a revocation, a trust pinned or
/// removed, a bundle made or taken in.
public struct AdminEvent: Equatable, Sendable {
    /// When (milliseconds since 1970).
    public let milliseconds: UInt64
    /// What kind of act: `enrol`, `revoke`, `pin`, `unpin`, `repin`, `bundle export`, `bundle import`, `bundle refused`…
    public let kind: String
    /// What it was about: a site, a trust, a file.
    public let subject: String
    /// The details.
    public let detail: String
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
    public func directory(_ db: Database) throws -> TrustDirectory {
        let version = try directoryVersion(db)
        if let cached = directoryCache.value(for: version) { return cached }
        let directory = TrustDirectory(ownTrust: identity.trustCode, ownSite: identity.origin, ownPins: try Self.ownPins(db),
                                       heldRecords: try heldDirectoryRecords(db))
        directoryCache.store(directory, for: version)
        return directory
    }

    private func directoryVersion(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'directory_version'")) ?? 0
    }

    /// The directory records held as of `db`'s transaction, kept (like the directory) until
    /// the directory's version moves on: every sync and bundle reads them.
    func heldDirectoryRecords(_ db: Database) throws -> [DirectoryRecord] {
        let version = try directoryVersion(db)
        if let cached = directoryCache.records(for: version) { return cached }
        let held = try Self.directoryRecordsWithReadings(db)
        VerifiedRecord.recallHeld(held.compactMap { record, reading in reading.map { (record, $0) } })
        let records = held.map(\.record)
        directoryCache.store(records, for: version)
        return records
    }

    /// Keeps the reading of each enrolment among `records` (each verified or read already),
    /// so later processes read the directory without parsing certificates.
    static func keepReadings(_ db: Database, of records: [DirectoryRecord], read: [Result<VerifiedRecord, IdentityError>]) throws {
        for (record, result) in zip(records, read) {
            guard case .success(.enrolment(let enrolment)) = result else { continue }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO directory_reading (digest, reading) VALUES (?, ?)")
                .execute(arguments: [Data(record.digest), Data(enrolment.reading)])
        }
    }

    /// Works out again the reading of every enrolment held: with `checkingSignatures` each
    /// record is verified first (repair); otherwise each is taken as checked when it was kept
    /// (a replica made before readings were kept, at its first opening or migration).
    static func keepReadingsOfHeld(_ db: Database, checkingSignatures: Bool) throws {
        let enrolments = try directoryRecords(db).filter { $0.kind == .enrolment }
        try keepReadings(db, of: enrolments, read: checkingSignatures ? VerifiedRecord.verifyAll(enrolments) : VerifiedRecord.readHeld(enrolments))
    }

    /// Marks the directory changed, inside the transaction that changes it. The new version is
    /// random, not the next number: a change rolled back (a preview) must not leave behind a
    /// cached directory that a later, different change would seem to match.
    @discardableResult
    func bumpDirectoryVersion(_ db: Database) throws -> Int64 {
        let version = Int64.random(in: 1...Int64.max)
        try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('directory_version', ?)", arguments: [version])
        return version
    }

    static func ownPins(_ db: Database) throws -> [String: KeyFingerprint] {
        var pins: [String: KeyFingerprint] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT code, fingerprint FROM trust_pin") {
            pins[row[0]] = try KeyFingerprint(bytes: Array(row[1] as Data))
        }
        return pins
    }

    /// The directory as it would be with `extra` records taken in too (those a bundle carries),
    /// without keeping them.
    public func directory(including extra: [DirectoryRecord]) throws -> TrustDirectory {
        try database.read { db in
            let held = try heldDirectoryRecords(db)
            // Most bundles bring nothing new: the directory held, already made, is the answer.
            let heldSet = Set(held)
            guard extra.contains(where: { !heldSet.contains($0) }) else { return try directory(db) }
            let pins = try Self.ownPins(db)
            var current = try directory(db)
            // What the importer would keep, kind by kind, as importDirectory does.
            var kept = held
            for kind: DirectoryRecord.Kind in [.trustPin, .enrolment, .bundleKey, .revocation, .redaction] {
                kept += extra.filter { $0.kind == kind && current.relevance(of: $0) == nil }
                current = TrustDirectory(ownTrust: identity.trustCode, ownSite: identity.origin, ownPins: pins, heldRecords: kept)
            }
            return current
        }
    }

    /// The held records by the trust key that signed them (records that do not read left
    /// out), in the order held, kept with the directory by version: every sync and bundle asks.
    func heldRecordsByTrust(_ db: Database) throws -> [[UInt8]: [DirectoryRecord]] {
        let version = try directoryVersion(db)
        if let cached = directoryCache.groups(for: version) { return cached }
        var groups: [[UInt8]: [DirectoryRecord]] = [:]
        let held = try heldDirectoryRecords(db)
        for (record, result) in zip(held, VerifiedRecord.readHeld(held)) {
            guard case .success(let read) = result else { continue }
            groups[read.trustFingerprint.bytes, default: []].append(record)
        }
        directoryCache.store(groups: groups, for: version)
        return groups
    }

    /// Records in the order ``directoryRecords(_:)`` reads them: by kind, then digest.
    static func sortedAsStored(_ records: [DirectoryRecord]) -> [DirectoryRecord] {
        records.sorted { a, b in
            a.kind.rawValue != b.kind.rawValue ? a.kind.rawValue < b.kind.rawValue : a.digest.lexicographicallyPrecedes(b.digest)
        }
    }

    static func directoryRecords(_ db: Database) throws -> [DirectoryRecord] {
        try directoryRecordsWithReadings(db).map(\.record)
    }

    /// The records held, in the order ``directoryRecords(_:)`` reads them, each with the reading
    /// kept beside it (``Enrolment/reading``) when it is an enrolment that has one. Their
    /// digests are taken from the table (`verify` checks them).
    static func directoryRecordsWithReadings(_ db: Database) throws -> [(record: DirectoryRecord, reading: [UInt8]?)] {
        // Read in the table's own order (its key, the digest) and put in order of kind here:
        // ORDER BY kind, digest had SQLite copy every record's kilobyte through a sorter
        // (a fifth of a no-op sync's CPU at 2,420 sites).
        var byKind: [UInt8: [(record: DirectoryRecord, reading: [UInt8]?)]] = [:]
        let rows = try Row.fetchCursor(db, sql: """
            SELECT kind, record, digest, reading FROM directory_record LEFT JOIN directory_reading USING (digest) ORDER BY digest
            """)
        while let row = try rows.next() {
            guard let kind = DirectoryRecord.Kind(rawValue: UInt8(row[0] as Int64)) else { continue }
            byKind[kind.rawValue, default: []].append((DirectoryRecord(kind: kind, bytes: Array(row[1] as Data), digest: Array(row[2] as Data)),
                                                       (row[3] as Data?).map(Array.init)))
        }
        return byKind.keys.sorted().flatMap { byKind[$0]! }
    }

    /// The directory records held, to pass on to a peer.
    public func directoryRecords() throws -> [DirectoryRecord] {
        try database.read { db in try heldDirectoryRecords(db) }
    }

    /// The directory records held, by the trust each concerns, for a sync with a site of
    /// `peerTrust` (protocol version 2). Trust-wide pins are for the trust's own sites (no
    /// other trust keeps them), so they are left out for a peer of another trust.
    public func directoryIndex(forPeerOfTrust peerTrust: String) throws -> DirectoryIndex {
        // Pins and records from one snapshot, so the index never pairs one with another's.
        let (held, byTrust, trustDigests) = try database.read { db -> (TrustDirectory, [[UInt8]: [DirectoryRecord]], [[UInt8]: [UInt8]]) in
            (try self.directory(db), try heldRecordsByTrust(db), try heldDigestsByTrust(db))
        }
        var groups = byTrust
        var digests = trustDigests
        if peerTrust != identity.trustCode {
            for (trust, records) in groups where records.contains(where: { $0.kind == .trustPin }) {
                let kept = records.filter { $0.kind != .trustPin }
                groups[trust] = kept.isEmpty ? nil : kept
                digests[trust] = kept.isEmpty ? nil : DirectoryRecord.digest(of: kept)
            }
        }
        // A site of this trust follows the trust-wide pins it is about to receive: the pins a
        // site pinning only its own trust would hold with these records.
        var peerWillPin = Set<[UInt8]>()
        if peerTrust == identity.trustCode, let own = held.pins[identity.trustCode] {
            let follower = TrustDirectory(ownTrust: identity.trustCode, ownSite: identity.origin, ownPins: [identity.trustCode: own],
                                          heldRecords: groups[own.bytes] ?? [])
            peerWillPin = Set(follower.pins.values.map(\.bytes))
        }
        return DirectoryIndex(groups: groups, pinned: Set(held.pins.values.map(\.bytes)), peerWillPin: peerWillPin, digests: digests)
    }

    /// Each trust's digest of the records held of it (``heldRecordsByTrust(_:)``), kept with
    /// the directory by version: every session's SUMMARY, HAVE and DIRECTORY ask for them.
    func heldDigestsByTrust(_ db: Database) throws -> [[UInt8]: [UInt8]] {
        let version = try directoryVersion(db)
        if let cached = directoryCache.trustDigests(for: version) { return cached }
        let digests = try heldRecordsByTrust(db).mapValues { DirectoryRecord.digest(of: $0) }
        directoryCache.store(trustDigests: digests, for: version)
        return digests
    }

    /// The digest of the directory records held (``DirectoryRecord/digest(of:)``).
    /// Kept with the directory by version: every sync's HELLO carries it.
    public func directoryDigest() throws -> [UInt8] {
        try database.read { db in
            let version = try directoryVersion(db)
            if let cached = directoryCache.digest(for: version) { return cached }
            let digest = DirectoryRecord.digest(of: try heldDirectoryRecords(db))
            directoryCache.store(digest: digest, for: version)
            return digest
        }
    }

    /// The trusts pinned here, own trust first, then those pinned here, then those the hub pinned
    /// for the whole trust.
    public func trustPins() throws -> [TrustPin] {
        let directory = try directory()
        func sites(_ code: String, _ fingerprint: KeyFingerprint, revoked: Bool) -> Int {
            directory.enrolments.values.filter { $0.trustCode == code && $0.trustFingerprint == fingerprint && (directory.revocations[$0.site] != nil) == revoked }.count
        }
        let local = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT code, fingerprint, own FROM trust_pin ORDER BY own DESC, code").map { row in
                let fingerprint = try KeyFingerprint(bytes: Array(row[1] as Data))
                var pin = TrustPin(code: row[0], fingerprint: fingerprint, isOwn: row[2], sites: sites(row[0], fingerprint, revoked: false))
                pin.revokedSites = sites(row[0], fingerprint, revoked: true)
                return pin
            }
        }
        let wide = directory.pins.filter { code, _ in !local.contains { $0.code == code } }.sorted { $0.key < $1.key }.map { code, fingerprint in
            var pin = TrustPin(code: code, fingerprint: fingerprint, isOwn: false, sites: sites(code, fingerprint, revoked: false))
            pin.isTrustWide = true
            pin.revokedSites = sites(code, fingerprint, revoked: true)
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

    /// The public key of the trust that enrolled a site (which signs its trust's IG-lead
    /// overrides): from the site's enrolment held here, or, for this site, its own trust's key.
    func trustKey(ofSite site: OriginID, in directory: TrustDirectory) -> [UInt8]? {
        if site == identity.origin {
            return directory.trustKey(of: identity.trustCode) ?? (try? trustKey())?.map(\.publicKey)
        }
        return (directory.enrolments[site] ?? directory.heldEnrolments[site])?.trustKey
    }

    /// This site's request to be enrolled by its hub: as it was made, or as another kind (a
    /// ward asking to become its trust's hub).
    public func enrolmentRequest(kind: SiteKind? = nil) -> EnrolmentRequest {
        EnrolmentRequest(trustCode: identity.trustCode, siteName: identity.siteName, kind: (kind ?? identity.kind).rawValue, signer: signer)
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

    /// Administrative acts recorded here (enrolments, revocations, pins, bundles), newest first.
    public func adminEvents(limit: Int = 1000) throws -> [AdminEvent] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT at_ms, kind, subject, detail FROM admin_event ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                AdminEvent(milliseconds: UInt64(bitPattern: row[0]), kind: row[1], subject: row[2], detail: row[3])
            }
        }
    }

    /// Records an administrative act for `audit`.
    public func recordAdminEvent(kind: String, subject: String, detail: String) throws {
        try database.write { db in try recordAdminEvent(db, kind: kind, subject: subject, detail: detail) }
    }

    func recordAdminEvent(_ db: Database, kind: String, subject: String, detail: String) throws {
        try db.execute(sql: "INSERT INTO admin_event (at_ms, kind, subject, detail) VALUES (?, ?, ?, ?)",
                       arguments: [Int64(bitPattern: now()), kind, subject, detail])
    }

    // MARK: Changing the directory

    /// Verifies directory records (from a peer or a file) and keeps those of trusts pinned here.
    @discardableResult
    public func importDirectory(_ records: [DirectoryRecord]) throws -> DirectoryImport {
        try database.write { db in try importDirectory(db, records) }
    }

    func importDirectory(_ db: Database, _ records: [DirectoryRecord]) throws -> DirectoryImport {
        var result = DirectoryImport()
        // The trust's own pin decisions first: they decide which other trusts' records to keep;
        // then enrolments, before the revocations judged against them.
        for kind: DirectoryRecord.Kind in [.trustPin, .enrolment, .bundleKey, .revocation, .redaction] {
            let ofKind = records.filter { $0.kind == kind }
            guard !ofKind.isEmpty else { continue }
            let current = try directory(db)
            let held = try heldDirectoryRecords(db)
            var added: [DirectoryRecord] = []
            for record in ofKind {
                if let problem = current.relevance(of: record) {
                    result.ignored.append(problem.message)
                    continue
                }
                // From GRDB's statement cache: a hub takes in thousands of records nationally.
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO directory_record (digest, kind, record) VALUES (?, ?, ?)")
                    .execute(arguments: [Data(record.digest), Int64(record.kind.rawValue), Data(record.bytes)])
                if db.changesCount > 0 {
                    result.added += 1
                    added.append(record)
                } else {
                    result.known += 1
                }
            }
            guard !added.isEmpty else { continue }
            if kind == .enrolment { try Self.keepReadings(db, of: added, read: VerifiedRecord.verifyAll(added)) }
            // The records held now are those before and those just added: kept for the new
            // version as the table would give them, so the next kind (and the next sync) does
            // not read thousands of records back.
            let version = try bumpDirectoryVersion(db)
            directoryCache.store(Self.sortedAsStored(held + added), for: version)
            // Most often (a national directory arriving a few trusts at a time) the directory
            // extends the one before; otherwise the next reading makes it afresh.
            if let extended = current.adding(added) { directoryCache.store(extended, for: version) }
        }
        if result.added > 0 {
            try enforceRevocations(db)
            try enforceRedactions(db)
        }
        return result
    }

    /// Pins another trust by its key's fingerprint, read out by that trust's administrator. A
    /// trust already pinned with another key is re-pinned only with `replace`; either way the act
    /// is recorded for `audit`.
    public func pinTrust(code: String, fingerprint: KeyFingerprint, replace: Bool = false) throws {
        try ReplicaIdentity.validateTrustCode(code)
        guard code != identity.trustCode else {
            throw StoreError("\(code) is this replica's own trust; its key was fixed when the replica was made")
        }
        try database.write { db in
            let existing = try Data.fetchOne(db, sql: "SELECT fingerprint FROM trust_pin WHERE code = ?", arguments: [code])
                .map { try KeyFingerprint(bytes: Array($0)) } ?? directory(db).pins[code]
            if let existing, existing != fingerprint, !replace {
                throw StoreError("trust \(code) is already pinned with key \(existing); pinning it to another key needs --replace (check the new fingerprint with its administrator first)")
            }
            try pin(db, code: code, fingerprint: fingerprint, own: false)
            try decideForTrust(db, code: code, fingerprint: fingerprint, pinned: true)
            let kind = existing == nil ? "pin" : existing == fingerprint ? "pin again" : "repin"
            try recordAdminEvent(db, kind: kind, subject: code, detail: existing.map { $0 == fingerprint ? "key \(fingerprint)" : "key \($0) replaced by \(fingerprint)" } ?? "key \(fingerprint)")
        }
    }

    func pin(_ db: Database, code: String, fingerprint: KeyFingerprint, own: Bool) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO trust_pin (code, fingerprint, own, added_ms) VALUES (?, ?, ?, ?)",
                       arguments: [code, Data(fingerprint.bytes), own, Int64(bitPattern: now())])
        try bumpDirectoryVersion(db)
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
            let key = try KeyFingerprint(bytes: Array(fingerprint))
            try decideForTrust(db, code: code, fingerprint: key, pinned: false)
            try recordAdminEvent(db, kind: "unpin", subject: code, detail: "key \(key)")
        }
    }

    /// What `enrol` did.
    public enum EnrolOutcome: Equatable, Sendable {
        /// A new site was enrolled.
        case enrolled
        /// The site was already enrolled exactly so; nothing changed.
        case alreadyEnrolled
        /// The site's key was enrolled again with a new name or kind; the new enrolment is current.
        case reenrolled(previous: String)
        /// The site replaced another key under the same name, which was revoked.
        case replaced(revoked: OriginID)
    }

    /// The hub enrols a site of its own trust from the site's request and keeps the enrolment;
    /// it reaches every replica through sync, or as a file (``Enrolment/fileText(with:)``).
    ///
    /// A key enrolled before with another name or kind is enrolled again (the later enrolment is
    /// current everywhere). Another key already enrolled under the same site name is refused
    /// unless `replace`, which revokes that key.
    public func enrol(_ request: EnrolmentRequest, replace: Bool = false) throws -> (Enrolment, EnrolOutcome) {
        guard let trustKey = try trustKey() else {
            throw StoreError("only the hub that holds the trust key (\(home.appendingPathComponent(TrustKey.fileName).path)) can enrol sites")
        }
        guard request.trustCode == identity.trustCode else {
            throw StoreError("the request is to join trust \(request.trustCode); this hub enrols sites of \(identity.trustCode)")
        }
        return try database.write { db in
            let directory = try directory(db)
            if directory.revocations[request.site] != nil {
                throw StoreError("site key \(request.siteFingerprint) was revoked and cannot be enrolled again; the site must make a new key ('qisync init --join')")
            }
            let previous = directory.enrolments[request.site]
            if let previous, previous.siteName == request.siteName, previous.kind == request.kind {
                return (previous, .alreadyEnrolled)
            }
            let holders = directory.enrolments.values.filter {
                $0.trustCode == identity.trustCode && $0.siteName == request.siteName && $0.site != request.site && directory.revocations[$0.site] == nil
            }
            if let holder = holders.first, !replace {
                throw StoreError("\(identity.trustCode)/\(request.siteName) is already enrolled with another key (\(KeyFingerprint(publicKey: holder.site.bytes))); if this is a new machine for that site, enrol it with --replace, which revokes the old key; otherwise give the new site another name")
            }
            // Later than any earlier enrolment of this key, so this one is current everywhere.
            var issued = Date(timeIntervalSince1970: Double(now() / 1000))
            if let last = directory.enrolmentHistory[request.site]?.last, issued <= last.issued { issued = last.issued.addingTimeInterval(1) }
            let enrolment = try Enrolment.issue(request: request, issued: issued, by: trustKey)
            let report = try importDirectory(db, [enrolment.record])
            guard report.ignored.isEmpty else { throw StoreError(report.ignored.joined(separator: "; ")) }
            var outcome = EnrolOutcome.enrolled
            for holder in holders {
                _ = try revoke(db, site: holder.site, trustKey: trustKey)
                outcome = .replaced(revoked: holder.site)
            }
            if let previous { outcome = .reenrolled(previous: "\(previous.name) (\(previous.kind))") }
            try recordAdminEvent(db, kind: "enrol", subject: enrolment.name,
                                 detail: "\(enrolment.kind), site key \(request.siteFingerprint)\(previous.map { ", replacing its enrolment as \($0.name) (\($0.kind))" } ?? "")\(holders.map { ", revoking the old key \(KeyFingerprint(publicKey: $0.site.bytes))" }.joined())")
            return (enrolment, outcome)
        }
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
    /// refused everywhere the revocation reaches, and it can no longer connect. Revoking a site
    /// already revoked changes nothing and returns nil.
    public func revoke(site: OriginID) throws -> Revocation? {
        guard let trustKey = try trustKey() else { throw StoreError("only the hub that holds the trust key can revoke sites") }
        guard site != identity.origin else { throw StoreError("a hub cannot revoke itself") }
        return try database.write { db in
            let directory = try directory(db)
            guard let enrolment = directory.enrolments[site], enrolment.trustCode == identity.trustCode else {
                throw StoreError("site \(site.short) is not an enrolled site of \(identity.trustCode)")
            }
            if directory.revocations[site] != nil { return nil }
            let revocation = try revoke(db, site: site, trustKey: trustKey)
            try recordAdminEvent(db, kind: "revoke", subject: enrolment.name,
                                 detail: "site key \(KeyFingerprint(publicKey: site.bytes)); kept " + Scope.allCases.map { "\($0) log up to \(revocation.lastAccepted[$0]?.seq ?? 0)" }.joined(separator: ", "))
            return revocation
        }
    }

    private func revoke(_ db: Database, site: OriginID, trustKey: TrustKey) throws -> Revocation {
        var cut: [Scope: LogPosition] = [:]
        for scope in Scope.allCases {
            if let position = try logPosition(db, LogID(origin: site, scope: scope)) { cut[scope] = position }
        }
        let revocation = Revocation.issue(site: site, lastAccepted: cut, at: now(), by: trustKey)
        _ = try importDirectory(db, [revocation.record])
        return revocation
    }

    /// Finds an enrolled site by name (`site` or `TRUST/site`) or key prefix; revoked sites are
    /// found only when nothing current matches.
    public func enrolledSite(named text: String) throws -> Enrolment {
        let directory = try directory()
        let enrolments = directory.enrolments.values
        var matches = enrolments.filter { $0.siteName == text || $0.name == text || Hex.encode($0.site.bytes).hasPrefix(text.lowercased()) }
        let current = matches.filter { directory.revocations[$0.site] == nil }
        if !current.isEmpty { matches = current }
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

/// The last directory read, and the records it was made from, by version. Readers on several
/// threads share it.
final class DirectoryCache: @unchecked Sendable {
    struct Entry {
        var version: Int64
        var directory: TrustDirectory?
        var records: [DirectoryRecord]?
        var groups: [[UInt8]: [DirectoryRecord]]?
        var digest: [UInt8]?
        var trustDigests: [[UInt8]: [UInt8]]?
    }
    // The lock guards `entry`.
    private let lock = NSLock()
    private var entry: Entry?

    /// Changes the entry for `version`, starting it afresh when it is of another version.
    private func update(_ version: Int64, _ change: (inout Entry) -> Void) {
        lock.withLock {
            var current = entry?.version == version ? entry! : Entry(version: version)
            change(&current)
            entry = current
        }
    }

    private func read<T>(_ version: Int64, _ part: KeyPath<Entry, T?>) -> T? {
        lock.withLock { entry?.version == version ? entry?[keyPath: part] : nil }
    }

    func value(for version: Int64) -> TrustDirectory? { read(version, \.directory) }
    /// Whether a directory has been made and kept (of any version): whether this process has read it.
    var holdsDirectory: Bool { lock.withLock { entry?.directory != nil } }
    func store(_ directory: TrustDirectory, for version: Int64) { update(version) { $0.directory = directory } }
    func records(for version: Int64) -> [DirectoryRecord]? { read(version, \.records) }
    func store(_ records: [DirectoryRecord], for version: Int64) { update(version) { $0.records = records } }
    func groups(for version: Int64) -> [[UInt8]: [DirectoryRecord]]? { read(version, \.groups) }
    func store(groups: [[UInt8]: [DirectoryRecord]], for version: Int64) { update(version) { $0.groups = groups } }
    func digest(for version: Int64) -> [UInt8]? { read(version, \.digest) }
    func store(digest: [UInt8], for version: Int64) { update(version) { $0.digest = digest } }
    func trustDigests(for version: Int64) -> [[UInt8]: [UInt8]]? { read(version, \.trustDigests) }
    func store(trustDigests: [[UInt8]: [UInt8]], for version: Int64) { update(version) { $0.trustDigests = trustDigests } }

    func clear() {
        lock.withLock { entry = nil }
    }
}
