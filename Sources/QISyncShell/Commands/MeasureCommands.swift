import ArgumentParser
import Foundation
import QISyncCharts
import QISyncCore
import QISyncDomain

/// The fields of a measure, for `measure add` and `measure set`.
struct MeasureFields: ParsableArguments {
    @Option(help: "What is measured, e.g. 'Falls per 1,000 occupied bed days'.") var name: String?
    @Option(help: "outcome, process or balancing.") var kind: String?
    @Option(help: "The operational definition: exactly what is counted, and how.") var definition: String?
    @Option(help: "For a proportion or rate: what the numerator counts.") var numerator: String?
    @Option(help: "For a proportion or rate: what the denominator counts.") var denominator: String?
    @Option(help: "count, percent, rate, time or days-between.") var unit: String?
    @Option(help: "For a rate: per how many (e.g. 1000).") var per: String?
    @Option(help: "Which way is better: up, down or neither.") var direction: String?
    @Option(help: "How often data are collected: day, week or month.") var frequency: String?
    @Option(help: "The target, in the measure's unit (a percent as 0 to 100).") var target: String?
    @Option(help: "Where the data come from.") var source: String?
    @Option(help: "The chart drawn unless told: xmr, run, p or u.") var chart: String?

    var values: [String: String] {
        ["name": name, "kind": kind, "definition": definition, "numerator": numerator, "denominator": denominator, "unit": unit, "per": per,
         "direction": direction, "frequency": frequency, "target": target, "source": source, "chart": chart].compactMapValues { $0 }
    }

    static let slots = CommandSlots<Self>(text: [
        "name": \.name, "kind": \.kind, "definition": \.definition, "numerator": \.numerator, "denominator": \.denominator,
        "unit": \.unit, "per": \.per, "direction": \.direction, "frequency": \.frequency, "target": \.target,
        "source": \.source, "chart": \.chart])
}

/// `measure add|list|show|set|delete|restore`.
struct MeasureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Record an initiative's measures: outcome, process and balancing, with their definitions, units, direction and target.",
        discussion: "Data points go in with 'data add' or 'data import'; 'chart MEASURE' draws them; 'event add' marks rebases, baselines and annotations.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Add a measure to an initiative (needs --name).")
        @Argument(help: ArgumentHelp("The initiative's id or unique start.", valueName: "INITIATIVE")) var initiative: String
        @OptionGroup var fields: MeasureFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var values = fields.values
            values["initiative"] = initiative
            context.show(try context.records.add(.measure, fields: values), json: globals.json)
        }
        static let slots = CommandSlots<Self>(arguments: [\.initiative])
            .including(\.fields, MeasureFields.slots).including(\.globals, GlobalOptions.slots)
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List measures (of one initiative with --initiative).")
        @Option(help: "Only the measures of this initiative.") var initiative: String?
        @Flag(help: "Include deleted measures.") var deleted = false
        @Option(help: "Show at most this many (default 100).") var limit = CommandContext.pageSize
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.initiative = initiative
            filter.includeDeleted = deleted
            filter.limit = try ListFilter.checked(limit: limit)
            context.list(try context.records.list(.measure, filter: filter), kind: .measure, json: globals.json, limit: filter.limit)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Show a measure in full, with how many data points it has and its chart events.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let (_, id) = try context.records.locate(record.id, as: .measure)
            let view = try context.records.record(.measure, id)
            var filter = ListFilter()
            filter.measure = id.hex
            filter.limit = 1_000_000
            let data = try context.records.list(.datapoint, filter: filter)
            let events = try context.records.list(.chartEvent, filter: filter)
            if globals.json {
                var json = RecordRendering.json(view)
                json["data_points"] = data.count
                json["events"] = events.map(RecordRendering.json)
                context.out.json(json)
                return
            }
            context.show(view, json: false)
            context.out.line()
            context.out.line(data.isEmpty ? "no data points yet: 'data add \(id.short) DATE VALUE' or 'data import \(id.short) FILE.csv'"
                                          : "\(Plural.count(data.count, "data point", "data points")), \(data.first!.text("period")) to \(data.last!.text("period")); 'chart \(id.short)' draws them")
            if !events.isEmpty {
                context.out.line()
                context.out.line("chart events (\(events.count))")
                context.out.table(RecordRendering.listColumns(.chartEvent), events.map(RecordRendering.listRow))
            }
        }
    }

    struct Set: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Change a measure's fields.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var fields: MeasureFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.set(record.id, as: .measure, fields: fields.values), json: globals.json)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a measure (it can be restored; its data stay).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .measure, exists: false, json: globals.json) }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted measure.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .measure, exists: true, json: globals.json) }
    }
}

