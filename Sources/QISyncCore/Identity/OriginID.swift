/// A site's identity in the logs: its 32-byte Ed25519 public key.
///
/// Origins are ordered by their bytes; that order breaks ties between writes
/// with the same hybrid logical clock, so every replica picks the same winner.
public struct OriginID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The raw public key.
    public let bytes: [UInt8]

    /// Wraps a 32-byte public key, or fails when the length is wrong.
    public init(bytes: [UInt8]) throws(DecodingError) {
        guard bytes.count == 32 else { throw DecodingError("an origin key must be 32 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// The first 8 bytes in hex: enough to tell sites apart on screen.
    public var short: String { Hex.encode(bytes.prefix(8)) }

    public var description: String { short }

    public static func < (lhs: OriginID, rhs: OriginID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    /// Hashes the 32 bytes in one call (an array's own hashing feeds them a byte at a time, and
    /// origins key the dictionaries every batch is applied through).
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (lhs: OriginID, rhs: OriginID) -> Bool { lhs.bytes == rhs.bytes }
}
