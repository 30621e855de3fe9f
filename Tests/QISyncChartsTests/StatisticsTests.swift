import Foundation
@testable import QISyncCharts
import Testing

/// The statistics checked against published worked examples, not against this code's own output.
@Suite("Chart statistics against published examples")
struct StatisticsTests {
    static func points(_ values: [Double]) -> [ChartPoint] {
        values.enumerated().map { index, value in ChartPoint(date: date(index), value: value) }
    }

    static func date(_ index: Int) -> String {
        let day = Date(timeIntervalSince1970: 1_767_225_600 + Double(index) * 86_400)   // 2026-01-01 onwards
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: day)
    }

    /// R's `set.seed(123); rnorm(20)`, the data of NHSRplotthedots' test "it returns expected values"
    /// (tests/testthat/_snaps/ptd_spc_standard.md), whose published mean, lpl and upl are 0.142, −3.01 and 3.29.
    static let rnorm123 = [-0.56047565, -0.23017749, 1.55870831, 0.07050839, 0.12928774, 1.71506499, 0.46091621, -1.26506123,
                           -0.68685285, -0.44566197, 1.22408180, 0.35981383, 0.40077145, 0.11068272, -0.55584113, 1.78691314,
                           0.49785048, -1.96661716, 0.70135590, -0.47279141]

    @Test("XmR: NHSRplotthedots' worked example gives mean 0.142, limits −3.01 and 3.29 (to 3 figures)")
    func xmrLimits() throws {
        let chart = try ChartAnalyzer.analyse(Self.points(Self.rnorm123), options: ChartOptions(kind: .xmr))
        #expect(abs(chart.centre[0]! - 0.142) < 0.0005)
        #expect(abs(chart.lower[0]! - -3.01) < 0.005)
        #expect(abs(chart.upper[0]! - 3.29) < 0.005)
        #expect(!chart.signals.contains { $0.rule == .beyondLimit })
        #expect(chart.ruleset == .mdc && chart.variation == .commonCause)
    }

    @Test("XmR rules behave as NHSRplotthedots' tests say: 7 on a side, 7 rising or falling (a tie breaks it), 2 of 3 near a limit")
    func mdcRules() throws {
        let side: ([Double]) -> (Int) -> Int = { values in { values[$0] > 0 ? 1 : values[$0] < 0 ? -1 : 0 } }
        // ptd_seven_point_one_side_mean: six is not enough; eight then one below flags the eight.
        let six = [Double](repeating: 1, count: 6) + [-1]
        #expect(ChartAnalyzer.runsOnOneSide(Array(six.indices), side: side(six), length: 7, skipCentre: false, rule: .shiftOfSeven, centreName: "mean").isEmpty)
        let eight = [Double](repeating: 1, count: 8) + [-1]
        let shift = ChartAnalyzer.runsOnOneSide(Array(eight.indices), side: side(eight), length: 7, skipCentre: false, rule: .shiftOfSeven, centreName: "mean")
        #expect(shift.map(\.points) == [Array(0...7)] && shift.first?.side == .high)
        // ptd_seven_point_trend: 1:6 no; c(1:3, 3:6) no (a tie breaks it); 1:7 yes; c(2, 1:7, 3) the middle seven; 7:1 falling.
        func trend(_ values: [Double]) -> [[Int]] {
            ChartAnalyzer.monotoneRuns(values.enumerated().map { ($0.offset, $0.element) }, length: 7, ignoreTies: false, rule: .trendOfSeven).map(\.points)
        }
        #expect(trend([1, 2, 3, 4, 5, 6]).isEmpty)
        #expect(trend([1, 2, 3, 3, 4, 5, 6]).isEmpty)
        #expect(trend([1, 2, 3, 4, 5, 6, 7]) == [Array(0...6)])
        #expect(trend([2, 1, 2, 3, 4, 5, 6, 7, 3]) == [Array(1...7)])
        #expect(trend([7, 6, 5, 4, 3, 2, 1]) == [Array(0...6)])
        // Two of three beyond two-thirds of the way to a limit, on one side: mean 0, limits ±3, the 2/3 line at ±2.
        let values: [Double] = [0.5, 2.5, 0.5, 2.5, 0.5, -2.5, 0.5, -2.5]
        let series = values.enumerated().map { ($0.offset, $0.element) }
        let limits = [Double?](repeating: 3, count: values.count), lows = [Double?](repeating: -3, count: values.count)
        let near = [Double?](repeating: 2, count: values.count), nearLows = [Double?](repeating: -2, count: values.count)
        let signals = ChartAnalyzer.twoOfThree(series, side: side(values), lower: lows, upper: limits, nearLower: nearLows, nearUpper: near)
        #expect(signals.map(\.points) == [[1, 3]], "2.5, 0.5, 2.5 on the high side; the low pair is split by a high point")
    }

    @Test("Anhøj: the critical values of qicharts2's Appendix 2 (longest run, fewest crossings)", arguments: [
        (10, 6, 2), (11, 6, 2), (12, 7, 3), (14, 7, 4), (17, 7, 5), (19, 7, 6), (22, 7, 7), (23, 8, 7), (24, 8, 8), (27, 8, 9),
        (29, 8, 10), (31, 8, 11), (34, 8, 12), (36, 8, 13), (38, 8, 14), (41, 8, 15), (43, 8, 16), (45, 8, 17), (46, 9, 17),
        (50, 9, 19), (60, 9, 23), (70, 9, 28), (80, 9, 32), (90, 9, 37), (91, 10, 37), (100, 10, 41),
    ])
    func anhoejTable(n: Int, longestRun: Int, fewestCrossings: Int) {
        let limits = Distributions.anhoejLimits(useful: n)
        #expect(limits.longestRun == longestRun && limits.fewestCrossings == fewestCrossings)
    }

    @Test("IHI runs: 10 points split 5 and 5 allow 3 to 9 runs (Swed–Eisenhart, 2.5% each tail; the IHI table's first row)")
    func runsTable() throws {
        let limits = try #require(Distributions.runsLimits(useful: 10))
        #expect(limits.fewest == 3 && limits.most == 9)
        // The exact distribution for 5 and 5: P(2 runs) = 2/252, P(3 runs) = 8/252.
        let distribution = Distributions.runsDistribution(5, 5)
        #expect(abs(distribution[2]! - 2.0 / 252) < 1e-12 && abs(distribution[3]! - 8.0 / 252) < 1e-12)
        #expect(abs(distribution.values.reduce(0, +) - 1) < 1e-9)
    }

    @Test("IHI run chart rules: a shift of 6 skipping points on the median, a trend of 5 ignoring ties")
    func ihiRules() throws {
        // Median 5; six points above it with one on the median among them.
        let values: [Double] = [1, 2, 3, 4, 9, 8, 5, 9, 8, 9, 7, 5, 2, 1]
        let chart = try ChartAnalyzer.analyse(Self.points(values), options: ChartOptions(kind: .run))
        #expect(chart.centre[0] == 5)
        let shift = try #require(chart.signals.first { $0.rule == .shiftOfSix })
        #expect(shift.points == Array(4...10) && shift.side == .high)
        // 1, 2, 3, 3, 4, 5: five distinct rising steps with a tie among them.
        let trend = try ChartAnalyzer.analyse(Self.points([5, 1, 2, 3, 3, 4, 5, 2, 6, 0, 7, 1]), options: ChartOptions(kind: .run))
        #expect(trend.signals.first { $0.rule == .trendOfFive }?.points == [1, 2, 3, 4, 5, 6])
    }

    /// Montgomery, Introduction to Statistical Quality Control, Example 7.1: 30 samples of 50
    /// orange juice cans; p̄ = 0.2313, UCL 0.4102, LCL 0.0524; samples 15 and 23 are above the UCL.
    @Test("p-chart: Montgomery's orange juice cans")
    func pChart() throws {
        let defective: [Double] = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]
        let points = defective.enumerated().map { ChartPoint(date: Self.date($0.offset), numerator: $0.element, denominator: 50) }
        let chart = try ChartAnalyzer.analyse(points, options: ChartOptions(kind: .p))
        #expect(abs(chart.centre[0]! - 0.2313) < 0.00005)
        #expect(abs(chart.upper[0]! - 0.4102) < 0.00005 && abs(chart.lower[0]! - 0.0524) < 0.00005)
        #expect(chart.signals.filter { $0.rule == .beyondLimit }.map(\.points) == [[14], [22]])
    }

    /// Montgomery, Example 7.x (u chart): 20 samples of 5 personal computers, 193 nonconformities;
    /// ū = 1.93, UCL 3.79, LCL 0.07, no point beyond.
    @Test("u-chart: Montgomery's personal computers, and limits that move with each point's denominator")
    func uChart() throws {
        let counts: [Double] = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]
        let points = counts.enumerated().map { ChartPoint(date: Self.date($0.offset), numerator: $0.element, denominator: 5) }
        let chart = try ChartAnalyzer.analyse(points, options: ChartOptions(kind: .u))
        #expect(abs(chart.centre[0]! - 1.93) < 1e-9)
        #expect(abs(chart.upper[0]! - 3.79) < 0.005 && abs(chart.lower[0]! - 0.07) < 0.005)
        #expect(!chart.signals.contains { $0.rule == .beyondLimit })
        // ū ± 3 √(ū / nᵢ): a point with twice the denominator has limits √2 times closer.
        var varied = points
        varied[3].denominator = 10
        varied[3].numerator = 28
        let moved = try ChartAnalyzer.analyse(varied, options: ChartOptions(kind: .u))
        let centre = moved.centre[3]!
        #expect(abs((moved.upper[3]! - centre) * 2.squareRoot() - (moved.upper[0]! - centre)) < 1e-9)
    }

    @Test("verdicts: a shift above the mean is improving when up is better; a target beyond the limits is consistently passed or failed")
    func verdicts() throws {
        let values = [10, 11, 9, 10, 12, 8, 10, 11, 9, 10, 14, 15, 14, 16, 15, 14, 15].map(Double.init)
        let up = try ChartAnalyzer.analyse(Self.points(values), options: ChartOptions(kind: .xmr, direction: .up, target: 2))
        #expect(up.variation == .improving)
        #expect(up.assurance == .consistentlyPassing, "a target of 2 is below the lower limit, and up is better")
        let down = try ChartAnalyzer.analyse(Self.points(values), options: ChartOptions(kind: .xmr, direction: .down, target: 11))
        #expect(down.variation == .concerning && down.assurance == .inconsistent)
        // A rebase starts a new phase whose limits come from its own points.
        let rebased = try ChartAnalyzer.analyse(Self.points(values), options: ChartOptions(kind: .xmr, direction: .up, rebases: [Self.date(10)]))
        #expect(rebased.phases.count == 2 && abs(rebased.centre[12]! - 14.714) < 0.001)
        #expect(!rebased.signals.contains { $0.rule == .shiftOfSeven })
        // A baseline fixed after 5 points: limits from those 5 only.
        let fixed = try ChartAnalyzer.analyse(Self.points(values), options: ChartOptions(kind: .xmr, baseline: 5))
        #expect(fixed.centre[0] == 10.4 && fixed.phases[0].baselinePoints == 5)
    }

    @Test("bad options are refused with the fix")
    func refusals() {
        #expect(throws: ChartError.self) { try ChartAnalyzer.analyse(Self.points([1, 2, 3]), options: ChartOptions(kind: .run, ruleset: .mdc)) }
        #expect(throws: ChartError.self) { try ChartAnalyzer.analyse(Self.points([1, 2, 3]), options: ChartOptions(kind: .p)) }
        #expect(throws: ChartError.self) { try ChartAnalyzer.analyse(Self.points([1, 2, 3]), options: ChartOptions(kind: .xmr, rebases: ["2099-01-01"])) }
    }
}
