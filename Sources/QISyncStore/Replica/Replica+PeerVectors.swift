import Foundation
import GRDB
import QISyncCore

extension Replica {
    /// Keeps what a peer site holds, as last learnt from a sync with it or a receipt it sent
    /// back, for the next bundle made for it.
    public func rememberPeerVector(site: OriginID, vector: VersionVector, source: String) throws {
        try database.write(keepsLog: true) { db in
            try db.execute(sql: """
                INSERT INTO peer_vector (site, vector, updated_ms, source) VALUES (?, ?, ?, ?)
                ON CONFLICT (site) DO UPDATE SET vector = excluded.vector, updated_ms = excluded.updated_ms, source = excluded.source
                """, arguments: [Data(site.bytes), Data(Self.encode(vector)), Int64(bitPattern: now()), source])
        }
        try resumeWritesIfCaughtUp(with: vector, peer: try directory().enrolments[site]?.name ?? "site \(site.short)")
    }

    /// What a peer site held when this replica last learnt it, and how it learnt it.
    public func knownVector(of site: OriginID) throws -> (vector: VersionVector, source: String, milliseconds: UInt64)? {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT vector, source, updated_ms FROM peer_vector WHERE site = ?", arguments: [Data(site.bytes)]) else {
                return nil
            }
            return (try Self.decode(Array(row[0] as Data)), row[1], UInt64(bitPattern: row[2]))
        }
    }

    /// Keeps a peer site's directory by trust, from a receipt it sent back, so the next bundle
    /// made for it carries only the records of trusts it pins whose digests differ from ours.
    public func rememberPeerDirectory(site: OriginID, summary: [DirectoryGroup]) throws {
        var writer = ByteWriter()
        DirectoryGroup.write(summary, to: &writer)
        try database.write(keepsLog: true) { db in
            try db.execute(sql: """
                INSERT INTO peer_directory (site, summary, updated_ms) VALUES (?, ?, ?)
                ON CONFLICT (site) DO UPDATE SET summary = excluded.summary, updated_ms = excluded.updated_ms
                """, arguments: [Data(site.bytes), Data(writer.bytes), Int64(bitPattern: now())])
        }
    }

    /// A peer site's directory by trust, as its last receipt said, if any.
    public func knownDirectory(of site: OriginID) throws -> [DirectoryGroup]? {
        try database.read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT summary FROM peer_directory WHERE site = ?", arguments: [Data(site.bytes)]) else {
                return nil
            }
            var reader = ByteReader(Array(data))
            return try DirectoryGroup.readSummary(&reader, limit: 1 << 20)
        }
    }

    /// Keeps what a bundle made here expects its receiver to hold once imported (the vector
    /// whose digests it carries), by the bundle file's digest, so the receipt that comes back
    /// need list only where the receiver differs. The newest ``bundleExpectationsKept`` are kept;
    /// a receipt for an older bundle still gives its directory, and its vector is set aside.
    public func rememberBundleExpectation(bundle digest: [UInt8], vector: VersionVector) throws {
        try database.write(keepsLog: true) { db in
            try db.execute(sql: "INSERT OR REPLACE INTO bundle_expectation (bundle, vector, created_ms) VALUES (?, ?, ?)",
                           arguments: [Data(digest), Data(Self.encode(vector)), Int64(bitPattern: now())])
            try db.execute(sql: """
                DELETE FROM bundle_expectation WHERE id NOT IN (SELECT id FROM bundle_expectation ORDER BY id DESC LIMIT ?)
                """, arguments: [Self.bundleExpectationsKept])
        }
    }

    /// How many bundles' expectations are kept.
    public static let bundleExpectationsKept = 64

    /// What the bundle with this file digest, made here, expected its receiver to hold, if kept.
    public func bundleExpectation(bundle digest: [UInt8]) throws -> VersionVector? {
        try database.read { db in
            try Data.fetchOne(db, sql: "SELECT vector FROM bundle_expectation WHERE bundle = ?", arguments: [Data(digest)])
                .map { try Self.decode(Array($0)) }
        }
    }

    /// Signs the SHA-256 digest of a bundle or receipt with this site's key. Those formats
    /// begin with their own magic bytes, so the digest can never be an entry hash.
    public func signBundleDigest(_ digest: [UInt8]) -> [UInt8] { signer.sign(digest) }
}
