import Foundation
import QISyncCore

/// A record as read from the materialised tables.
public struct RecordView: Sendable {
    /// Its kind.
    public let kind: RecordKind
    /// Its global id.
    public let id: RecordID
    /// Field values by field name.
    public let values: [String: Value]
    /// Live tags by tag-set name.
    public let tags: [String: [String]]
    /// False when deleted.
    public let live: Bool
    /// When it last changed.
    public let updated: HLC
    /// Fields with more than one head.
    public let conflictedFields: [String]

    /// The value of a field as display text ("" when empty).
    public func text(_ field: String) -> String { Display.text(values[field] ?? .null, field: kind.field(named: field)) }

    /// The value of a number field, when it has one.
    public func number(_ field: String) -> Double? {
        switch values[field] {
        case .real(let d)?: d
        case .integer(let i)?: Double(i)
        default: nil
        }
    }

    /// The owning trust.
    public var ownerTrust: String { text("owner-trust") }

    /// The scope.
    public var scope: Scope { Scope(name: text("scope")) ?? .trust }

    /// A one-line title for lists.
    public var headline: String {
        switch kind {
        case .initiative: text("title")
        case .pdsa: "#\(text("number")) \(text("change-idea"))"
        case .learning: text("text")
        case .adaptation: "from \(text("source-trust"))/\(String(text("source-id").prefix(RecordID.shortLength)))"
        case .measure: text("name")
        case .datapoint: "\(text("period")): \(text("value").isEmpty ? "\(text("numerator"))/\(text("denominator"))" : text("value"))"
        case .chartEvent: "\(text("type")) \(text("date"))\(text("points").isEmpty ? "" : " after \(text("points")) points") \(text("text"))"
        }
    }
}

/// How values are shown to people.
public enum Display {
    /// A value as display text: record ids shortened, times as dates, scores with one decimal.
    public static func text(_ value: Value) -> String {
        switch value {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return d == d.rounded() ? String(format: "%.1f", d) : String(d)
        case .text(let s): return s
        case .blob(let b): return (try? RecordID(bytes: b))?.short ?? Hex.encode(b)
        }
    }

    /// A value for a given field: flags as yes/no, times (milliseconds) through `time`.
    public static func text(_ value: Value, field: Field?, time: (UInt64) -> String = { DateText.timestamp(milliseconds: $0) + " UTC" }) -> String {
        guard let field else { return text(value) }
        switch (field.kind, value) {
        case (.flag, .integer(let i)): return i == 0 ? "no" : "yes"
        case (.number, .real(let d)) where d == d.rounded() && abs(d) < 1e15: return String(format: "%.0f", d)
        case (.system, .integer(let ms)) where field.columnName.hasSuffix("_ms"): return time(UInt64(max(ms, 0)))
        case (.system(.blob), .blob(let bytes)): return Hex.encode(bytes)
        default: return text(value)
        }
    }
}
