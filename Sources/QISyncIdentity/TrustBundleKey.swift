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
        let bytes = record.bytes
        guard record.kind == .bundleKey, bytes.count == Self.prefix.count + 128, Array(bytes.prefix(Self.prefix.count)) == Self.prefix else {
            throw IdentityError("not a bundle key record")
        }
        let body = Array(bytes.dropLast(64))
        trustKey = Array(bytes[Self.prefix.count..<Self.prefix.count + 32])
        publicKey = Array(bytes[Self.prefix.count + 32..<Self.prefix.count + 64])
        signature = Array(bytes.suffix(64))
        guard isValidSignature(signature, of: body, byKey: trustKey) else { throw IdentityError("the bundle key's signature does not match its trust key") }
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

/// Sealing a bundle's payload to a trust (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, ChaCha20-Poly1305; info "qisync-bundle-1"; the bundle's header as associated data).
public enum BundleSeal {
    static let info = Data("qisync-bundle-1".utf8)

    /// Seals `payload` to the trust's bundle key; returns the encapsulated key and the ciphertext.
    public static func seal(_ payload: [UInt8], header: [UInt8], to key: TrustBundleKey) throws(IdentityError) -> (encapsulatedKey: [UInt8], ciphertext: [UInt8]) {
        do {
            let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: key.publicKey)
            var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: .Curve25519_SHA256_ChachaPoly, info: info)
            let ciphertext = try sender.seal(payload, authenticating: header)
            return (Array(sender.encapsulatedKey), Array(ciphertext))
        } catch {
            throw IdentityError("could not seal the bundle: \(error)")
        }
    }

    /// Opens a sealed payload with the trust key (on the hub that holds it).
    public static func open(_ ciphertext: [UInt8], encapsulatedKey: [UInt8], header: [UInt8], with trustKey: TrustKey) throws(IdentityError) -> [UInt8] {
        do {
            var recipient = try HPKE.Recipient(privateKey: trustKey.bundleAgreementKey, ciphersuite: .Curve25519_SHA256_ChachaPoly,
                                               info: info, encapsulatedKey: Data(encapsulatedKey))
            return Array(try recipient.open(ciphertext, authenticating: header))
        } catch {
            throw IdentityError("the sealed bundle does not open with this trust's key: it was altered, or sealed to another trust")
        }
    }
}
