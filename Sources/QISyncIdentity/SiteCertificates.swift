@preconcurrency import Crypto
import Foundation
import QISyncCore
import SwiftASN1
import X509

/// Making and reading the X.509 certificates that carry identities: a trust's self-signed
/// certificate, a site certificate issued by the trust key (the enrolment), and a site's
/// self-signed certificate for the time before its enrolment reaches it.
///
/// Names: a trust is `O=qisync, OU=trust, CN=<code>`; a site is `O=<trust code>, OU=<hub|ward>, CN=<site name>`.
enum SiteCertificates {
    static let notBefore = Date(timeIntervalSince1970: 1_700_000_000)
    static let notAfter = Date(timeIntervalSince1970: 4_102_444_800) // 2100-01-01: sites are withdrawn by revocation, not expiry.

    static func trustName(code: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("qisync")
            OrganizationalUnitName("trust")
            CommonName(code)
        }
    }

    static func siteName(trust: String, site: String, kind: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName(trust)
            OrganizationalUnitName(kind)
            CommonName(site)
        }
    }

    static func make(publicKey: Curve25519.Signing.PublicKey, subject: DistinguishedName, issuer: DistinguishedName,
                     signedBy key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuer, subject: subject,
            signatureAlgorithm: .ed25519, extensions: Certificate.Extensions(), issuerPrivateKey: Certificate.PrivateKey(key))
        return try der(certificate)
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func parse(_ der: [UInt8], _ what: String) throws(IdentityError) -> Certificate {
        do { return try Certificate(derEncoded: der) } catch {
            throw IdentityError("the \(what) certificate is not a readable X.509 certificate")
        }
    }

    static func ed25519Key(of certificate: Certificate, _ what: String) throws(IdentityError) -> [UInt8] {
        guard let key = Curve25519.Signing.PublicKey(certificate.publicKey) else {
            throw IdentityError("the \(what) certificate's key is not an Ed25519 key")
        }
        return Array(key.rawRepresentation)
    }

    /// The value of the first attribute of `type` in a name.
    static func attribute(_ type: ASN1ObjectIdentifier, of name: DistinguishedName) -> String? {
        for rdn in name {
            for attribute in rdn where attribute.type == type { return String(attribute.value) }
        }
        return nil
    }

    static func isSigned(_ certificate: Certificate, byKey key: [UInt8]) -> Bool {
        guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return Certificate.PublicKey(publicKey).isValidSignature(certificate.signature, for: certificate)
    }
}

/// A site's admission to a trust, verified: the trust key signed a certificate for the site's key.
///
/// It is also what the site presents in TLS (the site certificate, then the trust certificate).
public struct Enrolment: Hashable, Sendable {
    /// The site's key (its origin in the logs).
    public let site: OriginID
    /// The trust's ODS code.
    public let trustCode: String
    /// The site's name.
    public let siteName: String
    /// `hub` or `ward`.
    public let kind: String
    /// The trust's raw public key.
    public let trustKey: [UInt8]
    /// The site certificate (DER), issued by the trust key.
    public let siteCertificate: [UInt8]
    /// The trust's self-signed certificate (DER).
    public let trustCertificate: [UInt8]

    /// The trust key's fingerprint.
    public let trustFingerprint: KeyFingerprint

    /// Issues an enrolment for a site key: the hub's `enrol`.
    public static func issue(site: OriginID, siteName: String, kind: String, trustCode: String, by trustKey: TrustKey) throws(IdentityError) -> Enrolment {
        do {
            let trustDN = try SiteCertificates.trustName(code: trustCode)
            let trustCertificate = try SiteCertificates.make(publicKey: trustKey.key.publicKey, subject: trustDN, issuer: trustDN, signedBy: trustKey.key)
            let siteCertificate = try SiteCertificates.make(
                publicKey: try Curve25519.Signing.PublicKey(rawRepresentation: site.bytes),
                subject: try SiteCertificates.siteName(trust: trustCode, site: siteName, kind: kind), issuer: trustDN, signedBy: trustKey.key)
            return try Enrolment(siteCertificate: siteCertificate, trustCertificate: trustCertificate)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError("could not make the enrolment certificate: \(error)")
        }
    }

