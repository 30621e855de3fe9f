import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore

/// `whoami`: the fingerprints to read out.
struct WhoamiCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show this site's trust, the trust key's fingerprint (what other trusts pin) and the site key's.")
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        let identity = replica.identity
        let own = try replica.trustPins().first(where: \.isOwn)
        let enrolled = try replica.ownEnrolment() != nil
        let holdsKey = try replica.trustKey() != nil
        let site = KeyFingerprint(publicKey: identity.origin.bytes)
        if globals.json {
            context.out.json(["trust": identity.trustCode, "trust_fingerprint": own?.fingerprint.description ?? "", "site": identity.siteName,
                              "kind": identity.kind.rawValue, "site_fingerprint": site.description, "enrolled": enrolled, "holds_trust_key": holdsKey])
            return
        }
        context.out.fields([
            ("trust", "\(identity.trustCode) — \(try replica.currentTrustName().isEmpty ? "(its name comes from the hub with the first sync)" : try replica.currentTrustName())"),
            ("trust key", own?.fingerprint.description ?? "unknown"),
            ("site", "\(identity.siteName) (\(identity.kind.rawValue))"),
            ("site key", site.description),
            ("enrolled", enrolled ? "yes" : "not yet: the hub runs 'enrol' with this site's request ('enrol --request' prints it)"),
            ("trust key file", holdsKey ? "held here (this is the hub that enrols sites)" : "not here"),
        ])
    }
}

/// `enrol`: the hub admits a site; a ward takes in its enrolment file.
struct EnrolCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrol",
        abstract: "On the hub: enrol a site from its request. On a ward: --accept the enrolment file the hub wrote, or --request to print this site's request.",
        discussion: """
            The enrolment is a certificate for the site's key, signed by the trust key. It reaches the site \
            and every other replica through sync; for a site that is never online, --out FILE writes it as a \
            small file to carry, which the site takes in with 'enrol --accept FILE'.
            """)
    @Argument(help: ArgumentHelp("The site's enrolment request (its 'init --join' printed it).", valueName: "REQUEST")) var request: String?
    @Option(help: ArgumentHelp("Also write the enrolment to this file, for a site that is never online.", valueName: "FILE")) var out: String?
    @Option(help: ArgumentHelp("Take in this site's enrolment from a file the hub wrote.", valueName: "FILE")) var accept: String?
    @Flag(name: .customLong("request"), help: "Print this site's enrolment request again.") var printRequest = false
    @Flag(help: "Enrol a new key under a site name already enrolled (a replaced machine): the old key is revoked.") var replace = false
    @OptionGroup var globals: GlobalOptions

    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        if printRequest {
            let request = replica.enrolmentRequest()
            context.out.line(globals.json ? "{\"request\": \"\(request.text)\"}" : request.text)
            return
        }
        if let accept {
            guard request == nil, out == nil else { throw DomainError("--accept takes no request and no --out") }
            let text = try FileText.read(accept)
            let enrolment: Enrolment, others: [DirectoryRecord]
            do { (enrolment, others) = try Enrolment.read(fileText: text) } catch { throw DomainError("\(accept): \(error.message)") }
            try replica.acceptEnrolment(enrolment)
            try replica.importDirectory(others)
            context.adoptHubTrustName()
            context.out.line("enrolled: this site is \(enrolment.name) (\(enrolment.kind)) of trust \(enrolment.trustCode), key \(enrolment.trustFingerprint)")
            return
        }
        guard let request else { throw DomainError("give the site's enrolment request, --accept FILE, or --request") }
        let parsed: EnrolmentRequest
        do { parsed = try EnrolmentRequest(parsing: request) } catch { throw DomainError(error.message) }
        let (enrolment, outcome) = try replica.enrol(parsed, replace: replace)
        if let out {
            let text = enrolment.fileText(with: try replica.directoryRecords())
            try FileText.write(text, to: out)
        }
        if globals.json {
            context.out.json(["site": enrolment.name, "kind": enrolment.kind, "site_fingerprint": parsed.siteFingerprint.description,
                              "file": out ?? "", "outcome": "\(outcome)"])
            return
        }
        switch outcome {
        case .alreadyEnrolled:
            context.out.line("\(enrolment.name) (\(enrolment.kind)) is already enrolled with site key \(parsed.siteFingerprint); nothing changed")
        case .enrolled:
            context.out.line("enrolled \(enrolment.name) (\(enrolment.kind)), site key \(parsed.siteFingerprint)")
        case .reenrolled(let previous):
            context.out.line("enrolled site key \(parsed.siteFingerprint) again as \(enrolment.name) (\(enrolment.kind)), replacing its enrolment as \(previous)")
        case .replaced(let revoked):
            context.out.line("enrolled \(enrolment.name) (\(enrolment.kind)), site key \(parsed.siteFingerprint); the old key \(KeyFingerprint(publicKey: revoked.bytes)) is revoked")
        }
        if outcome != .alreadyEnrolled {
            context.out.line("Check the site key with the site's administrator ('qisync whoami' there) before it syncs.")
        }
        if let out { context.out.line("wrote \(out): carry it to the site and run 'qisync enrol --accept \((out as NSString).lastPathComponent)' there") }
    }
}

