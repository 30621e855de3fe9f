import Foundation
import GRDB
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore
import Testing

/// A replica keeps, beside each enrolment it holds, what that enrolment's certificates say
/// (`directory_reading`), so a new process reads a national directory without parsing
/// thousands of certificates. Each test runs `qisync` as a child process: a reading is only
/// ever taken in a process that has not parsed the record itself.
@Suite("Enrolments read from the readings kept beside them")
struct DirectoryReadingTests {
    /// A hub that enrolled a ward, and the ward holding the hub's directory.
    func hubAndWard(_ root: URL) throws -> (hub: Replica, ward: Replica) {
        let hub = try Replica.create(home: root.appendingPathComponent("hub"), trustCode: "RXH", trustName: "Ysbyty Gwynedd",
                                     siteName: "hub", kind: .hub, schema: QISchema.schema)
        let fingerprint = try #require(try hub.trustPins().first(where: \.isOwn)).fingerprint
        let ward = try Replica.create(home: root.appendingPathComponent("ward"), trustCode: "RXH", trustName: "Ysbyty Gwynedd",
                                      siteName: "ward-7", kind: .ward, schema: QISchema.schema, membership: .joining(fingerprint))
        _ = try hub.enrol(ward.enrolmentRequest())
        _ = try ward.importDirectory(try hub.directoryRecords())
        return (hub, ward)
    }

    /// The hub's enrolment record as the ward holds it.
    func hubRecord(_ ward: Replica, hub: Replica) throws -> DirectoryRecord {
        try #require(try ward.directoryRecords().first { record in
            if case .success(.enrolment(let enrolment)) = VerifiedRecord.verify(record) { return enrolment.site == hub.identity.origin }
            return false
        })
    }

    @Test("a new process names sites from the readings kept (not the certificates); verify names a reading that differs from its certificates, and repair mends it")
    func readingsAreRead() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let (hub, ward) = try hubAndWard(root)
        let record = try hubRecord(ward, hub: hub)
        guard case .success(.enrolment(let enrolment)) = VerifiedRecord.verify(record) else { Issue.record("unreadable"); return }
        let queue = try DatabaseQueue(path: ward.databasePath)
        let kept = try queue.read { db in try Data.fetchOne(db, sql: "SELECT reading FROM directory_reading WHERE digest = ?", arguments: [Data(record.digest)]) }
        #expect(kept.map(Array.init) == enrolment.reading, "importing the record kept its reading")
        #expect(try QisyncProcess.run(["site", "list", "--home", ward.home.path]).out.contains("RXH/hub "))

        // The reading altered behind qisync's back, as only a damaged or edited file could be:
        // a new process takes it as it is, so it is what is read; verify compares.
        var writer = ByteWriter()
        writer.write(byte: 1)
        writer.write(raw: enrolment.site.bytes)
        writer.write(raw: enrolment.trustKey)
        writer.write(string: "RXH")
        writer.write(string: "Ysbyty Bronglais – ward £")
        writer.write(string: "hub")
        writer.write(uint64: enrolment.issued.timeIntervalSince1970.bitPattern)
        try queue.write { db in
            try db.execute(sql: "UPDATE directory_reading SET reading = ? WHERE digest = ?", arguments: [Data(writer.bytes), Data(record.digest)])
        }
        let listed = try QisyncProcess.run(["site", "list", "--home", ward.home.path])
        #expect(listed.code == 0 && listed.out.contains("RXH/Ysbyty Bronglais – ward £"), "\(listed.out)")
        let verify = try QisyncProcess.run(["verify", "--home", ward.home.path])
        #expect(verify.code != 0 && verify.out.contains("the reading kept with RXH/hub's enrolment") && verify.out.contains("differs from its certificates"),
                "\(verify.out)")
        // Worked out from the record, as the tables are from the logs: repair mends it.
        let repair = try QisyncProcess.run(["repair", "--yes", "--home", ward.home.path])
        #expect(repair.code == 0 && repair.out.contains("repaired"), "\(repair.out)\(repair.err)")
        #expect(try QisyncProcess.run(["site", "list", "--home", ward.home.path]).out.contains("RXH/hub "))
        #expect(try QisyncProcess.run(["verify", "--home", ward.home.path]).code == 0)

        // A reading that does not read is left alone: the certificates are parsed instead.
        try queue.write { db in
            try db.execute(sql: "UPDATE directory_reading SET reading = x'02' WHERE digest = ?", arguments: [Data(record.digest)])
        }
        #expect(try QisyncProcess.run(["site", "list", "--home", ward.home.path]).out.contains("RXH/hub "))
        try queue.close()
    }

    @Test("a replica made before readings were kept gains one for each enrolment it holds when it is opened; verify names a record kept under a digest not its own")
    func readingsMadeOnOpening() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let (hub, ward) = try hubAndWard(root)
        let queue = try DatabaseQueue(path: ward.databasePath)
        try queue.write { db in try db.execute(sql: "DROP TABLE directory_reading") }
        #expect(try QisyncProcess.run(["status", "--home", ward.home.path]).code == 0)
        let (readings, enrolments) = try queue.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM directory_reading JOIN directory_record USING (digest)"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM directory_record WHERE kind = 1"))
        }
        #expect(enrolments == 2 && readings == enrolments)
        #expect(try QisyncProcess.run(["verify", "--home", ward.home.path]).code == 0)

        // The hub's record kept under another digest: verify says so (reading the directory
        // takes the digests as kept).
        let record = try hubRecord(ward, hub: hub)
        let wrong = Data(repeating: 0xAB, count: 32)
        try queue.write { db in
            try db.execute(sql: "UPDATE directory_record SET digest = ? WHERE digest = ?", arguments: [wrong, Data(record.digest)])
            try db.execute(sql: "UPDATE directory_reading SET digest = ? WHERE digest = ?", arguments: [wrong, Data(record.digest)])
            try db.execute(sql: "UPDATE meta SET value = abs(random()) WHERE key = 'directory_version'")
        }
        try queue.close()
        let verify = try QisyncProcess.run(["verify", "--home", ward.home.path])
        #expect(verify.code != 0 && verify.out.contains("a record held under digest abababab")
                && verify.out.contains("directory records: signatures and digests FAILED"), "\(verify.out)")
    }
}
