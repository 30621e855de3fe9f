import CompressNIO
import NIOCore
import QISyncCore

/// Turns messages into frame payloads for one direction of a session.
///
/// The first message (HELLO) goes as it is; every later one is compressed into the
/// direction's single zlib stream and sync-flushed, so each frame holds exactly one message
/// and the stream's dictionary carries over from message to message.
public final class PayloadEncoder {
    fileprivate let deflater: WireDeflater
    private var sentFirst = false
    private let allocator = ByteBufferAllocator()
    /// Message bytes before compression, so far.
    public private(set) var rawBytes: UInt64 = 0
    /// Payload bytes after compression, so far.
    public private(set) var payloadBytes: UInt64 = 0

    /// Creates an encoder.
    public init() throws {
        deflater = try WireDeflater()
    }

    /// The payload for the next message.
    public func payload(for message: SyncMessage) throws -> ByteBuffer {
        let bytes = message.encoded()
        rawBytes += UInt64(bytes.count)
        let payload: ByteBuffer
        if sentFirst {
            payload = try bytes.withUnsafeBytes { try deflater.deflateSyncFlushed($0, allocator: allocator) }
        } else {
            sentFirst = true
            payload = allocator.buffer(bytes: bytes)
        }
        payloadBytes += UInt64(payload.readableBytes)
        return payload
    }
}

extension PayloadEncoder {
    /// Compresses arbitrary bytes into the stream as one payload; for tests of the decoder's caps.
    public func rawPayload(compressing input: inout ByteBuffer) throws -> ByteBuffer {
        defer { input.moveReaderIndex(to: input.writerIndex) }
        return try input.withUnsafeReadableBytes { try deflater.deflateSyncFlushed($0, allocator: ByteBufferAllocator()) }
    }
}

/// Turns frame payloads back into messages for one direction of a session, refusing an
/// inflated message over ``WireLimits/maximumMessage`` or a session over
/// ``WireLimits/maximumSessionInflated`` without inflating past the cap.
public final class PayloadDecoder {
    private let inflater: ZlibDecompressor
    private var receivedFirst = false
    private let allocator = ByteBufferAllocator()
    private let maximumMessage: Int
    private let maximumSession: UInt64
    /// Inflated bytes so far.
    public private(set) var inflatedBytes: UInt64 = 0

    /// Creates a decoder with the given caps.
    public init(maximumMessage: Int = WireLimits.maximumMessage, maximumSession: UInt64 = WireLimits.maximumSessionInflated) throws {
        inflater = try ZlibDecompressor(algorithm: .zlib)
        self.maximumMessage = maximumMessage
        self.maximumSession = maximumSession
    }

    /// The message a frame payload carries.
    public func message(from payload: ByteBuffer) throws(SyncError) -> SyncMessage {
        var payload = payload
        let bytes: [UInt8]
        if !receivedFirst {
            receivedFirst = true
            bytes = payload.readBytes(length: payload.readableBytes) ?? []
        } else {
            let cap = Int(min(UInt64(maximumMessage), maximumSession - min(inflatedBytes, maximumSession)))
            // One byte more than the cap: filling it means the message is over the cap.
            var output = allocator.buffer(capacity: cap + 1)
            do {
                try inflater.inflate(from: &payload, to: &output)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw SyncError(.inflatedTooLarge, "a message inflates past \(cap) bytes")
            } catch {
                throw SyncError(.malformedMessage, "the compressed stream is corrupt (\(error))")
            }
            guard payload.readableBytes == 0 else { throw SyncError(.malformedMessage, "a frame holds more than one message") }
            guard output.readableBytes <= cap else { throw SyncError(.inflatedTooLarge, "a message inflates past \(cap) bytes") }
            bytes = output.readBytes(length: output.readableBytes) ?? []
        }
        inflatedBytes += UInt64(bytes.count)
        do {
            return try SyncMessage(decoding: bytes)
        } catch {
            throw SyncError(.malformedMessage, error.message)
        }
    }
}
