import Foundation
import QISyncCharts
import QISyncCore
import QISyncDomain
@testable import QISyncShell
@testable import QISyncStore
import Testing

/// Reports: an initiative's page, rendered by a real browser (headless Chromium) to PDF and
/// images, and the learning and portfolio reports.
@Suite("Reports", .serialized)
struct ReportTests {
    /// Runs a program, returning its exit code and standard output.
    static func run(_ program: String, _ arguments: [String]) throws -> (code: Int32, out: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }

    /// An initiative with three measures of 60 weekly points, cycles, learning and an adaptation.
    static func initiative(_ h: ShellHarness) throws -> (id: String, points: Int) {
        let id = String(try h.addInitiative("Reduce falls on Ward 7b — Ysbyty Gwynedd").prefix(8))
        #expect(h.run("initiative set \(id) --aim 'Halve night-time falls by March' --status active --score 3.0 --team 'Ward 7b' --lead 'Ward manager'").outcome == .success)
        var points = 0
        for (index, name) in ["Falls per 1,000 bed days", "Patients with a bed-rail check (%)", "Days between falls"].enumerated() {
            let unit = index == 1 ? "--unit percent --chart p" : "--unit count --chart xmr"
            let made = h.run("measure add \(id) --name '\(name)' --direction \(index == 1 ? "up" : "down") \(unit) --json")
            let measure = String(try #require((try JSONSerialization.jsonObject(with: Data(made.out.utf8)) as? [String: Any])?["id"] as? String).prefix(8))
            var lines = ["date,\(index == 1 ? "numerator,denominator" : "value")"]
            var day = Date(timeIntervalSince1970: 1_704_067_200)   // 2024-01-01
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_GB_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            for week in 0..<60 {
                let shift = week >= 40 ? -2.5 : 0
                let value = 8 + shift + Double((week * 37) % 11) / 5
                lines.append(index == 1 ? "\(formatter.string(from: day)),\(15 + (week * 7) % 13 + (week >= 40 ? 8 : 0)),\(40 + week % 5)" : "\(formatter.string(from: day)),\(value)")
                day = day.addingTimeInterval(7 * 86_400)
            }
            let file = h.root.appendingPathComponent("m\(index).csv")
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            #expect(h.run("data import \(measure) \(file.path)").outcome == .success)
            points += 60
        }
        #expect(h.run("pdsa add \(id) --change-idea 'Bed-rail check at every handover' --prediction 'Fewer night falls'").outcome == .success)
        #expect(h.run("log add \"Huddles at 07:45 made it easier to speak up.\\nNext: nights.\" --initiative \(id) --sofft S1 --skill soft --effect helped").outcome == .success)
        #expect(h.run("adapt \(id) --title 'Falls bundle for nights' --nature tailor").outcome == .success)
        return (id, points)
    }

    @Test("report ID --html writes one self-contained page: the aim, status and score, each measure's chart with verdicts, cycles, learning, lineage")
    func page() throws {
        let h = try ShellHarness()
        let (id, points) = try Self.initiative(h)
        let file = h.root.appendingPathComponent("report.html")
        let written = h.run("report \(id) --html \(file.path)")
        #expect(written.out.contains("3 measures (180 data points)"), "\(written.err)")
        let html = try String(contentsOf: file, encoding: .utf8)
        for expected in ["Reduce falls on Ward 7b — Ysbyty Gwynedd", "Halve night-time falls by March", "3.0 — modest improvement", "Ward manager",
                         "Falls per 1,000 bed days", "Variation:", "Bed-rail check at every handover", "Fewer night falls",
                         "Huddles at 07:45 made it easier to speak up.\nNext: nights.", "Falls bundle for nights", "@page { size: A4"] {
            #expect(html.contains(expected), "the report lacks '\(expected)'")
        }
        #expect(html.components(separatedBy: "<circle class=\"point").count - 1 == points)
        #expect(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"), "self-contained")
        #expect(h.run("report \(id)").err.contains("--html"))
    }

    @Test("a real browser renders the report: A4 pages, every data point drawn as a point, every word inside the margins at full size")
    func inBrowser() throws {
        guard (try? Self.run("chromium", ["--version"]).code) == 0, (try? Self.run("pdftoppm", ["-v"]).code) != nil else {
            Issue.record("headless Chromium and poppler-utils are needed: 'bash tools/setup.sh test' installs them (tools/test.sh does)")
            return
        }
        let h = try ShellHarness()
        let (id, points) = try Self.initiative(h)
        let file = h.root.appendingPathComponent("report.html")
        #expect(h.run("report \(id) --html \(file.path)").outcome == .success)
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(h.root.appendingPathComponent("chromium").path)"]
        // The DOM as the browser built it: one circle per data point.
        let dom = try Self.run("chromium", flags + ["--dump-dom", file.absoluteString])
        #expect(dom.code == 0)
        let rendered = String(decoding: dom.out, as: UTF8.self)
        #expect(rendered.components(separatedBy: "<circle class=\"point").count - 1 == points, "the browser's DOM holds every point")
        // Printed: A4 pages.
        let pdf = h.root.appendingPathComponent("report.pdf")
        #expect(try Self.run("chromium", flags + ["--no-pdf-header-footer", "--print-to-pdf=\(pdf.path)", file.absoluteString]).code == 0)
        let info = String(decoding: try Self.run("pdfinfo", [pdf.path]).out, as: UTF8.self)
        let pages = info.split(separator: "\n").first { $0.hasPrefix("Pages:") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        #expect(pages >= 1 && pages <= 6, "\(info)")
        #expect(info.contains("(A4)"), "A4 pages: \(info)")
        // Nothing overflows the page width. Chromium shrinks a page whose content is too wide to
        // fit, so look at where the words landed: every word inside the 14 mm margins, and the
        // title at its full 18 pt (a shrunk page would have it smaller).
        let boxes = String(decoding: try Self.run("pdftotext", ["-bbox", pdf.path, "-"]).out, as: UTF8.self)
        let words = boxes.split(separator: "\n").filter { $0.contains("<word ") }.map { line -> (xMin: Double, xMax: Double, height: Double, text: String) in
            func number(_ name: String) -> Double {
                guard let range = line.range(of: "\(name)=\"") else { return .nan }
                return Double(line[range.upperBound...].prefix { $0 != "\"" }) ?? .nan
            }
            let text = line.split(separator: ">").dropFirst().first.map { String($0.prefix { $0 != "<" }) } ?? ""
            return (number("xMin"), number("xMax"), number("yMax") - number("yMin"), text)
        }
        #expect(words.count > 100, "the PDF holds the report's text")
        let margin = 14 / 25.4 * 72, pageWidth = 595.28
        let outside = words.filter { $0.xMin < margin - 1 || $0.xMax > pageWidth - margin + 1 }
        #expect(outside.isEmpty, "words outside the margins: \(outside.prefix(5))")
        let title = try #require(words.first)
        #expect(title.text == "Reduce" && title.height >= 18, "the title is at full size, so the page was not shrunk to fit: \(title)")
        // Every page, as an image.
        let prefix = h.root.appendingPathComponent("page").path
        #expect(try Self.run("pdftoppm", ["-png", "-r", "40", pdf.path, prefix]).code == 0)
        let images = try FileManager.default.contentsOfDirectory(atPath: h.root.path).filter { $0.hasPrefix("page") && $0.hasSuffix(".png") }
        #expect(images.count == pages)
        // And on screen: a screenshot at a phone's width renders too.
        let shot = h.root.appendingPathComponent("screen.png")
        #expect(try Self.run("chromium", flags + ["--screenshot=\(shot.path)", "--window-size=420,900", file.absoluteString]).code == 0)
        #expect((try? Data(contentsOf: shot).count) ?? 0 > 1000)
    }

    @Test("report learning counts by SOFFT, skill or culture across trusts, with quotes; report portfolio by status; both as tables, JSON and CSV")
    func learningAndPortfolio() throws {
        let h = try ShellHarness()
        let (id, _) = try Self.initiative(h)
        #expect(h.run("log add 'Rota gaps hindered, £5 taxi vouchers helped' --sofft S2 --sofft S1 --skill technical --effect hindered --date 2025-01-05").outcome == .success)
        let table = h.run("report learning --by sofft").out
        #expect(table.contains("S1 adopting") && table.contains("2 learning entries"), "\(table)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(h.run("report learning --by sofft --json").out.utf8)) as? [String: Any])
        let groups = try #require(json["groups"] as? [[String: Any]])
        #expect(groups.first { $0["key"] as? String == "S1" }?["count"] as? Int == 2)
        #expect(groups.first { $0["key"] as? String == "S2" }?["count"] as? Int == 1)
        let since = try #require(try JSONSerialization.jsonObject(with: Data(h.run("report learning --by sofft --since 2025-06-01 --json").out.utf8)) as? [String: Any])
        #expect(since["entries"] as? Int == 1)
        let csv = h.run("report learning --by skill --csv").out
        #expect(csv.hasPrefix("key,label,count,helped,hindered,neutral,example") && csv.contains("\"Rota gaps hindered, £5 taxi vouchers helped\""))
        #expect(h.run("report learning --by mood").err.contains("sofft, skill or culture"))
        let portfolio = h.run("report portfolio").out
        #expect(portfolio.contains("active") && portfolio.contains(id) && portfolio.contains("Ward 7b"))
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(h.run("report portfolio --json").out.utf8)) as? [[String: Any]])
        #expect(rows.first { ($0["id"] as? String)?.hasPrefix(id) == true }?["measures"] as? Int == 3)
        #expect(h.run("report portfolio --csv").out.hasPrefix("id,title,status,score,team,trust,cycles,measures,learning"))
    }
}
