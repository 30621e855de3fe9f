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

/// A bundle read and checked: who sent it, for whom, what it carries, and what it needs.
public struct OpenedBundle: Sendable {
    /// The header.
    public let header: BundleHeader
    /// The sender as `TRUST/site`.
    public var senderName: String { "\(header.senderTrust)/\(header.senderSite)" }
    /// The directory records it carries.
    public let directory: [DirectoryRecord]
    /// Its entries, in the order they travel.
    public let entries: [LogEntry]
    /// The logs and entry ranges it carries.
    public let logs: [BundleLogRange]
    /// SHA-256 of the file.
    public let digest: [UInt8]
}

/// What importing a bundle did.
public struct BundleImport: Sendable {
    public let bundle: OpenedBundle
    public let report: ApplyReport
    /// The receipt to carry back to the sender.
    public let receipt: [UInt8]
    /// Logs whose earlier entries this replica lacks, so some entries wait: log, what it
    /// holds, where the bundle starts.
    public let missing: [(log: LogID, held: UInt64, bundleStarts: UInt64)]
}

/// Bundles: the protocol's messages carried in a file instead of over TCP (SPEC section 15).
public enum BundleCarrier {
    /// Makes a bundle of everything in this replica beyond `since` that `target` may receive:
    /// every log for a site of this trust; shared logs only, sealed to the trust's bundle key,
    /// for another trust. `check` sees the entries first and may refuse (the PII guard).
    public static func export(replica: Replica, for target: BundleTarget, since: VersionVector, now: UInt64,
                              check: ([LogEntry]) throws -> Void = { _ in }) throws -> (bytes: [UInt8], header: BundleHeader) {
        let identity = replica.identity
        let external = target.trust != identity.trustCode
        let scopes: Set<Scope> = external ? [.shared] : Set(Scope.allCases)
        var base = since
        base.positions = base.positions.filter { scopes.contains($0.key.scope) }
        var batches: [[LogEntry]] = []
        var cursor = base
        while true {
            let batch = try replica.entries(after: cursor, scopes: scopes, maxEntries: WireLimits.batchEntries, maxBytes: WireLimits.batchBytes)
            if batch.isEmpty { break }
            for entry in batch { cursor.positions[LogID(origin: entry.origin, scope: entry.scope)] = LogPosition(seq: entry.seq, hash: entry.hash) }
            batches.append(batch)
        }
        let all = batches.flatMap { $0 }
        if external { try check(all) }
        let bodyBytes = all.reduce(0) { $0 + UInt64($1.body.count) }
        let records = try replica.directoryRecords()
        var messages: [SyncMessage] = [
            .hello(Hello(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, kind: identity.kind.rawValue,
                         sends: true, receives: false, directoryDigest: DirectoryRecord.digest(of: records))),
            .directory(records), .vector(base), .offer(entries: UInt64(all.count), bytes: bodyBytes),
        ]
        for (index, batch) in batches.enumerated() { messages.append(.batch(id: UInt64(index + 1), entries: batch)) }
        messages.append(.done)
        let frames = try BundleFile.frames(messages)
        var header = BundleHeader(sender: identity.origin, senderTrust: identity.trustCode, senderSite: identity.siteName, createdMilliseconds: now,
                                  forTrust: target.trust, forSite: target.site, since: base, entries: UInt64(all.count), bodyBytes: bodyBytes)
        var payload = frames
        if external {
            guard let key = try replica.directory().bundleKey(forTrust: target.trust) else {
                throw StoreError("no bundle key is known for trust \(target.trust): its hub publishes one, which arrives with any sync or bundle from that trust; until then nothing can be sealed to it")
            }
            header.sealedTo = key.trustFingerprint.bytes
            header.encapsulatedKey = []
            // The seal authenticates the header as it reads without the encapsulated key
            // (which the seal itself produces); the signature covers all of it.
            let sealed = try BundleSeal.seal(frames, header: BundleFile.prefix(for: header), to: key)
            header.encapsulatedKey = sealed.encapsulatedKey
            payload = sealed.ciphertext
        }
        let bytes = BundleFile.assemble(header: header, payload: payload, sign: replica.signBundleDigest)
        return (bytes, header)
    }

    /// The associated data a sealed payload is bound to: the header with an empty encapsulated key.
    static func sealedPrefix(_ header: BundleHeader) -> [UInt8] {
        var copy = header
        copy.encapsulatedKey = []
        return BundleFile.prefix(for: copy)
    }

