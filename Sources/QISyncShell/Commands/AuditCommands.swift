import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

/// `audit`: sync sessions and refused entries, on screen or exported as evidence.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List sync sessions (peer, time, direction, counts, outcome) and refused entries with reasons; 'audit export' writes them as CSV or JSON.",
        subcommands: [Show.self, Export.self],
        defaultSubcommand: Show.self)

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the most recent sessions and refusals.")
        @Option(help: "How many of each to show.") var limit = 20
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            guard limit > 0 else { throw DomainError("--limit must be at least 1") }
            let trail = try AuditTrail(replica: context.records.replica, limit: limit)
            if globals.json {
                context.out.json(trail.json)
                return
            }
            context.out.line("sync sessions (newest first)")
            context.out.table(AuditTrail.sessionColumns, trail.sessionRows, wholeLastColumn: true)
            context.out.line()
            context.out.line("refused entries (newest first)")
            let rows = trail.refusalRows.map { row in [row[0], row[1], String(row[2].prefix(16)), row[3], row[4], row[5], row[6]] }
            context.out.table(AuditTrail.refusalColumns, rows, wholeLastColumn: true)
        }
    }

    struct Export: ReplicaCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Write every session and refusal to a file, as evidence.")
        enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json }
        @Argument(help: ArgumentHelp("The file to write (it must not exist).", valueName: "FILE")) var file: String
        @Option(help: "csv (two sections: sessions, then refusals) or json.") var format: Format?
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            guard !FileManager.default.fileExists(atPath: file) else { throw DomainError("\(file) exists; choose a new file name") }
            let format = self.format ?? (file.lowercased().hasSuffix(".json") ? .json : .csv)
            let trail = try AuditTrail(replica: context.records.replica, limit: Int(Int32.max))
            let text: String
            switch format {
            case .json:
                let data = try JSONSerialization.data(withJSONObject: trail.json, options: [.prettyPrinted, .sortedKeys])
                text = String(decoding: data, as: UTF8.self) + "\n"
            case .csv:
                text = AuditTrail.csv([["section"] + AuditTrail.sessionColumns] + trail.sessionRows.map { ["session"] + $0 })
                    + AuditTrail.csv([["section"] + AuditTrail.refusalColumns] + trail.refusalRows.map { ["refusal"] + $0 })
            }
            guard FileManager.default.createFile(atPath: file, contents: Data(text.utf8)) else { throw DomainError("cannot write \(file)") }
            context.out.line("wrote \(trail.sessions.count) sessions and \(trail.refusals.count) refusals to \(file) (\(format.rawValue))")
        }
    }
}

/// The audit trail of one replica.
struct AuditTrail {
    let sessions: [SyncRecord]
    let refusals: [Refusal]

    init(replica: Replica, limit: Int) throws {
        sessions = try replica.syncHistory(limit: limit)
        refusals = try replica.refusals(limit: limit)
    }

    static let sessionColumns = ["time", "peer", "address", "role", "direction", "sent", "received", "refused", "conflicts", "seconds", "outcome"]
    static let refusalColumns = ["time", "from", "site", "log", "entry", "kept in log", "reason"]

    var sessionRows: [[String]] {
        sessions.map { s in
            [DateText.timestamp(milliseconds: s.startedMilliseconds), s.peer ?? "", s.address, s.role, s.direction, String(s.sent),
             String(s.received), String(s.refused), String(s.conflicts), String(format: "%.2f", s.seconds), s.outcome]
        }
    }

    var refusalRows: [[String]] {
        refusals.map { r in
            [DateText.timestamp(milliseconds: r.milliseconds), r.source ?? "", Hex.encode(r.ref.origin.bytes), r.ref.scope.description,
             String(r.ref.seq), r.stored ? "yes" : "no", r.reason]
        }
    }

    var json: [String: Any] {
        ["sessions": sessionRows.map { Dictionary(uniqueKeysWithValues: zip(Self.sessionColumns, $0)) },
         "refusals": refusalRows.map { Dictionary(uniqueKeysWithValues: zip(Self.refusalColumns, $0)) }]
    }

    /// RFC 4180 CSV: fields with commas, quotes or line breaks are quoted, quotes doubled.
    static func csv(_ rows: [[String]]) -> String {
        rows.map { row in
            row.map { field in
                field.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
            }.joined(separator: ",")
        }.joined(separator: "\r\n") + "\r\n"
    }
}
