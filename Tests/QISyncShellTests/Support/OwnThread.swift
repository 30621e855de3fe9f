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
