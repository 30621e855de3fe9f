/// Which of an origin's two logs a change goes to.
public enum Scope: UInt8, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// Stays inside the owning trust.
    case trust = 0
    /// May go to other trusts.
    case shared = 1

    /// Parses `trust` or `shared`.
    public init?(name: String) {
        switch name {
        case "trust": self = .trust
        case "shared": self = .shared
        default: return nil
        }
    }

    public var description: String { self == .trust ? "trust" : "shared" }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Names one entry of one origin's log: the version a write creates.
///
/// A change writes each cell at most once, so a cell write is named by its change.
public struct VersionRef: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The site that appended the entry.
    public let origin: OriginID
    /// The log it is in.
    public let scope: Scope
    /// Its position in that log, from 1.
    public let seq: UInt64

    /// Creates a reference.
    public init(origin: OriginID, scope: Scope, seq: UInt64) {
        self.origin = origin
        self.scope = scope
        self.seq = seq
    }

    public static func < (lhs: VersionRef, rhs: VersionRef) -> Bool {
        (lhs.origin, lhs.scope, lhs.seq) < (rhs.origin, rhs.scope, rhs.seq)
    }

    public var description: String { "\(origin.short)/\(scope)/\(seq)" }
}
