import Foundation
import QISyncCore
import QISyncIdentity
import Testing

@Suite("A directory extended by the records just kept decides as one read afresh from all of them")
struct DirectoryExtensionTests {
    /// Everything a directory decides, to compare two of them.
    static func decisions(_ directory: TrustDirectory) -> String {
        func sorted<K, V>(_ map: [K: V], _ key: (K) -> String, _ value: (V) -> String) -> String {
            map.map { "\(key($0.key)) → \(value($0.value))" }.sorted().joined(separator: "; ")
        }
        func enrolment(_ enrolment: Enrolment) -> String {
            "\(enrolment.trustCode)/\(enrolment.siteName) \(enrolment.kind) \(enrolment.issued.timeIntervalSince1970) \(enrolment.trustFingerprint)"
        }
        return [
            sorted(directory.pins, { $0 }, { "\($0)" }),
            sorted(directory.ownerTags, { $0 }, { Hex.encode($0) }),
            sorted(directory.enrolments, { Hex.encode($0.bytes) }, enrolment),
            sorted(directory.heldEnrolments, { Hex.encode($0.bytes) }, enrolment),
            sorted(directory.enrolmentHistory, { Hex.encode($0.bytes) }, { $0.map(enrolment).joined(separator: ", ") }),
            sorted(directory.revocations, { Hex.encode($0.bytes) }, { "\($0.revokedMilliseconds) \($0.trustFingerprint)" }),
            sorted(directory.bundleKeys, { "\($0)" }, { Hex.encode($0.publicKey) }),
        ].joined(separator: "\n")
    }

    /// A national directory in miniature: five trusts (three pinned here, one of them by a
    /// trust-wide pin, one with a second key nobody pins), sites enrolled once or twice (some at
    /// the same second), by their trust's key or another, bundle keys, and
    /// revocations, some of sites whose enrolment comes later.
    static func records(seed: UInt64) throws -> (ownPins: [String: KeyFingerprint], records: [DirectoryRecord]) {
        var random = SplitMix64(seed: seed)
        let codes = ["RXH", "RYJ", "R1K", "RQM", "RAL"]
        let keys = codes.map { _ in TrustKey() }
        let stranger = TrustKey()
        let ownPins = ["RXH": keys[0].fingerprint, "RYJ": keys[1].fingerprint, "RQM": stranger.fingerprint]
        var records: [DirectoryRecord] = [
            TrustWidePin(code: "R1K", fingerprint: keys[2].fingerprint, pinned: true, at: 5, by: keys[0]).record,
            TrustWidePin(code: "RAL", fingerprint: keys[4].fingerprint, pinned: random.next() % 2 == 0, at: 6, by: keys[0]).record,
        ]
        for key in keys where random.next() % 4 != 0 { records.append(TrustBundleKey(trustKey: key).record) }
        for site in 0..<24 {
            let signer = SiteSigner()
            let trust = Int(random.next() % UInt64(codes.count))
            let key = random.next() % 8 == 0 ? stranger : keys[trust]
            let issued = Date(timeIntervalSince1970: 1_800_000_000 + Double(random.next() % 3))
            records.append(try issue(signer, "ward-\(site) Ysbyty Gwynedd", site % 5 == 0 ? "hub" : "ward", codes[trust], by: key, issued: issued).record)
            if random.next() % 4 == 0 {
                let again = Date(timeIntervalSince1970: 1_800_000_000 + Double(random.next() % 3))
                records.append(try issue(signer, "ward-\(site) moved", "ward", codes[Int(random.next() % UInt64(codes.count))], by: keys[trust], issued: again).record)
            }
            if random.next() % 6 == 0 {
                records.append(Revocation.issue(site: signer.origin, lastAccepted: [:], at: 1_800_000_000_000 + random.next() % 5, by: keys[trust]).record)
            }
        }
        return (ownPins, records)
    }

    /// Records in the order a replica reads them back (by kind, then digest), as it always
    /// hands them to the directory.
    static func asStored(_ records: [DirectoryRecord]) -> [DirectoryRecord] {
        records.sorted { a, b in a.kind.rawValue != b.kind.rawValue ? a.kind.rawValue < b.kind.rawValue : a.digest.lexicographicallyPrecedes(b.digest) }
    }

    @Test("in any order and any grouping, extending (or, where it declines, reading afresh) ends where one reading of every record does", arguments: 1...12)
    func extendedEqualsFresh(seed: UInt64) throws {
        let (ownPins, all) = try Self.records(seed: seed)
        let own = SiteSigner().origin
        let fresh = TrustDirectory(ownTrust: "RXH", ownSite: own, ownPins: ownPins, heldRecords: Self.asStored(all))
        #expect(!fresh.enrolments.isEmpty)
        var random = SplitMix64(seed: seed &* 7919)
        var extended = 0
        for _ in 0..<4 {
            let order = all.shuffled(using: &random)
            var held: [DirectoryRecord] = []
            var directory = TrustDirectory(ownTrust: "RXH", ownSite: own, ownPins: ownPins, heldRecords: held)
            var rest = order[...]
            while !rest.isEmpty {
                let batch = Array(rest.prefix(Int(random.next() % 4) + 1))
                rest = rest.dropFirst(batch.count)
                held += batch
                if let next = directory.adding(batch) {
                    extended += 1
                    directory = next
                } else {
                    directory = TrustDirectory(ownTrust: "RXH", ownSite: own, ownPins: ownPins, heldRecords: Self.asStored(held))
                }
                // Every step, not just the last, decides as a fresh reading of what is held.
                #expect(Self.decisions(directory) == Self.decisions(TrustDirectory(ownTrust: "RXH", ownSite: own, ownPins: ownPins, heldRecords: Self.asStored(held))))
            }
            #expect(Self.decisions(directory) == Self.decisions(fresh))
        }
        #expect(extended > 0, "the extension was never taken: the test would not see it go wrong")
    }

    @Test("a directory not read from records, or whose pins were changed, is not extended")
    func declines() throws {
        let key = TrustKey()
        let enrolment = try issue(SiteSigner(), "ward", "ward", "RXH", by: key).record
        #expect(TrustDirectory(ownTrust: "RXH", ownSite: SiteSigner().origin, pins: ["RXH": key.fingerprint]).adding([enrolment]) == nil)
        var read = TrustDirectory(ownTrust: "RXH", ownSite: SiteSigner().origin, ownPins: ["RXH": key.fingerprint], heldRecords: [])
        #expect(read.adding([enrolment])?.enrolments.count == 1)
        read.pins["RYJ"] = TrustKey().fingerprint
        #expect(read.adding([enrolment]) == nil)
    }
}
