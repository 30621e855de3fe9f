import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

/// What applying a set of entries did.
public struct ApplyReport: Sendable, Equatable {
    /// Entries appended and materialised.
    public var applied = 0
    /// Entries already held.
    public var duplicates = 0
    /// Entries kept aside until a missing predecessor arrives.
    public var waiting = 0
    /// Entries that had been waiting and were applied now.
    public var released = 0
    /// Waiting entries dropped because they did not chain onto what arrived (a forked log).
    public var droppedForks = 0
    /// How many more cells are in conflict after the batch than before it.
    public var newConflicts = 0
    /// Entries refused: not accepted from their site (unenrolled, unpinned trust, revoked,
    /// another trust's trust-scope entries), or kept in their log with their change left out
    /// (a change to a record the site's trust does not own).
    public var refused = 0
    /// Why, for the first few refusals.
    public var refusalReasons: [String] = []

    mutating func refuse(_ count: Int, _ reason: String) {
        refused += count
        if refusalReasons.count < 5, !refusalReasons.contains(reason) { refusalReasons.append(reason) }
    }

    /// Creates an empty report.
    public init() {}
}

extension Replica {
    /// Verifies and applies other replicas' entries, in any order, with duplicates.
    ///
    /// All of it or nothing: every run's chain and last signature, and every change's
    /// encoding and schema, are checked before anything is written; a failure throws
    /// ``LogRejection`` or ``StoreError`` and leaves the replica unchanged. Entries whose
    /// predecessors are missing wait in the replica and apply when those arrive.
    ///
    /// Authorisation is judged entry by entry, and a refusal does not stop the rest of the
    /// batch: entries from sites not enrolled in a trust pinned here, from revoked sites
    /// after their cut-off, or trust-scope entries of another trust are not kept; an entry
    /// whose change touches records its site's trust does not own is kept in its log (the
    /// chain goes on) but changes nothing. Each refusal is recorded with `source` for `audit`.
    @discardableResult
    public func apply(_ entries: [LogEntry], source: String? = nil) throws -> ApplyReport {
        try apply(try verify(batch: entries), source: source)
    }

    /// Applies a batch checked already (``verify(batch:)``, perhaps on another thread while
    /// the batch before was applied), in one transaction.
    public func apply(_ batch: VerifiedBatch, source: String? = nil) throws -> ApplyReport {
        try database.write { db in try apply(db, runs: batch.runs, decoded: batch.decoded, blocks: batch.blocks, source: source) }
    }

    /// Checks a batch as ``apply(_:source:)`` does before applying it (throws ``LogRejection``):
    /// splits it into runs and checks each run's chain and last signature, and every change's
    /// encoding and schema. No database is needed, so it can run ahead of the apply.
    ///
    /// Runs are checked on every core at once (a national sync's batch holds hundreds of
    /// short runs, each with a signature to check); the error thrown is the first run's in
    /// order, as checking them one by one would throw.
    public func verify(batch entries: [LogEntry]) throws -> VerifiedBatch {
        let runs = try LogRun.runs(of: entries)
        let schema = self.schema
        let checked = ParallelMap.map(runs, minimumPerTask: 4) { run -> Result<([Change], [UInt64: [UInt8]]), LogRejection> in
            Result { () throws(LogRejection) -> ([Change], [UInt64: [UInt8]]) in
                try run.verify()
                let changes = try run.entries.map { entry throws(LogRejection) -> Change in
                    do {
                        let change = try entry.change()
                        try schema.validate(change)
                        return change
                    } catch {
                        throw LogRejection(ref: entry.ref, reason: "\(error)")
                    }
                }
                // The run's whole blocks of bodies, deflated here rather than on the thread that applies.
                return (changes, (try? LogBlocks.prepare(run.entries)) ?? [:])
            }
        }
        let results = try checked.map { try $0.get() }
        return VerifiedBatch(runs: runs, decoded: results.map(\.0), blocks: results.map(\.1))
    }

    /// Shows what applying entries would do (applied, waiting, refused, new conflicts) without
    /// changing anything: the same work in a transaction that is rolled back.
    /// `directory` records (a bundle's) are taken in first, as an import would.
    public func preview(_ entries: [LogEntry], directory records: [DirectoryRecord] = [], source: String? = nil) throws -> ApplyReport {
        let batch = try verify(batch: entries)
        var report = ApplyReport()
        try database.inTransaction { db in
            _ = try importDirectory(db, records)
            report = try apply(db, runs: batch.runs, decoded: batch.decoded, blocks: batch.blocks, source: source)
            return .rollback
        }
        return report
    }

