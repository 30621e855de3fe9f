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
            ("writing", try context.records.replica.writesHeldSince().map { "HELD since \(context.times.text($0)) (restored from a backup): sync with a peer first" } ?? "open"),
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
        abstract: "Check SQLite integrity, every log's chain and signature, and rebuild the tables from the logs to compare.",
        discussion: """
            Each entry's hash covers the one before it, so the signature on a log's last entry vouches for the whole \
            log: that one is checked (and, if it fails, every signature in the log, to name the altered entry). \
            --all-signatures checks every signature held, which takes longer. Every directory record held \
            (enrolments, revocations, pins, bundle keys, redactions) has its signatures checked too: they are \
            checked when a record arrives, not each time the replica reads its directory. What each \
            enrolment's certificates say is kept beside it (so reading the directory parses none): each \
            is compared with its certificates, and one that differs is mended by repair.
            """)
    @Flag(name: .customLong("all-signatures"), help: "Check every signature held, not only each log's last.") var allSignatures = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let report = try context.records.replica.verify(allSignatures: allSignatures)
        if globals.json {
            context.out.json(["sound": report.isSound, "integrity": report.integrity, "logs": report.logs, "entries": report.entries,
                              "log_problems": report.logProblems, "directory_problems": report.directoryProblems, "differences": report.differences])
        } else {
            context.out.line("integrity check:   \(report.integrity)")
            context.out.line("logs and entries:  \(Plural.count(report.logs, "log", "logs")), \(Plural.count(report.entries, "entry", "entries")), chains and signatures \(report.logProblems.isEmpty ? "ok" : "FAILED")\(allSignatures ? " (every signature checked)" : "")")
            for problem in report.logProblems { context.out.line("  - \(problem)") }
            context.out.line("directory records: signatures and digests \(report.directoryProblems.isEmpty ? "ok" : "FAILED")")
            for problem in report.directoryProblems { context.out.line("  - \(problem)") }
            context.out.line("rebuild from logs: \(report.differences.isEmpty ? "matches the tables" : "DIFFERS")")
            for difference in report.differences { context.out.line("  - \(difference)") }
        }
        guard report.isSound else { throw DomainError("verify found problems (listed above)") }
    }
}

/// `repair`: rebuilds the materialised tables from the logs, after showing what would change.
struct RepairCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Rebuild the tables from the logs when 'verify' finds they differ, after showing what would change.",
        discussion: """
            The logs are the record; the tables are worked out from them. When the tables were changed outside qisync (or damaged), repair lists each record and field that differs, asks, and rebuilds them in one transaction (with what is kept beside the directory's enrolments, worked out again from their certificates). It cannot mend damaged logs themselves: for those, restore a backup or sync a fresh replica from a peer.
            """)
    @Flag(help: "Rebuild without asking (needed in scripts).") var yes = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        let report = try replica.verify()
        guard report.integrity == "ok", report.logProblems.isEmpty, report.directoryProblems.isEmpty else {
            for problem in report.logProblems + report.directoryProblems { context.out.line("  - \(problem)") }
            if report.integrity != "ok" { context.out.line("  - SQLite integrity check: \(report.integrity)") }
            throw DomainError("the logs or the database file themselves are damaged, and repair rebuilds from the logs, so it cannot mend this: restore a backup ('restore FILE') or make a new replica and sync it from a peer")
        }
        guard !report.differences.isEmpty else {
            context.out.line(globals.json ? "{\"repaired\": false, \"differences\": []}" : "nothing to repair: the tables match the logs (\(Plural.count(report.entries, "entry", "entries")) in \(Plural.count(report.logs, "log", "logs")))")
            return
        }
        if !globals.json {
            context.out.line("The tables differ from a rebuild from the logs:")
            for difference in report.differences { context.out.line("  - \(difference)") }
        }
        guard try context.confirm("Rebuild the tables from the logs (the logs stay as they are)?", yes: yes, what: "repair") else {
            context.out.line("not repaired; nothing changed")
            return
        }
        try replica.rebuildTables()
        let after = try replica.verify()
        try replica.recordAdminEvent(kind: "repair", subject: "tables", detail: "rebuilt from the logs; \(report.differences.count) differences before, \(after.differences.count) after")
        if globals.json {
            context.out.json(["repaired": after.isSound, "differences": report.differences])
        } else {
            context.out.line(after.isSound ? "repaired: the tables now match the logs" : "rebuilt, but verify still finds: \(after.differences.joined(separator: "; "))")
        }
        guard after.isSound else { throw DomainError("the tables still differ after the rebuild") }
    }
}

