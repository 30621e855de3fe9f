import Foundation
import QISyncCore

/// A directory record read and verified: what it says, once its signatures have checked out.
public enum VerifiedRecord: Sendable {
    case enrolment(Enrolment)
    case revocation(Revocation)
    case trustPin(TrustWidePin)
    case bundleKey(TrustBundleKey)
    case redaction(Redaction)

    /// Reads and verifies a record (X.509 parsing and Ed25519 checks), or says why it fails.
    /// Results are kept by the record's digest for the life of the process, so a directory of
    /// thousands of sites is verified once, not on every change to it.
    public static func verify(_ record: DirectoryRecord) -> Result<VerifiedRecord, IdentityError> {
        read(record, digest: record.digest, signatures: .check)
    }

    /// ``verify(_:)`` of each record, in order; those not yet verified in this process checked
    /// on every core (the first reading of a directory verifies every record, and a national
    /// directory holds thousands).
    public static func verifyAll(_ records: [DirectoryRecord]) -> [Result<VerifiedRecord, IdentityError>] {
        readAll(records, signatures: .check)
    }

    /// Reads records a replica holds: each was verified before it was kept, so its signatures
    /// are not checked again (``SignaturePolicy/takenAsChecked``) — the replica's file is
    /// trusted as its logs and pins are, and `verify` checks every record's signatures. What
    /// the records say is read and checked as ``verify(_:)`` does; a result of ``verify(_:)``
    /// in this process answers first. Reading a national directory is thousands of Ed25519
    /// checks, three an enrolment: every command that opened a ward holding one paid them.
    public static func readHeld(_ records: [DirectoryRecord]) -> [Result<VerifiedRecord, IdentityError>] {
        readAll(records, signatures: .takenAsChecked)
    }

    /// Takes the ``Enrolment/reading`` kept beside each held enrolment record as what reading
    /// that record gives, for ``readHeld(_:)`` to answer from without parsing its
    /// certificates. A reading that does not read leaves its record to be parsed.
    public static func recallHeld(_ held: [(record: DirectoryRecord, reading: [UInt8])]) {
        for (record, reading) in held where record.kind == .enrolment {
            guard known(record.digest, signatures: .takenAsChecked) == nil,
                  let enrolment = try? Enrolment(record: record, reading: reading) else { continue }
            heldCache.store(.success(.enrolment(enrolment)), for: record.digest)
        }
    }

    private static func readAll(_ records: [DirectoryRecord], signatures: SignaturePolicy) -> [Result<VerifiedRecord, IdentityError>] {
        let digests = records.map(\.digest)
        var results = digests.map { known($0, signatures: signatures) }
        let missing = results.indices.filter { results[$0] == nil }
        let read = ParallelMap.map(missing, minimumPerTask: 64) { Self.read(records[$0], digest: digests[$0], signatures: signatures) }
        for (index, result) in zip(missing, read) { results[index] = result }
        return results.map { $0! }
    }

    /// What this process already found of a record: verified, or (for a held record) read.
    private static func known(_ digest: [UInt8], signatures: SignaturePolicy) -> Result<VerifiedRecord, IdentityError>? {
        cache.value(for: digest) ?? (signatures.checks ? nil : heldCache.value(for: digest))
    }

    private static func read(_ record: DirectoryRecord, digest: [UInt8], signatures: SignaturePolicy) -> Result<VerifiedRecord, IdentityError> {
        if let known = known(digest, signatures: signatures) { return known }
        let result: Result<VerifiedRecord, IdentityError>
        do {
            switch record.kind {
            case .enrolment: result = .success(.enrolment(try Enrolment(record: record, signatures: signatures)))
            case .revocation: result = .success(.revocation(try Revocation(record: record, signatures: signatures)))
            case .trustPin: result = .success(.trustPin(try TrustWidePin(record: record, signatures: signatures)))
            case .bundleKey: result = .success(.bundleKey(try TrustBundleKey(record: record, signatures: signatures)))
            case .redaction: result = .success(.redaction(try Redaction(record: record, signatures: signatures)))
            }
        } catch {
            result = .failure(error)
        }
        (signatures.checks ? cache : heldCache).store(result, for: digest)
        return result
    }

    /// The fingerprint of the trust key that signed the record.
    public var trustFingerprint: KeyFingerprint {
        switch self {
        case .enrolment(let enrolment): enrolment.trustFingerprint
        case .revocation(let revocation): revocation.trustFingerprint
        case .trustPin(let pin): pin.trustFingerprint
        case .bundleKey(let key): key.trustFingerprint
        case .redaction(let redaction): redaction.trustFingerprint
        }
    }

    /// Reads and verifies a certificate chain presented in a TLS handshake (site certificate,
    /// trust certificate), kept like records, so a site that syncs often is parsed once.
    public static func chain(site: [UInt8], trust: [UInt8]) -> Result<Enrolment, IdentityError> {
        var writer = ByteWriter()
        writer.write(raw: Array("qisync-tls-chain".utf8))
        writer.write(lengthPrefixed: site)
        writer.write(lengthPrefixed: trust)
        let digest = DirectoryRecord(kind: .enrolment, bytes: writer.bytes).digest
        if case .success(.enrolment(let enrolment))? = cache.value(for: digest) { return .success(enrolment) }
        if case .failure(let error)? = cache.value(for: digest) { return .failure(error) }
        let result: Result<Enrolment, IdentityError>
        do { result = .success(try Enrolment(siteCertificate: site, trustCertificate: trust)) } catch { result = .failure(error) }
        cache.store(result.map(VerifiedRecord.enrolment), for: digest)
        return result
    }

    private static let cache = DigestCache<Result<VerifiedRecord, IdentityError>>(limit: 200_000)
    private static let heldCache = DigestCache<Result<VerifiedRecord, IdentityError>>(limit: 200_000)
}

/// Whether a directory record's signatures are checked as it is read.
enum SignaturePolicy: Sendable {
    /// Checked: a record from a peer, a bundle or a command, or `verify` checking what is held.
    case check
    /// Not checked again: a record a replica holds, verified before it was kept.
    case takenAsChecked

    var checks: Bool { self == .check }
}

/// Results kept by a 32-byte digest for the life of the process (verified directory records,
/// checked trust certificates), emptied when `limit` are held, so a hostile peer's flood of
/// records cannot grow it without bound. Readers on several threads share it.
final class DigestCache<Value>: @unchecked Sendable {
    /// A 32-byte digest as four words: hashed in four steps rather than byte by byte (a
    /// national directory is looked up thousands of times a sync).
    struct Key: Hashable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
        init?(_ digest: [UInt8]) {
            guard digest.count == 32 else { return nil }
            (a, b, c, d) = digest.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }
        }
    }
    // The lock guards `entries`.
    private let lock = NSLock()
    private var entries: [Key: Value] = [:]
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func value(for digest: [UInt8]) -> Value? {
        guard let key = Key(digest) else { return nil }
        return lock.withLock { entries[key] }
    }

    func store(_ value: Value, for digest: [UInt8]) {
        guard let key = Key(digest) else { return }
        lock.withLock {
            if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
    }
}
