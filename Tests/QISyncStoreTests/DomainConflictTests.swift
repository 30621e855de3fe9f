import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// The merge rules as a QI team meets them: through the records' own operations, for every
/// record kind, at two sites that sync.
@Suite("Conflicts as people meet them")
struct DomainConflictTests {
    let harness: TestReplicas
    let a: QIRecords
    let b: QIRecords

    init() throws {
        harness = try TestReplicas()
        let clock = harness.clock
        let now: @Sendable () -> Date = { Date(timeIntervalSince1970: Double(clock.milliseconds) / 1000) }
        a = QIRecords(replica: try harness.make("a"), now: now)
        b = QIRecords(replica: try harness.make("b"), now: now)
    }

    func sync() throws {
        try b.replica.apply(try a.replica.entries(after: b.replica.versionVector()))
        try a.replica.apply(try b.replica.entries(after: a.replica.versionVector()))
    }

    /// Makes a record of `kind` at a, synced to b; returns its id.
    func make(_ kind: RecordKind) throws -> RecordID {
        let initiative = try a.add(.initiative, fields: ["title": "Reduce falls"])
        let id: RecordID
        switch kind {
        case .initiative: id = initiative.id
        case .pdsa: id = try a.add(.pdsa, fields: ["initiative": initiative.id.hex, "change-idea": "Bed-rail check"]).id
        case .learning: id = try a.add(.learning, fields: ["text": "Huddles helped"], tags: ["sofft": ["S1"]]).id
        case .adaptation:
            id = try a.adapt(source: initiative.id.hex, sourceTrust: nil, sourceID: nil, sourceHash: nil, into: nil, title: "Falls at night",
                             fields: ["nature": "tailor"], reasons: ["staffing"]).adaptation.id
        case .measure: id = try a.add(.measure, fields: ["initiative": initiative.id.hex, "name": "Falls per 1,000 bed days"]).id
        case .datapoint:
            let measure = try a.add(.measure, fields: ["initiative": initiative.id.hex, "name": "Falls"])
            id = try a.add(.datapoint, fields: ["measure": measure.id.hex, "period": "2026-01-05", "value": "4"]).id
        case .chartEvent:
            let measure = try a.add(.measure, fields: ["initiative": initiative.id.hex, "name": "Falls"])
            id = try a.add(.chartEvent, fields: ["measure": measure.id.hex, "type": "annotation", "date": "2026-01-05", "text": "huddles start"]).id
        }
        try sync()
        return id
    }

    static let edits: [RecordKind: (String, String)] = [
        .initiative: ("title", "Reduce falls at night"), .pdsa: ("prediction", "fewer falls"),
        .learning: ("text", "Huddles helped a lot"), .adaptation: ("kept", "handover check"),
        .measure: ("target", "5"), .datapoint: ("value", "4.5"), .chartEvent: ("text", "huddles on nights too"),
    ]

    @Test("a delete against a concurrent edit is a conflict on exists at both sites, naming both; keeping it keeps the edit", arguments: RecordKind.allCases)
    func deleteAgainstEdit(kind: RecordKind) throws {
        let id = try make(kind)
        let (field, value) = Self.edits[kind]!
        try a.setExists(id.hex, as: kind, exists: false)
        harness.clock.advance(5)
        try b.set(id.hex, as: kind, fields: [field: value])
        try sync()
        for records in [a, b] {
            let conflict = try #require(try records.conflicts().first { $0.id == id })
            #expect(conflict.field == "exists")
            #expect(Set(conflict.heads.map(\.value)) == ["deleted", "kept"])
            #expect(conflict.heads.first { $0.value == "deleted" }?.site == "RXH/a")
            let kept = try #require(conflict.heads.first { $0.value == "kept" })
            #expect(kept.site == "RXH/b" && kept.detail == "edited \(field)")
        }
        #expect(try a.replica.canonicalState() == b.replica.canonicalState())
        try a.resolve(id.hex, field: "exists", pick: nil, value: "keep")
        try sync()
        for records in [a, b] {
            let view = try records.record(kind, id)
            #expect(view.live && view.conflictedFields.isEmpty)
            #expect(view.text(field) == value)
            #expect(try records.conflicts().isEmpty)
        }
    }

    @Test("a delete against a concurrent tag edit is a conflict too; --delete settles it as deleted")
    func deleteAgainstTag() throws {
        let id = try make(.learning)
        try a.setExists(id.hex, as: .learning, exists: false)
        try b.set(id.hex, as: .learning, fields: [:], addTags: ["sofft": ["S4"]])
        try sync()
        let conflict = try #require(try b.conflicts().first { $0.id == id && $0.field == "exists" })
        #expect(conflict.heads.contains { $0.detail == "edited +sofft:S4" })
        try b.resolve(id.hex, field: "exists", pick: nil, value: "delete")
        try sync()
        for records in [a, b] { #expect(try !records.record(.learning, id).live && records.conflicts().isEmpty) }
        // Restore keeps working.
        try a.setExists(id.hex, as: .learning, exists: true)
        try sync()
        #expect(try b.record(.learning, id).live && b.record(.learning, id).tags["sofft"] == ["S1", "S4"])
    }

    @Test("the same tag added at two sites, or two concurrent edits of different fields, are not conflicts")
    func equalValues() throws {
        let id = try make(.learning)
        try a.set(id.hex, as: .learning, fields: [:], addTags: ["sofft": ["S6"]])
        try b.set(id.hex, as: .learning, fields: [:], addTags: ["sofft": ["S6"]])
        try a.set(id.hex, as: .learning, fields: ["effect": "helped"])
        try b.set(id.hex, as: .learning, fields: ["text": "Huddles helped, said the team"])
        try sync()
        for records in [a, b] {
            #expect(try records.conflicts().isEmpty)
            let view = try records.record(.learning, id)
            #expect(view.tags["sofft"] == ["S1", "S6"] && view.text("effect") == "helped")
        }
        // Removing it afterwards removes it everywhere: the remove saw both adds.
        try a.set(id.hex, as: .learning, fields: [:], removeTags: ["sofft": ["S6"]])
        try sync()
        #expect(try b.record(.learning, id).tags["sofft"] == ["S1"])
    }

    @Test("sequential edits after a sync never show as conflicts, and an edit of a deleted record is refused")
    func sequential() throws {
        let id = try make(.initiative)
        try b.set(id.hex, as: .initiative, fields: ["status": "active"])
        try sync()
        try a.setExists(id.hex, as: .initiative, exists: false)
        try sync()
        #expect(throws: DomainError.self) { try b.set(id.hex, as: .initiative, fields: ["status": "closed"]) }
        #expect(try a.conflicts().isEmpty && b.conflicts().isEmpty)
    }
}
