import QISyncCore
import QISyncStore

/// The kinds of QI record a replica holds.
public enum RecordKind: String, Sendable, CaseIterable {
    case initiative
    case pdsa
    case learning
    case adaptation
    case measure
    case datapoint
    case chartEvent = "chart_event"

    /// The shell command that works on this kind: `initiative`, `pdsa`, `log` (learning entries),
    /// `adaptation`, `measure`, `data` (data points), `event` (chart events).
    public var commandName: String {
        switch self {
        case .learning: "log"
        case .datapoint: "data"
        case .chartEvent: "event"
        default: rawValue
        }
    }

    /// What one of them is called in messages.
    public var noun: String {
        switch self {
        case .pdsa: "PDSA cycle"
        case .learning: "learning entry"
        case .datapoint: "data point"
        case .chartEvent: "chart event"
        default: rawValue
        }
    }

    /// Fields every record has: owner, scope and creation time.
    static let common: [Field] = [
        Field("owner-trust", 1, .system(.text(maxLength: 5)), "the trust that created the record and alone may change it"),
        Field("scope", 2, .system(.text(maxLength: 8)), "trust (stays inside the trust) or shared (may go to other trusts)"),
        Field("created", 3, .system(.integer), columnName: "created_ms", "when the record was created, milliseconds since 1970"),
        Field("pii-override", 63, .system(.text(maxLength: 600)), "why an IG lead let it be shared although the PII guard objected"),
        Field("pii-override-signature", 62, .system(.blob), columnName: "pii_override_sig", "the trust key's signature of the override"),
    ]

    /// The record's own fields, in display order.
    public var fields: [Field] {
        switch self {
        case .initiative: Self.initiativeFields
        case .pdsa: Self.pdsaFields
        case .learning: Self.learningFields
        case .adaptation: Self.adaptationFields
        case .measure: Self.measureFields
        case .datapoint: Self.datapointFields
        case .chartEvent: Self.chartEventFields
        }
    }

    private static let measureFields = RecordKind.measure.makeFields()
    private static let datapointFields = RecordKind.datapoint.makeFields()
    private static let chartEventFields = RecordKind.chartEvent.makeFields()
    private static let initiativeFields = RecordKind.initiative.makeFields()
    private static let pdsaFields = RecordKind.pdsa.makeFields()
    private static let learningFields = RecordKind.learning.makeFields()
    private static let adaptationFields = RecordKind.adaptation.makeFields()

