import QISyncCore

/// The first message each side sends: who it is, which versions it speaks, which ways it syncs.
public struct Hello: Equatable, Sendable {
    /// The lowest and highest protocol versions spoken.
    public var versions: ClosedRange<UInt64>
    /// The sender's site key.
    public var origin: OriginID
    /// The sender's trust code.
    public var trust: String
    /// The sender's site name.
    public var site: String
    /// `hub` or `ward`.
    public var kind: String
    /// Whether the sender will send entries the peer lacks.
    public var sends: Bool
    /// Whether the sender will take entries it lacks.
    public var receives: Bool
    /// The digest of the directory records (enrolments, revocations) the sender holds; when
    /// the two sides' digests differ, each sends its records in a DIRECTORY message.
    public var directoryDigest: [UInt8]
    /// Whether the sender is only looking (`sync plan`): it keeps nothing it receives.
    public var dryRun: Bool

    /// Creates a hello.
    public init(versions: ClosedRange<UInt64> = WireLimits.versions, origin: OriginID, trust: String, site: String, kind: String,
                sends: Bool = true, receives: Bool = true, directoryDigest: [UInt8] = [UInt8](repeating: 0, count: 32), dryRun: Bool = false) {
        precondition(directoryDigest.count == 32, "a directory digest is 32 bytes")
        self.directoryDigest = directoryDigest
        self.dryRun = dryRun
        self.versions = versions
        self.origin = origin
        self.trust = trust
        self.site = site
        self.kind = kind
        self.sends = sends
        self.receives = receives
    }
}

/// A protocol message. protocol/SPEC.md gives each one's bytes.
public enum SyncMessage: Equatable, Sendable {
    /// Identity, versions and directions (type 1, always uncompressed).
    case hello(Hello)
    /// The sender's version vector (type 2).
    case vector(VersionVector)
    /// How many entries and bytes of entries the sender is about to send (type 3).
    case offer(entries: UInt64, bytes: UInt64)
    /// A batch of entries, in log order (type 4). On the wire, entries are grouped in runs of
    /// one log: the origin, scope, first sequence number and previous hash are sent once per
    /// run, and only the run's last signature (decoded entries inside a run have none).
    case batch(id: UInt64, entries: [LogEntry])
    /// A batch was verified and applied in one transaction (type 5): `applied` entries took
    /// effect and `refused` did not (authorisation); together they are the batch's entries.
    case ack(id: UInt64, applied: UInt64, conflicts: UInt64, refused: UInt64)
    /// The sender has nothing more to send (type 6).
    case done
    /// The sender is ending the session because of this error (type 7).
    case error(SyncErrorCode, String)
    /// Directory records (type 8): in version 1 every record the sender holds; in version 2
    /// those of the peer's pinned trusts the peer lacks (SUMMARY and HAVE say which).
    case directory([DirectoryRecord])
    /// Version 2: the sender's directory by trust (type 9), one digest per trust key.
    case summary([DirectoryGroup])
    /// Version 2: the record digests the sender holds of the trusts whose digests differ
    /// between the two SUMMARY messages and that it pins (type 10).
    case have([[UInt8]])
    /// Version 2: one 16-byte digest per bucket of the sender's version vector (type 11); the
    /// VECTOR that follows lists only the buckets whose digests differ.
    case vectorDigests([[UInt8]])

    static let magic = Array("qisync".utf8)

    /// Splits entries into runs: consecutive entries of one log, each chaining onto the one before.
    static func runs(of entries: [LogEntry]) -> [[LogEntry]] {
        var runs: [[LogEntry]] = []
        for entry in entries {
            if let last = runs.last?.last, last.origin == entry.origin, last.scope == entry.scope, last.seq + 1 == entry.seq,
               entry.previousHash == last.hash, entry.hlc > last.hlc {
                runs[runs.count - 1].append(entry)
            } else {
                runs.append([entry])
            }
        }
        return runs
    }

    /// A version vector's fields as VECTOR carries them (also in bundle headers and receipts):
    /// count, then origin, scope, seq and hash per log, in log order.
    static func write(_ vector: VersionVector, to writer: inout ByteWriter) {
        let logs = vector.positions.sorted { $0.key < $1.key }
        writer.write(varint: UInt64(logs.count))
        for (log, position) in logs {
            writer.write(raw: log.origin.bytes)
            writer.write(byte: log.scope.rawValue)
            writer.write(varint: position.seq)
            writer.write(raw: position.hash)
        }
    }

