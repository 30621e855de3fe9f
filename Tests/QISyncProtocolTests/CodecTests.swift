import Foundation
import NIOCore
import NIOTestUtils
import QISyncCore
import QISyncFuzzHarness
import QISyncProtocol
import Testing

@Suite("Frames and the compressed payload stream")
struct CodecTests {
    func frame(_ bytes: [UInt8]) -> ByteBuffer { FrameEncoder.frame(ByteBuffer(bytes: bytes)) }

    @Test("the frame decoder handles drip-fed bytes, many frames per buffer and leftovers")
    func dripFed() throws {
        let payloads: [[UInt8]] = [[1], Array(repeating: 7, count: 300), Array(0...255), [9, 9]]
        var all = ByteBuffer()
        for payload in payloads { all.writeImmutableBuffer(frame(payload)) }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(all, payloads.map { ByteBuffer(bytes: $0) })],
            decoderFactory: { FrameDecoder() })
    }

    @Test("a frame over the limit is refused from its length alone")
    func oversizedFrame() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(WireLimits.maximumFrame + 1))
        #expect(throws: SyncError(.frameTooLarge, "a frame of \(WireLimits.maximumFrame + 1) bytes; the limit is \(WireLimits.maximumFrame)")) {
            _ = try FrameDecoder.nextFrame(from: &buffer)
        }
        var empty = ByteBuffer()
        empty.writeInteger(UInt32(0))
        #expect(throws: SyncError.self) { _ = try FrameDecoder.nextFrame(from: &empty) }
    }

    static func sampleMessages() -> [SyncMessage] {
        let signer = SiteSigner()
        let entry = LogEntry(signer: signer, scope: .shared, seq: 1, previousHash: LogEntry.genesisHash, hlc: HLC(rawValue: 5),
                             change: Change(rows: [RowWrite(table: 2, key: Array(repeating: 1, count: 16), cells: [CellWrite(column: 4, value: .text("hello"))])]))
        return [
            .hello(Hello(origin: signer.origin, trust: "RXH", site: "hub", kind: "hub", sends: true, receives: false)),
            .vector(VersionVector([LogID(origin: signer.origin, scope: .shared): LogPosition(seq: 1, hash: entry.hash)])),
            .offer(entries: 1, bytes: UInt64(entry.body.count)),
            .batch(id: 1, entries: [entry, entry]),
            .ack(id: 1, applied: 2, conflicts: 0, refused: 0),
            .ack(id: 2, applied: 1, conflicts: 3, refused: 1),
            .directory([DirectoryRecord(kind: .enrolment, bytes: [1, 2, 3]), DirectoryRecord(kind: .revocation, bytes: [])]),
            .summary([DirectoryGroup(trust: [UInt8](repeating: 1, count: 32), pinned: true, digest: [UInt8](repeating: 2, count: 32)),
                      DirectoryGroup(trust: [UInt8](repeating: 3, count: 32), pinned: false, digest: [UInt8](repeating: 0, count: 32))]),
            .have([[UInt8](repeating: 4, count: 32)]),
            .vectorDigests((0..<64).map { [UInt8](repeating: UInt8($0), count: 8) }),
            .done,
            .error(.timeout, "gone quiet"),
        ]
    }

    @Test("messages survive encode, compress, inflate, decode")
    func roundTrip() throws {
        let encoder = try PayloadEncoder(), decoder = try PayloadDecoder()
        for message in Self.sampleMessages() {
            #expect(try decoder.message(from: try encoder.payload(for: message)) == message)
        }
        #expect(encoder.payloadBytes < encoder.rawBytes + 64)
    }

    @Test("batches large and small, compressible or not, come through the tuned stream whole, each frame ending on its flush")
    func largeBatches() throws {
        let signer = SiteSigner()
        var generator = SystemRandomNumberGenerator()
        func noise(_ count: Int) -> String {
            String((0..<count).map { _ in Character(Unicode.Scalar(UInt32.random(in: 0x20...0x7E, using: &generator))!) })
        }
        func batch(_ id: UInt64, _ texts: [String]) -> SyncMessage {
            var previous = LogEntry.genesisHash
            let entries = texts.enumerated().map { index, text in
                let entry = LogEntry(signer: signer, scope: .shared, seq: UInt64(index + 1), previousHash: previous, hlc: HLC(rawValue: UInt64(index + 1)),
                                     change: Change(rows: [RowWrite(table: 2, key: Array(repeating: UInt8(index % 256), count: 16), cells: [CellWrite(column: 4, value: .text(text))])]))
                previous = entry.hash
                return entry
            }
            return .batch(id: id, entries: entries)
        }
        let sender = try PayloadEncoder(), receiver = try PayloadDecoder()
        _ = try receiver.message(from: try sender.payload(for: .done))
        let messages: [SyncMessage] = [
            // Text that repeats, as real batches do (NHS text: £, °C, Welsh place names).
            batch(1, (0..<512).map { "Reduce falls on Ward \($0) — £40 saved at 37.5 °C, Ysbyty Gwynedd, Llanfairpwllgwyngyll" }),
            // Text that does not: zlib's output is then about as large as its input.
            batch(2, (0..<512).map { _ in noise(2_000) }),
            // One body of 3 MB, larger than a batch's usual megabyte, then tiny messages.
            batch(3, [noise(3_000_000)]),
            .done,
        ] + Self.sampleMessages()
        for message in messages {
            let payload = try sender.payload(for: message)
            #expect(Array(payload.readableBytesView.suffix(4)) == [0, 0, 0xFF, 0xFF])
            // By bytes: a run's entries but its last arrive without signatures (SPEC 8).
            #expect(try receiver.message(from: payload).encoded() == message.encoded())
        }
        #expect(sender.payloadBytes < sender.rawBytes)
    }

    @Test("every truncation of a message is refused", arguments: 0..<10)
    func truncated(index: Int) {
        let bytes = Self.sampleMessages()[index].encoded()
        for length in 0..<bytes.count {
            #expect(throws: DecodingError.self) { _ = try SyncMessage(decoding: Array(bytes.prefix(length))) }
        }
    }

    @Test("a SUMMARY listing a trust twice or out of order, or with a pinned flag other than 0 or 1, is refused")
    func summaryRules() throws {
        let a = DirectoryGroup(trust: [UInt8](repeating: 1, count: 32), pinned: true, digest: [UInt8](repeating: 2, count: 32))
        let b = DirectoryGroup(trust: [UInt8](repeating: 3, count: 32), pinned: false, digest: [UInt8](repeating: 2, count: 32))
        for groups in [[a, a], [b, a]] {
            #expect(throws: DecodingError.self) { _ = try SyncMessage(decoding: SyncMessage.summary(groups).encoded()) }
        }
        var flagged = SyncMessage.summary([a]).encoded()
        flagged[2 + 32] = 2
        #expect(throws: DecodingError.self) { _ = try SyncMessage(decoding: flagged) }
        #expect(try SyncMessage(decoding: SyncMessage.summary([a, b]).encoded()) == .summary([a, b]))
    }

    @Test("a decompression bomb is refused at the cap, without inflating it all")
    func bomb() throws {
        let encoder = try PayloadEncoder(), decoder = try PayloadDecoder(maximumMessage: 1 << 20)
        _ = try decoder.message(from: try encoder.payload(for: .done))  // the uncompressed first message
        let huge = SyncMessage.error(.internalError, String(repeating: "a", count: 4000))
        let small = try PayloadDecoder(maximumMessage: 100)
        _ = try small.message(from: try PayloadEncoder().payload(for: .done))
        let encoder2 = try PayloadEncoder()
        _ = try encoder2.payload(for: .done)
        #expect(throws: SyncError.self) { _ = try small.message(from: try encoder2.payload(for: huge)) }
        // 64 MiB of zeros compress to about 64 KiB; the decoder stops at its 1 MiB cap.
        var zeros = ByteBuffer(repeating: 0, count: 64 << 20)
        let deflater = try PayloadEncoder()
        _ = try deflater.payload(for: .done)
        let bombPayload = try deflater.rawPayload(compressing: &zeros)
        #expect(bombPayload.readableBytes < 1 << 20)
        #expect(throws: SyncError.self) { _ = try decoder.message(from: bombPayload) }
        #expect(decoder.inflatedBytes < 2 << 20)
    }

    @Test("a corrupt compressed payload is refused")
    func corrupt() throws {
        let encoder = try PayloadEncoder(), decoder = try PayloadDecoder()
        _ = try decoder.message(from: try encoder.payload(for: .done))
        var payload = try encoder.payload(for: .offer(entries: 5, bytes: 10))
        payload.setInteger(UInt8(0xFF), at: payload.readerIndex + 1)
        payload.setInteger(UInt8(0xFF), at: payload.readerIndex)
        #expect(throws: SyncError.self) { _ = try decoder.message(from: payload) }
    }
}

