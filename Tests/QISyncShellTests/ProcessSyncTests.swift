import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// A `qisync` child process.
final class QisyncProcess {
    let process = Process()
    let stdout = Pipe(), stderr = Pipe()

    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync")
    }

    init(_ arguments: [String]) throws {
        process.executableURL = Self.binary
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Runs to the end; returns the exit code and output.
    static func run(_ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        let child = try QisyncProcess(arguments)
        let out = child.stdout.fileHandleForReading.readDataToEndOfFile()
        let err = child.stderr.fileHandleForReading.readDataToEndOfFile()
        child.process.waitUntilExit()
        return (child.process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Starts `qisync serve` on a free loopback port and returns it with its address.
    static func serve(home: URL) throws -> (QisyncProcess, String) {
        let server = try QisyncProcess(["serve", "--home", home.path, "--listen", "127.0.0.1:0"])
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = server.stdout.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression) else {
            server.process.terminate()
            throw QisyncTestError("serve did not say where it listens: \(text)")
        }
        return (server, String(text[range]))
    }

    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

struct QisyncTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("Sync between qisync processes on loopback", .serialized)
struct ProcessSyncTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-proc-\(UUID().uuidString)")

    /// A trust's hub, made with `init` (which makes the trust key), and its trust key's fingerprint.
    func hub(_ name: String, trust: String = "RXH") throws -> (home: URL, fingerprint: String) {
        let home = root.appendingPathComponent(name)
        let result = try QisyncProcess.run(["init", "--home", home.path, "--trust", trust, "--trust-name", "Trust \(trust)", "--site", name, "--json"])
        guard result.code == 0 else { throw QisyncTestError(result.err) }
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        guard let fingerprint = json?["trust_fingerprint"] as? String else { throw QisyncTestError("init printed no fingerprint: \(result.out)") }
        return (home, fingerprint)
    }

    /// A ward that joins the hub's trust with 'init --join' and is enrolled by the hub's
    /// 'enrol'; with `byFile` it takes the enrolment in from the file the hub wrote, otherwise
    /// it gets it at its first sync with the hub.
    func ward(_ name: String, of hub: (home: URL, fingerprint: String), trust: String = "RXH", byFile: Bool = true) throws -> URL {
        let home = root.appendingPathComponent(name)
        let made = try QisyncProcess.run(["init", "--home", home.path, "--trust", trust, "--trust-name", "Trust \(trust)", "--site", name,
                                          "--join", hub.fingerprint, "--json"])
        guard made.code == 0, let json = try JSONSerialization.jsonObject(with: Data(made.out.utf8)) as? [String: Any],
              let request = json["enrolment_request"] as? String else { throw QisyncTestError(made.err) }
        let file = root.appendingPathComponent("\(name).enrolment").path
        let enrolled = try QisyncProcess.run(["enrol", request, "--out", file, "--home", hub.home.path])
        guard enrolled.code == 0 else { throw QisyncTestError(enrolled.err) }
        if byFile {
            let accepted = try QisyncProcess.run(["enrol", "--accept", file, "--home", home.path])
            guard accepted.code == 0 else { throw QisyncTestError(accepted.err) }
        }
        return home
    }

    /// Two replicas of different trusts pin each other's trust key, as administrators do by phone.
    func pin(_ a: URL, _ b: URL) throws {
        for (from, to) in [(a, b), (b, a)] {
            let who = try QisyncProcess.run(["whoami", "--json", "--home", to.path])
            let json = try JSONSerialization.jsonObject(with: Data(who.out.utf8)) as? [String: Any]
            let code = json?["trust"] as? String ?? "", fingerprint = json?["trust_fingerprint"] as? String ?? ""
            let added = try QisyncProcess.run(["trust", "add", code, fingerprint, "--home", from.path])
            guard added.code == 0 else { throw QisyncTestError(added.err) }
        }
    }

    func script(_ home: URL, _ lines: [String]) throws {
        let process = Process()
        process.executableURL = QisyncProcess.binary
        process.arguments = ["shell", "--home", home.path]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(lines.joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw QisyncTestError("script failed") }
    }

    @Test("ward → hub → another trust's hub, as separate processes: the trust converges, the other trust gets shared records only")
    func threeReplicas() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let made = try hub("hub")
        let hub = made.home, ward = try ward("ward", of: made, byFile: false), other = try self.hub("other", trust: "RYJ").home
        // Only the hub pins the other trust: its decision reaches the ward with the first sync.
        try pin(hub, other)
        try script(ward, ["initiative add --title 'Ward falls work'", "log add 'Huddles helped' --sofft S1"])
        let wardRecords = try QIRecords.open(home: ward)
        _ = try wardRecords.share(try wardRecords.list(.initiative)[0].id.hex)
        try script(hub, ["initiative add --title 'Hub sepsis work'"])
        let hubRecords = try QIRecords.open(home: hub)
        _ = try hubRecords.share(try hubRecords.list(.initiative)[0].id.hex)
        try script(other, ["initiative add --title 'Other trust discharge work'"])
        let otherRecords = try QIRecords.open(home: other)
        _ = try otherRecords.share(try otherRecords.list(.initiative)[0].id.hex)
        let (hubServer, hubAddress) = try QisyncProcess.serve(home: hub)
        let (otherServer, otherAddress) = try QisyncProcess.serve(home: other)
        #expect(try QisyncProcess.run(["peer", "add", "hub", hubAddress, "--home", ward.path]).code == 0)
        let first = try QisyncProcess.run(["sync", "hub", "--home", ward.path])
        #expect(first.code == 0, "\(first.err)")
        #expect(first.out.contains("received") && first.out.contains("ok"))
        #expect(try QisyncProcess.run(["peer", "add", "ryj", otherAddress, "--home", hub.path]).code == 0)
        #expect(try QisyncProcess.run(["sync", "ryj", "--home", hub.path]).code == 0)
        #expect(try QisyncProcess.run(["sync", "hub", "--home", ward.path]).code == 0)
        #expect(hubServer.stop() == 0)
        #expect(otherServer.stop() == 0)
        let states = try [ward, hub].map { try QIRecords.open(home: $0).replica.canonicalState() }
        #expect(states[0] == states[1])
        let titles = try QIRecords.open(home: ward).list(.initiative).map { $0.text("title") }
        #expect(Set(titles) == ["Ward falls work", "Hub sepsis work", "Other trust discharge work"])
        #expect(try QIRecords.open(home: other).list(.initiative).count == 3)
        #expect(try QIRecords.open(home: other).list(.learning).isEmpty, "a trust-scope learning entry reached another trust")
        #expect(try QIRecords.open(home: hub).list(.learning).count == 1)
        let peers = try QisyncProcess.run(["peer", "list", "--home", ward.path])
        #expect(peers.out.contains("hub") && peers.out.contains("ok") && peers.out.contains("up to date"))
        // The hub lists the ward that syncs with it, and counts toward another trust's hub only
        // what may go there: its trust-scope entries never will.
        let hubPeers = try QisyncProcess.run(["peer", "list", "--json", "--home", hub.path])
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(hubPeers.out.utf8)) as? [String: [[String: Any]]])
        #expect(listed["peers"]?.first { $0["name"] as? String == "ryj" }?["behind"] as? Int == 0, "\(hubPeers.out)")
        // The session kept the peer's proven trust, which the distance is counted by without reading the directory.
        #expect(try QIRecords.open(home: hub).replica.peers().first { $0.name == "ryj" }?.lastSync?.peerTrust == "RYJ")
        let visitor = try #require(listed["synced_with_us"]?.first { $0["name"] as? String == "RXH/ward" }, "\(hubPeers.out)")
        #expect(visitor["behind"] as? Int == 0 && visitor["outcome"] as? String == "ok")
        let otherPeers = try QisyncProcess.run(["peer", "list", "--home", other.path]).out
        #expect(otherPeers.contains("sites that sync with this replica") && otherPeers.contains("RXH/hub") && otherPeers.contains("up to date"), "\(otherPeers)")
        // site list names every site with its state and when it was last heard from.
        let sites = try #require(try JSONSerialization.jsonObject(with: Data(try QisyncProcess.run(["site", "list", "--json", "--home", hub.path]).out.utf8)) as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: sites.compactMap { site in (site["site"] as? String).map { ($0, site) } })
        #expect(Set(byName.keys) == ["RXH/hub", "RXH/ward", "RYJ/other"], "\(sites)")
        #expect(byName["RXH/hub"]?["status"] as? String == "this site")
        #expect(byName["RXH/ward"]?["status"] as? String == "enrolled" && byName["RXH/ward"]?["last_seen"] != nil)
        #expect((byName["RXH/ward"]?["entries"] as? Int ?? 0) >= 2)
        #expect(byName["RYJ/other"]?["kind"] as? String == "hub" && byName["RYJ/other"]?["last_seen"] != nil)
    }

    @Test("a site that joined with another trust name, or none, takes the hub's name at its first sync, says so and records it")
    func trustNameFromHub() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let made = try hub("hub")
        for (name, given) in [("ward-a", ["--trust-name", "Betsi Cadwaladr"]), ("ward-b", [])] {
            let home = root.appendingPathComponent(name)
            let joined = try QisyncProcess.run(["init", "--home", home.path, "--trust", "RXH", "--site", name, "--join", made.fingerprint, "--json"] + given)
            #expect(joined.code == 0, "\(name): \(joined.err) \(joined.out)")
            let request = try #require((try JSONSerialization.jsonObject(with: Data(joined.out.utf8)) as? [String: Any])?["enrolment_request"] as? String)
            #expect(try QisyncProcess.run(["enrol", request, "--home", made.home.path]).code == 0)
        }
        #expect(try QisyncProcess.run(["init", "--home", root.appendingPathComponent("nameless").path, "--trust", "RXH", "--site", "hub"]).err
            .contains("needs --trust-name"), "founding a trust needs its name")
        let (server, address) = try QisyncProcess.serve(home: made.home)
        defer { _ = server.stop() }
        for name in ["ward-a", "ward-b"] {
            let home = root.appendingPathComponent(name)
            let synced = try QisyncProcess.run(["sync", address, "--home", home.path])
            #expect(synced.code == 0, "\(synced.err)")
            #expect(synced.err.contains("Trust RXH"), "the sync says which name is now used: \(synced.err)")
            let status = try #require(try JSONSerialization.jsonObject(with: Data(try QisyncProcess.run(["status", "--json", "--home", home.path]).out.utf8)) as? [String: Any])
            #expect(status["trust_name"] as? String == "Trust RXH")
            #expect(try QIRecords.open(home: home).replica.identity.trustName == "Trust RXH")
            #expect(try QisyncProcess.run(["audit", "--home", home.path]).out.contains("trust name"))
            #expect(try QisyncProcess.run(["sync", address, "--home", home.path]).err.contains("Trust RXH") == false, "said once")
        }
        // The hub now holds each ward's site row with the trust's own name.
        let names = try QIRecords.open(home: made.home).replica.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT trust_name FROM site") }
        #expect(names == ["Trust RXH"])
    }

    @Test("a server process serves several client processes at once")
    func severalClients() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let made = try hub("hub")
        let hub = made.home
        let wards = try (0..<3).map { try ward("ward-\($0)", of: made) }
        for (index, ward) in wards.enumerated() {
            try script(ward, (0..<40).map { "log add 'ward \(index) note \($0)' --sofft S\($0 % 6 + 1)" })
        }
        let (server, address) = try QisyncProcess.serve(home: hub)
        let clients = try wards.map { try QisyncProcess(["sync", address, "--home", $0.path]) }
        for client in clients {
            _ = client.stdout.fileHandleForReading.readDataToEndOfFile()
            client.process.waitUntilExit()
            #expect(client.process.terminationStatus == 0)
        }
        #expect(server.stop() == 0)
        #expect(try QIRecords.open(home: hub).list(.learning).count == 120)
        #expect(try QIRecords.open(home: hub).replica.verify().isSound)
    }

    @Test("a server killed mid-transfer loses nothing acknowledged; the next sync finishes the job")
    func killedServer() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let made = try hub("hub")
        let hub = made.home, ward = try ward("ward", of: made)
        let records = try QIRecords.open(home: ward)
        for i in 0..<4000 {
            try records.replica.write(scope: .trust, edits: [RowEdit(table: RecordKind.learning.table.id, key: RecordID.random(owner: records.replica.identity.trustCode).bytes, values: [
                (0, .integer(1)), (6, .text("note \(i) " + String(repeating: "lorem ipsum ", count: 120))),
            ])])
        }
        let wardLog = LogID(origin: records.replica.identity.origin, scope: .trust)
        let total = try records.replica.versionVector().seq(of: wardLog)
        let (server, address) = try QisyncProcess.serve(home: hub)
        let client = try QisyncProcess(["sync", address, "--push", "--json", "--home", ward.path])
        let hubRecords = try QIRecords.open(home: hub)
        // Kill the server as soon as part of the ward's log has landed.
        var held: UInt64 = 0
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            held = try hubRecords.replica.versionVector().seq(of: wardLog)
            // A few batches in, so some are usually acknowledged when the kill lands.
            if held >= 1024 { break }
            Thread.sleep(forTimeInterval: 0.001)
        }
        _ = server.stop(SIGKILL)
        let summary = client.stdout.fileHandleForReading.readDataToEndOfFile()
        client.process.waitUntilExit()
        #expect(client.process.terminationStatus != 0 || held == total)
        // What the server acknowledged before it died, as the client saw it, is all on the hub's disk.
        let json = try #require(try JSONSerialization.jsonObject(with: summary) as? [String: Any], "the client printed no summary")
        let acknowledged = try #require(json["sent"] as? Int)
        let shared = LogID(origin: records.replica.identity.origin, scope: .shared)
        let afterKillVector = try QIRecords.open(home: hub).replica.versionVector()
        held = afterKillVector.seq(of: wardLog)
        #expect(Int(held + afterKillVector.seq(of: shared)) >= acknowledged, "acknowledged \(acknowledged) entries, the hub holds \(held)")
        #expect(held < total, "the kill should land mid-transfer (held \(held) of \(total))")
        let afterKill = try QIRecords.open(home: hub).replica.verify()
        #expect(afterKill.isSound, "\(afterKill.logProblems) \(afterKill.differences)")
        let (restarted, newAddress) = try QisyncProcess.serve(home: hub)
        let resumed = try QisyncProcess.run(["sync", newAddress, "--home", ward.path])
        #expect(resumed.code == 0, "\(resumed.err)")
        #expect(restarted.stop() == 0)
        #expect(try QIRecords.open(home: hub).replica.canonicalState() == records.replica.canonicalState())
    }
}
