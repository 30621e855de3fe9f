import Crypto
import Foundation
import QISyncCore
import QISyncIdentity
import QISyncProtocol
import QISyncStore

/// Who a bundle is for: a trust, and one of its sites or any of them.
public struct BundleTarget: Equatable, Sendable {
    /// The receiving trust.
    public let trust: String
    /// The receiving site's name, or empty for any site of the trust.
    public let site: String
    /// The receiving site's key, when a site is named.
    public let siteKey: OriginID?

    /// Creates a target.
    public init(trust: String, site: String = "", siteKey: OriginID? = nil) {
        self.trust = trust
        self.site = site
        self.siteKey = siteKey
    }

    /// `TRUST/site`, or `TRUST` for any of its sites.
    public var name: String { site.isEmpty ? trust : "\(trust)/\(site)" }
}

/// The entries of one log a bundle carries.
public struct BundleLogRange: Equatable, Sendable {
    public let log: LogID
    public let first: UInt64
    public let last: UInt64
    public let bytes: Int
}

/// What a bundle carries, as read through once: who sent it, its logs and sizes.
public struct BundleSummary: Sendable {
    /// The header.
    public let header: BundleHeader
    /// The sender as `TRUST/site`.
    public var senderName: String { "\(header.senderTrust)/\(header.senderSite)" }
    /// The logs and entry ranges it carries, in the order they travel.
    public let logs: [BundleLogRange]
    /// How many entries it carries.
    public let entries: Int
    /// How many records (rows with a 16-byte id) its entries write to.
    public internal(set) var records: Int
    /// SHA-256 of the file.
    public let digest: [UInt8]
    /// How many directory records it carries.
    public var directoryRecords = 0
    /// What its sender expects the receiver to hold once it is imported, as bucket digests
    /// (VECTOR DIGESTS; nil in a version-2 bundle).
    public var expected: [[UInt8]]?
}

/// What importing a bundle did.
public struct BundleImport: Sendable {
    public let bundle: BundleSummary
    public let report: ApplyReport
    /// The receipt to carry back to the sender.
    public let receipt: [UInt8]
    /// Logs whose earlier entries this replica lacks, so some entries wait: log, what it
    /// holds, where the bundle starts.
    public let missing: [(log: LogID, held: UInt64, bundleStarts: UInt64)]
}

/// A bundle read as far as it can be without opening its payload, for `bundle show`.
public struct BundleDescription: Sendable {
    /// The header as the file says (trust it only when ``signatureValid``).
    public let header: BundleHeader
    /// The file's size.
    public let fileBytes: UInt64
    /// Whether the sender named in the header signed the file as it is.
    public let signatureValid: Bool
    /// What it carries, when it could be opened here.
    public let summary: BundleSummary?
    /// Why it could not be opened here, when it could not.
    public let unopened: String?
}

/// Bundles: the protocol's messages carried in a file instead of over TCP (SPEC section 15),
/// written and read as streams, so a bundle of any size passes through bounded memory. A
/// bundle is checked before its payload is opened: the file is whole and signed by its sender,
/// it is for this replica, and its sender is an enrolled, unrevoked site of a trust pinned here
/// (by this replica's directory, or the sender's own enrolment the header carries). Then it is
/// read message by message, and imported in one transaction: all of it, or nothing.
public enum BundleCarrier {
    /// How much of a file is read or written at a time.
    static let chunk = 1 << 20

    // MARK: Writing

