import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// The merge rules on hand-made scenarios: what is and is not a conflict, deletes, late writes, gaps.
@Suite("Merge rules")
struct MergeRuleTests {
    let table = RecordKind.initiative.table.id
    let title: UInt16 = 4
    let key: [UInt8] = Array(repeating: 7, count: 12) + RecordID.ownerTag(ofTrust: "RXH")
    /// Kept for the whole test: its folder holds the replicas.
    let harness: TestReplicas

    init() throws { harness = try TestReplicas() }

    func create(_ replica: Replica, _ text: String = "first") throws {
        try replica.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(1)), (title, .text(text))])])
    }

    func edit(_ replica: Replica, _ text: String) throws {
        try replica.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(title, .text(text))])])
    }

    func sync(_ from: Replica, to: Replica) throws {
        try to.apply(try from.entries(after: to.versionVector()))
    }

    @Test("sequential edits at two sites are not a conflict")
    func sequentialEdits() throws {
        let a = try harness.make("a"), b = try harness.make("b")
        try create(a)
        try sync(a, to: b)
        try edit(b, "second")
        try sync(b, to: a)
        try edit(a, "third")
        try sync(a, to: b)
        for replica in [a, b] {
            let heads = try replica.heads(table: table, key: key, column: title)
            #expect(heads.map(\.value) == [.text("third")])
            #expect(try replica.conflicts().isEmpty)
        }
    }

    @Test("concurrent edits are a visible conflict until a resolving write")
    func concurrentEdits() throws {
        let a = try harness.make("a"), b = try harness.make("b")
        try create(a)
        try sync(a, to: b)
        try edit(a, "from a")
        harness.clock.advance()
        try edit(b, "from b")
        try sync(a, to: b)
        try sync(b, to: a)
        for replica in [a, b] {
            let heads = try replica.heads(table: table, key: key, column: title)
            #expect(Set(heads.map(\.value)) == [.text("from a"), .text("from b")])
            #expect(heads.first?.value == .text("from b"), "the later HLC is shown")
            #expect(try replica.conflicts().count == 1)
        }
        try edit(a, "settled")
        try sync(a, to: b)
        for replica in [a, b] {
            #expect(try replica.heads(table: table, key: key, column: title).map(\.value) == [.text("settled")])
            #expect(try replica.conflicts().isEmpty)
        }
        #expect(try a.canonicalState() == b.canonicalState())
    }

    @Test("a delete against a concurrent edit is a conflict on existence; a restore settles it")
    func deleteAgainstEdit() throws {
        let a = try harness.make("a"), b = try harness.make("b")
        try create(a)
        try sync(a, to: b)
        try a.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(0))])])
        try b.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(1)), (title, .text("kept"))])])
        try sync(a, to: b)
        try sync(b, to: a)
        #expect(try a.conflicts().map(\.column) == [0])
        try a.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(1))])])
        try sync(a, to: b)
        #expect(try b.conflicts().isEmpty)
        #expect(try b.heads(table: table, key: key, column: 0).map(\.value) == [.integer(1)])
        #expect(try b.heads(table: table, key: key, column: title).map(\.value) == [.text("kept")])
    }

    @Test("a superseded write arriving after the write that superseded it stays hidden")
    func lateSupersededWrite() throws {
        let a = try harness.make("a"), b = try harness.make("b"), c = try harness.make("c")
        try create(a)
        try sync(a, to: b)
        try edit(b, "newer")
        // c hears b's edit before a's original.
        try c.apply(try b.entries(after: VersionVector()).filter { $0.origin == b.identity.origin })
        #expect(try c.heads(table: table, key: key, column: title).map(\.value) == [.text("newer")])
        try c.apply(try a.entries(after: VersionVector()))
        #expect(try c.heads(table: table, key: key, column: title).map(\.value) == [.text("newer")])
        #expect(try c.conflicts().isEmpty)
        try sync(c, to: a)
        #expect(try c.canonicalState() == a.canonicalState())
    }

    @Test("entries whose predecessors are missing wait, then apply when the gap is filled")
    func gapsWait() throws {
        let a = try harness.make("a"), b = try harness.make("b")
        try create(a)
        try edit(a, "two")
        try edit(a, "three")
        let entries = try a.entries(after: VersionVector()).filter { $0.scope == .trust }
        #expect(entries.map(\.seq) == [1, 2, 3])
        let waiting = try b.apply([entries[2], entries[1]])
        #expect(waiting.waiting == 2 && waiting.applied == 0)
        #expect(try b.heads(table: table, key: key, column: title).isEmpty)
        let filled = try b.apply([entries[0]])
        #expect(filled.applied == 1 && filled.released == 2)
        #expect(try b.waitingEntryCount() == 0)
        #expect(try b.heads(table: table, key: key, column: title).map(\.value) == [.text("three")])
    }

    @Test("applying the same entries again changes nothing")
    func idempotent() throws {
        let a = try harness.make("a"), b = try harness.make("b")
        try create(a)
        try edit(a, "two")
        let entries = try a.entries(after: VersionVector())
        try b.apply(entries)
        let before = try b.canonicalState()
        let again = try b.apply(entries + entries)
        #expect(again.applied == 0 && again.duplicates == entries.count)
        #expect(try b.canonicalState() == before)
    }

    @Test("a local write over a column's limit is refused and writes nothing")
    func overLongRefused() throws {
        let a = try harness.make("a")
        let vector = try a.versionVector()
        #expect(throws: StoreError.self) {
            try a.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(title, .text(String(repeating: "x", count: 201)))])])
        }
        #expect(try a.versionVector() == vector)
    }
}
