import ArgumentParser
import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncShell
import QISyncStore

/// `qisync-bench writes`: local writes as people make them — a script of `initiative add` lines
/// through `qisync shell` (process start, opening the replica and printing each record count),
/// and one interactive write on a replica of that size — beside plain SQLite inserts of the
/// same values (one transaction, one prepared statement: the floor).
struct WriteBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writes",
        abstract: "Benchmark a script of initiative add lines through qisync shell, and one interactive write, against plain inserts.")

    @Option(help: "Script sizes, in lines.") var lines = "10000,100000"
    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench-writes"
    @Option(help: "Repetitions (medians are reported).") var repetitions = 3

    mutating func run() throws {
        let root = try BenchSupport.emptyFolder(dir)
        let qisync = try BenchSupport.qisync()
        let sizes = lines.split(separator: ",").compactMap { Int($0) }
        print("qisync-bench writes: \(repetitions) runs each, medians; the script runs through the qisync executable (start, open, print every record)")
        print("| lines | qisync shell < script | rows/s | plain insert | ratio | raw values | one interactive write after it (median of 50) |")
        print("|---|---|---|---|---|---|---|")
        for size in sizes {
            let values = (0..<size).map(Self.values)
            let script = values.map { v in "initiative add --title '\(v.title)' --team '\(v.team)' --aim '\(v.aim)'" }.joined(separator: "\n") + "\n"
            let scriptURL = root.appendingPathComponent("script-\(size).txt")
            try script.write(to: scriptURL, atomically: true, encoding: .utf8)
            let raw = values.reduce(0) { $0 + $1.title.utf8.count + $1.team.utf8.count + $1.aim.utf8.count }
            var scriptRuns: [Double] = [], plainRuns: [Double] = [], interactive: [Double] = []
            for run in 0..<repetitions {
                let home = root.appendingPathComponent("h-\(size)-\(run)")
                _ = try QIRecords.create(home: home, trustCode: "RXH", trustName: "Bench", siteName: "hub", kind: .hub, membership: .founding(TrustKey()))
                scriptRuns.append(try Spawned.run(qisync, ["shell", "--home", home.path], input: scriptURL).seconds)
                plainRuns.append(try Self.plainInsert(values, path: root.appendingPathComponent("plain-\(size)-\(run).sqlite").path))
                if run == 0 { interactive = try Self.interactiveWrites(home: home) }
                try? FileManager.default.removeItem(at: home)
            }
            let s = median(scriptRuns), p = median(plainRuns), i = median(interactive)
            print(String(format: "| %d | %.2f s | %.0f | %.3f s | %.1f× | %.1f MB | %.1f ms (target < 10 ms) |",
                         size, s, Double(size) / s, p, s / p, Double(raw) / 1e6, i * 1000))
        }
        print("target: 100,000 lines in under 10 s")
    }

    func median(_ runs: [Double]) -> Double { runs.sorted()[runs.count / 2] }

    /// One interactive `initiative add` at a time, through the shell as typed, on the replica the script filled.
    static func interactiveWrites(home: URL) throws -> [Double] {
        let records = try QIRecords.open(home: home)
        let shell = Shell(records: records, out: OutputSink { _ in }, err: OutputSink { _ in })
        return try (0..<50).map { index in
            let started = Date()
            guard shell.execute("initiative add --title 'Typed at the prompt \(index)' --team 'Ward 7b' --aim 'Fewer falls'") == .success else {
                throw ValidationError("an interactive write failed")
            }
            return Date().timeIntervalSince(started)
        }
    }

    /// Seeded values: NHS text with £, °C and Welsh place names, 100–130 bytes a row in all.
    static func values(_ index: Int) -> (title: String, team: String, aim: String) {
        let wards = ["Ward 7b", "Ysbyty Gwynedd AMU", "Llandudno ED", "Café & discharge lounge", "Maternity, Glan Clwyd"]
        let topics = ["falls", "pressure ulcers", "sepsis screening", "discharge before noon", "hydration at 37°C"]
        return ("Reduce \(topics[index % 5]) #\(index)", wards[(index / 5) % 5],
                "Cut \(topics[(index / 3) % 5]) by \(10 + index % 40)% by March, £\(index % 900) a month")
    }

    static func plainInsert(_ values: [(title: String, team: String, aim: String)], path: String) throws -> Double {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "CREATE TABLE initiative (id BLOB PRIMARY KEY, title TEXT, team TEXT, aim TEXT)") }
        let start = Date()
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO initiative VALUES (?, ?, ?, ?)")
            for v in values { try statement.execute(arguments: [Data(RecordID.random(owner: "RXH").bytes), v.title, v.team, v.aim]) }
        }
        return Date().timeIntervalSince(start)
    }
}
