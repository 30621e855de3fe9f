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
