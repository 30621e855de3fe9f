import Foundation
import GRDB
import QISyncCore

/// `verify`'s rebuild of the tables from the logs in a scratch database, through the
/// ``Materializer`` itself, so that where the tables differ from what the logs give, the two
/// can be read side by side (``CanonicalState/differences(live:rebuilt:schema:sections:limit:)``).
/// It commits every 50,000 entries with a fresh materializer, whose caches would otherwise
/// grow with the replica.
enum ScratchRebuild {
    private static let entriesPerCommit = 50_000

    /// A pipeline applying the steps handed to it to `scratch` (made with the replica's
    /// schema), then taking the digests of what it built.
    static func pipeline(scratch: DatabaseQueue, schema: ReplicatedSchema) -> RebuildPipeline {
        RebuildPipeline { next in
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
                    while let chunk = next() {
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
                        if sinceCommit >= entriesPerCommit {
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
}
