import Foundation

/// The exact distributions the run rules rest on.
public enum Distributions {
    /// R's `qbinom(p, size, 0.5)`: the smallest x with P(X ≤ x) ≥ p for X ~ Binomial(size, ½).
    public static func binomialQuantile(_ p: Double, size: Int) -> Int {
        guard size > 0 else { return 0 }
        let logHalf = Double(size) * log(0.5)
        var cumulative = 0.0
        for x in 0...size {
            cumulative += exp(logChoose(size, x) + logHalf)
            // R allows for rounding in the sum: a value within 64 ε of p counts as reaching it.
            if cumulative >= p * (1 - 64 * Double.ulpOfOne) { return x }
        }
        return size
    }

    /// Anhøj's critical values for `n` useful observations: a run longer than `longestRun`, or
    /// fewer crossings than `fewestCrossings`, signals (Anhøj 2014; qicharts2).
    public static func anhoejLimits(useful n: Int) -> (longestRun: Int, fewestCrossings: Int) {
        (Int((log2(Double(n)) + 3).rounded()), binomialQuantile(0.05, size: n - 1))
    }

    /// The IHI run chart's limits for the number of runs with `n` useful observations: fewer
    /// than `fewest` or more than `most` runs signals. Worked out exactly from the distribution of
    /// the number of runs (Swed and Eisenhart 1943) with the points split as evenly as they can
    /// be above and below the median, each tail at 2.5% (Perla, Provost and Murray 2011).
    public static func runsLimits(useful n: Int) -> (fewest: Int, most: Int)? {
        guard n >= 2 else { return nil }
        let below = n / 2, above = n - below
        let distribution = runsDistribution(below, above)
        var cumulative = 0.0
        var fewest = 2
        for (runs, probability) in distribution.sorted(by: { $0.key < $1.key }) {
            cumulative += probability
            if cumulative > 0.025 { fewest = runs; break }
        }
        cumulative = 0
        var most = n
        for (runs, probability) in distribution.sorted(by: { $0.key > $1.key }) {
            cumulative += probability
            if cumulative > 0.025 { most = runs; break }
        }
        return (fewest, most)
    }

    /// P(R = r) for the number of runs R in a random arrangement of `a` and `b` points.
    static func runsDistribution(_ a: Int, _ b: Int) -> [Int: Double] {
        let total = logChoose(a + b, a)
        var result: [Int: Double] = [:]
        guard a > 0, b > 0 else { return [1: 1] }
        for runs in 2...(2 * min(a, b) + (a == b ? 0 : 1)) {
            let k = runs / 2
            if runs % 2 == 0 {
                result[runs] = 2 * exp(logChoose(a - 1, k - 1) + logChoose(b - 1, k - 1) - total)
            } else {
                result[runs] = exp(logChoose(a - 1, k) + logChoose(b - 1, k - 1) - total)
                    + exp(logChoose(a - 1, k - 1) + logChoose(b - 1, k) - total)
            }
        }
        return result
    }

    /// log C(n, k); −∞ when k is out of range.
    static func logChoose(_ n: Int, _ k: Int) -> Double {
        guard k >= 0, k <= n else { return -.infinity }
        return lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// The median.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
