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
}
