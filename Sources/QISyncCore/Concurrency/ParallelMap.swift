import Foundation

/// Maps a collection on every core at once, keeping the order: for independent work that is
/// heavy per element (signature checks).
public enum ParallelMap {
    /// `transform` of each element, in order. Elements are handed out in chunks of at least
    /// `minimumPerTask`; fewer elements than two chunks are mapped on the calling thread.
    public static func map<Element: Sendable, Output: Sendable>(_ elements: [Element], minimumPerTask: Int = 1,
                                                                _ transform: @Sendable (Element) -> Output) -> [Output] {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunk = max(minimumPerTask, (elements.count + cores * 4 - 1) / (cores * 4))
        guard cores > 1, elements.count >= 2 * chunk else { return elements.map(transform) }
        let chunks = (elements.count + chunk - 1) / chunk
        let slots = Slots<Output>(count: elements.count)
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let start = index * chunk
            for position in start..<min(start + chunk, elements.count) { slots.set(position, transform(elements[position])) }
        }
        return slots.values()
    }

    /// One slot per element; each is written by exactly one task, and read only after all
    /// have finished (`concurrentPerform` returns when they have).
    private final class Slots<Output>: @unchecked Sendable {
        private let pointer: UnsafeMutablePointer<Output?>
        private let count: Int
        init(count: Int) {
            self.count = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: nil, count: count)
        }
        deinit {
            pointer.deinitialize(count: count)
            pointer.deallocate()
        }
        func set(_ index: Int, _ value: Output) { pointer[index] = value }
        func values() -> [Output] { (0..<count).map { pointer[$0]! } }
    }
}
