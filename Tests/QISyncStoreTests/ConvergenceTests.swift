import Foundation
import QISyncCore
import QISyncDomain
@testable import QISyncStore
import GRDB
import Testing

/// The merge laws as properties: replicas doing random writes, deletes, restores and tag edits,
/// exchanging entries in random orders with duplicates and gaps, end byte-identical, and every
/// cell's heads and value agree with a tiny reference model of the multi-value register.
@Suite("Convergence of random concurrent edits")
struct ConvergenceTests {
    static let initiative = RecordKind.initiative.table.id
    static let learning = RecordKind.learning.table.id
    static let sofft = QISchema.schema.table(named: "learning_sofft")!.id

    struct Simulation {
        var rng: SplitMix64
        let replicas: [Replica]
        let harness: TestReplicas
        var keys: [(table: UInt16, key: [UInt8])] = []
        var learningIDs: [[UInt8]] = []

        init(seed: UInt64) throws {
            var rng = SplitMix64(seed: seed)
            let harness = try TestReplicas()
            let count = Int.random(in: 3...5, using: &rng)
            replicas = try (0..<count).map { try harness.make("r\($0)", keySeed: seed &* 31 &+ UInt64($0)) }
            self.rng = rng
            self.harness = harness
        }

        mutating func newKey() -> [UInt8] { RecordID.random(owner: "RXH", using: &rng).bytes }

        func knows(_ replica: Replica, _ table: UInt16, _ key: [UInt8]) throws -> Bool {
            try !replica.heads(table: table, key: key, column: 0).isEmpty
        }

