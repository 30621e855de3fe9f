import Foundation
import QISyncCore
import X509

/// Who a peer proved to be in the TLS handshake.
public struct PeerIdentity: Equatable, Sendable {
    /// The peer's site key.
    public let site: OriginID
    /// Its trust's ODS code.
    public let trustCode: String
    /// Its site name.
    public let siteName: String
    /// `hub` or `ward`.
    public let kind: String

    /// Creates an identity.
    public init(site: OriginID, trustCode: String, siteName: String, kind: String) {
        self.site = site
        self.trustCode = trustCode
        self.siteName = siteName
        self.kind = kind
    }

    /// `TRUST/site`.
    public var name: String { "\(trustCode)/\(siteName)" }
}

/// What a replica knows about trusts and sites, as one value: its own trust, the trusts it
/// pins (by key fingerprint), and what the directory records it holds decide: each site's
/// current enrolment, the revocations in force, the trusts' bundle keys. Every decision about
/// who may connect and whose entries count is made here, without I/O, and depends only on the
/// set of records held and this replica's own pins (protocol/SPEC.md section 12), never on the
/// order they arrived in.
public struct TrustDirectory: Sendable {
    /// This replica's trust.
    public let ownTrust: String
    /// This replica's site key.
    public let ownSite: OriginID
    /// Pinned trusts, own trust included: code → key fingerprint.
    public var pins: [String: KeyFingerprint] {
        didSet {
            ownerTags = Self.tags(for: pins.keys)
            madeFromRecords = false
        }
    }
    /// Each pinned trust's record-id owner tag (``RecordID/ownerTag(ofTrust:)``), worked out once.
    public private(set) var ownerTags: [String: [UInt8]] = [:]

    static func tags(for codes: some Sequence<String>) -> [String: [UInt8]] {
        Dictionary(uniqueKeysWithValues: codes.map { ($0, RecordID.ownerTag(ofTrust: $0)) })
    }
    /// Each site's current enrolment: of the enrolments held of its key whose trust is pinned
    /// with the key that signed them, the latest issued.
    public var enrolments: [OriginID: Enrolment]
    /// The revocation in force for each site: one signed by the key of the trust the site is
    /// currently enrolled in (a partner trust cannot revoke another trust's sites).
    public var revocations: [OriginID: Revocation]
    /// Trusts' keys for sealed bundles, by the trust key's fingerprint.
    public var bundleKeys: [KeyFingerprint: TrustBundleKey] = [:]
    /// Every accepted enrolment held, current or replaced, by site.
    public var enrolmentHistory: [OriginID: [Enrolment]] = [:]
    /// Each site's latest enrolment among all held, whether its trust is pinned now or not: a
    /// trust unpinned after its entries were accepted leaves them, and their sites' trust, here.
    public var heldEnrolments: [OriginID: Enrolment] = [:]
    /// Redactions signed by the key of the trust their entry's site belongs to, by entry, the
    /// one in force first (most cells, then latest `redactedMs`, then greater digest).
    public var redactions: [VersionRef: [Redaction]] = [:]
    /// The revocations and redactions held (each with its record's digest), whatever is in
    /// force: ``adding(_:)`` decides them again from these. Empty unless made from records.
    private var revocationRecords: [(Revocation, [UInt8])] = []
    private var redactionRecords: [(Redaction, [UInt8])] = []
    /// Whether this directory was made from held records (``init(ownTrust:ownSite:ownPins:heldRecords:)``),
    /// so ``adding(_:)`` may extend it.
    private var madeFromRecords = false

    /// Creates a directory from decisions already made (tests and tools).
    public init(ownTrust: String, ownSite: OriginID, pins: [String: KeyFingerprint] = [:],
                enrolments: [OriginID: Enrolment] = [:], revocations: [OriginID: Revocation] = [:]) {
        self.ownTrust = ownTrust
        self.ownSite = ownSite
        self.pins = pins
        ownerTags = Self.tags(for: pins.keys)
        self.enrolments = enrolments
        self.revocations = revocations
    }

