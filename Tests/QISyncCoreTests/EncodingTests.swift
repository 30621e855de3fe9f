import QISyncCore
import Testing

@Suite("Encodings")
struct EncodingTests {
    @Test("varints and zig-zag integers round-trip", arguments: [0, 1, 127, 128, 300, Int64.max, Int64.min, -1, -64, 1 << 40])
    func integers(value: Int64) throws {
        var writer = ByteWriter()
        writer.write(zigzag: value)
        writer.write(varint: UInt64(bitPattern: value))
        var reader = ByteReader(writer.bytes)
        #expect(try reader.readZigzag() == value)
        #expect(try reader.readVarint() == UInt64(bitPattern: value))
        #expect(reader.isAtEnd)
    }

    @Test("an over-long varint is refused")
    func overlongVarint() {
        var reader = ByteReader([UInt8](repeating: 0xFF, count: 11))
        #expect(throws: DecodingError.self) { try reader.readVarint() }
    }

    static func randomChange(_ rng: inout SplitMix64, origins: [OriginID]) -> Change {
        let values: [Value] = [.null, .integer(Int64.random(in: .min ... .max, using: &rng)), .real(Double.random(in: -1e9...1e9, using: &rng)),
                               .text("tëxt ✓ \(Int.random(in: 0...999, using: &rng))"), .blob((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })]
        return Change(rows: (0..<Int.random(in: 1...4, using: &rng)).map { _ in
            RowWrite(table: UInt16.random(in: 1...9, using: &rng), key: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) },
                     cells: Array(Set((0..<Int.random(in: 1...6, using: &rng)).map { _ in UInt16.random(in: 0...20, using: &rng) })).sorted().map { column in
                         CellWrite(column: column, value: values.randomElement(using: &rng)!,
                                   supersedes: (0..<Int.random(in: 0...2, using: &rng)).map { _ in
                                       VersionRef(origin: origins.randomElement(using: &rng)!, scope: Bool.random(using: &rng) ? .trust : .shared,
                                                  seq: UInt64.random(in: 1...1_000_000, using: &rng))
                                   })
                     })
        })
    }

    @Test("changes and entries: decode(encode(x)) == x", arguments: 0..<50)
    func roundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let signers = [SiteSigner(), SiteSigner()]
        let change = Self.randomChange(&rng, origins: signers.map(\.origin))
        #expect(try Change(decoding: change.encoded()) == change)
        let entry = LogEntry(signer: signers[0], scope: .shared, seq: 7, previousHash: [UInt8](repeating: 3, count: 32), hlc: HLC(rawValue: seed), change: change)
        let decoded = try LogEntry(decoding: entry.encoded())
        #expect(decoded == entry)
        #expect(decoded.hasValidSignature)
    }

    @Test("every truncation of an entry is refused, never misread", arguments: 0..<5)
    func truncations(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let signer = SiteSigner()
        let entry = LogEntry(signer: signer, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash, hlc: HLC(rawValue: 1),
                             change: Self.randomChange(&rng, origins: [signer.origin]))
        let bytes = entry.encoded()
        for length in 0..<bytes.count {
            #expect(throws: DecodingError.self) { try LogEntry(decoding: Array(bytes.prefix(length))) }
        }
        #expect(throws: DecodingError.self) { try LogEntry(decoding: bytes + [0]) }
    }

    @Test("a column written twice in one row is refused")
    func duplicateColumn() {
        let change = Change(rows: [RowWrite(table: 2, key: [1], cells: [CellWrite(column: 3, value: .null), CellWrite(column: 3, value: .null)])])
        #expect(throws: DecodingError.self) { try Change(decoding: change.encoded()) }
    }

    @Test("a row written twice in one change is refused; one row, or two rows, once each, are read back")
    func duplicateRow() throws {
        let row = RowWrite(table: 2, key: [1, 2], cells: [CellWrite(column: 3, value: .text("Llanfair £5 at 37°C"))])
        let other = RowWrite(table: 2, key: [1, 3], cells: [CellWrite(column: 3, value: .integer(7))])
        #expect(throws: DecodingError("row 0102 of table 2 is written twice in one change")) { try Change(decoding: Change(rows: [row, other, row]).encoded()) }
        #expect(try Change(decoding: Change(rows: [row]).encoded()) == Change(rows: [row]))
        #expect(try Change(decoding: Change(rows: [row, other]).encoded()) == Change(rows: [row, other]))
    }

    @Test("a text value holding NUL is refused, wherever the NUL is")
    func nulInText() throws {
        for text in ["\u{0}", "a\u{0}", "\u{0}b", "Ysbyty Gwynedd \u{0} £", String(repeating: "é", count: 40) + "\u{0}"] {
            let change = Change(rows: [RowWrite(table: 2, key: [1], cells: [CellWrite(column: 3, value: .text(text))])])
            #expect(throws: DecodingError("a text value holds U+0000 (NUL)")) { try Change(decoding: change.encoded()) }
        }
    }

    @Test("record id prefixes become byte ranges", arguments: [("a", "a0", "af"), ("ab1", "ab10", "ab1f"), ("0123", "0123", "0123")])
    func prefixes(text: String, low: String, high: String) throws {
        let prefix = try RecordIDPrefix(text)
        #expect(Hex.encode(prefix.lowerBound).hasPrefix(low) && Hex.encode(prefix.lowerBound).hasSuffix("00"))
        #expect(Hex.encode(prefix.upperBound).hasPrefix(high) && Hex.encode(prefix.upperBound).hasSuffix("ff"))
    }

    @Test("a prefix that is not hex is refused with the reason")
    func badPrefix() {
        #expect(throws: DecodingError.self) { try RecordIDPrefix("xyz") }
        #expect(throws: DecodingError.self) { try RecordIDPrefix("") }
    }
}

@Suite("Clock and register")
struct ClockAndRegisterTests {
    @Test("the HLC always moves forward, past anything received")
    func clock() {
        var clock = HybridLogicalClock()
        let a = clock.tick(now: 1000)
        let b = clock.tick(now: 1000)
        let c = clock.tick(now: 999)
        #expect(a < b && b < c)
        clock.receive(HLC(milliseconds: 5000, counter: 7))
        #expect(clock.tick(now: 1000) > HLC(milliseconds: 5000, counter: 7))
    }

    @Test("register heads do not depend on the order writes arrive in", arguments: 0..<30)
    func orderIndependence(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        // Writes 0..<n; each supersedes a random subset of earlier ones (what its writer saw).
        let n = Int.random(in: 2...8, using: &rng)
        let supersedes = (0..<n).map { i in Set((0..<i).filter { _ in Bool.random(using: &rng) }) }
        let expected = Set((0..<n).filter { w in !supersedes.contains { $0.contains(w) } })
        for _ in 0..<10 {
            var heads = Set<Int>()
            var applied = Set<Int>()
            var pending = Set<Int>()
            for w in (0..<n).shuffled(using: &rng) {
                heads = MultiValueRegister.apply(heads: heads, write: w, supersedes: supersedes[w].intersection(applied), isSuperseded: pending.contains(w))
                pending.formUnion(supersedes[w].subtracting(applied))
                applied.insert(w)
            }
            #expect(heads == expected)
        }
    }
}
