import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

/// `audit`: sync sessions and refused entries, on screen or exported as evidence.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List sync sessions, administrative acts (enrolments, revocations, trust pins, bundles) and refused entries with reasons; 'audit export' writes them all as CSV or JSON.",
        subcommands: [Show.self, Export.self],
        defaultSubcommand: Show.self)

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the most recent sessions and refusals.")
        @Option(help: "How many of each to show.") var limit = 20
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            guard limit > 0 else { throw DomainError("--limit must be at least 1 (it is how many of each to show)") }
            let trail = try AuditTrail(replica: context.records.replica, limit: limit)
            if globals.json {
                context.out.json(trail.json)
                return
            }
            context.out.line("sync sessions (newest first)")
            context.out.table(AuditTrail.sessionColumns, trail.sessionRows { context.times.text($0) })
            context.out.line()
            context.out.line("administrative acts (newest first)")
            context.out.table(AuditTrail.eventColumns, trail.eventRows { context.times.text($0) })
            context.out.line()
            context.out.line("refused entries (newest first)")
            let rows = trail.refusalRows { context.times.text($0) }.map { row in [row[0], row[1], String(row[2].prefix(16)), row[3], row[4], row[5], row[6]] }
            context.out.table(AuditTrail.refusalColumns, rows)
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
            let json: (UInt64) -> String = Times.json
            let trail = try AuditTrail(replica: context.records.replica, limit: Int(Int32.max))
            let text: String
            switch format {
            case .json:
                let data = try JSONSerialization.data(withJSONObject: trail.json, options: [.prettyPrinted, .sortedKeys])
                text = String(decoding: data, as: UTF8.self) + "\n"
            case .csv:
                text = AuditTrail.csv([["section"] + AuditTrail.sessionColumns] + trail.sessionRows(json).map { ["session"] + $0 })
                    + AuditTrail.csv([["section"] + AuditTrail.eventColumns] + trail.eventRows(json).map { ["act"] + $0 })
                    + AuditTrail.csv([["section"] + AuditTrail.refusalColumns] + trail.refusalRows(json).map { ["refusal"] + $0 })
            }
            try FileText.write(text, to: file)
            context.out.line("wrote \(Plural.count(trail.sessions.count, "session", "sessions")), \(Plural.count(trail.events.count, "administrative act", "administrative acts")) and \(Plural.count(trail.refusals.count, "refusal", "refusals")) to \(file) (\(format.rawValue))")
        }
    }
}

/// The audit trail of one replica: its sync sessions, its administrative acts and what it refused.
struct AuditTrail {
    let sessions: [SyncRecord]
    let events: [AdminEvent]
    let refusals: [Refusal]

    init(replica: Replica, limit: Int) throws {
        sessions = try replica.syncHistory(limit: limit)
        events = try replica.adminEvents(limit: limit)
        refusals = try replica.refusals(limit: limit)
    }

    static let sessionColumns = ["time", "peer", "address", "role", "direction", "sent", "received", "refused", "conflicts", "seconds", "outcome"]
    static let eventColumns = ["time", "act", "about", "detail"]
    static let refusalColumns = ["time", "from", "site", "log", "entry", "kept in log", "reason"]

    func sessionRows(_ time: (UInt64) -> String) -> [[String]] {
        sessions.map { s in
            [time(s.startedMilliseconds), s.peer ?? "", s.address, s.role, s.direction, String(s.sent),
             String(s.received), String(s.refused), String(s.conflicts), String(format: "%.2f", s.seconds), s.outcome]
        }
    }

    func eventRows(_ time: (UInt64) -> String) -> [[String]] {
        events.map { [time($0.milliseconds), $0.kind, $0.subject, $0.detail] }
    }

    func refusalRows(_ time: (UInt64) -> String) -> [[String]] {
        refusals.map { r in
            [time(r.milliseconds), r.source ?? "", Hex.encode(r.ref.origin.bytes), r.ref.scope.description,
             String(r.ref.seq), r.stored ? "yes" : "no", r.reason]
        }
    }

    var json: [String: Any] {
        ["sessions": sessionRows(Times.json).map { Dictionary(uniqueKeysWithValues: zip(Self.sessionColumns, $0)) },
         "acts": eventRows(Times.json).map { Dictionary(uniqueKeysWithValues: zip(Self.eventColumns, $0)) },
         "refusals": refusalRows(Times.json).map { Dictionary(uniqueKeysWithValues: zip(Self.refusalColumns, $0)) }]
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
