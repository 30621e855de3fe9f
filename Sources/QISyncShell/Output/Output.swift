import Foundation

/// Where a command's output goes: standard output for the CLI, a buffer in tests.
public final class OutputSink {
    private let emit: (String) -> Void
    private let emitMany: (([String]) -> Void)?
    private let measure: () -> Int?
    /// Lines kept back until ``release()``, while held.
    private var held: [String]?

    /// Creates a sink that hands each line to `emit`; lines fit `width` columns when it gives
    /// one (a terminal), and are written whole when it gives nil (a pipe, a file, a test).
    /// `emitMany`, when given, writes many held lines at once.
    public init(width: @escaping () -> Int? = { nil }, emitMany: (([String]) -> Void)? = nil, _ emit: @escaping (String) -> Void) {
        self.emit = emit
        self.emitMany = emitMany
        measure = width
    }

    /// Keeps lines back from now on, until ``release()`` writes them or ``discard()`` drops
    /// them: a script's output of lines whose writes are not yet committed.
    func hold() {
        if held == nil { held = [] }
    }

    /// Writes the lines held back, and stops holding.
    func release() {
        guard let lines = held else { return }
        held = nil
        guard !lines.isEmpty else { return }
        if let emitMany { emitMany(lines) } else { lines.forEach(emit) }
    }

    /// Drops the lines held back, and stops holding.
    func discard() { held = nil }

    /// The width lines must fit now, when known.
    public var width: Int? { measure() }

    /// A sink writing to standard output, fitting the terminal when it is one.
    public static func standardOutput() -> OutputSink {
        OutputSink(width: { terminalWidth(STDOUT_FILENO) }, emitMany: { lines in
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// A sink writing to standard error.
    public static func standardError() -> OutputSink {
        OutputSink(width: { terminalWidth(STDERR_FILENO) }, emitMany: { lines in
            FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// The columns of the terminal a descriptor writes to, or nil when it is not a terminal.
    static func terminalWidth(_ descriptor: Int32) -> Int? {
        guard isatty(descriptor) == 1 else { return nil }
        var size = winsize()
        if ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
    }

    /// Writes one line (or several joined by newlines).
    public func line(_ text: String = "") {
        if held != nil { held!.append(text) } else { emit(text) }
    }

    /// Writes rows as an aligned table with a header. On a terminal the widest columns are cut
    /// (with "…") until the table fits its width; elsewhere every cell is written whole. With
    /// `wholeLastColumn`, the last column (a fingerprint) is never cut.
    public func table(_ header: [String], _ rows: [[String]], wholeLastColumn: Bool = false) {
        guard !rows.isEmpty else {
            line("(none)")
            return
        }
        let flat = rows.map { row in row.map { $0.replacingOccurrences(of: "\n", with: " ") } }
        var widths = header.map(\.count)
        for row in flat {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        if let width {
            let budget = width - 2 * (widths.count - 1)
            let fixed = wholeLastColumn ? widths.count - 1 : widths.count
            // Shrink the widest cuttable column, a character at a time, until the table fits.
            while widths.reduce(0, +) > budget {
                guard let widest = widths.indices.prefix(fixed).filter({ widths[$0] > max(header[$0].count, 8) }).max(by: { widths[$0] < widths[$1] }) else { break }
                widths[widest] -= 1
            }
        }
        let format: ([String]) -> String = { cells in
            cells.enumerated().map { i, cell in
                let clipped = cell.count > widths[i] ? String(cell.prefix(max(widths[i] - 1, 0))) + "…" : cell
                return i == cells.count - 1 ? clipped : clipped.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        line(format(header))
        line(format(widths.map { String(repeating: "-", count: $0) }))
        for row in flat { line(format(row)) }
    }

    /// Writes `key: value` pairs, keys aligned; on a terminal long values wrap at its width,
    /// under their value column.
    public func fields(_ pairs: [(String, String)]) {
        let keyWidth = pairs.map(\.0.count).max() ?? 0
        let indent = String(repeating: " ", count: keyWidth + 2)
        let room = width.map { max($0 - keyWidth - 2, 20) }
        for (key, value) in pairs {
            // Most values are one paragraph: looked for in the bytes, not split by characters
            // (splitting every value printed was a tenth of a script line's time).
            let paragraphs = value.utf8.contains(UInt8(ascii: "\n")) ? value.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) : [value]
            let lines = paragraphs.flatMap { paragraph in room.map { Self.wrap(paragraph, to: $0) } ?? [paragraph] }
            for (index, text) in lines.enumerated() {
                line((index == 0 ? key + String(repeating: " ", count: keyWidth - key.count + 2) : indent) + text)
            }
        }
    }

    /// Text cut into lines of at most `width` characters, at spaces where it can be.
    static func wrap(_ text: String, to width: Int) -> [String] {
        guard text.count > width else { return [text] }
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            var word = String(word)
            while word.count > width {
                if !current.isEmpty { lines.append(current); current = "" }
                lines.append(String(word.prefix(width)))
                word = String(word.dropFirst(width))
            }
            if current.isEmpty { current = word } else if current.count + 1 + word.count <= width { current += " " + word } else {
                lines.append(current)
                current = word
            }
        }
        lines.append(current)
        return lines
    }

    /// Writes a JSON value, keys sorted, pretty-printed.
    public func json(_ value: Any) {
        guard JSONSerialization.isValidJSONObject(value) || value is String || value is NSNumber,
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
            line("null")
            return
        }
        line(String(decoding: data, as: UTF8.self))
    }

}