    /// Reads and verifies a certificate pair: the trust certificate is self-signed by its key,
    /// and the site certificate is issued by that trust to an Ed25519 key.
    public init(siteCertificate: [UInt8], trustCertificate: [UInt8]) throws(IdentityError) {
        let trust = try SiteCertificates.parse(trustCertificate, "trust")
        let site = try SiteCertificates.parse(siteCertificate, "site")
        let trustKey = try SiteCertificates.ed25519Key(of: trust, "trust")
        guard trust.subject == trust.issuer, SiteCertificates.isSigned(trust, byKey: trustKey),
              SiteCertificates.attribute(.RDNAttributeType.organizationalUnitName, of: trust.subject) == "trust",
              let trustCode = SiteCertificates.attribute(.RDNAttributeType.commonName, of: trust.subject) else {
            throw IdentityError("the trust certificate is not a qisync trust certificate signed by its own key")
        }
        guard site.issuer == trust.subject, SiteCertificates.isSigned(site, byKey: trustKey) else {
            throw IdentityError("the site certificate was not issued by trust \(trustCode)'s key")
        }
        let siteKey = try SiteCertificates.ed25519Key(of: site, "site")
        guard SiteCertificates.attribute(.RDNAttributeType.organizationName, of: site.subject) == trustCode,
              let siteName = SiteCertificates.attribute(.RDNAttributeType.commonName, of: site.subject),
              let kind = SiteCertificates.attribute(.RDNAttributeType.organizationalUnitName, of: site.subject),
              ["hub", "ward"].contains(kind) else {
            throw IdentityError("the site certificate does not name its trust, site and kind (hub or ward)")
        }
        self.site = try! OriginID(bytes: siteKey)
        self.trustCode = trustCode
        self.siteName = siteName
        self.kind = kind
        self.trustKey = trustKey
        trustFingerprint = KeyFingerprint(publicKey: trustKey)
        self.siteCertificate = siteCertificate
        self.trustCertificate = trustCertificate
    }

    /// Reads and verifies an enrolment record from the directory or the wire.
    public init(record: DirectoryRecord) throws(IdentityError) {
        guard record.kind == .enrolment, record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("not an enrolment record") }
        var reader = ByteReader(record.bytes)
        do {
            let site = try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "site certificate")
            let trust = try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "trust certificate")
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
            try self.init(siteCertificate: site, trustCertificate: trust)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError("the enrolment record is malformed: \(error)")
        }
    }

    /// The record that carries it.
    public var record: DirectoryRecord {
        var writer = ByteWriter()
        writer.write(lengthPrefixed: siteCertificate)
        writer.write(lengthPrefixed: trustCertificate)
        return DirectoryRecord(kind: .enrolment, bytes: writer.bytes)
    }

    /// The enrolment as a small text file, for a ward that has never been online, with the
    /// hub's other directory records (its own enrolment, its trust's bundle key…), so the ward
    /// knows its hub before they ever meet: `qisync-enrolment 1`, then the records in base64
    /// (``DirectoryRecord/fileText(_:_:)``), this enrolment first.
    public func fileText(with others: [DirectoryRecord] = []) -> String {
        DirectoryRecord.fileText("qisync-enrolment 1", [record] + others.filter { $0 != record })
    }

    /// Reads an enrolment file written by ``fileText(with:)``: the enrolment, verified, and the
    /// other records it carries (to be verified when imported).
    public static func read(fileText text: String) throws(IdentityError) -> (enrolment: Enrolment, others: [DirectoryRecord]) {
        let records: [DirectoryRecord]
        do { records = try DirectoryRecord.records(fromFileText: text, title: "qisync-enrolment 1") } catch {
            throw IdentityError(error.message.hasPrefix("this is not") ? error.message : "the enrolment file is damaged (\(error.message))")
        }
        guard let first = records.first else { throw IdentityError("the enrolment file is empty") }
        return (try Enrolment(record: first), Array(records.dropFirst()))
    }
}
