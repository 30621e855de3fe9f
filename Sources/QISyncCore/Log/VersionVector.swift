import Crypto

/// Where one origin's log stands at a replica: the highest contiguous entry held and its hash.
public struct LogPosition: Hashable, Sendable {
    /// The highest sequence number held with every one before it.
    public var seq: UInt64
    /// That entry's hash, so a forked log is detected.
    public var hash: [UInt8]

    /// Creates a position.
    public init(seq: UInt64, hash: [UInt8]) {
        self.seq = seq
        self.hash = hash
    }
}

/// A log's name: its origin and scope.
public struct LogID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The site whose log it is.
    public let origin: OriginID
    /// Which of its two logs.
    public let scope: Scope

    /// Creates a log id.
    public init(origin: OriginID, scope: Scope) {
        self.origin = origin
        self.scope = scope
    }

    public static func < (lhs: LogID, rhs: LogID) -> Bool { (lhs.origin, lhs.scope) < (rhs.origin, rhs.scope) }

    public var description: String { "\(origin.short)/\(scope)" }
}

/// The version vector: for each (origin, scope), how far the replica holds that log.
///
/// Comparing two vectors tells what one replica lacks; the cost grows with the number
/// of origins, not with the data.
public struct VersionVector: Hashable, Sendable {
    /// The positions, by log.
    public var positions: [LogID: LogPosition]

    /// Creates a vector.
    public init(_ positions: [LogID: LogPosition] = [:]) { self.positions = positions }

    /// The highest contiguous sequence number held of `log`, 0 when none.
    public func seq(of log: LogID) -> UInt64 { positions[log]?.seq ?? 0 }

    /// The logs where `other` is ahead of this vector, with the first sequence number this side lacks.
    public func missing(comparedWith other: VersionVector) -> [(log: LogID, from: UInt64, to: UInt64)] {
        other.positions.keys.sorted().compactMap { log in
            let theirs = other.seq(of: log)
            let ours = seq(of: log)
            return theirs > ours ? (log, ours + 1, theirs) : nil
        }
    }
}

extension VersionVector {
    /// How many buckets protocol version 2 divides a vector into before exchanging it.
    public static let bucketCount = 64
    /// The bytes of each bucket's digest: a sync between replicas in step sends 64 of them each
    /// way (at most about 1 KB together), however many logs they hold.
    public static let bucketDigestBytes = 8

    /// A log's bucket: the top six bits of its origin's first byte.
    public static func bucket(of log: LogID) -> Int { Int(log.origin.bytes[0] >> 2) }

    /// One 8-byte digest per bucket (protocol version 2's VECTOR DIGESTS): the first 8 bytes of
    /// `SHA-256` over the bucket's logs in log order, each as origin, scope, seq (8 bytes,
    /// big-endian) and hash. Two sides whose digests of a bucket agree hold its logs at the same
    /// positions, so only the buckets that differ need their positions sent.
    public var bucketDigests: [[UInt8]] {
        var hashers = [SHA256](repeating: SHA256(), count: Self.bucketCount)
        for (log, position) in positions.sorted(by: { $0.key < $1.key }) {
            let bucket = Self.bucket(of: log)
            hashers[bucket].update(data: log.origin.bytes)
            hashers[bucket].update(data: [log.scope.rawValue])
            hashers[bucket].update(data: (0..<8).map { UInt8(truncatingIfNeeded: position.seq >> (56 - 8 * $0)) })
            hashers[bucket].update(data: position.hash)
        }
        return hashers.map { Array($0.finalize().prefix(Self.bucketDigestBytes)) }
    }

    /// The logs of the given buckets only.
    public func restricted(toBuckets buckets: Set<Int>) -> VersionVector {
        VersionVector(positions.filter { buckets.contains(Self.bucket(of: $0.key)) })
    }
}

extension VersionVector {
    /// `SHA-256` of the 64 bucket digests in order: one digest of the whole vector.
    public var digest: [UInt8] { Self.digest(ofBuckets: bucketDigests) }

    /// `SHA-256` of bucket digests (a vector's `bucketDigests`) in order.
    public static func digest(ofBuckets digests: [[UInt8]]) -> [UInt8] { Array(SHA256.hash(data: digests.flatMap { $0 })) }

    /// The buckets whose digests in `mine` differ from `theirs`, as a mask: bit `b` (value
    /// `1 << b`) for bucket `b`.
    public static func differingBuckets(_ mine: [[UInt8]], from theirs: [[UInt8]]) -> UInt64 {
        var mask: UInt64 = 0
        for (bucket, digest) in mine.enumerated() where bucket >= theirs.count || digest != theirs[bucket] {
            mask |= 1 << UInt64(bucket)
        }
        return mask
    }

    /// The buckets of a mask, as a set.
    public static func buckets(in mask: UInt64) -> Set<Int> { Set((0..<bucketCount).filter { mask & (1 << UInt64($0)) != 0 }) }

    /// A vector told as the difference from `expected` (a bundle receipt, SPEC section 15):
    /// `expected`'s logs in the buckets not in `mask`, and `listed` (the logs of the buckets in
    /// `mask`) for the rest.
    public static func rebuilt(expected: VersionVector, differing mask: UInt64, listed: VersionVector) -> VersionVector {
        let differing = buckets(in: mask)
        var rebuilt = VersionVector(expected.positions.filter { !differing.contains(bucket(of: $0.key)) })
        for (log, position) in listed.positions where differing.contains(bucket(of: log)) { rebuilt.positions[log] = position }
        return rebuilt
    }

    /// Each log at the further of its two positions here and in `other` (`other`'s when they
    /// stand at the same place).
    public func merged(with other: VersionVector) -> VersionVector {
        var merged = self
        for (log, position) in other.positions where position.seq >= seq(of: log) { merged.positions[log] = position }
        return merged
    }
}
