import Foundation
import GRDB
import QISyncCharts
import QISyncCore
import QISyncStore

/// A measure's chart, ready to draw: its points, options from the measure and its chart events,
/// and the annotations.
public struct MeasureChart: Sendable {
    public let measure: RecordView
    public let analysis: ChartAnalysis
    public let format: ValueFormat
    public let target: Double?
    public let direction: ImprovementDirection
    public let annotations: [TerminalChart.Annotation]
    public var title: String { measure.text("name") }
}

extension QIRecords {
    /// Reads "12", "12.5" or "NUM/DEN" as a data point's value fields.
    public static func dataValueFields(_ text: String) throws -> [String: String] { try dataValue(text) }

    static func dataValue(_ text: String) throws -> [String: String] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let slash = trimmed.firstIndex(of: "/") {
            let numerator = String(trimmed[..<slash]).trimmingCharacters(in: .whitespaces)
            let denominator = String(trimmed[trimmed.index(after: slash)...]).trimmingCharacters(in: .whitespaces)
            guard !numerator.isEmpty, !denominator.isEmpty else { throw DomainError("'\(text)' is not NUMERATOR/DENOMINATOR, e.g. 12/340") }
            return ["numerator": numerator, "denominator": denominator]
        }
        return ["value": trimmed]
    }

    private func number(_ value: Value?) -> Double? {
        switch value {
        case .real(let d)?: d
        case .integer(let i)?: Double(i)
        default: nil
        }
    }

    /// Checks a data point's numbers against each other: a denominator is positive, and a
    /// proportion's numerator is not more than its denominator.
    func checkDataPoint(_ values: [String: Value], measure: RecordView) throws {
        let numerator = number(values["numerator"]), denominator = number(values["denominator"])
        if (numerator == nil) != (denominator == nil) { throw DomainError("give both a numerator and a denominator (NUM/DEN), or a single value") }
        if number(values["value"]) != nil, numerator != nil { throw DomainError("give a value or a numerator and denominator, not both") }
        if number(values["value"]) == nil, numerator == nil { throw DomainError("a data point needs a value (or NUM/DEN)") }
        if let denominator, denominator <= 0 { throw DomainError("the denominator must be more than 0") }
        if let numerator, numerator < 0 { throw DomainError("the numerator cannot be negative") }
        if let numerator, let denominator, measure.text("unit") == "percent" || measure.text("chart") == "p", numerator > denominator {
            throw DomainError("for a proportion the numerator (\(Display.text(.real(numerator)))) cannot be more than the denominator (\(Display.text(.real(denominator))))")
        }
        if let note = values["note"]?.text, let finding = PIIGuard.scan(note).first {
            throw DomainError("the note holds what looks like \(finding): data are aggregates only, with no patient details")
        }
    }

    /// Adds a data point: `valueText` is a value or NUM/DEN.
    @discardableResult
    public func addDataPoint(measure reference: String, period: String, valueText: String, note: String?, excluded: String?,
                             allowFuture: Bool = false) throws -> RecordView {
        let (_, measureID) = try locate(reference, as: .measure)
        let measure = try record(.measure, measureID)
        guard measure.live else { throw DomainError("measure \(measureID.short) is deleted; restore it first") }
        var fields = try Self.dataValue(valueText)
        fields["period"] = period
        if let note { fields["note"] = note }
        if let excluded { fields["excluded"] = excluded }
        let prepared = try prepare(.datapoint, fields: fields, preset: ["measure": .blob(measureID.bytes)], allowFuture: allowFuture)
        try checkDataPoint(prepared.values, measure: measure)
        try replica.write { db in (prepared.scope, try prepared.edits(db)) }
        return try record(.datapoint, prepared.id)
    }

    /// Changes a data point, checking its numbers and note as `data add` does.
    @discardableResult
    public func setDataPoint(_ reference: String, fields: [String: String], allowFuture: Bool = false) throws -> RecordView {
        let (_, id) = try locate(reference, as: .datapoint)
        let current = try record(.datapoint, id)
        guard case .blob(let measureBytes)? = current.values["measure"], let measureID = try? RecordID(bytes: measureBytes) else {
            throw DomainError("data point \(id.short) has no measure")
        }
        let parsed = try parse(.datapoint, fields: fields, forAdd: false, allowFuture: allowFuture)
        try checkDataPoint(current.values.merging(parsed) { _, new in new }, measure: try record(.measure, measureID))
        return try set(reference, as: .datapoint, fields: fields, allowFuture: allowFuture)
    }

    /// Imports data points from CSV text (`date,value` or `date,numerator,denominator`, an optional
    /// header): every row is checked first, and either all are added, in one change, or none.
    /// A column that looks like a patient identifier (an NHS number by its check digit, a date of
    /// birth) refuses the whole file.
    public func importData(measure reference: String, csv: String, allowFuture: Bool = false) throws -> Int {
        let (_, measureID) = try locate(reference, as: .measure)
        let measure = try record(.measure, measureID)
        guard measure.live else { throw DomainError("measure \(measureID.short) is deleted; restore it first") }
        var rows = csv.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { String($0) }
        while rows.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { rows.removeLast() }
        guard !rows.isEmpty else { throw DomainError("the file is empty: write one 'date,value' or 'date,numerator,denominator' per line") }
        var lineNumber = 0
        if let first = rows.first, first.lowercased().contains("date") || first.lowercased().contains("period") {
            rows.removeFirst()
            lineNumber = 1
        }
        var prepared: [NewRecord] = []
        var periods: [String: Int] = [:]
        let oldest = "2000-01-01"
        for row in rows {
            lineNumber += 1
            let cells = row.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            for cell in cells where !PIIGuard.scan(cell).isEmpty || Self.looksLikeNHSNumber(cell) {
                throw DomainError("line \(lineNumber): '\(cell)' looks like a patient identifier (an NHS number); data are aggregates only. Nothing was imported")
            }
            guard cells.count == 2 || cells.count == 3 else {
                throw DomainError("line \(lineNumber): \(cells.count) columns; write date,value or date,numerator,denominator. Nothing was imported")
            }
            let date = cells[0]
            if DateText.isValid(date), date < oldest {
                throw DomainError("line \(lineNumber): \(date) looks like a date of birth, not a period (periods start in \(oldest.prefix(4)) or later). Nothing was imported")
            }
            if let earlier = periods[date] {
                throw DomainError("line \(lineNumber): \(date) is already on line \(earlier); one value per period. Nothing was imported")
            }
            periods[date] = lineNumber
            var fields = cells.count == 2 ? ["value": cells[1]] : ["numerator": cells[1], "denominator": cells[2]]
            fields["period"] = date
            do {
                let record = try prepare(.datapoint, fields: fields, preset: ["measure": .blob(measureID.bytes)], allowFuture: allowFuture, parent: measure)
                try checkDataPoint(record.values, measure: measure)
                prepared.append(record)
            } catch let error as DomainError {
                throw DomainError("line \(lineNumber): \(error.message). Nothing was imported")
            }
        }
        try replica.write { db in
            var edits: [RowEdit] = []
            for record in prepared {
                do { edits += try record.edits(db) } catch let error as DomainError {
                    throw DomainError("\(record.values["period"]?.text ?? "?"): \(error.message). Nothing was imported")
                }
            }
            return (prepared.first?.scope ?? .trust, edits)
        }
        return prepared.count
    }

    /// Ten digits, however spaced, with a valid Modulus 11 check digit.
    static func looksLikeNHSNumber(_ text: String) -> Bool {
        let digits = text.filter(\.isNumber).compactMap(\.wholeNumberValue)
        guard digits.count == 10, text.allSatisfy({ $0.isNumber || $0 == " " || $0 == "-" }) else { return false }
        return PIIGuard.isValidNHSNumber(digits)
    }

    /// A measure's data and chart events, worked out as a chart: its default chart and rules
    /// unless told otherwise, its stored rebases and baseline plus any given here.
    public func chart(measure reference: String, kind: ChartKind? = nil, ruleset: Ruleset? = nil, rebases: [String] = [],
                      baseline: Int? = nil, screenMovingRanges: Bool = false) throws -> MeasureChart {
        let (_, id) = try locate(reference, as: .measure)
        let measure = try record(.measure, id)
        var filter = ListFilter()
        filter.measure = id.hex
        filter.limit = 1_000_000
        let data = try list(.datapoint, filter: filter)
        let events = try list(.chartEvent, filter: filter)
        let hasRatios = data.contains { $0.number("numerator") != nil }
        let chartKind = kind ?? ChartKind(rawValue: measure.text("chart")) ?? (hasRatios ? (measure.text("unit") == "percent" ? .p : .u) : .xmr)
        let points = data.map { view in
            ChartPoint(date: view.text("period"), value: view.number("value"), numerator: view.number("numerator"),
                       denominator: view.number("denominator"), excludedBecause: view.text("excluded").isEmpty ? nil : view.text("excluded"))
        }
        let storedRebases = events.filter { $0.text("type") == "rebase" }.map { $0.text("date") }.filter { !$0.isEmpty }
        let storedBaseline = events.filter { $0.text("type") == "baseline" }.compactMap { $0.number("points") }.last.map { Int($0) }
        let direction = ImprovementDirection(rawValue: measure.text("direction")) ?? .neither
        let unit = measure.text("unit")
        // Percent values shown as percentages; a target is typed in the unit people read.
        let percent = unit == "percent" && (chartKind == .p || hasRatios)
        let per = measure.number("per")
        let format: ValueFormat = percent ? ValueFormat(scale: 100, suffix: "%")
            : unit == "rate" && hasRatios && per != nil ? ValueFormat(scale: per!, suffix: " per \(Display.text(.integer(Int64(per!))))")
            : unit == "percent" ? ValueFormat(suffix: "%") : .plain
        let target = measure.number("target").map { $0 / format.scale }
        var options = ChartOptions(kind: chartKind, ruleset: ruleset, direction: direction, target: target,
                                   rebases: storedRebases + rebases, baseline: baseline ?? storedBaseline, screenMovingRanges: screenMovingRanges)
        if ruleset == nil, chartKind == .run { options.ruleset = .ihi }
        let analysis: ChartAnalysis
        do { analysis = try ChartAnalyzer.analyse(points, options: options) } catch { throw DomainError(error.description) }
        var annotations: [TerminalChart.Annotation] = []
        for event in events where event.text("type") == "annotation" {
            var text = event.text("text")
            if case .blob(let bytes)? = event.values["pdsa"], let cycleID = try? RecordID(bytes: bytes), let cycle = try? record(.pdsa, cycleID) {
                text = "PDSA #\(cycle.text("number")) \(cycle.text("change-idea"))" + (text.isEmpty ? "" : ": \(text)")
            }
            annotations.append(TerminalChart.Annotation(date: event.text("date"), text: text))
        }
        for date in storedRebases + rebases { annotations.append(TerminalChart.Annotation(date: date, text: "rebase: limits worked out again from here")) }
        return MeasureChart(measure: measure, analysis: analysis, format: format, target: target, direction: direction,
                            annotations: annotations.sorted { $0.date < $1.date })
    }
}
