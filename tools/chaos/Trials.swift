import Foundation
import NIOCore
import QISyncCore
import QISyncDomain
import QISyncStore

/// What one trial did: the faults it injected and what it found wrong (nothing, we hope).
struct TrialResult {
    var faults = 0
    var failures: [String] = []
    var notes: [String] = []
}

/// The kinds of trial, each run by seed: a fault injected into real processes, then the
/// checks every trial makes (every replica passes `verify`; nothing the other side acknowledged
/// is lost; after a clean sync the replicas converge).
enum TrialKind: String, CaseIterable {
    case killSync = "kill -9 during a sync"
    case killImport = "kill -9 during a bundle import"
    case killScript = "kill -9 during a script of writes"
    case killServe = "kill -9 of a shell serving in the background"
    case network = "cut, corrupted, delayed, duplicated bytes"
    case diskFull = "a full disk, a read-only replica"
    case writers = "many writers, a server and syncs at once"
    case clocks = "clocks hours off, jumping back, far ahead"
    case soak = "a soak of random syncs and edits"
    case hostileShell = "hostile input to the shell"
}

/// Replicas made once per run and copied for each trial: a hub and an enrolled ward, each with
/// entries the other lacks, and a bundle of the ward's entries for the hub.
struct Templates {
    let hub: URL
    let ward: URL
    let bundle: String
    let hubEntries: UInt64
    let wardEntries: UInt64
    /// How long importing the bundle takes here, so a kill can land part-way.
    let importSeconds: Double

    init(_ q: Qisync, hubWrites: Int, wardWrites: Int) throws {
        hub = try q.hub()
        ward = try q.ward("ward", of: hub)
        try q.write(hub, count: hubWrites, tag: "hub note")
        try q.write(ward, count: wardWrites, tag: "ward note")
        bundle = q.root.appendingPathComponent("ward-for-hub.bundle").path
        let exported = try q.run(["bundle", "export", bundle, "--for", "hub", "--all", "--home", ward.path])
        guard exported.code == 0 else { throw HarnessError("bundle export: \(exported.err)") }
        hubEntries = try q.held(hub)
        wardEntries = try q.held(ward)
        let trial = try q.copy(hub, as: "timing")
        let started = Date()
        try q.run(["bundle", "import", bundle, "--home", trial.path, "--receipt", q.folder("r").path])
        importSeconds = Date().timeIntervalSince(started)
    }
}

/// Runs trials.
struct Trials {
    let q: Qisync
    let templates: Templates

    func run(_ kind: TrialKind, seed: UInt64) -> TrialResult {
        var rng = SplitMix64(seed: seed)
        var result = TrialResult()
        do {
            switch kind {
            case .killSync: try killSync(&rng, &result)
            case .killImport: try killImport(&rng, &result)
            case .killScript: try killScript(&rng, &result)
            case .killServe: try killServe(&rng, &result)
            case .network: try network(&rng, &result)
            case .diskFull: try diskFull(&rng, &result)
            case .writers: try writers(&rng, &result)
            case .clocks: try clocks(&rng, &result)
            case .soak: try soak(&rng, &result)
            case .hostileShell: try hostileShell(&rng, &result)
            }
        } catch {
            result.failures.append("the trial could not run: \(error)")
        }
        return result
    }

    /// After a fault: both verify, then a clean sync both ways, then they hold the same.
    func recover(_ hub: URL, _ ward: URL, _ result: inout TrialResult) throws {
        result.failures += try q.verify(hub) + q.verify(ward)
        let synced = try q.syncClean(ward, hub)
        if synced.code != 0 { result.failures.append("the clean sync after the fault failed: \(synced.err.suffix(300))") }
        if try q.state(hub) != q.state(ward) { result.failures.append("hub and ward differ after a clean sync") }
        result.failures += try q.verify(hub) + q.verify(ward)
    }

