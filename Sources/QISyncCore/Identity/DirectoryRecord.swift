import Crypto

/// A signed statement about who belongs to a trust, passed between replicas exactly as it was
/// made: an enrolment (a site's certificate and its trust's certificate) or a revocation.
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
    }

    /// What it says.
    public let kind: Kind
    /// Its bytes.
    public let bytes: [UInt8]

    /// The most bytes one record may hold.
    public static let maxBytes = 8 * 1024

    /// Wraps a record's bytes.
    public init(kind: Kind, bytes: [UInt8]) {
        self.kind = kind
        self.bytes = bytes
    }

    /// SHA-256 of the kind byte then the bytes.
    public var digest: [UInt8] { Array(SHA256.hash(data: [kind.rawValue] + bytes)) }

    /// A digest of a set of records, the same whatever their order: SHA-256 of the sorted
    /// record digests. The digest of the empty set is 32 zero bytes.
    public static func digest(of records: some Collection<DirectoryRecord>) -> [UInt8] {
        guard !records.isEmpty else { return [UInt8](repeating: 0, count: 32) }
        var hasher = SHA256()
        for digest in Set(records.map(\.digest)).sorted(by: { $0.lexicographicallyPrecedes($1) }) { hasher.update(data: digest) }
        return Array(hasher.finalize())
    }
}
