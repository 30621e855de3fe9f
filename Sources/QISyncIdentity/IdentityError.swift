/// Why an identity, enrolment, revocation or peer was not accepted, in words a person can act on.
public struct IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong and what to do.
    public let message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
