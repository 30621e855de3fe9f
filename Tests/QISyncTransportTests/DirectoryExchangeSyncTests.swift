import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport
import Testing

/// Directory records between real replicas (protocol version 2): only what the peer keeps and lacks.
@Suite("Directory records move only where they are kept and lacking")
struct DirectoryExchangeSyncTests {
    let replicas = Replicas()
    let now: UInt64 = 1_900_000_000_000

    /// Three trusts' hubs: RXH pins RYJ and RAJ and holds their cards; RYJ pins RXH only.
    func hubs() throws -> (rxh: QIRecords, ryj: QIRecords, raj: QIRecords) {
        let rxh = try replicas.make("rxh-hub", trust: "RXH", kind: .hub)
        let ryj = try replicas.make("ryj-hub", trust: "RYJ", kind: .hub)
        let raj = try replicas.make("raj-hub", trust: "RAJ", kind: .hub)
        try replicas.pin(rxh, ryj)
        try replicas.pin(rxh, raj)
        try rxh.replica.importDirectory(try ryj.replica.trustCard() + raj.replica.trustCard())
        try ryj.replica.importDirectory(try rxh.replica.trustCard())
        return (rxh, ryj, raj)
    }

    func records(_ site: QIRecords, signedBy trust: String) throws -> [DirectoryRecord] {
        let fingerprint = replicas.trustKey(trust).fingerprint
        return try site.replica.directoryRecords().filter { (try? VerifiedRecord.verify($0).get())?.trustFingerprint == fingerprint }
    }

    @Test("hubs of two trusts exchange only the records of trusts the receiver pins that it lacks; a second sync moves none")
    func betweenTrusts() throws {
        let (rxh, ryj, _) = try hubs()
        // RXH learns of a new ward of its own; RYJ should receive that enrolment and nothing of RAJ's.
        let ward = try replicas.make("ward-9", trust: "RXH")
        _ = try rxh.replica.enrol(ward.replica.enrolmentRequest())
        let before = try ryj.replica.directoryRecords()
        let first = LocalSync.run(client: rxh.replica, server: ryj.replica)
        #expect(first.client.error == nil && first.server.error == nil)
        #expect(try records(ryj, signedBy: "RAJ").isEmpty)
        #expect(try ryj.replica.directoryRecords().filter { $0.kind == .trustPin }.allSatisfy { (try? VerifiedRecord.verify($0).get())?.trustFingerprint == replicas.trustKey("RYJ").fingerprint })
        let gained = Set(try ryj.replica.directoryRecords()).subtracting(before)
        #expect(first.client.counters.directoryOut == UInt64(gained.count))
        #expect(gained.count == 1 && gained.first?.kind == .enrolment)
        #expect(first.server.counters.directoryOut == 0)
        // In step now, though RXH still holds RAJ's records and its own trust-wide pins.
        let second = LocalSync.run(client: rxh.replica, server: ryj.replica)
        #expect(second.client.error == nil)
        #expect(second.client.counters.directoryOut == 0 && second.client.counters.directoryIn == 0)
        #expect(second.client.wireIn + second.client.wireOut < first.client.wireIn + first.client.wireOut)
    }

    @Test("a peer that speaks only version 1 syncs with this build: directories whole (less other trusts' pins), vectors whole, the same outcome")
    func versionOnePeer() throws {
        let (rxh, ryj, _) = try hubs()
        _ = try ryj.share(try ryj.add(.initiative, fields: ["title": "Ysbyty Gwynedd falls, £0 change"]).id.hex)
        _ = try rxh.share(try rxh.add(.initiative, fields: ["title": "Pressure ulcers at 37°C"]).id.hex)
        let outcome = LocalSync.run(client: ryj.replica, server: rxh.replica, clientVersions: 1...1)
        #expect(outcome.client.error == nil && outcome.server.error == nil)
        #expect(outcome.client.peer?.versions == WireLimits.versions && outcome.server.peer?.versions == 1...1)
        // Version 1 sends every record the sender holds that the peer could keep: RAJ's too (RYJ
        // sets them aside), but never RXH's trust-wide pins.
        let rxhRecords = try rxh.replica.directoryRecords()
        #expect(outcome.server.counters.directoryOut == UInt64(rxhRecords.filter { $0.kind != .trustPin }.count))
        #expect(try records(ryj, signedBy: "RAJ").isEmpty)
        let titles = { (site: QIRecords) in try site.list(.initiative).map { $0.text("title") }.sorted() }
        #expect(try titles(ryj) == titles(rxh) && titles(ryj).count == 2)
        #expect(try rxh.replica.verify().isSound && ryj.replica.verify().isSound)
    }

