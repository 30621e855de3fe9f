import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore

/// `qisync-bench scale`: what people run on a large replica, at two sizes — each read command
/// and `status` through the `qisync` executable (process start and opening the replica
/// included; the start alone is shown beside), and `verify` with its time, rate and peak memory.
/// The replica is the synthetic trust (initiatives, learning entries with SOFFT and skill
/// tags, later edits), written in write windows of about 112,000 entries each.
struct ScaleBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Benchmark reads, status and verify through qisync at two replica sizes.")

    @Option(help: "Replica sizes, in entries (rounded to whole synthetic batches of about 112,000); none to skip.") var entries = "112000,1000000"
    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench-scale"
    @Option(help: "Repetitions of each read (medians are reported).") var repetitions = 5
    @Option(help: "Directory sizes, in enrolled sites, for opening a ward that holds the directory.") var directorySites = "10,2420"
    @Flag(help: "Keep the replicas made (in --dir), to profile commands on them.") var keep = false

    mutating func run() throws {
        let root = try BenchSupport.emptyFolder(dir)
        let qisync = try BenchSupport.qisync()
        let sizes = entries.split(separator: ",").compactMap { Int($0) }
        var results: [(Int, [(String, Double, String)])] = []
        for size in sizes {
            let home = root.appendingPathComponent("r\(size)")
            let replica = try SyntheticSites.hub(at: home)
            var written = 0, batch: UInt64 = 0, ids: [[UInt8]] = []
            let started = Date()
            while written < size {
                try replica.writeWindow {
                    let stats = try SyntheticTrust.generate(into: replica, scale: 0.5, seed: 77 + batch)
                    written += stats.changes
                    ids += stats.initiativeIDs
                }
                batch += 1
            }
            try replica.checkpoint()
            let entriesHeld = try replica.versionVector().positions.values.reduce(0) { $0 + Int($1.seq) }
            print(String(format: "size %d: wrote %d entries in %.0f s (%.0f entries/s, write windows); file %.0f MB", size, entriesHeld,
                         Date().timeIntervalSince(started), Double(written) / Date().timeIntervalSince(started), Double(replica.fileSize()) / 1e6))
            let initiative = Hex.encode(ids[ids.count / 2])
            var rows: [(String, Double, String)] = []
            func measure(_ name: String, _ arguments: [String]) throws {
                let runs = try (0..<repetitions).map { _ in try Spawned.run(qisync, arguments + ["--home", home.path]).seconds }
                rows.append((name, runs.sorted()[runs.count / 2], ""))
            }
            try measure("qisync --version (process start alone)", ["--version"])
            try measure("status", ["status"])
            try measure("initiative list", ["initiative", "list"])
            try measure("initiative show ID", ["initiative", "show", initiative])
            try measure("log list --sofft S4", ["log", "list", "--sofft", "S4"])
            try measure("log list --initiative ID", ["log", "list", "--initiative", initiative])
            try measure("history ID", ["history", initiative])
            try measure("conflicts", ["conflicts"])
            try measure("audit", ["audit"])
            let verify = try Spawned.run(qisync, ["verify", "--home", home.path])
            rows.append(("verify", verify.seconds, String(format: "%.0f entries/s, peak %.0f MB resident", Double(entriesHeld) / verify.seconds, verify.peakMB)))
            results.append((entriesHeld, rows))
            if !keep { try? FileManager.default.removeItem(at: home) }
        }
        let opening = try directorySites.split(separator: ",").compactMap { Int($0) }.map { sites in
            (sites, try wardOpening(root: root, qisync: qisync, sites: sites))
        }
        if !results.isEmpty {
            print("")
            print("| command (through the qisync executable) | " + results.map { "\($0.0) entries" }.joined(separator: " | ") + " |")
            print("|---|" + results.map { _ in "---|" }.joined())
        }
        for (index, row) in (results.first?.1 ?? []).enumerated() {
            let cells = results.map { result in
                let (_, seconds, note) = result.1[index]
                return String(format: "%.0f ms", seconds * 1000) + (note.isEmpty ? "" : " (\(note))")
            }
            print("| \(row.0) | " + cells.joined(separator: " | ") + " |")
        }
        guard let first = opening.first else { return }
        print("")
        print("| a ward holding its hub's directory (through the qisync executable) | " + opening.map { "\($0.0) sites enrolled" }.joined(separator: " | ") + " |")
        print("|---|" + opening.map { _ in "---|" }.joined())
        for (index, row) in first.1.enumerated() {
            print("| \(row.0) | " + opening.map { String(format: "%.0f ms", $0.1[index].1 * 1000) }.joined(separator: " | ") + " |")
        }
    }

    /// Opening a ward whose hub has enrolled `sites` sites, with the hub's directory and its
    /// shared log held (as after a first sync): `status`, reads, a no-op and a one-change sync with
    /// the hub served on loopback, and a script of writes; medians of the repetitions. What grows
    /// with the directory here is what every command pays when it opens the replica.
    func wardOpening(root: URL, qisync: URL, sites: Int) throws -> [(String, Double)] {
        let folder = root.appendingPathComponent("directory-\(sites)")
        let hub = try SyntheticSites.hub(at: folder.appendingPathComponent("hub"))
        for index in 0..<max(0, sites - 2) {
            _ = try hub.enrol(EnrolmentRequest(trustCode: "RXH", siteName: "ward-\(index)", kind: "ward", signer: SiteSigner()))
        }
        let ward = try SyntheticSites.ward(at: folder.appendingPathComponent("ward"), enrolledBy: hub)
        _ = try ward.importDirectory(try hub.directoryRecords())
        _ = try ward.apply(try hub.entries(after: VersionVector()))
        let home = ward.home.path
        print(String(format: "directory of %d sites: %d records held by the ward", sites, try ward.directoryRecords().count))
        var rows: [(String, Double)] = []
        func measure(_ name: String, _ arguments: [String]) throws {
            let runs = try (0..<repetitions).map { _ in try Spawned.run(qisync, arguments + ["--home", home]).seconds }
            rows.append((name, runs.sorted()[runs.count / 2]))
        }
        try measure("qisync --version (process start alone)", ["--version"])
        try measure("status", ["status"])
        try measure("initiative list", ["initiative", "list"])
        try measure("peer list", ["peer", "list"])
        // Syncs with the hub, served by `qisync serve` on loopback over mutual TLS: the ward's
        // process end to end (its start, the handshake, the directory's summary, vectors, offer).
        let (server, address) = try BenchSupport.serve(qisync: qisync, home: hub.home)
        defer {
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
        }
        _ = try Spawned.run(qisync, ["sync", address, "--home", home])
        try measure("no-op sync with its hub (`qisync sync HOST:PORT`)", ["sync", address])
        // One change at the hub before each sync (a new initiative, written by the hub's own
        // `qisync`, not timed): the sync that carries it.
        var changed: [Double] = []
        for run in 0..<repetitions {
            _ = try Spawned.run(qisync, ["initiative", "add", "--title", "Change \(run) at the hub", "--home", hub.home.path])
            changed.append(try Spawned.run(qisync, ["sync", address, "--home", home]).seconds)
        }
        rows.append(("one-change sync (the hub added one initiative)", changed.sorted()[changed.count / 2]))
        // Writes ask for this site's trust key: a script's cost per line must not grow with the directory.
        let script = folder.appendingPathComponent("script.txt")
        try (0..<2_000).map { "initiative add --title 'Falls huddle \($0), Ysbyty Gwynedd' --team 'Ward \($0 % 12)' --aim 'Cut falls by 10% by March; £\($0) a month'\n" }
            .joined().write(to: script, atomically: true, encoding: .utf8)
        let runs = try (0..<repetitions).map { _ in try Spawned.run(qisync, ["shell", "--home", home], input: script).seconds }
        rows.append(("a script of 2,000 `initiative add` lines (`qisync shell < script`)", runs.sorted()[runs.count / 2]))
        if !keep { try? FileManager.default.removeItem(at: folder) }
        return rows
    }
}
