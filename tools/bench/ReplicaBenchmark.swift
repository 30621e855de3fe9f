import ArgumentParser
import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncStore

/// `qisync-bench replica`: local writes, apply against a plain insert, file sizes.
struct ReplicaBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "replica", abstract: "Benchmark the replica store on a synthetic trust.")

    @Option(help: "Size: 1.0 = 20,000 initiatives and 200,000 learning entries.") var scale = 1.0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench"
    @Option(help: "Entries per apply transaction.") var batch = 5000
    @Option(help: "Repetitions of the apply and plain-insert runs (medians are reported).") var repetitions = 3

    mutating func run() throws {
        let root = URL(fileURLWithPath: dir)
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let initiatives = Int(20_000 * scale), learning = Int(200_000 * scale)
        print("qisync-bench replica: scale \(scale) (\(initiatives) initiatives, \(learning) learning entries), seed \(seed)")

        // 1. Generate the trust by local writes, one change (one transaction) per record or edit.
        let source = try SyntheticSites.hub(at: root.appendingPathComponent("source"))
        let stats = try SyntheticTrust.generate(into: source, scale: scale, seed: seed)
        print(String(format: "local writes:     %d changes, %d cell writes in %.2f s = %.0f changes/s, %.0f cells/s (one transaction each)",
                     stats.changes, stats.cells, stats.seconds, Double(stats.changes) / stats.seconds, Double(stats.cells) / stats.seconds))

        // 2. Apply every entry to an empty replica.
        let entries = try source.entries(after: VersionVector())
        let rawBytes = entries.reduce(0) { $0 + $1.body.count }
        // Fresh target and plain files for each repetition; medians are reported.
        var applyRuns: [Double] = [], plainRuns: [Double] = []
        var target: Replica!
        let plainPath = root.appendingPathComponent("plain.sqlite").path
        for attempt in 0..<repetitions {
            let home = root.appendingPathComponent("target-\(attempt)")
            target = try SyntheticSites.ward(at: home, enrolledBy: source)
            let applyStart = Date()
            var index = 0
            while index < entries.count {
                try target.apply(Array(entries[index..<min(index + batch, entries.count)]))
                index += batch
            }
            applyRuns.append(Date().timeIntervalSince(applyStart))
            try target.checkpoint()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: plainPath + suffix) }
            plainRuns.append(try plainInsert(from: source, path: plainPath))
        }
        let applySeconds = median(applyRuns), plainSeconds = median(plainRuns)
        let replicaBytes = target.fileSize()
        let plainBytes = (try FileManager.default.attributesOfItem(atPath: plainPath)[.size] as? Int) ?? 0
        print(String(format: "apply to empty:   %d entries (%.1f MB of change bodies) in %.2f s = %.0f entries/s (median of %@ s)", entries.count,
                     Double(rawBytes) / 1e6, applySeconds, Double(entries.count) / applySeconds, runs(applyRuns)))
        print(String(format: "plain insert:     same final values into plain tables in %.2f s (median of %@ s; one transaction, same raw binding)",
                     plainSeconds, runs(plainRuns)))
        print(String(format: "apply / plain:    %.2fx   (target <= 3x)", applySeconds / plainSeconds))
        print(String(format: "file size:        replica %.1f MB, plain tables %.1f MB = %.2fx   (target <= 2.5x)",
                     Double(replicaBytes) / 1e6, Double(plainBytes) / 1e6, Double(replicaBytes) / Double(plainBytes)))
        let breakdown = try target.read { db in
            try Row.fetchAll(db, sql: "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8")
                .map { "\($0[0] as String) \(String(format: "%.1f", Double($0[1] as Int64) / 1e6)) MB" }
        }
        print("largest objects:  " + breakdown.joined(separator: ", "))
        try source.apply(try target.entries(after: source.versionVector()))  // the target's own site record
        guard try target.canonicalState() == source.canonicalState() else { throw ValidationError("the applied replica differs from the source") }
        print("check:            applied replica's canonical state equals the source's")
    }

    /// Inserts the source's current records into plain tables with the same columns; returns seconds.
    func plainInsert(from source: Replica, path: String) throws -> Double {
        let tables = QISchema.schema.tables.filter { $0.name != "site" }
        let rows: [(TableSpec, [[Value]])] = try source.read { db in
            try tables.map { table in
                (table, try Row.fetchAll(db, sql: "SELECT \(keyColumns(table).joined(separator: ", "))\(table.columns.map { ", " + $0.name }.joined()) FROM \(table.name) WHERE live = 1")
                    .map { $0.databaseValues.map(Value.init) })
            }
        }
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let start = Date()
        try queue.write { db in
            for (table, records) in rows {
                let columns = keyColumns(table) + table.columns.map(\.name)
                let key = table.kind == .entity ? "id BLOB NOT NULL UNIQUE" : "parent BLOB NOT NULL, value TEXT NOT NULL, UNIQUE (parent, value)"
                try db.execute(sql: "CREATE TABLE \(table.name) (\(key)\(table.columns.map { ", \($0.name) \($0.type.sqlName)" }.joined()))")
                let statement = try FastStatement(db, sql: "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))")
                for record in records { try statement.execute(record) }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        try queue.writeWithoutTransaction { db in _ = try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        return seconds
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    func runs(_ values: [Double]) -> String { values.map { String(format: "%.2f", $0) }.joined(separator: ", ") }

    func keyColumns(_ table: TableSpec) -> [String] { table.kind == .entity ? ["id"] : ["parent", "value"] }
}
