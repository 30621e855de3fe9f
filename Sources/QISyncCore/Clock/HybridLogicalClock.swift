/// A hybrid logical clock value: milliseconds since 1970 in the high 48 bits, a counter in the low 16.
///
/// Values are unique per origin and grow with causality: a write made after seeing
/// another write always carries a larger value.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed value.
    public let rawValue: UInt64

    /// Wraps a packed value.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Makes a value from milliseconds and a counter.
    public init(milliseconds: UInt64, counter: UInt16) {
        rawValue = milliseconds << 16 | UInt64(counter)
    }

    /// The physical part, in milliseconds since 1970.
    public var milliseconds: UInt64 { rawValue >> 16 }

    /// The logical counter.
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: HLC, rhs: HLC) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(milliseconds).\(counter)" }
}

/// The clock state of one site: the last value it issued or saw.
public struct HybridLogicalClock: Sendable {
    /// The largest value issued or received so far.
    public private(set) var last: HLC

    /// Starts from a stored last value.
    public init(last: HLC = HLC(rawValue: 0)) { self.last = last }

    /// Issues a new value for a local write, given the wall clock in milliseconds.
    public mutating func tick(now milliseconds: UInt64) -> HLC {
        let physical = HLC(milliseconds: milliseconds, counter: 0)
        last = physical > last ? physical : HLC(rawValue: last.rawValue + 1)
        return last
    }

    /// Takes in a value seen in another site's entry.
    public mutating func receive(_ value: HLC) {
        if value > last { last = value }
    }
}
