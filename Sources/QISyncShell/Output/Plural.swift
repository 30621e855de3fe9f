/// Counts written so they agree in number: "1 entry", "2 entries".
enum Plural {
    /// `count` then the word in the right number.
    static func count(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
    static func count(_ count: UInt64, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
}
