/// An error reading an encoded value: the input is truncated, malformed or over a limit.
public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in words.
    public let message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    public var description: String { "malformed data: \(message)" }
}

/// Reads the primitive values written by ``ByteWriter``, refusing truncated or over-long input.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    /// The index of the next byte to read.
    public private(set) var offset: Int

    /// Creates a reader over `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        offset = 0
    }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { offset == bytes.count }

    /// The number of bytes not yet read.
    public var remaining: Int { bytes.count - offset }

    /// Reads one byte.
    public mutating func readByte() throws(DecodingError) -> UInt8 {
        guard offset < bytes.count else { throw DecodingError("unexpected end of input at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads `count` raw bytes.
    public mutating func readBytes(_ count: Int) throws(DecodingError) -> [UInt8] {
        try require(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Reads an unsigned LEB128 varint of at most 10 bytes, in its shortest form: a varint of
    /// more than one byte whose last byte is zero (a padded encoding) is refused, so every
    /// value has exactly one encoding and re-encoding a decoded body gives back its bytes.
    public mutating func readVarint() throws(DecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 { throw DecodingError("varint overflows 64 bits at byte \(offset - 1)") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw DecodingError("varint at byte \(offset - 1) is not in its shortest form") }
                return result
            }
            shift += 7
            if shift > 63 { throw DecodingError("varint longer than 10 bytes at byte \(offset)") }
        }
    }

    /// Reads a varint that must fit in `0...limit`. (`what` names it in an error, and is
    /// worked out only then: decoding reads millions of lengths.)
    public mutating func readVarint(limit: UInt64, _ what: @autoclosure () -> String) throws(DecodingError) -> Int {
        let value = try readVarint()
        guard value <= limit else { throw DecodingError("\(what()) \(value) is over the limit of \(limit)") }
        return Int(value)
    }

    /// Reads a zig-zag signed varint.
    public mutating func readZigzag() throws(DecodingError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// Reads a big-endian 64-bit integer.
    public mutating func readUInt64() throws(DecodingError) -> UInt64 {
        try require(8)
        defer { offset += 8 }
        return bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Passes over `count` bytes (read where they lie, by ``offset``).
    public mutating func skip(_ count: Int) throws(DecodingError) {
        try require(count)
        offset += count
    }

    /// Reads a length-prefixed byte string of at most `limit` bytes.
    public mutating func readLengthPrefixed(limit: Int, _ what: @autoclosure () -> String) throws(DecodingError) -> [UInt8] {
        let count = try readVarint(limit: UInt64(limit), "\(what()) length")
        return try readBytes(count)
    }

    /// Reads a length-prefixed UTF-8 string, refusing invalid UTF-8 (validated where it lies,
    /// without copying the bytes out first).
    public mutating func readString(limit: Int, _ what: @autoclosure () -> String) throws(DecodingError) -> String {
        let count = try readVarint(limit: UInt64(limit), "\(what()) length")
        try require(count)
        guard let string = String(validating: bytes[offset..<offset + count], as: UTF8.self) else {
            throw DecodingError("\(what()) is not valid UTF-8")
        }
        offset += count
        return string
    }

    /// Throws unless `count` more bytes are there to read.
    private func require(_ count: Int) throws(DecodingError) {
        guard count >= 0, count <= remaining else {
            throw DecodingError("needed \(count) bytes at byte \(offset), only \(remaining) left")
        }
    }
}
