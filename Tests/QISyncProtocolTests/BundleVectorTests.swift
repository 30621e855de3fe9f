import Foundation
import QISyncCore
import QISyncProtocol
import Testing

/// protocol/vectors/bundle.txt: a whole bundle and its receipt, byte for byte (SPEC section 15).
@Suite("Bundle vectors")
struct BundleVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/bundle.txt")

    /// The ward of the other vectors (key 01…20) bundles its one entry for the hub of its trust.
    static func make() throws -> (bundle: [UInt8], receipt: [UInt8], header: BundleHeader, entry: LogEntry) {
        let ward = try SiteSigner(rawRepresentation: Array(1...32))
        let hub = try SiteSigner(rawRepresentation: Array(33...64))
        let change = Change(rows: [RowWrite(table: 2, key: Array(0xA0...0xAB) + RecordID.ownerTag(ofTrust: "RXH"), cells: [
            CellWrite(column: 0, value: .integer(1)), CellWrite(column: 4, value: .text("Reduce falls")),
        ])])
        let entry = LogEntry(signer: ward, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash,
                             hlc: HLC(milliseconds: 1_790_000_000_000, counter: 0), change: change)
        let header = BundleHeader(sender: ward.origin, senderTrust: "RXH", senderSite: "ward-7", createdMilliseconds: 1_790_000_100_000,
                                  forTrust: "RXH", forSite: "hub", since: VersionVector(), entries: 1, bodyBytes: UInt64(entry.body.count))
        // What the ward expects the hub to hold afterwards: its trust log at entry 1.
        let expected = VersionVector([LogID(origin: ward.origin, scope: .trust): LogPosition(seq: 1, hash: entry.hash)])
        let frames = try BundleFile.frames([
            .hello(Hello(origin: ward.origin, trust: "RXH", site: "ward-7", kind: "ward", sends: true, receives: false)),
            .directory([]), .vectorDigests(expected.bucketDigests), .vector(VersionVector()), .offer(entries: 1, bytes: UInt64(entry.body.count)),
            .batch(id: 1, entries: [entry]), .done,
        ])
        let bundle = BundleFile.assemble(header: header, payload: frames, sign: ward.sign)
        // The hub holds that, and its own trust log at entry 3: only its own log's bucket differs.
        var held = expected
        held.positions[LogID(origin: hub.origin, scope: .trust)] = LogPosition(seq: 3, hash: [UInt8](repeating: 0x33, count: 32))
        let receipt = BundleReceipt(origin: hub.origin, trust: "RXH", site: "hub", createdMilliseconds: 1_790_000_200_000,
                                    bundleDigest: BundleFile.digest(bundle), held: held, expected: expected.bucketDigests,
                                    directory: [DirectoryGroup(trust: [UInt8](repeating: 0x77, count: 32), pinned: true,
                                                               digest: [UInt8](repeating: 0, count: 32))])
        return (bundle, receipt.encoded(sign: hub.sign), header, entry)
    }

    @Test("the recorded bundle and receipt parse, verify and rebuild to the same bytes")
    func vector() throws {
        let made = try Self.make()
        if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
            let text = """
                # A bundle (protocol/SPEC.md, section 15), format version 3: the ward of sync-session.txt (key 01 02 … 20,
                # trust RXH, site ward-7) carries entry 1 of its trust log (initiative a0…ab 4f7c7488, "Reduce falls") to
                # the hub of its trust, by hand. Not sealed (same trust); no sender enrolment in the header and no directory
                # records (both sides hold them already); created at 1790000100000 ms. Its VECTOR DIGESTS are those of
                # what it expects the hub to hold afterwards: the ward's trust log at entry 1. The payload runs to the last
                # 64 bytes, the ward's signature of SHA-256 of everything before them.
                # Then the hub's receipt (key 21 22 … 40) after importing it, created at 1790000200000 ms, format
                # version 3: the hub holds the ward's trust log at entry 1 and its own trust log at entry 3 (hash 33 33 …
                # 33), so one bucket differs from the bundle's digests (the mask names it) and the receipt lists that
                # bucket's logs only, with the digest of the hub's whole vector; its directory by trust is one trust
                # (fingerprint 77 77 … 77), pinned, with no records.

                bundle: \(Hex.encode(made.bundle))
                receipt: \(Hex.encode(made.receipt))

                """
            try text.write(to: Self.file, atomically: true, encoding: .utf8)
            let corpus = FuzzRegressionTests.fuzz.appendingPathComponent("corpus")
            try Data(made.bundle).write(to: corpus.appendingPathComponent("bundle.bin"))
            try Data(made.receipt).write(to: corpus.appendingPathComponent("receipt.bin"))
        }
        let lines = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n")
        let bundle = try #require(lines.first { $0.hasPrefix("bundle: ") }.flatMap { Hex.decode(String($0.dropFirst(8))) })
        let receipt = try #require(lines.first { $0.hasPrefix("receipt: ") }.flatMap { Hex.decode(String($0.dropFirst(9))) })
        #expect(bundle == made.bundle && receipt == made.receipt)
        let parsed = try BundleFile(parsing: bundle)
        #expect(parsed.header == made.header && parsed.isSignatureValid && !parsed.header.isSealed)
        let messages = try BundleFile.messages(in: parsed.payload)
        #expect(messages.map(\.name) == ["HELLO", "DIRECTORY", "VECTOR DIGESTS", "VECTOR", "OFFER", "BATCH", "DONE"])
        guard case .batch(_, let entries) = messages[5], case .vectorDigests(let digests) = messages[2] else { Issue.record("no batch"); return }
        #expect(entries == [made.entry])
        let decoded = try BundleReceipt(parsing: receipt)
        #expect(decoded.bundleDigest == BundleFile.digest(bundle) && decoded.site == "hub" && receipt[14] == 3)
        // The ward rebuilds the hub's whole vector from what it expected and the one bucket listed.
        let expected = VersionVector([LogID(origin: made.entry.origin, scope: .trust): LogPosition(seq: 1, hash: made.entry.hash)])
        #expect(expected.bucketDigests == digests)
        let held = try #require(decoded.heldVector(expected: expected))
        #expect(held.positions.count == 2 && held.seq(of: LogID(origin: decoded.origin, scope: .trust)) == 3)
        #expect(VersionVector.buckets(in: try #require(decoded.difference).buckets).count == 1)
        // Against another expectation it does not rebuild, and says so.
        #expect(decoded.heldVector(expected: VersionVector()) == nil && decoded.heldVector(expected: nil) == nil)
    }

    @Test("version-1 (no directory) and version-2 (whole vector) receipts are still read")
    func olderReceipts() throws {
        let hub = try SiteSigner(rawRepresentation: Array(33...64))
        let receipt = BundleReceipt(origin: hub.origin, trust: "RXH", site: "hub", createdMilliseconds: 1, bundleDigest: [UInt8](repeating: 1, count: 32),
                                    vector: VersionVector())
        let bytes = receipt.encoded(sign: hub.sign)
        #expect(bytes[14] == 1)
        let parsed = try BundleReceipt(parsing: bytes)
        #expect(parsed == receipt && parsed.directory == nil)
        let whole = VersionVector([LogID(origin: hub.origin, scope: .shared): LogPosition(seq: 9, hash: [UInt8](repeating: 9, count: 32))])
        let two = BundleReceipt(origin: hub.origin, trust: "RXH", site: "hub", createdMilliseconds: 1, bundleDigest: [UInt8](repeating: 1, count: 32),
                                vector: whole, directory: [])
        let twoBytes = two.encoded(sign: hub.sign)
        #expect(twoBytes[14] == 2)
        let parsedTwo = try BundleReceipt(parsing: twoBytes)
        #expect(parsedTwo == two && parsedTwo.difference == nil && parsedTwo.heldVector(expected: nil) == whole)
        #expect(try BundleReceipt(parsing: try Self.make().receipt).directory?.count == 1)
    }

    @Test("every truncation of the bundle, and every flipped byte of the receipt, is refused")
    func damage() throws {
        let made = try Self.make()
        // A bundle cut short or padded either does not parse or no longer matches its signature
        // (its payload runs to the last 64 bytes, which are then no longer the signature).
        for length in 0..<made.bundle.count {
            #expect((try? BundleFile(parsing: Array(made.bundle.prefix(length))))?.isSignatureValid != true, "cut to \(length) bytes")
        }
        #expect((try? BundleFile(parsing: made.bundle + [0]))?.isSignatureValid != true)
        for index in 0..<made.receipt.count {
            var bytes = made.receipt
            bytes[index] ^= 0x01
            #expect(throws: DecodingError.self) { try BundleReceipt(parsing: bytes) }
        }
        for index in stride(from: 0, to: made.bundle.count, by: 7) {
            var bytes = made.bundle
            bytes[index] ^= 0x01
            let parsed = try? BundleFile(parsing: bytes)
            #expect(parsed?.isSignatureValid != true)
        }
    }
}
