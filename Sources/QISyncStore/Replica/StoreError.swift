import QISyncCore

/// An error from the replica store, worded for the person who has to act on it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong and what to do.
    public let message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
