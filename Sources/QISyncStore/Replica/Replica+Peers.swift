import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

/// A peer this replica syncs with, by name.
public struct Peer: Sendable, Equatable {
    /// The name people use (`hub`, `ward-7b`, `rxh-hub`).
    public let name: String
    /// Where it listens, `HOST:PORT`.
    public let address: String
    /// The last sync with it, if any.
    public let lastSync: SyncRecord?
    /// Entries this replica holds that the peer did not hold after the last successful sync.
    public let behind: UInt64?
}

/// One sync session, as recorded by this replica.
public struct SyncRecord: Sendable, Equatable {
    /// The peer's name, when it is a named peer.
    public var peer: String?
    /// The address synced with (for a server, the client's address).
    public var address: String
    /// `client` or `server`.
    public var role: String
    /// When it started, milliseconds since 1970.
    public var startedMilliseconds: UInt64
    /// How long it took.
    public var seconds: Double
    /// `both`, `pull` or `push`.
    public var direction: String
    /// Entries sent and acknowledged.
    public var sent: UInt64
    /// Entries received and applied.
    public var received: UInt64
    /// Bytes of entries moved, before compression.
    public var rawBytes: UInt64
    /// Bytes on the wire, both ways.
    public var wireBytes: UInt64
    /// Conflicts that appeared here.
    public var conflicts: UInt64
    /// `ok`, or what went wrong.
    public var outcome: String
    /// The peer's vector as known at the end (what it held, plus what it acknowledged).
    public var peerVector: VersionVector?
    /// Received entries refused here.
    public var refused: UInt64 = 0
    /// The peer site's key, when the session learnt it.
    public var peerSite: OriginID?
    /// The peer's trust, when the session learnt it (checked against its certificate).
    public var peerTrust: String?

    /// Creates a record.
    public init(peer: String?, address: String, role: String, startedMilliseconds: UInt64, seconds: Double, direction: String,
                sent: UInt64, received: UInt64, rawBytes: UInt64, wireBytes: UInt64, conflicts: UInt64, outcome: String, peerVector: VersionVector?,
                refused: UInt64 = 0, peerSite: OriginID? = nil, peerTrust: String? = nil) {
        self.refused = refused
        self.peerSite = peerSite
        self.peerTrust = peerTrust
        self.peer = peer
        self.address = address
        self.role = role
        self.startedMilliseconds = startedMilliseconds
        self.seconds = seconds
        self.direction = direction
        self.sent = sent
        self.received = received
        self.rawBytes = rawBytes
        self.wireBytes = wireBytes
        self.conflicts = conflicts
        self.outcome = outcome
        self.peerVector = peerVector
    }
}

