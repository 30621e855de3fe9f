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
    public init(sender: OriginID, senderTrust: String, senderSite: String, createdMilliseconds: UInt64, forTrust: String, forSite: String,
                since: VersionVector, entries: UInt64, bodyBytes: UInt64, sealedTo: [UInt8]? = nil, encapsulatedKey: [UInt8]? = nil) {
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
/// hand (protocol/SPEC.md section 15). No I/O here: bytes in, bytes out.
///
/// ```
/// bundle := "qisync-bundle" version:byte(1) header:bytes payload:bytes signature:sig64
/// ```
/// The payload is the frames HELLO, DIRECTORY, VECTOR, OFFER, BATCH…, DONE exactly as a
/// sync sends them (HELLO plain, the rest one zlib stream), sealed to the receiving trust when
/// the header says so. The signature is the sender's over SHA-256 of every byte before it.
public struct BundleFile: Sendable {
    public static let magic = Array("qisync-bundle".utf8)
    public static let version: UInt8 = 1
    /// The largest payload accepted (16 GiB): a bound for hostile files, not a working size.
    public static let maximumPayload: UInt64 = 16 << 30

    /// The header.
    public let header: BundleHeader
    /// The payload: frames, or their sealed form.
    public let payload: [UInt8]
    /// Magic, version and the length-prefixed header: the associated data a sealed payload is bound to.
    public let prefix: [UInt8]
    /// What the signature covers.
    public let signedDigest: [UInt8]
    /// The sender's signature.
    public let signature: [UInt8]

    /// Assembles a bundle and signs it with `sign` (the sender's site key over the digest).
    public static func assemble(header: BundleHeader, payload: [UInt8], sign: ([UInt8]) -> [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: payload.count + 512)
        writer.write(raw: prefix(for: header))
        writer.write(lengthPrefixed: payload)
        let digest = Array(SHA256.hash(data: writer.bytes))
        writer.write(raw: sign(digest))
        return writer.bytes
    }

    /// The bytes a sealed payload is bound to, for a header.
    public static func prefix(for header: BundleHeader) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: magic)
        writer.write(byte: version)
        writer.write(lengthPrefixed: header.encoded())
        return writer.bytes
    }

    /// Reads a bundle file: refuses anything truncated, padded or malformed. The signature is
    /// not checked here (``isSignatureValid``).
    public init(parsing bytes: [UInt8]) throws(DecodingError) {
        guard bytes.count >= Self.magic.count + 1, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw DecodingError("this is not a qisync bundle (it does not start with 'qisync-bundle')")
        }
        var reader = ByteReader(bytes)
        _ = try reader.readBytes(Self.magic.count)
        let version = try reader.readByte()
        guard version == Self.version else { throw DecodingError("bundle format version \(version); this build reads version \(Self.version)") }
        header = try BundleHeader(decoding: try reader.readLengthPrefixed(limit: 1 << 26, "bundle header"))
        prefix = Array(bytes[0..<reader.offset])
        let length = try reader.readVarint()
        guard length <= Self.maximumPayload, length <= UInt64(reader.remaining) else {
            throw DecodingError("the bundle is truncated: its payload should be \(length) bytes, only \(reader.remaining) are left")
        }
        payload = try reader.readBytes(Int(length))
        signedDigest = Array(SHA256.hash(data: bytes[0..<reader.offset]))
        guard reader.remaining == 64 else {
            throw DecodingError(reader.remaining < 64 ? "the bundle is truncated: its signature is missing" : "\(reader.remaining - 64) unexpected bytes after the bundle's signature")
        }
        signature = try reader.readBytes(64)
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
        var buffer = ByteBuffer(bytes: frames)
        let decoder: PayloadDecoder
        do { decoder = try PayloadDecoder() } catch { throw SyncError(.internalError, "could not start decompression: \(error)") }
        var messages: [SyncMessage] = []
        while let payload = try FrameDecoder.nextFrame(from: &buffer) {
            messages.append(try decoder.message(from: payload))
        }
        guard buffer.readableBytes == 0 else { throw SyncError(.malformedMessage, "the bundle's last frame is cut short") }
        return messages
    }
}

/// What an import sends back: the receiver's vector after it, signed by the receiver, so the
/// sender's next export carries exactly what is missing.
///
/// ```
/// receipt := "qisync-receipt" version:byte(1) origin:key32 trust:string site:string createdMs:u64
///            bundle:hash32 vector signature:sig64
/// ```
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
    /// What the receiver holds now (of the logs the sender may see).
    public let vector: VersionVector

    /// Creates a receipt.
    public init(origin: OriginID, trust: String, site: String, createdMilliseconds: UInt64, bundleDigest: [UInt8], vector: VersionVector) {
        self.origin = origin
        self.trust = trust
        self.site = site
        self.createdMilliseconds = createdMilliseconds
        self.bundleDigest = bundleDigest
        self.vector = vector
    }

    private var body: [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Self.magic)
        writer.write(byte: 1)
        writer.write(raw: origin.bytes)
        writer.write(string: trust)
        writer.write(string: site)
        writer.write(uint64: createdMilliseconds)
        writer.write(raw: bundleDigest)
        SyncMessage.write(vector, to: &writer)
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
        guard try reader.readByte() == 1 else { throw DecodingError("unknown receipt version") }
        origin = try OriginID(bytes: try reader.readBytes(32))
        trust = try reader.readString(limit: 5, "trust")
        site = try reader.readString(limit: 100, "site")
        createdMilliseconds = try reader.readUInt64()
        bundleDigest = try reader.readBytes(32)
        vector = try SyncMessage.readVector(&reader)
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes in the receipt") }
        guard SignatureCheck.isValid(Array(bytes.suffix(64)), of: Array(SHA256.hash(data: bytes.dropLast(64))), by: origin) else {
            throw DecodingError("the receipt's signature does not match the site it names: it was altered")
        }
    }
}
