import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

/// A failure of the harness itself (a process that would not start, a folder that could not be
/// copied), as opposed to a finding about qisync.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `qisync` child process whose output is collected as it runs.
final class Child: @unchecked Sendable {
    // The lock guards `out` and `err`, which the reading threads fill.
    let process = Process()
    private let lock = NSLock()
    private var out = Data(), err = Data()
    private let outPipe = Pipe(), errPipe = Pipe()

    /// Starts `executable ARGUMENTS` with `input` on its standard input (then closed), and
    /// `prefix` (say, `bash -c 'ulimit …; exec "$0" "$@"'`) in front when given.
    init(_ executable: String, _ arguments: [String], input: Data? = nil, prefix: [String] = [], environment: [String: String] = [:]) throws {
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [executable] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe = Pipe()
        process.standardInput = inPipe
        outPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, error: false) }
        errPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, error: true) }
        try process.run()
        if let input {
            DispatchQueue.global().async {
                try? inPipe.fileHandleForWriting.write(contentsOf: input)
                try? inPipe.fileHandleForWriting.close()
            }
        } else {
            try? inPipe.fileHandleForWriting.close()
        }
    }

    private func append(_ data: Data, error: Bool) {
        lock.lock()
        if error { err += data } else { out += data }
        lock.unlock()
    }

    /// What it wrote to standard output so far.
    var output: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: out, as: UTF8.self)
    }

    /// What it wrote to standard error so far.
    var errors: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: err, as: UTF8.self)
    }

    /// Waits up to `timeout` seconds; kills it (and says so) when it runs longer.
    @discardableResult
    func wait(timeout: Double) -> (code: Int32, timedOut: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(2000) }
        var timedOut = false
        if process.isRunning {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        // Let the reading handlers drain what was left in the pipes (without blocking on a pipe
        // some other process might still hold open).
        usleep(50_000)
        return (process.terminationStatus, timedOut)
    }

    /// Sends a signal now.
    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Sends a signal to the process's children, then to it (for a wrapper such as faketime,
    /// which runs qisync as its child).
    func signalTree(_ number: Int32) {
        let pid = process.processIdentifier
        if let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) {
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, number) }
        }
        kill(pid, number)
    }

    /// Whether it ended by a signal rather than exiting.
    var diedOfSignal: Bool { process.terminationReason == .uncaughtSignal }
}

/// Runs `qisync` for the trials: folders, sites, writes, syncs, and what a replica holds.
struct Qisync {
    let binary: String
    let root: URL

    /// `qisync ARGUMENTS`, to the end (at most `timeout` seconds).
    @discardableResult
    func run(_ arguments: [String], input: String? = nil, timeout: Double = 60, prefix: [String] = [],
             environment: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
        let child = try Child(binary, arguments, input: input.map { Data($0.utf8) }, prefix: prefix, environment: environment)
        let (code, timedOut) = child.wait(timeout: timeout)
        if timedOut { throw HarnessError("qisync \(arguments.joined(separator: " ")) ran over \(timeout) s") }
        return (code, child.output, child.errors)
    }

    /// A new folder under the run's root.
    func folder(_ name: String) -> URL { root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))") }

    /// A trust's hub, founded here.
    func hub(_ name: String = "hub", trust: String = "RXH") throws -> URL {
        let home = folder(name)
        let made = try run(["init", "--home", home.path, "--trust", trust, "--trust-name", "Trust \(trust)", "--site", name])
        guard made.code == 0 else { throw HarnessError("init \(name): \(made.err)") }
        return home
    }

    /// A ward joining the hub's trust, enrolled by the hub through the enrolment file.
    func ward(_ name: String, of hub: URL) throws -> URL {
        let who = try run(["whoami", "--home", hub.path, "--json"])
        guard let json = try? JSONSerialization.jsonObject(with: Data(who.out.utf8)) as? [String: Any],
              let fingerprint = json["trust_fingerprint"] as? String, let trust = json["trust"] as? String else {
            throw HarnessError("whoami: \(who.err)")
        }
        let home = folder(name)
        let made = try run(["init", "--home", home.path, "--trust", trust, "--trust-name", "Trust \(trust)", "--site", name, "--join", fingerprint])
        guard made.code == 0 else { throw HarnessError("init \(name): \(made.err)") }
        let request = try run(["enrol", "--request", "--home", home.path]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(6)).enrolment").path
        let enrolled = try run(["enrol", request, "--out", file, "--home", hub.path])
        guard enrolled.code == 0 else { throw HarnessError("enrol \(name): \(enrolled.err)") }
        let accepted = try run(["enrol", "--accept", file, "--home", home.path])
        guard accepted.code == 0 else { throw HarnessError("accept \(name): \(accepted.err)") }
        return home
    }

    /// A copy of a replica's folder, to run a trial on.
    func copy(_ home: URL, as name: String) throws -> URL {
        let target = folder(name)
        try FileManager.default.copyItem(at: home, to: target)
        return target
    }

    /// Writes `count` learning entries at a replica through one shell script.
    func write(_ home: URL, count: Int, tag: String) throws {
        let script = (0..<count).map { "log add \"\(tag) \($0): huddles, café, £5, 37°C\" --sofft S\($0 % 6 + 1) --skill soft" }.joined(separator: "\n")
        let result = try run(["shell", "--home", home.path], input: script + "\n", timeout: 600)
        guard result.code == 0 else { throw HarnessError("writing at \(home.lastPathComponent): \(result.err.suffix(300))") }
    }

    /// Starts `qisync serve` on a free loopback port and returns it with its address.
    func serve(_ home: URL) throws -> (Child, String) {
        let child = try Child(binary, ["serve", "--home", home.path, "--listen", "127.0.0.1:0", "--timeout", "10"])
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let range = child.output.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression) { return (child, String(child.output[range])) }
            if !child.process.isRunning { break }
            usleep(5000)
        }
        child.signal(SIGKILL)
        throw HarnessError("serve did not start: \(child.errors)")
    }

    /// A clean sync both ways between two replicas, through a server started for it.
    func syncClean(_ client: URL, _ server: URL) throws -> (code: Int32, out: String, err: String) {
        let (process, address) = try serve(server)
        defer {
            process.signal(SIGTERM)
            process.wait(timeout: 10)
        }
        return try run(["sync", address, "--home", client.path, "--timeout", "20"], timeout: 60)
    }

    /// Problems `verify` finds, or none.
    func verify(_ home: URL) throws -> [String] {
        let result = try run(["verify", "--home", home.path], timeout: 300)
        return result.code == 0 ? [] : ["\(home.lastPathComponent) fails verify: \((result.out + result.err).suffix(400))"]
    }

    /// How many entries a replica holds in all (the sum of its version vector).
    func held(_ home: URL) throws -> UInt64 {
        try Replica.open(home: home, schema: QISchema.schema).versionVector().positions.values.reduce(0) { $0 + $1.seq }
    }

    /// A replica's materialised state, as `verify` compares it.
    func state(_ home: URL) throws -> CanonicalState {
        try Replica.open(home: home, schema: QISchema.schema).canonicalState()
    }
}
