import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

/// What `verify` found.
public struct VerifyReport: Sendable {
    /// SQLite's `PRAGMA integrity_check` answer (`ok` when sound).
    public var integrity: String = ""
    /// Logs checked.
    public var logs = 0
    /// Entries whose chain and signature were checked.
    public var entries = 0
    /// Problems with chains, signatures or vector heads.
    public var logProblems: [String] = []
    /// Where the materialised tables differ from a rebuild from the logs.
    public var differences: [String] = []
    /// Enrolments and revocations checked.
    public var directoryRecords = 0
    /// Entries kept in their logs whose changes were refused (records their trust does not own).
    public var refusedChanges = 0

    /// Whether everything checked out.
    public var isSound: Bool { integrity == "ok" && logProblems.isEmpty && differences.isEmpty }
}

extension Replica {
    /// The name every scratch rebuild file of `verify` starts with.
    static let scratchPrefix = ".verify-scratch-"

    /// Removes scratch rebuilds a crashed `verify` left behind.
    func removeScratchFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: home.path) else { return }
        for name in names where name.hasPrefix(Self.scratchPrefix) {
            try? FileManager.default.removeItem(at: home.appendingPathComponent(name))
        }
    }

    /// Checks SQLite's integrity, every log's chain and every signature held (each log must end
    /// with a signed entry, whose signature covers the chain before it), and rebuilds
    /// the materialised state from the logs in a scratch database to compare it with this one.
    /// It also re-verifies every enrolment and revocation held, checks that every log's site
    /// is this one or enrolled, that no revoked site has entries past its cut-off, and (through
    /// the rebuild) that only changes their site's trust may make took effect.
    public func verify() throws -> VerifyReport {
        var report = VerifyReport()
        // One read transaction: a consistent snapshot even while syncs write.
        let (integrity, entries, vector, live, directory) = try database.read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; "),
             try Self.entries(db, after: VersionVector(), scopes: Set(Scope.allCases), maxEntries: .max, maxBytes: .max),
             try Self.versionVector(db),
             try CanonicalState.read(db, schema: schema),
             try self.directory(db))
        }
        report.directoryRecords = directory.enrolments.count + directory.revocations.count
        // Entries held stay with their sites' trust even when that trust has been unpinned since.
        func trust(of origin: OriginID) -> String? { origin == identity.origin ? identity.trustCode : directory.heldTrust(of: origin) }
        // Logs named as people know their sites: "RXH/ward-7's trust log (site 1a2b3c4d)".
        func name(_ log: LogID) -> String {
            let site = log.origin == identity.origin ? "\(identity.trustCode)/\(identity.siteName)"
                : (directory.enrolments[log.origin] ?? directory.heldEnrolments[log.origin])?.name
            return "\(site.map { "\($0)'s" } ?? "an unknown site's") \(log.scope) log (site \(log.origin.short))"
        }
        report.integrity = integrity
        report.logs = vector.positions.count
        report.entries = entries.count
        var expected: [LogID: UInt64] = [:]
        var previous: [LogID: LogEntry] = [:]
        for entry in entries {
            let log = LogID(origin: entry.origin, scope: entry.scope)
            let seq = (expected[log] ?? 0) + 1
            if entry.seq != seq { report.logProblems.append("\(name(log)): entry \(seq) is missing") }
            expected[log] = entry.seq
            if let before = previous[log], before.hash != entry.previousHash {
                report.logProblems.append("\(name(log)), entry \(entry.seq): does not chain onto entry \(before.seq) (its previous-entry hash differs)")
            }
            if entry.isRedacted, !directory.vouches(forRedacted: entry) {
                report.logProblems.append("\(name(log)), entry \(entry.seq): redacted, but no redaction record of its trust vouches for its body")
            }
            if entry.signature != nil, !entry.hasValidSignature { report.logProblems.append("\(name(log)), entry \(entry.seq): its signature does not match its content (altered after it was signed)") }
            previous[log] = entry
        }
        for log in previous.keys {
            guard let trust = trust(of: log.origin) else {
                report.logProblems.append("\(name(log)): its site has no enrolment held here")
                continue
            }
            if log.scope == .trust, trust != identity.trustCode {
                report.logProblems.append("\(name(log)): a trust-scope log of another trust (\(trust))")
            }
            if log.origin != identity.origin, let revocation = directory.revocations[log.origin], let last = previous[log],
               revocation.refuses(scope: log.scope, seq: last.seq) {
                report.logProblems.append("\(name(log)): holds entries past its site's revocation (up to \(last.seq))")
            }
        }
        for (log, last) in previous where last.signature == nil && directory.revocations[log.origin]?.lastAccepted[log.scope]?.hash != last.hash {
            report.logProblems.append("\(name(log)): its last entry, \(last.seq), carries no signature, so nothing vouches for the entries before it")
        }
        for (log, position) in vector.positions where previous[log]?.hash != position.hash || previous[log]?.seq != position.seq {
            report.logProblems.append("\(name(log)): the version vector says it ends at entry \(position.seq), the log at \(previous[log]?.seq ?? 0)")
        }

        // The scratch rebuild lives beside the replica (as private as it is), and is removed
        // afterwards, or when the replica is next opened if a crash left it behind.
        let scratchURL = home.appendingPathComponent("\(Self.scratchPrefix)\(UUID().uuidString).sqlite")
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: scratchURL.path + suffix) }
        }
        let scratch = try DatabaseQueue(path: scratchURL.path, configuration: Self.configuration())
        let rebuilt = try scratch.write { db in
            try StoreSchema.create(db, schema: schema)
            let materializer = try Materializer(db: db, schema: schema)
            for entry in entries {
                let change: Change
                do { change = try entry.change() } catch {
                    report.logProblems.append("\(name(LogID(origin: entry.origin, scope: entry.scope))), entry \(entry.seq): its change cannot be read (\(error))")
                    continue
                }
                let allowed = trust(of: entry.origin).map {
                    schema.ownershipViolation(of: change, origin: entry.origin, trust: $0, trustKey: trustKey(ofSite: entry.origin, in: directory)) == nil
                } ?? false
                if !allowed { report.refusedChanges += 1 }
                try materializer.append(entry, change: change, materialises: allowed)
            }
            return try CanonicalState.read(db, schema: schema)
        }
        report.differences = live.differences(from: rebuilt)
        return report
    }

    /// Rebuilds the materialised tables in place from the logs, in one transaction: every
    /// row, head and conflict is cleared, then each held entry whose change its site's trust
    /// may make is applied again, exactly as `verify`'s rebuild does. The logs are not touched.
    public func rebuildTables() throws {
        try database.write { db in
            let directory = try self.directory(db)
            let entries = try Self.entries(db, after: VersionVector(), scopes: Set(Scope.allCases), maxEntries: .max, maxBytes: .max)
            for table in schema.tables { try db.execute(sql: "DELETE FROM \(table.name)") }
            try db.execute(sql: "DELETE FROM row_version; DELETE FROM conflict; DELETE FROM pending_supersede")
            let materializer = try Materializer(db: db, schema: schema)
            let findEntry = try db.makeStatement(sql: """
                SELECT log.id FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                """)
            for entry in entries {
                let change = try entry.change()
                let trust = entry.origin == identity.origin ? identity.trustCode : directory.heldTrust(of: entry.origin)
                guard let trust, schema.ownershipViolation(of: change, origin: entry.origin, trust: trust,
                                                           trustKey: trustKey(ofSite: entry.origin, in: directory)) == nil,
                      let id = try Int64.fetchOne(findEntry, arguments: [Data(entry.origin.bytes), Int64(entry.scope.rawValue), Int64(bitPattern: entry.seq)])
                else { continue }
                try materializer.replay(entry, id: id, change: change)
            }
        }
    }
}