/// `data add|list|set|delete|restore|import`: a measure's data points.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Record a measure's data points: one value (or NUM/DEN) per period; aggregates only, no patient details.",
        subcommands: [Add.self, List.self, Set.self, Delete.self, Restore.self, Import.self])

    struct Add: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Add a data point: the period's first day and its value, or NUMERATOR/DENOMINATOR.")
        @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
        @Argument(help: ArgumentHelp("The period, by its first day (YYYY-MM-DD).", valueName: "DATE")) var date: String
        @Argument(help: ArgumentHelp("The value (12, 4.5) or NUMERATOR/DENOMINATOR (12/340).", valueName: "VALUE")) var value: String
        @Option(help: "A note (no patient details).") var note: String?
        @Option(help: "Leave the point out of the calculations, for this reason.") var exclude: String?
        @Flag(name: .customLong("allow-future"), help: "Accept a period after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.addDataPoint(measure: measure, period: date, valueText: value, note: note, excluded: exclude,
                                                          allowFuture: allowFuture), json: globals.json)
        }
        static let slots = CommandSlots<Self>(text: ["note": \.note, "exclude": \.exclude], arguments: [\.measure, \.date, \.value],
                                              flags: ["allow-future"]).including(\.globals, GlobalOptions.slots)
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List a measure's data points, by period.")
        @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
        @Flag(help: "Include deleted data points.") var deleted = false
        @Option(help: "Show at most this many.") var limit = 100_000
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.measure = measure
            filter.includeDeleted = deleted
            filter.limit = try ListFilter.checked(limit: limit)
            context.list(try context.records.list(.datapoint, filter: filter), kind: .datapoint, json: globals.json, limit: filter.limit)
        }
    }

    struct Set: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Change a data point: its period, value, note, or exclusion ('' to include it again).")
        @OptionGroup var record: RecordArgument
        @Option(help: "The period's first day.") var period: String?
        @Option(help: "The value, or NUMERATOR/DENOMINATOR.") var value: String?
        @Option(help: "A note (no patient details).") var note: String?
        @Option(help: "Why it is left out of the calculations ('' to include it).") var exclude: String?
        @Flag(name: .customLong("allow-future"), help: "Accept a period after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var fields = try value.map { text -> [String: String] in
                var parsed = try QIRecords.dataValueFields(text)
                // A value replaces a ratio and the other way round.
                for name in ["value", "numerator", "denominator"] where parsed[name] == nil { parsed[name] = "" }
                return parsed
            } ?? [:]
            fields["period"] = period
            fields["note"] = note
            fields["excluded"] = exclude
            context.show(try context.records.setDataPoint(record.id, fields: fields, allowFuture: allowFuture), json: globals.json)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a data point (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .datapoint, exists: false, json: globals.json) }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted data point.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .datapoint, exists: true, json: globals.json) }
    }

    struct Import: ReplicaCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a measure's data from a CSV file: date,value or date,numerator,denominator per line (a header line is allowed).",
            discussion: "Every row is checked first, then all are added in one change, or none: a bad row, a period already held, or a column that looks like a patient identifier (an NHS number, a date of birth) refuses the file.")
        @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
        @Argument(help: ArgumentHelp("The CSV file.", valueName: "FILE")) var file: String
        @Flag(name: .customLong("allow-future"), help: "Accept periods after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let text = try FileText.read(file)
            let count = try context.records.importData(measure: measure, csv: text, allowFuture: allowFuture)
            context.out.line(globals.json ? "{\"imported\": \(count)}" : "imported \(Plural.count(count, "data point", "data points")) from \(file)")
        }
    }
}

/// `event add|list|delete|restore`: marks on a measure's chart.
struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "Mark a measure's chart: a rebase (a new phase from a date), a baseline fixed after N points, or an annotation (a PDSA cycle, an event).",
        subcommands: [Add.self, List.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Add a chart event: exactly one of --rebase DATE, --baseline N, --annotate DATE.")
        @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
        @Option(help: ArgumentHelp("A new phase from this date: limits worked out again from there.", valueName: "DATE")) var rebase: String?
        @Option(help: ArgumentHelp("Work out each phase's limits from its first N points only.", valueName: "N")) var baseline: String?
        @Option(help: ArgumentHelp("A note on the chart at this date (with --text and/or --pdsa).", valueName: "DATE")) var annotate: String?
        @Option(help: "What the annotation says.") var text: String?
        @Option(help: "The PDSA cycle the annotation names.") var pdsa: String?
        @Flag(name: .customLong("allow-future"), help: "Accept a date after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let given = [rebase, baseline, annotate].compactMap { $0 }
            guard given.count == 1 else { throw DomainError("give exactly one of --rebase DATE, --baseline N or --annotate DATE") }
            var fields = ["measure": measure]
            if let rebase { fields["type"] = "rebase"; fields["date"] = rebase }
            if let baseline {
                guard let n = Int(baseline), n >= 2 else { throw DomainError("--baseline needs a whole number of points, 2 or more") }
                fields["type"] = "baseline"; fields["points"] = String(n)
            }
            if let annotate {
                guard text != nil || pdsa != nil else { throw DomainError("an annotation needs --text, --pdsa, or both") }
                fields["type"] = "annotation"; fields["date"] = annotate
            } else if text != nil || pdsa != nil {
                throw DomainError("--text and --pdsa go with --annotate DATE")
            }
            fields["text"] = text
            fields["pdsa"] = pdsa
            context.show(try context.records.add(.chartEvent, fields: fields, allowFuture: allowFuture), json: globals.json)
        }
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List a measure's chart events.")
        @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
        @Flag(help: "Include deleted events.") var deleted = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.measure = measure
            filter.includeDeleted = deleted
            context.list(try context.records.list(.chartEvent, filter: filter), kind: .chartEvent, json: globals.json, limit: filter.limit)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a chart event (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .chartEvent, exists: false, json: globals.json) }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted chart event.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws { try context.setExists(record.id, as: .chartEvent, exists: true, json: globals.json) }
    }
}

