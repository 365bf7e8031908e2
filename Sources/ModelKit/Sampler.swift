// Token samplers: greedy, and temperature with top-k, top-p and min-p, after presence and frequency
// penalties (OpenAI's definition: logit[t] -= presence·[count(t) > 0] + frequency·count(t), over the
// tokens generated so far); top-k, then top-p and min-p over the temperature-scaled distribution, then a
// seeded draw. Greedy takes the argmax of the penalized logits.
import Foundation

/// Sampling settings, named as llama-server names them.
public struct SamplingParams: Sendable, Equatable, Codable {
    /// 0 means greedy.
    public var temperature: Float = 0
    /// 0 disables top-k.
    public var topK: Int = 40
    /// 1 disables top-p.
    public var topP: Float = 0.95
    /// Seed for the draw.
    public var seed: UInt64 = 0
    /// Drops candidates below this fraction of the most likely one (0 disables).
    public var minP: Float = 0
    /// OpenAI's presence and frequency penalties over the generated tokens (0 disables).
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    /// Only these tokens may be picked (nil: any). The server's constrained steps (a forced tool name).
    public var allowedTokens: [Int32]? = nil

    /// Creates settings.
    public init(temperature: Float = 0, topK: Int = 40, topP: Float = 0.95, seed: UInt64 = 0, minP: Float = 0,
                presencePenalty: Float = 0, frequencyPenalty: Float = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.minP = minP
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
    }

    /// Whether the logits depend on the tokens generated so far.
    public var penalizes: Bool { presencePenalty != 0 || frequencyPenalty != 0 }
    /// Whether the sampler changes the logits before picking (penalties or an allowed set).
    public var adjusts: Bool { penalizes || allowedTokens != nil }
}

/// SplitMix64: small, fast, reproducible across platforms.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// Seeds the generator.
    public init(seed: UInt64) { state = seed }
    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A float in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}

/// Picks tokens from logits.
public struct Sampler: Sendable {
    /// The settings.
    public let params: SamplingParams
    private var rng: SplitMix64

    /// A sampler with its own seeded generator.
    public init(_ params: SamplingParams) {
        self.params = params
        rng = SplitMix64(seed: params.seed)
    }

    /// Index of the largest logit (first on ties).
    public static func argmax(_ logits: some Collection<Float>) -> Int {
        var best = 0, bestV = -Float.infinity, i = 0
        for v in logits {
            if v > bestV { bestV = v; best = i }
            i += 1
        }
        return best
    }

    /// `logits` with the presence and frequency penalties of `history` (the generated tokens) applied, and
    /// every token outside `allowedTokens` (when set) at -infinity.
    public func penalized(_ logits: [Float], history: [Int32]) -> [Float] {
        guard params.adjusts else { return logits }
        var out = logits
        if params.penalizes && !history.isEmpty {
            var counts: [Int32: Int] = [:]
            for t in history { counts[t, default: 0] += 1 }
            for (t, n) in counts where t >= 0 && Int(t) < out.count {
                out[Int(t)] -= params.presencePenalty + params.frequencyPenalty * Float(n)
            }
        }
        if let allowed = params.allowedTokens {
            var masked = [Float](repeating: -.infinity, count: out.count)
            for t in allowed where t >= 0 && Int(t) < out.count { masked[Int(t)] = out[Int(t)] }
            out = masked
        }
        return out
    }

    /// Index of the largest logit (first on ties), over a contiguous array (the decode hot path: the generic
    /// version below runs element by element through the protocol when called from another module).
    public static func argmax(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { p in
            var best = 0, bestV = -Float.infinity
            for i in 0..<p.count where p[i] > bestV {
                bestV = p[i]
                best = i
            }
            return best
        }
    }

    /// The candidate distribution after top-k, temperature, top-p and min-p: (token, probability), sorted by
    /// logit (descending, token ascending on ties). With top-k the k best are selected first (a pass over
    /// the vocabulary keeping the k-th largest value) so only they are sorted; same result as sorting all.
    public func distribution(_ logits: [Float]) -> [(token: Int, p: Double)] {
        let k = params.topK > 0 && params.topK < logits.count ? params.topK : logits.count
        var cand = k < logits.count ? Self.best(logits, k) : logits.enumerated().map { (token: $0.offset, logit: $0.element) }
        cand.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.token < $1.token) }
        return truncate(cand)
    }

    /// The plain reference of `distribution`: sort every candidate, then truncate (tests compare the two).
    public func referenceDistribution(_ logits: [Float]) -> [(token: Int, p: Double)] {
        var cand = logits.enumerated().map { (token: $0.offset, logit: $0.element) }
        cand.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.token < $1.token) }
        if params.topK > 0 && params.topK < cand.count { cand.removeLast(cand.count - params.topK) }
        return truncate(cand)
    }

    /// The k largest logits with their tokens (unsorted); ties at the k-th value go to the lowest tokens.
    static func best(_ logits: [Float], _ k: Int) -> [(token: Int, logit: Float)] {
        // A min-heap of the k largest values seen: most logits fail the first comparison with its root.
        var heap = [Float](repeating: -.infinity, count: k)
        logits.withUnsafeBufferPointer { p in
            for x in p where x > heap[0] {
                heap[0] = x
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < k && heap[l] < heap[m] { m = l }
                    if r < k && heap[r] < heap[m] { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
        }
        let kth = heap[0]
        var equal = k - heap.filter { $0 > kth }.count
        var out: [(token: Int, logit: Float)] = []
        out.reserveCapacity(k)
        for (t, x) in logits.enumerated() {
            if x > kth {
                out.append((t, x))
            } else if x == kth && equal > 0 {
                out.append((t, x))
                equal -= 1
            }
        }
        return out
    }

    /// Temperature, top-p and min-p over candidates sorted by logit.
    private func truncate(_ cand: [(token: Int, logit: Float)]) -> [(token: Int, p: Double)] {
        let t = Double(max(params.temperature, 1e-6))
        let m = Double(cand[0].logit)
        var probs = cand.map { exp((Double($0.logit) - m) / t) }
        let z = probs.reduce(0, +)
        probs = probs.map { $0 / z }
        var keep = probs.count
        if params.topP < 1 {
            var acc = 0.0
            for (i, p) in probs.enumerated() {
                acc += p
                if acc >= Double(params.topP) { keep = i + 1; break }
            }
        }
        if params.minP > 0 {
            // Sorted descending: the kept prefix is every candidate at or above minP · p_max.
            let floor = Double(params.minP) * probs[0]
            keep = max(1, probs[0..<keep].prefix { $0 >= floor }.count)
        }
        let z2 = probs[0..<keep].reduce(0, +)
        return (0..<keep).map { (cand[$0].token, probs[$0] / z2) }
    }

    /// Samples the next token.
    public mutating func sample(_ logits: [Float]) -> Int {
        if params.temperature <= 0 { return Self.argmax(logits) }
        return draw(distribution(logits))
    }

    /// A uniform draw in [0, 1) from this sampler's generator.
    public mutating func nextUnit() -> Double { rng.nextUnit() }
}
