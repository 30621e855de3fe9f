import Foundation

/// Values handed from one producer thread to one consumer, at most `capacity` waiting: the
/// producer runs ahead of the consumer by that much and no further.
public final class BoundedChannel<Value>: @unchecked Sendable {
    // The condition's lock guards every property below it.
    private let condition = NSCondition()
    /// The values waiting, oldest first (at most `capacity`, so taking the first is cheap; a
    /// value taken is held no longer).
    private var items: [Value] = []
    private var finished = false
    private var cancelled = false
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Hands on `value`, waiting while `capacity` values wait already. False (and the value
    /// dropped) when the consumer has cancelled: the producer should stop.
    public func send(_ value: Value) -> Bool {
        condition.withLock {
            while !cancelled && items.count >= capacity { condition.wait() }
            guard !cancelled else { return false }
            items.append(value)
            condition.broadcast()
            return true
        }
    }

    /// The producer is done: once the values waiting are taken, `receive` returns nil.
    public func finish() {
        condition.withLock {
            finished = true
            condition.broadcast()
        }
    }

    /// The next value, waiting for one; nil once the producer has finished and every value is
    /// taken, or after `cancel`.
    public func receive() -> Value? {
        condition.withLock {
            while !cancelled && items.isEmpty && !finished { condition.wait() }
            guard !cancelled, !items.isEmpty else { return nil }
            let value = items.removeFirst()
            condition.broadcast()
            return value
        }
    }

    /// The consumer stops: values waiting are dropped and the producer's next `send` returns false.
    public func cancel() {
        condition.withLock {
            cancelled = true
            items.removeAll()
            condition.broadcast()
        }
    }
}