    @Test("a ward receives its hub's trust-wide pins and the pinned trusts' records; a sync in step moves none")
    func wardAndHub() throws {
        let (rxh, _, _) = try hubs()
        let ward = try replicas.make("ward-3", trust: "RXH")
        _ = try rxh.replica.enrol(ward.replica.enrolmentRequest())
        try ward.replica.importDirectory(try rxh.replica.trustCard())
        let first = LocalSync.run(client: ward.replica, server: rxh.replica)
        #expect(first.client.error == nil)
        #expect(Set(try ward.replica.directoryRecords()) == Set(try rxh.replica.directoryRecords()))
        #expect(try !records(ward, signedBy: "RAJ").isEmpty)
        let second = LocalSync.run(client: ward.replica, server: rxh.replica)
        #expect(second.client.counters.directoryIn == 0 && second.client.counters.directoryOut == 0)
    }

    @Test("a bundle after a receipt carries only the directory records the receiver pins and lacks")
    func bundlesAfterAReceipt() throws {
        let (rxh, ryj, _) = try hubs()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-dir-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try rxh.share(try rxh.add(.initiative, fields: ["title": "Shared by bundle"]).id.hex)
        func carry(_ name: String, since: VersionVector, directory: [DirectoryGroup]?) throws -> (BundleImport, BundleReceipt) {
            let path = folder.appendingPathComponent(name).path
            try BundleCarrier.export(replica: rxh.replica, for: BundleTarget(trust: "RYJ"), since: since, peerDirectory: directory,
                                     now: now, to: path, check: rxh.checkLeavingTrust)
            let imported = try BundleCarrier.importBundle(replica: ryj.replica, path: path, now: now)
            return (imported, try BundleReceipt(parsing: imported.receipt))
        }
        // Without a receipt: every record RYJ could keep, but never RXH's trust-wide pins.
        let (first, receipt) = try carry("first", since: VersionVector(), directory: nil)
        let carried = try rxh.replica.directoryRecords().filter { $0.kind != .trustPin }.count
        #expect(first.bundle.directoryRecords == carried)
        #expect(try records(ryj, signedBy: "RAJ").isEmpty)
        // The receipt lists RYJ's directory by trust; the next bundle carries nothing RYJ holds.
        let groups = try #require(receipt.directory)
        #expect(groups.contains { $0.trust == replicas.trustKey("RXH").fingerprint.bytes && $0.pinned })
        let held = try #require(try BundleCarrier.remember(receipt, at: rxh.replica))
        let (second, _) = try carry("second", since: held, directory: try rxh.replica.knownDirectory(of: ryj.replica.identity.origin))
        #expect(second.bundle.directoryRecords == 0)
        // A new RXH enrolment: the next bundle carries RXH's records again, RAJ's still not.
        let ward = try replicas.make("ward-4", trust: "RXH")
        _ = try rxh.replica.enrol(ward.replica.enrolmentRequest())
        let (third, _) = try carry("third", since: held, directory: groups)
        #expect(third.bundle.directoryRecords == (try records(rxh, signedBy: "RXH").filter { $0.kind != .trustPin }.count))
        #expect(try records(ryj, signedBy: "RXH").contains { VerifiedRecord.verify($0).isEnrolment(of: ward.replica.identity.origin) })
    }
}

extension Result where Success == VerifiedRecord {
    fileprivate func isEnrolment(of site: OriginID) -> Bool {
        if case .success(.enrolment(let enrolment)) = self { enrolment.site == site } else { false }
    }
}
