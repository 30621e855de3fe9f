import Foundation
import GRDB
import QISyncCore

/// What `verify` found.
public struct VerifyReport: Sendable {
    /// SQLite's `PRAGMA integrity_check` answer (`ok` when sound).
    public var integrity: String = ""
    /// Logs checked.
    public var logs = 0
    /// Entries whose chain and signature were checked.
    public var entries = 0
    /// Problems with chains, signatures or vector heads.
    public var logProblems: [String] = []
    /// Where the materialised tables differ from a rebuild from the logs.
    public var differences: [String] = []

    /// Whether everything checked out.
    public var isSound: Bool { integrity == "ok" && logProblems.isEmpty && differences.isEmpty }
}

extension Replica {
    /// Checks SQLite's integrity, every log's chain and every signature held (each log must end
    /// with a signed entry, whose signature covers the chain before it), and rebuilds
    /// the materialised state from the logs in a scratch database to compare it with this one.
    public func verify() throws -> VerifyReport {
        var report = VerifyReport()
        // One read transaction: a consistent snapshot even while syncs write.
        let (integrity, entries, vector, live) = try database.read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; "),
             try Self.entries(db, after: VersionVector(), scopes: Set(Scope.allCases), maxEntries: .max, maxBytes: .max),
             try Self.versionVector(db),
             try CanonicalState.read(db, schema: schema))
        }
        report.integrity = integrity
        report.logs = vector.positions.count
        report.entries = entries.count
        var expected: [LogID: UInt64] = [:]
        var previous: [LogID: LogEntry] = [:]
        for entry in entries {
            let log = LogID(origin: entry.origin, scope: entry.scope)
            let seq = (expected[log] ?? 0) + 1
            if entry.seq != seq { report.logProblems.append("\(log): entry \(seq) is missing") }
            expected[log] = entry.seq
            if let before = previous[log], before.hash != entry.previousHash {
                report.logProblems.append("\(entry.ref): does not chain onto the entry before it")
            }
            if entry.signature != nil, !entry.hasValidSignature { report.logProblems.append("\(entry.ref): bad signature") }
            previous[log] = entry
        }
        for (log, last) in previous where last.signature == nil {
            report.logProblems.append("\(log): its last entry, \(last.seq), carries no signature, so nothing vouches for the entries before it")
        }
        for (log, position) in vector.positions where previous[log]?.hash != position.hash || previous[log]?.seq != position.seq {
            report.logProblems.append("\(log): the version vector's head does not match the log")
        }

        let scratchURL = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-verify-\(UUID().uuidString).sqlite")
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: scratchURL.path + suffix) }
        }
        let scratch = try DatabaseQueue(path: scratchURL.path, configuration: Self.configuration())
        let rebuilt = try scratch.write { db in
            try StoreSchema.create(db, schema: schema)
            let materializer = try Materializer(db: db, schema: schema)
            for entry in entries {
                try materializer.append(entry, change: try entry.change())
            }
            return try CanonicalState.read(db, schema: schema)
        }
        report.differences = live.differences(from: rebuilt)
        return report
    }
}
