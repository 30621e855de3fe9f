import Crypto
import NIOCore
import QISyncCore

/// What a bundle says about itself, readable without opening a sealed payload.
public struct BundleHeader: Equatable, Sendable {
    /// The sending site's key; the file's signature is its.
    public var sender: OriginID
    /// The sender's trust.
    public var senderTrust: String
    /// The sender's site name.
    public var senderSite: String
    /// The sender's own enrolment (a directory record's bytes), so a receiver can tell who
    /// sent the bundle before opening anything; empty when the sender has none yet.
    public var senderEnrolment: [UInt8]
    /// When it was made, milliseconds since 1970.
    public var createdMilliseconds: UInt64
    /// The trust it is for.
    public var forTrust: String
    /// The site it is for, or empty for any site of `forTrust`.
    public var forSite: String
    /// What the receiver must already hold: entries beyond this vector are in the bundle.
    public var since: VersionVector
    /// How many entries, and bytes of change bodies, it carries.
    public var entries: UInt64
    public var bodyBytes: UInt64
    /// When sealed: the fingerprint of the trust key whose bundle key it is sealed to, and
    /// the HPKE encapsulated key.
    public var sealedTo: [UInt8]?
    public var encapsulatedKey: [UInt8]?

    /// Creates a header.
    public init(sender: OriginID, senderTrust: String, senderSite: String, senderEnrolment: [UInt8] = [], createdMilliseconds: UInt64,
                forTrust: String, forSite: String, since: VersionVector, entries: UInt64, bodyBytes: UInt64,
                sealedTo: [UInt8]? = nil, encapsulatedKey: [UInt8]? = nil) {
        self.senderEnrolment = senderEnrolment
        self.sender = sender
        self.senderTrust = senderTrust
        self.senderSite = senderSite
        self.createdMilliseconds = createdMilliseconds
        self.forTrust = forTrust
        self.forSite = forSite
        self.since = since
        self.entries = entries
        self.bodyBytes = bodyBytes
        self.sealedTo = sealedTo
        self.encapsulatedKey = encapsulatedKey
    }

    /// Whether the payload is sealed to the receiving trust.
    public var isSealed: Bool { sealedTo != nil }

    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: sender.bytes)
        writer.write(string: senderTrust)
        writer.write(string: senderSite)
        writer.write(lengthPrefixed: senderEnrolment)
        writer.write(uint64: createdMilliseconds)
        writer.write(string: forTrust)
        writer.write(string: forSite)
        SyncMessage.write(since, to: &writer)
        writer.write(varint: entries)
        writer.write(varint: bodyBytes)
        if let sealedTo, let encapsulatedKey {
            writer.write(byte: 1)
            writer.write(raw: sealedTo)
            writer.write(lengthPrefixed: encapsulatedKey)
        } else {
            writer.write(byte: 0)
        }
        return writer.bytes
    }

    init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = ByteReader(bytes)
        sender = try OriginID(bytes: try reader.readBytes(32))
        senderTrust = try reader.readString(limit: 5, "sender trust")
        senderSite = try reader.readString(limit: 100, "sender site")
        senderEnrolment = try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "sender enrolment")
        createdMilliseconds = try reader.readUInt64()
        forTrust = try reader.readString(limit: 5, "receiving trust")
        forSite = try reader.readString(limit: 100, "receiving site")
        since = try SyncMessage.readVector(&reader)
        entries = try reader.readVarint()
        bodyBytes = try reader.readVarint()
        switch try reader.readByte() {
        case 0: sealedTo = nil; encapsulatedKey = nil
        case 1:
            sealedTo = try reader.readBytes(32)
            encapsulatedKey = try reader.readLengthPrefixed(limit: 256, "encapsulated key")
        default: throw DecodingError("unknown sealing mode")
        }
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes after the bundle header") }
    }
}

