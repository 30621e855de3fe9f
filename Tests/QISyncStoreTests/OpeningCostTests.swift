import Foundation
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
}
