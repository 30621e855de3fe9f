import Foundation
import PropertyBased
import QISyncCore
import QISyncModelCheck
import Testing

/// Model-based convergence across trusts: random histories of every record operation, syncs
/// (some cut off part-way), bundles imported late and twice, raw deliveries with and without
/// signatures, enrolments, revocations, pins and unpins; after a final exchange every replica
/// must agree with its trust's other replicas and with the reference model, and pass verify.
/// A failure is shrunk (swift-property-based) to a short history, printed with its codes.
@Suite("Model-based convergence across trusts")
struct ModelConvergenceTests {
    /// How many histories the README's test command runs; QISYNC_MODEL_HISTORIES overrides it.
    static let histories = ProcessInfo.processInfo.environment["QISYNC_MODEL_HISTORIES"].flatMap(Int.init) ?? 1000

    @Test("random histories converge to the reference model", .timeLimit(.minutes(20)))
    func histories() async {
        await propertyCheck(count: Self.histories, input: Gen.uint64().array(of: 10...40)) { codes in
            let finding = await onOwnThread { Checker.check(History(codes: codes), shape: Checker.Shape(trusts: 2, wards: 1)) }
            #expect(finding.problems.isEmpty, "\(finding)\n\(History(codes: codes))\n\(finding.log.joined(separator: "\n"))")
        }
    }

    @Test("three trusts, longer histories", arguments: 0..<12)
    func threeTrusts(seed: UInt64) async {
        let history = History.random(seed: 10_000 + seed, length: 90)
        let finding = await onOwnThread { Checker.check(history, shape: Checker.Shape(trusts: 3, wards: 2), seed: seed) }
        #expect(finding.problems.isEmpty, "\(finding)\n\(history)\n\(finding.log.joined(separator: "\n"))")
    }

    /// Histories the checker found failing, shrunk, kept so they stay fixed: (what it found,
    /// world seed, trusts, wards, codes).
    static let regressions: [(String, UInt64, Int, Int, [UInt64])] = [
        ("a trust unpinned at a ward after its entries arrived: verify lost those sites' trust", 159, 3, 2,
         [0x6da3f41c29b679e0, 0x38f40026d4fd9a7, 0x6f77484939512bc9, 0x6f4943f45a057387, 0x2ba0db7da0f36a52, 0x28288a2fb6cf5814]),
        ("a redacted entry relayed to another trust's ward that does not pin its trust: refused as forged before being refused as unknown", 905, 2, 2,
         [0x5e13e3d443ec477b, 0xe406c69346584141, 0x29443a52ea2e1d66, 0x279ec0c23d687c38]),
    ]

    @Test("histories that once failed stay fixed", arguments: 0..<regressions.count)
    func regression(index: Int) {
        let (what, seed, trusts, wards, codes) = Self.regressions[index]
        let finding = Checker.check(History(codes: codes), shape: Checker.Shape(trusts: trusts, wards: wards), seed: seed)
        #expect(finding.problems.isEmpty, "\(what): \(finding)\n\(finding.log.joined(separator: "\n"))")
    }
}
