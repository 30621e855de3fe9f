import Foundation

/// Values handed from one producer thread to one consumer, at most `capacity` waiting: the
/// producer runs ahead of the consumer by that much and no further.
public final class BoundedChannel<Value>: @unchecked Sendable {
    // The condition's lock guards every property below it.
    private let condition = NSCondition()
    /// Values waiting from `head` on; a slot before `head` has been taken and holds nothing
    /// (a producer that keeps the channel full never lets it empty, and taken values must
    /// not be kept alive until it does).
    private var items: [Value?] = []
    private var head = 0
    private var finished = false
    private var cancelled = false
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Hands on `value`, waiting while `capacity` values wait already. False (and the value
    /// dropped) when the consumer has cancelled: the producer should stop.
    public func send(_ value: Value) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && items.count - head >= capacity { condition.wait() }
        guard !cancelled else { return false }
        items.append(value)
        condition.broadcast()
        return true
    }

    /// The producer is done: once the values waiting are taken, `receive` returns nil.
    public func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next value, waiting for one; nil once the producer has finished and every value is
    /// taken, or after `cancel`.
    public func receive() -> Value? {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && head == items.count && !finished { condition.wait() }
        guard !cancelled, head < items.count else { return nil }
        let value = items[head].take()!
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return value
    }

    /// The consumer stops: values waiting are dropped and the producer's next `send` returns false.
    public func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}
