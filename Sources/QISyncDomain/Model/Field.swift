import Foundation
import QISyncCore

/// What a field holds, and so how typed text is checked and turned into a value.
public enum FieldKind: Sendable, Equatable {
    /// Free text of at most `max` characters.
    case text(max: Int)
    /// One of a fixed list of words.
    case choice([String])
    /// The IHI progress score: 0.5 to 5.0 in steps of 0.5.
    case score
    /// A calendar date, YYYY-MM-DD.
    case date
    /// yes or no.
    case flag
    /// A whole number.
    case integer
    /// A number (a measure's value, target, numerator or denominator).
    case number
    /// The id of another record of the given kind.
    case reference(RecordKind)
    /// Set by qisync itself, not typed; stored with the given type.
    case system(ColumnType)
}

/// A field of a QI record: its name on screen, its column, and what it holds.
public struct Field: Sendable, Equatable {
    /// The name people type (`title`, `as-planned`).
    public let name: String
    /// The column number in the change encoding.
    public let column: UInt16
    /// What it holds.
    public let kind: FieldKind
    /// Whether `add` needs it.
    public let required: Bool
    /// One line of help.
    public let help: String
    /// The materialised column's name.
    public let columnName: String

    /// Creates a field.
    public init(_ name: String, _ column: UInt16, _ kind: FieldKind, required: Bool = false, columnName: String? = nil, _ help: String) {
        self.columnName = columnName ?? name.replacingOccurrences(of: "-", with: "_")
        self.name = name
        self.column = column
        self.kind = kind
        self.required = required
        self.help = help
    }

    /// Whether qisync sets it rather than people.
    public var isSystem: Bool { if case .system = kind { true } else { false } }

    /// The column's SQL type.
    var columnType: ColumnType {
        switch kind {
        case .text(let max): .text(maxLength: max)
        case .choice, .date: .text(maxLength: 40)
        case .score, .number: .real
        case .flag, .integer: .integer
        case .system(let type): type
        case .reference: .blob
        }
    }

    /// Checks typed text and turns it into the value stored; empty text clears an optional field.
    public func parse(_ text: String) throws -> Value {
        try TextCheck.validate(text, field: name)
        if text.isEmpty {
            guard !required else { throw DomainError("\(name) cannot be empty") }
            return .null
        }
        switch kind {
        case .text(let max):
            guard !text.allSatisfy(\.isWhitespace) else {
                throw DomainError("\(name) holds only spaces; write some text\(required ? "" : ", or '' to clear it")")
            }
            guard Value.length(of: text) <= max else {
                throw DomainError("\(name) is \(Value.length(of: text)) characters long; the most it can hold is \(max)")
            }
            return .text(text)
        case .choice(let words):
            let lowered = text.lowercased()
            guard words.contains(lowered) else {
                throw DomainError("'\(text)' is not a valid \(name); use one of: \(words.joined(separator: ", "))")
            }
            return .text(lowered)
        case .score:
            guard let score = Double(text), Vocabulary.ihiScores[score] != nil else {
                throw DomainError("'\(text)' is not an IHI progress score; use 0.5 to 5.0 in steps of 0.5 (e.g. 2.5 = changes tested)")
            }
            return .real(score)
        case .date:
            guard DateText.isValid(text) else { throw DomainError("'\(text)' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-27") }
            return .text(text)
        case .flag:
            switch text.lowercased() {
            case "yes", "y", "true": return .integer(1)
            case "no", "n", "false": return .integer(0)
            default: throw DomainError("'\(text)' is not yes or no (for \(name))")
            }
        case .integer:
            guard let number = Int64(text), number >= 0 else { throw DomainError("'\(text)' is not a whole number (for \(name))") }
            return .integer(number)
        case .number:
            let cleaned = text.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "−", with: "-")
            guard let number = Double(cleaned), number.isFinite else {
                throw DomainError("'\(text)' is not a number (for \(name)); write it like 12, 0.5 or -3")
            }
            return .real(number)
        case .reference, .system:
            throw DomainError("internal: \(name) is not parsed from text")
        }
    }
}

/// Checks of free text typed by people.
public enum TextCheck {
    /// Refuses text that was not valid UTF-8 (decoded with replacement characters) or holds control characters.
    public static func validate(_ text: String, field: String) throws {
        if text.unicodeScalars.contains(where: { $0 == "\u{FFFD}" }) {
            throw DomainError("\(field) is not valid UTF-8 text; check the file's or terminal's encoding")
        }
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }) {
            throw DomainError("\(field) holds a control character; remove it")
        }
    }
}

/// Calendar dates written as YYYY-MM-DD.
public enum DateText {
    private static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter
    }()

    /// Whether `text` is a real date in that form.
    public static func isValid(_ text: String) -> Bool {
        text.count == 10 && formatter.date(from: text).map { formatter.string(from: $0) == text } == true
    }

    /// Today's date where the person is (the machine's time zone: just after midnight in BST
    /// is already tomorrow, though UTC is not).
    public static func today(now: Date = Date(), in zone: TimeZone = .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.year, .month, .day], from: now)
        return String(format: "%04d-%02d-%02d", parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1)
    }

    /// A time in milliseconds since 1970 as `YYYY-MM-DD HH:MM`.
    public static func timestamp(milliseconds: UInt64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        let full = DateFormatter()
        full.locale = Locale(identifier: "en_GB_POSIX")
        full.timeZone = TimeZone(identifier: "UTC")
        full.dateFormat = "yyyy-MM-dd HH:mm"
        return full.string(from: date)
    }
}
