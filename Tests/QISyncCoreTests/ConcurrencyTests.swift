import Foundation
import QISyncCore
import Testing

/// The two helpers that put a second core to work: a parallel map and a bounded channel.
@Suite("Parallel map and bounded channel")
struct ConcurrencyTests {
    @Test("a parallel map keeps the order, at every size and chunk", arguments: [0, 1, 2, 7, 64, 1_000])
    func mapKeepsOrder(count: Int) {
        let input = (0..<count).map { "Ysbyty \($0) £\($0 % 7) °C" }
        for minimum in [1, 3, 500] {
            #expect(ParallelMap.map(input, minimumPerTask: minimum) { $0.uppercased() } == input.map { $0.uppercased() })
        }
    }

    @Test("a channel hands on every value in order, the producer never more than its capacity ahead")
    func channelOrder() {
        let channel = BoundedChannel<Int>(capacity: 2)
        let sent = Counter(), refused = Counter()
        let done = DispatchSemaphore(value: 0)
        // The producer only counts; the test's own thread asserts.
        Thread {
            for value in 0..<500 {
                if channel.send(value) { sent.add() } else { refused.add() }
            }
            channel.finish()
            done.signal()
        }.start()
        var received: [Int] = []
        while let value = channel.receive() {
            // What the producer has sent: at most what was taken (this one too) and the two that may wait.
            #expect(sent.value <= received.count + 1 + 2)
            received.append(value)
        }
        done.wait()
        #expect(refused.value == 0)
        #expect(received == Array(0..<500))
        #expect(channel.receive() == nil)
    }

    @Test("a consumer that cancels frees a producer waiting for room, whose sends then fail")
    func channelCancel() {
        let channel = BoundedChannel<String>(capacity: 1)
        let refused = DispatchSemaphore(value: 0)
        let sends = Counter()
        Thread {
            while channel.send("Café \(sends.value)") { sends.add() }
            refused.signal()
        }.start()
        #expect(channel.receive() == "Café 0")
        channel.cancel()
        #expect(refused.wait(timeout: .now() + 30) == .success, "the producer was left waiting")
        // The one taken, one waiting, perhaps one more sent between the take and the cancel.
        #expect((1...3).contains(sends.value))
        #expect(channel.receive() == nil)
    }

    @Test("a value taken from a channel that never empties is not kept alive by it")
    func channelReleasesTaken() {
        let channel = BoundedChannel<Tracked>(capacity: 4)
        let alive = Counter()
        for index in 0..<3 { #expect(channel.send(Tracked("Llandudno \(index)", alive))) }
        // Three always wait: the channel never empties, as when its producer keeps ahead.
        for index in 3..<300 {
            #expect(channel.send(Tracked("Ysbyty \(index)", alive)))
            let taken = index - 3
            #expect(channel.receive()?.name == (taken < 3 ? "Llandudno \(taken)" : "Ysbyty \(taken)"))
        }
        #expect(alive.value <= 4, "\(alive.value) values alive, of 3 waiting")
    }

    @Test("background work runs on another thread at once; its value, or its error, is taken when wanted, as often as asked")
    func backgroundWork() throws {
        let started = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let work = BackgroundWork { () -> String in
            started.signal()
            proceed.wait()
            return "Ysbyty Gwynedd, 37 °C"
        }
        // It started without being asked for its value (this thread has not waited on it yet).
        #expect(started.wait(timeout: .now() + 10) == .success)
        proceed.signal()
        #expect(try work.value() == "Ysbyty Gwynedd, 37 °C")
        #expect(try work.value() == "Ysbyty Gwynedd, 37 °C")
        struct Failed: Error, Equatable { let reason: String }
        let failing = BackgroundWork { () -> Int in throw Failed(reason: "£0 budget") }
        #expect(throws: Failed(reason: "£0 budget")) { try failing.value() }
        if case .failure(let error) = failing.result() { #expect(error as? Failed == Failed(reason: "£0 budget")) } else { Issue.record("no error") }
    }

    /// A value that counts the instances alive.
    final class Tracked: @unchecked Sendable {
        let name: String
        private let alive: Counter
        init(_ name: String, _ alive: Counter) {
            self.name = name
            self.alive = alive
            alive.add()
        }
        deinit { alive.remove() }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func add() { lock.withLock { count += 1 } }
        func remove() { lock.withLock { count -= 1 } }
    }
}