    /// Decides everything from the directory records a replica holds and its own pins
    /// (`ownPins`, which include its own trust). Held records were verified before they were
    /// kept (``relevance(of:)``), so their signatures are not checked again here
    /// (``VerifiedRecord/readHeld(_:)``); records that do not read are skipped.
    ///
    /// 1. Trust-wide pins signed by this replica's own trust key: for each code the latest
    ///    (`atMs`, then record digest) decides; a code pinned on this replica itself keeps its own pin.
    /// 2. An enrolment counts when its trust is pinned with the key that signed it; of those of
    ///    one site key, the latest issued (then the greater record digest) is current.
    /// 3. A revocation is in force when signed by the key of the trust the site's current
    ///    enrolment belongs to; of several, the earliest (`revokedMs`, then digest).
    /// 4. A bundle key counts when its trust key is pinned.
    public init(ownTrust: String, ownSite: OriginID, ownPins: [String: KeyFingerprint], heldRecords records: some Sequence<DirectoryRecord>) {
        var enrolmentRecords: [(Enrolment, [UInt8])] = []
        var revocationRecords: [(Revocation, [UInt8])] = []
        var pinRecords: [(TrustWidePin, [UInt8])] = []
        var keys: [TrustBundleKey] = []
        var redactionRecords: [(Redaction, [UInt8])] = []
        let records = Array(records)
        for (record, result) in zip(records, VerifiedRecord.readHeld(records)) {
            switch result {
            case .success(.enrolment(let e)): enrolmentRecords.append((e, record.digest))
            case .success(.revocation(let r)): revocationRecords.append((r, record.digest))
            case .success(.trustPin(let p)): pinRecords.append((p, record.digest))
            case .success(.bundleKey(let k)): keys.append(k)
            case .success(.redaction(let r)): redactionRecords.append((r, record.digest))
            case .failure: continue
            }
        }
        var pins = ownPins
        let ownKey = ownPins[ownTrust]
        var decided: [String: (TrustWidePin, [UInt8])] = [:]
        for (pin, digest) in pinRecords where pin.trustFingerprint == ownKey {
            if let current = decided[pin.code], isAtOrAfter(current.0.milliseconds, current.1, pin.milliseconds, digest) { continue }
            decided[pin.code] = (pin, digest)
        }
        for (code, (pin, _)) in decided where ownPins[code] == nil && code != ownTrust && pin.pinned { pins[code] = pin.fingerprint }
        self.init(ownTrust: ownTrust, ownSite: ownSite, pins: pins)

        var held: [OriginID: (Enrolment, [UInt8])] = [:]
        for (enrolment, digest) in enrolmentRecords {
            if let known = held[enrolment.site], isAtOrAfter(known.0.issued.timeIntervalSince1970, known.1, enrolment.issued.timeIntervalSince1970, digest) { continue }
            held[enrolment.site] = (enrolment, digest)
        }
        heldEnrolments = held.mapValues(\.0)
        var current: [OriginID: (Enrolment, [UInt8])] = [:]
        for (enrolment, digest) in enrolmentRecords where pins[enrolment.trustCode] == enrolment.trustFingerprint {
            enrolmentHistory[enrolment.site, default: []].append(enrolment)
            let seconds = enrolment.issued.timeIntervalSince1970
            if let held = current[enrolment.site], isAtOrAfter(held.0.issued.timeIntervalSince1970, held.1, seconds, digest) { continue }
            current[enrolment.site] = (enrolment, digest)
        }
        for site in enrolmentHistory.keys { enrolmentHistory[site]!.sort { $0.issued < $1.issued } }
        enrolments = current.mapValues(\.0)
        let pinned = Set(pins.values)
        for key in keys where pinned.contains(key.trustFingerprint) { bundleKeys[key.trustFingerprint] = key }
        self.revocationRecords = revocationRecords
        self.redactionRecords = redactionRecords
        decideRevocationsAndRedactions()
        madeFromRecords = true
    }

