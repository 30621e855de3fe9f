import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncProtocol
import QISyncStore
import QISyncTransport
import Testing

/// Temporary replicas for transport tests, removed afterwards. Each trust has one trust key;
/// a hub is made holding it, any other site joins and is enrolled with it, as 'init --join'
/// and the hub's 'enrol' do. Trusts pin each other only when a test says so.
final class Replicas {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-transport-\(UUID().uuidString)")
    private(set) var trustKeys: [String: TrustKey] = [:]
    deinit { try? FileManager.default.removeItem(at: root) }

    func trustKey(_ trust: String) -> TrustKey {
        if let key = trustKeys[trust] { return key }
        let key = TrustKey()
        trustKeys[trust] = key
        return key
    }

    func make(_ site: String, trust: String = "RXH", kind: SiteKind = .ward) throws -> QIRecords {
        let key = trustKey(trust)
        let home = root.appendingPathComponent(site)
        if kind == .hub {
            return try QIRecords.create(home: home, trustCode: trust, trustName: "Trust \(trust)", siteName: site, kind: kind, membership: .founding(key))
        }
        let records = try QIRecords.create(home: home, trustCode: trust, trustName: "Trust \(trust)", siteName: site, kind: kind,
                                           membership: .joining(key.fingerprint))
        let request = records.replica.enrolmentRequest()
        try records.replica.acceptEnrolment(try Enrolment.issue(request: request, by: key))
        return records
    }

    /// Each replica pins the other's trust.
    func pin(_ a: QIRecords, _ b: QIRecords) throws {
        try a.replica.pinTrust(code: b.replica.identity.trustCode, fingerprint: trustKey(b.replica.identity.trustCode).fingerprint)
        try b.replica.pinTrust(code: a.replica.identity.trustCode, fingerprint: trustKey(a.replica.identity.trustCode).fingerprint)
    }
}

let testLogger = Logger(label: "qisync.test")

@Suite("Sync over loopback TCP, in process")
struct LoopbackSyncTests {
    let replicas: Replicas
    init() throws { replicas = Replicas() }

    func serve(_ records: QIRecords) async throws -> (SyncServer, PeerAddress) {
        let server = try await SyncServer.start(replica: records.replica, address: try PeerAddress(parsing: "127.0.0.1:0"), logger: testLogger).get()
        return (server, try PeerAddress(parsing: "127.0.0.1:\(server.localAddress.port!)"))
    }

