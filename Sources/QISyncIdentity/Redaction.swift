import Crypto
import Foundation
import QISyncCore

/// A trust key's replacement of some cells of one entry of one of its sites' logs with a
/// marker, for text that should never have been written (an NHS number, a patient's details).
///
/// The entry keeps its place, clock, hash and signature; its body becomes a redacted body
/// (SPEC 3) whose SHA-256 the redaction names, so the log still verifies and no one can pass
/// off other content under the same hash. Only the trust the entry's site belongs to can
/// redact it.
public struct Redaction: Hashable, Sendable {
    /// What replaces each redacted value.
    public static let marker = "[redacted]"
    /// The most cells one redaction names.
    public static let maximumCells = 1024

    /// A cell of the entry's change: table, row key and column (never 0, existence).
    public struct Cell: Hashable, Sendable {
        public let table: UInt16
        public let key: [UInt8]
        public let column: UInt16

        public init(table: UInt16, key: [UInt8], column: UInt16) {
            self.table = table
            self.key = key
            self.column = column
        }
    }

    /// The redacting trust's raw public key.
    public let trustKey: [UInt8]
    /// Its fingerprint.
    public let trustFingerprint: KeyFingerprint
    /// The entry redacted.
    public let entry: VersionRef
    /// The entry's hash (unchanged by the redaction).
    public let entryHash: [UInt8]
    /// SHA-256 of the entry's redacted body.
    public let bodyDigest: [UInt8]
    /// When (milliseconds since 1970; for people).
    public let redactedMilliseconds: UInt64
    /// Why, as the IG lead recorded it.
    public let reason: String
    /// The cells whose values are replaced (every cell redacted so far in the entry).
    public let cells: [Cell]
    private let signature: [UInt8]

