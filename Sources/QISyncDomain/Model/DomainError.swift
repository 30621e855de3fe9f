/// A refused request, worded to say what was wrong and how to do it right.
public struct DomainError: Error, Sendable, CustomStringConvertible {
    /// The message shown to the person.
    public let message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
