import Foundation

/// Runs long blocking work on a thread of its own and waits for it without holding a thread.
///
/// Swift Testing runs tests on the cooperative pool, which has one thread per core: two long
/// blocking tests (the model check, the fault suite waiting on its processes) on a two-core
/// machine stalled every async test for minutes, so a network test's peer timed out.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.stackSize = 16 << 20
        thread.start()
    }
}

/// Runs one of the package's tools built beside the tests (`qisync-chaos`, `qisync-sim`) to the
/// end, waiting on a thread of its own; its status and what it printed on both streams.
func runTool(_ name: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = await onOwnThread {
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return output
    }
    return (process.terminationStatus, output)
}
