import Foundation

/// Looks for patient-identifiable data in text before it leaves the trust.
///
/// Finds NHS numbers (10 digits, optionally written 3-3-4 with spaces or hyphens, whose
/// Modulus 11 check digit is valid), dates of birth and UK postcodes written within
/// 40 characters of a patient word ("patient", "DOB", "born", "resident", …), and staff named
/// by title and surname ("Dr Patel", "Sister Jones"): in anything shared, staff appear by role.
public enum PIIGuard {
    /// One thing found.
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        /// What it looks like: "an NHS number", "a date of birth", "a patient's postcode".
        public let kind: String
        /// The text matched.
        public let match: String

        public var description: String { "\(kind) (\(match))" }
    }

    /// Whether ten digits form a valid NHS number: weights 10 to 2 over the first nine,
    /// check = 11 − (sum mod 11), 11 → 0, 10 → never valid.
    public static func isValidNHSNumber(_ digits: [Int]) -> Bool {
        guard digits.count == 10, digits.allSatisfy({ (0...9).contains($0) }) else { return false }
        let sum = zip(digits.prefix(9), stride(from: 10, through: 2, by: -1)).reduce(0) { $0 + $1.0 * $1.1 }
        var check = 11 - sum % 11
        if check == 11 { check = 0 }
        return check != 10 && check == digits[9]
    }

    private static let nhsNumber = try! NSRegularExpression(pattern: #"(?<![\d])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d])"#)
    private static let date = try! NSRegularExpression(pattern:
        #"\b(\d{1,2}[/.-]\d{1,2}[/.-](\d{2}|\d{4})|\d{4}-\d{2}-\d{2}|\d{1,2}(st|nd|rd|th)? (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{4})\b"#,
        options: [.caseInsensitive])
    private static let postcode = try! NSRegularExpression(pattern: #"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"#, options: [.caseInsensitive])
    private static let staffName = try! NSRegularExpression(pattern:
        #"\b(?:Dr|Doctor|Nurse|Sister|Matron|Mr|Mrs|Ms|Miss|Mx|Prof|Professor)\.? [A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:-[A-Z][a-z]+)?\b"#)
    private static let patientWord = try! NSRegularExpression(pattern:
        #"\b(patients?|pt|dob|d\.o\.b\.?|born|date of birth|resident|service user|client|mrn|hospital number|lives at|address)\b"#,
        options: [.caseInsensitive])

    /// What in `text` looks patient-identifiable.
    public static func scan(_ text: String) -> [Finding] {
        let whole = NSRange(text.startIndex..., in: text)
        var findings: [Finding] = []
        for match in nhsNumber.matches(in: text, range: whole) {
            let digits = (1...3).flatMap { group in Range(match.range(at: group), in: text).map { text[$0].compactMap(\.wholeNumberValue) } ?? [] }
            if isValidNHSNumber(digits), let range = Range(match.range, in: text) {
                findings.append(Finding(kind: "an NHS number", match: String(text[range])))
            }
        }
        let patients = patientWord.matches(in: text, range: whole).map(\.range)
        func nearPatientWord(_ range: NSRange) -> Bool {
            patients.contains { word in
                let gap = word.location > NSMaxRange(range) ? word.location - NSMaxRange(range) : range.location - NSMaxRange(word)
                return gap <= 40
            }
        }
        for (expression, kind) in [(date, "a date of birth"), (postcode, "a patient's postcode")] {
            for match in expression.matches(in: text, range: whole) where nearPatientWord(match.range) {
                if let range = Range(match.range, in: text) { findings.append(Finding(kind: kind, match: String(text[range]))) }
            }
        }
        for match in staffName.matches(in: text, range: whole) {
            if let range = Range(match.range, in: text) { findings.append(Finding(kind: "a member of staff's name (write their role)", match: String(text[range]))) }
        }
        return findings
    }
}
