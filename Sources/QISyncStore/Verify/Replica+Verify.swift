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
    /// Enrolments and revocations in force.
    public var directoryRecords = 0
    /// Directory records held whose signatures do not check out (altered since they were kept:
    /// records are verified before they are kept and not again when the directory is read).
    public var directoryProblems: [String] = []
    /// Entries kept in their logs whose changes were refused (records their trust does not own).
    public var refusedChanges = 0
    /// Whether the logs were read a second time, into a scratch database through the
    /// materializer, because the folded rebuild's digests differed from the tables' (or it
    /// could not fold them): on a sound replica, never.
    public var rebuiltInScratch = false

    /// Whether everything checked out.
    public var isSound: Bool { integrity == "ok" && logProblems.isEmpty && directoryProblems.isEmpty && differences.isEmpty }
}

extension Replica {
    /// The name every scratch rebuild file of `verify` starts with.
    static let scratchPrefix = ".verify-scratch-"

    /// The scratch rebuild's connection: thrown away afterwards, so it keeps no journal and
    /// never syncs (a replica's own WAL doubled every page written, and the rebuild writes a
    /// second copy of the logs), with a page cache of its own large enough that the rebuild's
    /// indexes are not spilled and read back again and again, and small enough for verify's
    /// memory to stay well under 100 MB.
    static var scratchConfiguration: Configuration {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
            try db.execute(sql: "PRAGMA cache_size = -32768")
        }
        return configuration
    }

    /// Removes scratch rebuilds a crashed `verify` left behind.
    func removeScratchFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: home.path) else { return }
        for name in names where name.hasPrefix(Self.scratchPrefix) {
            try? FileManager.default.removeItem(at: home.appendingPathComponent(name))
        }
    }

    /// Checks SQLite's integrity and every log's chain, and rebuilds the materialised state
    /// from the logs in a scratch database to compare it with this one. Each entry's hash is
    /// worked out from its content and the hash before it, so the signature on a log's last
    /// entry vouches for every entry before it (SPEC 4): that one is checked, and when it fails
    /// every signature in the log is, to name the entry that was altered. With `allSignatures`
    /// every signature held is checked (each signed entry can end a batch sent to a peer).
    /// It also checks the signatures of every directory record held (reading the directory
    /// does not: they were checked before they were kept), checks that every log's site
    /// is this one or enrolled, that no revoked site has entries past its cut-off, and (through
    /// the rebuild) that only changes their site's trust may make took effect.
    ///
    /// It streams: entries are read a log at a time and handed to a thread of its own that
    /// folds them, row by row, into the digests the rebuilt tables would have
    /// (``FoldedRebuild``); a third thread checks SQLite's integrity (``IntegrityCheck``) and
    /// the running counts on a connection of its own meanwhile, and a fourth takes the digests
    /// of the tables on a twin of this read's snapshot (``SnapshotTwin``; or this thread, once
    /// it has read the logs, when no twin can be had); so the two cores share the work. Only when the digests differ
    /// are the logs read again into a scratch database through the materializer
    /// (``ScratchRebuild``), whose tables answer and name what differs. Memory stays flat
    /// however large the replica.
    public func verify(allSignatures: Bool = false) throws -> VerifyReport {
        try verify(allSignatures: allSignatures, fold: FoldedRebuild.Tuning())
    }

    /// The same, its folded rebuild partitioned as `fold` says (tests make many small partitions).
    func verify(allSignatures: Bool = false, fold tuning: FoldedRebuild.Tuning) throws -> VerifyReport {
        var report = VerifyReport()
        // Scratch files live beside the replica (as private as it is), and are removed
        // afterwards, or when the replica is next opened if a crash left them behind: the
        // folded rebuild's partitions, and the scratch database when one is needed.
        let scratchPath = home.appendingPathComponent("\(Self.scratchPrefix)\(UUID().uuidString)").path
        defer {
            for suffix in [".fold", ".sqlite", ".sqlite-wal", ".sqlite-shm"] { try? FileManager.default.removeItem(atPath: scratchPath + suffix) }
        }
        // SQLite's integrity check and the running counts against the rows they count, on a
        // connection and a thread of their own while this one reads the logs. They need no
        // particular snapshot (each is consistent within its own), unlike the digests below.
        let fileChecks = BackgroundWork { [databasePath, schema] in
            let connection = try DatabaseQueue(path: databasePath, configuration: Self.configuration(readonly: true))
            let integrity = try connection.inDatabase { db in try IntegrityCheck.run(db) }
            return (integrity: integrity, counts: try connection.read { db in try StoreSchema.counterDifferences(db, schema: schema) })
        }
        defer { _ = fileChecks.result() }
        // One read transaction: a consistent snapshot even while syncs write.
        try database.read { db in
            // The tables' digests, on a connection and a thread of their own in this read's
            // snapshot, while this thread reads the logs (or here, afterwards, when no twin of
            // the snapshot can be had: a long write elsewhere, or this read inside a write).
            let liveTwin = database.cleanReadGeneration == nil ? nil
                : try SnapshotTwin.begin(path: databasePath, alongside: db) { [schema] twin in try CanonicalState.digests(twin, schema: schema) }
            defer { _ = liveTwin?.result() }
            let vector = try Self.versionVector(db)
            var readingDifferences: [String] = []
            // Each record's digest worked out again from its bytes, and each enrolment's reading
            // from its certificates, to compare with what the replica keeps beside them.
            let kept = try Self.directoryRecordsWithReadings(db)
            let held = kept.map { DirectoryRecord(kind: $0.record.kind, bytes: $0.record.bytes) }
            for ((stored, reading), (record, result)) in zip(kept, zip(held, VerifiedRecord.verifyAll(held))) {
                if stored.digest != record.digest {
                    report.directoryProblems.append("a record held under digest \(Hex.encode(Array(stored.digest.prefix(4)))): its bytes' digest is \(Hex.encode(Array(record.digest.prefix(4))))")
                }
                if case .success(.enrolment(let enrolment)) = result, let reading, reading != enrolment.reading {
                    // Worked out from the record, as the tables are from the logs: repair mends it.
                    readingDifferences.append("directory: the reading kept with \(enrolment.trustCode)/\(enrolment.siteName)'s enrolment (record \(Hex.encode(Array(record.digest.prefix(4))))) differs from its certificates")
                }
                guard case .failure(let error) = result else { continue }
                let kind = switch record.kind {
                case .enrolment: "an enrolment"
                case .revocation: "a revocation"
                case .bundleKey: "a bundle key"
                case .trustPin: "a trust-wide pin"
                case .redaction: "a redaction"
                }
                report.directoryProblems.append("\(kind) record held (digest \(Hex.encode(Array(record.digest.prefix(4))))): \(error.message)")
            }
            // The rebuild judges entries by the directory as the certificates say, not as a
            // reading that differs from them does.
            let directory = readingDifferences.isEmpty ? try self.directory(db)
                : TrustDirectory(ownTrust: identity.trustCode, ownSite: identity.origin, ownPins: try Self.ownPins(db), heldRecords: held)
            report.directoryRecords = directory.enrolments.count + directory.revocations.count
            report.logs = vector.positions.count
            // Entries held stay with their sites' trust even when that trust has been unpinned since.
            func trust(of origin: OriginID) -> String? { origin == identity.origin ? identity.trustCode : directory.heldTrust(of: origin) }
            // Logs named as people know their sites: "RXH/ward-7's trust log (site 1a2b3c4d)".
            func name(_ log: LogID) -> String {
                let site = log.origin == identity.origin ? "\(identity.trustCode)/\(identity.siteName)"
                    : (directory.enrolments[log.origin] ?? directory.heldEnrolments[log.origin])?.name
                return "\(site.map { "\($0)'s" } ?? "an unknown site's") \(log.scope) log (site \(log.origin.short))"
            }
            // Reads every log, in order, handing each readable entry to `rebuild`; the first
            // time through (`checking`), checks the chains, signatures and sites as it goes.
            func readLogs(into rebuild: RebuildPipeline, checking: Bool) throws {
                do {
                    for (log, position) in vector.positions.sorted(by: { $0.key < $1.key }) {
                        let logTrust = trust(of: log.origin)
                        let trustKey = self.trustKey(ofSite: log.origin, in: directory)
                        var last: LogEntry?
                        try Self.forEachEntry(db, log: log) { entry, id, block in
                            let seq = (last?.seq ?? 0) + 1
                            last = entry
                            let change: Change
                            if checking {
                                report.entries += 1
                                if entry.seq != seq { report.logProblems.append("\(name(log)): entry \(seq) is missing") }
                                if entry.isRedacted, !directory.vouches(forRedacted: entry) {
                                    report.logProblems.append("\(name(log)), entry \(entry.seq): redacted, but no redaction record of its trust vouches for its body")
                                }
                                if allSignatures, entry.signature != nil, !entry.hasValidSignature {
                                    report.logProblems.append("\(name(log)), entry \(entry.seq): its signature does not match its content (altered after it was signed)")
                                }
                                do { change = try entry.change() } catch {
                                    report.logProblems.append("\(name(log)), entry \(entry.seq): its change cannot be read (\(error))")
                                    return true
                                }
                            } else {
                                guard let readable = try? entry.change() else { return true }
                                change = readable
                            }
                            let allowed = logTrust.map {
                                schema.ownershipViolation(of: change, origin: entry.origin, trust: $0, trustKey: trustKey) == nil
                            } ?? false
                            if checking, !allowed { report.refusedChanges += 1 }
                            try rebuild.append(RebuildPipeline.Step(entry: entry, change: change, materialises: allowed, id: id, block: block))
                            return true
                        }
                        guard checking else { continue }
                        if !allSignatures, let last, last.signature != nil, !last.hasValidSignature {
                            // Name the entry that was altered: every signature of this log, once.
                            try Self.forEachEntry(db, log: log) { entry, _ in
                                if entry.signature != nil, !entry.hasValidSignature {
                                    report.logProblems.append("\(name(log)), entry \(entry.seq): its signature does not match its content (altered after it was signed)")
                                }
                                return true
                            }
                        }
                        if let logTrust {
                            if log.scope == .trust, logTrust != identity.trustCode {
                                report.logProblems.append("\(name(log)): a trust-scope log of another trust (\(logTrust))")
                            }
                        } else if last != nil {
                            report.logProblems.append("\(name(log)): its site has no enrolment held here")
                        }
                        if let last {
                            if log.origin != identity.origin, let revocation = directory.revocations[log.origin], revocation.refuses(scope: log.scope, seq: last.seq) {
                                report.logProblems.append("\(name(log)): holds entries past its site's revocation (up to \(last.seq))")
                            }
                            if last.signature == nil, directory.revocations[log.origin]?.lastAccepted[log.scope]?.hash != last.hash {
                                report.logProblems.append("\(name(log)): its last entry, \(last.seq), carries no signature, so nothing vouches for the entries before it")
                            }
                        }
                        if last?.hash != position.hash || last?.seq != position.seq {
                            report.logProblems.append("\(name(log)): the version vector says it ends at entry \(position.seq), the log at \(last?.seq ?? 0)")
                        }
                    }
                    try rebuild.finish()
                } catch {
                    rebuild.abandon()
                    throw error
                }
            }
            let entries = vector.positions.values.reduce(0) { $0 + Int(clamping: $1.seq) }
            let fold = FoldedRebuild.pipeline(schema: schema, directory: URL(fileURLWithPath: scratchPath + ".fold"), entries: entries, tuning: tuning)
            try readLogs(into: fold, checking: true)
            // The replica's digests, in the snapshot the logs were read in (the twin's, or
            // taken now while the fold works through its partitions).
            let live: [String: [UInt64]]
            let checks: (integrity: String, counts: [String])
            do {
                if let liveTwin, case .success(let digests) = liveTwin.result() {
                    live = digests
                } else {
                    live = try CanonicalState.digests(db, schema: schema)
                }
                checks = try fileChecks.value()
            } catch {
                fold.abandon()
                throw error
            }
            report.integrity = checks.integrity
            var differences: [String] = []
            let foldedDigests = try fold.digests()
            if foldedDigests != live {
                report.rebuiltInScratch = true
                // The tables differ from the logs (or the fold could not tell): rebuild them
                // through the materializer itself, which answers, and names what differs.
                let scratch = try DatabaseQueue(path: scratchPath + ".sqlite", configuration: Self.scratchConfiguration)
                try scratch.write { db in
                    try StoreSchema.create(db, schema: schema)
                    try StoreSchema.dropReadAids(db, schema: schema)
                }
                let rebuild = ScratchRebuild.pipeline(scratch: scratch, schema: schema)
                try readLogs(into: rebuild, checking: false)
                let rebuilt = try rebuild.digests()
                let differing = Set(live.keys.filter { live[$0] != rebuilt[$0] })
                differences = try scratch.read { scratchDB in
                    try CanonicalState.differences(live: db, rebuilt: scratchDB, schema: schema, sections: differing)
                }
            }
            report.differences = differences + checks.counts + readingDifferences
        }
        return report
    }

    /// Rebuilds the materialised tables in place from the logs, in one transaction: every
    /// row, head and conflict is cleared, then each held entry whose change its site's trust
    /// may make is applied again, exactly as `verify`'s rebuild does. The logs are not touched.
    /// The readings kept beside the directory's enrolments are worked out again from them too.
    public func rebuildTables() throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM directory_reading")
            try Self.keepReadingsOfHeld(db, checkingSignatures: true)
            // The directory is read again, as the certificates say (a checked reading answers first).
            try bumpDirectoryVersion(db)
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
