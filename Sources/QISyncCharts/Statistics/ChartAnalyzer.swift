import Foundation

/// Works out a chart: centre and limits per phase, the signals its ruleset finds, and the
/// verdicts. Pure: no I/O, the same answer for the same points everywhere.
public enum ChartAnalyzer {
    /// NHS "Making Data Count": limits at 2.66 mean moving ranges from the mean.
    public static let xmrLimit = 2.66
    /// Moving ranges above this many times their mean may be left out (Nelson).
    public static let movingRangeScreen = 3.267

    public static func analyse(_ input: [ChartPoint], options: ChartOptions) throws(ChartError) -> ChartAnalysis {
        let kind = options.kind, ruleset = options.ruleset
        switch (kind, ruleset) {
        case (.run, .mdc): throw ChartError("Making Data Count rules need process limits: use an XmR, p or u chart, or --rules ihi or anhoej for a run chart")
        case (.xmr, .ihi), (.p, .ihi), (.u, .ihi): throw ChartError("IHI rules are for run charts: use --chart run, or --rules mdc or anhoej")
        default: break
        }
        if kind == .p || kind == .u {
            if let bad = input.first(where: { $0.numerator == nil || $0.denominator == nil }) {
                throw ChartError("a \(kind.rawValue)-chart needs a numerator and denominator for every point (\(bad.date) has a single value)")
            }
            if kind == .p, let bad = input.first(where: { ($0.numerator ?? 0) > ($0.denominator ?? 0) }) {
                throw ChartError("a p-chart's numerator cannot exceed its denominator (\(bad.date))")
            }
        }
        if let baseline = options.baseline, baseline < 2 { throw ChartError("--baseline needs at least 2 points") }
        let points = input.enumerated().sorted { ($0.element.date, $0.offset) < ($1.element.date, $1.offset) }.map(\.element)
        var notes: [String] = []
        let excluded = points.filter { $0.excludedBecause != nil }.count
        if excluded > 0 { notes.append("\(excluded) excluded \(excluded == 1 ? "point is" : "points are") shown but left out of every calculation") }

        // Phases, split at the rebase dates.
        var starts = [0]
        for date in options.rebases.sorted() {
            guard let index = points.firstIndex(where: { $0.date >= date }) else {
                throw ChartError("no point on or after the rebase date \(date)")
            }
            if index > 0, !starts.contains(index) { starts.append(index) }
        }
        starts.sort()
        var phases: [Phase] = []
        var centre = [Double?](repeating: nil, count: points.count)
        var lower = centre, upper = centre, nearLower = centre, nearUpper = centre
        var signals: [Signal] = []
        for (number, start) in starts.enumerated() {
            let end = number + 1 < starts.count ? starts[number + 1] - 1 : points.count - 1
            guard start <= end else { continue }
            let included = (start...end).filter { points[$0].isIncluded }
            let base = options.baseline.map { Array(included.prefix($0)) } ?? included
            let values = base.map { points[$0].plotted! }
            var phaseCentre: Double
            var meanMovingRange: Double?
            switch kind {
            case .run:
                phaseCentre = Distributions.median(values) ?? .nan
            case .xmr:
                phaseCentre = values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
                var ranges = zip(values, values.dropFirst()).map { abs($1 - $0) }
                if !ranges.isEmpty {
                    var mean = ranges.reduce(0, +) / Double(ranges.count)
                    if options.screenMovingRanges {
                        let kept = ranges.filter { $0 < movingRangeScreen * mean }
                        if kept.count < ranges.count, !kept.isEmpty {
                            notes.append("\(ranges.count - kept.count) moving \(ranges.count - kept.count == 1 ? "range" : "ranges") above 3.267 × their mean left out of the limits")
                            ranges = kept
                            mean = ranges.reduce(0, +) / Double(ranges.count)
                        }
                    }
                    meanMovingRange = mean
                }
            case .p, .u:
                let numerator = base.reduce(0.0) { $0 + points[$1].numerator! }
                let denominator = base.reduce(0.0) { $0 + points[$1].denominator! }
                phaseCentre = denominator > 0 ? numerator / denominator : .nan
            }
            if options.baseline != nil, base.count < (options.baseline ?? 0) {
                notes.append("phase from \(points[start].date) has only \(base.count) of the \(options.baseline!) baseline points")
            }
            guard phaseCentre.isFinite else {
                notes.append("phase from \(points[start].date) has no points to work out a centre from")
                continue
            }
            phases.append(Phase(start: start, end: end, centre: phaseCentre, baselinePoints: base.count, meanMovingRange: meanMovingRange))
            for index in start...end {
                centre[index] = phaseCentre
                switch kind {
                case .run: break
                case .xmr:
                    if let mr = meanMovingRange {
                        lower[index] = phaseCentre - xmrLimit * mr
                        upper[index] = phaseCentre + xmrLimit * mr
                        nearLower[index] = phaseCentre - 2 * xmrLimit / 3 * mr
                        nearUpper[index] = phaseCentre + 2 * xmrLimit / 3 * mr
                    }
                case .p, .u:
                    guard let n = points[index].denominator, n > 0 else { continue }
                    let sigma = kind == .p ? (phaseCentre * (1 - phaseCentre) / n).squareRoot() : (phaseCentre / n).squareRoot()
                    lower[index] = max(0, phaseCentre - 3 * sigma)
                    upper[index] = kind == .p ? min(1, phaseCentre + 3 * sigma) : phaseCentre + 3 * sigma
                    nearLower[index] = phaseCentre - 2 * sigma
                    nearUpper[index] = phaseCentre + 2 * sigma
                }
            }
            if kind == .xmr, meanMovingRange == nil {
                notes.append("phase from \(points[start].date) has fewer than 2 points: no limits")
            }
            // Signals, within the phase, over its included points in order.
            let series = included.map { (index: $0, y: points[$0].plotted!) }
            let side: (Int) -> Int = { index in
                let y = points[index].plotted!
                return y > phaseCentre ? 1 : y < phaseCentre ? -1 : 0
            }
            switch ruleset {
            case .mdc:
                signals += beyondLimits(series, lower: lower, upper: upper)
                signals += runsOnOneSide(series.map(\.index), side: side, length: 7, skipCentre: false, rule: .shiftOfSeven, centreName: "mean")
                signals += monotoneRuns(series, length: 7, ignoreTies: false, rule: .trendOfSeven)
                signals += twoOfThree(series, side: side, lower: lower, upper: upper, nearLower: nearLower, nearUpper: nearUpper)
            case .ihi:
                signals += runsOnOneSide(series.map(\.index), side: side, length: 6, skipCentre: true, rule: .shiftOfSix, centreName: "median")
                signals += monotoneRuns(series, length: 5, ignoreTies: true, rule: .trendOfFive)
                let useful = series.map(\.index).filter { side($0) != 0 }
                if let limits = Distributions.runsLimits(useful: useful.count), useful.count >= 10 {
                    let runs = 1 + zip(useful, useful.dropFirst()).filter { side($0) != side($1) }.count
                    let range = "\(limits.fewest) to \(limits.most) runs are usual for \(useful.count) points off the median"
                    if runs < limits.fewest { signals.append(Signal(rule: .tooFewRuns, points: useful, side: .none, detail: "\(runs) runs; \(range)")) }
                    if runs > limits.most { signals.append(Signal(rule: .tooManyRuns, points: useful, side: .none, detail: "\(runs) runs; \(range)")) }
                } else {
                    notes.append("phase from \(points[start].date): fewer than 10 points off the median, so the number of runs is not judged")
                }
            case .anhoej:
                if kind.hasLimits { signals += beyondLimits(series, lower: lower, upper: upper) }
                let useful = series.map(\.index).filter { side($0) != 0 }
                if useful.count >= 10 {
                    let limits = Distributions.anhoejLimits(useful: useful.count)
                    var longest: [Int] = [], current: [Int] = []
                    for index in useful {
                        if let last = current.last, side(last) != side(index) { current = [] }
                        current.append(index)
                        if current.count > longest.count { longest = current }
                    }
                    if longest.count > limits.longestRun {
                        signals.append(Signal(rule: .longRun, points: longest, side: side(longest[0]) > 0 ? .high : .low,
                                              detail: "a run of \(longest.count); more than \(limits.longestRun) is unusual for \(useful.count) points"))
                    }
                    let crossings = zip(useful, useful.dropFirst()).filter { side($0) != side($1) }.count
                    if crossings < limits.fewestCrossings {
                        signals.append(Signal(rule: .fewCrossings, points: useful, side: .none,
                                              detail: "\(crossings) crossings; fewer than \(limits.fewestCrossings) is unusual for \(useful.count) points"))
                    }
                } else {
                    notes.append("phase from \(points[start].date): fewer than 10 useful points, so the Anhøj rules are not applied")
                }
            }
        }
        let variation = verdict(points: points, kind: kind, signals: signals, phases: phases, direction: options.direction)
        var assurance: Assurance?
        if let target = options.target, kind.hasLimits, options.direction != .neither,
           let last = points.indices.last(where: { lower[$0] != nil && upper[$0] != nil }) {
            let up = options.direction == .up
            if target > upper[last]! { assurance = up ? .consistentlyFailing : .consistentlyPassing }
            else if target < lower[last]! { assurance = up ? .consistentlyPassing : .consistentlyFailing }
            else { assurance = .inconsistent }
        }
        return ChartAnalysis(kind: kind, ruleset: ruleset, points: points, centre: centre, lower: lower, upper: upper,
                             phases: phases, signals: signals, variation: variation, assurance: assurance, notes: notes)
    }