/// `revoke SITE`: the hub withdraws a site.
struct RevokeCommand: ReplicaCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "On the hub: revoke a site of this trust (lost or retired machine). It can no longer connect, and entries it wrote after what this hub holds are refused everywhere.")
    @Argument(help: ArgumentHelp("The site: its name, TRUST/name, or a prefix of its key in hex.", valueName: "SITE")) var site: String
    @Flag(help: "Revoke without asking (needed in scripts).") var yes = false
    @OptionGroup var globals: GlobalOptions
    func run(in context: CommandContext) throws {
        let replica = context.records.replica
        guard try replica.trustKey() != nil else { throw DomainError("only the hub that holds the trust key can revoke sites") }
        let enrolment = try replica.enrolledSite(named: site)
        if try replica.directory().revocations[enrolment.site] != nil {
            context.out.line(globals.json ? "{\"revoked\": \"\(enrolment.name)\", \"already\": true}" : "\(enrolment.name) was already revoked; nothing changed")
            return
        }
        let question = "Revoke \(enrolment.name) (\(enrolment.kind), enrolled \(context.times.text(UInt64(enrolment.issued.timeIntervalSince1970 * 1000))))? "
            + "It can no longer sync, and this cannot be undone (it would need enrolling again with a new key)."
        guard try context.confirm(question, yes: yes, what: "revoking \(enrolment.name)") else {
            context.out.line("not revoked; nothing changed")
            return
        }
        guard let revocation = try replica.revoke(site: enrolment.site) else {
            context.out.line(globals.json ? "{\"revoked\": \"\(enrolment.name)\", \"already\": true}" : "\(enrolment.name) was already revoked; nothing changed")
            return
        }
        let cut = Scope.allCases.map { "\($0) log up to \(revocation.lastAccepted[$0]?.seq ?? 0)" }.joined(separator: ", ")
        context.out.line(globals.json ? "{\"revoked\": \"\(enrolment.name)\"}" : "revoked \(enrolment.name): kept its \(cut); the revocation spreads with every sync")
    }
}

/// `trust add|list|remove`: the trusts this replica accepts.
struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Pin other trusts by their key fingerprint (exchanged out of band), list and remove them.",
        discussion: """
            Sites of a pinned trust may sync with this replica; they send and receive shared records only. \
            Read the fingerprint out with the other trust's administrator: their 'qisync whoami' prints it. \
            On the hub, 'trust add' and 'trust remove' decide for the whole trust: the decision, signed by \
            the trust key, reaches every ward with its next sync or bundle.
            """,
        subcommands: [Add.self, List.self, Remove.self, Card.self])

    struct Add: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Pin a trust: its ODS code and its trust key's fingerprint (and take in its card, if given).")
        @Argument(help: ArgumentHelp("The trust's ODS code.", valueName: "CODE")) var code: String
        @Argument(help: ArgumentHelp("Its trust key's fingerprint (64 hex digits, as 'whoami' prints).", valueName: "FINGERPRINT")) var fingerprint: String
        @Option(help: ArgumentHelp("The trust's card ('trust card' there): its hub and bundle key, so a first bundle can be sealed to it.", valueName: "FILE"))
        var card: String?
        @Flag(help: "Pin a trust already pinned with another key to this one (it is recorded for 'audit').") var replace = false
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let parsed: KeyFingerprint
            do { parsed = try KeyFingerprint(parsing: fingerprint) } catch { throw DomainError(error.message) }
            var records: [DirectoryRecord] = []
            if let card {
                let text = try FileText.read(card)
                do { records = try DirectoryRecord.records(fromFileText: text, title: "qisync-trust-card 1") } catch { throw DomainError("\(card): \(error.message)") }
                // Every record of the card must be signed by the key being pinned, for this code.
                let signers = records.map { record -> (code: String?, key: KeyFingerprint?) in
                    switch record.kind {
                    case .enrolment: (try? Enrolment(record: record)).map { ($0.trustCode, $0.trustFingerprint) } ?? (nil, nil)
                    case .bundleKey: (nil, (try? TrustBundleKey(record: record))?.trustFingerprint)
                    default: (nil, nil)
                    }
                }
                guard !records.isEmpty, signers.allSatisfy({ $0.key == parsed && ($0.code == nil || $0.code == code) }) else {
                    let found = Set(signers.compactMap(\.key)).map(\.description).sorted()
                    throw DomainError("refused: the card \(card) was not made by trust \(code) with key \(parsed)\(found.isEmpty ? "" : " (it is signed by \(found.joined(separator: ", ")))"); check the fingerprint and the card with its administrator. Nothing was pinned")
                }
            }
            try context.records.replica.pinTrust(code: code, fingerprint: parsed, replace: replace)
            let imported = try context.records.replica.importDirectory(records)
            context.out.line(globals.json ? "{\"pinned\": \"\(code)\"}" : "pinned trust \(code), key \(parsed)\(card == nil ? "" : "; took in \(imported.added) records from its card")")
        }
    }

    struct Card: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Write this trust's card (its sites' certificates and bundle key) for another trust's 'trust add --card'.")
        @Argument(help: ArgumentHelp("The file to write.", valueName: "FILE")) var file: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let records = try context.records.replica.trustCard()
            let text = DirectoryRecord.fileText("qisync-trust-card 1", records)
            try FileText.write(text, to: file)
            context.out.line("wrote \(file): \(records.count) records of trust \(context.records.replica.identity.trustCode); it holds no secrets, but check the fingerprint by phone")
        }
    }

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List the trusts pinned here and how many of their sites are enrolled.")
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let pins = try context.records.replica.trustPins()
            if globals.json {
                context.out.json(pins.map { ["code": $0.code, "fingerprint": $0.fingerprint.description, "own": $0.isOwn, "sites": $0.sites,
                                             "revoked_sites": $0.revokedSites, "pinned_by": $0.isTrustWide ? "hub" : "here"] as [String: Any] })
                return
            }
            context.out.table(["trust", "pinned", "sites", "revoked", "key fingerprint"], pins.map {
                [$0.code, $0.isOwn ? "own trust" : $0.isTrustWide ? "by our hub" : "here", String($0.sites), String($0.revokedSites), $0.fingerprint.description]
            }, wholeLastColumn: true)
            context.out.line("sites: enrolled and not revoked; 'site list' shows each one.")
        }
    }

    struct Remove: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "Stop accepting a trust. What it already sent stays.")
        @Argument(help: ArgumentHelp("The trust's ODS code.", valueName: "CODE")) var code: String
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            try context.records.replica.unpinTrust(code: code)
            context.out.line(globals.json ? "{\"removed\": \"\(code)\"}" : "removed trust \(code): its sites can no longer sync with this replica")
        }
    }
}