    /// Writes to `path` (which must not exist) everything in this replica beyond `since` that
    /// `target` may receive: every log for a site of this trust; shared logs only, sealed to the
    /// trust's bundle key, for another trust. `check` sees each batch first and may refuse it
    /// (the PII guard); then nothing is written.
    /// The directory records carried are those of trusts `target` pins whose digests differ from
    /// `peerDirectory` (its last receipt's), or, when that is unknown, every record it could keep
    /// (trust-wide pins only for this trust's own sites).
    @discardableResult
    public static func export(replica: Replica, for target: BundleTarget, since: VersionVector, peerDirectory: [DirectoryGroup]? = nil,
                              now: UInt64, to path: String, check: ([LogEntry]) throws -> Void = { _ in }) throws -> BundleHeader {
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path) exists; choose a new file name") }
        let identity = replica.identity
        let external = target.trust != identity.trustCode
        let scopes: Set<Scope> = external ? [.shared] : Set(Scope.allCases)
        var base = since
        base.positions = base.positions.filter { scopes.contains($0.key.scope) }
        let offer: Offer
        do { offer = try replica.offer(for: base, scopes: scopes) } catch let error as LogRejection {
            throw StoreError("the receipt or last sync says \(target.name) holds an entry this replica holds differently (\(error.reason)); export with --all")
        }
        // What the bundle assumes, said only for the logs it carries entries of: listing every
        // log (as it did) cost about 70 bytes per site in the country, twice per bundle.
        let carried = Set(offer.through.positions.keys.filter { offer.through.seq(of: $0) > base.seq(of: $0) })
        let assumed = VersionVector(base.positions.filter { carried.contains($0.key) })
        // What the receiver should hold once it has imported this: its digests travel in the
        // bundle and the vector stays here, so the receipt lists only the buckets that differ.
        let expected = base.merged(with: offer.through)
        let index = try replica.directoryIndex(forPeerOfTrust: target.trust)
        let records = peerDirectory.map { index.records(for: $0, peerHas: []) } ?? index.allRecords
        var header = BundleHeader(sender: identity.origin, senderTrust: identity.trustCode, senderSite: identity.siteName,
                                  senderEnrolment: try replica.ownEnrolment()?.record.bytes ?? [], createdMilliseconds: now,
                                  forTrust: target.trust, forSite: target.site, since: assumed, entries: offer.entries, bodyBytes: offer.bytes)
        var sealer: BundleSeal.Sealer?
        if external {
            guard let key = try replica.directory().bundleKey(forTrust: target.trust) else {
                throw StoreError("no bundle key is known for trust \(target.trust): its hub publishes one, which arrives with any sync or bundle from that trust, or with its card ('trust add … --card'); until then nothing can be sealed to it")
            }
            header.sealedTo = key.trustFingerprint.bytes
            header.encapsulatedKey = []
            // The pieces authenticate the header as it reads without the encapsulated key
            // (which the seal itself makes); the signature covers all of it.
            sealer = try BundleSeal.Sealer(to: key, header: BundleFile.sealedPrefix(for: header))
            header.encapsulatedKey = sealer!.encapsulatedKey
        }
        let temporary = path + ".partial-\(UUID().uuidString.prefix(8))"
        let writer = try SignedFileWriter(path: temporary)
        do {
            try writer.write(BundleFile.prefix(for: header))
            var pieces = sealer.map { PieceWriter(sealer: $0) }
            let encoder = try PayloadEncoder()
            func send(_ message: SyncMessage) throws {
                let frame = Array(FrameEncoder.frame(try encoder.payload(for: message)).readableBytesView)
                if pieces != nil { try pieces!.add(frame, to: writer) } else { try writer.write(frame) }
            }
            try send(.hello(Hello(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, kind: identity.kind.rawValue,
                                  sends: true, receives: false, directoryDigest: DirectoryRecord.digest(of: records))))
            try send(.directory(records))
            try send(.vectorDigests(expected.bucketDigests))
            try send(.vector(assumed))
            try send(.offer(entries: offer.entries, bytes: offer.bytes))
            var cursor = base
            var sent: UInt64 = 0
            var id: UInt64 = 1
            while true {
                let batch = try replica.entries(after: cursor, through: offer.through, scopes: scopes,
                                                maxEntries: WireLimits.batchEntries, maxBytes: WireLimits.batchBytes)
                if batch.isEmpty { break }
                if external { try check(batch) }
                for entry in batch { cursor.positions[LogID(origin: entry.origin, scope: entry.scope)] = LogPosition(seq: entry.seq, hash: entry.hash) }
                try send(.batch(id: id, entries: batch))
                id += 1
                sent += UInt64(batch.count)
            }
            try send(.done)
            guard sent == offer.entries else { throw StoreError("internal: the bundle holds \(sent) entries but offered \(offer.entries)") }
            try pieces?.finish(to: writer)
            try writer.finish(sign: replica.signBundleDigest)
            guard !FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path) exists; choose a new file name") }
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
            try replica.rememberBundleExpectation(bundle: writer.fileDigest, vector: expected)
        } catch {
            writer.abandon()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        try? replica.recordAdminEvent(kind: "bundle export", subject: target.name,
                                      detail: "\((path as NSString).lastPathComponent): \(offer.entries) entries\(external ? ", sealed to \(target.trust)" : "")")
        return header
    }

    /// Takes in a receipt the bundle's receiver sent back (already checked to be from it):
    /// what it holds, and its directory by trust, for the next bundle made for it.
    /// A version-3 receipt lists only where the receiver differs from what the bundle expected;
    /// when that expectation is no longer kept here (or does not rebuild the receiver's vector),
    /// the receipt's vector is set aside and the last one known stands: the next bundle then
    /// carries more than it needs, never less. Returns the receiver's whole vector when taken.
    @discardableResult
    public static func remember(_ receipt: BundleReceipt, at replica: Replica) throws -> VersionVector? {
        let expected = receipt.difference == nil ? nil : try replica.bundleExpectation(bundle: receipt.bundleDigest)
        let held = receipt.heldVector(expected: expected)
        if let held { try replica.rememberPeerVector(site: receipt.origin, vector: held, source: "receipt") }
        if let directory = receipt.directory { try replica.rememberPeerDirectory(site: receipt.origin, summary: directory) }
        return held
    }

    // MARK: Reading

    /// Describes a bundle for `bundle show`: its header, whether its signature holds, and what
    /// it carries when this replica can open it.
    public static func describe(replica: Replica, path: String) throws -> BundleDescription {
        let file = try BundleFileReader(path: path)
        guard file.signatureValid else {
            return BundleDescription(header: file.header, fileBytes: file.size, signatureValid: false, summary: nil,
                                     unopened: "its signature does not match: it was altered or cut short")
        }
        do {
            let summary = try read(replica: replica, file: try open(replica: replica, path: path), countRecords: true) { _ in }
            return BundleDescription(header: file.header, fileBytes: file.size, signatureValid: true, summary: summary, unopened: nil)
        } catch {
            return BundleDescription(header: file.header, fileBytes: file.size, signatureValid: true, summary: nil, unopened: "\(error)")
        }
    }

    /// Checks a bundle whole, its entries' chains and signatures too, without keeping anything:
    /// what `bundle verify` does.
    public static func verify(replica: Replica, path: String) throws -> BundleSummary {
        try take(replica: replica, path: path, commit: false).0
    }

    /// Checks, applies and records a bundle (its directory records, then its entries, in one
    /// transaction), and makes the receipt for its sender. Importing the same bundle again
    /// changes nothing; entries whose predecessors are missing wait for them.
    public static func importBundle(replica: Replica, path: String, now: UInt64) throws -> BundleImport {
        let (summary, report) = try take(replica: replica, path: path, commit: true)
        let held = try replica.versionVector()
        let missing = summary.logs.compactMap { range -> (LogID, UInt64, UInt64)? in
            let have = held.seq(of: range.log)
            return have + 1 < range.first ? (range.log, have, range.first) : nil
        }
        let external = summary.header.senderTrust != replica.identity.trustCode
        var vector = held
        if external { vector.positions = vector.positions.filter { $0.key.scope == .shared } }
        let identity = replica.identity
        let directory = try replica.directoryIndex(forPeerOfTrust: summary.header.senderTrust).summary
        // Told against what the bundle expected when it says (version 3): only the buckets that differ.
        let receipt = (summary.expected.map {
            BundleReceipt(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, createdMilliseconds: now,
                          bundleDigest: summary.digest, held: vector, expected: $0, directory: directory)
        } ?? BundleReceipt(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, createdMilliseconds: now,
                           bundleDigest: summary.digest, vector: vector, directory: directory))
            .encoded(sign: replica.signBundleDigest)
        try? replica.recordAdminEvent(kind: "bundle import", subject: summary.senderName,
                                      detail: "\((path as NSString).lastPathComponent): \(report.applied + report.released) applied, \(report.duplicates) already held, \(report.waiting) waiting, \(report.refused) refused")
        return BundleImport(bundle: summary, report: report, receipt: receipt, missing: missing)
    }

    /// What importing a bundle would do, without doing it.
    public static func plan(replica: Replica, path: String) throws -> (BundleSummary, ApplyReport) {
        try take(replica: replica, path: path, commit: false)
    }

    /// Opens, checks and applies a bundle in one transaction, kept when `commit`.
    static func take(replica: Replica, path: String, commit: Bool) throws -> (BundleSummary, ApplyReport) {
        let file: BundleFileReader
        do { file = try open(replica: replica, path: path) } catch {
            try? replica.recordAdminEvent(kind: "bundle refused", subject: (path as NSString).lastPathComponent, detail: "\(error)")
            throw error
        }
        let source = "bundle from \(file.header.senderTrust)/\(file.header.senderSite)\(commit ? "" : " (plan)")"
        do {
            return try replica.importing(commit: commit) { transaction in
                var summary = try readAhead(replica: replica, file: file) { step in
                    switch step {
                    case .directory(let records): try transaction.importDirectory(records)
                    case .batch(let batch): try transaction.apply(batch, source: source)
                    }
                }
                // Counted from the changes the import decoded, rather than decoding them again.
                summary.records = transaction.recordsWritten
                return (summary, transaction.report)
            }
        } catch {
            if commit { try? replica.recordAdminEvent(kind: "bundle refused", subject: file.header.senderTrust + "/" + file.header.senderSite, detail: "\(error)") }
            throw error
        }
    }

    /// The file checked before anything in it is decompressed or applied: whole and signed by
    /// its sender, addressed to this replica, from an enrolled, unrevoked site of a trust
    /// pinned here whose name matches its enrolment, and openable when sealed.
    static func open(replica: Replica, path: String) throws -> BundleFileReader {
        let file = try BundleFileReader(path: path)
        let header = file.header
        let sender = "\(header.senderTrust)/\(header.senderSite)"
        guard file.signatureValid else {
            throw StoreError("the bundle from \(sender) was altered or cut short after it was made (its signature does not match); nothing was applied")
        }
        let identity = replica.identity
        guard header.forTrust == identity.trustCode, header.forSite.isEmpty || header.forSite == identity.siteName else {
            throw StoreError("this bundle is for \(header.forSite.isEmpty ? header.forTrust : "\(header.forTrust)/\(header.forSite)"), not \(identity.trustCode)/\(identity.siteName); nothing was applied")
        }
        if header.isSealed, try replica.trustKey() == nil {
            throw StoreError("the bundle is sealed to trust \(header.forTrust): only its hub, which holds the trust key, can open it")
        }
        // Who sent it: by this replica's directory, or by the enrolment the sender carries.
        let carried = header.senderEnrolment.isEmpty ? [] : [DirectoryRecord(kind: .enrolment, bytes: header.senderEnrolment)]
        let directory = try replica.directory(including: carried)
        if header.sender == identity.origin {
            guard header.senderTrust == identity.trustCode, header.senderSite == identity.siteName else {
                throw StoreError("the bundle names this site's key but another name (\(sender)); nothing was applied")
            }
        } else {
            guard let enrolment = directory.enrolments[header.sender], directory.trust(of: header.sender) == header.senderTrust else {
                throw StoreError("the bundle comes from \(sender), which is not an enrolled site of a trust pinned here; nothing was applied")
            }
            guard enrolment.siteName == header.senderSite else {
                throw StoreError("the bundle says it comes from \(sender), but its key is enrolled as \(enrolment.name); nothing was applied")
            }
            if directory.revocations[header.sender] != nil {
                throw StoreError("the bundle comes from \(sender), which was revoked; nothing was applied")
            }
        }
        if header.isSealed {
            guard let trustKey = try replica.trustKey() else {
                throw StoreError("the bundle is sealed to trust \(header.forTrust): only its hub, which holds the trust key, can open it")
            }
            guard header.sealedTo == trustKey.fingerprint.bytes, let encapsulated = header.encapsulatedKey else {
                throw StoreError("the bundle is sealed to another key than this trust's; nothing was applied")
            }
            do {
                file.opener = try BundleSeal.Opener(encapsulatedKey: encapsulated, header: BundleFile.sealedPrefix(for: header), with: trustKey)
            } catch { throw StoreError(error.message) }
        }
        return file
    }

    /// What a bundle's reader hands on, in order.
    enum Step {
        case directory([DirectoryRecord])
        case batch([LogEntry])
    }

    /// What the reader thread of ``readAhead(replica:file:take:)`` hands on: batches checked.
    enum CheckedStep {
        case directory([DirectoryRecord])
        case batch(VerifiedBatch)
    }

    /// ``read(replica:file:countRecords:take:)`` on a thread of its own — reading the file,
    /// inflating, decoding and checking each batch (``Replica/verify(batch:)``) — one step
    /// ahead of `take` on this thread, which applies them: the two cores share an import (a
    /// step waiting costs a batch's memory, so no more wait).
    /// Whatever either side throws is thrown here, after the reader has stopped; `take`'s
    /// error first (the reader is then only told to stop).
    static func readAhead(replica: Replica, file: BundleFileReader, take: (CheckedStep) throws -> Void) throws -> BundleSummary {
        struct Stopped: Error {}
        let channel = BoundedChannel<CheckedStep>(capacity: 1)
        let reader = ReaderThread(file: file)
        let thread = Thread { [reader] in
            reader.outcome = Result {
                try read(replica: replica, file: reader.file, countRecords: false) { step in
                    let checked: CheckedStep
                    switch step {
                    case .directory(let records): checked = .directory(records)
                    case .batch(let entries): checked = .batch(try replica.verify(batch: entries))
                    }
                    guard channel.send(checked) else { throw Stopped() }
                }
            }
            channel.finish()
            reader.done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        var failure: Error?
        do {
            while let step = channel.receive() { try take(step) }
        } catch {
            failure = error
        }
        channel.cancel()
        reader.done.wait()
        if let failure { throw failure }
        return try reader.outcome!.get()
    }

    /// The reader thread's file and outcome: the file is used by that thread alone while it
    /// runs, and the outcome read only after it signals `done`.
    private final class ReaderThread: @unchecked Sendable {
        let file: BundleFileReader
        var outcome: Result<BundleSummary, Error>?
        let done = DispatchSemaphore(value: 0)
        init(file: BundleFileReader) { self.file = file }
    }

    /// Reads a checked bundle's messages in order, handing its directory records and batches to
    /// `take` as they come, and refuses (throwing) anything out of order, inconsistent with its
    /// header, or (from another trust) holding a trust-scope entry.
    /// `countRecords` decodes every change to count the records written (for `bundle show`).
    static func read(replica: Replica, file: BundleFileReader, countRecords: Bool, take: (Step) throws -> Void) throws -> BundleSummary {
        let header = file.header
        let external = header.senderTrust != replica.identity.trustCode
        enum Expecting { case hello, directory, vectorDigests, vector, offer, batch, end }
        var expecting = Expecting.hello
        var nextBatch: UInt64 = 1
        var entries: UInt64 = 0, bodyBytes: UInt64 = 0
        var ranges: [LogID: BundleLogRange] = [:]
        var order: [LogID] = []
        var records = Set<RecordKeyBits>()
        var directoryRecords = 0
        var expected: [[UInt8]]?
        func malformed(_ reason: String) -> StoreError { StoreError("the bundle's messages are damaged: \(reason); nothing was applied") }
        try file.messages { message in
            switch (expecting, message) {
            case (.hello, .hello(let hello)):
                guard hello.origin == header.sender, hello.trust == header.senderTrust, hello.site == header.senderSite else {
                    throw StoreError("the bundle's header and its messages disagree about who sent it; nothing was applied")
                }
                expecting = .directory
            case (.directory, .directory(let directory)):
                directoryRecords = directory.count
                try take(.directory(directory))
                expecting = .vectorDigests
            case (.vectorDigests, .vectorDigests(let digests)):
                expected = digests
                expecting = .vector
            case (.vector, .vector(let since)), (.vectorDigests, .vector(let since)):
                guard since == header.since else { throw StoreError("the bundle's header and its messages disagree about what it assumes; nothing was applied") }
                expecting = .offer
            case (.offer, .offer(let count, let bytes)):
                guard count == header.entries, bytes == header.bodyBytes else {
                    throw StoreError("the bundle's header and its messages disagree about what it carries; nothing was applied")
                }
                expecting = .batch
            case (.batch, .batch(let id, let batch)):
                guard id == nextBatch else { throw malformed("batch \(id) where batch \(nextBatch) was due") }
                nextBatch += 1
                if external, let secret = batch.first(where: { $0.scope == .trust }) {
                    throw StoreError("a bundle from another trust may carry shared entries only, and this one holds \(secret.ref); nothing was applied")
                }
                for entry in batch {
                    entries += 1
                    bodyBytes += UInt64(entry.body.count)
                    let log = LogID(origin: entry.origin, scope: entry.scope)
                    if let range = ranges[log] {
                        ranges[log] = BundleLogRange(log: log, first: min(range.first, entry.seq), last: max(range.last, entry.seq), bytes: range.bytes + entry.body.count)
                    } else {
                        order.append(log)
                        ranges[log] = BundleLogRange(log: log, first: entry.seq, last: entry.seq, bytes: entry.body.count)
                    }
                    if countRecords {
                        for row in (try? entry.change().rows) ?? [] where row.key.count == 16 { records.insert(RecordKeyBits(row.key)) }
                    }
                }
                guard entries <= header.entries else { throw malformed("it holds more entries than it says") }
                try take(.batch(batch))
            case (.batch, .done):
                expecting = .end
            default:
                throw malformed("\(message.name) out of place (a bundle is HELLO, DIRECTORY, VECTOR DIGESTS, VECTOR, OFFER, BATCH…, DONE)")
            }
        }
        guard expecting == .end else { throw StoreError("the bundle is truncated: it ends before its DONE; nothing was applied") }
        guard entries == header.entries, bodyBytes == header.bodyBytes else {
            throw StoreError("the bundle holds \(entries) entries but says \(header.entries): it is truncated; nothing was applied")
        }
        var summary = BundleSummary(header: header, logs: order.map { ranges[$0]! }, entries: Int(entries), records: records.count, digest: file.digest)
        summary.directoryRecords = directoryRecords
        summary.expected = expected
        return summary
    }
}

