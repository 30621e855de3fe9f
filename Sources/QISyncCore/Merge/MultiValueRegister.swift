/// The order that picks a cell's displayed value among its heads: higher HLC wins, then higher origin.
public struct Stamp: Hashable, Comparable, Sendable {
    /// When the write was made.
    public let hlc: HLC
    /// Who made it.
    public let origin: OriginID

    /// Creates a stamp.
    public init(hlc: HLC, origin: OriginID) {
        self.hlc = hlc
        self.origin = origin
    }

    public static func < (lhs: Stamp, rhs: Stamp) -> Bool { (lhs.hlc, lhs.origin) < (rhs.hlc, rhs.origin) }
}

/// The merge rule of one cell: a multi-value register.
///
/// A cell's heads are the writes no other write supersedes. A new write removes the
/// heads it names and joins the heads itself unless a write already applied named it
/// (a late-arriving superseded write). Heads holding more than one distinct value are a
/// conflict (``isConflict(_:)``); the displayed
/// value is the head with the highest ``Stamp``. Applying writes in any order gives the
/// same heads: the writes not superseded by any applied write.
public enum MultiValueRegister {
    /// The heads after applying `write`.
    ///
    /// - Parameters:
    ///   - heads: the current heads.
    ///   - write: the new write's version.
    ///   - supersedes: the versions it names, applied or not.
    ///   - isSuperseded: whether an already applied write named `write`.
    public static func apply<Version: Hashable>(
        heads: Set<Version>, write: Version, supersedes: Set<Version>, isSuperseded: Bool
    ) -> Set<Version> {
        var next = heads.subtracting(supersedes)
        if !isSuperseded { next.insert(write) }
        return next
    }

    /// Whether heads holding these values are a conflict: they hold more than one distinct
    /// value. Several heads with one value (the same tag added at two sites, two concurrent edits
    /// that both say a record exists) are not a conflict; they stay heads until a later write
    /// supersedes them.
    public static func isConflict(_ values: some Sequence<Value>) -> Bool {
        var first: Value?
        for value in values {
            if let first { if first != value { return true } } else { first = value }
        }
        return false
    }

    /// The head whose value is displayed: the one with the highest stamp.
    public static func winner<Version>(of heads: some Sequence<Version>, stamp: (Version) -> Stamp) -> Version? {
        heads.max { stamp($0) < stamp($1) }
    }
}
