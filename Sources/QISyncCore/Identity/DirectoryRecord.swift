import Crypto
import Foundation

/// A signed statement about who belongs to a trust, passed between replicas exactly as it was
/// made: an enrolment (a site's certificate and its trust's certificate), a revocation, or the
/// trust's key for sealed bundles.
///
/// Replicas hold the set of records they have verified and exchange it at the start of a
/// sync when the two sets' digests differ. The set only grows, so any order of exchange
/// converges. The protocol carries the bytes; QISyncIdentity reads and verifies them.
public struct DirectoryRecord: Hashable, Sendable {
    /// What a record says.
    public enum Kind: UInt8, Sendable {
        /// A trust key admits a site: the bytes are two length-prefixed DER certificates, the site's then the trust's.
        case enrolment = 1
        /// A trust key withdraws a site: the bytes are a signed revocation statement.
        case revocation = 2
        /// A trust key publishes the X25519 key that bundles for the trust are sealed to.
        case bundleKey = 3
        /// A trust key pins (or unpins) another trust for all of its own sites.
        case trustPin = 4
        /// A trust key replaces cells of an entry of one of its sites with a marker (patient
        /// details typed by mistake), vouching for the entry's redacted body.
        case redaction = 5
    }

    /// What it says.
    public let kind: Kind
    /// Its bytes.
    public let bytes: [UInt8]

    /// The most bytes one record may hold.
    public static let maxBytes = 8 * 1024

    public static func == (lhs: DirectoryRecord, rhs: DirectoryRecord) -> Bool {
        lhs.digest == rhs.digest && lhs.kind == rhs.kind && lhs.bytes == rhs.bytes
    }

    /// Hashes the digest's first eight bytes, not the record's kilobyte or so of certificates.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }

    /// SHA-256 of the kind byte then the bytes. Worked out once, when the record is made: a
    /// directory's summary and index hash every record at every sync.
    public let digest: [UInt8]

    /// Wraps a record's bytes.
    public init(kind: Kind, bytes: [UInt8]) {
        self.kind = kind
        self.bytes = bytes
        digest = Array(SHA256.hash(data: [kind.rawValue] + bytes))
    }

    /// A record as kept with its digest (a replica's table of the records it holds): the
    /// digest is taken as given, not worked out again (reading a national directory hashed
    /// thousands of records in every process). `verify` checks each against its bytes.
    public init(kind: Kind, bytes: [UInt8], digest: [UInt8]) {
        self.kind = kind
        self.bytes = bytes
        self.digest = digest
    }

    /// A digest of a set of records, the same whatever their order: SHA-256 of the sorted
    /// record digests. The digest of the empty set is 32 zero bytes.
    public static func digest(of records: some Collection<DirectoryRecord>) -> [UInt8] {
        guard !records.isEmpty else { return [UInt8](repeating: 0, count: 32) }
        var hasher = SHA256()
        for digest in Set(records.map(\.digest)).sorted(by: { $0.lexicographicallyPrecedes($1) }) { hasher.update(data: digest) }
        return Array(hasher.finalize())
    }

    /// A list of records as bytes: `count:varint` then `count × (kind:byte bytes)`.
    public static func encode(_ records: [DirectoryRecord]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(varint: UInt64(records.count))
        for record in records {
            writer.write(byte: record.kind.rawValue)
            writer.write(lengthPrefixed: record.bytes)
        }
        return writer.bytes
    }

    /// Reads a list written by ``encode(_:)``.
    public static func decodeList(_ bytes: [UInt8]) throws(DecodingError) -> [DirectoryRecord] {
        var reader = ByteReader(bytes)
        var records: [DirectoryRecord] = []
        let count = try reader.readVarint(limit: 100_000, "record count")
        for _ in 0..<count {
            guard let kind = Kind(rawValue: try reader.readByte()) else { throw DecodingError("unknown directory record kind") }
            records.append(DirectoryRecord(kind: kind, bytes: try reader.readLengthPrefixed(limit: maxBytes, "directory record")))
        }
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes after the records") }
        return records
    }

    /// Records as a small text file: a first line naming what it is, then base64.
    public static func fileText(_ title: String, _ records: [DirectoryRecord]) -> String {
        title + "\n" + Data(encode(records)).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed]) + "\n"
    }

    /// Reads a file written by ``fileText(_:_:)`` whose first line is `title`.
    public static func records(fromFileText text: String, title: String) throws(DecodingError) -> [DirectoryRecord] {
        var lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == title else { throw DecodingError("this is not a \(title.split(separator: " ").first ?? "") file (its first line should be '\(title)')") }
        lines.removeFirst()
        guard let data = Data(base64Encoded: lines.joined()) else { throw DecodingError("the file is damaged (its body is not base64)") }
        return try decodeList(Array(data))
    }
}