    // MARK: Rules

    static func beyondLimits(_ series: [(index: Int, y: Double)], lower: [Double?], upper: [Double?]) -> [Signal] {
        series.compactMap { point in
            if let high = upper[point.index], point.y > high {
                return Signal(rule: .beyondLimit, points: [point.index], side: .high, detail: "above the upper limit")
            }
            if let low = lower[point.index], point.y < low {
                return Signal(rule: .beyondLimit, points: [point.index], side: .low, detail: "below the lower limit")
            }
            return nil
        }
    }

    /// Runs of `length` or more points on one side of the centre. With `skipCentre`, points
    /// on the centre neither break a run nor count in it (IHI); otherwise they break it (MDC).
    static func runsOnOneSide(_ indices: [Int], side: (Int) -> Int, length: Int, skipCentre: Bool, rule: Rule, centreName: String) -> [Signal] {
        var signals: [Signal] = []
        var run: [Int] = []
        var runSide = 0
        func close() {
            // Points on the centre after the run's last counted point are not part of it.
            while let last = run.last, side(last) == 0 { run.removeLast() }
            let counted = run.filter { side($0) != 0 }
            if counted.count >= length {
                signals.append(Signal(rule: rule, points: run, side: runSide > 0 ? .high : .low,
                                      detail: "\(counted.count) points \(runSide > 0 ? "above" : "below") the \(centreName)"))
            }
        }
        for index in indices {
            let s = side(index)
            if s == 0 {
                if skipCentre { if !run.isEmpty { run.append(index) }; continue }
                close(); run = []; runSide = 0; continue
            }
            if s != runSide { close(); run = []; runSide = s }
            run.append(index)
        }
        close()
        return signals
    }