    /// `blocks`: each run's whole blocks of bodies, made ready (``LogBlocks/prepare(_:)``), by first entry.
    func apply(_ db: Database, runs: [LogRun], decoded: [[Change]], blocks: [[UInt64: [UInt8]]] = [], source: String?) throws -> ApplyReport {
        var report = ApplyReport()
        let conflictsBefore = try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0
        let materializer = try Materializer(db: db, schema: schema)
        let directory = try directory(db)
        var maxHLC = HLC(rawValue: 0)
        for (index, (run, fullChanges)) in zip(runs, decoded).enumerated() {
            let admitted = try admitted(db, run.entries, directory: directory, source: source, report: &report)
            guard admitted > 0 else { continue }
            // (Whole, as nearly always, the run's own arrays: a copy retained every entry's parts.)
            let kept = admitted == run.entries.count ? run.entries : Array(run.entries.prefix(admitted))
            // A redacted body names its own hash: only a redaction its site's trust signed makes it good.
            if let forged = kept.first(where: { $0.isRedacted && !directory.vouches(forRedacted: $0) }) {
                throw LogRejection(ref: forged.ref, reason: "a redacted entry without a redaction record of its trust that vouches for its body")
            }
            let changes = admitted == fullChanges.count ? fullChanges : Array(fullChanges.prefix(admitted))
            let first = kept[0]
            let log = LogID(origin: first.origin, scope: first.scope)
            var position = try logPosition(db, log) ?? LogPosition(seq: 0, hash: LogEntry.genesisHash)
            var startIndex = 0
            for entry in kept where entry.seq <= position.seq {
                let held = try Data.fetchOne(db.cachedStatement(sql: """
                    SELECT log.hash FROM log JOIN origin ON origin.id = log.origin
                    WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                    """), arguments: [Data(entry.origin.bytes), Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq)])
                guard held.map(Array.init) == entry.hash else {
                    throw LogRejection(ref: entry.ref, reason: "it differs from the entry already held at that place (a forked log)")
                }
                report.duplicates += 1
                startIndex += 1
            }
            guard startIndex < kept.count else { continue }
            let next = kept[startIndex]
            if next.seq != position.seq + 1 {
                for entry in kept[startIndex...] {
                    try db.cachedStatement(sql: "INSERT OR IGNORE INTO pending_entry (origin, scope, seq, entry) VALUES (?, ?, ?, ?)")
                        .execute(arguments: [Data(entry.origin.bytes), Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq), Data(entry.encoded())])
                    report.waiting += 1
                }
                continue
            }
            guard next.previousHash == position.hash else {
                throw LogRejection(ref: next.ref, reason: "it does not chain onto entry \(position.seq) held here (a forked or altered log)")
            }
            let authority = authority(of: first.origin, directory: directory)
            let lastSeq = kept.last!.seq
            // Blocks made ready whose entries are all appended now (not those a refusal cut short or the log already held).
            let ready = index < blocks.count ? blocks[index].filter { $0.key >= next.seq && $0.key + LogBlocks.entries - 1 <= lastSeq } : [:]
            for (entry, change) in zip(kept[startIndex...], changes[startIndex...]) {
                let block = ready.isEmpty ? nil : ready[LogBlocks.first(ofBlockHolding: entry.seq)]
                try append(db, entry, change: change, updatesVector: entry.seq == lastSeq, materializer: materializer,
                           authority: authority, packedIn: block, source: source, report: &report)
                maxHLC = max(maxHLC, entry.hlc)
            }
            position = LogPosition(seq: kept.last!.seq, hash: kept.last!.hash)
            try releaseWaiting(db, log: log, after: position, materializer: materializer, directory: directory, source: source,
                               report: &report, maxHLC: &maxHLC)
        }
        try db.execute(sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'hlc'", arguments: [Int64(bitPattern: maxHLC.rawValue)])
        // Entries that arrived whole after their redaction did take it now.
        if !directory.redactions.isEmpty { try enforceRedactions(db) }
        report.newConflicts = max(0, (try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0) - conflictsBefore)
        return report
    }

    /// How far ahead of this replica's clock an entry's time may be (a day, in milliseconds).
    static let maximumClockLead: UInt64 = 24 * 3600 * 1000

    /// How many of a run's first entries its site may add here (all or a prefix); the rest
    /// are recorded as refused.
    private func admitted(_ db: Database, _ entries: [LogEntry], directory: TrustDirectory, source: String?,
                          report: inout ApplyReport) throws -> Int {
        // A run is one log: whether its site and scope are accepted is decided once; only a
        // revocation's cut-off depends on the entry's number.
        var count = entries.count
        var reason: String?
        let first = entries[0]
        let horizon = now() + Self.maximumClockLead
        if let refusal = directory.refusal(origin: first.origin, scope: first.scope, seq: first.seq) {
            count = 0
            reason = refusal
        } else if let index = entries.firstIndex(where: { $0.hlc.milliseconds > horizon }) {
            // An entry from a clock far ahead would win every concurrent edit and drag every
            // replica's clock forward: it waits (its site still has it) until this clock catches up.
            // Keep only up to the last signed entry before it: a log held here always ends signed.
            count = entries[..<index].lastIndex(where: { $0.signature != nil }).map { $0 + 1 } ?? 0
            reason = "entry \(entries[index].seq) of site \(first.origin.short)'s \(first.scope) log is dated more than a day ahead of this replica's clock; it is refused until the clocks agree"
        } else if let revocation = directory.revocations[first.origin], let index = entries.firstIndex(where: { revocation.refuses(scope: $0.scope, seq: $0.seq) }),
                  let refusal = directory.refusal(origin: first.origin, scope: first.scope, seq: entries[index].seq) {
            count = index
            reason = refusal
        }
        if count > 0, let revocation = directory.revocations[entries[0].origin], let cut = revocation.lastAccepted[entries[0].scope],
           let last = entries.prefix(count).last(where: { $0.seq == cut.seq }), last.hash != cut.hash {
            count = 0
            reason = "entry \(cut.seq) of a revoked site's log differs from the one its trust recorded when revoking it"
        }
        if let reason {
            for entry in entries[count...] { try recordRefusal(db, entry: entry, stored: false, reason: reason, source: source) }
            report.refuse(entries.count - count, reason)
        }
        return count
    }

    /// Whose a run's entries are, for judging what their changes may touch: worked out once a run.
    private struct SiteAuthority {
        let trust: String
        let ownerTag: [UInt8]
        let trustKey: [UInt8]?
    }

    private func authority(of site: OriginID, directory: TrustDirectory) -> SiteAuthority {
        let trust = directory.trust(of: site) ?? ""
        return SiteAuthority(trust: trust, ownerTag: directory.ownerTags[trust] ?? RecordID.ownerTag(ofTrust: trust),
                             trustKey: trustKey(ofSite: site, in: directory))
    }

    /// Appends an admitted entry; its change is materialised when its site's trust owns everything it touches.
    private func append(_ db: Database, _ entry: LogEntry, change: Change, updatesVector: Bool, materializer: Materializer,
                        authority: SiteAuthority, packedIn block: [UInt8]? = nil, source: String?, report: inout ApplyReport) throws {
        let trust = authority.trust
        if let violation = schema.ownershipViolation(of: change, origin: entry.origin, trust: trust, ownerTag: authority.ownerTag,
                                                     trustKey: authority.trustKey) {
            try materializer.append(entry, change: change, updatesVector: updatesVector, materialises: false, packedIn: block)
            let reason = "a change from a site of \(trust) was refused: \(violation)"
            try recordRefusal(db, entry: entry, stored: true, reason: reason, source: source)
            report.refuse(1, reason)
        } else {
            try materializer.append(entry, change: change, updatesVector: updatesVector, packedIn: block)
            report.applied += 1
        }
    }

    /// Applies waiting entries that now chain onto the log's head.
    private func releaseWaiting(_ db: Database, log: LogID, after start: LogPosition, materializer: Materializer,
                                directory: TrustDirectory, source: String?, report: inout ApplyReport, maxHLC: inout HLC) throws {
        let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT seq, entry FROM pending_entry WHERE origin = ? AND scope = ? AND seq > ? ORDER BY seq"),
                                    arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: start.seq)])
        var run: [LogEntry] = []
        for row in rows {
            let entry = try LogEntry(decoding: Array(row[1] as Data))
            guard entry.seq == start.seq + UInt64(run.count) + 1 else { break }
            run.append(entry)
        }
        let settled = run.last?.seq ?? start.seq
        if !run.isEmpty {
            let linked = run[0].previousHash == start.hash && (try? LogRun(entries: run).verify()) != nil
            if linked {
                var released = ApplyReport()
                let admitted = try admitted(db, run, directory: directory, source: source, report: &released)
                run = Array(run.prefix(admitted))
                let authority = authority(of: log.origin, directory: directory)
                for entry in run {
                    let change = try entry.change()
                    try append(db, entry, change: change, updatesVector: entry.seq == run.last!.seq, materializer: materializer,
                               authority: authority, source: source, report: &released)
                    maxHLC = max(maxHLC, entry.hlc)
                }
                report.released += released.applied
                for reason in released.refusalReasons { report.refuse(0, reason) }
                report.refused += released.refused
            } else {
                report.droppedForks += run.count
            }
        }
        try db.cachedStatement(sql: "DELETE FROM pending_entry WHERE origin = ? AND scope = ? AND seq <= ?")
            .execute(arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: settled)])
    }
}

