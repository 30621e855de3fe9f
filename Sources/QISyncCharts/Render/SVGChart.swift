import Foundation

/// A chart as a standalone SVG: points (each a `circle` of class `point`, with its date and
/// value), the centre, limits and target lines, phases, annotations, and the signals, marked
/// by shape as well as colour (improving blue, concerning orange, as NHS "Making Data Count"
/// colours them; grey with no direction).
public enum SVGChart {
    public static func render(_ analysis: ChartAnalysis, title: String, format: ValueFormat = .plain, target: Double? = nil,
                              direction: ImprovementDirection = .neither, annotations: [TerminalChart.Annotation] = [],
                              width: Double = 760, height plotAreaHeight: Double = 360) -> String {
        let points = analysis.points
        let placed = annotations.filter { annotation in points.contains { $0.date >= annotation.date } }
        let height = plotAreaHeight + Double(placed.count) * 14
        let left = 64.0, right = 104.0, top = 40.0, bottom = 54.0 + Double(placed.count) * 14
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let values = points.map(\.plotted)
        let candidates = values.compactMap { $0 } + analysis.centre.compactMap { $0 } + analysis.lower.compactMap { $0 }
            + analysis.upper.compactMap { $0 } + (target.map { [$0] } ?? [])
        var low = candidates.min() ?? 0, high = candidates.max() ?? 1
        if high - low < 1e-12 { low -= max(1, abs(low) * 0.1); high += max(1, abs(high) * 0.1) }
        let pad = (high - low) * 0.06
        low -= pad
        high += pad
        let spread = high - low
        func x(_ index: Int) -> Double { points.count < 2 ? left + plotWidth / 2 : left + plotWidth * Double(index) / Double(points.count - 1) }
        func y(_ value: Double) -> Double { top + plotHeight * (high - value) / spread }
        func n(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" class="qisync-chart" viewBox="0 0 \(n(width)) \(n(height))" width="\(n(width))" height="\(n(height))" role="img" aria-label="\(escape(title))">
            <title>\(escape(title))</title>
            <style>
            .qisync-chart text { font-family: system-ui, sans-serif; font-size: 11px; fill: #222; }
            .qisync-chart .title { font-size: 13px; font-weight: 600; }
            .qisync-chart .axis { stroke: #555; stroke-width: 1; }
            .qisync-chart .data { fill: none; stroke: #7f7f7f; stroke-width: 1.5; }
            .qisync-chart .centre { stroke: #222; stroke-width: 1.2; fill: none; }
            .qisync-chart .limit { stroke: #555; stroke-width: 1; stroke-dasharray: 5 3; fill: none; }
            .qisync-chart .target { stroke: #c00; stroke-width: 1; stroke-dasharray: 1 3; fill: none; }
            .qisync-chart .point { fill: #7f7f7f; stroke: #fff; stroke-width: 0.8; }
            .qisync-chart .point.improving { fill: #289de0; }
            .qisync-chart .point.concerning { fill: #fab428; }
            .qisync-chart .point.signal { fill: #361475; }
            .qisync-chart .point.excluded { fill: #fff; stroke: #7f7f7f; stroke-width: 1.2; }
            .qisync-chart .mark { fill: none; stroke: #222; stroke-width: 1; }
            .qisync-chart .annotation { stroke: #999; stroke-width: 1; stroke-dasharray: 2 2; }
            </style>
            <text class="title" x="\(n(left))" y="18">\(escape(title))</text>
            <text x="\(n(left))" y="32">\(escape(ChartWords.kindLine(analysis)))</text>
            <line class="axis" x1="\(n(left))" y1="\(n(top))" x2="\(n(left))" y2="\(n(top + plotHeight))"/>
            <line class="axis" x1="\(n(left))" y1="\(n(top + plotHeight))" x2="\(n(left + plotWidth))" y2="\(n(top + plotHeight))"/>

            """
        // Value ticks.
        for step in 0...4 {
            let value = low + spread * Double(step) / 4
            svg += "<text x=\"\(n(left - 6))\" y=\"\(n(y(value) + 4))\" text-anchor=\"end\">\(escape(format.text(value, spread: spread)))</text>\n"
        }
        // Centre, limits and target, as steps through the points.
        func path(_ series: [Double?]) -> String {
            var d = ""
            var open = false
            for index in points.indices {
                guard let value = series[index] else { open = false; continue }
                let x0 = index == 0 ? x(0) : (x(index - 1) + x(index)) / 2
                let x1 = index == points.count - 1 ? x(index) : (x(index) + x(index + 1)) / 2
                d += (open ? "L" : "M") + "\(n(x0)) \(n(y(value))) L\(n(x1)) \(n(y(value))) "
                open = true
            }
            return d
        }
        if !points.isEmpty {
            svg += "<path class=\"centre\" d=\"\(path(analysis.centre))\"/>\n"
            svg += "<path class=\"limit\" d=\"\(path(analysis.lower))\"/>\n"
            svg += "<path class=\"limit\" d=\"\(path(analysis.upper))\"/>\n"
            if let target { svg += "<line class=\"target\" x1=\"\(n(left))\" y1=\"\(n(y(target)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(y(target)))\"/>\n" }
            let last = points.count - 1
            for (value, name) in [(analysis.upper[last], analysis.kind == .xmr ? "UPL" : "UCL"), (analysis.centre[last], analysis.kind == .run ? "median" : "centre"),
                                  (analysis.lower[last], analysis.kind == .xmr ? "LPL" : "LCL"), (target, "target")] {
                guard let value else { continue }
                svg += "<text x=\"\(n(left + plotWidth + 4))\" y=\"\(n(y(value) + 4))\">\(name) \(escape(format.text(value, spread: spread)))</text>\n"
            }
        }
        // Annotations and rebases: vertical lines at their dates.
        for (number, annotation) in annotations.enumerated() {
            guard let index = points.firstIndex(where: { $0.date >= annotation.date }) else { continue }
            svg += "<line class=\"annotation\" x1=\"\(n(x(index)))\" y1=\"\(n(top))\" x2=\"\(n(x(index)))\" y2=\"\(n(top + plotHeight))\"/>\n"
            svg += "<text x=\"\(n(x(index) + 3))\" y=\"\(n(top + 10 + Double(number % 3) * 12))\">\(number + 1)</text>\n"
        }
        // The data line through included points, then the points.
        let included = points.indices.filter { points[$0].isIncluded }
        if included.count > 1 {
            svg += "<polyline class=\"data\" points=\"\(included.map { "\(n(x($0))),\(n(y(values[$0]!)))" }.joined(separator: " "))\"/>\n"
        }
        let marks = analysis.signalled
        for index in points.indices {
            guard let value = values[index] else { continue }
            var classes = ["point"]
            var mark = ""
            if !points[index].isIncluded {
                classes.append("excluded")
            } else if let side = marks[index] {
                switch (direction, side) {
                case (.up, .high), (.down, .low): classes.append("improving")
                case (.up, .low), (.down, .high): classes.append("concerning")
                default: classes.append("signal")
                }
                // The shape says it without colour: a triangle above or below, a diamond with no side.
                let cx = x(index), cy = y(value)
                switch side {
                case .high: mark = "<path class=\"mark\" d=\"M\(n(cx - 5)) \(n(cy - 7)) L\(n(cx + 5)) \(n(cy - 7)) L\(n(cx)) \(n(cy - 13)) Z\"/>"
                case .low: mark = "<path class=\"mark\" d=\"M\(n(cx - 5)) \(n(cy + 7)) L\(n(cx + 5)) \(n(cy + 7)) L\(n(cx)) \(n(cy + 13)) Z\"/>"
                case .none: mark = "<path class=\"mark\" d=\"M\(n(cx)) \(n(cy - 12)) L\(n(cx + 4)) \(n(cy - 8)) L\(n(cx)) \(n(cy - 4)) L\(n(cx - 4)) \(n(cy - 8)) Z\"/>"
                }
            }
            let label = "\(points[index].date): \(format.text(value, spread: spread))\(points[index].excludedBecause.map { " (excluded: \($0))" } ?? "")"
            svg += "<circle class=\"\(classes.joined(separator: " "))\" cx=\"\(n(x(index)))\" cy=\"\(n(y(value)))\" r=\"3.6\" data-date=\"\(points[index].date)\" data-value=\"\(value)\"><title>\(escape(label))</title></circle>\(mark)\n"
        }
        // Dates under the axis.
        if let first = points.first, let last = points.last {
            svg += "<text x=\"\(n(x(0)))\" y=\"\(n(top + plotHeight + 16))\" text-anchor=\"start\">\(first.date)</text>\n"
            if points.count > 1 { svg += "<text x=\"\(n(x(points.count - 1)))\" y=\"\(n(top + plotHeight + 16))\" text-anchor=\"end\">\(last.date)</text>\n" }
            if points.count > 4 {
                let middle = points.count / 2
                svg += "<text x=\"\(n(x(middle)))\" y=\"\(n(top + plotHeight + 16))\" text-anchor=\"middle\">\(points[middle].date)</text>\n"
            }
        }
        let verdicts = ChartWords.verdictLines(analysis).joined(separator: " · ")
        svg += "<text x=\"\(n(left))\" y=\"\(n(top + plotHeight + 34))\">\(escape(verdicts.isEmpty ? "\(points.count) points" : verdicts))</text>\n"
        for (number, annotation) in annotations.enumerated() where placed.contains(where: { $0.date == annotation.date && $0.text == annotation.text }) {
            let line = placed.firstIndex { $0.date == annotation.date && $0.text == annotation.text } ?? 0
            svg += "<text class=\"note\" x=\"\(n(left))\" y=\"\(n(top + plotHeight + 50 + Double(line) * 14))\">\(number + 1) \(annotation.date): \(escape(annotation.text))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// Text made safe for XML.
    public static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
