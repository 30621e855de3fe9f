// qisync-bench: benchmarks on a seeded synthetic trust (numbers, not tests).
//
//   swift run -c release qisync-bench replica [--scale 1.0]    local writes, apply vs plain insert, file sizes
//   swift run -c release qisync-bench sync [--scales 0.1,1.0]  sync over loopback vs local apply and a file copy
//   swift run -c release qisync-bench writes [--lines 10000,100000]  a script of writes through qisync shell, one interactive write
//   swift run -c release qisync-bench scale [--entries 112000,1000000]  reads, status and verify at two sizes
//   swift run -c release qisync-bench charts                    chart, report and data import through the executable
import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qisync-bench", abstract: "Benchmarks on a seeded synthetic trust.",
        subcommands: [ReplicaBenchmark.self, SyncBenchmark.self, ChartBenchmark.self, WriteBenchmark.self, ScaleBenchmark.self], defaultSubcommand: ReplicaBenchmark.self)
}

Bench.main()
