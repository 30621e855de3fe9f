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
    static let selfSignedNotBefore = Date(timeIntervalSince1970: 1_700_000_000)
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

    /// A trust's self-signed certificate: a certificate authority for its own sites only
    /// (RFC 5280: basicConstraints cA with path length 0, keyUsage keyCertSign and cRLSign).
    static func trustCertificate(code: String, key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let name = try trustName(code: code)
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        return try der(try Certificate(
            version: .v3, serialNumber: trustSerial(of: key.publicKey.rawRepresentation), publicKey: publicKey,
            notValidBefore: selfSignedNotBefore, notValidAfter: notAfter, issuer: name, subject: name,
            signatureAlgorithm: .ed25519, extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(key)))
    }

    /// A trust certificate's serial number, from its key: so every enrolment a trust issues
    /// carries the very same trust certificate (its times are fixed and Ed25519 signatures are
    /// deterministic), which a reader checks once however many enrolments carry it. Nothing in
    /// it is chosen by anyone but the trust, so a predictable serial gives nothing away.
    /// Sixteen bytes of the key's SHA-256, the first made positive and non-zero (DER).
    static func trustSerial(of publicKey: Data) -> Certificate.SerialNumber {
        var bytes = Array(SHA256.hash(data: publicKey).prefix(16))
        bytes[0] = bytes[0] & 0x7F | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// A site certificate issued by the trust key: an end entity for TLS client and server
    /// authentication. `issued` is its notBefore.
    static func siteCertificate(request: EnrolmentRequest, issued: Date, trustKey: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let sitePublicKey = Certificate.PublicKey(try Curve25519.Signing.PublicKey(rawRepresentation: request.site.bytes))
        let trustPublicKey = Certificate.PublicKey(trustKey.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectKeyIdentifier(hash: sitePublicKey)
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: trustPublicKey).keyIdentifier)
        }
        return try der(try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: sitePublicKey,
            notValidBefore: issued, notValidAfter: notAfter, issuer: try trustName(code: request.trustCode),
            subject: try siteName(trust: request.trustCode, site: request.siteName, kind: request.kind),
            signatureAlgorithm: .ed25519, extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(trustKey)))
    }

    /// A site's own certificate, for the time before its enrolment reaches it.
    static func selfSigned(key: Curve25519.Signing.PrivateKey, name: DistinguishedName) throws -> [UInt8] {
        try der(try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: selfSignedNotBefore, notValidAfter: notAfter, issuer: name, subject: name,
            signatureAlgorithm: .ed25519, extensions: Certificate.Extensions(), issuerPrivateKey: Certificate.PrivateKey(key)))
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

/// A trust certificate read and checked: self-signed by its own key, naming its trust. Every
/// enrolment of a trust carries the same one, so the check is kept by the certificate's digest
/// for the life of the process (a national directory holds a few hundred among thousands of
/// enrolments; each check is a parse and a signature). One read from a record held
/// (``SignaturePolicy/takenAsChecked``) is kept apart, and a checked one answers for both.
struct CheckedTrustCertificate: Sendable {
    let subject: DistinguishedName
    let key: [UInt8]
    let code: String

    private static let checked = DigestCache<Result<CheckedTrustCertificate, IdentityError>>(limit: 4_096)
    private static let takenAsChecked = DigestCache<Result<CheckedTrustCertificate, IdentityError>>(limit: 4_096)

    static func check(_ der: [UInt8], signatures: SignaturePolicy = .check) throws(IdentityError) -> CheckedTrustCertificate {
        let digest = Array(SHA256.hash(data: der))
        if let known = checked.value(for: digest) { return try known.get() }
        let memo = signatures.checks ? checked : takenAsChecked
        if let known = memo.value(for: digest) { return try known.get() }
        let result: Result<CheckedTrustCertificate, IdentityError>
        do { result = .success(try read(der, signatures: signatures)) } catch { result = .failure(error) }
        memo.store(result, for: digest)
        return try result.get()
    }

