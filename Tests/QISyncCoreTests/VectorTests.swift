import Foundation
import QISyncCore
import Testing

/// The byte-exact examples in protocol/vectors/, decoded and re-encoded.
///
/// Set QISYNC_RECORD_VECTORS=1 to rewrite the files from the values below (then review the diff).
@Suite("Protocol vectors")
struct VectorTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors")

    /// The example: site key bytes 1...32 creates an initiative, then edits its title.
    static func examples() throws -> [(name: String, entry: LogEntry, meaning: String)] {
        let signer = try SiteSigner(rawRepresentation: Array(1...32))
        let id = try RecordID(bytes: Array(0xA0...0xAB) + RecordID.ownerTag(ofTrust: "RXH"))
        let create = Change(rows: [RowWrite(table: 2, key: id.bytes, cells: [
            CellWrite(column: 0, value: .integer(1)), CellWrite(column: 1, value: .text("RXH")), CellWrite(column: 2, value: .text("trust")),
            CellWrite(column: 4, value: .text("Reduce falls")), CellWrite(column: 10, value: .real(2.5)),
        ])])
        let first = LogEntry(signer: signer, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash,
                             hlc: HLC(milliseconds: 1_790_000_000_000, counter: 0), change: create)
        let edit = Change(rows: [RowWrite(table: 2, key: id.bytes, cells: [
            CellWrite(column: 0, value: .integer(1), supersedes: [first.ref]),
            CellWrite(column: 4, value: .text("Reduce falls at night"), supersedes: [first.ref]),
        ])])
        let second = LogEntry(signer: signer, scope: .trust, seq: 2, previousHash: first.hash,
                              hlc: HLC(milliseconds: 1_790_000_000_000, counter: 1), change: edit)
        return [
            ("log-entry-create", first, "origin = Ed25519 public key of the private key 01 02 … 20; trust log, seq 1, genesis previous hash, "
                + "HLC 1790000000000 ms counter 0; initiative a0a1…ab4f7c7488 (owned by RXH): exists=1, owner_trust='RXH', scope='trust', title='Reduce falls', score=2.5"),
            ("log-entry-edit", second, "same origin; trust log, seq 2, previous hash = hash of seq 1, HLC counter 1; "
                + "exists=1 superseding (this origin, trust, seq 1), as every edit asserts its row's existence (SPEC 5); "
                + "title='Reduce falls at night' superseding (this origin, trust, seq 1)"),
        ]
    }

    static func render(_ entry: LogEntry, meaning: String) -> String {
        """
        # \(meaning)
        hash: \(Hex.encode(entry.hash))
        body: \(Hex.encode(entry.body))
        entry: \(Hex.encode(entry.encoded()))

        """
    }

    static func field(_ name: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
    }

    @Test("each vector decodes to its meaning and re-encodes to the same bytes")
    func vectors() throws {
        for example in try Self.examples() {
            let url = Self.directory.appendingPathComponent(example.name + ".txt")
            if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
                try Self.render(example.entry, meaning: example.meaning).write(to: url, atomically: true, encoding: .utf8)
            }
            let text = try String(contentsOf: url, encoding: .utf8)
            let hex = try #require(Self.field("entry", in: text))
            let bytes = try #require(Hex.decode(hex))
            let decoded = try LogEntry(decoding: bytes)
            #expect(decoded == example.entry)
            #expect(decoded.hasValidSignature)
            #expect(Hex.encode(decoded.hash) == Self.field("hash", in: text))
            #expect(Hex.encode(decoded.body) == Self.field("body", in: text))
            #expect(try decoded.change() == example.entry.change())
            #expect(decoded.encoded() == bytes)
        }
    }
}
