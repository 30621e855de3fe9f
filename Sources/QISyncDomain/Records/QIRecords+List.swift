import Foundation
import GRDB
import QISyncCore
import QISyncStore

/// Which records `list` shows.
public struct ListFilter: Sendable {
    /// Only records of this initiative (PDSA cycles, learning entries, adaptations, measures).
    public var initiative: String?
    /// Only records of this measure (data points, chart events).
    public var measure: String?
    /// Only learning entries tagged with this SOFFT.
    public var sofft: String?
    /// Only learning entries tagged with this skill kind.
    public var skill: String?
    /// Only learning entries tagged with this culture feature.
    public var culture: String?
    /// Only learning entries with this effect.
    public var effect: String?
    /// Only initiatives with this status.
    public var status: String?
    /// Learning entries on or after this date.
    public var from: String?
    /// Learning entries on or before this date.
    public var to: String?
    /// Show deleted records too.
    public var includeDeleted = false
    /// At most this many.
    public var limit = 1000

    /// Checks a `--limit` as typed.
    public static func checked(limit: Int) throws -> Int {
        guard limit >= 1 else { throw DomainError("--limit \(limit) shows nothing; give 1 or more (it is the most records to show)") }
        return limit
    }

    /// Creates an empty filter.
    public init() {}
}

extension QIRecords {
    /// Lists records of a kind, newest first.
    public func list(_ kind: RecordKind, filter: ListFilter = ListFilter()) throws -> [RecordView] {
        var conditions: [String] = []
        var arguments: [DatabaseValueConvertible] = []
        if !filter.includeDeleted { conditions.append("t.live = 1") }
        if let initiative = filter.initiative {
            guard kind.field(named: "initiative") != nil else { throw DomainError("--initiative filters PDSA cycles, learning entries, adaptations and measures") }
            let (_, id) = try locate(initiative, as: .initiative)
            conditions.append("t.initiative = ?")
            arguments.append(Data(id.bytes))
        }
        if let measure = filter.measure {
            guard kind.field(named: "measure") != nil else { throw DomainError("--measure filters data points and chart events") }
            let (_, id) = try locate(measure, as: .measure)
            conditions.append("t.measure = ?")
            arguments.append(Data(id.bytes))
        }
        let tagFilters: [(String?, TagSet)] = [(filter.sofft, TagSet.soffts), (filter.skill, TagSet.skills), (filter.culture, TagSet.culture)]
        for (value, set) in tagFilters {
            guard let value else { continue }
            guard kind == .learning else { throw DomainError("--\(set.name) filters learning entries ('log list')") }
            conditions.append("EXISTS (SELECT 1 FROM \(set.table.name) s WHERE s.parent = t.id AND s.value = ? AND s.live = 1)")
            arguments.append(try set.parse(value))
        }
        if let effect = filter.effect {
            guard kind == .learning else { throw DomainError("--effect filters learning entries ('log list')") }
            conditions.append("t.effect = ?")
            arguments.append(try kind.field(named: "effect")!.parse(effect).text!)
        }
        if let status = filter.status {
            guard kind == .initiative else { throw DomainError("--status filters initiatives") }
            conditions.append("t.status = ?")
            arguments.append(try kind.field(named: "status")!.parse(status).text!)
        }
        if let from = filter.from, let to = filter.to, DateText.isValid(from), DateText.isValid(to), from > to {
            throw DomainError("--from \(from) is after --to \(to): nothing can be in between; swap them")
        }
        for (bound, op) in [(filter.from, ">="), (filter.to, "<=")] {
            guard let bound else { continue }
            guard kind == .learning else { throw DomainError("--from and --to filter learning entries by date") }
            guard DateText.isValid(bound) else { throw DomainError("'\(bound)' is not a date; write it as YYYY-MM-DD") }
            conditions.append("t.date \(op) ?")
            arguments.append(bound)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let order = switch kind {
        case .learning: "t.date DESC, t.created_ms DESC"
        case .pdsa: "t.initiative, t.number"
        case .datapoint: "t.measure, t.period"
        case .chartEvent: "t.measure, t.event_date"
        default: "t.created_ms DESC"
        }
        return try replica.read { db in
            try Row.fetchAll(db, sql: "SELECT t.rowid, t.* FROM \(kind.rawValue) t \(whereClause) ORDER BY \(order), t.id LIMIT \(max(filter.limit, 0))",
                             arguments: StatementArguments(arguments))
                .map { try view(kind, row: $0, db: db) }
        }
    }
}
