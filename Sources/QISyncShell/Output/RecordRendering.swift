import Foundation
import QISyncCore
import QISyncDomain

/// How records, lists and other results are shown: as text for people, as JSON for scripts.
enum RecordRendering {
    /// A record's JSON form: id, kind, fields, tags, deleted, conflicts.
    static func json(_ view: RecordView) -> [String: Any] {
        var fields: [String: Any] = [:]
        for field in view.kind.allFields {
            let value = view.values[field.name] ?? .null
            switch value {
            case .null: fields[field.name] = NSNull()
            case .integer(let i) where field.kind == .flag: fields[field.name] = i != 0
            case .integer(let ms) where field.columnName.hasSuffix("_ms"): fields[field.name] = Times.json(UInt64(max(ms, 0)))
            case .integer(let i): fields[field.name] = i
            case .real(let d): fields[field.name] = d
            case .text(let s): fields[field.name] = s
            case .blob(let b): fields[field.name] = Hex.encode(b)
            }
        }
        return ["id": view.id.hex, "kind": view.kind.rawValue, "fields": fields, "tags": view.tags,
                "deleted": !view.live, "conflicts": view.conflictedFields, "updated": Times.json(view.updated.milliseconds)]
    }

    /// Shows one record in full.
    static func show(_ view: RecordView, contentHash: String?, times: Times, to out: OutputSink) {
        var pairs: [(String, String)] = [("id", view.id.hex), ("kind", view.kind.rawValue)]
        if !view.live { pairs.append(("deleted", "yes (restore with '\(view.kind.commandName) restore \(view.id.short)')")) }
        for field in view.kind.allFields where field.name != "pii-override-signature" {
            var text = Display.text(view.values[field.name] ?? .null, field: field, time: { times.text($0) })
            if field.kind == .score, let score = view.values[field.name]?.real, let meaning = Vocabulary.ihiScores[score] { text += " (\(meaning))" }
            if case .reference = field.kind, case .blob(let b)? = view.values[field.name] { text = Hex.encode(b) }
            if view.conflictedFields.contains(field.name) { text += "   ⚠ conflict: see 'conflicts'" }
            pairs.append((field.name, text))
        }
        for set in view.kind.tagSets { pairs.append((set.name, (view.tags[set.name] ?? []).joined(separator: " "))) }
        pairs.append(("updated", times.text(view.updated.milliseconds)))
        if let contentHash { pairs.append(("content-hash", contentHash)) }
        out.fields(pairs)
    }

    /// The columns of a list of records of a kind.
    static func listColumns(_ kind: RecordKind) -> [String] {
        switch kind {
        case .initiative: ["id", "status", "score", "scope", "trust", "title"]
        case .pdsa: ["id", "initiative", "no", "act", "change idea"]
        case .learning: ["id", "date", "effect", "soffts", "skills", "text"]
        case .adaptation: ["id", "initiative", "source", "nature", "fidelity"]
        case .measure: ["id", "initiative", "kind", "unit", "better", "chart", "target", "name"]
        case .datapoint: ["id", "period", "value", "numerator", "denominator", "excluded", "note"]
        case .chartEvent: ["id", "type", "date", "points", "pdsa", "text"]
        }
    }

    /// One row of a list.
    static func listRow(_ view: RecordView) -> [String] {
        let id = view.id.short + (view.live ? "" : " (deleted)") + (view.conflictedFields.isEmpty ? "" : " ⚠")
        switch view.kind {
        case .initiative: return [id, view.text("status"), view.text("score"), view.scope.description, view.ownerTrust, view.text("title")]
        case .pdsa: return [id, view.text("initiative"), view.text("number"), view.text("act"), view.text("change-idea")]
        case .learning: return [id, view.text("date"), view.text("effect"), (view.tags["sofft"] ?? []).joined(separator: ","),
                                (view.tags["skill"] ?? []).joined(separator: ","), view.text("text")]
        case .adaptation: return [id, view.text("initiative"), "\(view.text("source-trust"))/\(view.text("source-id").prefix(RecordID.shortLength))",
                                  view.text("nature"), view.text("fidelity")]
        case .measure: return [id, view.text("initiative"), view.text("kind"), view.text("unit"), view.text("direction"), view.text("chart"),
                               view.text("target"), view.text("name")]
        case .datapoint: return [id, view.text("period"), view.text("value"), view.text("numerator"), view.text("denominator"),
                                 view.text("excluded"), view.text("note")]
        case .chartEvent: return [id, view.text("type"), view.text("date"), view.text("points"), view.text("pdsa"), view.text("text")]
        }
    }
}

extension Value {
    /// The value as a Double, when it is a number.
    var real: Double? {
        switch self {
        case .real(let d): d
        case .integer(let i): Double(i)
        default: nil
        }
    }
}
