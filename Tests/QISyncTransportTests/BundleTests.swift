import Foundation
import NIOCore
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport
import Testing

@Suite("Bundles carried by hand")
final class BundleTests {
    let replicas = Replicas()
    let now: UInt64 = 1_900_000_000_000
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-bundles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// A new file name in the test's folder.
    func path(_ name: String = "b") -> String { folder.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).bundle").path }

    /// Writes bytes to a new file and returns its path.
    func file(_ bytes: [UInt8]) throws -> String {
        let path = path("made")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// A hub and a ward that have never met: the ward holds what its enrolment file gave it.
    func pair() throws -> (hub: QIRecords, ward: QIRecords) {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        try ward.replica.importDirectory(try hub.replica.directoryRecords())
        return (hub, ward)
    }

    func target(_ records: QIRecords) -> BundleTarget {
        BundleTarget(trust: records.replica.identity.trustCode, site: records.replica.identity.siteName, siteKey: records.replica.identity.origin)
    }

    /// Exports a bundle for `to` and returns its path.
    func export(_ from: QIRecords, to: QIRecords, since: VersionVector = VersionVector()) throws -> String {
        let path = path()
        try BundleCarrier.export(replica: from.replica, for: target(to), since: since, now: now, to: path, check: from.checkLeavingTrust)
        return path
    }

    @Test("ward and hub converge by files alone: export, carry, import, carry the receipt back")
    func roundTrips() throws {
        let (hub, ward) = try pair()
        for i in 0..<20 { _ = try ward.add(.learning, fields: ["text": "ward note \(i)"], tags: ["sofft": ["S\(i % 6 + 1)"]]) }
        _ = try hub.add(.initiative, fields: ["title": "Hub work"])
        let first = try BundleCarrier.importBundle(replica: hub.replica, path: try export(ward, to: hub), now: now)
        #expect(first.report.applied == 21 && first.missing.isEmpty)
        // The receipt makes the next bundle carry only what is new.
        let receipt = try BundleReceipt(parsing: first.receipt)
        #expect(receipt.origin == hub.replica.identity.origin && receipt.bundleDigest == first.bundle.digest)
        // Told against what the bundle expected; the ward rebuilds the hub's whole vector from it.
        let held = try #require(try BundleCarrier.remember(receipt, at: ward.replica))
        #expect(held == (try hub.replica.versionVector()))
        _ = try ward.add(.initiative, fields: ["title": "Ward follow-up"])
        let second = try export(ward, to: hub, since: held)
        #expect(try BundleCarrier.verify(replica: hub.replica, path: second).entries == 1)
        // It says what it assumes only of the log it carries, though the receipt named more.
        #expect(held.positions.count > 1)
        #expect(try BundleFile(parsing: try bytes(second)).header.since.positions.keys.map { $0.origin } == [ward.replica.identity.origin])
        _ = try BundleCarrier.importBundle(replica: hub.replica, path: second, now: now)
        // And back the other way.
        let back = try BundleCarrier.importBundle(replica: ward.replica, path: try export(hub, to: ward, since: try ward.replica.versionVector()), now: now)
        #expect(back.report.applied >= 2)
        #expect(try hub.replica.canonicalState() == ward.replica.canonicalState())
        #expect(try hub.replica.verify().isSound && ward.replica.verify().isSound)
    }

    @Test("bundles imported twice, out of order, or before their prerequisites lose and corrupt nothing")
    func orderFree() throws {
        let (hub, ward) = try pair()
        for i in 0..<5 { _ = try ward.add(.learning, fields: ["text": "early \(i)"]) }
        let early = try export(ward, to: hub)
        let afterEarly = try ward.replica.versionVector()
        for i in 0..<5 { _ = try ward.add(.learning, fields: ["text": "late \(i)"]) }
        let late = try export(ward, to: hub, since: afterEarly)
        let before = try hub.replica.canonicalState()
        let lateFirst = try BundleCarrier.importBundle(replica: hub.replica, path: late, now: now)
        #expect(lateFirst.report.waiting == 5 && lateFirst.report.applied == 0)
        let trustLog = LogID(origin: ward.replica.identity.origin, scope: .trust)
        #expect(lateFirst.missing.count == 1 && lateFirst.missing[0].held == 0 && lateFirst.missing[0].bundleStarts == afterEarly.seq(of: trustLog) + 1)
        #expect(try hub.list(.learning).isEmpty && hub.replica.canonicalState() == before)
        let earlyNext = try BundleCarrier.importBundle(replica: hub.replica, path: early, now: now)
        #expect(earlyNext.report.applied == 6 && earlyNext.report.released == 5)
        let again = try BundleCarrier.importBundle(replica: hub.replica, path: early, now: now)
        #expect(again.report.applied == 0 && again.report.duplicates == 6)
        _ = try BundleCarrier.importBundle(replica: hub.replica, path: late, now: now)
        #expect(try hub.list(.learning).map { $0.text("text") }.sorted() == ward.list(.learning).map { $0.text("text") }.sorted())
        #expect(try hub.list(.learning).count == 10 && hub.replica.verify().isSound)
    }

    @Test("some replicas by file, some by TCP: all converge")
    func mixed() async throws {
        let hub = try replicas.make("hub", kind: .hub), online = try replicas.make("online"), offline = try replicas.make("offline")
        try offline.replica.importDirectory(try hub.replica.directoryRecords())
        _ = try online.add(.initiative, fields: ["title": "From the online ward"])
        _ = try offline.add(.initiative, fields: ["title": "From the offline ward"])
        let server = try await WatchedServer(hub)
        #expect(try await SyncClient.sync(replica: online.replica, address: server.address, logger: testLogger).get().error == nil)
        _ = try BundleCarrier.importBundle(replica: hub.replica, path: try export(offline, to: hub), now: now)
        #expect(try await SyncClient.sync(replica: online.replica, address: server.address, logger: testLogger).get().error == nil)
        _ = try BundleCarrier.importBundle(replica: offline.replica, path: try export(hub, to: offline, since: try offline.replica.versionVector()), now: now)
        let states = try [hub, online, offline].map { try $0.replica.canonicalState() }
        #expect(states[0] == states[1] && states[1] == states[2])
        #expect(try offline.list(.initiative).count == 2)
        try await server.close()
    }

    @Test("every altered byte and every truncation is refused with a reason, and changes nothing")
    func damaged() throws {
        let (hub, ward) = try pair()
        for i in 0..<3 { _ = try ward.add(.initiative, fields: ["title": "Work \(i)"]) }
        let good = try bytes(try export(ward, to: hub))
        let before = (try hub.replica.canonicalState(), try hub.replica.directoryRecords())
        let reasons = ["altered", "damaged", "not a qisync bundle", "truncated", "cut short", "version"]
        var cases: [(String, [UInt8])] = []
        for at in stride(from: 0, to: good.count, by: max(1, good.count / 150)) + [good.count - 1] {
            var flipped = good
            flipped[at] ^= 0x20
            cases.append(("byte \(at) flipped", flipped))
            cases.append(("cut to \(at) bytes", Array(good.prefix(at))))
        }
        cases.append(("a byte added", good + [0]))
        for (what, damaged) in cases {
            let path = try file(damaged)
            do {
                _ = try BundleCarrier.importBundle(replica: hub.replica, path: path, now: now)
                Issue.record("\(what): imported")
            } catch {
                #expect(reasons.contains { "\(error)".contains($0) }, "\(what): \(error)")
            }
            #expect(throws: (any Error).self, "\(what): verified") { try BundleCarrier.verify(replica: hub.replica, path: path) }
        }
        #expect(try hub.replica.canonicalState() == before.0 && hub.replica.directoryRecords() == before.1)
        // The good one still imports.
        #expect(try BundleCarrier.importBundle(replica: hub.replica, path: try file(good), now: now).report.applied == 4)
    }

    @Test("a small bundle that would inflate to gigabytes is refused before anything is inflated when its sender is unknown, and at its first message when known")
    func decompressionBomb() throws {
        let (hub, ward) = try pair()
        let stranger = SiteSigner()
        func bomb(from origin: OriginID, sign: ([UInt8]) -> [UInt8], site: String, enrolment: [UInt8]) throws -> String {
            let header = BundleHeader(sender: origin, senderTrust: "RXH", senderSite: site, senderEnrolment: enrolment,
                                      createdMilliseconds: now, forTrust: "RXH", forSite: "hub", since: VersionVector(), entries: 1, bodyBytes: 1)
            let encoder = try PayloadEncoder()
            var payload = Array(FrameEncoder.frame(try encoder.payload(for: .hello(Hello(origin: origin, trust: "RXH", site: site, kind: "ward")))).readableBytesView)
            let zeros = [UInt8](repeating: 0, count: 30 << 20)
            for _ in 0..<40 {
                var input = ByteBuffer(bytes: zeros)
                payload += Array(FrameEncoder.frame(try encoder.rawPayload(compressing: &input)).readableBytesView)
            }
            return try file(BundleFile.assemble(header: header, payload: payload, sign: sign))
        }
        let unknown = try bomb(from: stranger.origin, sign: stranger.sign, site: "nobody", enrolment: [])
        let size = try FileManager.default.attributesOfItem(atPath: unknown)[.size] as? Int ?? 0
        #expect(size < 2_000_000, "the bomb is small")
        let started = Date()
        do { _ = try BundleCarrier.importBundle(replica: hub.replica, path: unknown, now: now); Issue.record("imported") } catch {
            #expect("\(error)".contains("not an enrolled site"), "\(error)")
        }
        let shown = try BundleCarrier.describe(replica: hub.replica, path: unknown)
        #expect(shown.summary == nil && shown.unopened?.contains("not an enrolled site") == true)
        #expect(Date().timeIntervalSince(started) < 10, "refused without inflating")
        // From an enrolled site it is read message by message: the first over-sized or malformed one stops it.
        let known = try bomb(from: ward.replica.identity.origin, sign: ward.replica.signBundleDigest, site: "ward",
                             enrolment: try ward.replica.ownEnrolment()!.record.bytes)
        do { _ = try BundleCarrier.importBundle(replica: hub.replica, path: known, now: now); Issue.record("imported") } catch {
            #expect("\(error)".contains("damaged"), "\(error)")
        }
    }

    @Test("a bundle whose header names its sender otherwise than its enrolment is refused")
    func wrongName() throws {
        let (hub, ward) = try pair()
        _ = try ward.add(.initiative, fields: ["title": "Mine"])
        let genuine = try BundleFile(parsing: try bytes(try export(ward, to: hub)))
        var header = genuine.header
        header.senderSite = "hub"
        let forged = BundleFile.assemble(header: header, payload: genuine.payload, sign: ward.replica.signBundleDigest)
        do { _ = try BundleCarrier.importBundle(replica: hub.replica, path: try file(forged), now: now); Issue.record("imported") } catch {
            #expect("\(error)".contains("enrolled as RXH/ward"), "\(error)")
        }
    }

    @Test("a bundle for another site, another trust, or from an unpinned trust is refused, naming why")
    func misaddressed() throws {
        let (hub, ward) = try pair()
        let otherWard = try replicas.make("other-ward")
        _ = try ward.add(.initiative, fields: ["title": "For the hub"])
        let bundle = try export(ward, to: hub)
        do { _ = try BundleCarrier.importBundle(replica: otherWard.replica, path: bundle, now: now); Issue.record("imported") } catch {
            #expect("\(error)".contains("this bundle is for RXH/hub"))
        }
        let stranger = try replicas.make("stranger-hub", trust: "RYJ", kind: .hub)
        do { _ = try BundleCarrier.verify(replica: stranger.replica, path: bundle); Issue.record("opened") } catch {
            #expect("\(error)".contains("is for RXH/hub"))
        }
        // From a trust not pinned here.
        let foreign = try replicas.make("foreign-hub", trust: "RYJ", kind: .hub)
        try foreign.replica.pinTrust(code: "RXH", fingerprint: replicas.trustKey("RXH").fingerprint)
        try foreign.replica.importDirectory(try hub.replica.directoryRecords())
        _ = try foreign.share(try foreign.add(.initiative, fields: ["title": "Theirs"]).id.hex)
        let unpinned = path()
        try BundleCarrier.export(replica: foreign.replica, for: BundleTarget(trust: "RXH"), since: VersionVector(), now: now, to: unpinned)
        do { _ = try BundleCarrier.verify(replica: hub.replica, path: unpinned); Issue.record("opened") } catch {
            #expect("\(error)".contains("not an enrolled site of a trust pinned here"))
        }
    }

    @Test("a bundle for another trust: shared entries only, sealed so only its hub opens it, and the PII guard runs")
    func otherTrust() throws {
        let hub = try replicas.make("hub", kind: .hub), other = try replicas.make("other-hub", trust: "RYJ", kind: .hub)
        let otherWard = try replicas.make("other-ward", trust: "RYJ")
        try replicas.pin(hub, other)
        try hub.replica.importDirectory(try other.replica.trustCard())
        let shared = try hub.add(.initiative, fields: ["title": "Falls bundle, shared"])
        _ = try hub.share(shared.id.hex)
        _ = try hub.add(.initiative, fields: ["title": "Inside RXH only"])
        let sealed = path()
        try BundleCarrier.export(replica: hub.replica, for: BundleTarget(trust: "RYJ"), since: VersionVector(), now: now, to: sealed,
                                 check: hub.checkLeavingTrust)
        let parsed = try BundleFile(parsing: try bytes(sealed))
        #expect(parsed.header.isSealed)
        #expect(throws: (any Error).self) { try BundleFile.messages(in: parsed.payload) }
        do { _ = try BundleCarrier.verify(replica: otherWard.replica, path: sealed); Issue.record("a ward opened a sealed bundle") } catch {
            #expect("\(error)".contains("only its hub"))
        }
        let imported = try BundleCarrier.importBundle(replica: other.replica, path: sealed, now: now)
        #expect(imported.bundle.logs.allSatisfy { $0.log.scope == .shared })
        #expect(try other.list(.initiative).map { $0.text("title") } == ["Falls bundle, shared"])
        // A receipt for another trust names shared logs only.
        let held = try #require(try BundleCarrier.remember(try BundleReceipt(parsing: imported.receipt), at: hub.replica))
        #expect(!held.positions.isEmpty && held.positions.keys.allSatisfy { $0.scope == .shared })
        // Patient data written straight into the shared log (below the domain's own guard) stops the export.
        let column = try #require(RecordKind.initiative.table.column(named: "problem")).id
        try hub.replica.write(scope: .shared, edits: [RowEdit(table: RecordKind.initiative.table.id, key: shared.id.bytes,
                                                              values: [(column, .text("patient 943 476 5919 fell twice"))])])
        do {
            let refused = path()
            _ = try BundleCarrier.export(replica: hub.replica, for: BundleTarget(trust: "RYJ"), since: try other.replica.versionVector(), now: now,
                                         to: refused, check: hub.checkLeavingTrust)
            Issue.record("the PII guard let it through")
        } catch {
            #expect("\(error)".contains("problem") && "\(error)".contains("NHS number"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".partial") }.isEmpty, "no partial file left")
        }
    }

    @Test("bundle plan shows what would apply and the conflicts that would appear, and changes nothing")
    func plan() throws {
        let (hub, ward) = try pair()
        let made = try hub.add(.initiative, fields: ["title": "Shared start"])
        _ = try BundleCarrier.importBundle(replica: ward.replica, path: try export(hub, to: ward), now: now)
        _ = try hub.set(made.id.hex, fields: ["status": "active"])
        _ = try ward.set(made.id.hex, fields: ["status": "closed"])
        let bundle = try export(ward, to: hub, since: try hub.replica.versionVector())
        let before = try hub.replica.canonicalState()
        let (_, report) = try BundleCarrier.plan(replica: hub.replica, path: bundle)
        #expect(report.applied >= 1 && report.newConflicts == 1)
        #expect(try hub.replica.canonicalState() == before)
        #expect(try hub.replica.refusals().isEmpty)
        let imported = try BundleCarrier.importBundle(replica: hub.replica, path: bundle, now: now)
        #expect(imported.report.newConflicts == 1)
    }

    @Test("sync plan: a dry run over TCP reports what would move and the conflicts that would appear, and keeps nothing")
    func syncPlan() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        let made = try hub.add(.initiative, fields: ["title": "Start"])
        let server = try await WatchedServer(hub)
        #expect(try await SyncClient.sync(replica: ward.replica, address: server.address, logger: testLogger).get().error == nil)
        _ = try hub.set(made.id.hex, fields: ["status": "active"])
        _ = try ward.set(made.id.hex, fields: ["status": "closed"])
        _ = try ward.add(.learning, fields: ["text": "only here"])
        let before = (try hub.replica.canonicalState(), try ward.replica.canonicalState())
        let report = try await SyncClient.sync(replica: ward.replica, address: server.address, dryRun: true, logger: testLogger).get()
        #expect(report.error == nil)
        let plan = try #require(report.plan)
        #expect(plan.incoming.applied == 1 && plan.incoming.newConflicts == 1 && plan.incomingRecords == 1)
        #expect(plan.outgoing.entries == 2 && plan.outgoing.records == 2)
        #expect(try hub.replica.canonicalState() == before.0 && ward.replica.canonicalState() == before.1)
        let serverSide = try await server.nextReport(after: 1)
        #expect(serverSide.peer?.dryRun == true)
        // The real sync then does what the plan said.
        let real = try await SyncClient.sync(replica: ward.replica, address: server.address, logger: testLogger).get()
        #expect(real.counters.entriesIn == 1 && real.counters.entriesOut == 2 && real.counters.conflictsIn == 1)
        try await server.close()
    }

