import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore
import Testing

/// protocol/vectors/merge-delete-edit.txt: the rule of SPEC section 5 for a delete against a
/// concurrent edit, as bytes: three entries and the state every replica must reach, whatever
/// order they arrive in.
@Suite("Merge vector: a delete against a concurrent edit")
struct MergeVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/merge-delete-edit.txt")

    /// Site A (key 01…20) creates initiative a0…ab 4f7c7488, then deletes it; site B (key 21…40),
    /// having seen only the creation, edits its title.
    static func entries() throws -> (a: SiteSigner, b: SiteSigner, create: LogEntry, delete: LogEntry, edit: LogEntry) {
        let a = try SiteSigner(rawRepresentation: Array(1...32)), b = try SiteSigner(rawRepresentation: Array(33...64))
        let id = Array(0xA0...0xAB) + RecordID.ownerTag(ofTrust: "RXH")
        let create = LogEntry(signer: a, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash, hlc: HLC(milliseconds: 1_790_000_000_000, counter: 0),
                              change: Change(rows: [RowWrite(table: 2, key: id, cells: [
                                  CellWrite(column: 0, value: .integer(1)), CellWrite(column: 1, value: .text("RXH")),
                                  CellWrite(column: 2, value: .text("trust")), CellWrite(column: 4, value: .text("Reduce falls")),
                              ])]))
        let delete = LogEntry(signer: a, scope: .trust, seq: 2, previousHash: create.hash, hlc: HLC(milliseconds: 1_790_000_060_000, counter: 0),
                              change: Change(rows: [RowWrite(table: 2, key: id, cells: [CellWrite(column: 0, value: .integer(0), supersedes: [create.ref])])]))
        let edit = LogEntry(signer: b, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash, hlc: HLC(milliseconds: 1_790_000_030_000, counter: 0),
                            change: Change(rows: [RowWrite(table: 2, key: id, cells: [
                                CellWrite(column: 0, value: .integer(1), supersedes: [create.ref]),
                                CellWrite(column: 4, value: .text("Reduce falls at night"), supersedes: [create.ref]),
                            ])]))
        return (a, b, create, delete, edit)
    }

    static let outcome = """
        # After all three, in any order: the existence register (column 0) has two heads, A's delete
        # (value 0, HLC …060000) and B's edit (value 1, HLC …030000): different values, so a conflict
        # on column 0. The displayed value is the head with the greater (HLC, origin): the delete, so
        # live = 0. The title (column 4) has one head, B's edit: "Reduce falls at night". A write that
        # supersedes both existence heads settles it: 1 keeps the record with B's title, 0 deletes it.
        """

    @Test("the vector decodes, and applied in every order to a replica gives the stated outcome")
    func vector() throws {
        let (a, b, create, delete, edit) = try Self.entries()
        if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
            var text = """
                # A delete against a concurrent edit (protocol/SPEC.md, section 5). Site A's key is the Ed25519
                # private key 01 02 … 20, site B's 21 22 … 40, both of trust RXH. A creates initiative
                # a0a1a2a3a4a5a6a7a8a9aaab4f7c7488 (entry A/trust/1), B edits its title having seen only that
                # (B/trust/1: exists=1 and title, each superseding A/trust/1), and A, not having seen B's edit,
                # deletes it (A/trust/2: exists=0 superseding A/trust/1).

                """
            for (name, entry) in [("create", create), ("edit", edit), ("delete", delete)] {
                text += "\(name): \(Hex.encode(entry.encoded()))\n"
            }
            try (text + "\n" + Self.outcome + "\n").write(to: Self.file, atomically: true, encoding: .utf8)
        }
        let lines = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n")
        func entry(_ name: String) throws -> LogEntry {
            try LogEntry(decoding: try #require(lines.first { $0.hasPrefix(name + ": ") }.flatMap { Hex.decode(String($0.dropFirst(name.count + 2))) }))
        }
        #expect(try entry("create") == create && entry("edit") == edit && entry("delete") == delete)
        let orders = [[create, edit, delete], [delete, edit, create], [edit, create, delete], [delete, create, edit]]
        var states: [[String]] = []
        for (index, order) in orders.enumerated() {
            let harness = try TestReplicas()
            let replica = try harness.make("c\(index)")
            // The replica holds A's and B's enrolments, as after syncing with their hub.
            _ = try harness.make("a", signer: a)
            _ = try harness.make("b", signer: b)
            try replica.importDirectory(try harness.directoryRecords())
            for entry in order { try replica.apply([entry]) }
            let key = try create.change().rows[0].key
            let existence = try replica.heads(table: 2, key: key, column: 0)
            #expect(Set(existence.map(\.ref)) == [delete.ref, edit.ref])
            #expect(existence.first?.value == .integer(0), "the delete has the greater HLC, so it is shown")
            #expect(try replica.heads(table: 2, key: key, column: 4).map(\.value) == [.text("Reduce falls at night")])
            #expect(try replica.conflicts().map(\.column) == [0])
            // The record's row, its heads and its conflicts (each replica's own site row differs).
            let state = try replica.canonicalState().sections
            states.append((state["initiative"] ?? []) + (state["heads"] ?? []).filter { $0.hasPrefix("initiative|") } + (state["conflicts"] ?? []))
        }
        #expect(states.allSatisfy { $0 == states[0] })
    }
}