extension Replica {
    /// Adds a named peer.
    public func addPeer(name: String, address: String) throws {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
              !name.contains(":") else {
            throw StoreError("a peer name is 1 to 64 letters, digits, '-', '_' or '.' (not '\(name)')")
        }
        try database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM peer WHERE name = ?)", arguments: [name]) == true {
                throw StoreError("there is already a peer called '\(name)'; remove it first with 'peer remove \(name)'")
            }
            try db.execute(sql: "INSERT INTO peer (name, address) VALUES (?, ?)", arguments: [name, address])
        }
    }

    /// Removes a named peer (its sync history stays).
    public func removePeer(name: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM peer WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw StoreError("no peer called '\(name)'; 'peer list' shows them") }
        }
    }

    /// Every named peer, with its last sync and how far behind it is.
    public func peers() throws -> [Peer] {
        let ours = try versionVector()
        return try database.read { db in
            // Read only when a peer has synced: the first reading in a process verifies every record held.
            var directory: TrustDirectory?
            return try Row.fetchAll(db, sql: "SELECT name, address FROM peer ORDER BY name").map { row in
                let name: String = row[0]
                let last = try Row.fetchOne(db, sql: "SELECT * FROM sync_session WHERE peer = ? ORDER BY id DESC LIMIT 1", arguments: [name]).map(Self.record)
                let lastGood = try Row.fetchOne(db, sql: "SELECT * FROM sync_session WHERE peer = ? AND outcome = 'ok' ORDER BY id DESC LIMIT 1", arguments: [name]).map(Self.record)
                let behind = try lastGood?.peerVector.map { vector in
                    if let trust = lastGood?.peerTrust { return Self.behind(ours, vector, scopes: sendableScopes(toTrust: trust)) }
                    if directory == nil { directory = try self.directory(db) }
                    return Self.behind(ours, vector, scopes: sendableScopes(to: lastGood?.peerSite, in: directory!))
                }
                return Peer(name: name, address: row[1], lastSync: last, behind: behind)
            }
        }
    }

    /// Sites that synced with this replica as clients (a hub's wards, another trust's hub),
    /// each with its last session and how far behind it is in what may be sent to it.
    public func visitors() throws -> [Peer] {
        let ours = try versionVector()
        return try database.read { db in
            let sites = try Data.fetchAll(db, sql: "SELECT DISTINCT peer_site FROM sync_session WHERE role = 'server' AND peer_site IS NOT NULL")
            // Read only when a site has synced here: a ward's `peer list` need not build a national directory.
            guard !sites.isEmpty else { return [] }
            let directory = try self.directory(db)
            return try sites.compactMap { key -> Peer? in
                guard let site = try? OriginID(bytes: Array(key)) else { return nil }
                let last = try Row.fetchOne(db, sql: "SELECT * FROM sync_session WHERE peer_site = ? AND role = 'server' ORDER BY id DESC LIMIT 1",
                                            arguments: [key]).map(Self.record)
                let lastGood = try Row.fetchOne(db, sql: "SELECT * FROM sync_session WHERE peer_site = ? AND role = 'server' AND outcome = 'ok' ORDER BY id DESC LIMIT 1",
                                                arguments: [key]).map(Self.record)
                let name = directory.heldEnrolments[site]?.name ?? directory.enrolments[site]?.name ?? last?.peer ?? "site \(site.short)"
                return Peer(name: name, address: last?.address ?? "", lastSync: last,
                            behind: lastGood?.peerVector.map {
                                Self.behind(ours, $0, scopes: lastGood?.peerTrust.map(sendableScopes(toTrust:)) ?? sendableScopes(to: site, in: directory))
                            })
            }.sorted { $0.name < $1.name }
        }
    }

    /// The scopes this replica sends to a site: everything to its own trust, shared records
    /// to another trust (and everything when the site is not known).
    func sendableScopes(to site: OriginID?, in directory: TrustDirectory) -> Set<Scope> {
        guard let site, let trust = directory.heldTrust(of: site) ?? directory.enrolments[site]?.trustCode else { return Set(Scope.allCases) }
        return sendableScopes(toTrust: trust)
    }

    /// The scopes this replica sends to a site of `trust`.
    func sendableScopes(toTrust trust: String) -> Set<Scope> {
        trust == identity.trustCode ? Set(Scope.allCases) : [.shared]
    }

    /// The named peer, or nil.
    public func peer(named name: String) throws -> Peer? {
        try peers().first { $0.name == name }
    }

    /// Records a finished or failed sync session.
    public func recordSync(_ record: SyncRecord) throws {
        try database.write { db in
            try db.execute(sql: """
                INSERT INTO sync_session (peer, address, role, started_ms, seconds, direction, sent, received, raw_bytes, wire_bytes, conflicts, outcome, peer_vector, refused, peer_site, peer_trust)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.peer, record.address, record.role, Int64(record.startedMilliseconds), record.seconds, record.direction,
                                 Int64(record.sent), Int64(record.received), Int64(record.rawBytes), Int64(record.wireBytes), Int64(record.conflicts),
                                 record.outcome, record.peerVector.map { Data(Self.encode($0)) }, Int64(record.refused), record.peerSite.map { Data($0.bytes) }, record.peerTrust])
        }
    }

    /// Recent sync sessions, newest first.
    public func syncHistory(limit: Int = 20) throws -> [SyncRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sync_session ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.record)
        }
    }

    static func behind(_ ours: VersionVector, _ theirs: VersionVector, scopes: Set<Scope> = Set(Scope.allCases)) -> UInt64 {
        ours.positions.reduce(0) { total, item in
            guard scopes.contains(item.key.scope) else { return total }
            return total + (item.value.seq > theirs.seq(of: item.key) ? item.value.seq - theirs.seq(of: item.key) : 0)
        }
    }

    static func record(_ row: Row) -> SyncRecord {
        SyncRecord(peer: row["peer"], address: row["address"], role: row["role"], startedMilliseconds: UInt64(max(0, row["started_ms"] as Int64)),
                   seconds: row["seconds"], direction: row["direction"], sent: UInt64(max(0, row["sent"] as Int64)),
                   received: UInt64(max(0, row["received"] as Int64)), rawBytes: UInt64(max(0, row["raw_bytes"] as Int64)),
                   wireBytes: UInt64(max(0, row["wire_bytes"] as Int64)), conflicts: UInt64(max(0, row["conflicts"] as Int64)),
                   outcome: row["outcome"], peerVector: (row["peer_vector"] as Data?).flatMap { try? decode(Array($0)) },
                   refused: UInt64(max(0, (row["refused"] as Int64?) ?? 0)),
                   peerSite: (row["peer_site"] as Data?).flatMap { try? OriginID(bytes: Array($0)) }, peerTrust: row["peer_trust"])
    }

    static func encode(_ vector: VersionVector) -> [UInt8] {
        var writer = ByteWriter()
        for (log, position) in vector.positions.sorted(by: { $0.key < $1.key }) {
            writer.write(raw: log.origin.bytes)
            writer.write(byte: log.scope.rawValue)
            writer.write(varint: position.seq)
            writer.write(raw: position.hash)
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> VersionVector {
        var reader = ByteReader(bytes)
        var vector = VersionVector()
        while !reader.isAtEnd {
            let origin = try OriginID(bytes: try reader.readBytes(32))
            let scope = Scope(rawValue: try reader.readByte()) ?? .trust
            let seq = try reader.readVarint()
            vector.positions[LogID(origin: origin, scope: scope)] = LogPosition(seq: seq, hash: try reader.readBytes(32))
        }
        return vector
    }
}
