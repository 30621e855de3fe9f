import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport

/// `bundle export|import|verify|show|plan`: sync by a file carried by hand.
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Sync by a file carried by hand: export what a peer lacks, import it there, carry the receipt back.",
        discussion: """
            A bundle holds the protocol's own messages: the sender's identity, the directory records the \
            receiver lacks (as far as its last receipt says; all of them without one), what it assumes \
            the receiver holds, and the signed entries beyond that. It is compressed and signed \
            by the sending site; a bundle for another trust holds shared records only, passes the PII \
            guard and is sealed to that trust (only its hub can open it). Importing checks all of it \
            before applying anything, and writes a receipt (the receiver's new vector) for the next export.
            """,
        subcommands: [Export.self, Import.self, Verify.self, Show.self, Plan.self])

    struct Export: ReplicaCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write everything PEER lacks to FILE, as far as this replica knows (from its last sync or receipt).")
        @Argument(help: ArgumentHelp("The bundle file to write (it must not exist).", valueName: "FILE")) var file: String
        @Option(name: .customLong("for"), help: ArgumentHelp("Who it is for: an enrolled site (name or TRUST/site), or a pinned trust's code (its hub opens it).", valueName: "PEER"))
        var peer: String
        @Option(name: .customLong("since-vector"), help: ArgumentHelp("The receipt PEER's last import wrote: send what it lacks according to it.", valueName: "RECEIPT"))
        var sinceVector: String?
        @Flag(help: "Send everything PEER may receive, whatever it holds.") var all = false
        @OptionGroup var globals: GlobalOptions

        func run(in context: CommandContext) throws {
            guard !(all && sinceVector != nil) else { throw DomainError("--all and --since-vector exclude each other") }
            guard !FileManager.default.fileExists(atPath: file) else { throw DomainError("\(file) exists; choose a new file name") }
            let replica = context.records.replica
            let target = try BundleCommand.target(peer, replica: replica)
            var since = VersionVector()
            var peerDirectory: [DirectoryGroup]?
            var basis = "everything (--all)"
            if let sinceVector {
                let (receipt, held) = try BundleCommand.receipt(sinceVector, for: target, replica: replica)
                peerDirectory = receipt.directory
                if let held {
                    since = held
                    basis = "the receipt \((sinceVector as NSString).lastPathComponent) from \(receipt.trust)/\(receipt.site)"
                } else if let known = try replica.knownVector(of: receipt.origin) {
                    // A receipt told against a bundle this replica no longer keeps the expectation of.
                    since = known.vector
                    basis = "its last \(known.source) (\(context.times.text(known.milliseconds))): the receipt \((sinceVector as NSString).lastPathComponent) answers a bundle made here too long ago to read its vector"
                } else {
                    throw DomainError("\(sinceVector) answers a bundle made here too long ago (only the last \(Replica.bundleExpectationsKept) bundles' expectations are kept), and nothing else is known of what \(target.name) holds: use --all")
                }
            } else if !all {
                guard let key = target.siteKey, let known = try replica.knownVector(of: key) else {
                    throw DomainError("nothing is known of what \(target.name) holds: give --since-vector RECEIPT (its last import wrote one) or --all")
                }
                since = known.vector
                peerDirectory = try replica.knownDirectory(of: key)
                basis = "its last \(known.source) (\(context.times.text(known.milliseconds)))"
            }
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let header = try BundleCarrier.export(replica: replica, for: target, since: since, peerDirectory: peerDirectory, now: now, to: file,
                                                  check: context.records.checkLeavingTrust)
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) ?? 0
            if globals.json {
                context.out.json(["file": file, "for": target.name, "entries": header.entries, "bytes": size, "sealed": header.isSealed])
                return
            }
            context.out.line("wrote \(file): \(Plural.count(Int(header.entries), "entry", "entries")) (\(SyncRendering.bytes(header.bodyBytes)) of changes) in \(SyncRendering.bytes(size))"
                             + " for \(target.name), beyond \(basis)\(header.isSealed ? "; sealed to trust \(target.trust)" : "")")
        }
    }

    struct Import: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Check a bundle whole, apply it, and write a receipt for its sender.")
        @Argument(help: ArgumentHelp("The bundle file.", valueName: "FILE")) var file: String
        @Option(help: ArgumentHelp("Where to write the receipt (default FILE.receipt).", valueName: "RECEIPT")) var receipt: String?
        @OptionGroup var globals: GlobalOptions

        func run(in context: CommandContext) throws {
            let replica = context.records.replica
            let result = try BundleCarrier.importBundle(replica: replica, path: file, now: UInt64(Date().timeIntervalSince1970 * 1000))
            let receiptPath = receipt ?? file + ".receipt"
            try FileText.write(bytes: result.receipt, to: receiptPath)
            let report = result.report
            context.adoptHubTrustName()
            let waiting = try result.missing.map { "\(try BundleCommand.logName($0.log, replica: replica)) needs entries \($0.held + 1)–\($0.bundleStarts - 1) first" }
            if globals.json {
                context.out.json(["from": result.bundle.senderName, "applied": report.applied + report.released, "already_held": report.duplicates,
                                  "waiting": report.waiting, "refused": report.refused, "refusal_reasons": report.refusalReasons,
                                  "new_conflicts": report.newConflicts, "missing": waiting, "receipt": receiptPath])
                return
            }
            context.out.fields([
                ("from", result.bundle.senderName),
                ("applied", Plural.count(report.applied + report.released, "entry", "entries")),
                ("already held", Plural.count(report.duplicates, "entry", "entries")),
                ("waiting", report.waiting == 0 ? "none" : Plural.count(report.waiting, "entry", "entries") + ", for earlier ones: " + waiting.joined(separator: "; ")),
                ("refused", report.refused == 0 ? "none" : "\(report.refused): " + report.refusalReasons.joined(separator: "; ") + " (see 'audit')"),
                ("conflicts", "\(report.newConflicts) appeared (see 'conflicts')"),
                ("receipt", "\(receiptPath): carry it back to \(result.bundle.senderName) for its next 'bundle export --since-vector'"),
            ])
        }
    }

    struct Verify: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Check a bundle whole (signature, address, sender, messages) without applying it.")
        @Argument(help: ArgumentHelp("The bundle file.", valueName: "FILE")) var file: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let bundle = try BundleCarrier.verify(replica: context.records.replica, path: file)
            context.out.line(globals.json ? "{\"ok\": true, \"from\": \"\(bundle.senderName)\", \"entries\": \(bundle.entries)}"
                                          : "ok: \(Plural.count(bundle.entries, "entry", "entries")) from \(bundle.senderName), signed, whole, and for this replica")
        }
    }

    struct Show: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Describe a bundle: sender, who it is for, what it needs the receiver to hold, its logs and sizes.")
        @Argument(help: ArgumentHelp("The bundle file.", valueName: "FILE")) var file: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let replica = context.records.replica
            let description: BundleDescription
            do { description = try BundleCarrier.describe(replica: replica, path: file) } catch let error as StoreError { throw DomainError(error.message) }
            let header = description.header
            let needs = try header.since.positions.sorted { $0.key < $1.key }.map { "\(try BundleCommand.logName($0.key, replica: replica)) up to \($0.value.seq)" }
            let logs = try description.summary?.logs.map { ["log": try BundleCommand.logName($0.log, replica: replica), "entries": "\($0.first)–\($0.last)", "bytes": String($0.bytes)] }
            if globals.json {
                var json: [String: Any] = ["from": "\(header.senderTrust)/\(header.senderSite)", "for": header.forSite.isEmpty ? header.forTrust : "\(header.forTrust)/\(header.forSite)",
                                           "created": Times.json(header.createdMilliseconds), "entries": header.entries,
                                           "change_bytes": header.bodyBytes, "file_bytes": description.fileBytes, "sealed": header.isSealed, "needs": needs,
                                           "signature_valid": description.signatureValid]
                if let logs { json["logs"] = logs }
                if let unopened = description.unopened { json["unopened"] = unopened }
                context.out.json(json)
                return
            }
            context.out.fields([
                ("from", "\(header.senderTrust)/\(header.senderSite) (\(KeyFingerprint(publicKey: header.sender.bytes)))"),
                ("for", header.forSite.isEmpty ? "any site of \(header.forTrust)" : "\(header.forTrust)/\(header.forSite)"),
                ("made", context.times.text(header.createdMilliseconds)),
                ("carries", "\(Plural.count(Int(header.entries), "entry", "entries")), \(SyncRendering.bytes(header.bodyBytes)) of changes, in \(SyncRendering.bytes(description.fileBytes))"),
                ("sealed", header.isSealed ? "yes, to trust \(header.forTrust)'s key" : "no (for a site of the sender's own trust)"),
                ("needs", needs.isEmpty ? "nothing: it starts every log from the beginning" : needs.joined(separator: "; ")),
                ("signature", description.signatureValid ? "valid" : "DOES NOT MATCH: the file was altered or cut short"),
            ])
            if let logs {
                context.out.line()
                context.out.table(["log", "entries", "bytes"], logs.map { [$0["log"]!, $0["entries"]!, $0["bytes"]!] })
            } else if let unopened = description.unopened {
                context.out.line("its logs cannot be listed here: \(unopened)")
            }
        }
    }

    struct Plan: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Dry run of 'bundle import': what would apply, wait, be refused, and which conflicts would appear.")
        @Argument(help: ArgumentHelp("The bundle file.", valueName: "FILE")) var file: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let (bundle, report) = try BundleCarrier.plan(replica: context.records.replica, path: file)
            PlanRendering.render(from: bundle.senderName, incoming: report, records: bundle.records,
                                 outgoing: nil, json: globals.json, to: context.out)
        }
    }

    /// Resolves `--for`: an enrolled site by name or TRUST/site, or a pinned trust's code.
    static func target(_ text: String, replica: Replica) throws -> BundleTarget {
        if let enrolment = try? replica.enrolledSite(named: text) {
            return BundleTarget(trust: enrolment.trustCode, site: enrolment.siteName, siteKey: enrolment.site)
        }
        if try replica.trustPins().contains(where: { $0.code == text }) { return BundleTarget(trust: text) }
        _ = try replica.enrolledSite(named: text)
        throw DomainError("'\(text)' is neither an enrolled site nor a pinned trust")
    }

    /// Reads a receipt and checks it is from the bundle's target.
    /// Also the receiver's whole vector, when it can be read (see ``BundleCarrier/remember(_:at:)``).
    static func receipt(_ path: String, for target: BundleTarget, replica: Replica) throws -> (BundleReceipt, VersionVector?) {
        let receipt: BundleReceipt
        do { receipt = try BundleReceipt(parsing: try FileText.readBytes(path)) } catch let error as DecodingError { throw DomainError("\(path): \(error.message)") }
        guard receipt.trust == target.trust, target.siteKey == nil || receipt.origin == target.siteKey,
              try replica.directory().trust(of: receipt.origin) == receipt.trust else {
            throw DomainError("\(path) is a receipt from \(receipt.trust)/\(receipt.site), not from \(target.name) (or that site is not enrolled here)")
        }
        return (receipt, try BundleCarrier.remember(receipt, at: replica))
    }

    static func logName(_ log: LogID, replica: Replica) throws -> String {
        let directory = try replica.directory()
        let name = log.origin == replica.identity.origin ? "\(replica.identity.trustCode)/\(replica.identity.siteName)"
            : directory.enrolments[log.origin]?.name ?? log.origin.short
        return "\(name) \(log.scope)"
    }
}