/// The fuzzer's seed corpus and every input it found a problem with, replayed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz")

    static func inputs() -> [String] {
        ["corpus", "regressions"].flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: fuzz.appendingPathComponent(folder).path)) ?? [])
                .filter { !$0.hasPrefix(".") }.map { "\(folder)/\($0)" }
        }.sorted()
    }

    @Test("each saved input runs through the harness without crashing", arguments: inputs())
    func replay(name: String) throws {
        let data = try Data(contentsOf: Self.fuzz.appendingPathComponent(name))
        ProtocolFuzzHarness.run(Array(data))
    }

    @Test("the seed corpus and the regression inputs are there")
    func corpusPresent() throws {
        #expect(Self.inputs().contains("corpus/ward-to-hub.bin"))
        if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
            for (name, bytes) in try Self.regressionInputs() {
                try Data(bytes).write(to: Self.fuzz.appendingPathComponent("regressions/\(name)"))
            }
        }
        for (name, bytes) in try Self.regressionInputs() {
            #expect(try Data(contentsOf: Self.fuzz.appendingPathComponent("regressions/\(name)")) == Data(bytes), "\(name)")
        }
    }

    /// Inputs that crashed a server or a client before their numbers were checked: a peer's
    /// stream (odd length: the harness's session has batches outstanding when they arrive).
    static func regressionInputs() throws -> [(String, [UInt8])] {
        let peer = try SiteSigner(rawRepresentation: Array(65...96))
        func stream(_ messages: [SyncMessage]) throws -> [UInt8] {
            let encoder = try PayloadEncoder()
            var bytes = try messages.flatMap { Array(FrameEncoder.frame(try encoder.payload(for: $0)).readableBytesView) }
            if bytes.count % 2 == 0 { bytes.append(0) }
            return bytes
        }
        // Version 1, as they were found (the harness speaks 1 and 2).
        let hello = SyncMessage.hello(Hello(versions: 1...1, origin: peer.origin, trust: "RXH", site: "hostile", kind: "ward"))
        return [
            // ACK conflict counts that overflow a 64-bit total (crashed the sender, 2026-11).
            ("ack-conflicts-overflow.bin", try stream([hello, .vector(VersionVector()), .offer(entries: 0, bytes: 0),
                                                        .ack(id: 1, applied: 512, conflicts: .max, refused: 0),
                                                        .ack(id: 2, applied: 512, conflicts: .max, refused: 0)])),
            // An OFFER of 2^64 − 1 entries and bytes: its totals were added unchecked.
            ("offer-totals-overflow.bin", try stream([hello, .vector(VersionVector()), .offer(entries: .max, bytes: .max)])),
            // Batches out of order, past the window and beyond the offer.
            ("batches-out-of-order.bin", try stream([hello, .vector(VersionVector()), .offer(entries: 1, bytes: 1),
                                                      .batch(id: 3, entries: []), .batch(id: 1, entries: [])])),
        ]
    }
}