    /// Rules 3 and 5, from the revocations and redactions held, against the enrolments decided.
    private mutating func decideRevocationsAndRedactions() {
        var inForce: [OriginID: (Revocation, [UInt8])] = [:]
        for (revocation, digest) in revocationRecords where enrolments[revocation.site]?.trustFingerprint == revocation.trustFingerprint {
            if let held = inForce[revocation.site], !isAtOrAfter(held.0.revokedMilliseconds, held.1, revocation.revokedMilliseconds, digest) { continue }
            inForce[revocation.site] = (revocation, digest)
        }
        revocations = inForce.mapValues(\.0)
        var byEntry: [VersionRef: [(Redaction, [UInt8])]] = [:]
        for (redaction, digest) in redactionRecords {
            guard let trust = heldTrust(of: redaction.entry.origin), pins[trust] == redaction.trustFingerprint else { continue }
            byEntry[redaction.entry, default: []].append((redaction, digest))
        }
        // A later redaction of an entry names every cell redacted before, so the one naming the
        // most cells is in force (then the latest, then the greater digest).
        redactions = byEntry.mapValues { list in
            list.sorted { a, b in
                a.0.cells.count != b.0.cells.count ? a.0.cells.count > b.0.cells.count
                    : isAtOrAfter(a.0.redactedMilliseconds, a.1, b.0.redactedMilliseconds, b.1)
            }.map(\.0)
        }
    }

    /// The directory with `records` (held records just kept, none held before) taken in too,
    /// decided as ``init(ownTrust:ownSite:ownPins:heldRecords:)`` would decide it from all of
    /// them, without reading again every record held: a hub taking in a national directory
    /// a few trusts at a time otherwise reads thousands of records each time. Only what is
    /// decided one record at a time is extended: enrolments of sites with none held and
    /// bundle keys of trusts with none in force. For anything else (a trust-wide pin, a
    /// revocation or redaction, a second enrolment of a site, a directory not made from
    /// records or whose pins were changed since) it returns nil, and the caller makes the
    /// directory afresh.
    public func adding(_ records: [DirectoryRecord]) -> TrustDirectory? {
        guard madeFromRecords else { return nil }
        var next = self
        var sites = Set<OriginID>()
        let pinned = Set(pins.values)
        for result in VerifiedRecord.readHeld(records) {
            switch result {
            case .success(.enrolment(let enrolment)):
                guard heldEnrolments[enrolment.site] == nil, sites.insert(enrolment.site).inserted else { return nil }
                next.heldEnrolments[enrolment.site] = enrolment
                if pins[enrolment.trustCode] == enrolment.trustFingerprint {
                    next.enrolmentHistory[enrolment.site] = [enrolment]
                    next.enrolments[enrolment.site] = enrolment
                }
            case .success(.bundleKey(let key)):
                guard pinned.contains(key.trustFingerprint) else { continue }
                guard next.bundleKeys[key.trustFingerprint] == nil else { return nil }
                next.bundleKeys[key.trustFingerprint] = key
            case .success(.revocation), .success(.trustPin), .success(.redaction):
                return nil
            case .failure:
                continue   // as the full reading skips it
            }
        }
        // A revocation or redaction held may concern a site whose first enrolment just came.
        if !revocationRecords.isEmpty || !redactionRecords.isEmpty { next.decideRevocationsAndRedactions() }
        return next
    }

    /// The redaction in force for an entry, if any.
    public func redaction(of entry: VersionRef) -> Redaction? { redactions[entry]?.first }

    /// Whether a redacted entry is vouched for by a redaction its site's trust signed.
    public func vouches(forRedacted entry: LogEntry) -> Bool {
        redactions[entry.ref]?.contains { $0.vouches(for: entry) } ?? false
    }

