import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore

extension SiteKind: ExpressibleByArgument {}

/// `qisync init`: creates a replica and its site key; on a trust's hub, the trust key too.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a replica: one SQLite file and this site's Ed25519 key, in --home.",
        discussion: """
            Without --join this site founds the trust: it becomes the hub, makes the trust's signing key \
            (trust.key, readable only by you, beside the replica) and enrols itself. Other trusts pin \
            the trust key's fingerprint, which 'whoami' prints. With --join FINGERPRINT (the hub's \
            'whoami' tells it) the site joins an existing trust: it prints an enrolment request for \
            the hub's 'enrol', and can sync with the hub once the hub has enrolled it.
            """)

    @Option(help: ArgumentHelp("The trust's ODS code, 3-5 capital letters or digits (e.g. RXH).", valueName: "CODE"))
    var trust: String

    @Option(name: .customLong("trust-name"), help: ArgumentHelp("The trust's name (needed when founding; a joining site takes its hub's name, which wins over one given here).", valueName: "NAME"))
    var trustName: String?

    @Option(help: ArgumentHelp("This site's name (e.g. hub, ward-7b).", valueName: "NAME"))
    var site: String

    @Option(help: "hub or ward (default: hub when founding the trust, ward when joining).")
    var kind: SiteKind?

    @Option(help: ArgumentHelp("Join the existing trust whose key has this fingerprint.", valueName: "FINGERPRINT"))
    var join: String?

    @OptionGroup var globals: GlobalOptions

    mutating func run() throws {
        var membership = TrustMembership.founding(TrustKey())
        if let join {
            do { membership = .joining(try KeyFingerprint(parsing: join)) } catch { throw DomainError(error.message) }
        }
        let kind = self.kind ?? (join == nil ? .hub : .ward)
        guard join != nil || trustName != nil else {
            throw ValidationError("founding a trust needs --trust-name NAME (a joining site, with --join, takes its hub's)")
        }
        let records = try QIRecords.create(home: globals.homeURL, trustCode: trust, trustName: trustName ?? "", siteName: site,
                                           kind: kind, membership: membership)
        let replica = records.replica
        let out = OutputSink.standardOutput()
        let identity = replica.identity
        let request = join == nil ? nil : replica.enrolmentRequest()
        let trustFingerprint = try replica.trustPins().first(where: \.isOwn)?.fingerprint
        if globals.json {
            var json: [String: Any] = ["home": replica.home.path, "trust": identity.trustCode, "trust_name": identity.trustName,
                                       "site": identity.siteName, "kind": identity.kind.rawValue, "site_key": Hex.encode(identity.origin.bytes),
                                       "site_fingerprint": KeyFingerprint(publicKey: identity.origin.bytes).description,
                                       "trust_fingerprint": trustFingerprint?.description ?? ""]
            if let request { json["enrolment_request"] = request.text }
            out.json(json)
            return
        }
        out.line("Created replica for \(identity.trustCode)/\(identity.siteName) (\(identity.kind.rawValue)) in \(replica.home.path)")
        out.line("site key fingerprint:  \(KeyFingerprint(publicKey: identity.origin.bytes))")
        if let request {
            out.line("joining trust \(identity.trustCode), key fingerprint \(trustFingerprint?.description ?? "?")")
            out.line("The trust's name comes from the hub with the first sync\(trustName == nil ? "" : " (if it differs from '\(identity.trustName)', the hub's is used)").")
            out.line()
            out.line("Give this enrolment request to the hub's administrator, who runs 'qisync enrol REQUEST':")
            out.line(request.text)
            out.line()
            out.line("Then sync with the hub (the enrolment comes back with it), or, if this site is never online,")
            out.line("carry the file the hub's 'enrol --out FILE' writes and run 'qisync enrol --accept FILE' here.")
        } else {
            out.line("trust key fingerprint: \(trustFingerprint?.description ?? "?")")
            out.line("trust key:             \(replica.home.appendingPathComponent(TrustKey.fileName).path) (keep it safe; back it up offline)")
            out.line("Wards join with: qisync init --trust \(identity.trustCode) --site NAME --join \(trustFingerprint?.description ?? "FINGERPRINT")")
        }
        out.line("Open it with: qisync shell\(globals.home.map { " --home \($0)" } ?? "")")
    }
}
