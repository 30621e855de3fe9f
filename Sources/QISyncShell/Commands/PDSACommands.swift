import ArgumentParser
import QISyncDomain

/// `pdsa add|list|show|close`.
struct PDSACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pdsa",
        abstract: "Record Plan-Do-Study-Act cycles.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Close.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Add a PDSA cycle to an initiative (needs --change-idea); numbered automatically.")
        @Argument(help: ArgumentHelp("The initiative's id or unique prefix.", valueName: "INITIATIVE")) var initiative: String
        @Option(help: "The cycle's number (default: the next one).") var number: String?
        @OptionGroup var fields: PDSAFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var values = fields.values
            values["initiative"] = initiative
            if let number { values["number"] = number }
            context.show(try context.records.add(.pdsa, fields: values), json: globals.json)
        }
        static let slots = CommandSlots<Self>(text: ["number": \.number], arguments: [\.initiative])
            .including(\.fields, PDSAFields.slots).including(\.globals, GlobalOptions.slots)
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List PDSA cycles.")
        @Option(help: "Only the cycles of this initiative.") var initiative: String?
        @Flag(help: "Include deleted cycles.") var deleted = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.initiative = initiative
            filter.includeDeleted = deleted
            context.list(try context.records.list(.pdsa, filter: filter), kind: .pdsa, json: globals.json, limit: filter.limit)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Show a PDSA cycle in full.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.showRecord(record.id, as: .pdsa, json: globals.json)
        }
    }

    struct Set: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Change fields of a PDSA cycle (plan, observations, study…).")
        @OptionGroup var record: RecordArgument
        @Option(help: "Renumber the cycle (numbers are unique within an initiative).") var number: String?
        @OptionGroup var fields: PDSAFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var values = fields.values
            values["number"] = number
            context.show(try context.records.set(record.id, as: .pdsa, fields: values), json: globals.json)
        }
        static let slots = CommandSlots<Self>(text: ["number": \.number]).including(\.record, RecordArgument.slots)
            .including(\.fields, PDSAFields.slots).including(\.globals, GlobalOptions.slots)
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a PDSA cycle (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .pdsa, exists: false, json: globals.json)
        }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted PDSA cycle (with --number N when its number is now another cycle's).")
        @OptionGroup var record: RecordArgument
        @Option(help: "Give the restored cycle this number.") var number: String?
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.setExists(record.id, as: .pdsa, exists: true, fields: number.map { ["number": $0] } ?? [:]), json: globals.json)
        }
    }

    struct Close: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Close a cycle: study and act (adopt, adapt or abandon).")
        @OptionGroup var record: RecordArgument
        @Option(help: "adopt, adapt or abandon.") var act: String
        @OptionGroup var fields: PDSAFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.closeCycle(record.id, act: act, fields: fields.values), json: globals.json)
        }
    }
}

/// `log add|list`: the learning log.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Record and browse the learning log.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Add a learning entry with its SOFFTs, skill kinds and culture features.")
        @Argument(help: "What was learnt (in the shell, \\n within double quotes starts a new paragraph).") var text: String
        @Option(help: "The initiative it belongs to.") var initiative: String?
        @Option(help: "The PDSA cycle it came from.") var pdsa: String?
        @Option(help: "The day, YYYY-MM-DD (default today).") var date: String?
        @Option(help: "helped, hindered or neutral (default neutral).") var effect: String?
        @Option(help: "A SOFFT it shows, S1-S6 (repeatable).") var sofft: [String] = []
        @Option(help: "A skill kind: technical, soft or learning (repeatable).") var skill: [String] = []
        @Option(help: "A culture feature: respectful-dialogue, confronting-failure, rewarding-suggestions, efficient-structures (repeatable).")
        var culture: [String] = []
        @Flag(name: .customLong("allow-future"), help: "Accept a --date after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let fields = ["text": text, "initiative": initiative, "pdsa": pdsa, "date": date, "effect": effect].compactMapValues { $0 }
            context.show(try context.records.add(.learning, fields: fields, tags: ["sofft": sofft, "skill": skill, "culture": culture],
                                                 allowFuture: allowFuture), json: globals.json)
        }
        static let slots = CommandSlots<Self>(
            text: ["initiative": \.initiative, "pdsa": \.pdsa, "date": \.date, "effect": \.effect],
            lists: ["sofft": \.sofft, "skill": \.skill, "culture": \.culture], arguments: [\.text], flags: ["allow-future"])
            .including(\.globals, GlobalOptions.slots)
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List learning entries, newest first, with filters.")
        @Option(help: "Only entries of this initiative.") var initiative: String?
        @Option(help: "Only entries showing this SOFFT (S1-S6).") var sofft: String?
        @Option(help: "Only entries using this skill kind.") var skill: String?
        @Option(help: "Only entries with this culture feature.") var culture: String?
        @Option(help: "Only entries with this effect.") var effect: String?
        @Option(help: "Entries on or after this date (YYYY-MM-DD).") var from: String?
        @Option(help: "Entries on or before this date (YYYY-MM-DD).") var to: String?
        @Flag(help: "Include deleted entries.") var deleted = false
        @Option(help: "Show at most this many (default 100).") var limit = CommandContext.pageSize
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.initiative = initiative
            filter.sofft = sofft
            filter.skill = skill
            filter.culture = culture
            filter.effect = effect
            filter.from = from
            filter.to = to
            filter.includeDeleted = deleted
            filter.limit = try ListFilter.checked(limit: limit)
            context.list(try context.records.list(.learning, filter: filter), kind: .learning, json: globals.json, limit: filter.limit)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Show a learning entry in full.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.showRecord(record.id, as: .learning, json: globals.json)
        }
    }

    struct Set: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Change a learning entry: its fields, and tags added or removed.")
        @OptionGroup var record: RecordArgument
        @Option(help: "What was learnt.") var text: String?
        @Option(help: "The initiative it belongs to (\"\" for none).") var initiative: String?
        @Option(help: "The PDSA cycle it came from (\"\" for none).") var pdsa: String?
        @Option(help: "The day, YYYY-MM-DD.") var date: String?
        @Option(help: "helped, hindered or neutral.") var effect: String?
        @Option(name: .customLong("add-sofft"), help: "Add a SOFFT, S1-S6 (repeatable).") var addSofft: [String] = []
        @Option(name: .customLong("remove-sofft"), help: "Remove a SOFFT (repeatable).") var removeSofft: [String] = []
        @Option(name: .customLong("add-skill"), help: "Add a skill kind (repeatable).") var addSkill: [String] = []
        @Option(name: .customLong("remove-skill"), help: "Remove a skill kind (repeatable).") var removeSkill: [String] = []
        @Option(name: .customLong("add-culture"), help: "Add a culture feature (repeatable).") var addCulture: [String] = []
        @Option(name: .customLong("remove-culture"), help: "Remove a culture feature (repeatable).") var removeCulture: [String] = []
        @Flag(name: .customLong("allow-future"), help: "Accept a --date after today.") var allowFuture = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let fields = ["text": text, "initiative": initiative, "pdsa": pdsa, "date": date, "effect": effect].compactMapValues { $0 }
            context.show(try context.records.set(record.id, as: .learning, fields: fields,
                                                 addTags: ["sofft": addSofft, "skill": addSkill, "culture": addCulture],
                                                 removeTags: ["sofft": removeSofft, "skill": removeSkill, "culture": removeCulture],
                                                 allowFuture: allowFuture),
                         json: globals.json)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a learning entry (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .learning, exists: false, json: globals.json)
        }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted learning entry.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .learning, exists: true, json: globals.json)
        }
    }
}
