/// The QI vocabularies records are tagged with (see DOMAIN.md).
public enum Vocabulary {
    /// The six socio-organisational functional and facilitative tasks ("Able to improve?", 2020).
    public static let soffts: [(code: String, label: String)] = [
        ("S1", "adopting and promulgating the appropriate style and tone"),
        ("S2", "managing the QI roller-coaster"),
        ("S3", "getting the problem and solution right"),
        ("S4", "communicating the right message to the right people"),
        ("S5", "enabling learning to occur"),
        ("S6", "contextualising experience"),
    ]
    /// Skill kinds of the "Skilled for improvement?" pyramid.
    public static let skillKinds = ["technical", "soft", "learning"]
    /// Culture features found where improvement succeeded.
    public static let cultureFeatures = ["respectful-dialogue", "confronting-failure", "rewarding-suggestions", "efficient-structures"]
    /// Effects a learning entry records.
    public static let effects = ["helped", "hindered", "neutral"]
    /// Improvement methods.
    public static let methods = ["model-for-improvement", "lean", "qsir", "other"]
    /// Initiative statuses.
    public static let statuses = ["proposed", "active", "sustaining", "closed", "abandoned"]
    /// PDSA "act" decisions.
    public static let acts = ["adopt", "adapt", "abandon"]
    /// FRAME: when the modification was made.
    public static let frameWhen = ["pre-implementation", "implementation", "scale-up", "sustainment"]
    /// FRAME: planned or reactive.
    public static let framePlanned = ["planned", "reactive"]
    /// FRAME: what was modified.
    public static let frameWhat = ["content", "context", "training", "implementation"]
    /// FRAME: the nature of the modification.
    public static let frameNature = ["add", "remove", "tailor", "reorder", "substitute", "integrate", "repeat", "lengthen", "shorten", "loosen", "condense"]
    /// FRAME: fidelity to core functions.
    public static let fidelity = ["consistent", "inconsistent", "unknown"]
    /// Contextual reasons for an adaptation.
    public static let reasons = ["staffing", "patient-population", "estate", "it", "culture", "resources"]

    /// Measures: what a measure tells (DOMAIN.md, Measurement).
    public static let measureKinds = ["outcome", "process", "balancing"]
    /// Measures: what a value is.
    public static let units = ["count", "percent", "rate", "time", "days-between"]
    /// Measures: which way is better.
    public static let directions = ["up", "down", "neither"]
    /// Measures: how often data are collected.
    public static let frequencies = ["day", "week", "month"]
    /// Measures: the chart drawn unless told otherwise.
    public static let charts = ["xmr", "run", "p", "u"]
    /// Chart events: a new phase, a baseline fixed after some points, or a note on a date.
    public static let eventTypes = ["rebase", "baseline", "annotation"]

    /// The IHI progress score's meaning at each half step.
    public static let ihiScores: [Double: String] = [
        0.5: "intent", 1.0: "charter and team", 1.5: "planning", 2.0: "activity, no changes", 2.5: "changes tested",
        3.0: "modest improvement", 3.5: "improvement", 4.0: "significant improvement", 4.5: "sustainability",
        5.0: "outstanding and sustained",
    ]

    /// The six SOFFT codes, listed for an error message.
    public static var sofftList: String { soffts.map { "\($0.code) \($0.label)" }.joined(separator: "; ") }
}
