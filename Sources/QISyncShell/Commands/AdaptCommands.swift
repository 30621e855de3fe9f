import ArgumentParser
import QISyncDomain
import QISyncIdentity

/// `adapt`: records how an improvement from elsewhere was changed to fit here (SOFFT S6).
struct AdaptCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Record a contextualising-experience adaptation of a source initiative.",
        discussion: """
            The source is an initiative held here (give its id), or one held elsewhere \
            (--source-trust, --source-id, --source-hash as its owner's 'initiative show' prints them). \
            The adaptation goes into a new local initiative (--title) or an existing one (--into).
            """)

    @Argument(help: ArgumentHelp("The source initiative's id, when it is held here.", valueName: "SOURCE")) var source: String?
    @Option(name: .customLong("source-trust"), help: "The source's trust code, when it is not held here.") var sourceTrust: String?
    @Option(name: .customLong("source-id"), help: "The source's full id, when it is not held here.") var sourceID: String?
    @Option(name: .customLong("source-hash"), help: "The content hash of the source version adapted, when it is not held here.") var sourceHash: String?
    @Option(help: "Title of a new local initiative to hold the adaptation.") var title: String?
    @Option(help: "An existing local initiative to hold the adaptation.") var into: String?
    @OptionGroup var frame: FrameFields
    @OptionGroup var globals: GlobalOptions

    func run(in context: CommandContext) throws {
        let (initiative, adaptation) = try context.records.adapt(
            source: source, sourceTrust: sourceTrust, sourceID: sourceID, sourceHash: sourceHash,
            into: into, title: title, fields: frame.values, reasons: frame.reason)
        if globals.json {
            context.out.json(["initiative": RecordRendering.json(initiative), "adaptation": RecordRendering.json(adaptation)])
        } else {
            context.out.line("Adapted \(adaptation.text("source-trust"))/\(adaptation.text("source-id").prefix(8)) into initiative \(initiative.id.short) '\(initiative.text("title"))'")
            context.show(adaptation, json: false)
        }
    }
}

/// `lineage ID`: where an improvement came from, and what was made of it.
struct LineageCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Show an initiative's chain of sources and the adaptations made from it.")

    @OptionGroup var record: RecordArgument
    @OptionGroup var globals: GlobalOptions

    func run(in context: CommandContext) throws {
        let steps = try context.records.lineage(record.id)
        if globals.json {
            context.out.json(steps.map { step -> [String: Any] in
                var json: [String: Any] = ["depth": step.depth, "trust": step.trust, "initiative": step.initiative]
                if let title = step.title { json["title"] = title }
                if let adaptation = step.adaptation { json["adaptation"] = RecordRendering.json(adaptation) }
                return json
            })
            return
        }
        for step in steps {
            let indent = String(repeating: "  ", count: step.depth - (steps.first?.depth ?? 0))
            let title = step.title.map { "'\($0)'" } ?? "(not held here)"
            let marker = step.depth == 0 ? "● " : step.depth < 0 ? "↑ " : "↳ "
            var line = "\(indent)\(marker)\(step.trust)/\(step.initiative.prefix(8)) \(title)"
            if let adaptation = step.adaptation {
                let how = [adaptation.text("nature"), adaptation.text("what"), adaptation.text("fidelity")].filter { !$0.isEmpty }.joined(separator: ", ")
                line += step.depth <= 0 ? "  — adapted into the next by \(adaptation.id.short)" : "  — adaptation \(adaptation.id.short)"
                if !how.isEmpty { line += " (\(how))" }
            }
            context.out.line(line)
        }
    }
}

/// `share ID`: publishes a record to other trusts.
struct ShareCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "share",
        abstract: "Publish a record to the shared log, for other trusts.",
        discussion: """
            Appends the record's whole current state to this site's shared log; later edits follow it there. \
            First the PII guard scans its text: an NHS number (valid check digit), or a date of birth or \
            postcode next to a patient word, refuses the share and names the field. An IG lead may override \
            with --override-pii and a reason, which is recorded with the record.
            """)
    @OptionGroup var record: RecordArgument
    @Flag(name: .customLong("override-pii"), help: "IG lead only: share despite the PII guard (needs --reason).") var overridePII = false
    @Option(help: "Why the override is safe (10 to 500 characters); recorded with the record.") var reason: String?
    @Flag(name: .customLong("with-related"), help: "For an initiative: share its PDSA cycles, learning entries, adaptations and measures (with their data) with it.") var withRelated = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        guard overridePII == (reason != nil) else {
            throw DomainError(overridePII ? "--override-pii needs --reason \"why it is safe\"" : "--reason goes with --override-pii")
        }
        let view = try context.records.share(record.id, overrideReason: reason, withRelated: withRelated)
        context.show(view, json: globals.json)
        if view.kind == .initiative || view.kind == .measure, !globals.json {
            let left = try context.records.unsharedRelated(of: view.id, kind: view.kind)
            if !left.isEmpty {
                let names: [RecordKind: (String, String)] = [.pdsa: ("PDSA cycle", "PDSA cycles"), .learning: ("learning entry", "learning entries"),
                                                             .adaptation: ("adaptation", "adaptations"), .measure: ("measure", "measures"),
                                                             .datapoint: ("data point", "data points"), .chartEvent: ("chart event", "chart events")]
                var counts: [String] = []
                for kind in [RecordKind.pdsa, .learning, .adaptation, .measure, .datapoint, .chartEvent] {
                    let count = left.filter { $0.kind == kind }.count
                    if count > 0, let name = names[kind] { counts.append(Plural.count(count, name.0, name.1)) }
                }
                let list = counts.count > 1 ? counts.dropLast().joined(separator: ", ") + " and " + counts.last! : counts[0]
                context.out.line("Not shared with it: \(list); 'share \(view.id.short) --with-related' shares them too.")
            }
        }
    }
}

