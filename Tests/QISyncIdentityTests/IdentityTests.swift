import Foundation
import QISyncCore
import QISyncIdentity
import Testing

/// An enrolment of `site` in `trust`, from the site's own request.
func issue(_ site: SiteSigner, _ name: String, _ kind: String, _ trust: String, by key: TrustKey, issued: Date = Date()) throws -> Enrolment {
    try Enrolment.issue(request: EnrolmentRequest(trustCode: trust, siteName: name, kind: kind, signer: site), issued: issued, by: key)
}

@Suite("Trust keys, fingerprints, enrolments and revocations")
struct IdentityTests {
    let trustKey = TrustKey()
    let site = SiteSigner()

    @Test("a fingerprint prints as 16 groups and parses back however it was typed")
    func fingerprint() throws {
        let fingerprint = trustKey.fingerprint
        let text = fingerprint.description
        #expect(text.split(separator: "-").count == 16 && text.count == 79)
        #expect(try KeyFingerprint(parsing: text) == fingerprint)
        #expect(try KeyFingerprint(parsing: text.replacingOccurrences(of: "-", with: " ").lowercased()) == fingerprint)
        #expect(try KeyFingerprint(parsing: text.replacingOccurrences(of: "-", with: ":")) == fingerprint)
        #expect(throws: IdentityError.self) { try KeyFingerprint(parsing: String(text.dropLast())) }
        #expect(throws: IdentityError.self) { try KeyFingerprint(parsing: "XYZ") }
    }

    @Test("an issued enrolment verifies and names its trust, site, kind and keys")
    func enrolment() throws {
        let enrolment = try issue(site, "ward 7B", "ward", "RXH", by: trustKey)
        #expect(enrolment.site == site.origin && enrolment.trustCode == "RXH" && enrolment.siteName == "ward 7B" && enrolment.kind == "ward")
        #expect(enrolment.trustFingerprint == trustKey.fingerprint)
        #expect(try Enrolment(record: enrolment.record) == enrolment)
        #expect(try Enrolment.read(fileText: enrolment.fileText()).enrolment == enrolment)
        let extra = TrustBundleKey(trustKey: trustKey).record
        let read = try Enrolment.read(fileText: enrolment.fileText(with: [enrolment.record, extra]))
        #expect(read.enrolment == enrolment && read.others == [extra])
    }

    @Test("a site certificate from another trust key, or altered, does not verify")
    func forgedEnrolment() throws {
        let genuine = try issue(site, "ward", "ward", "RXH", by: trustKey)
        let rogue = try issue(site, "ward", "ward", "RXH", by: TrustKey())
        // The rogue's site certificate presented with the genuine trust certificate.
        #expect(throws: IdentityError.self) { try Enrolment(siteCertificate: rogue.siteCertificate, trustCertificate: genuine.trustCertificate) }
        for index in stride(from: 10, to: genuine.siteCertificate.count, by: 37) {
            var altered = genuine.siteCertificate
            altered[index] ^= 0x01
            #expect(throws: IdentityError.self) { try Enrolment(siteCertificate: altered, trustCertificate: genuine.trustCertificate) }
        }
        #expect(throws: IdentityError.self) { try Enrolment.read(fileText: "qisync-enrolment 1\nnot base64!\n") }
        #expect(throws: IdentityError.self) { try Enrolment.read(fileText: "hello\n") }
    }

    @Test("every enrolment a trust issues carries the very same trust certificate; another trust's differs")
    func oneTrustCertificate() throws {
        let ward = try issue(SiteSigner(), "Ward 1, Bangor", "ward", "RXH", by: trustKey)
        let hub = try issue(SiteSigner(), "Hub", "hub", "RXH", by: trustKey, issued: Date().addingTimeInterval(3_600))
        #expect(ward.trustCertificate == hub.trustCertificate)
        let other = try issue(SiteSigner(), "Ward 1, Bangor", "ward", "RXH", by: TrustKey())
        #expect(other.trustCertificate != ward.trustCertificate)
    }

