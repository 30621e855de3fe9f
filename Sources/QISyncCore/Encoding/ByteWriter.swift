/// Appends the wire and log encodings' primitive values to a byte buffer.
///
/// Integers are unsigned LEB128 varints (signed ones zig-zag first); fixed-width
/// integers are big-endian; strings and blobs are a varint length then the bytes.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer, reserving `capacity` bytes.
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Writes one byte.
    public mutating func write(byte: UInt8) { bytes.append(byte) }

    /// Writes raw bytes with no length prefix.
    public mutating func write<C: Collection>(raw: C) where C.Element == UInt8 { bytes.append(contentsOf: raw) }

    /// Writes an unsigned LEB128 varint.
    public mutating func write(varint value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Writes a signed integer as a zig-zag varint.
    public mutating func write(zigzag value: Int64) {
        write(varint: UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Writes a big-endian 64-bit integer.
    public mutating func write(uint64 value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Writes a varint length followed by the bytes.
    public mutating func write<C: Collection>(lengthPrefixed data: C) where C.Element == UInt8 {
        write(varint: UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    /// Writes a string as length-prefixed UTF-8.
    public mutating func write(string: String) {
        write(lengthPrefixed: Array(string.utf8))
    }
}