    @Test("two replicas with independent edits converge, both ways")
    func twoWay() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        try hub.add(.initiative, fields: ["title": "Hub work"])
        for i in 0..<30 { try ward.add(.learning, fields: ["text": "ward learning \(i)"], tags: ["sofft": ["S\(i % 6 + 1)"]]) }
        let (server, address) = try await serve(hub)
        let report = try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get()
        #expect(report.error == nil)
        #expect(report.counters.entriesOut == 31)   // ward's site entry and 30 learning entries
        #expect(report.counters.entriesIn == 2)     // hub's site entry and initiative
        #expect(try hub.replica.canonicalState() == ward.replica.canonicalState())
        let again = try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get()
        #expect(again.error == nil && again.counters.entriesIn == 0 && again.counters.entriesOut == 0)
        try await server.close().get()
    }

    @Test("pull only and push only move entries one way")
    func oneWay() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        try hub.add(.initiative, fields: ["title": "Hub work"])
        try ward.add(.initiative, fields: ["title": "Ward work"])
        let (server, address) = try await serve(hub)
        let pulled = try await SyncClient.sync(replica: ward.replica, address: address, direction: .pull, logger: testLogger).get()
        #expect(pulled.error == nil && pulled.counters.entriesOut == 0 && pulled.counters.entriesIn == 2)
        #expect(try hub.list(.initiative).count == 1 && ward.list(.initiative).count == 2)
        let pushed = try await SyncClient.sync(replica: ward.replica, address: address, direction: .push, logger: testLogger).get()
        #expect(pushed.error == nil && pushed.counters.entriesOut == 2 && pushed.counters.entriesIn == 0)
        #expect(try hub.list(.initiative).count == 2)
        try await server.close().get()
    }

    @Test("a ward's shared record reaches another trust's hub through its own hub, origin kept; its trust-scope records never leave")
    func relay() async throws {
        let ward = try replicas.make("ward"), hub = try replicas.make("hub", kind: .hub), other = try replicas.make("other-hub", trust: "RYJ", kind: .hub)
        try replicas.pin(hub, other)
        try replicas.pin(ward, other)
        let made = try ward.add(.initiative, fields: ["title": "Ward idea"])
        _ = try ward.share(made.id.hex)
        let kept = try ward.add(.initiative, fields: ["title": "Inside the trust"])
        let (hubServer, hubAddress) = try await serve(hub)
        let (otherServer, otherAddress) = try await serve(other)
        #expect(try await SyncClient.sync(replica: ward.replica, address: hubAddress, logger: testLogger).get().error == nil)
        #expect(try hub.record(.initiative, kept.id).text("title") == "Inside the trust")
        #expect(try await SyncClient.sync(replica: hub.replica, address: otherAddress, logger: testLogger).get().error == nil)
        let relayed = try other.record(.initiative, made.id)
        #expect(relayed.text("title") == "Ward idea")
        // The ward's own site row stayed in its trust (only a hub's goes to every trust): the
        // other trust names the ward from its enrolment.
        #expect(try other.replica.read { db in try String.fetchAll(db, sql: "SELECT name FROM site ORDER BY name") } == ["hub", "other-hub"])
        #expect(try hub.replica.read { db in try String.fetchAll(db, sql: "SELECT name FROM site ORDER BY name") } == ["hub", "other-hub", "ward"])
        #expect(try other.history(made.id.hex).allSatisfy { $0.site == "RXH/ward" })
        #expect(throws: (any Error).self) { try other.record(.initiative, kept.id) }
        #expect(try other.replica.versionVector().positions.keys.allSatisfy { $0.scope == .shared })
        #expect(try await SyncClient.sync(replica: ward.replica, address: otherAddress, logger: testLogger).get().error == nil)
        #expect(try other.list(.initiative).count == 1)
        try await hubServer.close().get()
        try await otherServer.close().get()
    }

    @Test("a server's close completes only once every ended session is in its sync history (its process may exit then)")
    func closeWaitsForRecords() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        let (server, address) = try await serve(hub)
        #expect(try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get().error == nil)
        // The server writes that session's record a moment after the client has finished.
        for _ in 0..<100 where try hub.replica.syncHistory().isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        try #require(try hub.replica.syncHistory().count == 1)
        try hub.add(.initiative, fields: ["title": "Hub work"])
        // Another connection holds the hub's write lock: a pull writes nothing on the hub until
        // its session ends, when the server records it, and that record has to wait.
        let other = try DatabaseQueue(path: hub.replica.databasePath)
        let locked = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), released = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? other.inTransaction(.immediate) { _ in
                locked.signal()
                release.wait()
                return .commit
            }
            released.signal()
        }
        locked.wait()
        let pulled = try await SyncClient.sync(replica: ward.replica, address: address, direction: .pull, logger: testLogger).get()
        #expect(pulled.error == nil && pulled.counters.entriesIn == 1)
        let closed = NIOLockedValueBox(false)
        let closing = server.close()
        closing.whenComplete { _ in closed.withLockedValue { $0 = true } }
        try await Task.sleep(for: .milliseconds(500))
        #expect(!closed.withLockedValue { $0 }, "the server closed with a session's record still unwritten")
        release.signal()
        released.wait()
        try await closing.get()
        let served = try hub.replica.syncHistory().filter { $0.role == "server" }
        #expect(served.count == 2 && served.allSatisfy { $0.outcome == "ok" }, "\(served)")
    }

    @Test("a server takes several clients at once")
    func concurrentClients() async throws {
        let hub = try replicas.make("hub", kind: .hub)
        let wards = try (0..<4).map { try replicas.make("ward-\($0)") }
        for (index, ward) in wards.enumerated() {
            for i in 0..<50 { try ward.add(.learning, fields: ["text": "ward \(index) note \(i)"]) }
        }
        let (server, address) = try await serve(hub)
        let reports = try await withThrowingTaskGroup(of: SyncReport.self) { group in
            for ward in wards { group.addTask { try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.allSatisfy { $0.error == nil })
        #expect(try hub.list(.learning).count == 200)
        for ward in wards { _ = try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get() }
        let states = try wards.map { try $0.replica.canonicalState() }
        #expect(states.allSatisfy { $0 == states[0] })
        try await server.close().get()
    }

    @Test("local writes during a sync are safe, and a second sync brings them across")
    func writesDuringSync() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        for i in 0..<2000 { try ward.add(.learning, fields: ["text": "before \(i) " + String(repeating: "z", count: 200)]) }
        let (server, address) = try await serve(hub)
        async let report = SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get()
        // Both replicas take local writes while the sync runs.
        for i in 0..<40 {
            try ward.add(.initiative, fields: ["title": "ward during \(i)"])
            try hub.add(.initiative, fields: ["title": "hub during \(i)"])
        }
        #expect(try await report.error == nil)
        let second = try await SyncClient.sync(replica: ward.replica, address: address, logger: testLogger).get()
        #expect(second.error == nil)
        #expect(try hub.replica.canonicalState() == ward.replica.canonicalState())
        #expect(try hub.list(.initiative).count == 80)
        #expect(try hub.replica.verify().isSound && ward.replica.verify().isSound)
        try await server.close().get()
    }

    @Test("connecting to nothing fails with a clear error")
    func nothingListening() async throws {
        let ward = try replicas.make("ward")
        await #expect(throws: SyncError.self) {
            _ = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:1"), logger: testLogger).get()
        }
    }
}