/// `chart MEASURE`: the measure's run or SPC chart, in the terminal or as SVG.
struct ChartCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "chart",
        abstract: "Draw a measure's chart in the terminal (or --svg FILE): centre line and limits, signals marked and named, the verdicts, the rules used.",
        discussion: """
            The chart and rules default to the measure's (xmr: NHS Making Data Count rules; run: IHI rules). \
            --rules mdc|ihi|anhoej chooses the rules; --chart xmr|run|p|u the chart. Rebases and a baseline \
            stored with 'event add' apply; --rebase and --baseline add to them for this drawing only.
            """)
    @Argument(help: ArgumentHelp("The measure's id or unique start.", valueName: "MEASURE")) var measure: String
    @Option(help: "The rules: mdc (NHS Making Data Count), ihi (run chart) or anhoej.") var rules: String?
    @Option(help: "The chart: xmr, run, p or u (default: the measure's).") var chart: String?
    @Option(help: ArgumentHelp("Start a new phase at this date (repeatable).", valueName: "DATE")) var rebase: [String] = []
    @Option(help: ArgumentHelp("Work out limits from each phase's first N points.", valueName: "N")) var baseline: Int?
    @Flag(name: .customLong("screen"), help: "XmR: leave moving ranges above 3.267 × their mean out of the limits.") var screen = false
    @Option(help: ArgumentHelp("Also write the chart as a standalone SVG file.", valueName: "FILE")) var svg: String?
    @Option(help: "Draw this many columns wide (default: the terminal's width).") var width: Int?
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let ruleset = try rules.map { text -> Ruleset in
            guard let ruleset = Ruleset(rawValue: text.lowercased()) else { throw DomainError("'\(text)' is not a ruleset; use mdc, ihi or anhoej") }
            return ruleset
        }
        let kind = try chart.map { text -> ChartKind in
            guard let kind = ChartKind(rawValue: text.lowercased()) else { throw DomainError("'\(text)' is not a chart; use xmr, run, p or u") }
            return kind
        }
        for date in rebase where !DateText.isValid(date) { throw DomainError("--rebase '\(date)' is not a date; write it as YYYY-MM-DD") }
        if let width, width < 40 { throw DomainError("--width must be 40 or more") }
        let made = try context.records.chart(measure: measure, kind: kind, ruleset: ruleset, rebases: rebase, baseline: baseline, screenMovingRanges: screen)
        if let svg {
            let text = SVGChart.render(made.analysis, title: made.title, format: made.format, target: made.target, direction: made.direction,
                                       annotations: made.annotations)
            try FileText.write(text, to: svg)
        }
        if globals.json {
            context.out.json(ChartRendering.json(made))
            return
        }
        let columns = width ?? context.out.width ?? 100
        for line in TerminalChart.render(made.analysis, title: made.title, format: made.format, target: made.target,
                                         annotations: made.annotations, width: columns) {
            context.out.line(line)
        }
        if let svg { context.out.line("wrote \(svg)") }
    }
}

/// Charts as JSON.
enum ChartRendering {
    static func json(_ chart: MeasureChart) -> [String: Any] {
        let analysis = chart.analysis
        func number(_ value: Double?) -> Any { value.map { $0 * chart.format.scale } ?? NSNull() }
        return [
            "measure": chart.measure.id.hex, "name": chart.title, "chart": analysis.kind.rawValue, "rules": analysis.ruleset.rawValue,
            "points": analysis.points.indices.map { index -> [String: Any] in
                let point = analysis.points[index]
                var json: [String: Any] = ["date": point.date, "value": number(point.plotted), "centre": number(analysis.centre[index]),
                                           "lower": number(analysis.lower[index]), "upper": number(analysis.upper[index])]
                if let reason = point.excludedBecause { json["excluded"] = reason }
                return json
            },
            "signals": analysis.signals.map { ["rule": $0.rule.rawValue, "side": $0.side.rawValue, "dates": $0.points.map { analysis.points[$0].date },
                                               "detail": $0.detail] },
            "variation": analysis.variation?.rawValue ?? NSNull(), "assurance": analysis.assurance?.rawValue ?? NSNull(),
            "notes": analysis.notes,
        ]
    }
}