    /// A pinned trust's public key, as its enrolments carry it (the key that signs IG-lead
    /// overrides, among others); nil when no enrolment of it is held. Every write asks for its
    /// own trust's: this site's own enrolment answers at once, and the others are searched only
    /// when it is not enrolled yet (building every trust's key from every enrolment took most
    /// of a script line's time at a 2,420-site directory).
    public func trustKey(of code: String) -> [UInt8]? {
        func isKey(_ enrolment: Enrolment) -> Bool { enrolment.trustCode == code && pins[code] == enrolment.trustFingerprint }
        if code == ownTrust, let own = enrolments[ownSite], isKey(own) { return own.trustKey }
        return enrolments.values.first(where: isKey)?.trustKey
    }

    /// Whether a record is worth keeping here (it verifies, and concerns a trust pinned here),
    /// or why not. Records not kept arrive again with a later exchange, once they matter.
    public func relevance(of record: DirectoryRecord) -> IdentityError? {
        switch VerifiedRecord.verify(record) {
        case .failure(let error): return error
        case .success(.enrolment(let enrolment)):
            guard isPinned(enrolment) else {
                return IdentityError("the enrolment of \(enrolment.trustCode)/\(enrolment.siteName) is for a trust not pinned here with that key")
            }
        case .success(.revocation(let revocation)):
            guard pins.values.contains(revocation.trustFingerprint) else { return IdentityError("a revocation signed by a key not pinned here") }
        case .success(.trustPin(let pin)):
            guard let own = pins[ownTrust], pin.trustFingerprint == own else { return IdentityError("a trust pin made by another trust") }
        case .success(.bundleKey(let key)):
            guard pins.values.contains(key.trustFingerprint) else { return IdentityError("a bundle key signed by a key not pinned here") }
        case .success(.redaction(let redaction)):
            guard pins.values.contains(redaction.trustFingerprint) else { return IdentityError("a redaction signed by a key not pinned here") }
        }
        return nil
    }

    /// Whether an enrolment's trust is pinned here with the key that signed it.
    public func isPinned(_ enrolment: Enrolment) -> Bool { pins[enrolment.trustCode] == enrolment.trustFingerprint }


    /// The key to seal a bundle for a pinned trust to, when its hub has published one.
    public func bundleKey(forTrust code: String) -> TrustBundleKey? { pins[code].flatMap { bundleKeys[$0] } }

    /// The trust a site belongs to, when it is this site or enrolled in a pinned trust.
    public func trust(of site: OriginID) -> String? {
        if site == ownSite { return ownTrust }
        guard let enrolment = enrolments[site], isPinned(enrolment) else { return nil }
        return enrolment.trustCode
    }

    /// The trust of a site whose entries are held here: as its current enrolment says, or, when
    /// its trust has been unpinned since, as its latest enrolment held says.
    public func heldTrust(of site: OriginID) -> String? {
        trust(of: site) ?? heldEnrolments[site]?.trustCode
    }

    /// Why an entry at this place of a site's log is not accepted, or nil when it is:
    /// the site is unknown or its trust unpinned, it was revoked before it, or it is a
    /// trust-scope entry from another trust's site.
    public func refusal(origin: OriginID, scope: Scope, seq: UInt64) -> String? {
        guard let trust = trust(of: origin) else {
            if let enrolment = enrolments[origin] {
                return "site \(enrolment.trustCode)/\(enrolment.siteName) belongs to trust \(enrolment.trustCode), which is not pinned here"
            }
            return "site \(origin.short) is not enrolled in any trust pinned here"
        }
        if let revocation = revocations[origin], revocation.refuses(scope: scope, seq: seq) {
            return "site \(trust)/\(enrolments[origin]?.siteName ?? origin.short) was revoked; entry \(seq) of its \(scope) log comes after the cut-off"
        }
        if scope == .trust, trust != ownTrust {
            return "a trust-scope entry of trust \(trust) (only \(trust)'s own sites may hold those)"
        }
        return nil
    }

