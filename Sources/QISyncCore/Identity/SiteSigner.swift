@preconcurrency import Crypto

/// A site's private signing key, which signs the hash of every entry the site appends.
public struct SiteSigner: Sendable {
    private let key: Curve25519.Signing.PrivateKey

    /// The origin id other replicas know this site by.
    public let origin: OriginID

    /// Makes a new random key.
    public init() {
        self.init(key: Curve25519.Signing.PrivateKey())
    }

    /// Restores a key from its 32 raw bytes.
    public init(rawRepresentation: [UInt8]) throws {
        self.init(key: try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation))
    }

    private init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
        // A Curve25519 public key is always 32 bytes.
        origin = try! OriginID(bytes: Array(key.publicKey.rawRepresentation))
    }

    /// The key itself, for the site's TLS certificate and enrolment request.
    public var signingKey: Curve25519.Signing.PrivateKey { key }

    /// The raw private key, for storing in the site's key file.
    public var rawRepresentation: [UInt8] { Array(key.rawRepresentation) }

    /// Signs `message` (an entry hash).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Signing with a valid key does not fail.
        Array(try! key.signature(for: message))
    }
}

/// Checks Ed25519 signatures made by an origin.
public enum SignatureCheck {
    /// Whether `signature` is `origin`'s signature of `message`.
    public static func isValid(_ signature: [UInt8], of message: [UInt8], by origin: OriginID) -> Bool {
        isValid(signature, of: message, byKey: origin.bytes)
    }

    /// Whether `signature` is the signature of `message` by the raw Ed25519 public key `key`.
    public static func isValid(_ signature: [UInt8], of message: [UInt8], byKey key: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}
