import ArgumentParser
import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

extension SiteKind: ExpressibleByArgument {}

/// `qisync init`: creates a replica and its site key.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a replica: one SQLite file and this site's Ed25519 key, in --home.")

    @Option(help: ArgumentHelp("The trust's ODS code, 3-5 capital letters or digits (e.g. RXH).", valueName: "CODE"))
    var trust: String

    @Option(name: .customLong("trust-name"), help: ArgumentHelp("The trust's name.", valueName: "NAME"))
    var trustName: String

    @Option(help: ArgumentHelp("This site's name (e.g. hub, ward-7b).", valueName: "NAME"))
    var site: String

    @Option(help: "hub (the trust's central replica) or ward.")
    var kind: SiteKind = .ward

    @OptionGroup var globals: GlobalOptions

    mutating func run() throws {
        let records = try QIRecords.create(home: globals.homeURL, trustCode: trust, trustName: trustName, siteName: site, kind: kind)
        let out = OutputSink.standardOutput()
        let identity = records.replica.identity
        if globals.json {
            out.json(["home": records.replica.home.path, "trust": identity.trustCode, "trust_name": identity.trustName,
                      "site": identity.siteName, "kind": identity.kind.rawValue, "site_key": Hex.encode(identity.origin.bytes)])
        } else {
            out.line("Created replica for \(identity.trustCode)/\(identity.siteName) (\(identity.kind.rawValue)) in \(records.replica.home.path)")
            out.line("site key: \(Hex.encode(identity.origin.bytes))")
            out.line("Open it with: qisync shell\(globals.home.map { " --home \($0)" } ?? "")")
        }
    }
}