/// One transaction taking in what a bundle carries: its directory records, then its batches of
/// entries, each verified and applied as a sync would. Nothing is kept unless all of it is
/// (``Replica/importing(commit:_:)``).
public final class ReplicaImport {
    let replica: Replica
    let db: Database
    /// What the batches applied so far did, together.
    public private(set) var report = ApplyReport()
    /// The records (rows with a 16-byte id) the batches so far write to.
    private var keys = Set<RecordKeyBits>()
    /// How many records (rows with a 16-byte id) the batches so far write to.
    public var recordsWritten: Int { keys.count }

    init(replica: Replica, db: Database) {
        self.replica = replica
        self.db = db
    }

    /// Verifies and keeps directory records, as ``Replica/importDirectory(_:)`` does.
    @discardableResult
    public func importDirectory(_ records: [DirectoryRecord]) throws -> DirectoryImport {
        try replica.importDirectory(db, records)
    }

    /// Verifies and applies one batch, as ``Replica/apply(_:source:)`` does; a failure ends the
    /// whole import with nothing kept.
    @discardableResult
    public func apply(_ entries: [LogEntry], source: String?) throws -> ApplyReport {
        try apply(try replica.verify(batch: entries), source: source)
    }

    /// Applies one batch checked already (``Replica/verify(batch:)``, perhaps on another thread).
    @discardableResult
    public func apply(_ batch: VerifiedBatch, source: String?) throws -> ApplyReport {
        for changes in batch.decoded {
            for change in changes { for row in change.rows where row.key.count == 16 { keys.insert(RecordKeyBits(row.key)) } }
        }
        let applied = try replica.apply(db, runs: batch.runs, decoded: batch.decoded, blocks: batch.blocks, source: source)
        report.applied += applied.applied
        report.duplicates += applied.duplicates
        report.waiting += applied.waiting
        report.released += applied.released
        report.droppedForks += applied.droppedForks
        report.newConflicts += applied.newConflicts
        for reason in applied.refusalReasons { report.refuse(0, reason) }
        report.refused += applied.refused
        return applied
    }
}