    @Test("records verified together (those new to the process on every core) each get their own answer, in order: a trust certificate checked once still refuses an altered copy")
    func verifyingMany() throws {
        let genuine = try (0..<150).map { try issue(SiteSigner(), "Ward \($0), Llanelli", "ward", "RXH", by: trustKey) }
        func record(_ enrolment: Enrolment, alteringTrustAt offset: Int? = nil, alteringSiteAt siteOffset: Int? = nil) -> DirectoryRecord {
            var trust = enrolment.trustCertificate, site = enrolment.siteCertificate
            if let offset { trust[trust.count - offset] ^= 0x01 }
            if let siteOffset { site[site.count - siteOffset] ^= 0x01 }
            var writer = ByteWriter()
            writer.write(lengthPrefixed: site)
            writer.write(lengthPrefixed: trust)
            writer.write(raw: enrolment.consent!)
            return DirectoryRecord(kind: .enrolment, bytes: writer.bytes)
        }
        var records = genuine.map { record($0) }
        // Its trust certificate's signature altered (every other record carries that certificate intact), and its own site certificate's.
        records[40] = record(genuine[40], alteringTrustAt: 5)
        records[120] = record(genuine[120], alteringSiteAt: 5)
        // Some already verified in this process, the rest not.
        for index in stride(from: 0, to: records.count, by: 3) { _ = VerifiedRecord.verify(records[index]) }
        let results = VerifiedRecord.verifyAll(records)
        #expect(results.count == records.count)
        for (index, result) in results.enumerated() {
            switch result {
            case .success(.enrolment(let enrolment)):
                #expect(index != 40 && index != 120 && enrolment.site == genuine[index].site, "record \(index)")
            default:
                #expect(index == 40 || index == 120, "record \(index): \(result)")
            }
        }
        // The altered trust certificate is refused whether or not the genuine one was checked first.
        #expect(throws: IdentityError.self) { try Enrolment(record: record(genuine[7], alteringTrustAt: 9)) }
    }

    @Test("records a replica holds are read without their signatures checked again, but still read as records; a held reading never stands in for a check")
    func heldRecordsTakenAsChecked() throws {
        let enrolment = try issue(SiteSigner(), "Ward 3, Aberystwyth", "ward", "RXH", by: trustKey)
        var bytes = enrolment.record.bytes
        bytes[bytes.count - 1] ^= 0x01  // the site's consent
        let altered = DirectoryRecord(kind: .enrolment, bytes: bytes)
        var revocationBytes = Revocation.issue(site: site.origin, lastAccepted: [:], at: 1_796_000_000_000, by: trustKey).record.bytes
        revocationBytes[revocationBytes.count - 1] ^= 0x01
        let alteredRevocation = DirectoryRecord(kind: .revocation, bytes: revocationBytes)
        let truncated = DirectoryRecord(kind: .enrolment, bytes: Array(enrolment.record.bytes.dropLast(10)))

        let held = VerifiedRecord.readHeld([altered, alteredRevocation, truncated, enrolment.record])
        guard case .success(.enrolment(let read)) = held[0] else { Issue.record("\(held[0])"); return }
        #expect(read.site == enrolment.site && read.siteName == "Ward 3, Aberystwyth" && read.trustFingerprint == trustKey.fingerprint)
        guard case .success(.revocation(let revocation)) = held[1] else { Issue.record("\(held[1])"); return }
        #expect(revocation.site == site.origin)
        // What does not read as a record fails however it is read.
        guard case .failure = held[2] else { Issue.record("a truncated record read: \(held[2])"); return }
        guard case .success = held[3] else { Issue.record("\(held[3])"); return }
        // Read as held first, checked after: the checks still run and refuse.
        guard case .failure(let error) = VerifiedRecord.verify(altered) else { Issue.record("an altered enrolment verified"); return }
        #expect(error.message.contains("consent"), "\(error)")
        guard case .failure = VerifiedRecord.verifyAll([alteredRevocation])[0] else { Issue.record("an altered revocation verified"); return }
        #expect(throws: IdentityError.self) { try Enrolment(record: altered) }
    }

    @Test("an enrolment request round-trips; an altered one is refused")
    func request() throws {
        let request = EnrolmentRequest(trustCode: "RXH", siteName: "ward-7b", kind: "ward", signer: site)
        let parsed = try EnrolmentRequest(parsing: "  " + request.text + "\n")
        #expect(parsed == request && parsed.site == site.origin)
        var characters = Array(request.text)
        let index = characters.count - 20
        characters[index] = characters[index] == "A" ? "B" : "A"
        #expect(throws: IdentityError.self) { try EnrolmentRequest(parsing: String(characters)) }
        #expect(throws: IdentityError.self) { try EnrolmentRequest(parsing: String(request.text.dropLast(8))) }
        #expect(throws: IdentityError.self) { try EnrolmentRequest(parsing: "qisync-enrolment 1") }
    }

    @Test("a revocation verifies, cuts each log at its position, and any altered byte breaks it")
    func revocation() throws {
        let cut = LogPosition(seq: 4, hash: [UInt8](repeating: 9, count: 32))
        let revocation = Revocation.issue(site: site.origin, lastAccepted: [.trust: cut], at: 1_800_000_000_000, by: trustKey)
        let decoded = try Revocation(record: revocation.record)
        #expect(decoded == revocation)
        #expect(!decoded.refuses(scope: .trust, seq: 4) && decoded.refuses(scope: .trust, seq: 5))
        #expect(decoded.refuses(scope: .shared, seq: 1))
        for index in 0..<revocation.record.bytes.count {
            var bytes = revocation.record.bytes
            bytes[index] ^= 0x80
            #expect(throws: IdentityError.self) { try Revocation(record: DirectoryRecord(kind: .revocation, bytes: bytes)) }
        }
    }