        mutating func step() throws {
            let replica = replicas.randomElement(using: &rng)!
            harness.clock.advance(UInt64.random(in: 0...2, using: &rng))
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<12:
                let key = newKey()
                keys.append((ConvergenceTests.initiative, key))
                try replica.write(scope: .trust, edits: [RowEdit(table: ConvergenceTests.initiative, key: key, values: [
                    (0, .integer(1)), (1, .text("RXH")), (2, .text("trust")), (4, .text("title \(keys.count)")), (9, .text("proposed")),
                ])])
            case 12..<20:
                let key = newKey()
                keys.append((ConvergenceTests.learning, key))
                learningIDs.append(key)
                try replica.write(scope: .trust, edits: [RowEdit(table: ConvergenceTests.learning, key: key, values: [
                    (0, .integer(1)), (6, .text("learnt \(learningIDs.count)")), (7, .text("neutral")),
                ])])
            case 20..<50:
                guard let (table, key) = keys.randomElement(using: &rng), try knows(replica, table, key) else { return }
                let column: UInt16 = table == ConvergenceTests.initiative ? [4, 9, 10].randomElement(using: &rng)! : [6, 7].randomElement(using: &rng)!
                let value: Value = switch column {
                case 9: .text(Vocabulary.statuses.randomElement(using: &rng)!)
                case 10: .real(Double(Int.random(in: 1...10, using: &rng)) / 2)
                case 7: .text(Vocabulary.effects.randomElement(using: &rng)!)
                default: .text("edit \(Int.random(in: 0..<1000, using: &rng))")
                }
                // Sometimes two fields in one change.
                var values: [(UInt16, Value)] = [(column, value)]
                if table == ConvergenceTests.initiative && column != 4 && Bool.random(using: &rng) { values.append((4, .text("both \(column)"))) }
                // An edit of a record deleted here is refused (restore it first): nothing to do.
                do { try replica.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: values)]) } catch is StoreError {}
            case 50..<62:
                guard let (table, key) = keys.randomElement(using: &rng), try knows(replica, table, key) else { return }
                try replica.write(scope: .trust, edits: [RowEdit(table: table, key: key, values: [(0, .integer(Int64.random(in: 0...1, using: &rng)))])])
            case 62..<75:
                guard let parent = learningIDs.randomElement(using: &rng), try knows(replica, ConvergenceTests.learning, parent) else { return }
                let tag = Vocabulary.soffts.randomElement(using: &rng)!.code
                do {
                    try replica.write(scope: .trust, edits: [RowEdit(table: ConvergenceTests.sofft, key: parent + Array(tag.utf8),
                                                                       values: [(0, .integer(Int64.random(in: 0...1, using: &rng)))])])
                } catch is StoreError {}
            default:
                let from = replicas.randomElement(using: &rng)!
                let to = replicas.randomElement(using: &rng)!
                guard from !== to else { return }
                try deliver(from: from, to: to, everything: false)
            }
        }

        /// Sends some or all of what `from` holds to `to`: shuffled, in chunks, with duplicates.
        mutating func deliver(from: Replica, to: Replica, everything: Bool) throws {
            var entries = try from.entries(after: VersionVector())
            entries.shuffle(using: &rng)
            if !everything { entries = Array(entries.prefix(Int.random(in: 0...entries.count, using: &rng))) }
            let duplicates = entries.isEmpty ? [] : (0..<Int.random(in: 0...3, using: &rng)).map { _ in entries.randomElement(using: &rng)! }
            entries += duplicates
            entries.shuffle(using: &rng)
            while !entries.isEmpty {
                let chunk = Int.random(in: 1...max(1, entries.count), using: &rng)
                try to.apply(Array(entries.prefix(chunk)))
                entries.removeFirst(chunk)
            }
        }

        mutating func exchangeAll() throws {
            for from in replicas {
                for to in replicas where from !== to { try deliver(from: from, to: to, everything: true) }
            }
        }
    }

    @Test("replicas converge byte for byte and match the register model", arguments: 0..<24)
    func converge(seed: UInt64) throws {
        var simulation = try Simulation(seed: seed)
        for _ in 0..<Int.random(in: 40...90, using: &simulation.rng) { try simulation.step() }
        try simulation.exchangeAll()

        let states = try simulation.replicas.map { try $0.canonicalState() }
        for (index, state) in states.enumerated().dropFirst() where state != states[0] {
            Issue.record("seed \(seed): replica \(index) differs from replica 0: \(state.differences(from: states[0]))")
        }
        for replica in simulation.replicas {
            #expect(try replica.waitingEntryCount() == 0)
            #expect(try replica.versionVector() == simulation.replicas[0].versionVector())
        }
        try checkAgainstModel(simulation.replicas[0])
    }

    @Test("a converged replica passes verify")
    func verifyAfterConvergence() throws {
        var simulation = try Simulation(seed: 99)
        for _ in 0..<60 { try simulation.step() }
        try simulation.exchangeAll()
        for replica in simulation.replicas {
            let report = try replica.verify()
            #expect(report.isSound, "\(report.logProblems) \(report.differences)")
        }
    }

    @Test("verify's folded rebuild gives the materializer's digests on random histories: mid-way (supersessions waiting, entries missing) and converged, in one partition and in many spilled to files")
    func foldedRebuild() throws {
        let spilled = FoldedRebuild.Tuning(entriesPerPartition: 4, maximumPartitions: 7, bufferBytes: 64)
        var waitingSupersessions = 0, conflicts = 0
        for seed in UInt64(500)..<512 {
            var simulation = try Simulation(seed: seed)
            func check(_ when: String) throws {
                for (index, replica) in simulation.replicas.enumerated() {
                    let queue = try DatabaseQueue(path: replica.databasePath)
                    try queue.read { db in
                        waitingSupersessions += try Int.fetchOne(db, sql: "SELECT count(*) FROM pending_supersede") ?? 0
                        conflicts += try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0
                    }
                    try queue.close()
                    for tuning in [FoldedRebuild.Tuning(), spilled] {
                        let report = try replica.verify(fold: tuning)
                        #expect(report.isSound && !report.rebuiltInScratch,
                                "seed \(seed), \(when), replica \(index), \(tuning): \(report.differences) \(report.logProblems)")
                    }
                }
            }
            for round in 0..<3 {
                for _ in 0..<Int.random(in: 30...60, using: &simulation.rng) { try simulation.step() }
                try check("after round \(round)")
            }
            try simulation.exchangeAll()
            try check("converged")
        }
        // The histories reach what the fold must get right.
        #expect(waitingSupersessions > 0 && conflicts > 0, "\(waitingSupersessions) supersessions waiting, \(conflicts) conflicts")
    }

    /// The oracle: a cell's heads are the writes no other write to it supersedes; the shown value is the newest head.
    func checkAgainstModel(_ replica: Replica) throws {
        struct Write { let ref: VersionRef; let stamp: Stamp; let value: Value; let supersedes: [VersionRef] }
        var cells: [String: (table: UInt16, key: [UInt8], column: UInt16, writes: [Write])] = [:]
        for entry in try replica.entries(after: VersionVector()) {
            for row in try entry.change().rows {
                for cell in row.cells {
                    let id = "\(row.table)/\(Hex.encode(row.key))/\(cell.column)"
                    cells[id, default: (row.table, row.key, cell.column, [])].writes.append(
                        Write(ref: entry.ref, stamp: Stamp(hlc: entry.hlc, origin: entry.origin), value: cell.value, supersedes: cell.supersedes))
                }
            }
        }
        var conflicts = 0
        for (_, cell) in cells {
            let superseded = Set(cell.writes.flatMap(\.supersedes))
            let heads = cell.writes.filter { !superseded.contains($0.ref) }.sorted { $0.stamp > $1.stamp }
            let actual = try replica.heads(table: cell.table, key: cell.key, column: cell.column)
            #expect(Set(actual.map(\.ref)) == Set(heads.map(\.ref)))
            #expect(actual.first?.value == heads.first?.value)
            if Set(heads.map(\.value)).count > 1 { conflicts += 1 }
        }
        #expect(try replica.conflicts().count == conflicts)
    }
}
