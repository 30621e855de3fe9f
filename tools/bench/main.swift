// qisync-bench: builds a seeded synthetic trust, then measures local writes, applying its
// log to an empty replica beside a plain SQLite insert of the same values, and file sizes.
//
//   swift run -c release qisync-bench [--scale 1.0] [--seed 42] [--dir /tmp/qisync-bench]
import ArgumentParser
import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncStore

/// Sentences a QI team might write, from a fixed vocabulary.
struct TextMaker {
    static let words = """
        ward team huddle handover falls sepsis screening pressure ulcer audit chart nurse matron consultant patient \
        family discharge delay bed flow rota staffing night shift weekend escalation pathway bundle checklist training \
        feedback meeting board data measure baseline run chart improvement change idea test cycle learning spread \
        sustain leadership culture support resource time pharmacy therapy observation early warning score deteriorating \
        medication round safety incident report review governance sponsor champion engagement workshop co-design \
        the a of to and in on for with at by from was were helped hindered slowed enabled agreed noticed showed
        """.split(separator: " ").map(String.init)

    static func sentence(length: Int, rng: inout SplitMix64) -> String {
        var text = ""
        while text.count < length {
            text += (text.isEmpty ? "" : " ") + words.randomElement(using: &rng)!
        }
        return String(text.prefix(length))
    }
}

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "qisync-bench", abstract: "Benchmark the replica store on a synthetic trust.")

    @Option(help: "Size: 1.0 = 20,000 initiatives and 200,000 learning entries.") var scale = 1.0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench"
    @Option(help: "Entries per apply transaction.") var batch = 5000
    @Option(help: "Repetitions of the apply and plain-insert runs (medians are reported).") var repetitions = 3

    mutating func run() throws {
        let root = URL(fileURLWithPath: dir)
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: seed)
        let initiatives = Int(20_000 * scale), learning = Int(200_000 * scale)
        print("qisync-bench: scale \(scale) (\(initiatives) initiatives, \(learning) learning entries), seed \(seed)")

        // 1. Generate the trust by local writes, one change (one transaction) per record or edit.
        let source = try Replica.create(home: root.appendingPathComponent("source"), trustCode: "RXH", trustName: "Synthetic Trust",
                                        siteName: "hub", kind: .hub, schema: QISchema.schema)
        let initiativeTable = RecordKind.initiative.table, learningTable = RecordKind.learning.table
        func column(_ kind: RecordKind, _ name: String) -> UInt16 { kind.field(named: name)!.column }
        var ids: [[UInt8]] = []
        var changes = 0, cells = 0
        let start = Date()
        for i in 0..<initiatives {
            let id = RecordID.random(using: &rng).bytes
            ids.append(id)
            let values: [(UInt16, Value)] = [
                (0, .integer(1)), (column(.initiative, "owner-trust"), .text("RXH")), (column(.initiative, "scope"), .text("trust")),
                (column(.initiative, "created"), .integer(1_790_000_000_000 + Int64(i))),
                (column(.initiative, "title"), .text(TextMaker.sentence(length: 40, rng: &rng))),
                (column(.initiative, "team"), .text("Ward \(Int.random(in: 1...60, using: &rng))")),
                (column(.initiative, "problem"), .text(TextMaker.sentence(length: 200, rng: &rng))),
                (column(.initiative, "aim"), .text(TextMaker.sentence(length: 100, rng: &rng))),
                (column(.initiative, "method"), .text(Vocabulary.methods.randomElement(using: &rng)!)),
                (column(.initiative, "status"), .text(Vocabulary.statuses.randomElement(using: &rng)!)),
                (column(.initiative, "score"), .real(Double(Int.random(in: 1...10, using: &rng)) / 2)),
                (column(.initiative, "lead"), .text("Ward manager")), (column(.initiative, "sponsor"), .text("Deputy chief nurse")),
            ]
            try source.write(scope: .trust, edits: [RowEdit(table: initiativeTable.id, key: id, values: values)])
            changes += 1
            cells += values.count
        }
        let soffts = QISchema.schema.table(named: "learning_sofft")!.id, skills = QISchema.schema.table(named: "learning_skill")!.id
        for i in 0..<learning {
            let id = RecordID.random(using: &rng).bytes
            let values: [(UInt16, Value)] = [
                (0, .integer(1)), (column(.learning, "owner-trust"), .text("RXH")), (column(.learning, "scope"), .text("trust")),
                (column(.learning, "created"), .integer(1_790_000_000_000 + Int64(i))),
                (column(.learning, "initiative"), .blob(ids.randomElement(using: &rng)!)),
                (column(.learning, "date"), .text(String(format: "2026-%02d-%02d", Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng)))),
                (column(.learning, "text"), .text(TextMaker.sentence(length: Int.random(in: 150...250, using: &rng), rng: &rng))),
                (column(.learning, "effect"), .text(Vocabulary.effects.randomElement(using: &rng)!)),
            ]
            var edits = [RowEdit(table: learningTable.id, key: id, values: values)]
            for code in Set((0..<Int.random(in: 1...3, using: &rng)).map { _ in Vocabulary.soffts.randomElement(using: &rng)!.code }).sorted() {
                edits.append(RowEdit(table: soffts, key: id + Array(code.utf8), values: [(0, .integer(1))]))
            }
            if Bool.random(using: &rng) {
                edits.append(RowEdit(table: skills, key: id + Array(Vocabulary.skillKinds.randomElement(using: &rng)!.utf8), values: [(0, .integer(1))]))
            }
            try source.write(scope: .trust, edits: edits)
            changes += 1
            cells += edits.reduce(0) { $0 + $1.values.count }
        }
        // Some later edits: status and score changes on a fifth of the initiatives.
        for id in ids where Int.random(in: 0..<5, using: &rng) == 0 {
            try source.write(scope: .trust, edits: [RowEdit(table: initiativeTable.id, key: id, values: [
                (column(.initiative, "status"), .text(Vocabulary.statuses.randomElement(using: &rng)!)),
                (column(.initiative, "score"), .real(Double(Int.random(in: 1...10, using: &rng)) / 2)),
            ])])
            changes += 1
            cells += 2
        }
        let writeSeconds = Date().timeIntervalSince(start)
        print(String(format: "local writes:     %d changes, %d cell writes in %.2f s = %.0f changes/s, %.0f cells/s (one transaction each)",
                     changes, cells, writeSeconds, Double(changes) / writeSeconds, Double(cells) / writeSeconds))

        // 2. Apply every entry to an empty replica.
        let entries = try source.entries(after: VersionVector())
        let rawBytes = entries.reduce(0) { $0 + $1.body.count }
        // Fresh target and plain files for each repetition; medians are reported.
        var applyRuns: [Double] = [], plainRuns: [Double] = []
        var target: Replica!
        let plainPath = root.appendingPathComponent("plain.sqlite").path
        for attempt in 0..<repetitions {
            let home = root.appendingPathComponent("target-\(attempt)")
            target = try Replica.create(home: home, trustCode: "RXH", trustName: "Synthetic Trust", siteName: "ward", kind: .ward, schema: QISchema.schema)
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