    @Test("a directory's digest does not depend on order or duplicates")
    func digest() throws {
        let a = try issue(site, "a", "ward", "RXH", by: trustKey).record
        let b = Revocation.issue(site: site.origin, lastAccepted: [:], at: 1, by: trustKey).record
        #expect(DirectoryRecord.digest(of: [a, b]) == DirectoryRecord.digest(of: [b, a, b]))
        #expect(DirectoryRecord.digest(of: [a]) != DirectoryRecord.digest(of: [a, b]))
        #expect(DirectoryRecord.digest(of: []) == [UInt8](repeating: 0, count: 32))
    }

    @Test("the directory accepts pinned, enrolled, unrevoked peers and says why it refuses the others")
    func peers() throws {
        let own = SiteSigner()
        var directory = TrustDirectory(ownTrust: "RXH", ownSite: own.origin, pins: ["RXH": trustKey.fingerprint])
        let enrolment = try issue(site, "ward", "ward", "RXH", by: trustKey)
        let chain = [enrolment.siteCertificate, enrolment.trustCertificate]
        #expect(try directory.verifyPeer(chain: chain).get().name == "RXH/ward")
        // Self-signed before enrolment: accepted only once the enrolment is held.
        let lone = try SiteCredentials(signer: site, enrolment: nil, trustCode: "RXH", siteName: "ward", kind: "ward").chain
        guard case .failure(let unknown) = directory.verifyPeer(chain: lone) else { Issue.record("a lone certificate got in"); return }
        #expect(unknown.message.contains("not enrolled"))
        directory.enrolments[site.origin] = enrolment
        #expect(try directory.verifyPeer(chain: lone).get().site == site.origin)
        // Another trust: refused until pinned, with its fingerprint.
        let otherKey = TrustKey(), otherSite = SiteSigner()
        let other = try issue(otherSite, "hub", "hub", "RYJ", by: otherKey)
        guard case .failure(let unpinned) = directory.verifyPeer(chain: [other.siteCertificate, other.trustCertificate]) else { Issue.record("unpinned trust got in"); return }
        #expect(unpinned.message.contains("not pinned"))
        directory.pins["RYJ"] = TrustKey().fingerprint
        guard case .failure(let wrongKey) = directory.verifyPeer(chain: [other.siteCertificate, other.trustCertificate]) else { Issue.record("wrong key got in"); return }
        #expect(wrongKey.message.contains("not the one pinned"))
        directory.pins["RYJ"] = otherKey.fingerprint
        #expect(try directory.verifyPeer(chain: [other.siteCertificate, other.trustCertificate]).get().trustCode == "RYJ")
        // Entry admission.
        directory.enrolments[otherSite.origin] = other
        #expect(directory.refusal(origin: site.origin, scope: .trust, seq: 1) == nil)
        #expect(directory.refusal(origin: otherSite.origin, scope: .shared, seq: 1) == nil)
        #expect(directory.refusal(origin: otherSite.origin, scope: .trust, seq: 1)?.contains("trust-scope") == true)
        #expect(directory.refusal(origin: SiteSigner().origin, scope: .shared, seq: 1)?.contains("not enrolled") == true)
        // Revoked: refused at the handshake, and past the cut-off.
        directory.revocations[site.origin] = Revocation.issue(site: site.origin, lastAccepted: [.trust: LogPosition(seq: 2, hash: [])], at: 5, by: trustKey)
        #expect(throws: IdentityError.self) { try directory.verifyPeer(chain: chain).get() }
        #expect(directory.refusal(origin: site.origin, scope: .trust, seq: 2) == nil)
        #expect(directory.refusal(origin: site.origin, scope: .trust, seq: 3)?.contains("revoked") == true)
        #expect(throws: IdentityError.self) { try directory.verifyPeer(chain: []).get() }
        #expect(throws: IdentityError.self) { try directory.verifyPeer(chain: [[1, 2, 3]]).get() }
    }
}

@Suite("Record ownership")
struct OwnershipTests {
    let schema = ReplicatedSchema(tables: [
        TableSpec(id: 1, name: "site", columns: [ColumnSpec(1, "trust", .text(maxLength: 5))], ownership: .originKey),
        TableSpec(id: 2, name: "initiative", columns: [ColumnSpec(1, "owner_trust", .text(maxLength: 5)), ColumnSpec(4, "title", .text(maxLength: 200))],
                  ownership: .record(ownerColumn: 1)),
        TableSpec(id: 5, name: "learning_sofft", kind: .set(parentTable: "learning")),
    ])
    let origin = SiteSigner().origin

