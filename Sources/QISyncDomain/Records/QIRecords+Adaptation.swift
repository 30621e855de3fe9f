import Crypto
import Foundation
import GRDB
import QISyncCore
import QISyncStore

/// One step of an improvement's lineage.
public struct LineageStep: Sendable {
    /// How far from the record asked about: negative for sources, positive for adaptations made from it.
    public let depth: Int
    /// The initiative's owning trust.
    public let trust: String
    /// The initiative's id (full hex), known even when the initiative is not held here.
    public let initiative: String
    /// Its title, when held here.
    public let title: String?
    /// The adaptation that links it to the step before, when there is one.
    public let adaptation: RecordView?
}

extension QIRecords {
    /// The content hash of an initiative's current version: SHA-256 over its kind, id and
    /// replicated fields (owner, title, team, problem, aim, method, status, score, roles).
    public func contentHash(of view: RecordView) -> String {
        var writer = ByteWriter()
        writer.write(string: view.kind.rawValue)
        writer.write(raw: view.id.bytes)
        for field in view.kind.allFields where !field.isSystem || field.name == "owner-trust" {
            writer.write(string: field.name)
            writer.write(string: Display.text(view.values[field.name] ?? .null))
        }
        return Hex.encode(Array(SHA256.hash(data: writer.bytes)))
    }

    /// Records a contextualising-experience adaptation of a source initiative into a new local
    /// initiative (`title` given) or an existing one (`into` given).
    ///
    /// The source is an initiative held here, or one elsewhere named by `sourceTrust`,
    /// a full `sourceID` and `sourceHash`.
    public func adapt(source: String?, sourceTrust: String?, sourceID: String?, sourceHash: String?,
                      into: String?, title: String?, fields: [String: String], reasons: [String]) throws -> (initiative: RecordView, adaptation: RecordView) {
        var sourceFields: [String: String]
        if let source {
            let (_, id) = try locate(source, as: .initiative)
            let view = try record(.initiative, id)
            sourceFields = ["source-trust": view.ownerTrust, "source-id": id.hex, "source-hash": contentHash(of: view)]
        } else {
            guard let sourceTrust, let sourceID, let sourceHash else {
                throw DomainError("name the source: an initiative held here (adapt ID …), or --source-trust CODE --source-id FULLID --source-hash HASH for one held elsewhere")
            }
            try ReplicaIdentity.validateTrustCode(sourceTrust)
            guard RecordID(hex: sourceID.lowercased()) != nil else { throw DomainError("--source-id must be the full 32-digit id of the source initiative") }
            guard sourceHash.count == 64, Hex.decode(sourceHash.lowercased()) != nil else { throw DomainError("--source-hash must be the 64-digit content hash 'initiative show' prints") }
            sourceFields = ["source-trust": sourceTrust, "source-id": sourceID.lowercased(), "source-hash": sourceHash.lowercased()]
        }
        // Everything is checked before anything is written, and the new initiative (if any),
        // the adaptation and its reasons are one change.
        var newInitiative: NewRecord?
        let localID: RecordID
        switch (into, title) {
        case (let into?, nil):
            let (_, id) = try locate(into, as: .initiative)
            let local = try record(.initiative, id)
            try requireOwned(local)
            guard local.live else { throw DomainError("initiative \(id.short) is deleted; restore it first with 'initiative restore \(id.short)'") }
            localID = id
        case (nil, let title?):
            newInitiative = try prepare(.initiative, fields: ["title": title, "status": "proposed"])
            localID = newInitiative!.id
        default:
            throw DomainError("give exactly one of --title TEXT (a new local initiative) or --into ID (an existing one)")
        }
        guard sourceFields["source-id"] != localID.hex else { throw DomainError("an initiative cannot be adapted from itself") }
        for (key, value) in fields { sourceFields[key] = value }
        let adaptation = try prepare(.adaptation, fields: sourceFields, tags: ["reason": reasons], preset: ["initiative": .blob(localID.bytes)])
        try replica.write { db in (.trust, try (newInitiative?.edits(db) ?? []) + adaptation.edits(db)) }
        return (try record(.initiative, localID), try record(.adaptation, adaptation.id))
    }

    /// The chain of sources of an initiative (and their sources), then the adaptations made from it.
    public func lineage(_ reference: String) throws -> [LineageStep] {
        let (_, id) = try locate(reference, as: .initiative)
        let start = try record(.initiative, id)
        var steps = [LineageStep(depth: 0, trust: start.ownerTrust, initiative: id.hex, title: start.text("title"), adaptation: nil)]
        var seen: Set<String> = [id.hex]
        // Upstream: follow each adaptation's source.
        var current = id.hex
        var depth = 0
        while let adaptation = try adaptations(where: "initiative", equals: current).first {
            let sourceID = adaptation.text("source-id")
            guard seen.insert(sourceID).inserted else { break }
            depth -= 1
            let source = RecordID(hex: sourceID).flatMap { try? record(.initiative, $0) }
            steps.insert(LineageStep(depth: depth, trust: adaptation.text("source-trust"), initiative: sourceID, title: source?.text("title"), adaptation: adaptation), at: 0)
            current = sourceID
        }
        // Downstream: adaptations made from it, breadth first.
        var frontier = [(id.hex, 0)]
        while !frontier.isEmpty {
            let (parent, level) = frontier.removeFirst()
            for adaptation in try adaptations(where: "source_id", equals: parent) {
                guard case .blob(let bytes)? = adaptation.values["initiative"], let child = try? RecordID(bytes: bytes),
                      seen.insert(child.hex).inserted else { continue }
                let view = try? record(.initiative, child)
                steps.append(LineageStep(depth: level + 1, trust: view?.ownerTrust ?? adaptation.ownerTrust, initiative: child.hex,
                                         title: view?.text("title"), adaptation: adaptation))
                frontier.append((child.hex, level + 1))
            }
        }
        return steps
    }

    /// The adaptations, held here, made from an initiative (at any trust).
    public func adaptations(of id: RecordID) throws -> [RecordView] {
        try adaptations(where: "source_id", equals: id.hex)
    }

    private func adaptations(where column: String, equals hex: String) throws -> [RecordView] {
        let argument: DatabaseValueConvertible = column == "initiative" ? Data(Hex.decode(hex) ?? []) : hex
        return try replica.read { db in
            try Row.fetchAll(db, sql: "SELECT rowid, * FROM adaptation WHERE \(column) = ? AND live = 1 ORDER BY created_ms", arguments: [argument])
                .map { try view(.adaptation, row: $0, db: db) }
        }
    }
}