/// `unshare ID`: stops publishing a record.
struct UnshareCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "unshare",
        abstract: "Stop publishing a record; later edits stay inside the trust.",
        discussion: "What was already sent to other trusts cannot be recalled.")
    @OptionGroup var record: RecordArgument
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        context.show(try context.records.unshare(record.id), json: globals.json)
    }
}

/// `adaptation list|show|set|delete|restore`: adaptations, like the other records (`adapt` makes them).
struct AdaptationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adaptation",
        abstract: "List, show, change, delete and restore adaptations ('adapt SOURCE' records a new one).",
        subcommands: [List.self, Show.self, Set.self, Delete.self, Restore.self])

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List adaptations, newest first.")
        @Option(help: "Only the adaptations held by this local initiative.") var initiative: String?
        @Flag(help: "Include deleted adaptations.") var deleted = false
        @Option(help: "Show at most this many (default 100).") var limit = CommandContext.pageSize
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.initiative = initiative
            filter.includeDeleted = deleted
            filter.limit = try ListFilter.checked(limit: limit)
            context.list(try context.records.list(.adaptation, filter: filter), kind: .adaptation, json: globals.json, limit: filter.limit)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Show an adaptation in full.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.showRecord(record.id, as: .adaptation, json: globals.json)
        }
    }

    struct Set: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Change an adaptation's FRAME fields, outcome and reasons (its source stays).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var frame: FrameFields
        @Option(name: .customLong("remove-reason"), help: "Remove a contextual reason (repeatable).") var removeReason: [String] = []
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.set(record.id, as: .adaptation, fields: frame.values,
                                                 addTags: ["reason": frame.reason], removeTags: ["reason": removeReason]), json: globals.json)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an adaptation (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .adaptation, exists: false, json: globals.json)
        }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted adaptation.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .adaptation, exists: true, json: globals.json)
        }
    }
}

/// `redact ID FIELD… --reason`: the IG lead removes text typed by mistake, everywhere.
struct RedactCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "redact",
        abstract: "On the hub (IG lead): replace a record's text fields, now and in its history, with [redacted] on every replica, with a reason.",
        discussion: """
            For patient details or an NHS number typed by mistake. Every value the fields have held is replaced here at once, and on each replica as the signed redaction reaches it with syncs and bundles; the logs still verify, and each replica records the redaction for audit. It cannot be undone.
            """)
    @OptionGroup var record: RecordArgument
    @Argument(help: ArgumentHelp("The text fields to redact (e.g. text, title, aim).", valueName: "FIELD")) var fields: [String]
    @Option(help: "Why (10 to 500 characters; recorded on every replica).") var reason: String?
    @Flag(help: "Redact without asking (needed in scripts).") var yes = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        guard let reason else { throw DomainError("redact needs --reason \"why\" (10 to 500 characters; it is recorded on every replica)") }
        let (view, values) = try context.records.redactionPreview(record.id, fields: fields)
        guard values.contains(where: { !$0.values.isEmpty }) else {
            throw DomainError("nothing to redact: \(fields.joined(separator: ", ")) of \(view.kind.rawValue) \(view.id.short) hold no text")
        }
        if !globals.json {
            context.out.line("These values of \(view.kind.rawValue) \(view.id.short) will be replaced by \(Redaction.marker), here and on every replica:")
            for (field, texts) in values {
                for text in texts { context.out.line("  \(field): \(text.count > 100 ? String(text.prefix(97)) + "…" : text)") }
            }
        }
        guard try context.confirm("Redact them? This cannot be undone.", yes: yes, what: "redacting") else {
            context.out.line("not redacted; nothing changed")
            return
        }
        let (after, entries) = try context.records.redact(record.id, fields: fields, reason: reason)
        if globals.json {
            var json = RecordRendering.json(after)
            json["redacted_entries"] = entries
            context.out.json(json)
            return
        }
        context.out.line("redacted \(fields.joined(separator: ", ")) of \(after.kind.rawValue) \(after.id.short) in \(Plural.count(entries, "entry", "entries")); the redaction reaches every replica with its next sync or bundle, and 'audit' records it")
    }
}