    func change(_ table: UInt16, _ key: [UInt8], _ cells: [CellWrite] = [CellWrite(column: 0, value: .integer(1))]) -> Change {
        Change(rows: [RowWrite(table: table, key: key, cells: cells)])
    }

    @Test("a trust writes its own records, their tags and its own site row; nothing else")
    func rules() {
        let mine = RecordID.random(owner: "RXH"), theirs = RecordID.random(owner: "RYJ")
        #expect(mine.isOwned(byTrust: "RXH") && !mine.isOwned(byTrust: "RYJ"))
        #expect(schema.ownershipViolation(of: change(2, mine.bytes), origin: origin, trust: "RXH", trustKey: nil) == nil)
        #expect(schema.ownershipViolation(of: change(2, theirs.bytes), origin: origin, trust: "RXH", trustKey: nil) != nil)
        #expect(schema.ownershipViolation(of: change(2, mine.bytes, [CellWrite(column: 1, value: .text("RYJ"))]), origin: origin, trust: "RXH", trustKey: nil) != nil)
        #expect(schema.ownershipViolation(of: change(2, mine.bytes, [CellWrite(column: 1, value: .text("RXH"))]), origin: origin, trust: "RXH", trustKey: nil) == nil)
        #expect(schema.ownershipViolation(of: change(5, mine.bytes + Array("S1".utf8)), origin: origin, trust: "RXH", trustKey: nil) == nil)
        #expect(schema.ownershipViolation(of: change(5, theirs.bytes + Array("S1".utf8)), origin: origin, trust: "RXH", trustKey: nil) != nil)
        #expect(schema.ownershipViolation(of: change(1, origin.bytes), origin: origin, trust: "RXH", trustKey: nil) == nil)
        #expect(schema.ownershipViolation(of: change(1, SiteSigner().origin.bytes), origin: origin, trust: "RXH", trustKey: nil) != nil)
        // One foreign row spoils the whole change.
        let mixed = Change(rows: change(2, mine.bytes).rows + change(2, theirs.bytes).rows)
        #expect(schema.ownershipViolation(of: mixed, origin: origin, trust: "RXH", trustKey: nil) != nil)
    }
}

@Suite("Certificates a stock validator accepts")
struct StandardCertificateTests {
    /// Writes DER as PEM.
    func pem(_ der: [UInt8], to url: URL) throws {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        try "-----BEGIN CERTIFICATE-----\n\(body)\n-----END CERTIFICATE-----\n".write(to: url, atomically: true, encoding: .utf8)
    }

    func openssl(_ arguments: [String]) throws -> (code: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test("openssl verify accepts an enrolment chain with the trust certificate as the root, and refuses a forged one")
    func opensslVerify() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qisync-x509-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let trustKey = TrustKey(), site = SiteSigner()
        let enrolment = try issue(site, "ward-7b", "ward", "RXH", by: trustKey)
        let trustPEM = folder.appendingPathComponent("trust.pem"), sitePEM = folder.appendingPathComponent("site.pem")
        try pem(enrolment.trustCertificate, to: trustPEM)
        try pem(enrolment.siteCertificate, to: sitePEM)
        let verified = try openssl(["verify", "-x509_strict", "-CAfile", trustPEM.path, sitePEM.path])
        #expect(verified.code == 0 && verified.output.contains("OK"), "\(verified.output)")
        // For TLS use on both sides, as qisync uses it.
        for purpose in ["sslclient", "sslserver"] {
            let check = try openssl(["verify", "-purpose", purpose, "-CAfile", trustPEM.path, sitePEM.path])
            #expect(check.code == 0, "\(purpose): \(check.output)")
        }
        let text = try openssl(["x509", "-in", trustPEM.path, "-noout", "-text"]).output
        #expect(text.contains("CA:TRUE") && text.contains("Certificate Sign"))
        let siteText = try openssl(["x509", "-in", sitePEM.path, "-noout", "-text"]).output
        #expect(siteText.contains("CA:FALSE") && siteText.contains("Digital Signature") && siteText.contains("TLS Web Client Authentication"))
        // Another trust's key cannot stand in as the root.
        let rogue = try issue(site, "ward-7b", "ward", "RXH", by: TrustKey())
        let roguePEM = folder.appendingPathComponent("rogue.pem")
        try pem(rogue.trustCertificate, to: roguePEM)
        #expect(try openssl(["verify", "-CAfile", roguePEM.path, sitePEM.path]).code != 0)
    }
}