/// How a dry run is shown, for bundles and for sync.
enum PlanRendering {
    static func render(from peer: String, incoming: ApplyReport, records: Int, outgoing: (entries: UInt64, bytes: UInt64, records: Int)?,
                       json: Bool, to out: OutputSink) {
        if json {
            var value: [String: Any] = ["peer": peer, "would_apply": incoming.applied + incoming.released, "already_held": incoming.duplicates,
                                        "would_wait": incoming.waiting, "would_refuse": incoming.refused, "refusal_reasons": incoming.refusalReasons,
                                        "conflicts_would_appear": incoming.newConflicts, "records_touched": records]
            if let outgoing { value["would_send"] = ["entries": outgoing.entries, "bytes": outgoing.bytes, "records": outgoing.records] }
            out.json(value)
            return
        }
        var fields: [(String, String)] = [
            ("peer", peer),
            ("would take", "\(incoming.applied + incoming.released) entries touching \(records) records (\(incoming.duplicates) already held)"),
            ("would wait", incoming.waiting == 0 ? "none" : Plural.count(incoming.waiting, "entry", "entries") + ", for earlier ones this replica lacks"),
            ("would refuse", incoming.refused == 0 ? "none" : "\(incoming.refused): " + incoming.refusalReasons.joined(separator: "; ")),
            ("conflicts", "\(incoming.newConflicts) would appear here"),
        ]
        if let outgoing { fields.append(("would send", "\(outgoing.entries) entries touching \(outgoing.records) records (\(SyncRendering.bytes(outgoing.bytes)) of changes)")) }
        fields.append(("changed", "nothing: this was a dry run"))
        out.fields(fields)
    }
}
