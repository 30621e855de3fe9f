import Foundation
import QISyncCore
import QISyncDomain
import QISyncStore

/// Sentences a QI team might write, from a fixed vocabulary.
struct TextMaker {
    static let words = """
        ward team huddle handover falls sepsis screening pressure ulcer audit chart nurse matron consultant patient \
        family discharge delay bed flow rota staffing night shift weekend escalation pathway bundle checklist training \
        feedback meeting board data measure baseline run chart improvement change idea test cycle learning spread \
        sustain leadership culture support resource time pharmacy therapy observation early warning score deteriorating \
        medication round safety incident report review governance sponsor champion engagement workshop co-design \
        the a of to and in on for with at by from was were helped hindered slowed enabled agreed noticed showed
        """.split(separator: " ").map(String.init)

    static func sentence(length: Int, rng: inout SplitMix64) -> String {
        var text = ""
        while text.count < length {
            text += (text.isEmpty ? "" : " ") + words.randomElement(using: &rng)!
        }
        return String(text.prefix(length))
    }
}


/// A seeded synthetic trust, written into a replica by local writes (one transaction per change).
enum SyntheticTrust {
    struct Stats {
        var changes = 0
        var cells = 0
        var seconds = 0.0
        var initiativeIDs: [[UInt8]] = []
    }

    /// Writes `20,000 × scale` initiatives, `200,000 × scale` learning entries with tags, and
    /// status and score edits of a fifth of the initiatives.
    static func generate(into source: Replica, scale: Double, seed: UInt64) throws -> Stats {
        var rng = SplitMix64(seed: seed)
        let initiatives = Int(20_000 * scale), learning = Int(200_000 * scale)
        let initiativeTable = RecordKind.initiative.table, learningTable = RecordKind.learning.table
        func column(_ kind: RecordKind, _ name: String) -> UInt16 { kind.field(named: name)!.column }
        var ids: [[UInt8]] = []
        var changes = 0, cells = 0
        let start = Date()
        for i in 0..<initiatives {
            let id = RecordID.random(owner: "RXH", using: &rng).bytes
            ids.append(id)
            let values: [(UInt16, Value)] = [
                (0, .integer(1)), (column(.initiative, "owner-trust"), .text("RXH")), (column(.initiative, "scope"), .text("trust")),
                (column(.initiative, "created"), .integer(1_790_000_000_000 + Int64(i))),
                (column(.initiative, "title"), .text(TextMaker.sentence(length: 40, rng: &rng))),
                (column(.initiative, "team"), .text("Ward \(Int.random(in: 1...60, using: &rng))")),
                (column(.initiative, "problem"), .text(TextMaker.sentence(length: 200, rng: &rng))),
                (column(.initiative, "aim"), .text(TextMaker.sentence(length: 100, rng: &rng))),
                (column(.initiative, "method"), .text(Vocabulary.methods.randomElement(using: &rng)!)),
                (column(.initiative, "status"), .text(Vocabulary.statuses.randomElement(using: &rng)!)),
                (column(.initiative, "score"), .real(Double(Int.random(in: 1...10, using: &rng)) / 2)),
                (column(.initiative, "lead"), .text("Ward manager")), (column(.initiative, "sponsor"), .text("Deputy chief nurse")),
            ]
            try source.write(scope: .trust, edits: [RowEdit(table: initiativeTable.id, key: id, values: values)])
            changes += 1
            cells += values.count
        }
        let soffts = QISchema.schema.table(named: "learning_sofft")!.id, skills = QISchema.schema.table(named: "learning_skill")!.id
        for i in 0..<learning {
            let id = RecordID.random(owner: "RXH", using: &rng).bytes
            let values: [(UInt16, Value)] = [
                (0, .integer(1)), (column(.learning, "owner-trust"), .text("RXH")), (column(.learning, "scope"), .text("trust")),
                (column(.learning, "created"), .integer(1_790_000_000_000 + Int64(i))),
                (column(.learning, "initiative"), .blob(ids.randomElement(using: &rng)!)),
                (column(.learning, "date"), .text(String(format: "2026-%02d-%02d", Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng)))),
                (column(.learning, "text"), .text(TextMaker.sentence(length: Int.random(in: 150...250, using: &rng), rng: &rng))),
                (column(.learning, "effect"), .text(Vocabulary.effects.randomElement(using: &rng)!)),
            ]
            var edits = [RowEdit(table: learningTable.id, key: id, values: values)]
            for code in Set((0..<Int.random(in: 1...3, using: &rng)).map { _ in Vocabulary.soffts.randomElement(using: &rng)!.code }).sorted() {
                edits.append(RowEdit(table: soffts, key: id + Array(code.utf8), values: [(0, .integer(1))]))
            }
            if Bool.random(using: &rng) {
                edits.append(RowEdit(table: skills, key: id + Array(Vocabulary.skillKinds.randomElement(using: &rng)!.utf8), values: [(0, .integer(1))]))
            }
            try source.write(scope: .trust, edits: edits)
            changes += 1
            cells += edits.reduce(0) { $0 + $1.values.count }
        }
        // Some later edits: status and score changes on a fifth of the initiatives.
        for id in ids where Int.random(in: 0..<5, using: &rng) == 0 {
            try source.write(scope: .trust, edits: [RowEdit(table: initiativeTable.id, key: id, values: [
                (column(.initiative, "status"), .text(Vocabulary.statuses.randomElement(using: &rng)!)),
                (column(.initiative, "score"), .real(Double(Int.random(in: 1...10, using: &rng)) / 2)),
            ])])
            changes += 1
            cells += 2
        }

        return Stats(changes: changes, cells: cells, seconds: Date().timeIntervalSince(start), initiativeIDs: ids)
    }
}

/// The synthetic trust's sites: a hub holding the trust key, and other sites that join and
/// are enrolled by it, as `init --join` and `enrol` do.
enum SyntheticSites {
    /// The hub, founding the trust.
    static func hub(at home: URL) throws -> Replica {
        try Replica.create(home: home, trustCode: "RXH", trustName: "Synthetic Trust", siteName: "hub", kind: .hub, schema: QISchema.schema)
    }

    /// A ward enrolled by `hub`, holding the hub's directory (as after a first sync).
    static func ward(at home: URL, enrolledBy hub: Replica, name: String = "ward") throws -> Replica {
        let fingerprint = try hub.trustPins().first(where: \.isOwn)!.fingerprint
        let ward = try Replica.create(home: home, trustCode: "RXH", trustName: "Synthetic Trust", siteName: name, kind: .ward,
                                      schema: QISchema.schema, membership: .joining(fingerprint))
        _ = try hub.enrol(ward.enrolmentRequest())
        try ward.importDirectory(try hub.directoryRecords())
        return ward
    }
}
