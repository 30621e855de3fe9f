import Foundation
import GRDB
import QISyncCore

/// `verify`'s rebuild of the tables from the logs, applied on a thread of its own to the
/// scratch database as the entries are handed to it, in chunks, a few chunks ahead at most;
/// it then takes the digests of what it built (``CanonicalState/digests(_:schema:)``).
/// It commits every 50,000 entries with a fresh materializer, whose caches would otherwise
/// grow with the replica.
final class ScratchRebuild: @unchecked Sendable {
    /// An entry to append to the rebuild under its local number in the replica, materialised
    /// when its site's trust may make its change; `block` is the replica's block holding its
    /// body, deflated, when it is packed there: the rebuild keeps it as it is rather than the
    /// body (a third of the bytes to write, and a rebuild that looks a body up reads it there).
    struct Step {
        let entry: LogEntry
        let change: Change
        let materialises: Bool
        let id: Int64
        let block: [UInt8]?
    }

    private struct Stopped: Error {}
    private static let chunkSize = 256
    private static let entriesPerCommit = 50_000
    private let channel = BoundedChannel<[Step]>(capacity: 4)
    private var pending: [Step] = []
    private let work: BackgroundWork<[String: [UInt64]]>

    init(scratch: DatabaseQueue, schema: ReplicatedSchema) {
        let channel = self.channel
        work = BackgroundWork {
            defer { channel.cancel() }
            try scratch.writeWithoutTransaction { db in
                do {
                    try db.beginTransaction()
                    // Only digested: it packs no block of its own, and keeps those the replica packed.
                    var materializer = try Materializer(db: db, schema: schema)
                    materializer.packsBodies = false
                    var sinceCommit = 0
                    // The block last written, by its log and first entry: an entry is kept by
                    // its block only when the block was written with its first entry (a log
                    // missing that entry keeps the rest of the block's bodies in their rows).
                    var written: (origin: OriginID, scope: Scope, first: UInt64)?
                    while let chunk = channel.receive() {
                        for step in chunk {
                            var block = step.block
                            if block != nil {
                                let entry = step.entry, first = LogBlocks.first(ofBlockHolding: entry.seq)
                                if entry.seq == first {
                                    written = (entry.origin, entry.scope, first)
                                } else if !(written.map { $0 == (entry.origin, entry.scope, first) } ?? false) {
                                    block = nil
                                }
                            }
                            // The rebuild keeps no vector or running counts: nothing reads them.
                            try materializer.append(step.entry, change: step.change, updatesVector: false,
                                                    materialises: step.materialises, id: step.id, packedIn: block)
                        }
                        sinceCommit += chunk.count
                        if sinceCommit >= Self.entriesPerCommit {
                            try db.commit()
                            try db.beginTransaction()
                            materializer = try Materializer(db: db, schema: schema)
                            materializer.packsBodies = false
                            sinceCommit = 0
                        }
                    }
                    try db.commit()
                } catch {
                    if db.isInsideTransaction { try? db.rollback() }
                    throw error
                }
            }
            return try scratch.read { db in try CanonicalState.digests(db, schema: schema) }
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
