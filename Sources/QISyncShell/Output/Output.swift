import Foundation

/// Where a command's output goes: standard output for the CLI, a buffer in tests.
public final class OutputSink {
    private let emit: (String) -> Void

    /// Creates a sink that hands each line to `emit`.
    public init(_ emit: @escaping (String) -> Void) { self.emit = emit }

    /// A sink writing to standard output.
    public static func standardOutput() -> OutputSink {
        OutputSink { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// A sink writing to standard error.
    public static func standardError() -> OutputSink {
        OutputSink { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// Writes one line (or several joined by newlines).
    public func line(_ text: String = "") { emit(text) }

    /// Writes rows as an aligned table with a header.
    /// With `wholeLastColumn`, the last column (a reason, a fingerprint) is never shortened.
    public func table(_ header: [String], _ rows: [[String]], wholeLastColumn: Bool = false) {
        guard !rows.isEmpty else {
            line("(none)")
            return
        }
        let clipped = rows.map { row in
            row.enumerated().map { i, cell in wholeLastColumn && i == row.count - 1 ? cell : Self.clip(cell) }
        }
        var widths = header.map(\.count)
        for row in clipped {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        let format: ([String]) -> String = { cells in
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        line(format(header))
        line(format(widths.map { String(repeating: "-", count: $0) }))
        for row in clipped { line(format(row)) }
    }

    /// Writes `key: value` pairs, keys aligned.
    public func fields(_ pairs: [(String, String)]) {
        let width = pairs.map(\.0.count).max() ?? 0
        for (key, value) in pairs {
            line(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value.replacingOccurrences(of: "\n", with: "\n" + String(repeating: " ", count: width + 2)))
        }
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

    /// Shortens one table cell to one line of at most 60 characters.
    static func clip(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > 60 ? String(flat.prefix(59)) + "…" : flat
    }
}