/// A bundle file: the protocol's messages from one side of a session, as a file carried by
/// hand (protocol/SPEC.md section 15). No I/O here: bytes in, bytes out, in pieces, so a
/// carrier can stream a bundle of any size through bounded memory.
///
/// ```
/// bundle := "qisync-bundle" version:byte(2) header:bytes payload signature:sig64
/// ```
/// The payload runs from the end of the header to the last 64 bytes of the file, which are the
/// sender's signature over SHA-256 of every byte before them. It is the frames HELLO,
/// DIRECTORY, VECTOR DIGESTS (version 3), VECTOR, OFFER, BATCH…, DONE exactly as a sync sends them (HELLO plain, the rest
/// one zlib stream); sealed to the receiving trust when the header says so, as pieces
/// (``BundlePieces``).
public struct BundleFile: Sendable {
    public static let magic = Array("qisync-bundle".utf8)
    /// The version written: 3, whose payload says what its sender expects the receiver to
    /// hold afterwards (VECTOR DIGESTS after DIRECTORY), so the receipt need list only the rest.
    public static let version: UInt8 = 3
    /// The versions read: 2 is 3 without VECTOR DIGESTS.
    public static let versionsRead: ClosedRange<UInt8> = 2...3
    /// The largest header accepted (16 MiB): its `since` vector can name every log of the country.
    public static let maximumHeader = 16 << 20

    /// The header.
    public let header: BundleHeader
    /// The payload: frames, or their sealed pieces.
    public let payload: [UInt8]
    /// Magic, version and the length-prefixed header.
    public let prefix: [UInt8]
    /// What the signature covers.
    public let signedDigest: [UInt8]
    /// The sender's signature.
    public let signature: [UInt8]

    /// The bytes before the payload, for a header.
    public static func prefix(for header: BundleHeader) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: magic)
        writer.write(byte: version)
        writer.write(lengthPrefixed: header.encoded())
        return writer.bytes
    }

    /// The associated data a sealed payload's pieces are bound to: the prefix as it reads with
    /// an empty encapsulated key (the seal itself makes the key).
    public static func sealedPrefix(for header: BundleHeader) -> [UInt8] {
        var copy = header
        copy.encapsulatedKey = []
        return prefix(for: copy)
    }

    /// Reads the header from the start of a file: the header and how many bytes the prefix
    /// takes, or nil when `bytes` does not yet hold the whole prefix.
    public static func readPrefix(_ bytes: ArraySlice<UInt8>) throws(DecodingError) -> (header: BundleHeader, length: Int)? {
        if bytes.count < magic.count + 1 {
            guard bytes.elementsEqual(magic.prefix(bytes.count)) else { throw DecodingError("this is not a qisync bundle (it does not start with 'qisync-bundle')") }
            return nil
        }
        var reader = ByteReader(Array(bytes.prefix(magic.count + 1 + 10)))
        guard try reader.readBytes(magic.count) == magic else {
            throw DecodingError("this is not a qisync bundle (it does not start with 'qisync-bundle')")
        }
        let version = try reader.readByte()
        guard versionsRead.contains(version) else {
            throw DecodingError("bundle format version \(version); this build reads versions \(versionsRead.lowerBound) to \(versionsRead.upperBound)\(version < versionsRead.lowerBound ? " (made by an older qisync: export it again)" : "")")
        }
        let length: Int
        do { length = try reader.readVarint(limit: UInt64(maximumHeader), "bundle header length") } catch {
            if bytes.count < magic.count + 11 { return nil }
            throw error
        }
        let start = reader.offset
        guard bytes.count >= start + length else { return nil }
        let header = try BundleHeader(decoding: Array(bytes.dropFirst(start).prefix(length)))
        return (header, start + length)
    }

    /// Assembles a whole bundle in memory and signs it with `sign` (the sender's site key over
    /// the digest): for tests and vectors; qisync itself streams (see the transport's carrier).
    public static func assemble(header: BundleHeader, payload: [UInt8], sign: ([UInt8]) -> [UInt8]) -> [UInt8] {
        let body = prefix(for: header) + payload
        return body + sign(Array(SHA256.hash(data: body)))
    }

    /// Reads a whole bundle held in memory: refuses anything truncated or malformed before
    /// the payload. The signature is not checked here (``isSignatureValid``).
    public init(parsing bytes: [UInt8]) throws(DecodingError) {
        guard let (header, length) = try Self.readPrefix(bytes[...]) else {
            throw DecodingError("the bundle is truncated: its header is cut short")
        }
        guard bytes.count >= length + 64 else { throw DecodingError("the bundle is truncated: its signature is missing") }
        self.header = header
        prefix = Array(bytes[0..<length])
        payload = Array(bytes[length..<(bytes.count - 64)])
        signedDigest = Array(SHA256.hash(data: bytes.dropLast(64)))
        signature = Array(bytes.suffix(64))
    }

    /// SHA-256 of some bytes (a whole bundle file, for receipts).
    public static func digest(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// Whether the sender named in the header signed exactly these bytes.
    public var isSignatureValid: Bool { SignatureCheck.isValid(signature, of: signedDigest, by: header.sender) }

    /// The payload's frames for `messages`: HELLO plain, the rest compressed in one stream.
    public static func frames(_ messages: [SyncMessage]) throws -> [UInt8] {
        let encoder = try PayloadEncoder()
        var out: [UInt8] = []
        for message in messages { out += Array(FrameEncoder.frame(try encoder.payload(for: message)).readableBytesView) }
        return out
    }

    /// The messages in a payload's frames, with the protocol's caps; refuses a partial frame.
    public static func messages(in frames: [UInt8]) throws(SyncError) -> [SyncMessage] {
        let reader = try BundleMessageReader()
        var messages = try reader.feed(frames[...])
        messages += try reader.finish()
        return messages
    }
}

