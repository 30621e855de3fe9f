/// Shrinks a failing history to a short one that still fails: removes chunks of operations,
/// then single operations, while the check keeps failing (delta debugging, greedily).
public enum Shrinker {
    /// The shortest failing history found from `history`.
    public static func shrink(_ history: History, shape: Checker.Shape, seed: UInt64, budget: Int = 300) -> History {
        var current = history
        var tries = 0
        var chunk = max(1, current.codes.count / 2)
        while chunk >= 1, tries < budget {
            var start = 0
            var removed = false
            while start < current.codes.count, tries < budget {
                var candidate = current
                candidate.codes.removeSubrange(start..<min(start + chunk, candidate.codes.count))
                tries += 1
                if !Checker.check(candidate, shape: shape, seed: seed).problems.isEmpty {
                    current = candidate
                    removed = true
                } else {
                    start += chunk
                }
            }
            if !removed { chunk /= 2 }
        }
        return current
    }
}
