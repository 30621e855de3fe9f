import ArgumentParser
import Foundation

/// What every benchmark needs: a working folder and the `qisync` built beside `qisync-bench`.
enum BenchSupport {
    /// `path`, emptied and made again.
    static func emptyFolder(_ path: String) throws -> URL {
        let root = URL(fileURLWithPath: path)
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root
    }

    /// The `qisync` executable beside this one.
    static func qisync() throws -> URL {
        let qisync = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qisync")
        guard FileManager.default.isExecutableFile(atPath: qisync.path) else {
            throw ValidationError("\(qisync.path) is missing: build it beside qisync-bench first ('swift build -c release')")
        }
        return qisync
    }

    /// `qisync serve` on `home`, listening on a free loopback port: the process and its address.
    static func serve(qisync: URL, home: URL) throws -> (Process, String) {
        let process = Process()
        process.executableURL = qisync
        process.arguments = ["serve", "--home", home.path, "--listen", "127.0.0.1:0"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression) else { throw ValidationError("serve said: \(text)") }
        return (process, String(text[range]))
    }
}

/// A child process started with posix_spawn and reaped with wait4, for its wall time and peak
/// resident memory; standard input from `input` when given, output discarded, errors kept for
/// the message when it fails.
enum Spawned {
    static func run(_ executable: URL, _ arguments: [String], input: URL? = nil) throws -> (seconds: Double, peakMB: Double) {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-bench-\(UUID().uuidString).err")
        defer { try? FileManager.default.removeItem(at: errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input?.path ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = Date()
        guard posix_spawn(&pid, executable.path, &actions, nil, argv, environ) == 0 else { throw ValidationError("could not start \(executable.path)") }
        var status: Int32 = 0
        var usage = rusage()
        guard wait4(pid, &status, 0, &usage) == pid else { throw ValidationError("could not wait for \(executable.lastPathComponent)") }
        let seconds = Date().timeIntervalSince(started)
        guard status == 0 else {
            let message = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw ValidationError("qisync \(arguments.joined(separator: " ")) failed (status \(status)): \(message)")
        }
        return (seconds, Double(usage.ru_maxrss) / 1024)
    }
}
