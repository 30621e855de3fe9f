import Foundation
import NIOCore
import QISyncCore
import QISyncIdentity
import QISyncProtocol
import Testing

/// protocol/vectors/sync-session.txt: a whole session, frame by frame, decoded and re-encoded.
///
/// Set QISYNC_RECORD_VECTORS=1 to rewrite the file from the session below (then review the diff).
@Suite("Wire vectors")
struct WireVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/sync-session.txt")

    /// A ward (key bytes 1…32) holding one entry syncs both ways with a hub (key bytes 33…64)
    /// holding none. Returns the frames in the order they were sent, with their direction.
    static func transcript() throws -> [(direction: String, message: SyncMessage, frame: ByteBuffer)] {
        let ward = try SiteSigner(rawRepresentation: Array(1...32)), hub = try SiteSigner(rawRepresentation: Array(33...64))
        let change = Change(rows: [RowWrite(table: 2, key: Array(0xA0...0xAB) + RecordID.ownerTag(ofTrust: "RXH"), cells: [
            CellWrite(column: 0, value: .integer(1)), CellWrite(column: 4, value: .text("Reduce falls")),
        ])])
        let entry = LogEntry(signer: ward, scope: .trust, seq: 1, previousHash: LogEntry.genesisHash,
                             hlc: HLC(milliseconds: 1_790_000_000_000, counter: 0), change: change)
        var wardStore = MemoryStore()
        wardStore.logs[LogID(origin: ward.origin, scope: .trust)] = [entry]
        var client = Side(ward, store: wardStore)
        var server = Side(hub, store: MemoryStore())
        client.session = SyncSession(hello: Hello(origin: ward.origin, trust: "RXH", site: "ward-7", kind: "ward"))
        server.session = SyncSession(hello: Hello(origin: hub.origin, trust: "RXH", site: "hub", kind: "hub"))
        let encoders = (try PayloadEncoder(), try PayloadEncoder())
        var frames: [(String, SyncMessage, ByteBuffer)] = []
        client.run(client.session.start())
        server.run(server.session.start())
        while !(client.outbox.isEmpty && server.outbox.isEmpty) {
            if !client.outbox.isEmpty {
                let message = client.outbox.removeFirst()
                frames.append(("ward → hub", message, FrameEncoder.frame(try encoders.0.payload(for: message))))
                server.deliver(message)
            }
            if !server.outbox.isEmpty {
                let message = server.outbox.removeFirst()
                frames.append(("hub → ward", message, FrameEncoder.frame(try encoders.1.payload(for: message))))
                client.deliver(message)
            }
        }
        return frames
    }

    static func render(_ frames: [(direction: String, message: SyncMessage, frame: ByteBuffer)]) -> String {
        var text = """
            # A whole sync session (protocol/SPEC.md, section 9). The ward's site key is the Ed25519 private key
            # 01 02 … 20, the hub's 21 22 … 40. The ward holds entry 1 of its trust log (initiative
            # a0a1a2a3a4a5a6a7a8a9aaab4f7c7488, owned by RXH, title "Reduce falls"); the hub holds nothing. Each frame: its direction, the message, the message's
            # bytes before compression ("message:"), and the frame as sent ("frame:"), length prefix included.

            """
        for (index, item) in frames.enumerated() {
            text += "\n\(index + 1). \(item.direction): \(item.message.name) \(describe(item.message))\n"
            text += "message: \(Hex.encode(item.message.encoded()))\n"
            text += "frame: \(Hex.encode(item.frame.readableBytesView))\n"
        }
        return text
    }

    static func describe(_ message: SyncMessage) -> String {
        switch message {
        case .hello(let hello): "trust=\(hello.trust) site=\(hello.site) kind=\(hello.kind) versions=\(hello.versions) sends=\(hello.sends) receives=\(hello.receives)"
        case .vector(let vector): "logs=\(vector.positions.map { "\($0.key):\($0.value.seq)" }.sorted())"
        case .offer(let entries, let bytes): "entries=\(entries) bytes=\(bytes)"
        case .batch(let id, let entries): "id=\(id) entries=\(entries.map(\.ref.description))"
        case .ack(let id, let applied, let conflicts, let refused): "id=\(id) applied=\(applied) conflicts=\(conflicts) refused=\(refused)"
        case .directory(let records): "records=\(records.count)"
        case .summary(let groups): "trusts=\(groups.count)"
        case .have(let digests): "records=\(digests.count)"
        case .vectorDigests: "buckets=64"
        case .done: ""
        case .error(let code, let text): "code=\(code.rawValue) \(text)"
        }
    }

    /// The fuzzer's seeds: each direction of the recorded session as one byte stream, and a
    /// client stream that carries a DIRECTORY of a real enrolment and revocation.
    static func writeFuzzCorpus(_ frames: [(direction: String, message: SyncMessage, frame: ByteBuffer)]) throws {
        let corpus = FuzzRegressionTests.fuzz.appendingPathComponent("corpus")
        for (direction, name) in [("ward → hub", "ward-to-hub.bin"), ("hub → ward", "hub-to-ward.bin")] {
            let bytes = frames.filter { $0.direction == direction }.flatMap { Array($0.frame.readableBytesView) }
            try Data(bytes).write(to: corpus.appendingPathComponent(name))
        }
        let key = TrustKey(), ward = try SiteSigner(rawRepresentation: Array(1...32))
        let enrolment = try Enrolment.issue(request: EnrolmentRequest(trustCode: "RXH", siteName: "ward-7", kind: "ward", signer: ward),
                                            issued: Date(timeIntervalSince1970: 1_790_000_000), by: key)
        let revocation = Revocation.issue(site: ward.origin, lastAccepted: [.trust: LogPosition(seq: 3, hash: [UInt8](repeating: 7, count: 32))],
                                          at: 1_790_000_000_000, by: key)
        let records = [enrolment.record, revocation.record]
        // Version 1 sends the records at once; version 2 first SUMMARY and HAVE.
        let group = DirectoryGroup(trust: key.fingerprint.bytes, pinned: true, digest: DirectoryRecord.digest(of: records))
        for (versions, name, exchange) in [(1...1, "ward-to-hub-directory.bin", [SyncMessage.directory(records)]),
                                           (2...2, "ward-to-hub-directory-v2.bin", [.summary([group]), .have([records[0].digest]), .directory(records)])]
            as [(ClosedRange<UInt64>, String, [SyncMessage])] {
            let encoder = try PayloadEncoder()
            var bytes: [UInt8] = []
            for message: SyncMessage in [.hello(Hello(versions: versions, origin: ward.origin, trust: "RXH", site: "ward-7", kind: "ward",
                                                      directoryDigest: DirectoryRecord.digest(of: records)))]
                + exchange + (versions == 2...2 ? [.vectorDigests(VersionVector().bucketDigests)] : [])
                + [.vector(VersionVector()), .offer(entries: 0, bytes: 0), .done] {
                bytes += Array(FrameEncoder.frame(try encoder.payload(for: message)).readableBytesView)
            }
            try Data(bytes).write(to: corpus.appendingPathComponent(name))
        }
    }

    @Test("the recorded session decodes frame by frame to the same messages, and re-encodes to the same bytes")
    func session() throws {
        let frames = try Self.transcript()
        if ProcessInfo.processInfo.environment["QISYNC_RECORD_VECTORS"] == "1" {
            try Self.render(frames).write(to: Self.file, atomically: true, encoding: .utf8)
            try Self.writeFuzzCorpus(frames)
        }
        let text = try String(contentsOf: Self.file, encoding: .utf8)
        let recorded = text.split(separator: "\n").filter { $0.hasPrefix("frame: ") }.map { Hex.decode(String($0.dropFirst(7)))! }
        #expect(recorded.count == frames.count)
        let decoders = ["ward → hub": try PayloadDecoder(), "hub → ward": try PayloadDecoder()]
        for (bytes, expected) in zip(recorded, frames) {
            var buffer = ByteBuffer(bytes: bytes)
            let payload = try #require(try FrameDecoder.nextFrame(from: &buffer))
            #expect(buffer.readableBytes == 0)
            #expect(try decoders[expected.direction]!.message(from: payload) == expected.message)
            #expect(bytes == Array(expected.frame.readableBytesView), "re-encoding \(expected.message.name) gives other bytes")
        }
    }
}
