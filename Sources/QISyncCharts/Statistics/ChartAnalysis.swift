/// One data point as a chart sees it.
public struct ChartPoint: Sendable, Equatable {
    /// The period, `YYYY-MM-DD`.
    public var date: String
    /// The value (for an XmR or run chart), or nil when the point is a numerator and denominator.
    public var value: Double?
    /// The numerator and denominator (for a p- or u-chart).
    public var numerator: Double?
    public var denominator: Double?
    /// Left out of every calculation (kept on the chart, marked), with the reason.
    public var excludedBecause: String?

    public init(date: String, value: Double? = nil, numerator: Double? = nil, denominator: Double? = nil, excludedBecause: String? = nil) {
        self.date = date
        self.value = value
        self.numerator = numerator
        self.denominator = denominator
        self.excludedBecause = excludedBecause
    }

    /// The value plotted: the value, or numerator ÷ denominator.
    public var plotted: Double? {
        if let value { return value }
        guard let numerator, let denominator, denominator > 0 else { return nil }
        return numerator / denominator
    }

    /// Whether calculations use it.
    public var isIncluded: Bool { excludedBecause == nil && plotted != nil }
}

/// Which way is better.
public enum ImprovementDirection: String, Sendable, CaseIterable {
    case up, down, neither
}

/// The kinds of chart.
public enum ChartKind: String, Sendable, CaseIterable {
    /// Individuals (XmR), NHS "Making Data Count".
    case xmr
    /// Run chart: the median, no limits.
    case run
    /// Proportion, limits varying with each point's denominator.
    case p
    /// Rate per unit, limits varying with each point's denominator.
    case u

    /// Whether it has process limits.
    public var hasLimits: Bool { self != .run }
}

/// The sets of rules that find signals.
public enum Ruleset: String, Sendable, CaseIterable {
    /// NHS "Making Data Count": beyond a limit, 7 on one side of the mean, 7 rising or falling,
    /// two of three beyond two-thirds of the way to a limit.
    case mdc
    /// IHI run chart rules: shift of 6, trend of 5, too few or too many runs.
    case ihi
    /// Anhøj: an unusually long run, unusually few crossings (and, on a control chart, beyond a limit).
    case anhoej

    /// Its name for people.
    public var title: String {
        switch self {
        case .mdc: "NHS Making Data Count"
        case .ihi: "IHI run chart rules"
        case .anhoej: "Anhøj rules"
        }
    }
}

/// A rule that fired.
public enum Rule: String, Sendable, Equatable {
    case beyondLimit = "beyond a process limit"
    case shiftOfSeven = "shift (7 or more points on one side of the mean)"
    case trendOfSeven = "trend (7 or more points rising or falling)"
    case twoOfThree = "2 of 3 points beyond two-thirds of the way to a limit"
    case shiftOfSix = "shift: 6 or more points on one side of the median"
    case trendOfFive = "trend: 5 or more points rising or falling"
    case tooFewRuns = "too few runs"
    case tooManyRuns = "too many runs"
    case longRun = "an unusually long run"
    case fewCrossings = "unusually few crossings"
}

/// Which side of the centre a signal lies on.
public enum Side: String, Sendable {
    case high, low, none
}

/// A signal: a rule that fired, and the points it concerns.
public struct Signal: Sendable, Equatable {
    public let rule: Rule
    /// Indices into the chart's points.
    public let points: [Int]
    public let side: Side
    /// What it says, with numbers (e.g. "9 runs; fewer than 6 is unusual for 20 points").
    public let detail: String
}

/// A phase: the points between rebases, with its centre and (per point) limits.
public struct Phase: Sendable, Equatable {
    /// The first and last point's index.
    public let start: Int
    public let end: Int
    /// The centre line (mean, median, p̄ or ū).
    public let centre: Double
    /// How many points the centre and limits were worked out from (a fixed baseline, or all included).
    public let baselinePoints: Int
    /// For an XmR chart, the mean moving range the limits come from.
    public let meanMovingRange: Double?
}

/// The verdict on variation, from the latest point.
public enum Variation: String, Sendable {
    case commonCause = "common cause variation"
    case improving = "special cause variation: improving"
    case concerning = "special cause variation: concerning"
    case neitherHigh = "special cause variation: higher (no direction of improvement set)"
    case neitherLow = "special cause variation: lower (no direction of improvement set)"
    case randomRun = "no non-random signal"
    case nonRandomImproving = "non-random signal: improving"
    case nonRandomConcerning = "non-random signal: concerning"
    case nonRandom = "non-random signal"
}

/// Whether the process will meet its target, from the latest limits.
public enum Assurance: String, Sendable {
    case consistentlyPassing = "consistently passing the target"
    case consistentlyFailing = "consistently failing the target"
    case inconsistent = "will pass and fail the target at random (hit and miss)"
}

/// What a chart shows: every point with its centre and limits, the phases, the signals and the verdicts.
public struct ChartAnalysis: Sendable {
    public let kind: ChartKind
    public let ruleset: Ruleset
    public let points: [ChartPoint]
    /// Per point: the centre and limits in force at it (limits nil on a run chart or with too few points).
    public let centre: [Double?]
    public let lower: [Double?]
    public let upper: [Double?]
    public let phases: [Phase]
    public let signals: [Signal]
    public let variation: Variation?
    public let assurance: Assurance?
    /// Notes for people: too few points for a rule, points excluded, limits clipped.
    public let notes: [String]

    /// The points each signal marks, with the signal's side.
    public var signalled: [Int: Side] {
        var marks: [Int: Side] = [:]
        for signal in signals { for point in signal.points { marks[point] = signal.side } }
        return marks
    }
}

/// What a chart needs besides its points.
public struct ChartOptions: Sendable {
    public var kind: ChartKind
    public var ruleset: Ruleset
    public var direction: ImprovementDirection
    public var target: Double?
    /// Dates a new phase starts on (limits worked out again from there).
    public var rebases: [String]
    /// Work out each phase's centre and limits from its first N included points only.
    public var baseline: Int?
    /// XmR: leave out moving ranges above 3.267 × their mean before working out the limits.
    public var screenMovingRanges: Bool

    public init(kind: ChartKind, ruleset: Ruleset? = nil, direction: ImprovementDirection = .neither, target: Double? = nil,
                rebases: [String] = [], baseline: Int? = nil, screenMovingRanges: Bool = false) {
        self.kind = kind
        self.ruleset = ruleset ?? (kind == .run ? .ihi : .mdc)
        self.direction = direction
        self.target = target
        self.rebases = rebases
        self.baseline = baseline
        self.screenMovingRanges = screenMovingRanges
    }
}

/// A chart's options that do not fit its data.
public struct ChartError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