    @Test("a receipt lists only the buckets where the receiver differs from what the bundle expected, and rebuilds whole")
    func receiptsTellTheDifference() throws {
        let (hub, ward) = try pair()
        // Other sites' logs at the hub, so the vectors have many buckets.
        for index in 0..<12 {
            let other = try replicas.make("ward-x\(index)")
            try other.replica.importDirectory(try hub.replica.directoryRecords())
            _ = try hub.replica.enrol(other.replica.enrolmentRequest())
            _ = try other.add(.initiative, fields: ["title": "Other ward \(index)"])
            _ = try BundleCarrier.importBundle(replica: hub.replica, path: try export(other, to: hub), now: now)
        }
        _ = try hub.add(.initiative, fields: ["title": "Hub work"])
        let first = try BundleCarrier.importBundle(replica: ward.replica, path: try export(hub, to: ward), now: now)
        let receipt = try BundleReceipt(parsing: first.receipt)
        let difference = try #require(receipt.difference)
        let wardVector = try ward.replica.versionVector()
        // The ward held nothing of its own the hub did not expect (it has written nothing): the
        // buckets that differ are its own logs' at most, and only their logs are listed.
        let own = Set(wardVector.positions.keys.filter { $0.origin == ward.replica.identity.origin }.map(VersionVector.bucket(of:)))
        #expect(VersionVector.buckets(in: difference.buckets).isSubset(of: own))
        #expect(receipt.vector.positions.keys.allSatisfy { own.contains(VersionVector.bucket(of: $0)) })
        #expect(receipt.vector.positions.count < wardVector.positions.count)
        #expect(try BundleCarrier.remember(receipt, at: hub.replica) == wardVector)
        #expect(try hub.replica.knownVector(of: ward.replica.identity.origin)?.vector == wardVector)
        // A receipt for a bundle whose expectation is no longer kept: its vector is set aside
        // (the last one known stands), its directory still taken.
        _ = try ward.add(.initiative, fields: ["title": "Ward work"])
        let second = try BundleCarrier.importBundle(replica: hub.replica, path: try export(ward, to: hub, since: try hub.replica.versionVector()), now: now)
        for index in 0..<Replica.bundleExpectationsKept {
            _ = try BundleCarrier.export(replica: ward.replica, for: target(hub), since: VersionVector(), now: now + UInt64(index) + 1, to: path("filler-\(index)"))
        }
        let late = try BundleReceipt(parsing: second.receipt)
        #expect(late.difference != nil)
        try ward.replica.rememberPeerVector(site: hub.replica.identity.origin, vector: VersionVector(), source: "receipt")
        #expect(try BundleCarrier.remember(late, at: ward.replica) == nil)
        #expect(try ward.replica.knownVector(of: hub.replica.identity.origin)?.vector == VersionVector())
        #expect(try ward.replica.knownDirectory(of: hub.replica.identity.origin) == late.directory)
    }

}