/// A batch of entries whose runs' chains and signatures and whose changes' encoding and schema
/// have been checked, ready to apply: the checks need no database, so they can run ahead.
public struct VerifiedBatch: Sendable {
    let runs: [LogRun]
    let decoded: [[Change]]
    /// Each run's whole blocks of bodies, deflated (``LogBlocks/prepare(_:)``), by first entry.
    var blocks: [[UInt64: [UInt8]]] = []
}

extension Replica {
    /// Runs `body` in one write transaction for taking in a bundle; commits only when `commit`
    /// is true and `body` returns (a dry run rolls back), and keeps nothing if it throws.
    public func importing<T>(commit: Bool = true, _ body: (ReplicaImport) throws -> T) throws -> T {
        var result: T?
        // One transaction for the whole bundle: with SQLite's default 2 MB page cache, a large
        // import spills dirty pages to the WAL again and again (a 225,000-entry bundle spent
        // most of its time in the kernel writing them). A larger cache for the import's length;
        // SQLite takes the memory only as pages are used.
        let cache = try database.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } ?? -2000
        try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = \(Self.importCacheSize)") }
        defer { try? database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = \(cache)") } }
        try database.inTransaction { db in
            result = try body(ReplicaImport(replica: self, db: db))
            return commit ? .commit : .rollback
        }
        return result!
    }

    /// The page cache while a bundle is imported, in SQLite's units (negative: KiB).
    static let importCacheSize = -65536

    /// Sets the connection up for taking in many batches, each a transaction of its own (a
    /// sync): the import's page cache, and the write-ahead log checkpointed in the background,
    /// every tenth of a second from a connection of its own (``WALCheckpointer``), with the
    /// applying connection's own checkpoint every 10,000 pages rather than SQLite's 1,000 (it
    /// copies pages to the file while the sync waits). Sessions at once share it; when the last
    /// ends (``endReceivingBatches()``) the defaults come back and the log is checkpointed.
    public func beginReceivingBatches() throws {
        guard receiving.begin() else { return }
        try database.configure("PRAGMA cache_size = \(Self.importCacheSize)")
        try database.configure("PRAGMA wal_autocheckpoint = 10000")
        checkpointer.start(path: databasePath)
    }

    /// Ends what ``beginReceivingBatches()`` began.
    public func endReceivingBatches() {
        guard receiving.end() else { return }
        checkpointer.stop()
        try? database.configure("PRAGMA cache_size = \(Self.defaultCacheSize)")
        try? database.configure("PRAGMA wal_autocheckpoint = 1000")
        try? database.configure("PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// SQLite's default page cache (2 MB), which replicas otherwise keep.
    static let defaultCacheSize = -2000

    func apply(_ db: Database, _ entries: [LogEntry], source: String?) throws -> ApplyReport {
        let batch = try verify(batch: entries)
        return try apply(db, runs: batch.runs, decoded: batch.decoded, blocks: batch.blocks, source: source)
    }
}
