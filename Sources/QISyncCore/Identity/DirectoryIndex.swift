/// One trust's part of a replica's directory, as SUMMARY lists it (protocol version 2): the
/// trust key's fingerprint, whether the replica pins that trust (keeps its new records), and the
/// digest of the records it holds that concern the trust.
public struct DirectoryGroup: Hashable, Sendable {
    /// `SHA-256` of the trust's public key (its fingerprint).
    public let trust: [UInt8]
    /// Whether the sender pins the trust, so keeps records of it it receives.
    public let pinned: Bool
    /// ``DirectoryRecord/digest(of:)`` of the records of the trust the sender holds.
    public let digest: [UInt8]

    /// A group as SUMMARY carries it.
    public init(trust: [UInt8], pinned: Bool, digest: [UInt8]) {
        precondition(trust.count == 32 && digest.count == 32, "a trust fingerprint and a digest are 32 bytes")
        self.trust = trust
        self.pinned = pinned
        self.digest = digest
    }
}

extension DirectoryGroup {
    /// A summary's bytes, as SUMMARY and receipts carry it: count, then trust, pinned (1 or 0)
    /// and digest per trust, in the order given (trust order, as ``DirectoryIndex/summary`` gives).
    public static func write(_ groups: [DirectoryGroup], to writer: inout ByteWriter) {
        writer.write(varint: UInt64(groups.count))
        for group in groups {
            writer.write(raw: group.trust)
            writer.write(byte: group.pinned ? 1 : 0)
            writer.write(raw: group.digest)
        }
    }

    /// Reads a summary; refuses more than `limit` trusts, trusts out of order or twice, and a
    /// pinned flag other than 0 or 1.
    public static func readSummary(_ reader: inout ByteReader, limit: Int) throws(DecodingError) -> [DirectoryGroup] {
        let count = try reader.readVarint(limit: UInt64(limit), "summary length")
        var groups: [DirectoryGroup] = []
        for _ in 0..<count {
            let trust = try reader.readBytes(32)
            let pinned = try reader.readByte()
            guard pinned <= 1 else { throw DecodingError("a directory summary's pinned flag of \(pinned)") }
            if let last = groups.last, !last.trust.lexicographicallyPrecedes(trust) {
                throw DecodingError("a directory summary lists trusts out of order or twice")
            }
            groups.append(DirectoryGroup(trust: trust, pinned: pinned == 1, digest: try reader.readBytes(32)))
        }
        return groups
    }
}

/// The directory records one side holds, by the trust each concerns, for the version-2
/// exchange: it works out the side's SUMMARY, which record digests to list in HAVE (those of
/// trusts it pins whose digests differ from the peer's), and which records to send (those of
/// trusts the peer pins whose digests differ, less those the peer's HAVE lists). So two
/// replicas exchange only what one keeps and the other lacks, whatever else either holds.
/// Pure: the driver groups the records (it can read them), this decides.
public struct DirectoryIndex: Sendable {
    /// Records by the fingerprint of the trust key they concern.
    public let groups: [[UInt8]: [DirectoryRecord]]
    /// The trusts (fingerprints) this side pins.
    public let pinned: Set<[UInt8]>
    /// The trusts the peer will pin once it takes this side's records: for a site of this side's
    /// own trust, those the trust's hub pinned for all its sites (trust-wide pins travel in the
    /// same DIRECTORY, so their trusts' records are sent with them, not a session later).
    public let peerWillPin: Set<[UInt8]>
    /// Each trust's ``DirectoryRecord/digest(of:)``, worked out once: SUMMARY, HAVE and
    /// DIRECTORY each ask for every trust's.
    private let digests: [[UInt8]: [UInt8]]

    /// An index of `groups`; a pinned trust may have no records yet. `digests`, when the
    /// caller holds them already (kept between sessions), must be each group's
    /// ``DirectoryRecord/digest(of:)``; otherwise they are worked out here.
    public init(groups: [[UInt8]: [DirectoryRecord]], pinned: Set<[UInt8]>, peerWillPin: Set<[UInt8]> = [], digests: [[UInt8]: [UInt8]]? = nil) {
        self.groups = groups
        self.pinned = pinned
        self.peerWillPin = peerWillPin
        self.digests = digests ?? groups.mapValues { DirectoryRecord.digest(of: $0) }
    }

    /// No records, no pins.
    public static let empty = DirectoryIndex(groups: [:], pinned: [])

    /// Every record held, for version 1's DIRECTORY.
    public var allRecords: [DirectoryRecord] {
        groups.keys.sorted { $0.lexicographicallyPrecedes($1) }.flatMap { groups[$0]! }
    }

    /// The digest of one trust's records here (32 zero bytes for none).
    func digest(of trust: [UInt8]) -> [UInt8] { digests[trust] ?? DirectoryRecord.digest(of: []) }

    /// SUMMARY's groups: every trust this side pins or holds records of, in fingerprint order.
    public var summary: [DirectoryGroup] {
        Set(groups.keys).union(pinned).sorted { $0.lexicographicallyPrecedes($1) }.map {
            DirectoryGroup(trust: $0, pinned: pinned.contains($0), digest: digest(of: $0))
        }
    }

    /// HAVE's digests: the records held of each trust this side pins that the peer's summary
    /// lists with a different digest.
    public func wanted(from peer: [DirectoryGroup]) -> [[UInt8]] {
        peer.filter { pinned.contains($0.trust) && $0.digest != digest(of: $0.trust) }
            .flatMap { (groups[$0.trust] ?? []).map(\.digest) }
    }

    /// DIRECTORY's records: those of each trust the peer pins (or will pin), this side holds
    /// records of, and the two digests differ (a trust the peer does not list has the empty
    /// digest), less those whose digests the peer's HAVE lists.
    public func records(for peer: [DirectoryGroup], peerHas: Set<[UInt8]>) -> [DirectoryRecord] {
        let listed = Dictionary(peer.map { ($0.trust, $0) }, uniquingKeysWith: { a, _ in a })
        let zero = [UInt8](repeating: 0, count: 32)
        return groups.keys.sorted { $0.lexicographicallyPrecedes($1) }.filter { trust in
            guard listed[trust]?.pinned == true || peerWillPin.contains(trust) else { return false }
            return (listed[trust]?.digest ?? zero) != digest(of: trust)
        }.flatMap { groups[$0]!.filter { !peerHas.contains($0.digest) } }
    }
}
