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
            let finding = Checker.check(History(codes: codes), shape: Checker.Shape(trusts: 2, wards: 1))
            #expect(finding.problems.isEmpty, "\(finding)\n\(History(codes: codes))\n\(finding.log.joined(separator: "\n"))")
        }
    }

    @Test("three trusts, longer histories", arguments: 0..<12)
    func threeTrusts(seed: UInt64) {
        let history = History.random(seed: 10_000 + seed, length: 90)
        let finding = Checker.check(history, shape: Checker.Shape(trusts: 3, wards: 2), seed: seed)
        #expect(finding.problems.isEmpty, "\(finding)\n\(history)\n\(finding.log.joined(separator: "\n"))")
    }
}
