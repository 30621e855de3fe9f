import Foundation
import Glibc

/// A `qisync` process on a pseudo-terminal, driven as a person at a keyboard would: keys are
/// written to the terminal, and what the program draws is read back. The terminal is the
/// process's controlling terminal (started through `setsid --ctty`), so Ctrl-C sends SIGINT as
/// on a real one. Reads are bounded in time.
final class TerminalSession {
    let process = Process()
    private let master: Int32
    private var buffer = [UInt8]()
    /// Everything read from the terminal so far.
    private(set) var transcript = ""

    /// Starts `qisync ARGUMENTS` on a new terminal `columns` wide, with `environment` added
    /// to (or, with a nil value, removed from) this process's.
    init(_ arguments: [String], columns: UInt16 = 100, environment: [String: String?] = [:]) throws {
        var master: Int32 = 0, slave: Int32 = 0
        var size = winsize(ws_row: 40, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        guard openpty(&master, &slave, nil, nil, &size) == 0 else { throw QisyncTestError("openpty failed: \(errno)") }
        self.master = master
        let slaveHandle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["--ctty", QisyncProcess.binary.path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["TERM"] = "xterm"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardInput = slaveHandle
        process.standardOutput = slaveHandle
        process.standardError = slaveHandle
        try process.run()
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if process.isRunning { process.terminate() }
        close(master)
    }

    /// Types `text` (use "\r" for Enter, "\u{03}" for Ctrl-C, "\u{04}" for Ctrl-D, "\t" for Tab).
    func type(_ text: String) {
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if result > 0 { written += result } else { usleep(1000) }
        }
    }

    /// Reads until `pattern` appears in what was read since the last wait, or `timeout` passes;
    /// returns what was read (escape sequences left in).
    @discardableResult
    func wait(for pattern: String, timeout: Double = 30) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var seen = ""
        while Date() < deadline {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(master, &chunk, chunk.count)
            if count > 0 {
                buffer += chunk[0..<count]
                let text = String(decoding: buffer, as: UTF8.self)
                seen = text
                if text.contains(pattern) {
                    transcript += text
                    buffer = []
                    return text
                }
            } else {
                if !process.isRunning, count <= 0 { break }
                usleep(5000)
            }
        }
        transcript += seen
        buffer = []
        throw QisyncTestError("'\(pattern)' did not appear within \(timeout) s; the terminal showed:\n\(Self.plain(String(transcript.suffix(1500))))")
    }

    /// Whether the terminal is in canonical (cooked) mode: the shell is not reading keys (libedit
    /// reads them with canonical mode off), but running a line or between two. The master side
    /// reads the terminal's settings.
    var isCooked: Bool {
        var settings = termios()
        return tcgetattr(master, &settings) == 0 && settings.c_lflag & tcflag_t(ICANON) != 0
    }

    /// Waits until the shell is reading keys at its prompt (libedit has canonical mode off), at
    /// most `timeout`. A prompt on the screen does not say so: between one line's end and
    /// libedit's next read the terminal is cooked, and a Ctrl-C or Ctrl-D typed then is a
    /// signal or an end of file as the terminal takes it, not a key.
    func waitUntilReading(timeout: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while isCooked {
            guard Date() < deadline else { throw QisyncTestError("the shell was not reading keys within \(timeout) s") }
            usleep(1000)
        }
    }

    /// Waits for the process to end (up to `timeout`), returning its exit code.
    func waitForExit(timeout: Double = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(master, &chunk, chunk.count)
            if count > 0 { transcript += String(decoding: chunk[0..<count], as: UTF8.self) } else { usleep(5000) }
        }
        guard !process.isRunning else {
            // Whether the shell was reading keys (libedit, canonical mode off) or running a command.
            throw QisyncTestError("the shell did not exit (the terminal in \(isCooked ? "canonical" : "raw") mode); the terminal showed:\n\(Self.plain(transcript))")
        }
        // What it wrote just before it ended is still in the terminal: read it all.
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<100 {
            let count = read(master, &chunk, chunk.count)
            if count <= 0 { break }
            transcript += String(decoding: chunk[0..<count], as: UTF8.self)
        }
        return process.terminationStatus
    }

    /// Text with terminal escape sequences removed, for reading in a failure message.
    static func plain(_ text: String) -> String {
        text.replacingOccurrences(of: "\u{1B}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression)
    }
}