    static func json(_ text: String) -> [String: Any]? {
        guard let start = text.firstIndex(of: "{") else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any]
    }

    // MARK: Kills

    func killSync(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub"), ward = try q.copy(templates.ward, as: "ward")
        let (server, address) = try q.serve(hub)
        let direction = ["", "--push", "--pull"][Int(rng.next() % 3)]
        let client = try Child(q.binary, ["sync", address, "--home", ward.path, "--json", "--timeout", "10"] + (direction.isEmpty ? [] : [direction]))
        let killServer = rng.next() % 2 == 0
        usleep(UInt32(rng.next() % 400_000))
        result.faults += 1
        let before = (hub: templates.hubEntries, ward: templates.wardEntries)
        if killServer {
            server.signal(SIGKILL)
            server.wait(timeout: 10)
            let (code, timedOut) = client.wait(timeout: 60)
            if timedOut { result.failures.append("the client hung after its server was killed") }
            // What the server acknowledged before it died is on its disk.
            if code != 0 || Self.json(client.output) != nil, let summary = Self.json(client.output), let sent = summary["sent"] as? Int {
                result.notes.append("server killed: the client saw \(sent) of its entries acknowledged; \(summary["outcome"] ?? "")")
                let held = try q.held(hub)
                if held < before.hub + UInt64(sent) { result.failures.append("the hub acknowledged \(sent) entries but holds \(held - before.hub)") }
            } else if !client.errors.isEmpty, code != 0, !client.errors.contains("could not connect") {
                result.notes.append("client: \(client.errors.suffix(120))")
            }
        } else {
            client.signal(SIGKILL)
            client.wait(timeout: 10)
            // The server records the session when the connection drops: what the client acknowledged.
            usleep(300_000)
            server.signal(SIGTERM)
            server.wait(timeout: 20)
            let history = try Replica.open(home: hub, schema: QISchema.schema).syncHistory()
            if let last = history.first {
                result.notes.append("client killed: the server had \(last.received) in, \(last.sent) acknowledged out; \(last.outcome.prefix(80))")
                let held = try q.held(ward)
                if held < before.ward + last.sent { result.failures.append("the ward acknowledged \(last.sent) entries but holds \(held - before.ward)") }
            }
        }
        if server.process.isRunning { server.signal(SIGTERM); server.wait(timeout: 10) }
        try recover(hub, ward, &result)
    }

    func killImport(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub")
        let importing = try Child(q.binary, ["bundle", "import", templates.bundle, "--home", hub.path, "--receipt", q.folder("receipt").path])
        usleep(UInt32(Double(rng.next() % 1000) / 1000 * templates.importSeconds * 1_000_000))
        importing.signal(SIGKILL)
        importing.wait(timeout: 10)
        result.faults += 1
        // All of it or none of it.
        let held = try q.held(hub)
        result.notes.append("killed import: held \(held), before \(templates.hubEntries)")
        let expectedAll = templates.hubEntries + templates.wardEntries - 1 // the ward's site row is not in its bundle's count twice
        if held != templates.hubEntries, held < expectedAll - 1 {
            result.failures.append("a killed import left part of the bundle: held \(held), before \(templates.hubEntries)")
        }
        result.failures += try q.verify(hub)
        let again = try q.run(["bundle", "import", templates.bundle, "--home", hub.path, "--receipt", q.folder("receipt").path], timeout: 120)
        if again.code != 0 { result.failures.append("importing again after the kill failed: \(again.err.suffix(300))") }
        result.failures += try q.verify(hub)
    }

    func killScript(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let ward = try q.copy(templates.ward, as: "ward")
        let lines = 400
        let script = (0..<lines).map { "initiative add --title \"Script line \($0)\" --json" }.joined(separator: "\n") + "\n"
        let shell = try Child(q.binary, ["shell", "--home", ward.path], input: Data(script.utf8))
        usleep(UInt32(rng.next() % 1_500_000))
        shell.signal(SIGKILL)
        shell.wait(timeout: 10)
        result.faults += 1
        let printed = shell.output.components(separatedBy: "\"kind\" : \"initiative\"").count - 1
        let titles = try QIRecords.open(home: ward).list(.initiative, filter: { var f = ListFilter(); f.limit = 10_000; return f }())
            .map { $0.text("title") }.filter { $0.hasPrefix("Script line ") }
        let numbers = Set(titles.compactMap { Int($0.dropFirst("Script line ".count)) })
        if numbers.count < printed { result.failures.append("\(printed) writes were reported done but \(numbers.count) are in the replica") }
        result.notes.append("killed script: \(printed) reported, \(numbers.count) kept")
        if numbers != Set(0..<numbers.count) { result.failures.append("the writes kept are not the script's first lines: \(numbers.sorted().prefix(10))…") }
        result.failures += try q.verify(ward)
    }

    func killServe(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub"), ward = try q.copy(templates.ward, as: "ward")
        let port = 20_000 + Int(rng.next() % 20_000)
        let script = ["serve --listen 127.0.0.1:\(port)"] + (0..<600).map { "log add \"written while serving \($0)\"" }
        let shell = try Child(q.binary, ["shell", "--home", hub.path, "--keep-going"], input: Data((script.joined(separator: "\n") + "\n").utf8))
        usleep(300_000)
        let client = try Child(q.binary, ["sync", "127.0.0.1:\(port)", "--home", ward.path, "--json", "--timeout", "10"])
        usleep(UInt32(rng.next() % 800_000))
        shell.signal(SIGKILL)
        shell.wait(timeout: 10)
        result.faults += 1
        let (_, timedOut) = client.wait(timeout: 60)
        if timedOut { result.failures.append("the client hung after the serving shell was killed") }
        if let summary = Self.json(client.output), let sent = summary["sent"] as? Int {
            let wardLogAtHub = try Replica.open(home: hub, schema: QISchema.schema).versionVector().positions
                .filter { $0.key.origin == (try? Replica.open(home: ward, schema: QISchema.schema).identity.origin) }.values.reduce(0) { $0 + $1.seq }
            if wardLogAtHub < UInt64(sent) { result.failures.append("the hub acknowledged \(sent) of the ward's entries but holds \(wardLogAtHub)") }
        }
        try recover(hub, ward, &result)
    }

    // MARK: The network

    func network(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub"), ward = try q.copy(templates.ward, as: "ward")
        let (server, address) = try q.serve(hub)
        defer {
            server.signal(SIGTERM)
            server.wait(timeout: 10)
        }
        let port = Int(address.split(separator: ":").last!)!
        let faults: [Fault] = [.cut(after: Int(rng.next() % 60_000)), .corrupt(at: Int(rng.next() % 60_000)),
                               .delay(milliseconds: 30), .duplicate(at: Int(rng.next() % 60_000))]
        let fault = faults[Int(rng.next() % UInt64(faults.count))]
        let toServer = rng.next() % 2 == 0
        let proxy = try FaultyProxy(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), fault: fault, toServer: toServer, seed: rng.next())
        defer { proxy.close() }
        result.faults += 1
        let synced = try q.run(["sync", "127.0.0.1:\(proxy.port)", "--home", ward.path, "--timeout", "10"], timeout: 120)
        if synced.code != 0 {
            // A failure must say what happened, not crash.
            if synced.err.isEmpty || synced.err.contains("Fatal error") { result.failures.append("\(fault): an unclear failure: \(synced.err.suffix(300))") }
            result.notes.append("\(fault) \(toServer ? "client→server" : "server→client"): \(synced.err.split(separator: "\n").first ?? "")")
        }
        server.signal(SIGTERM)
        server.wait(timeout: 10)
        try recover(hub, ward, &result)
    }

    // MARK: The disk

    func diskFull(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub")
        let size = (try FileManager.default.attributesOfItem(atPath: hub.appendingPathComponent("replica.sqlite").path)[.size] as? Int) ?? 0
        // A limit a little above the file as it is: the import runs out of room part-way.
        let limitKB = size / 1024 + 64 + Int(rng.next() % 512)
        let limited = ["/bin/bash", "-c", "ulimit -f \(limitKB); exec \"$0\" \"$@\""]
        let before = try q.state(hub)
        result.faults += 1
        let imported = try q.run(["bundle", "import", templates.bundle, "--home", hub.path, "--receipt", q.folder("r").path], timeout: 120, prefix: limited)
        if imported.code == 0 {
            result.notes.append("the import fitted under \(limitKB) KB")
        } else {
            if !imported.err.contains("disk") { result.failures.append("a full disk gave an unclear error: \(imported.err.suffix(300))") }
            if try q.state(hub) != before { result.failures.append("a failed import under a full disk changed the replica") }
        }
        result.failures += try q.verify(hub)
        // Local writes under the limit: each is whole or absent.
        let writes = try q.run(["shell", "--home", hub.path, "--keep-going"], input: (0..<50).map { "log add \"under a full disk \($0) \(String(repeating: "x", count: 1500))\"" }.joined(separator: "\n") + "\n",
                               timeout: 120, prefix: ["/bin/bash", "-c", "ulimit -f \(limitKB / 2 + size / 2048); exec \"$0\" \"$@\""])
        if writes.code != 0, !writes.err.contains("disk") { result.failures.append("a write under a full disk gave an unclear error: \(writes.err.suffix(300))") }
        result.failures += try q.verify(hub)
        // Space back: it imports.
        let recovered = try q.run(["bundle", "import", templates.bundle, "--home", hub.path, "--receipt", q.folder("r").path], timeout: 120)
        if recovered.code != 0 { result.failures.append("the import failed once space was back: \(recovered.err.suffix(300))") }
        result.failures += try q.verify(hub)

        // A replica that cannot be written (another user, without write permission).
        if FileManager.default.fileExists(atPath: "/usr/bin/setpriv") {
            result.faults += 1
            let readOnly = try q.copy(templates.ward, as: "read-only")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: readOnly.path)
            for name in try FileManager.default.contentsOfDirectory(atPath: readOnly.path) {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: readOnly.appendingPathComponent(name).path)
            }
            let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
            let refused = try q.run(["initiative", "add", "--title", "x", "--home", readOnly.path], timeout: 30, prefix: asNobody)
            if refused.code == 0 { result.failures.append("a write to a read-only replica succeeded") }
            if !(refused.err.contains("read-only") || refused.err.contains("cannot be written") || refused.err.contains("cannot be opened") || refused.err.contains("unreadable")) {
                result.failures.append("a read-only replica gave an unclear error: \(refused.err.suffix(300))")
            }
            result.failures += try q.verify(readOnly)
        }
    }

    // MARK: Concurrency

    func writers(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub")
        let wards = [try q.copy(templates.ward, as: "ward")]
        let (server, address) = try q.serve(hub)
        let shells = try (0..<3).map { shell in
            try Child(q.binary, ["shell", "--home", hub.path],
                      input: Data(((0..<150).map { "initiative add --title \"writer \(shell) line \($0)\"" }.joined(separator: "\n") + "\n").utf8))
        }
        let syncs = try wards.map { try Child(q.binary, ["sync", address, "--home", $0.path, "--timeout", "30"]) }
        result.faults += shells.count + syncs.count
        for (index, child) in (shells + syncs).enumerated() {
            let (code, timedOut) = child.wait(timeout: 300)
            if timedOut { result.failures.append("process \(index) hung (a deadlock?)") }
            if code != 0 { result.failures.append("process \(index) failed: \(child.errors.suffix(300))") }
            if child.errors.lowercased().contains("locked") || child.errors.contains("busy") { result.failures.append("process \(index) showed a busy database: \(child.errors.suffix(200))") }
        }
        server.signal(SIGTERM)
        server.wait(timeout: 10)
        let titles = try QIRecords.open(home: hub).list(.initiative, filter: { var f = ListFilter(); f.limit = 100_000; return f }()).map { $0.text("title") }
        let written = titles.filter { $0.hasPrefix("writer ") }.count
        if written != 450 { result.failures.append("450 writes were made, \(written) are there") }
        result.failures += try q.verify(hub)
        for ward in wards { try recover(hub, ward, &result) }
    }

    // MARK: Clocks

    func clocks(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        // The faketime wrapper runs qisync with its clock moved (libfaketime preloaded by hand
        // leaves a Swift program without its arguments).
        guard let faketime = ["/usr/bin/faketime", "/usr/local/bin/faketime"].first(where: FileManager.default.fileExists) else {
            result.failures.append("faketime is not installed (tools/setup.sh installs it); the clock trials cannot run")
            return
        }
        let hub = try q.copy(templates.hub, as: "hub"), ward = try q.copy(templates.ward, as: "ward")
        let hours = 2 + Int(rng.next() % 10)
        func at(_ offset: String) -> [String] { [faketime, "-f", offset] }
        // The ward's clock runs hours fast, then jumps back hours slow: its edits stay in order.
        let made = try q.run(["initiative", "add", "--title", "Clock test", "--json", "--home", ward.path], prefix: at("+\(hours)h"))
        guard let id = Self.json(made.out)?["id"] as? String else { throw HarnessError("could not add: \(made.err)") }
        result.faults += 2
        try q.run(["initiative", "set", id, "--status", "active", "--home", ward.path], prefix: at("+\(hours)h"))
        try q.run(["initiative", "set", id, "--status", "sustaining", "--home", ward.path], prefix: at("-\(hours)h"))
        let synced = try q.syncClean(ward, hub)
        if synced.code != 0 { result.failures.append("a sync with a clock \(hours) h fast failed: \(synced.err.suffix(300))") }
        for home in [ward, hub] {
            let status = try QIRecords.open(home: home).record(.initiative, RecordID(hex: id)!).text("status")
            if status != "sustaining" { result.failures.append("\(home.lastPathComponent): the last edit (made with the clock set back) lost to an earlier one: \(status)") }
            if !(try QIRecords.open(home: home).conflicts().isEmpty) { result.failures.append("sequential edits across a clock jump made a conflict") }
        }
        // A clock days ahead: its entries are refused until the clocks agree.
        result.faults += 1
        try q.run(["initiative", "add", "--title", "From three days ahead", "--home", ward.path], prefix: at("+3d"))
        let ahead = try q.syncClean(ward, hub)
        if !ahead.out.contains("refused") && !ahead.err.contains("refused") {
            result.failures.append("an entry three days ahead was not refused: \(ahead.out.suffix(300))")
        }
        if try QIRecords.open(home: hub).list(.initiative).contains(where: { $0.text("title") == "From three days ahead" }) {
            result.failures.append("an entry three days ahead was taken")
        }
        // Once the hub's clock has caught up, it is taken.
        let (server, address) = try q.serve(hub)
        server.signal(SIGTERM)
        server.wait(timeout: 10)
        let later = try Child(q.binary, ["serve", "--home", hub.path, "--listen", address], prefix: at("+3d"))
        usleep(800_000)
        try q.run(["sync", address, "--home", ward.path, "--timeout", "20"], prefix: at("+3d"))
        later.signalTree(SIGTERM)
        later.wait(timeout: 10)
        if !(try QIRecords.open(home: hub).list(.initiative).contains(where: { $0.text("title") == "From three days ahead" })) {
            result.failures.append("the entry was still refused once the clocks agreed")
        }
        result.failures += try q.verify(hub) + q.verify(ward)
    }

    // MARK: Soak

    func soak(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let hub = try q.copy(templates.hub, as: "hub")
        var wards = [try q.copy(templates.ward, as: "ward")]
        for index in 0..<3 { wards.append(try q.ward("soak-\(index)", of: hub)) }
        let (server, address) = try q.serve(hub)
        defer {
            server.signal(SIGTERM)
            server.wait(timeout: 10)
        }
        let steps = soakSteps
        for step in 0..<steps {
            let ward = wards[Int(rng.next() % UInt64(wards.count))]
            if rng.next() % 3 == 0 {
                let title = "soak \(step) £ é"
                try q.run(["shell", "--home", ward.path], input: "initiative add --title \"\(title)\"\nlog add \"soak note \(step)\" --sofft S\(step % 6 + 1)\n")
            } else {
                result.faults += 1
                let synced = try q.run(["sync", address, "--home", ward.path, "--timeout", "20"] + (rng.next() % 4 == 0 ? ["--pull"] : []), timeout: 120)
                if synced.code != 0 { result.failures.append("soak sync \(step) failed: \(synced.err.suffix(200))") }
            }
        }
        for _ in 0..<2 { for ward in wards { try q.run(["sync", address, "--home", ward.path, "--timeout", "20"], timeout: 120) } }
        let hubState = try q.state(hub)
        for ward in wards where try q.state(ward) != hubState { result.failures.append("\(ward.lastPathComponent) did not converge with the hub") }
        for home in [hub] + wards { result.failures += try q.verify(home) }
    }

    var soakSteps: Int { short ? 20 : 200 }
    var short: Bool { ProcessInfo.processInfo.environment["QISYNC_CHAOS_SHORT"] == "1" }

    // MARK: The shell

    func hostileShell(_ rng: inout SplitMix64, _ result: inout TrialResult) throws {
        let ward = try q.copy(templates.ward, as: "ward")
        var script = Data()
        let lines = short ? 2000 : 10_000
        for index in 0..<lines {
            switch rng.next() % 10 {
            case 0: script += Data(("log add \"" + String(repeating: "long ", count: 40_000) + "\"").utf8)
            case 1: script += Data([0x6C, 0x6F, 0x67, 0x20, 0xFF, 0xFE, 0xC3, 0x28])           // invalid UTF-8
            case 2: script += Data("log add \"unbalanced".utf8)
            case 3: script += Data("initiative add --title 'a\u{07}bell \u{1B}[31mred'".utf8)
            case 4: script += Data((0..<Int(rng.next() % 64)).map { _ in UInt8(rng.next() % 32) })   // control bytes
            case 5: script += Data("initiative add --title \"ok \(index) Ysbyty Gwynedd °C\"".utf8)
            case 6: script += Data("\\".utf8)
            case 7: script += Data("sql \"SELECT count(*) FROM initiative\"".utf8)
            case 8: script += Data(String(repeating: "-", count: Int(rng.next() % 5000)).utf8)
            default: script += Data("help".utf8)
            }
            script += Data([0x0A])
        }
        result.faults += lines
        let child = try Child(q.binary, ["shell", "--home", ward.path, "--keep-going"], input: script)
        let (code, timedOut) = child.wait(timeout: 600)
        if timedOut { result.failures.append("the shell hung on hostile input") }
        if child.diedOfSignal || child.errors.contains("Fatal error") { result.failures.append("the shell crashed on hostile input (exit \(code)): \(child.errors.suffix(300))") }
        if !child.errors.contains("line ") { result.failures.append("hostile lines were not reported by number") }
        result.failures += try q.verify(ward)
    }
}
