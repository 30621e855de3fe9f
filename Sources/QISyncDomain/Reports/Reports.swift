import Foundation
import GRDB
import QISyncCharts
import QISyncCore
import QISyncStore

/// Everything an initiative's report shows.
public struct InitiativeReport: Sendable {
    public let initiative: RecordView
    public let contentHash: String
    public let measures: [MeasureChart]
    /// Measures whose chart could not be drawn, with why.
    public let unchartable: [(measure: RecordView, reason: String)]
    public let cycles: [RecordView]
    public let learning: [RecordView]
    /// Adaptations held here that made this initiative from a source.
    public let adaptedFrom: [RecordView]
    /// Adaptations made from this initiative, here or at other trusts.
    public let adaptedInto: [RecordView]
    public let lineage: [LineageStep]
}

/// One group of a learning report: a SOFFT, skill kind or culture feature, how many entries
/// show it, how each effect counts, and example quotes.
public struct LearningGroup: Sendable {
    public let key: String
    public let label: String
    public let count: Int
    public let effects: [String: Int]
    public let examples: [String]
}

/// One initiative in the portfolio.
public struct PortfolioRow: Sendable {
    public let initiative: RecordView
    public let cycles: Int
    public let measures: Int
    public let learning: Int
}

extension QIRecords {
    /// Gathers an initiative's report.
    public func initiativeReport(_ reference: String) throws -> InitiativeReport {
        let (_, id) = try locate(reference, as: .initiative)
        let initiative = try record(.initiative, id)
        var filter = ListFilter()
        filter.initiative = id.hex
        filter.limit = 1_000_000
        var charts: [MeasureChart] = []
        var unchartable: [(RecordView, String)] = []
        for measure in try list(.measure, filter: filter) {
            do { charts.append(try chart(measure: measure.id.hex)) } catch let error as DomainError { unchartable.append((measure, error.message)) }
        }
        return InitiativeReport(initiative: initiative, contentHash: contentHash(of: initiative), measures: charts, unchartable: unchartable,
                                cycles: try list(.pdsa, filter: filter).sorted { ($0.number("number") ?? 0) < ($1.number("number") ?? 0) },
                                learning: try list(.learning, filter: filter), adaptedFrom: try list(.adaptation, filter: filter),
                                adaptedInto: try adaptations(of: id), lineage: try lineage(id.hex))
    }

    /// Learning entries grouped by SOFFT, skill kind or culture feature, across everything held
    /// (other trusts' shared entries too), optionally since a date, for one team (the initiative's)
    /// or one trust.
    public func learningReport(by groupName: String, since: String? = nil, team: String? = nil, trust code: String? = nil,
                               examples: Int = 2) throws -> (groups: [LearningGroup], entries: Int) {
        guard let set = RecordKind.learning.tagSets.first(where: { $0.name == groupName }) else {
            throw DomainError("--by takes sofft, skill or culture")
        }
        if let since, !DateText.isValid(since) { throw DomainError("--since '\(since)' is not a date; write it as YYYY-MM-DD") }
        var conditions = ["l.live = 1"]
        var arguments: [DatabaseValueConvertible] = []
        if let since { conditions.append("l.date >= ?"); arguments.append(since) }
        if let code { conditions.append("l.owner_trust = ?"); arguments.append(code.uppercased()) }
        if let team { conditions.append("l.initiative IN (SELECT id FROM initiative WHERE team = ? AND live = 1)"); arguments.append(team) }
        let whereClause = conditions.joined(separator: " AND ")
        let rows = try replica.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.value, l.effect, l.text FROM learning l JOIN \(set.table.name) s ON s.parent = l.id AND s.live = 1
                WHERE \(whereClause) ORDER BY l.date DESC, l.created_ms DESC
                """, arguments: StatementArguments(arguments)).map { ($0[0] as String, ($0[1] as String?) ?? "", ($0[2] as String?) ?? "") }
        }
        let total = try replica.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM learning l WHERE \(whereClause)", arguments: StatementArguments(arguments)) } ?? 0
        let labels: [String: String] = groupName == "sofft" ? Dictionary(uniqueKeysWithValues: Vocabulary.soffts.map { ($0.code, $0.label) }) : [:]
        let order = groupName == "sofft" ? Vocabulary.soffts.map(\.code) : groupName == "skill" ? Vocabulary.skillKinds : Vocabulary.cultureFeatures
        let groups = order.map { key -> LearningGroup in
            let matching = rows.filter { $0.0 == key }
            var effects: [String: Int] = [:]
            for row in matching { effects[row.1.isEmpty ? "neutral" : row.1, default: 0] += 1 }
            return LearningGroup(key: key, label: labels[key] ?? key, count: matching.count, effects: effects,
                                 examples: Array(matching.map(\.2).prefix(examples)))
        }
        return (groups, total)
    }

    /// Every live initiative with its status, IHI score, team, and how much hangs off it.
    public func portfolio() throws -> [PortfolioRow] {
        var filter = ListFilter()
        filter.limit = 1_000_000
        let initiatives = try list(.initiative, filter: filter)
        let counts: [String: [String: Int]] = try replica.read { db in
            var result: [String: [String: Int]] = [:]
            for table in ["pdsa", "measure", "learning"] {
                for row in try Row.fetchAll(db, sql: "SELECT initiative, count(*) FROM \(table) WHERE live = 1 AND initiative IS NOT NULL GROUP BY initiative") {
                    result[table, default: [:]][Hex.encode(Array(row[0] as Data))] = row[1]
                }
            }
            return result
        }
        let statusOrder = Vocabulary.statuses
        return initiatives.map { view in
            PortfolioRow(initiative: view, cycles: counts["pdsa"]?[view.id.hex] ?? 0, measures: counts["measure"]?[view.id.hex] ?? 0,
                         learning: counts["learning"]?[view.id.hex] ?? 0)
        }.sorted {
            let a = statusOrder.firstIndex(of: $0.initiative.text("status")) ?? 9, b = statusOrder.firstIndex(of: $1.initiative.text("status")) ?? 9
            return a != b ? a < b : ($0.initiative.number("score") ?? 0) > ($1.initiative.number("score") ?? 0)
        }
    }
}
