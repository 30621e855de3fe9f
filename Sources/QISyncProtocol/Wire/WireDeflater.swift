import CZlib
import NIOCore

/// The deflate side of a direction's payload stream: one zlib stream (RFC 1950), each
/// message sync-flushed, with zlib's search tuned for the machine's cores rather than one of
/// its levels (``WireLimits/deflateTuning``). compress-nio, which inflates, does not expose
/// `deflateTune`, so this one speaks to zlib itself.
final class WireDeflater {
    /// zlib keeps pointers into its stream: it stays where it was allocated.
    private let stream: UnsafeMutablePointer<z_stream>

    /// A stream at ``WireLimits/compressionLevel`` (the level its header names), tuned by
    /// ``WireLimits/deflateTuning``.
    init() throws(DeflateError) {
        let tuning = WireLimits.deflateTuning
        // Set up before `self.stream` is assigned: a failure then leaves no instance whose
        // deinit would end the stream a second time.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = deflateInit2_(stream, WireLimits.compressionLevel, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw DeflateError(status: status)
        }
        let tuned = deflateTune(stream, tuning.goodLength, tuning.lazyMatch, tuning.niceLength, tuning.maxChain)
        guard tuned == Z_OK else {
            deflateEnd(stream)
            stream.deallocate()
            throw DeflateError(status: tuned)
        }
        self.stream = stream
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input` into the stream and sync-flushes it: the payload ends `00 00 ff ff`,
    /// and the receiver can inflate it as soon as it arrives.
    func deflateSyncFlushed(_ input: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) throws(DeflateError) -> ByteBuffer {
        // zlib's bound for one call, plus room for the flush's empty block: a flush that ends
        // with fewer than 7 bytes of room is finished by a second call that adds another
        // flush marker (zlib's manual), which is valid but not the bytes SPEC's vectors hold.
        var output = allocator.buffer(capacity: Int(deflateBound(stream, UInt(input.count))) + 16)
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.pointee.avail_in = UInt32(input.count)
        repeat {
            if output.writableBytes == 0 { output.reserveCapacity(minimumWritableBytes: 64 << 10) }
            let status = output.withUnsafeMutableWritableBytes { out in
                stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.pointee.avail_out = UInt32(out.count)
                let status = deflate(stream, Z_SYNC_FLUSH)
                return (status, out.count - Int(stream.pointee.avail_out))
            }
            output.moveWriterIndex(forwardBy: status.1)
            // Z_BUF_ERROR: no progress possible, which after a flush means all is out.
            guard status.0 == Z_OK || status.0 == Z_BUF_ERROR else { throw DeflateError(status: status.0) }
        } while stream.pointee.avail_out == 0 || stream.pointee.avail_in > 0
        stream.pointee.next_in = nil
        return output
    }

    /// zlib refused to start or go on.
    struct DeflateError: Error, CustomStringConvertible {
        let status: Int32
        var description: String { "zlib's deflate failed (status \(status))" }
    }
}
