import ArgumentParser
import Foundation
import Logging
import NIOCore
import QISyncCore
import QISyncDomain
import QISyncStore
import QISyncTransport

/// `qisync-bench sync`: a full sync to an empty replica over loopback between two `qisync`
/// processes, beside applying the same entries locally and copying the SQLite file; then a
/// no-op sync and a one-field incremental sync; at each of several sizes.
struct SyncBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sync", abstract: "Benchmark sync over loopback TCP.")

    @Option(help: "Sizes to run, comma-separated (1.0 = 20,000 initiatives and 200,000 learning entries).") var scales = "0.1,1.0"
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Working folder (emptied first).") var dir = "/tmp/qisync-bench-sync"
    @Option(help: "Repetitions of the local apply and the full sync (medians are reported).") var repetitions = 3

    struct Row {
        var scale = 0.0, entries = 0, rawValueBytes = 0, bodyBytes = 0
        var localApply = 0.0, fileCopy = 0.0, fileBytes = 0
        var syncWall = 0.0, syncSession = 0.0, wireBytes = 0, clientPeakKB = 0, serverPeakKB = 0
        var noopBytes = 0, noopSession = 0.0, noopWall = 0.0
        var incrementalBytes = 0, incrementalSession = 0.0
        var plainInProcess = 0.0, tlsInProcess = 0.0, plainWire = 0, tlsWire = 0
        var bundleExport = 0.0, bundleImport = 0.0, bundleBytes = 0, sealedExport = 0.0, sealedImport = 0.0, sealedBytes = 0
    }

    mutating func run() throws {
        let qisync = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync")
        guard FileManager.default.isExecutableFile(atPath: qisync.path) else {
            throw ValidationError("\(qisync.path) is missing: build everything first with 'swift build -c release'")
        }
        let root = URL(fileURLWithPath: dir)
        try? FileManager.default.removeItem(at: root)
        var rows: [Row] = []
        for scale in scales.split(separator: ",").compactMap({ Double($0) }) {
            rows.append(try measure(scale: scale, root: root.appendingPathComponent("scale-\(scale)"), qisync: qisync))
        }
        print("")
        print("qisync-bench sync (seed \(seed))")
        for row in rows {
            print(String(format: "scale %.2f: %d entries, %.1f MB of values (%.1f MB of change bodies)", row.scale, row.entries,
                         Double(row.rawValueBytes) / 1e6, Double(row.bodyBytes) / 1e6))
            print(String(format: "  full sync, empty replica:  %.2f s wall (session %.2f s); local apply %.2f s; file copy %.2f s (%.1f MB); medians of \(repetitions)",
                         row.syncWall, row.syncSession, row.localApply, row.fileCopy, Double(row.fileBytes) / 1e6))
            print(String(format: "    sync / local apply:      %.2fx   (target <= 1.5x)", row.syncWall / row.localApply))
            print(String(format: "    wire bytes:              %.1f MB = %.1f%% of the values   (target <= 25%%)",
                         Double(row.wireBytes) / 1e6, 100 * Double(row.wireBytes) / Double(row.rawValueBytes)))
            print(String(format: "    peak memory:             client %.1f MB, server %.1f MB", Double(row.clientPeakKB) / 1024, Double(row.serverPeakKB) / 1024))
            print(String(format: "  no-op sync:                %d bytes, session %.1f ms (process %.0f ms)   (target < 2 KB, < 50 ms)",
                         row.noopBytes, row.noopSession * 1000, row.noopWall * 1000))
            print(String(format: "  one field changed:         %d bytes, session %.1f ms", row.incrementalBytes, row.incrementalSession * 1000))
            print(String(format: "  bundle, whole trust for a ward:   export %.2f s, import %.2f s, %.1f MB = %.1f%% of the values; export + import = %.2fx the TCP sync",
                         row.bundleExport, row.bundleImport, Double(row.bundleBytes) / 1e6, 100 * Double(row.bundleBytes) / Double(row.rawValueBytes),
                         (row.bundleExport + row.bundleImport) / row.syncWall))
            print(String(format: "  bundle, shared for another trust: export %.2f s (sealed), import %.2f s at its hub, %.1f MB",
                         row.sealedExport, row.sealedImport, Double(row.sealedBytes) / 1e6))
            print(String(format: "  TLS cost, full sync in one process: plaintext %.2f s, mutual TLS 1.3 %.2f s = %.2fx (medians of \(repetitions); %.1f MB of frames either way)",
                         row.plainInProcess, row.tlsInProcess, row.tlsInProcess / row.plainInProcess, Double(row.tlsWire) / 1e6))
        }
    }

    func measure(scale: Double, root: URL, qisync: URL) throws -> Row {
        var row = Row()
        row.scale = scale
        print("scale \(scale): generating…")
        let source = try SyntheticSites.hub(at: root.appendingPathComponent("source"))
        let stats = try SyntheticTrust.generate(into: source, scale: scale, seed: seed)
        try source.checkpoint()
        let entries = try source.entries(after: VersionVector())
        row.entries = entries.count
        row.bodyBytes = entries.reduce(0) { $0 + $1.body.count }
        for entry in entries {
            for written in try entry.change().rows {
                for cell in written.cells {
                    switch cell.value {
                    case .null: break
                    case .integer, .real: row.rawValueBytes += 8
                    case .text(let text): row.rawValueBytes += text.utf8.count
                    case .blob(let bytes): row.rawValueBytes += bytes.count
                    }
                }
            }
        }

        print("scale \(scale): local apply and file copy…")
        var applyRuns: [Double] = []
        for attempt in 0..<repetitions {
            let local = try SyntheticSites.ward(at: root.appendingPathComponent("local-\(attempt)"), enrolledBy: source, name: "local-\(attempt)")
            let began = Date()
            var index = 0
            while index < entries.count {
                try local.apply(Array(entries[index..<min(index + 512, entries.count)]))
                index += 512
            }
            applyRuns.append(Date().timeIntervalSince(began))
        }
        row.localApply = Self.median(applyRuns)
        let start = Date()
        let copy = root.appendingPathComponent("copy.sqlite")
        try FileManager.default.copyItem(atPath: source.databasePath, toPath: copy.path)
        row.fileCopy = Date().timeIntervalSince(start)
        row.fileBytes = source.fileSize()

        print("scale \(scale): sync over loopback…")
        let (server, address) = try BenchSupport.serve(qisync: qisync, home: source.home)
        defer {
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
        }
        var fulls: [(wall: Double, session: Double, wireBytes: Int, peakKB: Int)] = []
        var target = root
        for attempt in 0..<repetitions {
            target = root.appendingPathComponent("target-\(attempt)")
            _ = try SyntheticSites.ward(at: target, enrolledBy: source, name: "target-\(attempt)")
            fulls.append(try sync(qisync: qisync, home: target, address: address))
        }
        let middle = fulls.sorted { $0.wall < $1.wall }[fulls.count / 2]
        row.syncWall = middle.wall
        row.syncSession = middle.session
        row.wireBytes = middle.wireBytes
        row.clientPeakKB = fulls.map(\.peakKB).max() ?? 0
        row.serverPeakKB = Self.peakKB(server.processIdentifier)
        let noop = try sync(qisync: qisync, home: target, address: address)
        row.noopBytes = noop.wireBytes
        row.noopSession = noop.session
        row.noopWall = noop.wall
        guard let initiative = stats.initiativeIDs.first else { return row }
        try source.write(scope: .trust, edits: [RowEdit(table: RecordKind.initiative.table.id, key: initiative,
                                                        values: [(RecordKind.initiative.field(named: "status")!.column, .text("sustaining"))])])
        let incremental = try sync(qisync: qisync, home: target, address: address)
        row.incrementalBytes = incremental.wireBytes
        row.incrementalSession = incremental.session

        print("scale \(scale): TLS against plaintext, in one process…")
        var plain: [(Double, Int)] = [], tls: [(Double, Int)] = []
        for attempt in 0..<repetitions {
            for security in [TransportSecurity.plaintextLoopbackForTests, .mutualTLS] {
                let home = root.appendingPathComponent("inprocess-\(security == .mutualTLS ? "tls" : "plain")-\(attempt)")
                let ward = try SyntheticSites.ward(at: home, enrolledBy: source, name: "inprocess-\(attempt)-\(security == .mutualTLS ? "tls" : "plain")")
                let result = try inProcessSync(source: source, target: ward, security: security)
                if security == .mutualTLS { tls.append(result) } else { plain.append(result) }
            }
        }
        print("scale \(scale): bundles…")
        var exports: [Double] = [], imports: [Double] = []
        for attempt in 0..<repetitions {
            let ward = try SyntheticSites.ward(at: root.appendingPathComponent("bundle-ward-\(attempt)"), enrolledBy: source, name: "bundle-ward-\(attempt)")
            let target = BundleTarget(trust: "RXH", site: ward.identity.siteName, siteKey: ward.identity.origin)
            var began = Date()
            let bundle = root.appendingPathComponent("ward-\(attempt).bundle").path
            try BundleCarrier.export(replica: source, for: target, since: VersionVector(), now: Replica.systemClock(), to: bundle)
            exports.append(Date().timeIntervalSince(began))
            row.bundleBytes = Self.size(bundle)
            began = Date()
            _ = try BundleCarrier.importBundle(replica: ward, path: bundle, now: Replica.systemClock())
            imports.append(Date().timeIntervalSince(began))
        }
        row.bundleExport = Self.median(exports)
        row.bundleImport = Self.median(imports)
        // Another trust: share a tenth of the initiatives, then seal their shared log to it.
        let other = try Replica.create(home: root.appendingPathComponent("other-trust"), trustCode: "RYJ", trustName: "Other Trust", siteName: "hub",
                                       kind: .hub, schema: QISchema.schema)
        try source.pinTrust(code: "RYJ", fingerprint: try other.trustPins().first(where: \.isOwn)!.fingerprint)
        try other.pinTrust(code: "RXH", fingerprint: try source.trustPins().first(where: \.isOwn)!.fingerprint)
        try source.importDirectory(try other.trustCard())
        let records = QIRecords(replica: source)
        for id in stats.initiativeIDs.prefix(max(1, stats.initiativeIDs.count / 10)) { _ = try records.share(try RecordID(bytes: id).hex) }
        var began = Date()
        let sealed = root.appendingPathComponent("other-trust.bundle").path
        try BundleCarrier.export(replica: source, for: BundleTarget(trust: "RYJ"), since: VersionVector(), now: Replica.systemClock(), to: sealed,
                                 check: records.checkLeavingTrust)
        row.sealedExport = Date().timeIntervalSince(began)
        row.sealedBytes = Self.size(sealed)
        began = Date()
        _ = try BundleCarrier.importBundle(replica: other, path: sealed, now: Replica.systemClock())
        row.sealedImport = Date().timeIntervalSince(began)

        row.plainInProcess = Self.median(plain.map(\.0))
        row.tlsInProcess = Self.median(tls.map(\.0))
        row.plainWire = plain.map(\.1).max() ?? 0
        row.tlsWire = tls.map(\.1).max() ?? 0
        return row
    }

    static func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }

    /// A full pull from `source` to `target` through an in-process server and client over
    /// loopback: its time and the protocol's frame bytes both ways (TLS record overhead not counted).
    func inProcessSync(source: Replica, target: Replica, security: TransportSecurity) throws -> (Double, Int) {
        let logger = Logger(label: "qisync-bench")
        let server = try SyncServer.start(replica: source, address: try PeerAddress(parsing: "127.0.0.1:0"), security: security, logger: logger).wait()
        defer { try? server.close().wait() }
        let address = try PeerAddress(parsing: "127.0.0.1:\(server.localAddress.port!)")
        let start = Date()
        let report = try SyncClient.sync(replica: target, address: address, direction: .pull, security: security, logger: logger).wait()
        let seconds = Date().timeIntervalSince(start)
        if let error = report.error { throw ValidationError("in-process sync failed: \(error)") }
        return (seconds, Int(report.wireIn + report.wireOut))
    }

    func sync(qisync: URL, home: URL, address: String) throws -> (wall: Double, session: Double, wireBytes: Int, peakKB: Int) {
        let process = Process()
        process.executableURL = qisync
        process.arguments = ["sync", address, "--pull", "--json", "--home", home.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let start = Date()
        try process.run()
        var peak = 0
        // The JSON summary is small: it fits the pipe's buffer, so it is read after the exit.
        while process.isRunning {
            peak = max(peak, Self.peakKB(process.processIdentifier))
            Thread.sleep(forTimeInterval: 0.02)
        }
        process.waitUntilExit()
        let wall = Date().timeIntervalSince(start)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        guard process.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("sync failed: \(String(decoding: data, as: UTF8.self))")
        }
        let wire = (json["wire_bytes_in"] as? Int ?? 0) + (json["wire_bytes_out"] as? Int ?? 0)
        return (wall, json["seconds"] as? Double ?? 0, wire, peak)
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// The process's peak resident memory so far (VmHWM), in KiB; 0 once it has gone.
    static func peakKB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
}
