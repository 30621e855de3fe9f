import Foundation

/// A chart drawn with Unicode characters to fit a terminal, readable without colour: points
/// are ● (common cause), ▲ ▼ (a signal above or below the centre), ◆ (a signal with no side,
/// such as too few runs) and ○ (excluded); the centre is ─, the limits ┄, the target ·.
public enum TerminalChart {
    /// An annotation on a date (a PDSA cycle, an event).
    public struct Annotation: Sendable {
        public let date: String
        public let text: String
        public init(date: String, text: String) {
            self.date = date
            self.text = text
        }
    }

    public static func render(_ analysis: ChartAnalysis, title: String, format: ValueFormat = .plain, target: Double? = nil,
                              annotations: [Annotation] = [], width: Int, height: Int = 14) -> [String] {
        let points = analysis.points
        let width = max(40, width)
        func wrapped(_ text: String, indent: String = "") -> [String] { wrap(text, width: width, indent: indent) }
        var lines = wrapped(title) + wrapped(ChartWords.kindLine(analysis))
        guard !points.isEmpty else { return lines + ["(no data points yet: add some with 'data add')"] }
        let values = points.map(\.plotted)
        let candidates = values.compactMap { $0 } + analysis.centre.compactMap { $0 } + analysis.lower.compactMap { $0 }
            + analysis.upper.compactMap { $0 } + (target.map { [$0] } ?? [])
        var low = candidates.min() ?? 0, high = candidates.max() ?? 1
        if high - low < 1e-12 { low -= max(1, abs(low) * 0.1); high += max(1, abs(high) * 0.1) }
        let spread = high - low
        let rows = max(6, height)
        func row(_ y: Double) -> Int { min(rows - 1, max(0, Int(((high - y) / spread * Double(rows - 1)).rounded()))) }

        let centreName = analysis.kind == .run ? "median" : analysis.kind == .xmr ? "mean" : analysis.kind == .p ? "p̄" : "ū"
        let lastIndex = points.count - 1
        var rightLabels: [Int: String] = [:]
        var leftLabels: [Int: String] = [row(high): format.text(high, spread: spread), row(low): format.text(low, spread: spread)]
        for (value, name) in [(analysis.upper[lastIndex], analysis.kind == .xmr ? "UPL" : "UCL"), (analysis.centre[lastIndex], centreName),
                              (analysis.lower[lastIndex], analysis.kind == .xmr ? "LPL" : "LCL"), (target, "target")] {
            guard let value else { continue }
            let r = row(value)
            rightLabels[r] = rightLabels[r].map { "\($0)/\(name)" } ?? name
            leftLabels[r] = format.text(value, spread: spread)
        }
        let gutter = (leftLabels.values.map(\.count).max() ?? 4) + 1
        let rightWidth = min(14, (rightLabels.values.map(\.count).max() ?? 0) + 1)
        let plotWidth = max(10, width - gutter - 1 - rightWidth)

        // Which column each point falls in: spread out when there is room, several to a column when not.
        let columns: [Int] = points.indices.map { index in
            points.count <= plotWidth
                ? (points.count == 1 ? 0 : Int((Double(index) * Double(min(plotWidth, points.count * 3) - 1) / Double(points.count - 1)).rounded()))
                : index * plotWidth / points.count
        }
        let usedWidth = (columns.last ?? 0) + 1
        var grid = [[Character]](repeating: [Character](repeating: " ", count: usedWidth), count: rows)
        // Lines first, as steps from each point to the next.
        for index in points.indices {
            let from = columns[index], to = index + 1 < points.count ? columns[index + 1] - 1 : usedWidth - 1
            guard from <= to else { continue }
            for column in from...to {
                if let value = target { grid[row(value)][column] = "·" }
                for limit in [analysis.lower[index], analysis.upper[index]] { if let limit { grid[row(limit)][column] = "┄" } }
                if let centre = analysis.centre[index] { grid[row(centre)][column] = "─" }
            }
        }
        // Then the points; a signal wins a shared cell.
        let marks = analysis.signalled
        for index in points.indices.sorted(by: { marks[$0] == nil && marks[$1] != nil }) {
            guard let value = values[index] else { continue }
            let glyph: Character
            if !points[index].isIncluded { glyph = "○" }
            else if let side = marks[index] { glyph = side == .high ? "▲" : side == .low ? "▼" : "◆" }
            else { glyph = "●" }
            let cell = grid[row(value)][columns[index]]
            if cell == "▲" || cell == "▼" || cell == "◆" { continue }
            grid[row(value)][columns[index]] = glyph
        }
        for r in 0..<rows {
            let left = (leftLabels[r] ?? "").leftPadded(to: gutter - 1)
            lines.append("\(left) \(leftLabels[r] == nil ? "│" : "┤")\(String(grid[r]))\(rightLabels[r].map { " " + $0 } ?? "")")
        }
        lines.append(String(repeating: " ", count: gutter) + "└" + String(repeating: "─", count: usedWidth))
        // Dates under the axis: the first, the last, and one between when they fit.
        var axis = [Character](repeating: " ", count: usedWidth + 12)
        func place(_ text: String, at column: Int) {
            let start = min(max(0, column - text.count / 2), axis.count - text.count)
            guard axis[start..<(start + text.count)].allSatisfy({ $0 == " " }) else { return }
            for (offset, character) in text.enumerated() { axis[start + offset] = character }
        }
        place(points[0].date, at: 0)
        place(points[lastIndex].date, at: usedWidth - 1)
        if points.count > 2 { place(points[lastIndex / 2].date, at: columns[lastIndex / 2]) }
        var annotationLine = [Character](repeating: " ", count: usedWidth)
        var annotationNotes: [String] = []
        for (number, annotation) in annotations.enumerated() {
            guard let index = points.firstIndex(where: { $0.date >= annotation.date }) else { continue }
            let label = Character(number < 9 ? "\(number + 1)" : "+")
            annotationLine[columns[index]] = label
            annotationNotes.append("\(label) \(annotation.date): \(annotation.text)")
        }
        lines.append(String(repeating: " ", count: gutter + 1) + String(axis).trimmingTrailingSpaces())
        if !annotationNotes.isEmpty {
            lines.append(String(repeating: " ", count: gutter + 1) + String(annotationLine).trimmingTrailingSpaces())
            lines += annotationNotes.flatMap { wrapped("  " + $0, indent: "    ") }
        }
        lines += wrapped("● point  ▲▼ signal above/below the \(centreName)  ◆ signal  ○ excluded  ─ \(centreName)\(analysis.kind.hasLimits ? "  ┄ limits" : "")\(target == nil ? "" : "  · target")")
        let signalLines = ChartWords.signalLines(analysis)
        lines.append(signalLines.isEmpty ? "No signals." : "Signals:")
        lines += signalLines.flatMap { wrapped("  " + $0, indent: "    ") }
        lines += ChartWords.verdictLines(analysis).flatMap { wrapped($0, indent: "  ") }
        lines += analysis.notes.flatMap { wrapped("Note: " + $0, indent: "  ") }
        return lines
    }

    /// Text broken at spaces into lines of at most `width` characters, later lines indented.
    static func wrap(_ text: String, width: Int, indent: String) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let candidate = current.isEmpty ? String(word) : current + " " + word
            if candidate.count <= width || current.trimmingCharacters(in: .whitespaces).isEmpty {
                current = candidate
            } else {
                lines.append(current)
                current = indent + word
            }
        }
        if !current.isEmpty { lines.append(current) }
        // A single word longer than the width is cut.
        return lines.flatMap { line -> [String] in
            guard line.count > width else { return [line] }
            var pieces: [String] = []
            var rest = Substring(line)
            while rest.count > width { pieces.append(String(rest.prefix(width))); rest = rest.dropFirst(width) }
            if !rest.isEmpty { pieces.append(String(rest)) }
            return pieces
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