/// `backup FILE`: a consistent copy of the live replica.
struct BackupCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent copy of this replica to a new file, while it stays in use (SQLite's online backup).",
        discussion: "The copy holds the records, logs, directory and audit; not the site key or trust key, which stay in the replica's folder: keep copies of those safely apart.")
    @Argument(help: ArgumentHelp("The file to write (it must not exist).", valueName: "FILE")) var file: String
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let summary = try context.records.replica.backup(to: file)
        try context.records.replica.recordAdminEvent(kind: "backup", subject: (file as NSString).lastPathComponent,
                                                     detail: "\(summary.entries) entries in \(summary.logs) logs written to \(file)")
        if globals.json {
            context.out.json(["file": file, "entries": summary.entries, "logs": summary.logs, "bytes": summary.bytes])
            return
        }
        context.out.line("wrote \(file): \(Plural.count(Int(summary.entries), "entry", "entries")) in \(Plural.count(summary.logs, "log", "logs")), \(ByteCountFormatter.string(fromByteCount: Int64(summary.bytes), countStyle: .file))")
        context.out.line("It holds no keys: keep site.key\(try context.records.replica.trustKey() != nil ? " and trust.key" : "") from \(context.records.replica.home.path) safe separately. 'restore \(file) --check' checks it.")
    }
}

/// `restore FILE`: checks a backup and puts it back.
struct RestoreCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Check a backup of this replica (--check), or put it back in place of the replica's content.",
        discussion: """
            A backup is checked whole first (integrity, every chain and signature, tables against the logs) and must be of this site. After a restore, writing is held until a sync with a peer brings back any entries this site wrote after the backup (writing before that would fork its log); --resume-writing ends the hold when no peer has them. \
            A backup made by an earlier version of qisync is brought up to date in a copy first; the file itself is left as it is.
            """)
    @Argument(help: ArgumentHelp("The backup file ('backup FILE' wrote it).", valueName: "FILE")) var file: String?
    @Flag(help: "Only check the backup; change nothing.") var check = false
    @Flag(help: "Restore without asking (needed in scripts).") var yes = false
    @Flag(name: .customLong("resume-writing"), help: "End the hold on writing after a restore (only when no other replica holds newer entries of this site).")
    var resumeWriting = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        if resumeWriting {
            guard file == nil, !check else { throw DomainError("--resume-writing takes no file") }
            guard try replica.writesHeldSince() != nil else { throw DomainError("writing is not held; nothing to resume") }
            try replica.resumeWrites(reason: "resumed by hand ('restore --resume-writing')")
            context.out.line("writing resumed")
            return
        }
        guard let file else { throw DomainError("give the backup file: restore FILE (or --check FILE)") }
        let summary = try replica.summary(ofBackup: file)
        let report = try replica.verifyBackup(file)
        let current = try replica.versionVector()
        let newest = summary.newestMilliseconds.map { context.times.text($0) } ?? "no entries"
        context.out.fields([
            ("backup", "\(file): \(summary.site), \(Plural.count(Int(summary.entries), "entry", "entries")) in \(Plural.count(summary.logs, "log", "logs")), newest \(newest)"),
            ("this replica", "\(Plural.count(Int(current.positions.values.reduce(0) { $0 + $1.seq }), "entry", "entries")) in \(Plural.count(current.positions.count, "log", "logs"))"),
            ("check", report.isSound ? "sound: integrity, chains, signatures and tables all check out"
                                     : "DAMAGED: " + (report.logProblems + report.directoryProblems + report.differences + (report.integrity == "ok" ? [] : [report.integrity])).joined(separator: "; ")),
        ])
        guard report.isSound else { throw DomainError("the backup \(file) is damaged; nothing was restored") }
        if check { return }
        guard try context.confirm("Replace this replica's content with the backup? Entries held here and not in it come back only from peers.",
                                  yes: yes, what: "restoring \(file)") else {
            context.out.line("not restored; nothing changed")
            return
        }
        try replica.restore(from: file)
        context.out.line("restored from \(file). Writing is held until a sync with a peer (it may hold entries this site wrote since the backup): run 'sync hub'.")
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