/// Turns a bundle payload's frames into messages as its bytes arrive, in any pieces, with the
/// protocol's caps on every message and on the whole.
public final class BundleMessageReader {
    private var buffer = ByteBuffer()
    private let decoder: PayloadDecoder

    /// A reader for one payload.
    public init() throws(SyncError) {
        do { decoder = try PayloadDecoder() } catch { throw SyncError(.internalError, "could not start decompression: \(error)") }
    }

    /// The whole messages `bytes` completes.
    public func feed(_ bytes: ArraySlice<UInt8>) throws(SyncError) -> [SyncMessage] {
        buffer.writeBytes(bytes)
        var messages: [SyncMessage] = []
        while let payload = try FrameDecoder.nextFrame(from: &buffer) {
            messages.append(try decoder.message(from: payload))
        }
        buffer.discardReadBytes()
        return messages
    }

    /// The end of the payload: refuses a frame cut short.
    public func finish() throws(SyncError) -> [SyncMessage] {
        guard buffer.readableBytes == 0 else { throw SyncError(.malformedMessage, "the bundle's last frame is cut short") }
        return []
    }
}

/// A sealed payload's pieces: `length:u32` (big-endian, at most 1 MiB plus the AEAD tag) then
/// that many bytes of ciphertext, one after another; split as the bytes arrive.
public struct BundlePieces {
    /// The most ciphertext one piece may hold.
    public static let maximumPiece = (1 << 20) + 64
    private var buffer: [UInt8] = []

    /// A splitter.
    public init() {}

    /// The piece for a sealed piece's ciphertext.
    public static func frame(_ ciphertext: [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: ciphertext.count + 4)
        writer.write(raw: [UInt8(truncatingIfNeeded: ciphertext.count >> 24), UInt8(truncatingIfNeeded: ciphertext.count >> 16),
                           UInt8(truncatingIfNeeded: ciphertext.count >> 8), UInt8(truncatingIfNeeded: ciphertext.count)])
        writer.write(raw: ciphertext)
        return writer.bytes
    }

