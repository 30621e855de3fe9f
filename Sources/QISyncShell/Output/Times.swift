import Foundation

/// How times are shown: on screen in local time with its zone (GMT or BST in the UK, whatever
/// `TZ` says), or in UTC with `--utc`; in JSON always as RFC 3339 in UTC. One place for every
/// time qisync prints.
struct Times: Sendable {
    /// Show UTC rather than local time.
    let utc: Bool

    private static let zoneUTC = TimeZone(identifier: "UTC")!

    /// A time for people: `2026-11-29 22:27 GMT`; with `seconds`, `2026-11-29 22:27:05 GMT`.
    /// The last text made is kept: a script prints the same minute for thousands of records,
    /// and a calendar's work per time was a tenth of a script line's.
    func text(_ milliseconds: UInt64, seconds: Bool = false) -> String {
        // Within one minute (one second) the text cannot change: zones change offset on the minute.
        let key = TextCache.Key(unit: milliseconds / (seconds ? 1000 : 60_000), seconds: seconds, utc: utc)
        return Self.cache.text(for: key) { format(milliseconds, seconds: seconds) }
    }

    private static let cache = TextCache()

    private func format(_ milliseconds: UInt64, seconds: Bool) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        let zone = utc ? Self.zoneUTC : TimeZone.current
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let clock = seconds ? String(format: "%02d:%02d:%02d", c.hour!, c.minute!, c.second!) : String(format: "%02d:%02d", c.hour!, c.minute!)
        let name = utc ? "UTC" : (zone.abbreviation(for: date) ?? zone.identifier)
        return String(format: "%04d-%02d-%02d ", c.year!, c.month!, c.day!) + clock + " " + name
    }

    /// The last time text made, by the minute (or second) it shows.
    private final class TextCache: @unchecked Sendable {
        struct Key: Equatable { let unit: UInt64, seconds: Bool, utc: Bool }
        private let lock = NSLock()
        private var last: (key: Key, text: String)?

        func text(for key: Key, _ make: () -> String) -> String {
            if let last = lock.withLock({ last }), last.key == key { return last.text }
            let text = make()
            lock.withLock { last = (key, text) }
            return text
        }
    }

    /// A time for machines: RFC 3339 in UTC with milliseconds, `2026-11-29T22:27:05.123Z`.
    static func json(_ milliseconds: UInt64) -> String {
        let seconds = milliseconds / 1000, millis = milliseconds % 1000
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zoneUTC
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(seconds)))
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, Int(millis))
    }
}