    /// Redacts `cells` of `entry` (whose body may already be redacted; the cells already
    /// redacted stay so): returns the signed redaction and the entry with its new body.
    public static func issue(entry: LogEntry, cells: Set<Cell>, reason: String, at milliseconds: UInt64,
                             by trustKey: TrustKey) throws(IdentityError) -> (Redaction, LogEntry) {
        let change: Change
        do { change = try entry.change() } catch { throw IdentityError("entry \(entry.ref) cannot be read: \(error)") }
        var all = cells
        var rows = change.rows
        for r in rows.indices {
            for c in rows[r].cells.indices {
                let cell = Cell(table: rows[r].table, key: rows[r].key, column: rows[r].cells[c].column)
                if rows[r].cells[c].value == .text(marker), entry.isRedacted { all.insert(cell) }
                if all.contains(cell) { rows[r].cells[c].value = .text(marker) }
            }
        }
        let named = all.filter { cell in change.rows.contains { $0.table == cell.table && $0.key == cell.key && $0.cells.contains { $0.column == cell.column } } }
        guard !named.isEmpty, named.count <= maximumCells, !named.contains(where: { $0.column == 0 }) else {
            throw IdentityError("a redaction names 1 to \(maximumCells) cells the entry writes, never a row's existence")
        }
        let redacted = entry.redacted(to: Change(rows: rows))
        let sorted = named.sorted { ($0.table, Hex.encode($0.key), $0.column) < ($1.table, Hex.encode($1.key), $1.column) }
        let body = Self.body(trustKey: trustKey.publicKey, entry: entry.ref, entryHash: entry.hash,
                             bodyDigest: Array(SHA256.hash(data: redacted.body)), milliseconds: milliseconds, reason: reason, cells: sorted)
        let record = DirectoryRecord(kind: .redaction, bytes: body + trustKey.sign(body))
        guard record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("the redaction names too many cells for one record") }
        return (try Redaction(record: record), redacted)
    }

    private static func body(trustKey: [UInt8], entry: VersionRef, entryHash: [UInt8], bodyDigest: [UInt8], milliseconds: UInt64,
                             reason: String, cells: [Cell]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Array("qisync-redact-1".utf8))
        writer.write(raw: trustKey)
        writer.write(raw: entry.origin.bytes)
        writer.write(byte: entry.scope.rawValue)
        writer.write(uint64: entry.seq)
        writer.write(raw: entryHash)
        writer.write(raw: bodyDigest)
        writer.write(uint64: milliseconds)
        writer.write(string: reason)
        writer.write(varint: UInt64(cells.count))
        for cell in cells {
            writer.write(varint: UInt64(cell.table))
            writer.write(lengthPrefixed: cell.key)
            writer.write(varint: UInt64(cell.column))
        }
        return writer.bytes
    }

    /// Reads a redaction record and checks the trust key's signature.
    public init(record: DirectoryRecord) throws(IdentityError) {
        try self.init(record: record, signatures: .check)
    }

    init(record: DirectoryRecord, signatures: SignaturePolicy) throws(IdentityError) {
        guard record.kind == .redaction, record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("not a redaction record") }
        var reader = ByteReader(record.bytes)
        do {
            guard try reader.readBytes(15) == Array("qisync-redact-1".utf8) else { throw DecodingError("wrong prefix") }
            trustKey = try reader.readBytes(32)
            trustFingerprint = KeyFingerprint(publicKey: trustKey)
            let origin = try OriginID(bytes: try reader.readBytes(32))
            guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope") }
            let seq = try reader.readUInt64()
            guard seq >= 1 else { throw DecodingError("sequence numbers start at 1") }
            entry = VersionRef(origin: origin, scope: scope, seq: seq)
            entryHash = try reader.readBytes(32)
            bodyDigest = try reader.readBytes(32)
            redactedMilliseconds = try reader.readUInt64()
            reason = try reader.readString(limit: 2000, "reason")
            let count = try reader.readVarint(limit: UInt64(Self.maximumCells), "cells")
            guard count >= 1 else { throw DecodingError("a redaction names at least one cell") }
            var cells: [Cell] = []
            for _ in 0..<count {
                let table = try reader.readVarint(limit: UInt64(UInt16.max), "table")
                let key = try reader.readLengthPrefixed(limit: 1024, "row key")
                let column = try reader.readVarint(limit: 63, "column")
                guard column >= 1 else { throw DecodingError("a redaction never names column 0 (existence)") }
                cells.append(Cell(table: UInt16(table), key: key, column: UInt16(column)))
            }
            self.cells = cells
            signature = try reader.readBytes(64)
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
        } catch {
            throw IdentityError("the redaction record is malformed: \(error)")
        }
        guard !signatures.checks || isValidSignature(signature, of: Array(record.bytes.dropLast(64)), byKey: trustKey) else {
            throw IdentityError("the redaction's signature does not match its trust key")
        }
    }

    /// The record that carries it.
    public var record: DirectoryRecord {
        DirectoryRecord(kind: .redaction, bytes: Self.body(trustKey: trustKey, entry: entry, entryHash: entryHash, bodyDigest: bodyDigest,
                                                           milliseconds: redactedMilliseconds, reason: reason, cells: cells) + signature)
    }

    /// Whether `entry` is the entry this redaction names, with exactly its redacted body.
    public func vouches(for entry: LogEntry) -> Bool {
        entry.ref == self.entry && entry.hash == entryHash && Array(SHA256.hash(data: entry.body)) == bodyDigest
    }

    /// The held entry with this redaction applied (the named cells' values replaced by the
    /// marker), when it is the entry named and the result is exactly the body vouched for.
    /// Applying it to the original body or to one redacted earlier gives the same result.
    public func redact(_ held: LogEntry) -> LogEntry? {
        guard held.ref == entry, held.hash == entryHash, let change = try? held.change() else { return nil }
        let named = Set(cells)
        var rows = change.rows
        for r in rows.indices {
            for c in rows[r].cells.indices where named.contains(Cell(table: rows[r].table, key: rows[r].key, column: rows[r].cells[c].column)) {
                rows[r].cells[c].value = .text(Self.marker)
            }
        }
        let redacted = held.redacted(to: Change(rows: rows))
        return vouches(for: redacted) ? redacted : nil
    }
}
