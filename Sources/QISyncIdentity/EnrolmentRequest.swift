import Foundation
import QISyncCore

/// What a joining site prints for its hub: its trust, name, kind and key, signed by that key
/// (so the request cannot name a key its maker does not hold). One shell-safe token.
public struct EnrolmentRequest: Equatable, Sendable {
    /// The trust the site asks to join.
    public let trustCode: String
    /// The site's name.
    public let siteName: String
    /// `hub` or `ward`.
    public let kind: String
    /// The site's key.
    public let site: OriginID

    static let prefix = "qisync-enrol-request:"

    /// Makes the request for this site.
    public init(trustCode: String, siteName: String, kind: String, signer: SiteSigner) {
        self.trustCode = trustCode
        self.siteName = siteName
        self.kind = kind
        site = signer.origin
        signature = signer.sign(Self.message(trustCode: trustCode, siteName: siteName, kind: kind, site: site))
    }

    private let signature: [UInt8]

    /// The site key's signature of its request: its consent to join this trust under this name
    /// and kind, carried in the enrolment's site certificate.
    public var consent: [UInt8] { signature }

    /// What the site key signs: `"qisync-enrol-request-1" ‖ trust ‖ site ‖ kind ‖ siteKey`.
    static func message(trustCode: String, siteName: String, kind: String, site: OriginID) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Array("qisync-enrol-request-1".utf8))
        writer.write(string: trustCode)
        writer.write(string: siteName)
        writer.write(string: kind)
        writer.write(raw: site.bytes)
        return writer.bytes
    }

    /// The request as one token to copy, mail or read from a file.
    public var text: String {
        var writer = ByteWriter()
        writer.write(string: trustCode)
        writer.write(string: siteName)
        writer.write(string: kind)
        writer.write(raw: site.bytes)
        writer.write(raw: signature)
        return Self.prefix + Data(writer.bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The site key's fingerprint, for the two people to compare by phone.
    public var siteFingerprint: KeyFingerprint { KeyFingerprint(publicKey: site.bytes) }

    /// Reads a request token and checks its signature.
    public init(parsing text: String) throws(IdentityError) {
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.hasPrefix(Self.prefix) else {
            throw IdentityError("this is not an enrolment request: it starts with '\(Self.prefix)' (the joining site's 'qisync init --join' prints it)")
        }
        var base64 = String(token.dropFirst(Self.prefix.count)).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { throw IdentityError("the enrolment request is damaged (not base64); copy it again whole") }
        var reader = ByteReader(Array(data))
        do {
            trustCode = try reader.readString(limit: 5, "trust code")
            siteName = try reader.readString(limit: 100, "site name")
            kind = try reader.readString(limit: 4, "kind")
            site = try OriginID(bytes: try reader.readBytes(32))
            signature = try reader.readBytes(64)
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
        } catch {
            throw IdentityError("the enrolment request is damaged (\(error)); copy it again whole")
        }
        guard ["hub", "ward"].contains(kind) else { throw IdentityError("the enrolment request names kind '\(kind)'; it must be hub or ward") }
        guard SignatureCheck.isValid(signature, of: Self.message(trustCode: trustCode, siteName: siteName, kind: kind, site: site), by: site) else {
            throw IdentityError("the enrolment request's signature does not match its key: it was altered, or made by someone without the site key")
        }
    }
}
