import Foundation
import QISyncCore
import QISyncDomain
import QISyncIdentity
import QISyncStore
import Testing

/// Key files and scratch files on disk.
@Suite("Keys and scratch files on disk")
struct KeyFileTests {
    let harness: TestReplicas
    init() throws { harness = try TestReplicas() }

    func mode(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int) ?? -1
    }

    @Test("key files are private from the first byte, never overwritten, and a readable one is warned about")
    func keys() throws {
        let replica = try harness.make("hub")
        let site = replica.home.appendingPathComponent(Replica.keyName), trust = replica.home.appendingPathComponent(TrustKey.fileName)
        #expect(try mode(site) == 0o600 && mode(trust) == 0o600)
        #expect(throws: IdentityError.self) { try SecretFile.create(site, bytes: Array(repeating: 1, count: 32)) }
        #expect(throws: IdentityError.self) { try TrustKey().write(to: trust) }
        #expect(try Replica.open(home: replica.home, schema: QISchema.schema).keyWarnings.isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: site.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: trust.path)
        let warnings = try Replica.open(home: replica.home, schema: QISchema.schema).keyWarnings
        #expect(warnings.count == 2 && warnings.allSatisfy { $0.contains("chmod 600") })
    }

    @Test("verify's scratch rebuild is made beside the replica and removed; one left by a crash goes at the next open")
    func scratch() throws {
        let replica = try harness.make("hub")
        #expect(try replica.verify().isSound)
        let leftovers = { try FileManager.default.contentsOfDirectory(atPath: replica.home.path).filter { $0.hasPrefix(".verify-scratch-") } }
        #expect(try leftovers().isEmpty)
        #expect(FileManager.default.createFile(atPath: replica.home.appendingPathComponent(".verify-scratch-crashed.sqlite").path, contents: Data([1])))
        _ = try Replica.open(home: replica.home, schema: QISchema.schema)
        #expect(try leftovers().isEmpty)
    }
}
