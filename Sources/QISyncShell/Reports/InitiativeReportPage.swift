import Foundation
import QISyncCharts
import QISyncCore
import QISyncDomain

/// An initiative's report as one self-contained HTML page: no external files or scripts,
/// readable on screen and printed on A4 (the charts are inline SVG that shrink to the page).
enum InitiativeReportPage {
    static func html(_ report: InitiativeReport, site: String, generated: String, times: Times) -> String {
        let initiative = report.initiative
        func e(_ text: String) -> String { SVGChart.escape(text) }
        func field(_ name: String, _ label: String) -> String {
            let value = initiative.text(name)
            return value.isEmpty ? "" : "<tr><th>\(e(label))</th><td>\(e(value))</td></tr>"
        }
        let score = initiative.number("score").map { "\(Display.text(.real($0))) — \(Vocabulary.ihiScores[$0] ?? "")" } ?? "not scored"
        var page = """
            <!DOCTYPE html>
            <html lang="en-GB">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(initiative.text("title"))) — QI report</title>
            <style>
            @page { size: A4; margin: 14mm 14mm 16mm 14mm; }
            * { box-sizing: border-box; }
            body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; color: #212b32; margin: 0 auto; max-width: 182mm;
                   padding: 8mm 0; font-size: 10.5pt; line-height: 1.4; }
            h1 { font-size: 18pt; margin: 0 0 2mm; color: #005eb8; }
            h2 { font-size: 13pt; margin: 7mm 0 2mm; padding-bottom: 1mm; border-bottom: 2px solid #005eb8; color: #003087; }
            h3 { font-size: 11pt; margin: 4mm 0 1mm; }
            p, li { overflow-wrap: anywhere; }
            .meta { color: #4c6272; font-size: 9pt; margin-bottom: 4mm; }
            table { border-collapse: collapse; width: 100%; table-layout: fixed; margin: 1mm 0 3mm; }
            th, td { text-align: left; vertical-align: top; padding: 1.2mm 2mm; border-bottom: 1px solid #d8dde0; overflow-wrap: anywhere; }
            th { width: 30%; font-weight: 600; color: #4c6272; }
            table.grid th { width: auto; background: #f0f4f5; }
            .measure { break-inside: avoid; page-break-inside: avoid; margin-bottom: 5mm; }
            .measure svg { width: 100%; height: auto; display: block; }
            .verdict { font-weight: 600; }
            .signals { font-size: 9pt; margin: 1mm 0 0 0; padding-left: 5mm; }
            .quote { margin: 1mm 0 2mm 0; padding: 1mm 3mm; border-left: 3px solid #41b6e6; background: #f7fbfd; white-space: pre-wrap; }
            .small { font-size: 9pt; color: #4c6272; }
            .timeline td:first-child { width: 9%; font-weight: 600; }
            @media print { body { padding: 0; } a { color: inherit; text-decoration: none; } }
            </style>
            </head>
            <body>
            <h1>\(e(initiative.text("title")))</h1>
            <div class="meta">\(e(initiative.ownerTrust)) initiative \(initiative.id.short) · \(e(initiative.scope == .shared ? "shared with other trusts" : "inside the trust")) · report from \(e(site)), \(e(generated)) · content hash \(report.contentHash.prefix(16))…</div>
            <table>
            <tr><th>Status</th><td>\(e(initiative.text("status")))</td></tr>
            <tr><th>IHI progress score</th><td>\(e(score))</td></tr>
            \(field("aim", "Aim"))\(field("problem", "Problem"))\(field("team", "Team"))\(field("method", "Method"))\(field("lead", "Lead (role)"))\(field("sponsor", "Sponsor (role)"))
            </table>

            """
        page += "<h2>Measures</h2>\n"
        if report.measures.isEmpty && report.unchartable.isEmpty { page += "<p class=\"small\">No measures yet.</p>\n" }
        for chart in report.measures {
            let measure = chart.measure
            let about = [measure.text("kind"), measure.text("unit"), measure.text("frequency").isEmpty ? "" : "collected each \(measure.text("frequency"))",
                         measure.text("direction").isEmpty ? "" : "better: \(measure.text("direction"))"].filter { !$0.isEmpty }.joined(separator: " · ")
            page += "<div class=\"measure\">\n<h3>\(e(chart.title))</h3>\n"
            if !about.isEmpty { page += "<div class=\"small\">\(e(about))\(measure.text("definition").isEmpty ? "" : " — \(e(measure.text("definition")))")</div>\n" }
            page += SVGChart.render(chart.analysis, title: chart.title, format: chart.format, target: chart.target, direction: chart.direction,
                                    annotations: chart.annotations)
            let verdicts = ChartWords.verdictLines(chart.analysis)
            if !verdicts.isEmpty { page += "<p class=\"verdict\">\(e(verdicts.joined(separator: " · ")))</p>\n" }
            let signals = ChartWords.signalLines(chart.analysis)
            if !signals.isEmpty { page += "<ul class=\"signals\">\(signals.map { "<li>\(e($0))</li>" }.joined())</ul>\n" }
            page += "</div>\n"
        }
        for (measure, reason) in report.unchartable {
            page += "<div class=\"measure\"><h3>\(e(measure.text("name")))</h3><p class=\"small\">No chart: \(e(reason))</p></div>\n"
        }

        page += "<h2>PDSA cycles</h2>\n"
        if report.cycles.isEmpty {
            page += "<p class=\"small\">No PDSA cycles yet.</p>\n"
        } else {
            page += "<table class=\"grid timeline\"><tr><th>Cycle</th><th>Change idea</th><th>Prediction</th><th>Results</th><th>Act</th></tr>\n"
            for cycle in report.cycles {
                let closed = cycle.values["closed"].flatMap { value -> String? in if case .integer(let ms) = value { return times.text(UInt64(max(ms, 0))) } else { return nil } }
                page += "<tr><td>#\(e(cycle.text("number")))</td><td>\(e(cycle.text("change-idea")))</td><td>\(e(cycle.text("prediction")))</td>"
                page += "<td>\(e(cycle.text("results")))\(cycle.text("learning").isEmpty ? "" : "<div class=\"small\">Learnt: \(e(cycle.text("learning")))</div>")</td>"
                page += "<td>\(e(cycle.text("act").isEmpty ? "open" : cycle.text("act")))\(closed.map { "<div class=\"small\">\(e($0))</div>" } ?? "")</td></tr>\n"
            }
            page += "</table>\n"
        }

        page += "<h2>Learning</h2>\n"
        if report.learning.isEmpty {
            page += "<p class=\"small\">No learning entries yet.</p>\n"
        } else {
            page += "<table class=\"grid\"><tr><th>By</th><th>Counts</th></tr>\n"
            for (title, set) in [("SOFFT", "sofft"), ("Skill kind", "skill"), ("Effect", "effect")] {
                var counts: [String: Int] = [:]
                for entry in report.learning {
                    if set == "effect" { counts[entry.text("effect").isEmpty ? "neutral" : entry.text("effect"), default: 0] += 1 }
                    else { for tag in entry.tags[set] ?? [] { counts[tag, default: 0] += 1 } }
                }
                let text = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " · ")
                page += "<tr><td>\(title)</td><td>\(e(text.isEmpty ? "—" : text))</td></tr>\n"
            }
            page += "</table>\n"
            for entry in report.learning {
                let tags = (entry.tags["sofft"] ?? []) + (entry.tags["skill"] ?? [])
                page += "<div class=\"quote\">\(e(entry.text("text")))<div class=\"small\">\(e(entry.text("date"))) · \(e(entry.text("effect")))\(tags.isEmpty ? "" : " · " + e(tags.joined(separator: ", ")))</div></div>\n"
            }
        }

        page += "<h2>Adaptations and lineage</h2>\n"
        if report.lineage.count <= 1 && report.adaptedFrom.isEmpty && report.adaptedInto.isEmpty {
            page += "<p class=\"small\">Not adapted from elsewhere, and no adaptations of it are held here.</p>\n"
        } else {
            page += "<table class=\"grid\"><tr><th>Step</th><th>Trust</th><th>Initiative</th><th>How it was adapted</th></tr>\n"
            for step in report.lineage {
                let how = step.adaptation.map { adaptation in
                    [adaptation.text("nature"), adaptation.text("what"), adaptation.text("fidelity").isEmpty ? "" : "fidelity \(adaptation.text("fidelity"))",
                     adaptation.tags["reason"].map { "reasons: " + $0.joined(separator: ", ") } ?? ""].filter { !$0.isEmpty }.joined(separator: "; ")
                } ?? ""
                let where_ = step.depth == 0 ? "this initiative" : step.depth < 0 ? "source" : "adapted from it"
                page += "<tr><td>\(where_)</td><td>\(e(step.trust))</td><td>\(e(step.title ?? "(not held here)")) <span class=\"small\">\(step.initiative.prefix(8))</span></td><td>\(e(how))</td></tr>\n"
            }
            page += "</table>\n"
        }
        page += "<p class=\"small\">Made by qisync from the replica's records; charts follow NHS \"Making Data Count\" and IHI run chart rules as each names.</p>\n"
        page += "</body>\n</html>\n"
        return page
    }
}