    private func makeFields() -> [Field] {
        switch self {
        case .initiative: [
            Field("title", 4, .text(max: 200), required: true, "a short name for the initiative"),
            Field("team", 5, .text(max: 200), "team or ward running it"),
            Field("problem", 6, .text(max: 4000), "the problem statement"),
            Field("aim", 7, .text(max: 2000), "what, how much, by when"),
            Field("method", 8, .choice(Vocabulary.methods), "improvement method"),
            Field("status", 9, .choice(Vocabulary.statuses), "proposed, active, sustaining, closed or abandoned"),
            Field("score", 10, .score, "IHI progress score, 0.5 to 5.0 in steps of 0.5"),
            Field("lead", 11, .text(max: 100), "the lead's role (not name)"),
            Field("sponsor", 12, .text(max: 100), "the sponsor's role (not name)"),
        ]
        case .pdsa: [
            Field("initiative", 4, .reference(.initiative), required: true, "the initiative it tests a change for"),
            Field("number", 5, .integer, "the cycle's number within its initiative (next free one when left out)"),
            Field("change-idea", 6, .text(max: 1000), required: true, "the change being tested"),
            Field("objective", 7, .text(max: 1000), "what this cycle is for"),
            Field("prediction", 8, .text(max: 1000), "what you expect to happen"),
            Field("plan", 9, .text(max: 2000), "who, what, where, when"),
            Field("as-planned", 10, .flag, "did it go as planned? yes or no"),
            Field("observations", 11, .text(max: 2000), "what happened"),
            Field("results", 12, .text(max: 2000), "study: results against the prediction"),
            Field("learning", 13, .text(max: 2000), "study: what was learnt"),
            Field("act", 14, .choice(Vocabulary.acts), "adopt, adapt or abandon"),
            Field("closed", 15, .system(.integer), columnName: "closed_ms", "when the cycle was closed"),
        ]
        case .learning: [
            Field("initiative", 4, .reference(.initiative), "the initiative it belongs to"),
            Field("date", 5, .date, "the day it happened (YYYY-MM-DD, default today)"),
            Field("text", 6, .text(max: 2000), required: true, "what was learnt"),
            Field("effect", 7, .choice(Vocabulary.effects), "helped, hindered or neutral"),
            Field("pdsa", 8, .reference(.pdsa), "the PDSA cycle it came from"),
        ]
        case .adaptation: [
            Field("initiative", 4, .reference(.initiative), required: true, "the local initiative the improvement became"),
            Field("source-trust", 5, .text(max: 5), required: true, "the trust the source initiative belongs to"),
            Field("source-id", 6, .text(max: 32), required: true, "the source initiative's full id"),
            Field("source-hash", 7, .text(max: 64), required: true, "content hash of the source version adapted"),
            Field("kept", 8, .text(max: 2000), "core functions kept"),
            Field("changed", 9, .text(max: 2000), "forms changed"),
            Field("when", 10, .choice(Vocabulary.frameWhen), columnName: "frame_when", "FRAME: when it was modified"),
            Field("planned", 11, .choice(Vocabulary.framePlanned), columnName: "frame_planned", "FRAME: planned or reactive"),
            Field("who", 12, .text(max: 200), columnName: "frame_who", "FRAME: who decided (roles)"),
            Field("what", 13, .choice(Vocabulary.frameWhat), columnName: "frame_what", "FRAME: what was modified"),
            Field("nature", 14, .choice(Vocabulary.frameNature), columnName: "frame_nature", "FRAME: the nature of the modification"),
            Field("fidelity", 15, .choice(Vocabulary.fidelity), columnName: "frame_fidelity", "FRAME: fidelity to core functions"),
            Field("goal", 16, .text(max: 1000), columnName: "frame_goal", "FRAME: the goal of the modification"),
            Field("outcome", 17, .text(max: 2000), "the outcome"),
        ]
        case .measure: [
            Field("initiative", 4, .reference(.initiative), required: true, "the initiative it measures"),
            Field("name", 5, .text(max: 200), required: true, "what is measured, e.g. 'falls per 1,000 bed days'"),
            Field("kind", 6, .choice(Vocabulary.measureKinds), columnName: "measure_kind", "outcome, process or balancing"),
            Field("definition", 7, .text(max: 2000), "the operational definition: exactly what is counted, and how"),
            Field("numerator", 8, .text(max: 1000), "for a proportion or rate: what the numerator counts"),
            Field("denominator", 9, .text(max: 1000), "for a proportion or rate: what the denominator counts"),
            Field("unit", 10, .choice(Vocabulary.units), "count, percent, rate, time or days-between"),
            Field("per", 11, .integer, columnName: "rate_per", "for a rate: per how many (e.g. 1000 bed days)"),
            Field("direction", 12, .choice(Vocabulary.directions), "which way is better: up, down or neither"),
            Field("frequency", 13, .choice(Vocabulary.frequencies), "how often data are collected: day, week or month"),
            Field("target", 14, .number, "the target, in the measure's unit (a percent as 0 to 100)"),
            Field("source", 15, .text(max: 500), columnName: "data_source", "where the data come from"),
            Field("chart", 16, .choice(Vocabulary.charts), columnName: "default_chart", "the chart drawn unless told: xmr, run, p or u"),
        ]
        case .datapoint: [
            Field("measure", 4, .reference(.measure), required: true, "the measure it is a value of"),
            Field("period", 5, .date, required: true, "the period it covers, by its first day (YYYY-MM-DD)"),
            Field("value", 6, .number, "the value (or give a numerator and denominator)"),
            Field("numerator", 7, .number, "for a proportion or rate: the count"),
            Field("denominator", 8, .number, "for a proportion or rate: out of how many"),
            Field("note", 9, .text(max: 1000), "a note: no patient details"),
            Field("excluded", 10, .text(max: 500), "why it is left out of the calculations (empty: included)"),
        ]
        case .chartEvent: [
            Field("measure", 4, .reference(.measure), required: true, "the measure whose chart it marks"),
            Field("type", 5, .choice(Vocabulary.eventTypes), required: true, columnName: "event_type", "rebase, baseline or annotation"),
            Field("date", 6, .date, columnName: "event_date", "a rebase's or annotation's date"),
            Field("points", 7, .integer, "a baseline's number of points"),
            Field("pdsa", 8, .reference(.pdsa), "the PDSA cycle an annotation names"),
            Field("text", 9, .text(max: 500), "what an annotation says"),
        ]
        }
    }

