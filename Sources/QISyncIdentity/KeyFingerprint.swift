import Crypto
import QISyncCore

/// The SHA-256 of a raw Ed25519 public key: what people read out to each other to pin a trust
/// (like an SSH host key), shown as 16 groups of 4 hex digits.
public struct KeyFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    /// The fingerprint of a raw public key.
    public init(publicKey: [UInt8]) {
        bytes = Array(SHA256.hash(data: publicKey))
    }

    /// Wraps 32 digest bytes.
    public init(bytes: [UInt8]) throws(IdentityError) {
        guard bytes.count == 32 else { throw IdentityError("a fingerprint is 32 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// Parses a fingerprint as typed: 64 hex digits, with or without `-`, `:` or spaces between groups.
    public init(parsing text: String) throws(IdentityError) {
        let digits = String(text.filter { !"-: ".contains($0) })
        guard digits.count == 64, let bytes = Hex.decode(digits.lowercased()) else {
            throw IdentityError("'\(text)' is not a fingerprint: it is 64 hex digits (16 groups of 4), as 'qisync whoami' prints them")
        }
        self.bytes = bytes
    }

    /// Groups of 4 upper-case hex digits joined by `-`.
    public var description: String {
        let hex = Hex.encode(bytes).uppercased()
        return stride(from: 0, to: hex.count, by: 4).map { i in
            String(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 4)])
        }.joined(separator: "-")
    }
}
