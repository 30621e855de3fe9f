import ArgumentParser
import QISyncDomain

/// `initiative add|list|show|set|delete|restore`.
struct InitiativeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initiative",
        abstract: "Record and change QI initiatives.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Add an initiative (needs --title); prints it with its id.")
        @OptionGroup var fields: InitiativeFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.add(.initiative, fields: fields.values), json: globals.json)
        }
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List initiatives, newest first.")
        @Option(help: "Only initiatives with this status.") var status: String?
        @Flag(help: "Include deleted initiatives.") var deleted = false
        @Option(help: "Show at most this many.") var limit = 1000
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.status = status
            filter.includeDeleted = deleted
            filter.limit = limit
            context.list(try context.records.list(.initiative, filter: filter), kind: .initiative, json: globals.json)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Show an initiative in full, with its content hash.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.showRecord(record.id, as: .initiative, json: globals.json)
        }
    }

    struct Set: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Change fields of an initiative your trust owns.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var fields: InitiativeFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.set(record.id, as: .initiative, fields: fields.values), json: globals.json)
        }
    }

    struct Delete: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an initiative (it can be restored).")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .initiative, exists: false, json: globals.json)
        }
    }

    struct Restore: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted initiative.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.setExists(record.id, as: .initiative, exists: true, json: globals.json)
        }
    }
}
