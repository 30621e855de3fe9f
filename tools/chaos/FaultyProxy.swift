import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QISyncCore

/// What a proxy does wrong to the bytes it carries, in one direction.
enum Fault: CustomStringConvertible, Sendable {
    /// Closes both connections once this many bytes have gone through.
    case cut(after: Int)
    /// Flips a bit of the byte at this offset.
    case corrupt(at: Int)
    /// Holds every chunk back for up to this many milliseconds.
    case delay(milliseconds: Int)
    /// Sends the chunk that holds this offset twice.
    case duplicate(at: Int)

    var description: String {
        switch self {
        case .cut(let after): "cut after \(after) bytes"
        case .corrupt(let at): "byte \(at) corrupted"
        case .delay(let ms): "chunks delayed up to \(ms) ms"
        case .duplicate(let at): "the chunk at byte \(at) sent twice"
        }
    }
}

/// A TCP proxy on loopback between a client and a server that misbehaves in one direction, as
/// a bad network or a hostile relay would.
final class FaultyProxy: Sendable {
    let channel: Channel
    var port: Int { channel.localAddress!.port! }

    /// Listens on a free loopback port, forwarding to `target`; `fault` applies to what the
    /// client sends when `toServer`, else to what the server sends.
    init(to target: SocketAddress, fault: Fault, toServer: Bool, seed: UInt64) throws {
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop).connect(to: target).flatMap { outbound in
                    inbound.eventLoop.makeCompletedFuture {
                        try inbound.pipeline.syncOperations.addHandler(Relay(to: outbound, fault: toServer ? fault : nil, seed: seed))
                        try outbound.pipeline.syncOperations.addHandler(Relay(to: inbound, fault: toServer ? nil : fault, seed: seed))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func close() { try? channel.close().wait() }

    /// Forwards what one side sends to the other, doing the fault on the way.
    final class Relay: ChannelInboundHandler, @unchecked Sendable {
        // Used only on its channel's event loop.
        typealias InboundIn = ByteBuffer
        let peer: Channel
        let fault: Fault?
        var passed = 0
        var generator: SplitMix64
        var done = false
        var released: NIODeadline?

        init(to peer: Channel, fault: Fault?, seed: UInt64) {
            self.peer = peer
            self.fault = fault
            generator = SplitMix64(seed: seed)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let start = passed
            passed += buffer.readableBytes
            switch fault {
            case .cut(let after)? where passed >= after:
                if after > start, let head = buffer.readSlice(length: after - start) { peer.writeAndFlush(head, promise: nil) }
                peer.close(promise: nil)
                context.close(promise: nil)
                return
            case .corrupt(let at)? where !done && at >= start && at < passed:
                done = true
                let index = buffer.readerIndex + (at - start)
                buffer.setInteger(buffer.getInteger(at: index, as: UInt8.self)! ^ 0x10, at: index)
            case .duplicate(let at)? where !done && at >= start && at < passed:
                done = true
                peer.write(buffer, promise: nil)
            case .delay(let milliseconds)?:
                // Late, but in order, as TCP delivers.
                let now = NIODeadline.now()
                let wanted = now + .milliseconds(Int64(generator.next() % UInt64(max(milliseconds, 1))))
                released = max(released ?? now, wanted)
                let (peer, late) = (self.peer, buffer)
                context.eventLoop.scheduleTask(deadline: released!) { peer.writeAndFlush(late, promise: nil) }
                return
            default: break
            }
            peer.writeAndFlush(buffer, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) { peer.close(promise: nil) }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    }
}