    private static func read(_ der: [UInt8], signatures: SignaturePolicy) throws(IdentityError) -> CheckedTrustCertificate {
        let trust = try SiteCertificates.parse(der, "trust")
        let key = try SiteCertificates.ed25519Key(of: trust, "trust")
        guard trust.subject == trust.issuer, !signatures.checks || SiteCertificates.isSigned(trust, byKey: key),
              SiteCertificates.attribute(.RDNAttributeType.organizationalUnitName, of: trust.subject) == "trust",
              let code = SiteCertificates.attribute(.RDNAttributeType.commonName, of: trust.subject) else {
            throw IdentityError("the trust certificate is not a qisync trust certificate signed by its own key")
        }
        return CheckedTrustCertificate(subject: trust.subject, key: key, code: code)
    }
}

/// A site's admission to a trust, verified: the trust key signed a certificate for the site's
/// key, and, in a directory record, the site consented to join that trust (its key signed the
/// enrolment request), so no trust can enrol another trust's site.
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
    /// When the trust issued it (the site certificate's notBefore): of a trust's enrolments of
    /// one key, the latest issued is the current one.
    public let issued: Date
    /// The site key's signature of its enrolment request (``EnrolmentRequest/consent``): nil for
    /// a certificate chain presented in a TLS handshake, which proves the key by itself.
    public let consent: [UInt8]?

    /// The trust key's fingerprint.
    public let trustFingerprint: KeyFingerprint

    /// Issues an enrolment for the site that made `request`: the hub's `enrol`. `issued` must be
    /// later than any earlier enrolment of the same key, so this one becomes current.
    public static func issue(request: EnrolmentRequest, issued: Date = Date(), by trustKey: TrustKey) throws(IdentityError) -> Enrolment {
        do {
            let trustCertificate = try SiteCertificates.trustCertificate(code: request.trustCode, key: trustKey.key)
            // X.509 times are whole seconds: round down, never into the future.
            let seconds = Date(timeIntervalSince1970: issued.timeIntervalSince1970.rounded(.down))
            let siteCertificate = try SiteCertificates.siteCertificate(request: request, issued: seconds, trustKey: trustKey.key)
            return try Enrolment(siteCertificate: siteCertificate, trustCertificate: trustCertificate, consent: request.consent)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError("could not make the enrolment certificate: \(error)")
        }
    }

    /// Reads and verifies a certificate pair: the trust certificate is self-signed by its key,
    /// and the site certificate is issued by that trust to an Ed25519 key. With `consent`, also
    /// checks that the site key signed its request to join that trust under that name and kind.
    public init(siteCertificate: [UInt8], trustCertificate: [UInt8], consent: [UInt8]? = nil) throws(IdentityError) {
        try self.init(siteCertificate: siteCertificate, trustCertificate: trustCertificate, consent: consent, signatures: .check)
    }

    init(siteCertificate: [UInt8], trustCertificate: [UInt8], consent: [UInt8]?, signatures: SignaturePolicy) throws(IdentityError) {
        let trust = try CheckedTrustCertificate.check(trustCertificate, signatures: signatures)
        let site = try SiteCertificates.parse(siteCertificate, "site")
        let (trustKey, trustCode) = (trust.key, trust.code)
        guard site.issuer == trust.subject, !signatures.checks || SiteCertificates.isSigned(site, byKey: trustKey) else {
            throw IdentityError("the site certificate was not issued by trust \(trustCode)'s key")
        }
        let siteKey = try SiteCertificates.ed25519Key(of: site, "site")
        guard SiteCertificates.attribute(.RDNAttributeType.organizationName, of: site.subject) == trustCode,
              let siteName = SiteCertificates.attribute(.RDNAttributeType.commonName, of: site.subject),
              let kind = SiteCertificates.attribute(.RDNAttributeType.organizationalUnitName, of: site.subject),
              ["hub", "ward"].contains(kind) else {
            throw IdentityError("the site certificate does not name its trust, site and kind (hub or ward)")
        }
        let origin = try! OriginID(bytes: siteKey)
        if let consent, signatures.checks, !SignatureCheck.isValid(consent, of: EnrolmentRequest.message(trustCode: trustCode, siteName: siteName, kind: kind, site: origin),
                                                 by: origin) {
            throw IdentityError("the enrolment of \(trustCode)/\(siteName) does not carry that site's own consent (its key's signature of its request to join \(trustCode)); a trust may enrol only sites that asked to join it")
        }
        self.site = origin
        self.trustCode = trustCode
        self.siteName = siteName
        self.kind = kind
        self.trustKey = trustKey
        trustFingerprint = KeyFingerprint(publicKey: trustKey)
        self.siteCertificate = siteCertificate
        self.trustCertificate = trustCertificate
        self.consent = consent
        issued = site.notValidBefore
    }

    /// Reads and verifies an enrolment record from the directory or the wire:
    /// `siteCertificate:bytes trustCertificate:bytes consent:sig64`.
    public init(record: DirectoryRecord) throws(IdentityError) {
        try self.init(record: record, signatures: .check)
    }

    init(record: DirectoryRecord, signatures: SignaturePolicy) throws(IdentityError) {
        let (site, trust, consent) = try Self.parts(of: record)
        try self.init(siteCertificate: site, trustCertificate: trust, consent: consent, signatures: signatures)
    }

    /// An enrolment record's parts: `siteCertificate:bytes trustCertificate:bytes consent:sig64`.
    private static func parts(of record: DirectoryRecord) throws(IdentityError) -> (site: [UInt8], trust: [UInt8], consent: [UInt8]) {
        guard record.kind == .enrolment, record.bytes.count <= DirectoryRecord.maxBytes else { throw IdentityError("not an enrolment record") }
        var reader = ByteReader(record.bytes)
        do {
            let site = try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "site certificate")
            let trust = try reader.readLengthPrefixed(limit: DirectoryRecord.maxBytes, "trust certificate")
            let consent = try reader.readBytes(64)
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
            return (site, trust, consent)
        } catch {
            throw IdentityError("the enrolment record is malformed: \(error)")
        }
    }

    /// What reading its certificates found — the site's key, trust, name and kind, the trust's
    /// key and the time of issue — kept beside a held record (``VerifiedRecord/recallHeld(_:)``)
    /// so that a later process need not parse its certificates again: parsing every enrolment
    /// of a national directory was half of a one-shot command's time. Version 1:
    /// `1 site:32 trustKey:32 trustCode:string siteName:string kind:string issued:u64` (the
    /// issue time's seconds as the bits of a double, so it is kept exactly).
    public var reading: [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.write(byte: 1)
        writer.write(raw: site.bytes)
        writer.write(raw: trustKey)
        writer.write(string: trustCode)
        writer.write(string: siteName)
        writer.write(string: kind)
        writer.write(uint64: issued.timeIntervalSince1970.bitPattern)
        return writer.bytes
    }

    /// An enrolment from a record held and the ``reading`` kept with it, without parsing its
    /// certificates or checking its signatures: both were done when the record was kept, and
    /// `verify` compares each reading with its record.
    init(record: DirectoryRecord, reading: [UInt8]) throws(IdentityError) {
        (siteCertificate, trustCertificate, consent) = try Self.parts(of: record)
        do {
            var reader = ByteReader(reading)
            guard try reader.readByte() == 1 else { throw DecodingError("an unknown reading version") }
            site = try OriginID(bytes: try reader.readBytes(32))
            trustKey = try reader.readBytes(32)
            trustCode = try reader.readString(limit: DirectoryRecord.maxBytes, "trust code")
            siteName = try reader.readString(limit: DirectoryRecord.maxBytes, "site name")
            kind = try reader.readString(limit: DirectoryRecord.maxBytes, "kind")
            issued = Date(timeIntervalSince1970: Double(bitPattern: try reader.readUInt64()))
            guard reader.isAtEnd else { throw DecodingError("trailing bytes") }
        } catch {
            throw IdentityError("the enrolment's reading kept with it cannot be read: \(error)")
        }
        trustFingerprint = KeyFingerprint(publicKey: trustKey)
    }

    /// The record that carries it (it must carry the site's consent).
    public var record: DirectoryRecord {
        var writer = ByteWriter()
        writer.write(lengthPrefixed: siteCertificate)
        writer.write(lengthPrefixed: trustCertificate)
        writer.write(raw: consent ?? [UInt8](repeating: 0, count: 64))
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
