import Crypto

/// The global id of a replicated record: 12 random bytes then the owning trust's 4-byte
/// ``ownerTag(ofTrust:)``, shown as 32 hex digits.
///
/// Because the owner is part of the id, every replica decides "may this site change this
/// record?" the same way, from the id and the site's enrolment alone, whatever order
/// entries arrive in.
///
/// On screen ids are shortened to ``short``; any unique prefix is accepted, as in git.
public struct RecordID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The raw bytes.
    public let bytes: [UInt8]

    /// The length of a shortened id on screen, in hex digits.
    public static let shortLength = 8

    /// Wraps 16 raw bytes.
    public init(bytes: [UInt8]) throws(DecodingError) {
        guard bytes.count == 16 else { throw DecodingError("a record id must be 16 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// A new random id for a record owned by `trust`.
    /// Twelve random bytes from two of the generator's words (the system generator makes a
    /// system call per word: a byte at a time it was twelve per id, a tenth of a script line).
    public static func random<G: RandomNumberGenerator>(owner trust: String, using generator: inout G) -> RecordID {
        let first = generator.next(), second = generator.next()
        let out = (0..<8).map { UInt8(truncatingIfNeeded: first >> (8 * $0)) } + (0..<4).map { UInt8(truncatingIfNeeded: second >> (8 * $0)) }
        return try! RecordID(bytes: out + ownerTag(ofTrust: trust))
    }

    /// A new id for a record owned by `trust`, from the system's random source.
    public static func random(owner trust: String) -> RecordID {
        var generator = SystemRandomNumberGenerator()
        return random(owner: trust, using: &generator)
    }

    /// The last 4 bytes of every id of a record owned by `trust`: the start of
    /// SHA-256("qisync-owner-1" ‖ trust code).
    public static func ownerTag(ofTrust trust: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("qisync-owner-1".utf8) + Array(trust.utf8)).prefix(4))
    }

    /// Whether this id names a record owned by `trust`.
    public func isOwned(byTrust trust: String) -> Bool { bytes.suffix(4).elementsEqual(Self.ownerTag(ofTrust: trust)) }

    /// Parses a full 32-digit hex id.
    public init?(hex: String) {
        guard hex.utf8.count == 32, let bytes = Hex.decode(hex) else { return nil }
        self.bytes = bytes
    }

    /// The full hex spelling.
    public var hex: String { Hex.encode(bytes) }

    /// The shortened spelling shown in tables.
    public var short: String { String(hex.prefix(Self.shortLength)) }

    public var description: String { hex }

    public static func < (lhs: RecordID, rhs: RecordID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// A hex prefix of a record id, as typed by a person, turned into a byte range for an indexed lookup.
public struct RecordIDPrefix: Sendable, Equatable {
    /// The prefix, lower-cased.
    public let text: String
    /// The smallest id with this prefix.
    public let lowerBound: [UInt8]
    /// The largest id with this prefix.
    public let upperBound: [UInt8]

    /// Parses a prefix of 1 to 32 hex digits, or fails with what is wrong.
    public init(_ text: String) throws(DecodingError) {
        let lowered = text.lowercased()
        let chars = Array(lowered.utf8)
        guard !chars.isEmpty else { throw DecodingError("an id is empty; give at least one hex digit") }
        guard chars.count <= 32 else { throw DecodingError("'\(text)' is longer than an id (32 hex digits)") }
        var low = [UInt8](repeating: 0x00, count: 16)
        var high = [UInt8](repeating: 0xFF, count: 16)
        for (i, c) in chars.enumerated() {
            guard let n = Hex.nibble(c) else {
                throw DecodingError("'\(text)' is not an id: ids are hex digits 0-9 and a-f")
            }
            if i % 2 == 0 {
                low[i / 2] = n << 4
                high[i / 2] = n << 4 | 0x0F
            } else {
                low[i / 2] |= n
                high[i / 2] = (high[i / 2] & 0xF0) | n
            }
        }
        self.text = lowered
        lowerBound = low
        upperBound = high
    }
}

/// A 16-byte record key as two integers, for sets of many keys: hashing a `[UInt8]` feeds the
/// hasher a byte at a time, which showed in the profile of a bundle import.
public struct RecordKeyBits: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    /// The key's 16 bytes (shorter keys are padded with zeros; longer ones cut).
    public init(_ key: [UInt8]) {
        var high: UInt64 = 0, low: UInt64 = 0
        for index in 0..<min(key.count, 8) { high = high << 8 | UInt64(key[index]) }
        for index in 8..<max(8, min(key.count, 16)) { low = low << 8 | UInt64(key[index]) }
        self.high = high
        self.low = low
    }
}
