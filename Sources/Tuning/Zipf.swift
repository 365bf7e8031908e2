// Skewed routing you can reproduce: expert popularity following Zipf's law, p(rank r) ∝ 1 / r^s, with a
// seeded random permutation per layer (so hot experts differ between layers), as expected loads or as
// sampled routing counts (each token picks top-k distinct experts by weight).
//
// Dimension legend: L layers, E experts, T tokens, k experts per token.
import Foundation

/// The Zipf load generator.
public enum Zipf {
    /// Expected (token, expert) rows per expert for `tokens` tokens of top-`k` routing: [L][E].
    public static func loads(layers: Int, experts e: Int, exponent s: Double, tokens: Int = 1000, k: Int = 8, seed: UInt64 = 1) -> [[Double]] {
        var g = Rand(seed)
        return (0..<layers).map { _ in
            let perm = g.permutation(e)
            let w = (0..<e).map { 1 / pow(Double(perm[$0] + 1), s) }
            let total = w.reduce(0, +)
            return w.map { $0 / total * Double(tokens * k) }
        }
    }

    /// Sampled routing counts: each of `tokens` tokens picks `k` distinct experts with probabilities
    /// proportional to the Zipf weights (sequentially, without replacement): [L][E].
    public static func sample(layers: Int, experts e: Int, exponent s: Double, tokens: Int, k: Int, seed: UInt64 = 1) -> [[Int]] {
        var g = Rand(seed)
        return (0..<layers).map { _ in
            let perm = g.permutation(e)
            let w = (0..<e).map { 1 / pow(Double(perm[$0] + 1), s) }
            var counts = [Int](repeating: 0, count: e)
            for _ in 0..<tokens {
                var left = w, total = w.reduce(0, +)
                for _ in 0..<min(k, e) {
                    var u = g.unit() * total, pick = e - 1
                    for x in 0..<e { u -= left[x]; if u < 0 && left[x] > 0 { pick = x; break } }
                    counts[pick] += 1
                    total -= left[pick]
                    left[pick] = 0
                }
            }
            return counts
        }
    }
}

/// SplitMix64, so the generator needs nothing else.
struct Rand {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// A uniformly random permutation of 0..<n (Fisher-Yates).
    mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, Int(next() % UInt64(i + 1))) }
        return p
    }
}
