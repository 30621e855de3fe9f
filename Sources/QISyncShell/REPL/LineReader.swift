import CEditLine
import CTerminal
import Foundation

/// Where the shell gets its lines: libedit on a terminal, a list in tests.
public protocol LineReader {
    /// The next line, or nil at end of input.
    mutating func readLine(prompt: String) -> String?
}

/// Lines given up front; for tests.
public struct ScriptedLineReader: LineReader {
    private var lines: [String]

    /// Creates a reader over `lines`.
    public init(_ lines: [String]) { self.lines = lines }

    public mutating func readLine(prompt: String) -> String? {
        lines.isEmpty ? nil : lines.removeFirst()
    }
}

/// libedit: line editing, persistent history and tab completion on a terminal.
struct EditLineReader: LineReader {
    let historyPath: String

    init(historyPath: String, complete: @escaping (_ line: String, _ word: String) -> [Shell.Candidate]) {
        Self.useUTF8Characters()
        qisync_install_sigint()
        qisync_use_own_reader()
        self.historyPath = historyPath
        Completion.source = complete
        qisync_set_completion(Completion.entry)
        qisync_history_limit(1000)
        _ = read_history(historyPath)
    }

    /// libedit reads multi-byte characters only in a UTF-8 character locale; without one it
    /// drops every byte over 127 ("café" arrives as "caf"). Take the user's locale when it is
    /// UTF-8, else C.UTF-8 (which every glibc has): what is typed is then kept exactly.
    static func useUTF8Characters() {
        if setlocale(LC_CTYPE, "") != nil, let codeset = nl_langinfo(nl_item(CODESET)).map({ String(cString: $0) }),
           codeset.uppercased().replacingOccurrences(of: "-", with: "") == "UTF8" {
            return
        }
        if setlocale(LC_CTYPE, "C.UTF-8") == nil { _ = setlocale(LC_CTYPE, "C.utf8") }
    }

    /// Asks a question mid-command (kept out of the history); nil on Ctrl-D or Ctrl-C.
    static func ask(_ prompt: String) -> String? {
        _ = qisync_take_interrupt()
        guard let raw = readline(prompt) else { return nil }
        defer { free(raw) }
        return String(cString: raw)
    }

    mutating func readLine(prompt: String) -> String? {
        // A Ctrl-C pressed while the last command ran is spent; it does not cancel the next.
        _ = qisync_take_interrupt()
        guard let raw = readline(prompt) else {
            // Ctrl-D: end the line, so the terminal's own prompt starts on a new one.
            FileHandle.standardOutput.write(Data("\n".utf8))
            return nil
        }
        defer { free(raw) }
        let line = String(cString: raw)
        if !line.trimmingCharacters(in: .whitespaces).isEmpty {
            add_history(line)
            _ = write_history(historyPath)
        }
        return line
    }
}

/// The bridge between libedit's C completion callback and the shell.
enum Completion {
    // Only the shell's single thread touches these, from inside readline().
    nonisolated(unsafe) static var source: ((String, String) -> [Shell.Candidate])?
    nonisolated(unsafe) static var matches: [String] = []

    static let entry: @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutablePointer<CChar>? = { text, state in
        if state == 0 {
            let word = text.map { String(cString: $0) } ?? ""
            let line = qisync_line_buffer().map { String(cString: $0) } ?? ""
            Completion.matches = Completion.choose(Completion.source?(line, word) ?? [], word: word)
        }
        guard Int(state) < Completion.matches.count else { return nil }
        return strdup(Completion.matches[Int(state)])
    }

    /// What libedit is given. Several ids to choose from are listed here with their titles, and
    /// only what they have in common is completed (libedit would list bare ids).
    static func choose(_ candidates: [Shell.Candidate], word: String) -> [String] {
        qisync_set_append_character(0x20)
        guard candidates.count > 1, candidates.contains(where: { $0.detail != nil }) else { return candidates.map(\.text) }
        var listing = "\n"
        for candidate in candidates.prefix(20) { listing += "\(candidate.text)  \(candidate.detail ?? "")\n" }
        if candidates.count > 20 { listing += "… and \(candidates.count - 20) more; type more of the id\n" }
        FileHandle.standardOutput.write(Data(listing.utf8))
        qisync_redisplay()
        var common = candidates[0].text
        for candidate in candidates.dropFirst() { while !candidate.text.hasPrefix(common) { common.removeLast() } }
        qisync_set_append_character(0)
        return common.count > word.count ? [common] : []
    }
}