    /// Reads what ``write(_:to:)`` wrote; refuses an unknown scope or a log listed twice.
    static func readVector(_ reader: inout ByteReader) throws(DecodingError) -> VersionVector {
        let count = try reader.readVarint(limit: 1 << 20, "vector length")
        var vector = VersionVector()
        for _ in 0..<count {
            let origin = try OriginID(bytes: try reader.readBytes(32))
            guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope in a vector") }
            let seq = try reader.readVarint()
            let hash = try reader.readBytes(32)
            let log = LogID(origin: origin, scope: scope)
            guard vector.positions[log] == nil else { throw DecodingError("a vector lists log \(log) twice") }
            vector.positions[log] = LogPosition(seq: seq, hash: hash)
        }
        return vector
    }

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .hello: "HELLO"
        case .vector: "VECTOR"
        case .offer: "OFFER"
        case .batch: "BATCH"
        case .ack: "ACK"
        case .done: "DONE"
        case .error: "ERROR"
        case .directory: "DIRECTORY"
        case .summary: "SUMMARY"
        case .have: "HAVE"
        case .vectorDigests: "VECTOR DIGESTS"
        }
    }

    /// The message's bytes (before compression).
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        switch self {
        case .hello(let hello):
            writer.write(byte: 1)
            writer.write(raw: Self.magic)
            writer.write(varint: hello.versions.lowerBound)
            writer.write(varint: hello.versions.upperBound)
            writer.write(raw: hello.origin.bytes)
            writer.write(string: hello.trust)
            writer.write(string: hello.site)
            writer.write(string: hello.kind)
            writer.write(byte: (hello.sends ? 1 : 0) | (hello.receives ? 2 : 0) | (hello.dryRun ? 4 : 0))
            writer.write(raw: hello.directoryDigest)
        case .vector(let vector):
            writer.write(byte: 2)
            Self.write(vector, to: &writer)
        case .offer(let entries, let bytes):
            writer.write(byte: 3)
            writer.write(varint: entries)
            writer.write(varint: bytes)
        case .batch(let id, let entries):
            writer.write(byte: 4)
            writer.write(varint: id)
            let runs = Self.runs(of: entries)
            writer.write(varint: UInt64(runs.count))
            for run in runs {
                let first = run[0]
                writer.write(raw: first.origin.bytes)
                writer.write(byte: first.scope.rawValue)
                writer.write(varint: first.seq)
                writer.write(raw: first.previousHash)
                writer.write(varint: UInt64(run.count))
                var previousHLC: UInt64 = 0
                for entry in run {
                    writer.write(varint: entry.hlc.rawValue &- previousHLC)
                    previousHLC = entry.hlc.rawValue
                    writer.write(lengthPrefixed: entry.body)
                }
                // Only the run's last signature travels: through the chain it covers the rest.
                writer.write(raw: run.last!.signature ?? [UInt8](repeating: 0, count: 64))
            }
        case .ack(let id, let applied, let conflicts, let refused):
            writer.write(byte: 5)
            writer.write(varint: id)
            writer.write(varint: applied)
            writer.write(varint: conflicts)
            writer.write(varint: refused)
        case .done:
            writer.write(byte: 6)
        case .error(let code, let message):
            writer.write(byte: 7)
            writer.write(varint: code.rawValue)
            writer.write(string: String(message.prefix(1000)))
        case .directory(let records):
            writer.write(byte: 8)
            writer.write(varint: UInt64(records.count))
            for record in records {
                writer.write(byte: record.kind.rawValue)
                writer.write(lengthPrefixed: record.bytes)
            }
        case .summary(let groups):
            writer.write(byte: 9)
            DirectoryGroup.write(groups, to: &writer)
        case .have(let digests):
            writer.write(byte: 10)
            writer.write(varint: UInt64(digests.count))
            for digest in digests { writer.write(raw: digest) }
        case .vectorDigests(let digests):
            writer.write(byte: 11)
            for digest in digests { writer.write(raw: digest) }
        }
        return writer.bytes
    }

    /// Decodes one message, refusing anything malformed, unknown or with bytes left over.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = ByteReader(bytes)
        switch try reader.readByte() {
        case 1:
            guard try reader.readBytes(Self.magic.count) == Self.magic else { throw DecodingError("not a qisync HELLO (bad magic)") }
            let low = try reader.readVarint(), high = try reader.readVarint()
            guard low <= high else { throw DecodingError("HELLO version range \(low)...\(high) is empty") }
            let origin = try OriginID(bytes: try reader.readBytes(32))
            let trust = try reader.readString(limit: 5, "trust code")
            let site = try reader.readString(limit: 100, "site name")
            let kind = try reader.readString(limit: 8, "site kind")
            let flags = try reader.readByte()
            guard flags & ~7 == 0 else { throw DecodingError("unknown HELLO flags \(flags)") }
            let digest = try reader.readBytes(32)
            self = .hello(Hello(versions: low...high, origin: origin, trust: trust, site: site, kind: kind,
                                sends: flags & 1 != 0, receives: flags & 2 != 0, directoryDigest: digest, dryRun: flags & 4 != 0))
        case 2:
            self = .vector(try Self.readVector(&reader))
        case 3:
            self = .offer(entries: try reader.readVarint(), bytes: try reader.readVarint())
        case 4:
            let id = try reader.readVarint()
            let runCount = try reader.readVarint(limit: 1 << 16, "run count")
            var entries: [LogEntry] = []
            for _ in 0..<runCount {
                let origin = try OriginID(bytes: try reader.readBytes(32))
                guard let scope = Scope(rawValue: try reader.readByte()) else { throw DecodingError("unknown scope in BATCH") }
                let firstSeq = try reader.readVarint()
                var previous = try reader.readBytes(32)
                let count = try reader.readVarint(limit: 1 << 16, "run length")
                guard count > 0, firstSeq >= 1, firstSeq <= UInt64.max - UInt64(count) else { throw DecodingError("an empty or out-of-range run in BATCH") }
                guard entries.count + count <= 1 << 16 else { throw DecodingError("a BATCH of more than 65,536 entries") }
                var hlc: UInt64 = 0
                var run: [(HLC, [UInt8])] = []
                for index in 0..<count {
                    let (sum, overflow) = hlc.addingReportingOverflow(try reader.readVarint())
                    guard !overflow, index == 0 || sum > hlc else { throw DecodingError("HLCs in a run must increase") }
                    hlc = sum
                    run.append((HLC(rawValue: hlc), try reader.readLengthPrefixed(limit: Change.maximumBodyBytes, "entry body")))
                }
                let signature = try reader.readBytes(64)
                for (index, (hlc, body)) in run.enumerated() {
                    let entry = LogEntry(origin: origin, scope: scope, seq: firstSeq + UInt64(index), previousHash: previous,
                                         hlc: hlc, body: body, signature: index == run.count - 1 ? signature : nil)
                    previous = entry.hash
                    entries.append(entry)
                }
            }
            self = .batch(id: id, entries: entries)
        case 5:
            self = .ack(id: try reader.readVarint(), applied: try reader.readVarint(), conflicts: try reader.readVarint(),
                        refused: try reader.readVarint())
        case 6:
            self = .done
        case 7:
            let raw = try reader.readVarint()
            let message = try reader.readString(limit: 4000, "error message")
            self = .error(SyncErrorCode(rawValue: raw) ?? .internalError, message)
        case 8:
            let count = try reader.readVarint(limit: UInt64(WireLimits.directoryRecords), "directory record count")
            var records: [DirectoryRecord] = []
            for _ in 0..<count {
                guard let kind = DirectoryRecord.Kind(rawValue: try reader.readByte()) else { throw DecodingError("unknown directory record kind") }
                records.append(DirectoryRecord(kind: kind, bytes: try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "directory record")))
            }
            self = .directory(records)
        case 9:
            self = .summary(try DirectoryGroup.readSummary(&reader, limit: WireLimits.directoryRecords))
        case 10:
            let count = try reader.readVarint(limit: UInt64(WireLimits.directoryRecords), "HAVE length")
            var digests: [[UInt8]] = []
            for _ in 0..<count { digests.append(try reader.readBytes(32)) }
            self = .have(digests)
        case 11:
            self = .vectorDigests(try (0..<VersionVector.bucketCount).map { _ throws(DecodingError) in try reader.readBytes(VersionVector.bucketDigestBytes) })
        case let type:
            throw DecodingError("unknown message type \(type)")
        }
        guard reader.isAtEnd else { throw DecodingError("\(reader.remaining) unexpected bytes after a \(name) message") }
    }
}