    /// Checks the certificate chain a peer presented in the TLS handshake (leaf first): an
    /// enrolment of a pinned trust (site certificate then trust certificate), or a lone
    /// certificate whose key is enrolled here. Revoked sites are refused.
    public func verifyPeer(chain: [[UInt8]]) -> Result<PeerIdentity, IdentityError> {
        do {
            guard let leaf = chain.first else { throw IdentityError("the peer presented no certificate") }
            let identity: PeerIdentity
            if chain.count >= 2, let enrolment = try? VerifiedRecord.chain(site: leaf, trust: chain[1]).get() {
                guard let pinned = pins[enrolment.trustCode] else {
                    throw IdentityError("site \(enrolment.trustCode)/\(enrolment.siteName) belongs to trust \(enrolment.trustCode), which is not pinned here (pin it with 'qisync trust add \(enrolment.trustCode) FINGERPRINT')")
                }
                guard pinned == enrolment.trustFingerprint else {
                    throw IdentityError("site \(enrolment.trustCode)/\(enrolment.siteName) was enrolled by a key whose fingerprint (\(enrolment.trustFingerprint)) is not the one pinned here for \(enrolment.trustCode)")
                }
                // The directory's current enrolment of the key (which carries the site's consent)
                // decides who it is; the chain presented speaks for it only when none is held.
                if let current = enrolments[enrolment.site] {
                    guard current.trustCode == enrolment.trustCode else {
                        throw IdentityError("the peer presents an enrolment in \(enrolment.trustCode), but its key is enrolled in \(current.trustCode) here")
                    }
                    identity = PeerIdentity(site: current.site, trustCode: current.trustCode, siteName: current.siteName, kind: current.kind)
                } else {
                    identity = PeerIdentity(site: enrolment.site, trustCode: enrolment.trustCode, siteName: enrolment.siteName, kind: enrolment.kind)
                }
            } else {
                let certificate = try SiteCertificates.parse(leaf, "peer's")
                let site = try OriginID(bytes: try SiteCertificates.ed25519Key(of: certificate, "peer's"))
                guard let enrolment = enrolments[site], isPinned(enrolment) else {
                    throw IdentityError("site key \(KeyFingerprint(publicKey: site.bytes)) is not enrolled in any trust pinned here; its hub must enrol it ('qisync enrol')")
                }
                identity = PeerIdentity(site: site, trustCode: enrolment.trustCode, siteName: enrolment.siteName, kind: enrolment.kind)
            }
            if revocations[identity.site] != nil {
                throw IdentityError("site \(identity.name) was revoked by its trust")
            }
            return .success(identity)
        } catch let error as IdentityError {
            return .failure(error)
        } catch {
            return .failure(IdentityError("the peer's certificate is unreadable: \(error)"))
        }
    }
}

/// What a site presents in the TLS handshake: its certificate chain and its private key.
public struct SiteCredentials: Sendable {
    /// DER certificates, the site's first: its enrolment (site, trust) once it has one,
    /// otherwise a certificate it signed itself, which peers that hold its enrolment accept.
    public let chain: [[UInt8]]
    /// The site's private key, PEM (PKCS #8).
    public let privateKeyPEM: String

    /// The credentials of a site with this key, enrolment (when held) and names.
    public init(signer: SiteSigner, enrolment: Enrolment?, trustCode: String, siteName: String, kind: String) throws(IdentityError) {
        do {
            privateKeyPEM = try Certificate.PrivateKey(signer.signingKey).serializeAsPEM().pemString
            if let enrolment, enrolment.site == signer.origin {
                chain = [enrolment.siteCertificate, enrolment.trustCertificate]
            } else {
                let name = try SiteCertificates.siteName(trust: trustCode, site: siteName, kind: kind)
                chain = [try SiteCertificates.selfSigned(key: signer.signingKey, name: name)]
            }
        } catch {
            throw IdentityError("could not make this site's TLS certificate: \(error)")
        }
    }
}

/// Whether `(a, digestA)` is later than or the same as `(b, digestB)`: by the number, then the
/// digest's bytes. The fixed order that picks one of several directory records.
func isAtOrAfter<N: Comparable>(_ a: N, _ digestA: [UInt8], _ b: N, _ digestB: [UInt8]) -> Bool {
    a != b ? a > b : !digestA.lexicographicallyPrecedes(digestB)
}
