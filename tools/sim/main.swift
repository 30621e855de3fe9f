// qisync-sim: the NHS at scale, in one process (a simulation, not a test).
//
//   swift run -c release qisync-sim                                   small: 5 trusts of a hub and 3 wards
//   swift run -c release qisync-sim --trusts 220 --wards 10           the NHS: 220 trusts, 2,420 replicas
import ArgumentParser
import Foundation

struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qisync-sim",
        abstract: "Simulate trusts of a hub and wards syncing on demand (ward with hub, hub with a random hub, some wards by bundle only).",
        discussion: """
            Every replica is a real SQLite replica; syncs run the real session state machines with every message \
            encoded, compressed and framed as on the wire, without sockets. Sites make and share initiatives for \
            --active-rounds rounds; then rounds go on until every replica holds every shared initiative. Prints rounds, \
            bytes and sizes, and fails if any replica's shared state differs.
            """)

    @Option(help: "Trusts.") var trusts = 5
    @Option(help: "Wards per trust.") var wards = 3
    @Option(help: "Wards per trust that only exchange bundles with their hub.") var bundleWards = 1
    @Option(help: "Rounds in which sites make changes.") var activeRounds = 5
    @Option(help: "Changes per round, across all sites.") var editsPerRound = 20
    @Option(help: "Percent of new initiatives shared with other trusts.") var sharePercent = 30
    @Option(help: "Percent chance a ward meets its hub in a round.") var wardSyncPercent = 60
    @Option(help: "Percent chance a hub meets a random other hub in a round.") var hubSyncPercent = 60
    @Option(help: "Rounds after the last change before giving up.") var quietRoundsLimit = 200
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Working folder (emptied first, removed after).") var dir = "/tmp/qisync-sim"

    mutating func run() throws {
        let root = URL(fileURLWithPath: dir)
        try? FileManager.default.removeItem(at: root)
        defer { try? FileManager.default.removeItem(at: root) }
        var options = Simulation.Options()
        options.trusts = trusts
        options.wards = wards
        options.bundleWards = bundleWards
        options.activeRounds = activeRounds
        options.editsPerRound = editsPerRound
        options.sharePercent = sharePercent
        options.wardSyncPercent = wardSyncPercent
        options.hubSyncPercent = hubSyncPercent
        options.quietRoundsLimit = quietRoundsLimit
        options.seed = seed
        let report = try Simulation(options: options, root: root).run()
        let perReplicaRound = Double(report.bytes) / Double(max(report.replicas * report.rounds, 1))
        print("qisync-sim: \(trusts) trusts × (hub + \(wards) wards, \(bundleWards) by bundle only) = \(report.replicas) replicas, seed \(seed)")
        print("  set-up (create, enrol, pin): \(String(format: "%.1f", report.setupSeconds)) s; run: \(String(format: "%.1f", report.seconds - report.setupSeconds)) s")
        print("  changes: \(report.edits) initiatives made, \(report.shared) shared, in \(activeRounds) rounds")
        print("  rounds after the last change until every hub holds every shared change: \(report.roundsToHubs.map(String.init) ?? "never")")
        print("  rounds after the last change until every replica does: \(report.roundsToAll.map(String.init) ?? "never (limit \(quietRoundsLimit))")")
        print("  syncs: \(report.syncs), bundles: \(report.bundles), bytes moved: \(report.bytes) (\(String(format: "%.0f", perReplicaRound)) per replica per round; busiest round \(report.bytesPerRound.max() ?? 0))")
        let kinds = report.bytesByKind.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
        print("  bytes by kind: \(kinds.joined(separator: ", "))")
        print("  time in syncs: \(String(format: "%.1f", report.syncSeconds)) s, in bundle exchanges: \(String(format: "%.1f", report.bundleSeconds)) s (summed over the threads that ran them)")
        print("  a sync with nothing to move, once converged: ward with its hub \(report.quietWardSync) bytes, hub with a hub \(report.quietHubSync) bytes")
        print("  largest replica: \(String(format: "%.1f", Double(report.largestReplica) / 1e6)) MB")
        print("  converged to identical shared state: \(report.converged ? "yes" : "NO")")
        for problem in report.problems.prefix(10) { print("  problem: \(problem)") }
        if !report.converged || !report.problems.isEmpty { throw ExitCode.failure }
    }
}

Sim.main()
