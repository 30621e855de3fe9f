/// A cell value: SQLite's storage classes.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value as text, when it is text.
    public var text: String? { if case .text(let s) = self { s } else { nil } }

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
        case 2: return .real(Double(bitPattern: try reader.readUInt64()))
        case 3: return .text(try reader.readString(limit: Change.maximumValueBytes, "text value"))
        case 4: return .blob(try reader.readLengthPrefixed(limit: Change.maximumValueBytes, "blob value"))
        case let tag: throw DecodingError("unknown value type \(tag)")
        }
    }
}
