/// Why a session ended badly; sent to the peer in an `ERROR` message.
public enum SyncErrorCode: UInt64, Sendable, CustomStringConvertible {
    case versionMismatch = 1
    case malformedMessage = 2
    case unexpectedMessage = 3
    case frameTooLarge = 4
    case inflatedTooLarge = 5
    case entriesRefused = 6
    case timeout = 7
    case internalError = 8
    case shuttingDown = 9
    case forkedLog = 10
    case connectionLost = 11
    case notAuthorised = 12
    case cancelled = 13

    public var description: String {
        switch self {
        case .versionMismatch: "protocol version mismatch"
        case .malformedMessage: "malformed message"
        case .unexpectedMessage: "unexpected message"
        case .frameTooLarge: "frame over the size limit"
        case .inflatedTooLarge: "inflated data over the size limit"
        case .entriesRefused: "entries refused"
        case .timeout: "the peer stopped responding"
        case .internalError: "internal error"
        case .shuttingDown: "the peer is shutting down"
        case .forkedLog: "forked log"
        case .connectionLost: "connection lost"
        case .notAuthorised: "not authorised"
        case .cancelled: "cancelled"
        }
    }
}

/// A failed sync session: what went wrong, and whether the peer said so or we did.
public struct SyncError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure.
    public let code: SyncErrorCode
    /// Details for the person reading it.
    public let message: String
    /// True when the peer reported it in an `ERROR` message.
    public let fromPeer: Bool

    /// Creates an error.
    public init(_ code: SyncErrorCode, _ message: String, fromPeer: Bool = false) {
        self.code = code
        self.message = message
        self.fromPeer = fromPeer
    }

    public var description: String {
        (fromPeer ? "the peer reported: " : "") + "\(code): \(message)"
    }
}