    /// For kinds unique by a field within a parent: the parent field and the unique one (a PDSA
    /// cycle's number within its initiative, a data point's period within its measure).
    public var uniqueKey: (parent: String, field: String)? {
        switch self {
        case .pdsa: ("initiative", "number")
        case .datapoint: ("measure", "period")
        default: nil
        }
    }

    /// Every field, the common ones first.
    public var allFields: [Field] { Self.common + fields }

    /// The field with this name.
    public func field(named name: String) -> Field? { Self.common.first { $0.name == name } ?? fields.first { $0.name == name } }

    /// The tag sets a record of this kind has: name, table, vocabulary.
    public var tagSets: [TagSet] {
        switch self {
        case .learning: [TagSet.soffts, .skills, .culture]
        case .adaptation: [TagSet.reasons]
        default: []
        }
    }

    /// The replicated table.
    public var table: TableSpec {
        let id: UInt16 = switch self {
        case .initiative: 2
        case .pdsa: 3
        case .learning: 4
        case .adaptation: 8
        case .measure: 10
        case .datapoint: 11
        case .chartEvent: 12
        }
        return TableSpec(id: id, name: rawValue, columns: allFields.map { ColumnSpec($0.column, $0.columnName, $0.columnType) },
                         ownership: .record(ownerColumn: 1), overrideColumns: PIIOverride.standardColumns)
    }
}

/// A set of tags on a record, replicated as a child table whose members have their own existence.
public struct TagSet: Sendable, Equatable {
    /// The option name (`sofft`, `skill`, `culture`, `reason`).
    public let name: String
    /// The child table.
    public let table: TableSpec
    /// The allowed tags.
    public let vocabulary: [String]

    static let soffts = TagSet(name: "sofft", table: TableSpec(id: 5, name: "learning_sofft", kind: .set(parentTable: "learning")),
                               vocabulary: Vocabulary.soffts.map(\.code))
    static let skills = TagSet(name: "skill", table: TableSpec(id: 6, name: "learning_skill", kind: .set(parentTable: "learning")),
                               vocabulary: Vocabulary.skillKinds)
    static let culture = TagSet(name: "culture", table: TableSpec(id: 7, name: "learning_culture", kind: .set(parentTable: "learning")),
                                vocabulary: Vocabulary.cultureFeatures)
    static let reasons = TagSet(name: "reason", table: TableSpec(id: 9, name: "adaptation_reason", kind: .set(parentTable: "adaptation")),
                                vocabulary: Vocabulary.reasons)

    /// Checks and normalises a typed tag.
    public func parse(_ text: String) throws -> String {
        let normalised = name == "sofft" ? text.uppercased() : text.lowercased()
        guard vocabulary.contains(normalised) else {
            if name == "sofft" {
                throw DomainError("'\(text)' is not a SOFFT code; use one of the six: \(Vocabulary.sofftList)")
            }
            throw DomainError("'\(text)' is not a valid \(name); use one of: \(vocabulary.joined(separator: ", "))")
        }
        return normalised
    }

    /// The row key of a tag: the parent's id then the tag's text.
    func key(parent: RecordID, tag: String) -> [UInt8] { parent.bytes + Array(tag.utf8) }
}

/// The replicated schema of a QI replica.
public enum QISchema {
    /// Every replicated table: sites, the four record kinds and their tag sets.
    public static let schema = ReplicatedSchema(tables: [
        Replica.siteTable,
        RecordKind.initiative.table, RecordKind.pdsa.table, RecordKind.learning.table,
        TagSet.soffts.table, TagSet.skills.table, TagSet.culture.table,
        RecordKind.adaptation.table, TagSet.reasons.table,
        RecordKind.measure.table, RecordKind.datapoint.table, RecordKind.chartEvent.table,
    ], indexes: [
        ("pdsa", ["initiative", "number"]), ("learning", ["initiative"]), ("learning", ["date"]), ("adaptation", ["initiative"]),
        ("adaptation", ["source_id"]), ("measure", ["initiative"]), ("datapoint", ["measure", "period"]), ("chart_event", ["measure"]),
        ("initiative", ["created_ms"]),
    ])
}
