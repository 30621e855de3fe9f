import Foundation
import QISyncCore
import QISyncProtocol
import QISyncStore

/// How a sync session went, from one side.
public struct SyncReport: Sendable {
    /// The peer's HELLO, if it got that far.
    public var peer: Hello?
    /// The counters when it ended.
    public var counters: SyncCounters
    /// Bytes received and sent on the wire (frames, headers included).
    public var wireIn: UInt64 = 0
    public var wireOut: UInt64 = 0
    /// When it started.
    public var started: Date
    /// How long it took.
    public var seconds: Double = 0
    /// What the peer holds at the end, as far as this side knows.
    public var peerHolds: VersionVector?
    /// Nil when the session finished; otherwise why it failed.
    public var error: SyncError?
    /// The peer as `TRUST/site`: proven by its TLS certificate, or its HELLO in the test mode.
    public var peerIdentity: String?
    /// Why received entries were refused here, when some were.
    public var refusals: [String] = []
    /// For a dry run (`sync plan`): what the session would have done.
    public var plan: SyncPlan?

    /// Entry bytes moved both ways, before compression.
    public var rawBytes: UInt64 { counters.bytesIn + counters.bytesOut }
}

/// What a sync would do, worked out by a dry run that keeps nothing.
public struct SyncPlan: Sendable {
    /// What applying the peer's entries here would do (entries, waiting, refusals, conflicts).
    public var incoming: ApplyReport
    /// Records the peer's entries touch.
    public var incomingRecords: Int
    /// What this side would send: entries, bytes of changes, records.
    public var outgoing: (entries: UInt64, bytes: UInt64, records: Int)

    /// How many records (rows with a 16-byte id) the entries write to.
    public static func records(in entries: [LogEntry]) -> Int {
        var keys = Set<[UInt8]>()
        for entry in entries { for row in (try? entry.change().rows) ?? [] where row.key.count == 16 { keys.insert(row.key) } }
        return keys.count
    }
}
