/// One cell write: a column of a row gets a value, superseding the versions the writer saw.
public struct CellWrite: Hashable, Sendable {
    /// The column's number in its table; 0 is the row's existence register.
    public var column: UInt16
    /// The value written.
    public var value: Value
    /// The cell's heads the writer saw: the versions this write replaces.
    public var supersedes: [VersionRef]

    /// Creates a cell write.
    public init(column: UInt16, value: Value, supersedes: [VersionRef] = []) {
        self.column = column
        self.value = value
        self.supersedes = supersedes
    }
}

/// The writes one change makes to one row.
public struct RowWrite: Hashable, Sendable {
    /// The table's number in the schema.
    public var table: UInt16
    /// The row's key: a record id, or a set member's parent id and value.
    public var key: [UInt8]
    /// The cells written, each column at most once.
    public var cells: [CellWrite]

    /// Creates a row write.
    public init(table: UInt16, key: [UInt8], cells: [CellWrite]) {
        self.table = table
        self.key = key
        self.cells = cells
    }
}

/// A row's name: its table and key.
public struct RowName: Hashable, Sendable {
    /// The table's number.
    public let table: UInt16
    /// The row's key.
    public let key: [UInt8]

    /// Creates a row name.
    public init(table: UInt16, key: [UInt8]) {
        self.table = table
        self.key = key
    }
}

/// The body of a log entry: one transaction's cell writes, grouped by row; each row at most
/// once and each column of a row at most once.
///
/// Encoding: `varint originCount, origin[32]*` (the origins named by supersede
/// references), then `varint rowCount` and per row `varint table, key (length-prefixed),
/// varint cellCount` and per cell `varint column, value, varint refCount` and per
/// reference `varint originIndex, byte scope, varint seq`. protocol/SPEC.md has the details.
public struct Change: Hashable, Sendable {
    /// The rows written.
    public var rows: [RowWrite]

    /// The largest encoded text or blob value accepted (1 MiB).
    public static let maximumValueBytes = 1 << 20
    /// The largest encoded change body accepted (8 MiB).
    public static let maximumBodyBytes = 8 << 20

    /// Creates a change.
    public init(rows: [RowWrite]) { self.rows = rows }

    /// The change's encoding.
    public func encoded() -> [UInt8] {
        var origins: [OriginID] = []
        var originIndex: [OriginID: Int] = [:]
        for row in rows {
            for cell in row.cells {
                for ref in cell.supersedes where originIndex[ref.origin] == nil {
                    originIndex[ref.origin] = origins.count
                    origins.append(ref.origin)
                }
            }
        }
        var writer = ByteWriter(capacity: 256)
        writer.write(varint: UInt64(origins.count))
        for origin in origins { writer.write(raw: origin.bytes) }
        writer.write(varint: UInt64(rows.count))
        for row in rows {
            writer.write(varint: UInt64(row.table))
            writer.write(lengthPrefixed: row.key)
            writer.write(varint: UInt64(row.cells.count))
            for cell in row.cells {
                writer.write(varint: UInt64(cell.column))
                cell.value.encode(into: &writer)
                writer.write(varint: UInt64(cell.supersedes.count))
                for ref in cell.supersedes {
                    writer.write(varint: UInt64(originIndex[ref.origin]!))
                    writer.write(byte: ref.scope.rawValue)
                    writer.write(varint: ref.seq)
                }
            }
        }
        return writer.bytes
    }

    /// Decodes a change body, refusing anything malformed, over a limit, or with bytes left over.
    /// Decodes an entry's body: a change, or a redacted body (SPEC 3) whose change follows
    /// its prefix and original hash.
    public init(decodingBody body: [UInt8]) throws(DecodingError) {
        if LogEntry.isRedacted(body) {
            try self.init(decoding: Array(body[34...]))
        } else {
            try self.init(decoding: body)
        }
    }

    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        guard bytes.count <= Self.maximumBodyBytes else { throw DecodingError("change body over \(Self.maximumBodyBytes) bytes") }
        var reader = ByteReader(bytes)
        let originCount = try reader.readVarint(limit: 4096, "origin count")
        var origins: [OriginID] = []
        for _ in 0..<originCount { origins.append(try OriginID(bytes: try reader.readBytes(32))) }
        let rowCount = try reader.readVarint(limit: UInt64(bytes.count), "row count")
        var rows: [RowWrite] = []
        rows.reserveCapacity(rowCount)
        var seenRows = Set<RowName>()
        for _ in 0..<rowCount {
            let table = try reader.readVarint(limit: UInt64(UInt16.max), "table number")
            let key = try reader.readLengthPrefixed(limit: 1024, "row key")
            // (One row cannot repeat itself: hashing its key was a tenth of reading a change.)
            guard rowCount == 1 || seenRows.insert(RowName(table: UInt16(table), key: key)).inserted else {
                throw DecodingError("row \(Hex.encode(key.prefix(8))) of table \(table) is written twice in one change")
            }
            let cellCount = try reader.readVarint(limit: 64, "cell count")
            var cells: [CellWrite] = []
            cells.reserveCapacity(cellCount)
            var seen: UInt64 = 0
            for _ in 0..<cellCount {
                let column = try reader.readVarint(limit: 63, "column number")
                guard seen & (1 << UInt64(column)) == 0 else { throw DecodingError("column \(column) written twice in one row") }
                seen |= 1 << UInt64(column)
                let value = try Value.decode(from: &reader)
                let refCount = try reader.readVarint(limit: 1024, "superseded count")
                var refs: [VersionRef] = []
                for _ in 0..<refCount {
                    let index = try reader.readVarint(limit: UInt64(max(origins.count, 1) - 1), "origin index")
                    guard index < origins.count else { throw DecodingError("origin index \(index) with no origins listed") }
                    guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope") }
                    let seq = try reader.readVarint()
                    guard seq >= 1 else { throw DecodingError("sequence numbers start at 1") }
                    refs.append(VersionRef(origin: origins[index], scope: scope, seq: seq))
                }
                cells.append(CellWrite(column: UInt16(column), value: value, supersedes: refs))
            }
            rows.append(RowWrite(table: UInt16(table), key: key, cells: cells))
        }
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes after the change") }
        self.rows = rows
    }
}
