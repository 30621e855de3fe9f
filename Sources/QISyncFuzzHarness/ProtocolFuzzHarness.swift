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

    static func runStream(_ data: [UInt8]) {
        guard let decoder = try? PayloadDecoder(maximumMessage: 1 << 20, maximumSession: 4 << 20) else { return }
        let signer = try! SiteSigner(rawRepresentation: Array(1...32))
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
                    case .authorize: next += session.peerAuthorized(vector: VersionVector(), directory: [])
                    case .applyDirectory(let records):
                        for record in records {
                            _ = try? Enrolment(record: record)
                            _ = try? Revocation(record: record)
                            _ = try? TrustBundleKey(record: record)
                            _ = try? TrustWidePin(record: record)
                            _ = directory.verifyPeer(chain: [record.bytes])
                        }
                    case .prepareOffer: next += session.offerReady(entries: 0, bytes: 0)
                    case .loadBatch: next += session.batchLoaded([])
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
