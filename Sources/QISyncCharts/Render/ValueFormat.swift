import Foundation

/// How a measure's values read: a scale (a proportion shown as a percent, a rate per 1,000)
/// and a unit after the number.
public struct ValueFormat: Sendable {
    /// What each value is multiplied by before it is shown.
    public var scale: Double
    /// After the number: "%", " per 1,000", " days".
    public var suffix: String

    public init(scale: Double = 1, suffix: String = "") {
        self.scale = scale
        self.suffix = suffix
    }

    /// The plain format.
    public static let plain = ValueFormat()

    /// A value with as many decimals as the chart's spread calls for.
    public func text(_ value: Double, spread: Double) -> String {
        let shown = value * scale
        let scaledSpread = abs(spread * scale)
        let decimals = scaledSpread >= 100 ? 0 : scaledSpread >= 10 ? 1 : scaledSpread >= 1 ? 2 : scaledSpread >= 0.1 ? 3 : 4
        return String(format: "%.\(decimals)f", locale: Locale(identifier: "en_GB"), shown).replacingOccurrences(of: "-", with: "−") + suffix
    }
}

/// What every rendering of a chart says in words: the title line, the signals, the verdicts and the rules.
public enum ChartWords {
    /// "XmR chart (NHS Making Data Count rules)".
    public static func kindLine(_ analysis: ChartAnalysis) -> String {
        let kind = switch analysis.kind {
        case .xmr: "XmR chart: mean and process limits at ± 2.66 × mean moving range"
        case .run: "run chart: median"
        case .p: "p-chart: proportion, limits ± 3σ for each point's denominator"
        case .u: "u-chart: rate, limits ± 3σ for each point's denominator"
        }
        return "\(kind); rules: \(analysis.ruleset.title)"
    }

    /// One line per signal: its dates, the rule and the detail.
    public static func signalLines(_ analysis: ChartAnalysis) -> [String] {
        analysis.signals.map { signal in
            let dates = signal.points.map { analysis.points[$0].date }
            let span = dates.count == 1 ? dates[0] : "\(dates.first!) to \(dates.last!)"
            let mark = signal.side == .high ? "▲" : signal.side == .low ? "▼" : "◆"
            return "\(mark) \(span): \(signal.rule.rawValue) (\(signal.detail))"
        }
    }

    /// The verdicts, in words.
    public static func verdictLines(_ analysis: ChartAnalysis) -> [String] {
        var lines: [String] = []
        if let variation = analysis.variation { lines.append("Variation: \(variation.rawValue)") }
        if let assurance = analysis.assurance { lines.append("Assurance: \(assurance.rawValue)") }
        return lines
    }
}