    /// The whole pieces `bytes` completes.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(DecodingError) -> [[UInt8]] {
        buffer += bytes
        var pieces: [[UInt8]] = []
        var offset = 0
        while buffer.count - offset >= 4 {
            let length = buffer[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            guard length > 0, length <= Self.maximumPiece else { throw DecodingError("a sealed piece of \(length) bytes (at most \(Self.maximumPiece))") }
            guard buffer.count - offset - 4 >= length else { break }
            pieces.append(Array(buffer[(offset + 4)..<(offset + 4 + length)]))
            offset += 4 + length
        }
        buffer.removeFirst(offset)
        return pieces
    }

    /// Whether every byte fed belonged to a whole piece.
    public var isEmpty: Bool { buffer.isEmpty }
}

/// What an import sends back: the receiver's vector after it, signed by the receiver, so the
/// sender's next export carries exactly what is missing.
///
/// ```
/// receipt := "qisync-receipt" version:byte(3) origin:key32 trust:string site:string createdMs:u64
///            bundle:hash32 [buckets:u64 vectorDigest:hash32] vector directory signature:sig64
/// ```
/// `directory` (versions 2 and 3) is the receiver's SUMMARY (count, then trust, pinned, digest
/// per trust), so the sender's next bundle carries only the directory records of trusts the
/// receiver pins whose digests differ. In version 3 (a receipt for a bundle that said what its
/// sender expects the receiver to hold, as VECTOR DIGESTS) `vector` lists only the logs of the
/// buckets whose digests differ from the bundle's (`buckets`, a mask), and `vectorDigest` is the
/// receiver's whole vector's digest; in versions 1 and 2 `vector` is whole. Versions 1 and 2
/// are read too.
public struct BundleReceipt: Equatable, Sendable {
    static let magic = Array("qisync-receipt".utf8)
    /// The receiving site.
    public let origin: OriginID
    public let trust: String
    public let site: String
    /// When it was written.
    public let createdMilliseconds: UInt64
    /// SHA-256 of the bundle file imported.
    public let bundleDigest: [UInt8]
    /// What the receiver holds now (of the logs the sender may see): the whole vector, or with
    /// `difference`, only the logs of the buckets that differ from what the bundle expected.
    public let vector: VersionVector
    /// For a receipt told as a difference (version 3): the buckets that differ from the bundle's
    /// VECTOR DIGESTS, and the digest of the receiver's whole vector, to check it rebuilt.
    public let difference: (buckets: UInt64, digest: [UInt8])?
    /// The receiver's directory by trust (nil in a version-1 receipt).
    public let directory: [DirectoryGroup]?

    public static func == (lhs: BundleReceipt, rhs: BundleReceipt) -> Bool {
        lhs.origin == rhs.origin && lhs.trust == rhs.trust && lhs.site == rhs.site && lhs.createdMilliseconds == rhs.createdMilliseconds
            && lhs.bundleDigest == rhs.bundleDigest && lhs.vector == rhs.vector && lhs.directory == rhs.directory
            && lhs.difference?.buckets == rhs.difference?.buckets && lhs.difference?.digest == rhs.difference?.digest
    }

    /// Creates a receipt (version 2 when it carries the receiver's directory).
    public init(origin: OriginID, trust: String, site: String, createdMilliseconds: UInt64, bundleDigest: [UInt8], vector: VersionVector,
                directory: [DirectoryGroup]? = nil) {
        self.init(origin: origin, trust: trust, site: site, createdMilliseconds: createdMilliseconds, bundleDigest: bundleDigest,
                  vector: vector, difference: nil, directory: directory)
    }

