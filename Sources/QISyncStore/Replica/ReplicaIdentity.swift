import QISyncCore

/// What a site is: a trust's hub or one of its wards.
public enum SiteKind: String, Sendable, CaseIterable {
    case hub
    case ward
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