/// `site list`: every site this replica knows, of every trust.
struct SiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "site",
        abstract: "List every enrolled site known here: its trust, kind, key fingerprint, enrolled and revoked dates, and when it was last heard from.",
        subcommands: [List.self],
        defaultSubcommand: List.self)

    struct List: ReplicaCommand {
        static let configuration = CommandConfiguration(abstract: "List the sites enrolled in this trust and in the trusts pinned here.")
        @OptionGroup var globals: GlobalOptions
        func run(in context: CommandContext) throws {
            let sites = try context.records.replica.sites()
            let own = context.records.replica.identity.origin
            func status(_ site: SiteSummary) -> String {
                if site.enrolment.site == own { return "this site" }
                if site.revokedMilliseconds != nil { return "revoked" }
                return site.trustPinned ? "enrolled" : "trust not pinned"
            }
            if globals.json {
                context.out.json(sites.map { site -> [String: Any] in
                    var json: [String: Any] = ["site": site.enrolment.name, "trust": site.enrolment.trustCode, "name": site.enrolment.siteName,
                                               "kind": site.enrolment.kind, "status": status(site),
                                               "fingerprint": KeyFingerprint(publicKey: site.enrolment.site.bytes).description,
                                               "enrolled": Times.json(UInt64(site.enrolment.issued.timeIntervalSince1970 * 1000)), "entries": site.entries]
                    if let revoked = site.revokedMilliseconds { json["revoked"] = Times.json(revoked) }
                    if let seen = site.lastSeenMilliseconds { json["last_seen"] = Times.json(seen) }
                    if let entry = site.lastEntryMilliseconds { json["last_entry"] = Times.json(entry) }
                    return json
                })
                return
            }
            context.out.table(["site", "kind", "status", "enrolled", "revoked", "last seen", "last entry", "entries", "key fingerprint"], sites.map { site in
                [site.enrolment.name, site.enrolment.kind, status(site), context.times.text(UInt64(site.enrolment.issued.timeIntervalSince1970 * 1000)),
                 site.revokedMilliseconds.map { context.times.text($0) } ?? "",
                 site.enrolment.site == own ? "" : site.lastSeenMilliseconds.map { context.times.text($0) } ?? "never",
                 site.lastEntryMilliseconds.map { context.times.text($0) } ?? "", String(site.entries),
                 KeyFingerprint(publicKey: site.enrolment.site.bytes).description]
            }, wholeLastColumn: true)
            context.out.line("last seen: its last sync with this replica, or bundle or receipt from it; last entry: when it wrote the newest entry held here.")
        }
    }
}