    /// Runs of `length` or more points each higher (or lower) than the one before. With
    /// `ignoreTies`, a point equal to the one before neither counts nor breaks the run (IHI);
    /// otherwise it breaks it (MDC).
    static func monotoneRuns(_ series: [(index: Int, y: Double)], length: Int, ignoreTies: Bool, rule: Rule) -> [Signal] {
        var signals: [Signal] = []
        guard series.count >= length else { return [] }
        var run: [(index: Int, y: Double)] = [series[0]]
        var direction = 0
        var counted = 1
        func close() {
            if counted >= length {
                signals.append(Signal(rule: rule, points: run.map(\.index), side: direction > 0 ? .high : .low,
                                      detail: "\(counted) points \(direction > 0 ? "rising" : "falling")"))
            }
        }
        for point in series.dropFirst() {
            let last = run.last!
            let step = point.y > last.y ? 1 : point.y < last.y ? -1 : 0
            if step == 0 {
                if ignoreTies { run.append(point); continue }
                close(); run = [point]; direction = 0; counted = 1; continue
            }
            if direction == 0 || step == direction {
                direction = step
                run.append(point)
                counted += 1
            } else {
                close()
                // The turning point starts the next run with its predecessor (and any ties before it).
                let start = run.lastIndex { $0.y != last.y }.map { run.index(after: $0) } ?? 0
                run = Array(run[start...]) + [point]
                direction = step
                counted = 2
            }
        }
        close()
        return signals
    }

