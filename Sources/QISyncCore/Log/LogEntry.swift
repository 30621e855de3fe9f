import Crypto

/// One signed, hash-chained entry in an origin's log: a change with its place and stamp.
///
/// `hash = SHA-256("qisync-entry-1" ‖ origin ‖ scope ‖ seq (u64 BE) ‖ previousHash ‖
/// hlc (u64 BE) ‖ body)`; the origin signs `hash` with Ed25519. Entry 1's previous
/// hash is 32 zero bytes.
///
/// A later entry's signature covers an earlier one through the chain, so an entry may be held
/// without its own signature (``signature`` is nil): one received inside a run, or one the
/// origin wrote inside a write window, which signs only each log's last entry. The last entry
/// of every log a replica holds is always signed.
public struct LogEntry: Hashable, Sendable {
    /// The site that appended it.
    public let origin: OriginID
    /// Which of the origin's logs it belongs to.
    public let scope: Scope
    /// Its number in that log, from 1.
    public let seq: UInt64
    /// The hash of entry `seq - 1`, or zeros for entry 1.
    public let previousHash: [UInt8]
    /// When it was written.
    public let hlc: HLC
    /// The encoded ``Change``.
    public let body: [UInt8]
    /// The origin's Ed25519 signature of ``hash``, or nil when a later entry's signature covers it.
    public let signature: [UInt8]?
    /// The entry's hash, computed from the fields above.
    public let hash: [UInt8]

    /// The previous hash of every log's first entry.
    public static let genesisHash = [UInt8](repeating: 0, count: 32)

    /// Rebuilds an entry from its stored or received fields; the hash is recomputed.
    public init(origin: OriginID, scope: Scope, seq: UInt64, previousHash: [UInt8], hlc: HLC, body: [UInt8], signature: [UInt8]?) {
        self.origin = origin
        self.scope = scope
        self.seq = seq
        self.previousHash = previousHash
        self.hlc = hlc
        self.body = body
        self.signature = signature
        hash = Self.hash(origin: origin, scope: scope, seq: seq, previousHash: previousHash, hlc: hlc, body: body)
    }

    /// Makes and signs a new entry; with `signed` false, leaves it for a later entry's
    /// signature to cover (a write window signs only the last entry of each log it wrote).
    public init(signer: SiteSigner, scope: Scope, seq: UInt64, previousHash: [UInt8], hlc: HLC, change: Change, signed: Bool = true) {
        let body = change.encoded()
        let hash = Self.hash(origin: signer.origin, scope: scope, seq: seq, previousHash: previousHash, hlc: hlc, body: body)
        self.origin = signer.origin
        self.scope = scope
        self.seq = seq
        self.previousHash = previousHash
        self.hlc = hlc
        self.body = body
        self.signature = signed ? signer.sign(hash) : nil
        self.hash = hash
    }

    /// Names the entry as a version.
    public var ref: VersionRef { VersionRef(origin: origin, scope: scope, seq: seq) }

    /// Whether the entry carries the origin's signature of its hash.
    public var hasValidSignature: Bool { signature.map { SignatureCheck.isValid($0, of: hash, by: origin) } ?? false }

    /// The same entry without its signature (for an entry inside a run whose last entry is signed).
    public func withoutSignature() -> LogEntry {
        LogEntry(origin: origin, scope: scope, seq: seq, previousHash: previousHash, hlc: hlc, body: body, signature: nil)
    }

    /// Decodes the change this entry carries (for a redacted entry, the change as redacted).
    public func change() throws(DecodingError) -> Change { try Change(decodingBody: body) }

    // MARK: Redaction

    /// A redacted entry's body begins with these two bytes, then the entry's original hash,
    /// then the change as redacted. No change can begin with them (they read as an origin
    /// count of 10,623, over the limit of 4,096), so the two kinds of body never mix.
    public static let redactedPrefix: [UInt8] = [0xFF, 0x52]

    /// Whether a body is a redacted one.
    public static func isRedacted(_ body: [UInt8]) -> Bool {
        body.count >= 34 && body[0] == redactedPrefix[0] && body[1] == redactedPrefix[1]
    }

    /// Whether this entry's body was redacted (its hash is the one its body names, vouched for
    /// by a redaction record of its trust: SPEC 12).
    public var isRedacted: Bool { Self.isRedacted(body) }

    /// The body of an entry with hash `hash` whose change is replaced by `change`.
    public static func redactedBody(hash: [UInt8], change: Change) -> [UInt8] {
        redactedPrefix + hash + change.encoded()
    }

    /// The same entry with its body redacted: same place, clock, hash and signature.
    public func redacted(to change: Change) -> LogEntry {
        LogEntry(origin: origin, scope: scope, seq: seq, previousHash: previousHash, hlc: hlc,
                 body: Self.redactedBody(hash: hash, change: change), signature: signature)
    }

    static func hash(origin: OriginID, scope: Scope, seq: UInt64, previousHash: [UInt8], hlc: HLC, body: [UInt8]) -> [UInt8] {
        if isRedacted(body) { return Array(body[2..<34]) }
        var header = ByteWriter(capacity: 96)
        header.write(raw: Array("qisync-entry-1".utf8))
        header.write(raw: origin.bytes)
        header.write(byte: scope.rawValue)
        header.write(uint64: seq)
        header.write(raw: previousHash)
        header.write(uint64: hlc.rawValue)
        var hasher = SHA256()
        hasher.update(data: header.bytes)
        hasher.update(data: body)
        return Array(hasher.finalize())
    }

    /// The entry's self-contained encoding: `origin[32] scope seq(varint) previousHash[32]
    /// hlc(u64) body(length-prefixed) signed(byte 0 or 1) [signature[64]]`.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: body.count + 150)
        writer.write(raw: origin.bytes)
        writer.write(byte: scope.rawValue)
        writer.write(varint: seq)
        writer.write(raw: previousHash)
        writer.write(uint64: hlc.rawValue)
        writer.write(lengthPrefixed: body)
        if let signature {
            writer.write(byte: 1)
            writer.write(raw: signature)
        } else {
            writer.write(byte: 0)
        }
        return writer.bytes
    }

    /// Decodes an entry written by ``encoded()``. The signature is not checked here.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = ByteReader(bytes)
        let origin = try OriginID(bytes: try reader.readBytes(32))
        guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope") }
        let seq = try reader.readVarint()
        guard seq >= 1 else { throw DecodingError("sequence numbers start at 1") }
        let previous = try reader.readBytes(32)
        let hlc = HLC(rawValue: try reader.readUInt64())
        let body = try reader.readLengthPrefixed(limit: Change.maximumBodyBytes, "entry body")
        let signature: [UInt8]?
        switch try reader.readByte() {
        case 0: signature = nil
        case 1: signature = try reader.readBytes(64)
        case let flag: throw DecodingError("unknown signature flag \(flag)")
        }
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes after the entry") }
        self.init(origin: origin, scope: scope, seq: seq, previousHash: previous, hlc: hlc, body: body, signature: signature)
    }
}