/// A bundle file on disk, read in chunks: its prefix and header, its signature checked by one
/// streaming pass, then its payload's messages streamed (opened piece by piece when sealed).
final class BundleFileReader {
    let path: String
    let header: BundleHeader
    let size: UInt64
    let prefixLength: Int
    /// SHA-256 of the whole file (for receipts).
    let digest: [UInt8]
    /// Whether the sender named in the header signed every byte before the signature.
    let signatureValid: Bool
    /// Opens the pieces of a sealed payload, once the trust key is known.
    var opener: BundleSeal.Opener?

    init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw StoreError("cannot read \(path): there is no such file") }
        guard !isDirectory.boolValue else { throw StoreError("cannot read \(path): it is a folder, not a file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StoreError("cannot read \(path): permission denied") }
        defer { try? handle.close() }
        self.path = path
        size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
        // The prefix: read until the header is whole (it is at most 16 MiB).
        var start: [UInt8] = []
        var parsed: (header: BundleHeader, length: Int)?
        repeat {
            let more = try handle.read(upToCount: BundleCarrier.chunk).map(Array.init) ?? []
            start += more
            do { parsed = try BundleFile.readPrefix(start[...]) } catch { throw StoreError("the bundle is damaged: \(error.message)") }
            if parsed == nil, more.isEmpty { throw StoreError("the bundle is damaged: it is cut short before the end of its header") }
        } while parsed == nil
        header = parsed!.header
        prefixLength = parsed!.length
        guard size >= UInt64(prefixLength) + 64 else { throw StoreError("the bundle is damaged: it is cut short (its signature is missing)") }
        // One pass: the digest the signature covers, and the whole file's digest.
        var signed = SHA256(), whole = SHA256()
        try handle.seek(toOffset: 0)
        var position: UInt64 = 0
        var signature: [UInt8] = []
        while position < size {
            guard let data = try handle.read(upToCount: BundleCarrier.chunk), !data.isEmpty else { break }
            let bytes = Array(data)
            whole.update(data: bytes)
            let signedEnd = size - 64
            if position < signedEnd { signed.update(data: bytes.prefix(Int(min(UInt64(bytes.count), signedEnd - position)))) }
            if position + UInt64(bytes.count) > signedEnd {
                signature += bytes.suffix(Int(min(UInt64(bytes.count), position + UInt64(bytes.count) - signedEnd)))
            }
            position += UInt64(bytes.count)
        }
        digest = Array(whole.finalize())
        signatureValid = signature.count == 64 && SignatureCheck.isValid(signature, of: Array(signed.finalize()), by: header.sender)
    }

    /// Reads the payload's messages, one at a time, in bounded memory.
    func messages(_ body: (SyncMessage) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StoreError("cannot read \(path)") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(prefixLength))
        var remaining = size - 64 - UInt64(prefixLength)
        let reader: BundleMessageReader
        do { reader = try BundleMessageReader() } catch { throw StoreError("\(error)") }
        var pieces = BundlePieces()
        var pending: [UInt8]?
        func deliver(_ plaintext: [UInt8]) throws {
            let messages: [SyncMessage]
            do { messages = try reader.feed(plaintext[...]) } catch { throw StoreError("the bundle's messages are damaged: \(error.message); nothing was applied") }
            for message in messages { try body(message) }
        }
        func open(_ piece: [UInt8], last: Bool) throws -> [UInt8] {
            do { return try opener!.open(piece, last: last) } catch { throw StoreError(error.message) }
        }
        while remaining > 0 {
            guard let data = try handle.read(upToCount: Int(min(UInt64(BundleCarrier.chunk), remaining))), !data.isEmpty else { break }
            remaining -= UInt64(data.count)
            if opener == nil {
                try deliver(Array(data))
                continue
            }
            let complete: [[UInt8]]
            do { complete = try pieces.feed(Array(data)[...]) } catch { throw StoreError("the sealed bundle is damaged: \(error.message)") }
            for piece in complete {
                // A piece is known not to be the last once another follows it.
                if let previous = pending { try deliver(try open(previous, last: false)) }
                pending = piece
            }
        }
        if opener != nil {
            guard pieces.isEmpty, let last = pending else { throw StoreError("the sealed bundle is cut short; nothing was applied") }
            try deliver(try open(last, last: true))
        }
        do { _ = try reader.finish() } catch { throw StoreError("the bundle's messages are damaged: \(error.message); nothing was applied") }
    }
}

