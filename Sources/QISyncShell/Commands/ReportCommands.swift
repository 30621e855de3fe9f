import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain

/// `report ID --html FILE`, `report learning`, `report portfolio`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports: an initiative's one-page HTML report (report ID --html FILE), learning by SOFFT, skill or culture, the portfolio.",
        subcommands: [Initiative.self, Learning.self, Portfolio.self],
        defaultSubcommand: Initiative.self)

    struct Initiative: ReplicaCommand {
        static let configuration = CommandConfiguration(
            commandName: "initiative",
            abstract: "Write an initiative's report: aim, status, score and roles; each measure's chart and verdicts; PDSA cycles; learning; adaptations and lineage.",
            discussion: "One self-contained HTML page (no external files or scripts) for the screen and A4 print. 'report ID --html FILE' is short for 'report initiative ID --html FILE'.")
        @OptionGroup var record: RecordArgument
        @Option(help: ArgumentHelp("The HTML file to write.", valueName: "FILE")) var html: String?
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            guard let html else { throw DomainError("give --html FILE: the report is a page to open in a browser or print") }
            let report = try context.records.initiativeReport(record.id)
            let identity = context.records.replica.identity
            let page = InitiativeReportPage.html(report, site: "\(identity.trustCode)/\(identity.siteName)",
                                                 generated: context.times.text(UInt64(Date().timeIntervalSince1970 * 1000)), times: context.times)
            try FileText.write(page, to: html)
            let points = report.measures.reduce(0) { $0 + $1.analysis.points.count }
            context.out.line(globals.json ? "{\"file\": \"\(html)\", \"measures\": \(report.measures.count), \"points\": \(points)}"
                                          : "wrote \(html): \(Plural.count(report.measures.count, "measure", "measures")) (\(Plural.count(points, "data point", "data points"))), \(Plural.count(report.cycles.count, "PDSA cycle", "PDSA cycles")), \(Plural.count(report.learning.count, "learning entry", "learning entries"))")
        }
    }

    struct Learning: ReplicaCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count learning entries by SOFFT, skill kind or culture feature, with example quotes: everything held, other trusts' shared learning too.")
        @Option(help: "Group by sofft, skill or culture.") var by = "sofft"
        @Option(help: ArgumentHelp("Only entries on or after this date.", valueName: "DATE")) var since: String?
        @Option(help: "Only entries of initiatives run by this team.") var team: String?
        @Option(help: ArgumentHelp("Only entries of this trust.", valueName: "CODE")) var trust: String?
        @Flag(help: "Write CSV instead of a table.") var csv = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let (groups, total) = try context.records.learningReport(by: by, since: since, team: team, trust: trust)
            if globals.json {
                context.out.json(["by": by, "entries": total, "groups": groups.map { ["key": $0.key, "label": $0.label, "count": $0.count,
                                                                                      "effects": $0.effects, "examples": $0.examples] as [String: Any] }])
                return
            }
            if csv {
                context.out.line("key,label,count,helped,hindered,neutral,example")
                for group in groups {
                    context.out.line([group.key, group.label, String(group.count), String(group.effects["helped"] ?? 0), String(group.effects["hindered"] ?? 0),
                                      String(group.effects["neutral"] ?? 0), group.examples.first ?? ""].map(CSV.field).joined(separator: ","))
                }
                return
            }
            context.out.line("\(Plural.count(total, "learning entry", "learning entries")) by \(by)\(since.map { " since \($0)" } ?? "")\(team.map { ", team \($0)" } ?? "")\(trust.map { ", trust \($0.uppercased())" } ?? "")")
            context.out.table([by, "entries", "helped", "hindered", "neutral", "for example"], groups.map { group in
                [by == "sofft" ? "\(group.key) \(group.label)" : group.key, String(group.count), String(group.effects["helped"] ?? 0),
                 String(group.effects["hindered"] ?? 0), String(group.effects["neutral"] ?? 0), group.examples.first.map { "“\($0)”" } ?? ""]
            })
        }
    }

    struct Portfolio: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Every initiative by status, with its IHI score, team, and how many cycles, measures and learning entries it has.")
        @Flag(help: "Write CSV instead of a table.") var csv = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let rows = try context.records.portfolio()
            if globals.json {
                context.out.json(rows.map { row -> [String: Any] in
                    ["id": row.initiative.id.hex, "title": row.initiative.text("title"), "status": row.initiative.text("status"),
                     "score": row.initiative.number("score") ?? NSNull(), "team": row.initiative.text("team"), "trust": row.initiative.ownerTrust,
                     "cycles": row.cycles, "measures": row.measures, "learning": row.learning]
                })
                return
            }
            if csv {
                context.out.line("id,title,status,score,team,trust,cycles,measures,learning")
                for row in rows {
                    context.out.line([row.initiative.id.hex, row.initiative.text("title"), row.initiative.text("status"), row.initiative.text("score"),
                                      row.initiative.text("team"), row.initiative.ownerTrust, String(row.cycles), String(row.measures), String(row.learning)]
                        .map(CSV.field).joined(separator: ","))
                }
                return
            }
            var byStatus: [String: Int] = [:]
            for row in rows { byStatus[row.initiative.text("status"), default: 0] += 1 }
            context.out.line(Vocabulary.statuses.compactMap { status in byStatus[status].map { "\($0) \(status)" } }.joined(separator: " · "))
            context.out.table(["id", "status", "score", "team", "trust", "cycles", "measures", "learning", "title"], rows.map { row in
                [row.initiative.id.short, row.initiative.text("status"), row.initiative.text("score"), row.initiative.text("team"), row.initiative.ownerTrust,
                 String(row.cycles), String(row.measures), String(row.learning), row.initiative.text("title")]
            })
        }
    }
}

/// CSV fields as RFC 4180 writes them.
enum CSV {
    static func field(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
