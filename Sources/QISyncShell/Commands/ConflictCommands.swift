import ArgumentParser
import QISyncCore
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
                ["kind": conflict.kind.rawValue, "id": conflict.id.hex, "field": conflict.field, "owner": conflict.owner, "yours_to_settle": conflict.isOwn,
                 "type": conflict.isUniqueClash ? (conflict.kind == .pdsa ? "shared-number" : "shared-period") : "concurrent-values",
                 "values": conflict.heads.map { ["value": $0.value, "site": $0.site, "time": Times.json($0.milliseconds), "detail": $0.detail] }]
            })
            return
        }
        let own = conflicts.filter(\.isOwn), theirs = conflicts.filter { !$0.isOwn }
        func rows(_ list: [ConflictView]) -> [[String]] {
            var rows: [[String]] = []
            for conflict in list {
                for (index, head) in conflict.heads.enumerated() {
                    rows.append(index == 0 ? [conflict.kind.rawValue, conflict.id.short, conflict.field] : ["", "", ""])
                    rows[rows.count - 1] += ["\(index + 1)", head.detail.isEmpty ? head.value : "\(head.value): \(head.detail)", head.site,
                                             context.times.text(head.milliseconds)]
                }
            }
            return rows
        }
        context.out.table(["kind", "id", "field", "#", "value", "site", "time"], rows(own))
        if own.contains(where: { $0.field == "exists" }) {
            context.out.line("A record deleted at one site while edited at another: 'resolve ID exists --keep' keeps it with every edit, '--delete' deletes it.")
        }
        if own.contains(where: { $0.isUniqueClash && $0.kind == .pdsa }) {
            context.out.line("PDSA cycles of one initiative sharing a number: give one of them a new number with 'pdsa set ID --number N'.")
        }
        if own.contains(where: { $0.isUniqueClash && $0.kind == .datapoint }) {
            context.out.line("Data points of one measure sharing a period: give one another period with 'data set ID --period DATE', or delete one.")
        }
        if own.contains(where: { !$0.isUniqueClash }) { context.out.line("Resolve with: resolve ID FIELD --use N   (or --value TEXT)") }
        if !theirs.isEmpty {
            context.out.line()
            context.out.line("Conflicts on other trusts' records (theirs to settle; they will reach you when they do):")
            context.out.table(["kind", "id", "field", "#", "value", "site", "time"], rows(theirs))
        }
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
    @Flag(help: "For 'exists': keep the record, with every edit made to it.") var keep = false
    @Flag(help: "For 'exists': delete the record.") var delete = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        var value = self.value
        if keep || delete {
            guard !(keep && delete), value == nil, use == nil else { throw DomainError("give one of --keep, --delete, --use N or --value TEXT") }
            value = keep ? "keep" : "delete"
        }
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
        func note(_ relation: HistoryLine.Relation) -> String {
            switch relation {
            case .edit: ""
            case .concurrent(let sites): "concurrent with " + sites.joined(separator: ", ")
            case .resolution(let count): "resolved \(count) values"
            }
        }
        if globals.json {
            context.out.json(lines.map { line -> [String: Any] in
                var json: [String: Any] = ["time": Times.json(line.milliseconds), "site": line.site, "entry": line.entry, "field": line.field,
                                           "old": line.old, "new": line.new]
                switch line.relation {
                case .edit: json["relation"] = "edit"
                case .concurrent(let sites): json["relation"] = "concurrent"; json["concurrent_with"] = sites
                case .resolution(let count): json["relation"] = "resolution"; json["resolved"] = count
                }
                return json
            })
        } else {
            context.out.table(["time", "site", "field", "change", "note"], lines.map {
                [context.times.text($0.milliseconds, seconds: true), $0.site, $0.field, $0.old.isEmpty ? $0.new : "\($0.old) → \($0.new)", note($0.relation)]
            })
        }
    }
}