    /// Reads and checks a bundle without changing anything: the file is whole and signed by
    /// its sender, it is for this replica, it opens (when sealed), its messages are in order,
    /// its sender is an enrolled, unrevoked site of a trust pinned here (counting the directory
    /// records it carries), and a bundle from another trust carries shared entries only.
    public static func open(replica: Replica, bytes: [UInt8]) throws -> OpenedBundle {
        let file: BundleFile
        do { file = try BundleFile(parsing: bytes) } catch { throw StoreError("the bundle is damaged: \(error.message)") }
        let header = file.header
        let sender = "\(header.senderTrust)/\(header.senderSite)"
        guard file.isSignatureValid else {
            throw StoreError("the bundle from \(sender) was altered after it was made (its signature does not match); nothing was applied")
        }
        let identity = replica.identity
        guard header.forTrust == identity.trustCode, header.forSite.isEmpty || header.forSite == identity.siteName else {
            throw StoreError("this bundle is for \(header.forSite.isEmpty ? header.forTrust : "\(header.forTrust)/\(header.forSite)"), not \(identity.trustCode)/\(identity.siteName); nothing was applied")
        }
        var frames = file.payload
        if header.isSealed {
            guard let trustKey = try replica.trustKey() else {
                throw StoreError("the bundle is sealed to trust \(header.forTrust): only its hub, which holds the trust key, can open it")
            }
            guard header.sealedTo == trustKey.fingerprint.bytes, let encapsulated = header.encapsulatedKey else {
                throw StoreError("the bundle is sealed to another key than this trust's; nothing was applied")
            }
            frames = try BundleSeal.open(file.payload, encapsulatedKey: encapsulated, header: sealedPrefix(header), with: trustKey)
        }
        let messages: [SyncMessage]
        do { messages = try BundleFile.messages(in: frames) } catch { throw StoreError("the bundle's messages are damaged: \(error.message)") }
        guard messages.count >= 5, case .hello(let hello) = messages[0], case .directory(let records) = messages[1],
              case .vector(let since) = messages[2], case .offer(let count, let bodyBytes) = messages[3], case .done = messages.last! else {
            throw StoreError("the bundle's messages are not HELLO, DIRECTORY, VECTOR, OFFER, BATCH…, DONE: it is truncated or was not made by qisync")
        }
        guard hello.origin == header.sender, hello.trust == header.senderTrust, hello.site == header.senderSite,
              since == header.since, count == header.entries, bodyBytes == header.bodyBytes else {
            throw StoreError("the bundle's header and its messages disagree; nothing was applied")
        }
        var entries: [LogEntry] = []
        for (index, message) in messages[4..<(messages.count - 1)].enumerated() {
            guard case .batch(let id, let batch) = message, id == UInt64(index + 1) else { throw StoreError("the bundle's batches are out of order") }
            entries += batch
        }
        guard UInt64(entries.count) == count, entries.reduce(0, { $0 + UInt64($1.body.count) }) == bodyBytes else {
            throw StoreError("the bundle holds \(entries.count) entries but says \(count): it is truncated")
        }
        // Who sent it, with what it says about itself taken into account.
        let directory = try replica.directory(including: records)
        guard let senderTrust = directory.trust(of: header.sender), senderTrust == header.senderTrust else {
            throw StoreError("the bundle comes from \(sender), which is not an enrolled site of a trust pinned here; nothing was applied")
        }
        if directory.revocations[header.sender] != nil, header.sender != identity.origin {
            throw StoreError("the bundle comes from \(sender), which was revoked; nothing was applied")
        }
        if senderTrust != identity.trustCode, let secret = entries.first(where: { $0.scope == .trust }) {
            throw StoreError("a bundle from another trust may carry shared entries only, and this one holds \(secret.ref); nothing was applied")
        }
        var ranges: [LogID: BundleLogRange] = [:]
        var order: [LogID] = []
        for entry in entries {
            let log = LogID(origin: entry.origin, scope: entry.scope)
            if let range = ranges[log] {
                ranges[log] = BundleLogRange(log: log, first: min(range.first, entry.seq), last: max(range.last, entry.seq), bytes: range.bytes + entry.body.count)
            } else {
                order.append(log)
                ranges[log] = BundleLogRange(log: log, first: entry.seq, last: entry.seq, bytes: entry.body.count)
            }
        }
        return OpenedBundle(header: header, directory: records, entries: entries, logs: order.map { ranges[$0]! },
                            digest: BundleFile.digest(bytes))
    }

    /// Opens, checks and applies a bundle (its directory records, then its entries in one
    /// transaction), and makes the receipt for its sender. Importing the same bundle again
    /// changes nothing; entries whose predecessors are missing wait for them.
    public static func importBundle(replica: Replica, bytes: [UInt8], now: UInt64) throws -> BundleImport {
        let bundle = try open(replica: replica, bytes: bytes)
        try replica.importDirectory(bundle.directory)
        let report = try replica.apply(bundle.entries, source: "bundle from \(bundle.senderName)")
        let held = try replica.versionVector()
        let missing = bundle.logs.compactMap { range -> (LogID, UInt64, UInt64)? in
            let have = held.seq(of: range.log)
            return have + 1 < range.first ? (range.log, have, range.first) : nil
        }
        let external = bundle.header.senderTrust != replica.identity.trustCode
        var vector = held
        if external { vector.positions = vector.positions.filter { $0.key.scope == .shared } }
        let identity = replica.identity
        let receipt = BundleReceipt(origin: identity.origin, trust: identity.trustCode, site: identity.siteName, createdMilliseconds: now,
                                    bundleDigest: bundle.digest, vector: vector).encoded(sign: replica.signBundleDigest)
        return BundleImport(bundle: bundle, report: report, receipt: receipt, missing: missing)
    }

    /// What importing a bundle would do, without doing it.
    public static func plan(replica: Replica, bytes: [UInt8]) throws -> (OpenedBundle, ApplyReport) {
        let bundle = try open(replica: replica, bytes: bytes)
        return (bundle, try replica.preview(bundle.entries, directory: bundle.directory, source: "bundle from \(bundle.senderName) (plan)"))
    }
}

