import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// The interactive shell through a pseudo-terminal, as people type at it.
@Suite("The shell at a terminal", .serialized)
struct TerminalTests {
    let home: URL

    init() throws {
        home = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-tty-\(UUID().uuidString)")
        let made = try QisyncProcess.run(["init", "--home", home.path, "--trust", "RXH", "--trust-name", "Ysbyty Gwynedd", "--site", "ward-7"])
        guard made.code == 0 else { throw QisyncTestError("init failed: \(made.err)") }
    }

    static let nhsText = "café naïve — £5, 37°C, Llanfairpwllgwyngyll, Ysbyty’r Waun, ½ dose, 🙂"

    @Test("text typed at the prompt is stored exactly, in a UTF-8 locale and in the C locale", arguments: [
        ["LANG": "C.UTF-8", "LC_ALL": nil, "LC_CTYPE": nil], ["LANG": nil, "LC_ALL": "C", "LC_CTYPE": nil],
        ["LANG": nil, "LC_ALL": nil, "LC_CTYPE": nil], ["LANG": "en_GB.UTF-8", "LC_ALL": nil, "LC_CTYPE": nil],
    ] as [[String: String?]])
    func nonASCII(locale: [String: String?]) throws {
        defer { try? FileManager.default.removeItem(at: home) }
        let terminal = try TerminalSession(["shell", "--home", home.path], environment: locale)
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("log add \"\(Self.nhsText)\" --json\r")
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("exit\r")
        #expect(try terminal.waitForExit() == 0)
        let records = try QIRecords.open(home: home)
        let texts = try records.list(.learning).map { $0.text("text") }
        #expect(texts == [Self.nhsText], "stored \(texts); terminal showed \(TerminalSession.plain(terminal.transcript))")
    }

    @Test("Ctrl-C clears the line, cancels a running sync (recorded as cancelled), and leaves a background server running; Ctrl-D ends the line before leaving")
    func interrupts() throws {
        defer { try? FileManager.default.removeItem(at: home) }
        // A peer that accepts connections and never says a word: a sync to it waits.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(silent, 5)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &length) } }
        let port = Int(UInt16(bigEndian: bound.sin_port))
        defer { close(silent) }

        let terminal = try TerminalSession(["shell", "--home", home.path], environment: ["LANG": "C.UTF-8"])
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("serve --listen 127.0.0.1:0\r")
        try terminal.wait(for: "RXH/ward-7> ")
        // At an empty prompt, and half-way through a line: the line goes, the shell stays.
        try terminal.waitUntilReading()
        terminal.type("\u{03}")
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("initiative add --title 'never typed in full")
        // As a person does: the line is on the screen before Ctrl-C.
        try terminal.wait(for: "never typed in full")
        terminal.type("\u{03}")
        try terminal.wait(for: "RXH/ward-7> ")
        // During a sync: cancelled, back to the prompt, recorded. Pressed once the sync has
        // connected and waits on the peer's TLS handshake, which never comes. (Whether the
        // terminal is cooked does not tell that the shell took this line: it is cooked for a
        // moment between the line a Ctrl-C ended and the next. Cancelling before the
        // connection opens: InterruptionTests.)
        terminal.type("sync 127.0.0.1:\(port) --timeout 60\r")
        var waiting = pollfd(fd: silent, events: Int16(POLLIN), revents: 0)
        #expect(poll(&waiting, 1, 10_000) == 1, "the sync connected to the silent peer")
        let started = Date()
        terminal.type("\u{03}")
        try terminal.wait(for: "RXH/ward-7> ", timeout: 50)
        #expect(Date().timeIntervalSince(started) < 45, "the sync was cancelled, not left to its 60 s timeout")
        terminal.type("serve --status\r")
        let status = try terminal.wait(for: "RXH/ward-7> ")
        #expect(status.contains("serving RXH/ward-7 on 127.0.0.1:"), "the background server survived Ctrl-C: \(TerminalSession.plain(status))")
        try terminal.waitUntilReading()
        terminal.type("\u{04}")
        #expect(try terminal.waitForExit() == 0)
        let plain = TerminalSession.plain(terminal.transcript)
        #expect(plain.contains("stopping the server on"))
        // libedit echoes ^D after the prompt; the shell ends that line before saying what it does.
        #expect(plain.contains("\nstopping the server on"), "Ctrl-D ends the line: \(plain.suffix(300))")
        let replica = try Replica.open(home: home, schema: QISchema.schema)
        #expect(try QIRecords(replica: replica).list(.initiative).isEmpty, "the interrupted line did not run")
        let sessions = try replica.syncHistory()
        #expect(sessions.first?.outcome.hasPrefix("cancelled") == true, "\(sessions.map(\.outcome)); the terminal showed:\n\(plain)")
    }

    @Test("revoke asks before it acts and takes only y or yes; paragraphs typed with \\n are kept")
    func confirmationAndParagraphs() throws {
        defer { try? FileManager.default.removeItem(at: home) }
        let who = try QisyncProcess.run(["whoami", "--json", "--home", home.path])
        let fingerprint = try #require((try JSONSerialization.jsonObject(with: Data(who.out.utf8)) as? [String: Any])?["trust_fingerprint"] as? String)
        let ward = home.appendingPathComponent("ward-9")
        let joined = try QisyncProcess.run(["init", "--home", ward.path, "--trust", "RXH", "--trust-name", "Ysbyty Gwynedd", "--site", "ward-9",
                                            "--join", fingerprint, "--json"])
        let request = try #require((try JSONSerialization.jsonObject(with: Data(joined.out.utf8)) as? [String: Any])?["enrolment_request"] as? String)
        #expect(try QisyncProcess.run(["enrol", request, "--home", home.path]).code == 0)

        let terminal = try TerminalSession(["shell", "--home", home.path], environment: ["LANG": "C.UTF-8"])
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("revoke ward-9\r")
        let question = try terminal.wait(for: "[y/N] ")
        #expect(TerminalSession.plain(question).contains("Revoke RXH/ward-9"))
        terminal.type("\r")
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("revoke ward-9\r")
        try terminal.wait(for: "[y/N] ")
        terminal.type("y\r")
        let done = try terminal.wait(for: "RXH/ward-7> ")
        #expect(TerminalSession.plain(done).contains("revoked RXH/ward-9"))
        terminal.type("log add \"Huddles helped.\\nNext: nights.\"\r")
        try terminal.wait(for: "RXH/ward-7> ")
        terminal.type("exit\r")
        #expect(try terminal.waitForExit() == 0)
        let plain = TerminalSession.plain(terminal.transcript)
        #expect(plain.contains("not revoked"), "an empty answer declines: \(plain)")
        let replica = try Replica.open(home: home, schema: QISchema.schema)
        #expect(try replica.directory().revocations.count == 1)
        #expect(try QIRecords(replica: replica).list(.learning).map { $0.text("text") } == ["Huddles helped.\nNext: nights."])
        let history = try String(contentsOf: home.appendingPathComponent("shell_history"), encoding: .utf8)
        #expect(!history.split(separator: "\n").contains("y"), "answers stay out of the shell's history")
    }
}
