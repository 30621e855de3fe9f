import QISyncCore

/// What a site is: a trust's hub or one of its wards.
public enum SiteKind: String, Sendable, CaseIterable {
    case hub
    case ward

    /// The log a site of this kind writes its own site row in. A hub's row goes to every
    /// trust (it names the trust, and other trusts' replicas show it); a ward's stays in its
    /// trust, so a ward that shares nothing adds no log to any other trust's vector: with one
    /// shared log per site, every replica in the country would check one signature, apply
    /// one row and carry one vector entry per ward nationally. Another trust names a ward
    /// from its enrolment instead.
    public var siteRowScope: Scope { self == .hub ? .shared : .trust }
}

/// Who a replica is: its trust and site, and the site's origin key.
public struct ReplicaIdentity: Sendable, Equatable {
    /// The trust's ODS code, e.g. `RXH`.
    public let trustCode: String
    /// The trust's name.
    public let trustName: String
    /// The site's name, e.g. `ward-7b`.
    public let siteName: String
    /// Hub or ward.
    public let kind: SiteKind
    /// The site's public key.
    public let origin: OriginID

    /// Creates an identity.
    public init(trustCode: String, trustName: String, siteName: String, kind: SiteKind, origin: OriginID) {
        self.trustCode = trustCode
        self.trustName = trustName
        self.siteName = siteName
        self.kind = kind
        self.origin = origin
    }

    /// Checks an ODS-style trust code: 3 to 5 upper-case letters or digits.
    public static func validateTrustCode(_ code: String) throws(StoreError) {
        let ok = (3...5).contains(code.count) && code.allSatisfy { ($0.isASCII && $0.isUppercase) || ($0.isASCII && $0.isNumber) }
        guard ok else { throw StoreError("'\(code)' is not a trust code: use the trust's ODS code, 3 to 5 capital letters or digits (e.g. RXH)") }
    }
}
