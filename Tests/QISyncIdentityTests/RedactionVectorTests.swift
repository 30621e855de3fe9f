import Crypto
import Foundation
import QISyncCore
@testable import QISyncIdentity
import Testing

/// protocol/vectors/redaction.txt (SPEC 3 and 12): an entry, the same entry redacted, and the
/// trust key's redaction record that vouches for it, byte for byte.
@Suite("Redaction vector")
struct RedactionVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/redaction.txt")

    /// Site key 01…20 writes a learning entry (table 4) whose text (column 6) holds an NHS
    /// number; trust key 41…60 redacts that cell at 1,790,000,600,000 ms.
    static func made() throws -> (original: LogEntry, redacted: LogEntry, redaction: Redaction, trust: TrustKey) {
        let site = try SiteSigner(rawRepresentation: Array(1...32))
        let trust = try TrustKey(rawRepresentation: Array(0x41...0x60))
        let key = Array(0xB0...0xBB) + RecordID.ownerTag(ofTrust: "RXH")
        let original = LogEntry(signer: site, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash,
                                hlc: HLC(milliseconds: 1_790_000_000_000, counter: 0),
                                change: Change(rows: [RowWrite(table: 4, key: key, cells: [
                                    CellWrite(column: 0, value: .integer(1)), CellWrite(column: 1, value: .text("RXH")),
                                    CellWrite(column: 6, value: .text("Mrs Evans fell, NHS 943 476 5919")),
                                ])]))
        let (redaction, redacted) = try Redaction.issue(entry: original, cells: [Redaction.Cell(table: 4, key: key, column: 6)],
                                                        reason: "patient details typed by mistake", at: 1_790_000_600_000, by: trust)
        return (original, redacted, redaction, trust)
    }

    @Test("the vector decodes; the redacted entry keeps the hash and signature; the record vouches for exactly its body")
    func vector() throws {
        let (original, redacted, redaction, _) = try Self.made()
        if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
            let text = """
                # A redaction (protocol/SPEC.md, sections 3 and 12). Site key: the Ed25519 private key 01 02 … 20;
                # trust key: 41 42 … 60, trust RXH. The site's entry 1 (trust scope) creates learning entry
                # b0b1…bb4f7c7488 with text "Mrs Evans fell, NHS 943 476 5919"; the trust redacts that cell
                # (table 4, column 6) at 1790000600000 ms with reason "patient details typed by mistake".
                # entry: the original entry (section 3 encoding); redacted: the same entry with its redacted body
                # (FF 52, the original hash, the change with the cell's value replaced by the text "[redacted]");
                # record: the directory record of kind 5 (its bytes, without the kind).
                entry: \(Hex.encode(original.encoded()))
                redacted: \(Hex.encode(redacted.encoded()))
                record: \(Hex.encode(redaction.record.bytes))

                # Both entries have hash \(Hex.encode(original.hash)) and the same valid
                # signature; SHA-256 of the redacted body is the record's bodyDigest.

                """
            try text.write(to: Self.file, atomically: true, encoding: .utf8)
        }
        let lines = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n")
        func field(_ name: String) throws -> [UInt8] {
            try #require(lines.first { $0.hasPrefix(name + ": ") }.flatMap { Hex.decode(String($0.dropFirst(name.count + 2))) })
        }
        let entry = try LogEntry(decoding: try field("entry")), redactedEntry = try LogEntry(decoding: try field("redacted"))
        let record = try Redaction(record: DirectoryRecord(kind: .redaction, bytes: try field("record")))
        #expect(entry == original && redactedEntry == redacted && record == redaction)
        #expect(redactedEntry.isRedacted && !entry.isRedacted)
        #expect(redactedEntry.hash == entry.hash && redactedEntry.hasValidSignature)
        #expect(record.vouches(for: redactedEntry) && !record.vouches(for: entry))
        #expect(record.redact(entry) == redactedEntry, "a replica holding the original makes exactly the vouched-for body")
        #expect(try redactedEntry.change().rows[0].cells.first { $0.column == 6 }?.value == .text(Redaction.marker))
        #expect(Array(SHA256.hash(data: redactedEntry.body)) == record.bodyDigest)
    }

    @Test("no change body can be mistaken for a redacted one, and a redacted body alone vouches for nothing")
    func prefixIsUnambiguous() throws {
        #expect(throws: DecodingError.self) { try Change(decoding: LogEntry.redactedPrefix + [UInt8](repeating: 0, count: 40)) }
        let (_, redacted, redaction, trust) = try Self.made()
        // Another body under the same hash: the record does not vouch for it.
        let other = redacted.redacted(to: Change(rows: []))
        #expect(other.hash == redacted.hash && !redaction.vouches(for: other))
        // A record altered after signing does not verify.
        var bytes = redaction.record.bytes
        bytes[bytes.count - 70] ^= 1
        #expect(throws: IdentityError.self) { try Redaction(record: DirectoryRecord(kind: .redaction, bytes: bytes)) }
        #expect(redaction.trustFingerprint == trust.fingerprint)
    }
}
