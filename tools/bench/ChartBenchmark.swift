import ArgumentParser
import Foundation
import GRDB
import QISyncCharts
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore

/// `qisync-bench charts`: the measure paths people run, through the `qisync` executable (so
/// process start and opening the replica count), beside what each costs in process and a floor.
struct ChartBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charts",
        abstract: "Benchmark charts (1,000 points), an initiative's report (10 measures × 200 points) and data import (10,000 rows).")

    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench-charts"
    @Option(help: "Repetitions (medians are reported).") var repetitions = 7

    mutating func run() throws {
        let root = try BenchSupport.emptyFolder(dir)
        let qisync = try BenchSupport.qisync()
        let home = root.appendingPathComponent("hub")
        let made = try QIRecords.create(home: home, trustCode: "RXH", trustName: "Bench", siteName: "hub", kind: .hub, membership: .founding(TrustKey()))
        let initiative = try made.add(.initiative, fields: ["title": "Reduce falls"]).id.hex
        print("qisync-bench charts: \(repetitions) runs each, medians; process times include starting qisync and opening the replica")

        // 1. data import of 10,000 rows, through the executable, beside a plain insert of the same rows.
        let csv = (["date,value"] + (0..<10_000).map { day in "\(Self.date(day)),\(8 + Double((day * 37) % 11) / 5)" }).joined(separator: "\n") + "\n"
        let file = root.appendingPathComponent("rows.csv")
        try csv.write(to: file, atomically: true, encoding: .utf8)
        var importRuns: [Double] = [], plainRuns: [Double] = []
        var measure = ""
        for run in 0..<repetitions {
            measure = try made.add(.measure, fields: ["initiative": initiative, "name": "Import \(run)"]).id.hex
            importRuns.append(try Spawned.run(qisync, ["data", "import", measure, file.path, "--allow-future", "--home", home.path]).seconds)
            plainRuns.append(try Self.plainInsert(rows: 10_000, path: root.appendingPathComponent("plain-\(run).sqlite").path))
        }
        Self.report("data import, 10,000 rows", importRuns, target: 1.0, floor: ("plain SQLite insert of the rows", plainRuns))

        // 2. A chart of 1,000 points, in the terminal, through the executable; and in process.
        let chartMeasure = try made.add(.measure, fields: ["initiative": initiative, "name": "Falls", "direction": "down", "chart": "xmr"]).id.hex
        let thousand = (["date,value"] + (0..<1_000).map { day in "\(Self.date(day)),\(8 + Double((day * 37) % 11) / 5 - (day > 700 ? 3 : 0))" }).joined(separator: "\n")
        _ = try made.importData(measure: chartMeasure, csv: thousand, allowFuture: true)
        var chartRuns: [Double] = [], inProcess: [Double] = [], readRuns: [Double] = []
        for _ in 0..<repetitions {
            chartRuns.append(try Spawned.run(qisync, ["chart", chartMeasure, "--width", "120", "--home", home.path]).seconds)
            let started = Date()
            let chart = try made.chart(measure: chartMeasure)
            _ = TerminalChart.render(chart.analysis, title: chart.title, format: chart.format, target: chart.target, annotations: chart.annotations, width: 120)
            _ = SVGChart.render(chart.analysis, title: chart.title, format: chart.format, target: chart.target)
            inProcess.append(Date().timeIntervalSince(started))
            let read = Date()
            _ = try made.replica.read { db in try Row.fetchAll(db, sql: "SELECT period, value FROM datapoint WHERE measure = ?", arguments: [Data(Hex.decode(chartMeasure)!)]) }
            readRuns.append(Date().timeIntervalSince(read))
        }
        Self.report("chart of 1,000 points (qisync chart)", chartRuns, target: nil, floor: nil)
        Self.report("  in process: read, analyse, draw terminal and SVG", inProcess, target: 0.1, floor: ("reading the 1,000 rows alone", readRuns))

        // 3. A report of an initiative with 10 measures of 200 points.
        let reported = try made.add(.initiative, fields: ["title": "Ten measures"]).id.hex
        for index in 0..<10 {
            let id = try made.add(.measure, fields: ["initiative": reported, "name": "Measure \(index)", "chart": index % 2 == 0 ? "xmr" : "run"]).id.hex
            let rows = (0..<200).map { day in "\(Self.date(day * 7)),\(10 + Double((day * (index + 3)) % 13) / 3)" }.joined(separator: "\n")
            _ = try made.importData(measure: id, csv: rows, allowFuture: true)
        }
        var reportRuns: [Double] = []
        for run in 0..<repetitions {
            reportRuns.append(try Spawned.run(qisync, ["report", reported, "--html", root.appendingPathComponent("report-\(run).html").path, "--home", home.path]).seconds)
        }
        let startup = (0..<repetitions).map { _ in (try? Spawned.run(qisync, ["status", "--home", home.path]).seconds) ?? 0 }
        Self.report("report, 10 measures × 200 points (qisync report --html)", reportRuns, target: 1.0, floor: ("qisync status (start and open alone)", startup))
        let size = (try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent("report-0.html").path)[.size] as? Int) ?? 0
        print(String(format: "  report file: %.0f KB", Double(size) / 1024))
    }

    static func date(_ day: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: 946_684_800 + Double(day) * 86_400))   // from 2000-01-01
    }

    static func plainInsert(rows: Int, path: String) throws -> Double {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "CREATE TABLE datapoint (id BLOB PRIMARY KEY, measure BLOB, period TEXT, value REAL)") }
        let start = Date()
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO datapoint VALUES (?, ?, ?, ?)")
            let measure = Data(repeating: 7, count: 16)
            for row in 0..<rows {
                try statement.execute(arguments: [Data(RecordID.random(owner: "RXH").bytes), measure, date(row), 8 + Double(row % 11) / 5])
            }
        }
        return Date().timeIntervalSince(start)
    }

    static func report(_ name: String, _ runs: [Double], target: Double?, floor: (String, [Double])?) {
        let median = runs.sorted()[runs.count / 2]
        var line = String(format: "%@: %.0f ms", name, median * 1000)
        if let target { line += String(format: " (target < %.0f ms: %@)", target * 1000, median < target ? "met" : "MISSED") }
        print(line)
        if let (label, floorRuns) = floor {
            let floorMedian = floorRuns.sorted()[floorRuns.count / 2]
            print(String(format: "  beside %@: %.1f ms = %.1fx", label, floorMedian * 1000, median / floorMedian))
        }
    }
}
