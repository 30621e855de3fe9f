import Foundation
import GRDB
import QISyncCore

/// Copies a replica's write-ahead log back into its database file from a connection and a
/// thread of its own, every ``interval``, while syncs take in batches.
///
/// Each batch a sync receives is applied in a transaction of its own and acknowledged only once
/// committed (SPEC 9), and with records' random keys each one writes most index pages into the
/// log again. Left to SQLite's automatic checkpoint, made by the connection that applies, the
/// copying and its two fsyncs stopped the applying — and the peer, waiting for
/// acknowledgements — part-way through a large sync and again at its end (about 150 ms of a
/// 100,000-entry sync). A passive checkpoint made on another connection waits for no reader
/// or writer, so the applying goes on meanwhile, and what is left to copy when the sync ends is
/// what the last interval wrote.
final class WALCheckpointer: @unchecked Sendable {
    /// How often the log is checkpointed while batches are received.
    static let interval: TimeInterval = 0.1

    private let stopping = DispatchSemaphore(value: 0)
    private let work: BackgroundWork<Void>

    /// Starts checkpointing the database at `path` every ``interval``. The connection is opened
    /// on the checkpointing thread, not on the session's way to its HELLO; should it not open,
    /// the thread ends and the applying connection's own checkpoints go on alone.
    init(path: String) {
        let stopping = self.stopping
        work = BackgroundWork {
            let connection = try DatabaseQueue(path: path, configuration: Replica.configuration())
            while stopping.wait(timeout: .now() + Self.interval) == .timedOut {
                // Busy (another connection checkpointing) or failed: the next interval tries
                // again, and the applying connection's own automatic checkpoint still bounds the log.
                _ = try? connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
    }

    /// Stops checkpointing, once a checkpoint under way is done.
    func stop() {
        stopping.signal()
        _ = work.result()
    }

    /// A replica's checkpointer while sessions receive batches: the first session's start
    /// starts it, the last one's end stops it (``Replica/beginReceivingBatches()``).
    final class Slot: @unchecked Sendable {
        // The lock guards `running`.
        private let lock = NSLock()
        private var running: WALCheckpointer?

        /// Starts checkpointing the database at `path`, unless it is already.
        func start(path: String) {
            lock.withLock { if running == nil { running = WALCheckpointer(path: path) } }
        }

        /// Stops checkpointing, once a checkpoint under way is done.
        func stop() {
            let stopped: WALCheckpointer? = lock.withLock {
                defer { running = nil }
                return running
            }
            stopped?.stop()
        }
    }
}
