import Foundation
import QISyncCore

/// A trust's decision, signed by its trust key, to accept (or stop accepting) another trust:
/// the hub's `trust add` and `trust remove` make one, and it reaches the trust's wards with
/// the directory, so they accept what the hub accepts without pinning it themselves.
public struct TrustWidePin: Hashable, Sendable {
    /// The deciding trust's raw public key.
    public let trustKey: [UInt8]
    /// The trust pinned or unpinned.
    public let code: String
    /// Its key's fingerprint.
    public let fingerprint: KeyFingerprint
    /// When, milliseconds since 1970: the latest decision about a code wins.
    public let milliseconds: UInt64
    /// True to pin, false to unpin.
    public let pinned: Bool
    private let signature: [UInt8]

    static let prefix = Array("qisync-pin-1".utf8)

    /// Signs a decision with the trust key.
    public init(code: String, fingerprint: KeyFingerprint, pinned: Bool, at milliseconds: UInt64, by trustKey: TrustKey) {
        self.trustKey = trustKey.publicKey
        self.code = code
        self.fingerprint = fingerprint
        self.milliseconds = milliseconds
        self.pinned = pinned
        signature = trustKey.sign(Self.body(trustKey: trustKey.publicKey, code: code, fingerprint: fingerprint, milliseconds: milliseconds, pinned: pinned))
    }

    private static func body(trustKey: [UInt8], code: String, fingerprint: KeyFingerprint, milliseconds: UInt64, pinned: Bool) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: prefix)
        writer.write(raw: trustKey)
        writer.write(string: code)
        writer.write(raw: fingerprint.bytes)
        writer.write(uint64: milliseconds)
        writer.write(byte: pinned ? 1 : 0)
        return writer.bytes
    }

    /// The deciding trust key's fingerprint.
    public var trustFingerprint: KeyFingerprint { KeyFingerprint(publicKey: trustKey) }

    /// The record that carries it.
    public var record: DirectoryRecord {
        DirectoryRecord(kind: .trustPin, bytes: Self.body(trustKey: trustKey, code: code, fingerprint: fingerprint, milliseconds: milliseconds, pinned: pinned) + signature)
    }

    /// Reads a record and checks the trust key's signature.
    public init(record: DirectoryRecord) throws(IdentityError) {
        try self.init(record: record, signatures: .check)
    }

    init(record: DirectoryRecord, signatures: SignaturePolicy) throws(IdentityError) {
        guard record.kind == .trustPin, record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("not a trust pin record") }
        var reader = ByteReader(record.bytes)
        do {
            guard try reader.readBytes(Self.prefix.count) == Self.prefix else { throw DecodingError("wrong prefix") }
            trustKey = try reader.readBytes(32)
            code = try reader.readString(limit: 5, "trust code")
            fingerprint = try KeyFingerprint(bytes: try reader.readBytes(32))
            milliseconds = try reader.readUInt64()
            let flag = try reader.readByte()
            guard flag <= 1 else { throw DecodingError("bad flag") }
            pinned = flag == 1
            signature = try reader.readBytes(64)
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
        } catch {
            throw IdentityError("the trust pin record is malformed: \(error)")
        }
        guard !signatures.checks || isValidSignature(signature, of: Array(record.bytes.dropLast(64)), byKey: trustKey) else {
            throw IdentityError("the trust pin's signature does not match its trust key")
        }
    }
}
