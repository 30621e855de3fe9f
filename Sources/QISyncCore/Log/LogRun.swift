/// Why a run of entries was refused.
public struct LogRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The entry at fault.
    public let ref: VersionRef
    /// What was wrong with it.
    public let reason: String

    /// Creates a rejection.
    public init(ref: VersionRef, reason: String) {
        self.ref = ref
        self.reason = reason
    }

    public var description: String { "entry \(ref) refused: \(reason)" }
}

/// Contiguous entries of one origin's log, checked as a unit.
///
/// The chain links every entry to the one before; the last entry's signature covers
/// the chain. So one signature check per run authenticates every entry in it.
public struct LogRun: Sendable {
    /// The entries, in sequence order with no gaps.
    public let entries: [LogEntry]

    /// Wraps entries already known to be one log's consecutive entries, in order.
    public init(entries: [LogEntry]) { self.entries = entries }

    /// Splits entries of any origins, in any order and with duplicates, into runs.
    ///
    /// Each run holds consecutive sequence numbers of one (origin, scope); runs come
    /// out ordered by origin, scope and first sequence number.
    public static func runs(of entries: [LogEntry]) throws(LogRejection) -> [LogRun] {
        var byLog: [LogID: [UInt64: LogEntry]] = [:]
        for entry in entries {
            let log = LogID(origin: entry.origin, scope: entry.scope)
            if let existing = byLog[log]?[entry.seq] {
                guard existing == entry else {
                    throw LogRejection(ref: entry.ref, reason: "two different entries claim the same place in the log (a forked log)")
                }
                continue
            }
            byLog[log, default: [:]][entry.seq] = entry
        }
        var runs: [LogRun] = []
        for (_, log) in byLog.sorted(by: { $0.key < $1.key }) {
            var current: [LogEntry] = []
            for seq in log.keys.sorted() {
                if let last = current.last, last.seq + 1 != seq {
                    runs.append(LogRun(entries: current))
                    current = []
                }
                current.append(log[seq]!)
            }
            if !current.isEmpty { runs.append(LogRun(entries: current)) }
        }
        return runs
    }

    /// Checks the run's chain and its last signature.
    public func verify() throws(LogRejection) {
        for (previous, next) in zip(entries, entries.dropFirst()) where next.previousHash != previous.hash {
            throw LogRejection(ref: next.ref, reason: "its previous-entry hash does not match entry \(previous.seq): the log was altered or reordered")
        }
        if let first = entries.first, first.seq == 1, first.previousHash != LogEntry.genesisHash {
            throw LogRejection(ref: first.ref, reason: "the first entry of a log must chain from the zero hash")
        }
        guard let last = entries.last else { return }
        guard last.signature != nil else {
            throw LogRejection(ref: last.ref, reason: "the last entry of a run must carry its origin's signature")
        }
        guard last.hasValidSignature else {
            throw LogRejection(ref: last.ref, reason: "bad signature: it was not signed by its origin's key, or was altered after signing")
        }
    }
}
