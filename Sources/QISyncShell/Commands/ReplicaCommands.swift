import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

/// `status`: identity, counts, version vector, log sizes, file size.
struct StatusCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the replica's identity, record counts, version vector, log sizes and file size.")
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let status = try context.records.status()
        let identity = status.identity
        let trustName = try context.records.replica.currentTrustName()
        if globals.json {
            context.out.json([
                "trust": identity.trustCode, "trust_name": trustName, "site": identity.siteName, "kind": identity.kind.rawValue,
                "site_key": Hex.encode(identity.origin.bytes), "home": status.home, "file_bytes": status.fileBytes,
                "waiting_entries": status.waiting, "conflicts": status.conflicts,
                "records": Dictionary(uniqueKeysWithValues: status.counts.map { ($0.kind, ["live": $0.live, "deleted": $0.deleted]) }),
                "vector": status.logs.map { ["site": $0.site, "origin": Hex.encode($0.log.origin.bytes), "scope": $0.log.scope.description,
                                             "seq": $0.seq, "head": $0.head, "entries": $0.entries, "bytes": $0.bytes] as [String: Any] },
                "peers": try context.records.replica.peers().map(PeerRendering.json),
                "serving": ServingState.read(home: context.records.replica.home).map { $0.address } ?? NSNull(),
            ])
            return
        }
        context.out.fields([
            ("trust", "\(identity.trustCode) — \(trustName.isEmpty ? "(its name comes from the hub with the first sync)" : trustName)"),
            ("site", "\(identity.siteName) (\(identity.kind.rawValue))"),
            ("site key", Hex.encode(identity.origin.bytes)),
            ("home", status.home),
            ("file size", ByteCountFormatter.string(fromByteCount: Int64(status.fileBytes), countStyle: .file)),
            ("conflicts", String(status.conflicts)),
            ("waiting", "\(Plural.count(status.waiting, "entry", "entries")) waiting for a missing predecessor"),
            ("serving", ServingState.read(home: context.records.replica.home).map { "on \($0.address)\($0.pid == getpid() ? " (this shell)" : " (process \($0.pid))")" } ?? "no"),
        ])
        context.out.line()
        context.out.table(["records", "live", "deleted"], status.counts.map { [$0.kind, String($0.live), String($0.deleted)] })
        context.out.line()
        context.out.table(["site", "origin", "log", "seq", "head", "bytes"],
                          status.logs.map { [$0.site, $0.log.origin.short, $0.log.scope.description, String($0.seq), $0.head, String($0.bytes)] })
        let peers = try context.records.replica.peers()
        if !peers.isEmpty {
            context.out.line()
            context.out.table(["peer", "address", "last sync", "outcome", "behind"], peers.map { PeerRendering.row($0, times: context.times) })
        }
    }
}

/// `verify`: proves the replica is sound.
struct VerifyCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check SQLite integrity, every chain and signature, and rebuild the tables from the logs to compare.")
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let report = try context.records.replica.verify()
        if globals.json {
            context.out.json(["sound": report.isSound, "integrity": report.integrity, "logs": report.logs, "entries": report.entries,
                              "log_problems": report.logProblems, "differences": report.differences])
        } else {
            context.out.line("integrity check:   \(report.integrity)")
            context.out.line("logs and entries:  \(report.logs) logs, \(report.entries) entries, chains and signatures \(report.logProblems.isEmpty ? "ok" : "FAILED")")
            for problem in report.logProblems { context.out.line("  - \(problem)") }
            context.out.line("rebuild from logs: \(report.differences.isEmpty ? "matches the tables" : "DIFFERS")")
            for difference in report.differences { context.out.line("  - \(difference)") }
        }
        guard report.isSound else { throw DomainError("verify found problems (listed above)") }
    }
}

/// `sql "SELECT …"`: read-only queries of the materialised tables.
struct SQLCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run a read-only SQL query on the replica (tables: initiative, pdsa, learning, adaptation, …).",
        discussion: "Writes are refused: every change must go through the shell's commands so it is logged and signed.")
    @Argument(help: "The query, quoted.") var query: String
    @Option(help: "Stop the query after this many seconds.") var timeout: Double = 10
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        guard timeout > 0, timeout <= 3600 else { throw DomainError("--timeout takes more than 0 and at most 3600 seconds") }
        let result = try context.records.query(query, timeLimit: timeout)
        if globals.json {
            context.out.json(result.rows.map { row in
                Dictionary(zip(result.columns, row.map(Self.jsonValue)), uniquingKeysWith: { first, _ in first })
            })
        } else {
            context.out.table(result.columns, result.rows.map { $0.map(Self.display) })
        }
        if result.truncated { context.notices.line("note: only the first \(result.rows.count) rows are shown; narrow the query or add LIMIT") }
    }

    /// A value as the table shows it: NULL, record ids as hex, other blobs as x'…'.
    static func display(_ value: Value) -> String {
        switch value {
        case .null: "NULL"
        case .blob(let bytes): bytes.count == 16 ? Hex.encode(bytes) : "x'\(Hex.encode(bytes))'"
        default: Display.text(value)
        }
    }

    /// A value for JSON: numbers stay numbers, blobs become hex.
    static func jsonValue(_ value: Value) -> Any {
        switch value {
        case .null: NSNull()
        case .integer(let i): i
        case .real(let d): d
        case .text(let s): s
        case .blob(let bytes): Hex.encode(bytes)
        }
    }
}
