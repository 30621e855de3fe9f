import NIOCore

/// Splits a byte stream into frames: a 4-byte big-endian length, then that many payload bytes.
///
/// A length of 0 or over ``WireLimits/maximumFrame`` is refused as soon as the 4 length bytes
/// arrive, before any payload is buffered.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The largest payload accepted.
    public let maximumFrame: Int

    /// Creates a decoder.
    public init(maximumFrame: Int = WireLimits.maximumFrame) { self.maximumFrame = maximumFrame }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(from: &buffer, maximumFrame: maximumFrame) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// Takes one whole frame's payload off the front of `buffer`, or nil when it is not all there yet.
    public static func nextFrame(from buffer: inout ByteBuffer, maximumFrame: Int = WireLimits.maximumFrame) throws(SyncError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length > 0 else { throw SyncError(.malformedMessage, "a frame of length 0") }
        guard length <= maximumFrame else {
            throw SyncError(.frameTooLarge, "a frame of \(length) bytes; the limit is \(maximumFrame)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }
}

/// Frames a payload: its length as 4 bytes big-endian, then the payload.
public enum FrameEncoder {
    /// The frame for `payload`.
    public static func frame(_ payload: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var frame = allocator.buffer(capacity: payload.readableBytes + 4)
        frame.writeInteger(UInt32(payload.readableBytes))
        frame.writeImmutableBuffer(payload)
        return frame
    }
}
