import Foundation
import QISyncCore

/// Hands `verify`'s entries, as its reading thread reads them, to a rebuild of the tables on
/// a thread of its own, in chunks, a few chunks ahead at most; the rebuild gives back the
/// digests of what it built (``CanonicalState/digests(_:schema:)``'s form). Two rebuilds take
/// steps this way: ``FoldedRebuild`` (every run) and ``ScratchRebuild`` (when the first finds
/// the tables differ, to name what differs).
final class RebuildPipeline: @unchecked Sendable {
    /// An entry to rebuild from, under its local number in the replica, materialised when its
    /// site's trust may make its change. Steps come log by log (logs in order), each log's
    /// entries in order. `block` is the replica's block holding its body, deflated, when it is
    /// packed there (the scratch rebuild keeps it as it is rather than the body).
    struct Step {
        let entry: LogEntry
        let change: Change
        let materialises: Bool
        let id: Int64
        let block: [UInt8]?
    }

    private struct Stopped: Error {}
    private static let chunkSize = 256
    private let channel = BoundedChannel<[Step]>(capacity: 4)
    private var pending: [Step] = []
    private let work: BackgroundWork<[String: [UInt64]]>

    /// Starts `rebuild` on its own thread: it takes each chunk of steps in turn (nil once
    /// every step has been handed on) and returns its tables' digests.
    init(_ rebuild: @escaping @Sendable (_ next: () -> [Step]?) throws -> [String: [UInt64]]) {
        let channel = self.channel
        work = BackgroundWork {
            defer { channel.cancel() }
            return try rebuild { channel.receive() }
        }
    }

    /// Hands an entry on (in chunks); throws when the rebuild has failed (its error comes from ``digests()``).
    func append(_ step: Step) throws {
        pending.append(step)
        if pending.count >= Self.chunkSize { try flush() }
    }

    private func flush() throws {
        guard !pending.isEmpty else { return }
        guard channel.send(pending) else {
            // The rebuild has stopped: its error is the one to tell.
            _ = try work.value()
            throw Stopped()
        }
        pending = []
    }

    /// Every entry has been handed on.
    func finish() throws {
        try flush()
        channel.finish()
    }

    /// Stops the rebuild and waits for its thread.
    func abandon() {
        channel.cancel()
        _ = work.result()
    }

    /// The rebuilt tables' digests, once every entry handed on is applied; the rebuild's error if it failed.
    func digests() throws -> [String: [UInt64]] {
        try work.value()
    }
}
