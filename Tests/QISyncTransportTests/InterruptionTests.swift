import Foundation
import NIOCore
import NIOPosix
import QISyncCore
import QISyncDomain
import QISyncProtocol
import QISyncStore
import QISyncTransport
import Testing

/// A TCP proxy on loopback that forwards the first `budget` bytes from client to server
/// (and everything back), then cuts both connections: a sync interrupted at an exact byte.
/// With `stall`, it keeps the connections open instead and just stops forwarding.
final class CuttingProxy: Sendable {
    let channel: Channel
    var port: Int { channel.localAddress!.port! }

    init(to target: SocketAddress, budget: Int, stall: Bool = false) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop).connect(to: target).flatMap { outbound in
                    inbound.eventLoop.makeCompletedFuture {
                        try inbound.pipeline.syncOperations.addHandler(Forwarder(to: outbound, budget: budget, stall: stall))
                        try outbound.pipeline.syncOperations.addHandler(Forwarder(to: inbound, budget: .max, stall: false))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    final class Forwarder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let peer: Channel
        let budget: NIOLockedValueBoxInt
        let stall: Bool

        init(to peer: Channel, budget: Int, stall: Bool) {
            self.peer = peer
            self.budget = NIOLockedValueBoxInt(budget)
            self.stall = stall
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let allowed = budget.take(buffer.readableBytes)
            if let slice = buffer.readSlice(length: allowed), slice.readableBytes > 0 { peer.writeAndFlush(slice, promise: nil) }
            if !stall, budget.value == 0 {
                let inbound = context.channel
                peer.close(promise: nil)
                inbound.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) { peer.close(promise: nil) }
    }

    func close() async throws { try await channel.close() }
}

/// A tiny lock-protected counter (the forwarders run on event loops).
final class NIOLockedValueBoxInt: @unchecked Sendable {
    // `lock` guards `remaining`.
    private let lock = NSLock()
    private var remaining: Int
    init(_ value: Int) { remaining = value }
    var value: Int { lock.withLock { remaining } }
    /// Takes up to `wanted` from the budget; returns how much was granted.
    func take(_ wanted: Int) -> Int {
        lock.withLock {
            let granted = min(wanted, remaining)
            remaining -= granted
            return granted
        }
    }
}

@Suite("Interrupted syncs")
struct InterruptionTests {
    let replicas: Replicas
    init() throws { replicas = Replicas() }

    @Test("a push cut at any byte keeps what was acknowledged, corrupts nothing, and the next sync completes",
          arguments: [0, 3, 60, 200, 900, 4_000, 20_000, 60_000, 120_000])
    func cutAt(budget: Int) async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        for i in 0..<1500 {
            // Random text, so the push stays larger than the biggest cut even after compression.
            let text = "note \(i) " + (0..<4).map { _ in UUID().uuidString }.joined(separator: " ")
            try ward.add(.learning, fields: ["text": text], tags: ["sofft": ["S\(i % 6 + 1)"]])
        }
        let server = try await SyncServer.start(replica: hub.replica, address: try PeerAddress(parsing: "127.0.0.1:0"), logger: testLogger).get()
        let proxy = try await CuttingProxy(to: server.localAddress, budget: budget)
        let cut = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:\(proxy.port)"),
                                            direction: .push, logger: testLogger, timeout: .seconds(5)).get()
        #expect(cut.error != nil, "the cut at byte \(budget) should interrupt the sync")
        // Whatever the hub kept is whole: sound, and each log a prefix of the ward's.
        let hubReport = try hub.replica.verify()
        #expect(hubReport.isSound, "\(hubReport.logProblems) \(hubReport.differences)")
        let wardVector = try ward.replica.versionVector()
        for (log, position) in try hub.replica.versionVector().positions where log.origin == ward.replica.identity.origin {
            #expect(position.seq <= wardVector.seq(of: log))
        }
        #expect(try hub.replica.waitingEntryCount() == 0)
        // Acknowledged batches are on the hub.
        let wardOrigin = ward.replica.identity.origin
        let heldFromWard = try hub.replica.versionVector().positions.filter { $0.key.origin == wardOrigin }.reduce(0) { $0 + $1.value.seq }
        #expect(heldFromWard >= cut.counters.entriesOut)
        let resumed = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:\(server.localAddress.port!)"),
                                                logger: testLogger).get()
        #expect(resumed.error == nil)
        #expect(try hub.replica.canonicalState() == ward.replica.canonicalState())
        try await proxy.close()
        try await server.close().get()
    }

    @Test("a peer that says nothing is timed out; a peer that sends garbage is cut off; the replica is unchanged")
    func silentAndGarbagePeers() async throws {
        let hub = try replicas.make("hub", kind: .hub)
        let before = try hub.replica.canonicalState()
        let server = try await SyncServer.start(replica: hub.replica, address: try PeerAddress(parsing: "127.0.0.1:0"), logger: testLogger,
                                                timeout: .seconds(1)).get()
        let port = server.localAddress.port!
        for garbage: [UInt8] in [[], [0xFF, 0xFF, 0xFF, 0xFF, 1, 2], [0, 0, 0, 5, 1, 2, 3, 4, 5], Array("GET / HTTP/1.1\r\n\r\n".utf8)] {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            // Under load the server may already have timed the connection out; then the write fails, which is fine.
            if !garbage.isEmpty { try? await channel.writeAndFlush(ByteBuffer(bytes: garbage)) }
            // The server closes the connection by itself: on the garbage, or after the timeout.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await channel.closeFuture.get() }
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    throw SyncError(.timeout, "the server did not close the connection")
                }
                try await group.next()
                group.cancelAll()
            }
        }
        #expect(try hub.replica.canonicalState() == before)
        try await server.close().get()
    }

    @Test("a server shutting down mid-sync tells the client, keeps what it acknowledged, and a later sync completes")
    func serverShutdown() async throws {
        let hub = try replicas.make("hub", kind: .hub), ward = try replicas.make("ward")
        for i in 0..<3000 { try ward.add(.learning, fields: ["text": "note \(i) " + (0..<3).map { _ in UUID().uuidString }.joined()]) }
        let server = try await SyncServer.start(replica: hub.replica, address: try PeerAddress(parsing: "127.0.0.1:0"), logger: testLogger).get()
        // The proxy passes the first 80 kB (a batch or so; the whole push is about 400 kB) and then holds
        // the rest: the session is surely still going when the server shuts down.
        let proxy = try await CuttingProxy(to: server.localAddress, budget: 80_000, stall: true)
        let address = try PeerAddress(parsing: "127.0.0.1:\(proxy.port)")
        let wardLog = LogID(origin: ward.replica.identity.origin, scope: .trust)
        async let report = SyncClient.sync(replica: ward.replica, address: address, direction: .push, logger: testLogger).get()
        // Generous: the whole suite runs in parallel on two cores.
        let deadline = ContinuousClock.now + .seconds(120)
        while try hub.replica.versionVector().seq(of: wardLog) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(try hub.replica.versionVector().seq(of: wardLog) > 0, "the first batch never landed, so the shutdown did not come mid-sync")
        try await server.close().get()
        let cut = try await report
        #expect(cut.error?.code == .shuttingDown && cut.error?.fromPeer == true, "\(String(describing: cut.error))")
        #expect(try hub.replica.verify().isSound)
        let restarted = try await SyncServer.start(replica: hub.replica, address: try PeerAddress(parsing: "127.0.0.1:0"), logger: testLogger).get()
        let resumed = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:\(restarted.localAddress.port!)"),
                                                logger: testLogger).get()
        #expect(resumed.error == nil)
        #expect(try hub.replica.canonicalState() == ward.replica.canonicalState())
        try await restarted.close().get()
        try await proxy.close()
    }

    @Test("a client facing a silent server times out with a clear error")
    func silentServer() async throws {
        let ward = try replicas.make("ward")
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let report = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:\(silent.localAddress!.port!)"),
                                               logger: testLogger, timeout: .milliseconds(300)).get()
        #expect(report.error?.code == .timeout)
        try await silent.close()
    }

    @Test("a sync cancelled before its connection opens ends cancelled as it opens, not at its timeout")
    func cancelledBeforeConnecting() async throws {
        let ward = try replicas.make("ward")
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        // Ctrl-C pressed while the sync was still setting up: nothing to cancel yet.
        let cancellation = SyncCancellation()
        cancellation.cancel()
        let report = try await SyncClient.sync(replica: ward.replica, address: try PeerAddress(parsing: "127.0.0.1:\(silent.localAddress!.port!)"),
                                               logger: testLogger, timeout: .seconds(20), cancellation: cancellation).get()
        #expect(report.error?.code == .cancelled, "\(String(describing: report.error))")
        try await silent.close()
    }
}