/// Writes a file while hashing it; the signature of the hash ends it.
final class SignedFileWriter {
    private let handle: FileHandle
    private var hasher = SHA256()
    /// Every byte written, the signature too: the file's digest, which receipts name.
    private var whole = SHA256()
    /// SHA-256 of the whole file, once finished.
    private(set) var fileDigest: [UInt8] = []

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            let folder = (path as NSString).deletingLastPathComponent
            throw StoreError("cannot write \(path): \(FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder) ? "permission denied or the disk is full" : "the folder \(folder) does not exist")")
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw StoreError("cannot write \(path)") }
        self.handle = handle
    }

    func write(_ bytes: [UInt8]) throws {
        hasher.update(data: bytes)
        whole.update(data: bytes)
        do { try handle.write(contentsOf: bytes) } catch { throw StoreError("cannot write the bundle: \(error.localizedDescription)") }
    }

    /// Appends the signature of everything written and closes the file, on disk.
    func finish(sign: ([UInt8]) -> [UInt8]) throws {
        let signature = sign(Array(hasher.finalize()))
        whole.update(data: signature)
        fileDigest = Array(whole.finalize())
        do {
            try handle.write(contentsOf: signature)
            try handle.synchronize()
            try handle.close()
        } catch { throw StoreError("cannot write the bundle: \(error.localizedDescription)") }
    }

    func abandon() { try? handle.close() }
}

/// Gathers plaintext into sealed pieces of at most ``BundleSeal/pieceSize`` bytes.
struct PieceWriter {
    var sealer: BundleSeal.Sealer
    var buffer: [UInt8] = []

    mutating func add(_ bytes: [UInt8], to writer: SignedFileWriter) throws {
        buffer += bytes
        // Keep at least one byte back, so the last piece is sealed as the last.
        while buffer.count > BundleSeal.pieceSize {
            let piece = Array(buffer.prefix(BundleSeal.pieceSize))
            buffer.removeFirst(BundleSeal.pieceSize)
            try writer.write(BundlePieces.frame(try sealer.seal(piece, last: false)))
        }
    }

    mutating func finish(to writer: SignedFileWriter) throws {
        try writer.write(BundlePieces.frame(try sealer.seal(buffer, last: true)))
        buffer = []
    }
}
