import ArgumentParser
import QISyncDomain

/// `conflicts`: every field edited concurrently at two sites, with the competing values.
struct ConflictsCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List fields with concurrent edits; the first value listed is the one shown.")
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let conflicts = try context.records.conflicts()
        if globals.json {
            context.out.json(conflicts.map { conflict -> [String: Any] in
                ["kind": conflict.kind.rawValue, "id": conflict.id.hex, "field": conflict.field,
                 "values": conflict.heads.map { ["value": $0.value, "site": $0.site, "time": $0.time] }]
            })
            return
        }
        var rows: [[String]] = []
        for conflict in conflicts {
            for (index, head) in conflict.heads.enumerated() {
                rows.append(index == 0 ? [conflict.kind.rawValue, conflict.id.short, conflict.field] : ["", "", ""])
                rows[rows.count - 1] += ["\(index + 1)", head.value, head.site, head.time]
            }
        }
        context.out.table(["kind", "id", "field", "#", "value", "site", "time"], rows)
        if !conflicts.isEmpty { context.out.line("Resolve with: resolve ID FIELD --use N   (or --value TEXT)") }
    }
}

/// `resolve ID FIELD`: settles a conflict.
struct ResolveCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Resolve a conflicted field by picking one of its values or giving a new one.",
        discussion: "FIELD is a field name, 'exists' (delete against edit), or TAGSET:TAG (e.g. sofft:S3).")
    @OptionGroup var record: RecordArgument
    @Argument(help: "The conflicted field.") var field: String
    @Option(help: "Keep value N as 'conflicts' numbers them.") var use: Int?
    @Option(help: "Write this value instead.") var value: String?
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        context.show(try context.records.resolve(record.id, field: field, pick: use, value: value), json: globals.json)
    }
}

/// `history ID`: every change to a record.
struct HistoryCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show every change to a record: when, which site, old → new.")
    @OptionGroup var record: RecordArgument
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let lines = try context.records.history(record.id)
        if globals.json {
            context.out.json(lines.map { ["time": $0.time, "site": $0.site, "entry": $0.entry, "field": $0.field, "old": $0.old, "new": $0.new] })
        } else {
            context.out.table(["time", "site", "field", "change"], lines.map { [$0.time, $0.site, $0.field, $0.old.isEmpty ? $0.new : "\($0.old) → \($0.new)"] })
        }
    }
}
