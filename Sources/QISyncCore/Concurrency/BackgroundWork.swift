import Foundation

/// Work run on a thread of its own from the moment it is made, its result taken (waiting for
/// it) when wanted: for a second core's share of one command (`verify`'s rebuild and its
/// checks of the replica's file).
public final class BackgroundWork<Value>: @unchecked Sendable {
    // Written by the thread before it signals `done`; read only after waiting for that.
    private var outcome: Result<Value, Error>?
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var joined = false

    public init(_ work: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            outcome = Result { try work() }
            done.signal()
        }
        // SQLite and deep decoding want more than a secondary thread's default 512 KiB.
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// What the work returned or threw, once it is done (waiting for it the first time).
    public func result() -> Result<Value, Error> {
        lock.withLock {
            if !joined {
                done.wait()
                joined = true
            }
            return outcome!
        }
    }

    /// What the work returned, once it is done; what it threw, thrown here.
    public func value() throws -> Value {
        try result().get()
    }
}
