import ArgumentParser
import QISyncCore
import QISyncDomain

/// `initiative add|list|show|set|delete|restore`.
struct InitiativeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initiative",
        abstract: "Record and change QI initiatives.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Delete.self, Restore.self])

    struct Add: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Add an initiative (needs --title); prints it with its id.")
        @OptionGroup var fields: InitiativeFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.add(.initiative, fields: fields.values), json: globals.json)
        }
        static let slots = CommandSlots<Self>().including(\.fields, InitiativeFields.slots).including(\.globals, GlobalOptions.slots)
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List initiatives, newest first.")
        @Option(help: "Only initiatives with this status.") var status: String?
        @Flag(help: "Include deleted initiatives.") var deleted = false
        @Option(help: "Show at most this many (default 100).") var limit = CommandContext.pageSize
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            var filter = ListFilter()
            filter.status = status
            filter.includeDeleted = deleted
            filter.limit = try ListFilter.checked(limit: limit)
            context.list(try context.records.list(.initiative, filter: filter), kind: .initiative, json: globals.json, limit: filter.limit)
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an initiative in full, with its content hash, its PDSA cycles, learning entries and adaptations.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let (_, id) = try context.records.locate(record.id, as: .initiative)
            let view = try context.records.record(.initiative, id)
            var filter = ListFilter()
            filter.initiative = id.hex
            let cycles = try context.records.list(.pdsa, filter: filter)
            let learning = try context.records.list(.learning, filter: filter)
            let adaptations = try context.records.list(.adaptation, filter: filter)
            let adaptedFrom = try context.records.adaptations(of: id)
            if globals.json {
                var json = RecordRendering.json(view)
                json["content_hash"] = context.records.contentHash(of: view)
                json["pdsa"] = cycles.map(RecordRendering.json)
                json["learning"] = learning.map(RecordRendering.json)
                json["adaptations"] = adaptations.map(RecordRendering.json)
                json["adapted_elsewhere"] = adaptedFrom.map(RecordRendering.json)
                context.out.json(json)
                return
            }
            context.show(view, json: false)
            for (title, kind, views) in [("PDSA cycles", RecordKind.pdsa, cycles), ("learning entries", .learning, learning),
                                         ("adaptations it holds", .adaptation, adaptations)]
                where !views.isEmpty {
                context.out.line()
                context.out.line("\(title) (\(views.count))")
                context.out.table(RecordRendering.listColumns(kind), views.map(RecordRendering.listRow))
            }
            if !adaptedFrom.isEmpty {
                context.out.line()
                context.out.line("adaptations made from it (\(adaptedFrom.count))")
                context.out.table(["id", "into initiative", "trust", "title", "nature", "fidelity"], adaptedFrom.map { adaptation in
                    let into = adaptation.text("initiative")
                    var held: RecordView?
                    if case .blob(let bytes)? = adaptation.values["initiative"], let id = try? RecordID(bytes: bytes) {
                        held = try? context.records.record(.initiative, id)
                    }
                    return [adaptation.id.short, String(into.prefix(RecordID.shortLength)), adaptation.ownerTrust,
                            held?.text("title") ?? "(not held here)", adaptation.text("nature"), adaptation.text("fidelity")]
                })
            }
        }
    }

    struct Set: ReplicaCommand, TemplatedCommand {
        static let configuration = CommandConfiguration(abstract: "Change fields of an initiative your trust owns.")
        @OptionGroup var record: RecordArgument
        @OptionGroup var fields: InitiativeFields
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            context.show(try context.records.set(record.id, as: .initiative, fields: fields.values), json: globals.json)
        }
        static let slots = CommandSlots<Self>().including(\.record, RecordArgument.slots)
            .including(\.fields, InitiativeFields.slots).including(\.globals, GlobalOptions.slots)
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
