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
/// pins (by key fingerprint), the enrolments and revocations it holds. Every decision about
/// who may connect and whose entries count is made here, without I/O.
public struct TrustDirectory: Sendable {
    /// This replica's trust.
    public let ownTrust: String
    /// This replica's site key.
    public let ownSite: OriginID
    /// Pinned trusts, own trust included: code → key fingerprint.
    public var pins: [String: KeyFingerprint] {
        didSet { ownerTags = Self.tags(for: pins.keys) }
    }
    /// Each pinned trust's record-id owner tag (``RecordID/ownerTag(ofTrust:)``), worked out once.
    public private(set) var ownerTags: [String: [UInt8]] = [:]

    static func tags(for codes: some Sequence<String>) -> [String: [UInt8]] {
        Dictionary(uniqueKeysWithValues: codes.map { ($0, RecordID.ownerTag(ofTrust: $0)) })
    }
    /// Enrolments held, by site.
    public var enrolments: [OriginID: Enrolment]
    /// Revocations held, by site.
    public var revocations: [OriginID: Revocation]
    /// Trusts' keys for sealed bundles, by the trust key's fingerprint.
    public var bundleKeys: [KeyFingerprint: TrustBundleKey] = [:]

    /// Creates a directory.
    public init(ownTrust: String, ownSite: OriginID, pins: [String: KeyFingerprint] = [:],
                enrolments: [OriginID: Enrolment] = [:], revocations: [OriginID: Revocation] = [:]) {
        self.ownTrust = ownTrust
        self.ownSite = ownSite
        self.pins = pins
        ownerTags = Self.tags(for: pins.keys)
        self.enrolments = enrolments
        self.revocations = revocations
    }

    /// Whether an enrolment's trust is pinned here with the key that signed it.
    public func isPinned(_ enrolment: Enrolment) -> Bool { pins[enrolment.trustCode] == enrolment.trustFingerprint }

    /// Whether a revocation was signed by the key pinned for the revoked site's trust.
    public func isPinned(_ revocation: Revocation) -> Bool { pins.values.contains(revocation.trustFingerprint) }

    /// The key to seal a bundle for a pinned trust to, when its hub has published one.
    public func bundleKey(forTrust code: String) -> TrustBundleKey? { pins[code].flatMap { bundleKeys[$0] } }

    /// The trust a site belongs to, when it is this site or enrolled in a pinned trust.
    public func trust(of site: OriginID) -> String? {
        if site == ownSite { return ownTrust }
        guard let enrolment = enrolments[site], isPinned(enrolment) else { return nil }
        return enrolment.trustCode
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
        if let revocation = revocations[origin], isPinned(revocation), revocation.refuses(scope: scope, seq: seq) {
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
            if chain.count >= 2, let enrolment = try? Enrolment(siteCertificate: leaf, trustCertificate: chain[1]) {
                guard let pinned = pins[enrolment.trustCode] else {
                    throw IdentityError("site \(enrolment.trustCode)/\(enrolment.siteName) belongs to trust \(enrolment.trustCode), which is not pinned here (pin it with 'qisync trust add \(enrolment.trustCode) FINGERPRINT')")
                }
                guard pinned == enrolment.trustFingerprint else {
                    throw IdentityError("site \(enrolment.trustCode)/\(enrolment.siteName) was enrolled by a key whose fingerprint (\(enrolment.trustFingerprint)) is not the one pinned here for \(enrolment.trustCode)")
                }
                identity = PeerIdentity(site: enrolment.site, trustCode: enrolment.trustCode, siteName: enrolment.siteName, kind: enrolment.kind)
            } else {
                let certificate = try SiteCertificates.parse(leaf, "peer's")
                let site = try OriginID(bytes: try SiteCertificates.ed25519Key(of: certificate, "peer's"))
                guard let enrolment = enrolments[site], isPinned(enrolment) else {
                    throw IdentityError("site key \(KeyFingerprint(publicKey: site.bytes)) is not enrolled in any trust pinned here; its hub must enrol it ('qisync enrol')")
                }
                identity = PeerIdentity(site: site, trustCode: enrolment.trustCode, siteName: enrolment.siteName, kind: enrolment.kind)
            }
            if let revocation = revocations[identity.site], isPinned(revocation) {
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
                chain = [try SiteCertificates.make(publicKey: signer.signingKey.publicKey, subject: name, issuer: name, signedBy: signer.signingKey)]
            }
        } catch {
            throw IdentityError("could not make this site's TLS certificate: \(error)")
        }
    }
}