    /// Two of three consecutive points beyond two-thirds of the way to a limit (and not beyond
    /// it), all three on the same side of the centre; the points beyond two-thirds are marked.
    static func twoOfThree(_ series: [(index: Int, y: Double)], side: (Int) -> Int, lower: [Double?], upper: [Double?],
                           nearLower: [Double?], nearUpper: [Double?]) -> [Signal] {
        func close(_ point: (index: Int, y: Double)) -> Bool {
            guard let low = lower[point.index], let high = upper[point.index], let nearLow = nearLower[point.index],
                  let nearHigh = nearUpper[point.index] else { return false }
            return (point.y > nearHigh && point.y <= high) || (point.y < nearLow && point.y >= low)
        }
        var marked: [Int: Int] = [:]
        if series.count >= 3 {
            for start in 0...(series.count - 3) {
                let window = Array(series[start..<(start + 3)])
                let sides = window.map { side($0.index) }
                guard abs(sides.reduce(0, +)) == 3 else { continue }
                let near = window.filter(close)
                if near.count >= 2 { for point in near { marked[point.index] = sides[0] } }
            }
        }
        // One signal per stretch of marked points on a side.
        var signals: [Signal] = []
        var group: [Int] = []
        var groupSide = 0
        for point in series {
            if let s = marked[point.index], s == groupSide || group.isEmpty {
                group.append(point.index); groupSide = s
            } else if let s = marked[point.index] {
                signals.append(Signal(rule: .twoOfThree, points: group, side: groupSide > 0 ? .high : .low, detail: "\(groupSide > 0 ? "high" : "low") side"))
                group = [point.index]; groupSide = s
            }
        }
        if !group.isEmpty { signals.append(Signal(rule: .twoOfThree, points: group, side: groupSide > 0 ? .high : .low, detail: "\(groupSide > 0 ? "high" : "low") side")) }
        return signals
    }

    // MARK: Verdicts

    static func verdict(points: [ChartPoint], kind: ChartKind, signals: [Signal], phases: [Phase], direction: ImprovementDirection) -> Variation? {
        guard let last = points.indices.last(where: { points[$0].isIncluded }) else { return nil }
        func judged(_ side: Side, improving: Variation, concerning: Variation, high: Variation, low: Variation) -> Variation {
            switch (direction, side) {
            case (.neither, .high): high
            case (.neither, _): low
            case (.up, .high), (.down, .low): improving
            default: concerning
            }
        }
        if kind.hasLimits {
            guard let signal = signals.last(where: { $0.points.contains(last) && $0.side != .none }) else {
                return signals.contains(where: { $0.points.contains(last) }) ? .nonRandom : .commonCause
            }
            return judged(signal.side, improving: .improving, concerning: .concerning, high: .neitherHigh, low: .neitherLow)
        }
        let lastPhase = phases.last { $0.start <= last && last <= $0.end }
        let inPhase = signals.filter { signal in signal.points.contains { index in lastPhase.map { $0.start <= index && index <= $0.end } ?? false } }
        guard !inPhase.isEmpty else { return .randomRun }
        guard let sided = inPhase.last(where: { $0.side != .none }), direction != .neither else { return .nonRandom }
        return judged(sided.side, improving: .nonRandomImproving, concerning: .nonRandomConcerning, high: .nonRandom, low: .nonRandom)
    }
}
