@preconcurrency import Crypto
import Foundation
import QISyncCore

/// A trust's long-lived Ed25519 signing key. It signs site enrolments and revocations; its
/// public key's ``KeyFingerprint`` is what other trusts pin. It lives on the hub, in its own
/// file (mode 0600), apart from the replica database.
public struct TrustKey: Sendable {
    let key: Curve25519.Signing.PrivateKey

    /// The key file's name inside a hub's home folder.
    public static let fileName = "trust.key"

    /// Makes a new random key.
    public init() { key = Curve25519.Signing.PrivateKey() }

    /// Restores a key from its 32 raw bytes.
    public init(rawRepresentation: [UInt8]) throws(IdentityError) {
        do { key = try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation) } catch {
            throw IdentityError("the trust key is damaged: it must be 32 bytes")
        }
    }

    /// The raw public key.
    public var publicKey: [UInt8] { Array(key.publicKey.rawRepresentation) }

    /// The public key's fingerprint.
    public var fingerprint: KeyFingerprint { KeyFingerprint(publicKey: publicKey) }

    /// Signs `message`.
    func sign(_ message: [UInt8]) -> [UInt8] { Array(try! key.signature(for: message)) }

    /// Signs an IG lead's override of the PII guard for one record (``PIIOverride``).
    public func signOverride(table: UInt16, record: [UInt8], text: String) -> [UInt8] {
        sign(PIIOverride.message(table: table, record: record, text: text))
    }

    /// Writes the key to a new file readable only by its owner; refuses to overwrite one.
    public func write(to url: URL) throws(IdentityError) {
        try SecretFile.create(url, bytes: Array(key.rawRepresentation))
    }

    /// Reads the key file in `home`, or nil when there is none (every site but the hub). The
    /// warning, when there is one, says the file is readable by others.
    public static func read(home: URL) throws(IdentityError) -> TrustKey? {
        try readWithWarning(home: home)?.key
    }

    /// Reads the key file in `home` with any warning about its permissions.
    public static func readWithWarning(home: URL) throws(IdentityError) -> (key: TrustKey, warning: String?)? {
        let url = home.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let (bytes, warning) = try SecretFile.read(url)
        return (try TrustKey(rawRepresentation: bytes), warning)
    }
}

/// Checks an Ed25519 signature by a raw public key.
func isValidSignature(_ signature: [UInt8], of message: [UInt8], byKey publicKey: [UInt8]) -> Bool {
    guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
    return key.isValidSignature(signature, for: message)
}