    /// Creates a version-3 receipt: the receiver's `held` vector told against the bundle's
    /// VECTOR DIGESTS `expected`.
    public init(origin: OriginID, trust: String, site: String, createdMilliseconds: UInt64, bundleDigest: [UInt8], held: VersionVector,
                expected: [[UInt8]], directory: [DirectoryGroup]) {
        let digests = held.bucketDigests
        let buckets = VersionVector.differingBuckets(digests, from: expected)
        self.init(origin: origin, trust: trust, site: site, createdMilliseconds: createdMilliseconds, bundleDigest: bundleDigest,
                  vector: held.restricted(toBuckets: VersionVector.buckets(in: buckets)),
                  difference: (buckets, VersionVector.digest(ofBuckets: digests)), directory: directory)
    }

    private init(origin: OriginID, trust: String, site: String, createdMilliseconds: UInt64, bundleDigest: [UInt8], vector: VersionVector,
                 difference: (buckets: UInt64, digest: [UInt8])?, directory: [DirectoryGroup]?) {
        self.origin = origin
        self.trust = trust
        self.site = site
        self.createdMilliseconds = createdMilliseconds
        self.bundleDigest = bundleDigest
        self.vector = vector
        self.difference = difference
        self.directory = directory
    }

    /// The receiver's whole vector: `vector` itself, or for a version-3 receipt, rebuilt from
    /// what the sender expected of it (the vector whose digests the bundle carried); nil when
    /// the rebuilt vector's digest is not the one the receipt names (not the expectation the
    /// bundle was made with).
    public func heldVector(expected: VersionVector?) -> VersionVector? {
        guard let difference else { return vector }
        guard let expected else { return nil }
        let rebuilt = VersionVector.rebuilt(expected: expected, differing: difference.buckets, listed: vector)
        return rebuilt.digest == difference.digest ? rebuilt : nil
    }

    private var body: [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Self.magic)
        writer.write(byte: difference != nil ? 3 : directory == nil ? 1 : 2)
        writer.write(raw: origin.bytes)
        writer.write(string: trust)
        writer.write(string: site)
        writer.write(uint64: createdMilliseconds)
        writer.write(raw: bundleDigest)
        if let difference {
            writer.write(uint64: difference.buckets)
            writer.write(raw: difference.digest)
        }
        SyncMessage.write(vector, to: &writer)
        if let directory { DirectoryGroup.write(directory, to: &writer) }
        return writer.bytes
    }

    /// The receipt's bytes, signed by the receiver (`sign` over SHA-256 of the body).
    public func encoded(sign: ([UInt8]) -> [UInt8]) -> [UInt8] {
        let body = self.body
        return body + sign(Array(SHA256.hash(data: body)))
    }

    /// Reads a receipt and checks the receiver's signature.
    public init(parsing bytes: [UInt8]) throws(DecodingError) {
        guard bytes.count > Self.magic.count + 64, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw DecodingError("this is not a qisync receipt")
        }
        var reader = ByteReader(Array(bytes.dropLast(64)))
        _ = try reader.readBytes(Self.magic.count)
        let version = try reader.readByte()
        guard (1...3).contains(version) else { throw DecodingError("unknown receipt version \(version)") }
        origin = try OriginID(bytes: try reader.readBytes(32))
        trust = try reader.readString(limit: 5, "trust")
        site = try reader.readString(limit: 100, "site")
        createdMilliseconds = try reader.readUInt64()
        bundleDigest = try reader.readBytes(32)
        difference = version == 3 ? (try reader.readUInt64(), try reader.readBytes(32)) : nil
        vector = try SyncMessage.readVector(&reader)
        directory = version >= 2 ? try DirectoryGroup.readSummary(&reader, limit: WireLimits.directoryRecords) : nil
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes in the receipt") }
        guard SignatureCheck.isValid(Array(bytes.suffix(64)), of: Array(SHA256.hash(data: bytes.dropLast(64))), by: origin) else {
            throw DecodingError("the receipt's signature does not match the site it names: it was altered")
        }
    }
}
