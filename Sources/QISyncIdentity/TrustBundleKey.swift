@preconcurrency import Crypto
import Foundation
import QISyncCore

/// The X25519 key that bundles for a trust are sealed to (HPKE), published by the trust key.
///
/// Its private half is derived from the trust key (HKDF-SHA256), so only the hub holding the
/// trust key can open a sealed bundle, and no other key file needs keeping.
public struct TrustBundleKey: Hashable, Sendable {
    /// The trust's raw Ed25519 public key, which signed this.
    public let trustKey: [UInt8]
    /// The raw X25519 public key.
    public let publicKey: [UInt8]
    private let signature: [UInt8]

    static let prefix = Array("qisync-bundle-key-1".utf8)

    /// The trust's bundle key, signed by the trust key.
    public init(trustKey: TrustKey) {
        self.trustKey = trustKey.publicKey
        publicKey = Array(trustKey.bundleAgreementKey.publicKey.rawRepresentation)
        signature = trustKey.sign(Self.prefix + self.trustKey + publicKey)
    }

    /// The trust key's fingerprint.
    public var trustFingerprint: KeyFingerprint { KeyFingerprint(publicKey: trustKey) }

    /// The record that carries it.
    public var record: DirectoryRecord { DirectoryRecord(kind: .bundleKey, bytes: Self.prefix + trustKey + publicKey + signature) }

    /// Reads a record and checks the trust key's signature.
    public init(record: DirectoryRecord) throws(IdentityError) {
        try self.init(record: record, signatures: .check)
    }

    init(record: DirectoryRecord, signatures: SignaturePolicy) throws(IdentityError) {
        let bytes = record.bytes
        guard record.kind == .bundleKey, bytes.count == Self.prefix.count + 128, Array(bytes.prefix(Self.prefix.count)) == Self.prefix else {
            throw IdentityError("not a bundle key record")
        }
        let body = Array(bytes.dropLast(64))
        trustKey = Array(bytes[Self.prefix.count..<Self.prefix.count + 32])
        publicKey = Array(bytes[Self.prefix.count + 32..<Self.prefix.count + 64])
        signature = Array(bytes.suffix(64))
        guard !signatures.checks || isValidSignature(signature, of: body, byKey: trustKey) else { throw IdentityError("the bundle key's signature does not match its trust key") }
    }
}

extension TrustKey {
    /// The X25519 private key derived from the trust key for opening sealed bundles.
    var bundleAgreementKey: Curve25519.KeyAgreement.PrivateKey {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: key.rawRepresentation), salt: Array("qisync".utf8),
                                             info: Array("qisync-bundle-key-1".utf8), outputByteCount: 32)
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: derived.withUnsafeBytes { Array($0) })
    }
}

/// Sealing a bundle's payload to a trust, piece by piece, so neither side holds the whole
/// payload in memory (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// ChaCha20-Poly1305; info "qisync-bundle-1"). One HPKE context seals every piece in order,
/// so pieces cannot be reordered; each piece's associated data is the bundle's header then a
/// byte that is 1 on the last piece and 0 before, so a payload cut short does not open.
public enum BundleSeal {
    static let info = Data("qisync-bundle-1".utf8)

    /// The most plaintext one sealed piece holds.
    public static let pieceSize = 1 << 20

    /// Seals pieces of a payload to a trust's bundle key.
    public struct Sealer {
        private var sender: HPKE.Sender
        private let header: [UInt8]
        /// The HPKE encapsulated key, which the bundle's header carries.
        public let encapsulatedKey: [UInt8]

        /// Starts sealing to `key`, binding every piece to `header`.
        public init(to key: TrustBundleKey, header: [UInt8]) throws(IdentityError) {
            do {
                let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: key.publicKey)
                sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: .Curve25519_SHA256_ChachaPoly, info: BundleSeal.info)
            } catch {
                throw IdentityError("could not seal the bundle: \(error)")
            }
            self.header = header
            encapsulatedKey = Array(sender.encapsulatedKey)
        }

        /// Seals the next piece (at most ``BundleSeal/pieceSize`` bytes); `last` marks the final one.
        public mutating func seal(_ piece: [UInt8], last: Bool) throws(IdentityError) -> [UInt8] {
            do { return Array(try sender.seal(piece, authenticating: header + [last ? 1 : 0])) } catch {
                throw IdentityError("could not seal the bundle: \(error)")
            }
        }
    }

    /// Opens the pieces of a sealed payload with the trust key (on the hub that holds it).
    public struct Opener {
        private var recipient: HPKE.Recipient
        private let header: [UInt8]

        /// Starts opening a payload sealed with `encapsulatedKey` and bound to `header`.
        public init(encapsulatedKey: [UInt8], header: [UInt8], with trustKey: TrustKey) throws(IdentityError) {
            do {
                recipient = try HPKE.Recipient(privateKey: trustKey.bundleAgreementKey, ciphersuite: .Curve25519_SHA256_ChachaPoly,
                                               info: BundleSeal.info, encapsulatedKey: Data(encapsulatedKey))
            } catch {
                throw IdentityError("the sealed bundle does not open with this trust's key: it was sealed to another trust")
            }
            self.header = header
        }

        /// Opens the next piece; `last` says whether it is the final one.
        public mutating func open(_ piece: [UInt8], last: Bool) throws(IdentityError) -> [UInt8] {
            do { return Array(try recipient.open(piece, authenticating: header + [last ? 1 : 0])) } catch {
                throw IdentityError("the sealed bundle does not open with this trust's key: it was altered, cut short, or sealed to another trust")
            }
        }
    }
}
