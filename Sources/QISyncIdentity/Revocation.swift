import Foundation
import QISyncCore

/// A trust key's withdrawal of one of its sites. Entries the site appended after the point
/// the hub had seen (per log) are refused everywhere, and the site cannot connect again.
///
/// The cut-off is a position in each of the site's logs, not a time, so a revoked key cannot
/// slip in new entries by back-dating their clocks.
public struct Revocation: Hashable, Sendable {
    /// The revoking trust's raw public key.
    public let trustKey: [UInt8]
    /// The withdrawn site.
    public let site: OriginID
    /// When the hub revoked it (milliseconds since 1970, for people; not used for decisions).
    public let revokedMilliseconds: UInt64
    /// The last accepted entry of each of the site's logs (its number and hash, as the hub
    /// held it); a scope missing here accepts none.
    public let lastAccepted: [Scope: LogPosition]
    private let signature: [UInt8]

    /// Signs a revocation with the trust key.
    public static func issue(site: OriginID, lastAccepted: [Scope: LogPosition], at milliseconds: UInt64, by trustKey: TrustKey) -> Revocation {
        let body = Self.body(trustKey: trustKey.publicKey, site: site, revoked: milliseconds, lastAccepted: lastAccepted)
        return Revocation(trustKey: trustKey.publicKey, site: site, revokedMilliseconds: milliseconds, lastAccepted: lastAccepted,
                          signature: trustKey.sign(body))
    }

    private init(trustKey: [UInt8], site: OriginID, revokedMilliseconds: UInt64, lastAccepted: [Scope: LogPosition], signature: [UInt8]) {
        self.trustKey = trustKey
        trustFingerprint = KeyFingerprint(publicKey: trustKey)
        self.site = site
        self.revokedMilliseconds = revokedMilliseconds
        self.lastAccepted = lastAccepted
        self.signature = signature
    }

    private static func body(trustKey: [UInt8], site: OriginID, revoked: UInt64, lastAccepted: [Scope: LogPosition]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Array("qisync-revoke-1".utf8))
        writer.write(raw: trustKey)
        writer.write(raw: site.bytes)
        writer.write(uint64: revoked)
        let scopes = lastAccepted.keys.sorted { $0.rawValue < $1.rawValue }
        writer.write(varint: UInt64(scopes.count))
        for scope in scopes {
            writer.write(byte: scope.rawValue)
            writer.write(uint64: lastAccepted[scope]!.seq)
            writer.write(raw: lastAccepted[scope]!.hash)
        }
        return writer.bytes
    }

    /// The trust key's fingerprint.
    public let trustFingerprint: KeyFingerprint


    /// Whether the entry at `seq` of the site's `scope` log comes after the cut-off.
    public func refuses(scope: Scope, seq: UInt64) -> Bool { seq > (lastAccepted[scope]?.seq ?? 0) }

    /// The record that carries it.
    public var record: DirectoryRecord {
        DirectoryRecord(kind: .revocation, bytes: Self.body(trustKey: trustKey, site: site, revoked: revokedMilliseconds, lastAccepted: lastAccepted) + signature)
    }

    /// Reads a revocation record and checks the trust key's signature.
    public init(record: DirectoryRecord) throws(IdentityError) {
        try self.init(record: record, signatures: .check)
    }

    init(record: DirectoryRecord, signatures: SignaturePolicy) throws(IdentityError) {
        guard record.kind == .revocation, record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("not a revocation record") }
        var reader = ByteReader(record.bytes)
        do {
            guard try reader.readBytes(15) == Array("qisync-revoke-1".utf8) else { throw DecodingError("wrong prefix") }
            trustKey = try reader.readBytes(32)
            trustFingerprint = KeyFingerprint(publicKey: trustKey)
            site = try OriginID(bytes: try reader.readBytes(32))
            revokedMilliseconds = try reader.readUInt64()
            let count = try reader.readVarint(limit: UInt64(Scope.allCases.count), "scopes")
            var cut: [Scope: LogPosition] = [:]
            for _ in 0..<count {
                guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope") }
                cut[scope] = LogPosition(seq: try reader.readUInt64(), hash: try reader.readBytes(32))
            }
            lastAccepted = cut
            signature = try reader.readBytes(64)
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
        } catch {
            throw IdentityError("the revocation record is malformed: \(error)")
        }
        let body = Array(record.bytes.dropLast(64))
        guard !signatures.checks || isValidSignature(signature, of: body, byKey: trustKey) else {
            throw IdentityError("the revocation's signature does not match its trust key")
        }
    }
}
