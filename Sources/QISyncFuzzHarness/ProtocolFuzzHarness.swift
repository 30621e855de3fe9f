import NIOCore
import QISyncCore
import QISyncIdentity
import QISyncProtocol

/// Feeds arbitrary bytes to the frame decoder, the payload stream and a sync session, as a
/// hostile peer would: the libFuzzer target (tools/fuzz) and the regression tests both call it.
/// It must never crash, hang or allocate without bound, whatever the input. Directory records
/// (enrolment certificates, revocations) go through the identity checks a handshake and an
/// import use, so the X.509 and revocation readers are fuzzed too.
public enum ProtocolFuzzHarness {
    /// Runs one input: as a peer's byte stream, and as a bundle file and a receipt carried by hand.
    public static func run(_ data: [UInt8]) {
        runBundle(data)
        runStream(data)
    }

    /// A hostile bundle or receipt: parsed, its signature checked, its frames decoded.
    static func runBundle(_ data: [UInt8]) {
        _ = try? BundleReceipt(parsing: data)
        guard let file = try? BundleFile(parsing: data) else { return }
        _ = file.isSignatureValid
        _ = try? BundleFile.messages(in: file.payload)
    }

    /// A log the harness's session sends from when it plays the sender: 2,000 signed entries of
    /// one origin, so several batches are outstanding while the hostile input answers (ACKs
    /// for batches never sent, twice, with absurd counts…).
    static let outgoing: [LogEntry] = {
        let signer = try! SiteSigner(rawRepresentation: Array(33...64))
        var entries: [LogEntry] = []
        var previous = LogEntry.genesisHash
        for seq in 1...2000 {
            let change = Change(rows: [RowWrite(table: 2, key: Array(repeating: UInt8(seq % 256), count: 16),
                                                cells: [CellWrite(column: 0, value: .integer(1))])])
            let entry = LogEntry(signer: signer, scope: .trust, seq: UInt64(seq), previousHash: previous,
                                 hlc: HLC(milliseconds: 1_790_000_000_000, counter: UInt16(seq)), change: change)
            previous = entry.hash
            entries.append(entry)
        }
        return entries
    }()

    static func runStream(_ data: [UInt8]) {
        guard let decoder = try? PayloadDecoder(maximumMessage: 1 << 20, maximumSession: 4 << 20) else { return }
        let signer = try! SiteSigner(rawRepresentation: Array(1...32))
        // An input of odd length meets a session that has entries to send (so batches are
        // outstanding while the input answers); one of even length, a session with none.
        let sends = data.count % 2 == 1
        let log = LogID(origin: outgoing[0].origin, scope: .trust)
        var session = SyncSession(hello: Hello(origin: signer.origin, trust: "RXH", site: "hub", kind: "hub"))
        let directory = TrustDirectory(ownTrust: "RXH", ownSite: signer.origin)
        _ = session.start()
        var buffer = ByteBuffer(bytes: data)
        var steps = 0
        while steps < 10_000 {
            steps += 1
            let payload: ByteBuffer?
            do {
                payload = try FrameDecoder.nextFrame(from: &buffer, maximumFrame: 1 << 20)
            } catch {
                _ = session.failed(error)
                return
            }
            guard let payload else { return }
            let message: SyncMessage
            do {
                message = try decoder.message(from: payload)
            } catch {
                _ = session.failed(error)
                return
            }
            // Whatever decodes must encode again.
            _ = message.encoded()
            var pending = session.received(message)
            var rounds = 0
            while !pending.isEmpty, rounds < 100 {
                rounds += 1
                var next: [SyncSession.Action] = []
                for action in pending {
                    switch action {
                    case .authorize: next += session.peerAuthorized(vector: VersionVector(), directory: .empty)
                    case .applyDirectory(let records):
                        for record in records {
                            _ = try? Enrolment(record: record)
                            _ = try? Revocation(record: record)
                            _ = try? TrustBundleKey(record: record)
                            _ = try? TrustWidePin(record: record)
                            _ = directory.verifyPeer(chain: [record.bytes])
                        }
                    case .prepareOffer(let peer):
                        let from = Int(min(peer.seq(of: log), UInt64(outgoing.count)))
                        let offered = sends ? Array(outgoing[from...]) : []
                        var through = VersionVector()
                        if let last = outgoing.last, sends { through.positions[log] = LogPosition(seq: last.seq, hash: last.hash) }
                        next += session.offerReady(entries: UInt64(offered.count), bytes: offered.reduce(0) { $0 + UInt64($1.body.count) }, through: through)
                    case .loadBatch(let after, let through, let maxEntries, _):
                        let from = Int(min(after.seq(of: log), UInt64(outgoing.count)))
                        let to = Int(min(through.seq(of: log), UInt64(outgoing.count)))
                        next += session.batchLoaded(from < to ? Array(outgoing[from..<min(to, from + maxEntries)]) : [])
                    case .apply(let id, let entries):
                        do {
                            for run in try LogRun.runs(of: entries) { try run.verify() }
                            for entry in entries { _ = try? entry.change() }
                            next += session.batchApplied(id: id, applied: UInt64(entries.count), bytes: 0, conflicts: 0)
                        } catch {
                            next += session.failed(SyncError(.entriesRefused, "\(error)"))
                        }
                    case .send(let reply): _ = reply.encoded()
                    case .progress, .finish, .fail: break
                    }
                }
                pending = next
            }
            if session.isOver { return }
        }
    }
}
