import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
@testable import QISyncStore
import Testing

/// Opening a replica and the commands run on every opening read what they need and no more:
/// the directory, whose first reading in a process verifies every record held (thousands in
/// a national directory), only when something asks about sites.
@Suite("Opening a replica without reading its directory")
struct OpeningCostTests {
    /// A hub, and a ward it enrolled holding its directory and shared log (as after a first
    /// sync); the ward was given `wardTrustName` at `init --join`.
    func hubAndWard(_ root: URL, wardTrustName: String) throws -> (hub: Replica, ward: Replica) {
        let hub = try Replica.create(home: root.appendingPathComponent("hub"), trustCode: "RXH", trustName: "Ysbyty Gwynedd Trust",
                                     siteName: "hub", kind: .hub, schema: QISchema.schema)
        let fingerprint = try #require(try hub.trustPins().first(where: \.isOwn)).fingerprint
        let ward = try Replica.create(home: root.appendingPathComponent("ward"), trustCode: "RXH", trustName: wardTrustName, siteName: "ward-7",
                                      kind: .ward, schema: QISchema.schema, membership: .joining(fingerprint))
        _ = try hub.enrol(ward.enrolmentRequest())
        _ = try ward.importDirectory(try hub.directoryRecords())
        _ = try ward.apply(try hub.entries(after: VersionVector()))
        return (hub, ward)
    }

    @Test("a ward whose hub names the trust as it does opens, and lists its peers, without reading the directory; one given another name takes the hub's")
    func openingReadsNoDirectory() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let named = try hubAndWard(root.appendingPathComponent("named"), wardTrustName: "Ysbyty Gwynedd Trust")
        let opened = try Replica.open(home: named.ward.home, schema: QISchema.schema)
        #expect(opened.identity.trustName == "Ysbyty Gwynedd Trust")
        try opened.addPeer(name: "hub", address: "127.0.0.1:7744")
        #expect(try opened.peers().map(\.name) == ["hub"])
        #expect(!opened.directoryCache.holdsDirectory, "opening or listing peers read the directory")
        // The probe sees a reading when there is one.
        _ = try opened.directory()
        #expect(opened.directoryCache.holdsDirectory)

        let unnamed = try hubAndWard(root.appendingPathComponent("unnamed"), wardTrustName: "")
        let adopting = try Replica.open(home: unnamed.ward.home, schema: QISchema.schema)
        #expect(adopting.identity.trustName == "Ysbyty Gwynedd Trust")
        #expect(try adopting.currentTrustName() == "Ysbyty Gwynedd Trust")
    }

    @Test("a directory record held is read without its signatures checked again; verify checks them and names one altered since it was kept, and a peer's altered copy is still refused")
    func heldRecordsTakenAsChecked() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let (hub, ward) = try hubAndWard(root, wardTrustName: "Ysbyty Gwynedd Trust")
        #expect(try ward.verify().directoryProblems.isEmpty)
        // The hub's enrolment, as the ward holds it, with the hub's consent altered behind qisync's back.
        let genuine = try #require(try ward.directoryRecords().first { record in
            if case .success(.enrolment(let enrolment)) = VerifiedRecord.verify(record) { return enrolment.site == hub.identity.origin }
            return false
        })
        var bytes = genuine.bytes
        bytes[bytes.count - 1] ^= 0x01
        let altered = DirectoryRecord(kind: .enrolment, bytes: bytes)
        let queue = try DatabaseQueue(path: ward.databasePath)
        try queue.write { db in
            try db.execute(sql: "UPDATE directory_record SET digest = ?, record = ? WHERE digest = ?",
                           arguments: [Data(altered.digest), Data(altered.bytes), Data(genuine.digest)])
            try db.execute(sql: "UPDATE meta SET value = abs(random()) WHERE key = 'directory_version'")
        }
        try queue.close()

        let reopened = try Replica.open(home: ward.home, schema: QISchema.schema)
        #expect(try reopened.directory().enrolments[hub.identity.origin]?.siteName == "hub", "the held record was checked again on reading")
        let report = try reopened.verify()
        #expect(!report.isSound)
        #expect(report.directoryProblems.count == 1 && report.directoryProblems[0].contains("an enrolment record held"), "\(report.directoryProblems)")
        #expect(report.directoryProblems.first?.contains("consent") == true, "\(report.directoryProblems)")
        // The same altered record from a peer is refused, though this process has read it as held.
        let other = try Replica.create(home: root.appendingPathComponent("other"), trustCode: "RXH", trustName: "", siteName: "ward-9",
                                       kind: .ward, schema: QISchema.schema, membership: .joining(try #require(try hub.trustPins().first(where: \.isOwn)).fingerprint))
        let taken = try other.importDirectory([altered])
        #expect(taken.added == 0 && taken.ignored.count == 1 && taken.ignored[0].contains("consent"), "\(taken)")
    }
}
