/// A cell value: SQLite's storage classes.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value as text, when it is text.
    public var text: String? { if case .text(let s) = self { s } else { nil } }

    /// Text length as the protocol counts it: Unicode scalar values, which every implementation
    /// and every Unicode version counts the same way (grapheme clusters do not).
    public static func length(of text: String) -> Int { text.unicodeScalars.count }

    /// The value as an integer, when it is one.
    public var integer: Int64? { if case .integer(let i) = self { i } else { nil } }

    public var description: String {
        switch self {
        case .null: "∅"
        case .integer(let i): String(i)
        case .real(let d): String(d)
        case .text(let s): s
        case .blob(let b): "x'" + Hex.encode(b) + "'"
        }
    }

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .null: writer.write(byte: 0)
        case .integer(let i):
            writer.write(byte: 1)
            writer.write(zigzag: i)
        case .real(let d):
            writer.write(byte: 2)
            writer.write(uint64: d.bitPattern)
        case .text(let s):
            writer.write(byte: 3)
            writer.write(string: s)
        case .blob(let b):
            writer.write(byte: 4)
            writer.write(lengthPrefixed: b)
        }
    }

    static func decode(from reader: inout ByteReader) throws(DecodingError) -> Value {
        switch try reader.readByte() {
        case 0: return .null
        case 1: return .integer(try reader.readZigzag())
        case 2:
            let real = Double(bitPattern: try reader.readUInt64())
            guard !real.isNaN else { throw DecodingError("a real value is NaN") }
            return .real(real)
        case 3:
            let text = try reader.readString(limit: Change.maximumValueBytes, "text value")
            // Through the text's own storage: the UTF-8 view's generic search was slower than the decoding.
            guard !(text.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? text.utf8.contains(0)) else {
                throw DecodingError("a text value holds U+0000 (NUL)")
            }
            return .text(text)
        case 4: return .blob(try reader.readLengthPrefixed(limit: Change.maximumValueBytes, "blob value"))
        case let tag: throw DecodingError("unknown value type \(tag)")
        }
    }
}
