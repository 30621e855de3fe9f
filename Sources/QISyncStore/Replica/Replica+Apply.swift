import Foundation
import GRDB
import QISyncCore

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
    @discardableResult
    public func apply(_ entries: [LogEntry]) throws -> ApplyReport {
        let runs = try LogRun.runs(of: entries)
        var decoded: [[Change]] = []
        for run in runs {
            try run.verify()
            decoded.append(try run.entries.map { entry throws -> Change in
                do {
                    let change = try entry.change()
                    try schema.validate(change)
                    return change
                } catch {
                    throw LogRejection(ref: entry.ref, reason: "\(error)")
                }
            })
        }
        return try database.write { db in
            var report = ApplyReport()
            let conflictsBefore = try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0
            let materializer = try Materializer(db: db, schema: schema)
            var maxHLC = HLC(rawValue: 0)
            for (run, changes) in zip(runs, decoded) {
                let first = run.entries[0]
                let log = LogID(origin: first.origin, scope: first.scope)
                var position = try logPosition(db, log) ?? LogPosition(seq: 0, hash: LogEntry.genesisHash)
                var startIndex = 0
                for entry in run.entries where entry.seq <= position.seq {
                    let held = try Data.fetchOne(db, sql: """
                        SELECT log.hash FROM log JOIN origin ON origin.id = log.origin
                        WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                        """, arguments: [Data(entry.origin.bytes), Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq)])
                    guard held.map(Array.init) == entry.hash else {
                        throw LogRejection(ref: entry.ref, reason: "it differs from the entry already held at that place (a forked log)")
                    }
                    report.duplicates += 1
                    startIndex += 1
                }
                guard startIndex < run.entries.count else { continue }
                let next = run.entries[startIndex]
                if next.seq != position.seq + 1 {
                    for entry in run.entries[startIndex...] {
                        try db.execute(sql: "INSERT OR IGNORE INTO pending_entry (origin, scope, seq, entry) VALUES (?, ?, ?, ?)",
                                       arguments: [Data(entry.origin.bytes), Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq), Data(entry.encoded())])
                        report.waiting += 1
                    }
                    continue
                }
                guard next.previousHash == position.hash else {
                    throw LogRejection(ref: next.ref, reason: "it does not chain onto entry \(position.seq) held here (a forked or altered log)")
                }
                for (entry, change) in zip(run.entries[startIndex...], changes[startIndex...]) {
                    try materializer.append(entry, change: change, updatesVector: entry.seq == run.entries.last!.seq)
                    maxHLC = max(maxHLC, entry.hlc)
                    report.applied += 1
                }
                position = LogPosition(seq: run.entries.last!.seq, hash: run.entries.last!.hash)
                try releaseWaiting(db, log: log, after: position, materializer: materializer, report: &report, maxHLC: &maxHLC)
            }
            try db.execute(sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'hlc'", arguments: [Int64(bitPattern: maxHLC.rawValue)])
            report.newConflicts = max(0, (try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0) - conflictsBefore)
            return report
        }
    }

    /// Applies waiting entries that now chain onto the log's head.
    private func releaseWaiting(_ db: Database, log: LogID, after start: LogPosition, materializer: Materializer,
                                report: inout ApplyReport, maxHLC: inout HLC) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT seq, entry FROM pending_entry WHERE origin = ? AND scope = ? AND seq > ? ORDER BY seq",
                                    arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: start.seq)])
        var run: [LogEntry] = []
        for row in rows {
            let entry = try LogEntry(decoding: Array(row[1] as Data))
            guard entry.seq == start.seq + UInt64(run.count) + 1 else { break }
            run.append(entry)
        }
        if !run.isEmpty {
            let linked = run[0].previousHash == start.hash && (try? LogRun(entries: run).verify()) != nil
            if linked {
                for entry in run {
                    let change = try entry.change()
                    try materializer.append(entry, change: change, updatesVector: entry.seq == run.last!.seq)
                    maxHLC = max(maxHLC, entry.hlc)
                }
                report.released += run.count
            } else {
                report.droppedForks += run.count
            }
        }
        let settled = run.last?.seq ?? start.seq
        try db.execute(sql: "DELETE FROM pending_entry WHERE origin = ? AND scope = ? AND seq <= ?",
                       arguments: [Data(log.origin.bytes), Int64(log.scope.rawValue), Int64(bitPattern: settled)])
    }
}
