import ModelKit
import Testing

/// Speculative sampling must leave the output distribution exactly that of plain sampling.
///
/// Method: known target distributions p (a "tiny model" whose next-token probabilities are written down),
/// a deliberately different draft distribution q, 200,000 seeded trials, and Pearson's chi-square against
/// the exact target. Thresholds are the chi-square quantiles at significance 1e-6 (df 3: 30.66; df 15:
/// 56.49, from scipy.stats.chi2.ppf), so a correct sampler fails by chance about once in a million runs;
/// the seeds are fixed, so the outcome is reproducible. Each test also checks that a wrong scheme (always
/// keeping the draft) is rejected by the same statistic, so the test has the power to fail.
@Suite struct SpeculativeSamplingTests {
    static let trials = 200_000
    static let p: TokenDistribution = [(0, 0.5), (1, 0.25), (2, 0.15), (3, 0.1)]
    static let q: TokenDistribution = [(0, 0.1), (1, 0.2), (2, 0.3), (3, 0.2), (4, 0.2)]  // token 4: p = 0

    static func chiSquare(_ counts: [Int], expected: [Double]) -> Double {
        zip(counts, expected).reduce(0) { acc, ce in
            let e = ce.1 * Double(trials)
            return acc + (Double(ce.0) - e) * (Double(ce.0) - e) / e
        }
    }

    /// If this fails, one verified draft (accept with min(1, p/q), else redraw from norm(max(0, p - q)))
    /// is not distributed as p.
    @Test func oneDraftFollowsTheTarget() {
        var verifier = Sampler(SamplingParams(temperature: 1, seed: 1))
        var drafter = Sampler(SamplingParams(temperature: 1, seed: 2))
        var counts = [Int](repeating: 0, count: 4), naive = [Int](repeating: 0, count: 5)
        for _ in 0..<Self.trials {
            let d = drafter.draw(Self.q)
            let (tok, _) = verifier.verify(draft: d, p: Self.p, q: Self.q)
            counts[tok] += 1
            naive[d] += 1
        }
        let expected = Self.p.map(\.p)
        let x2 = Self.chiSquare(counts, expected: expected)
        #expect(x2 < 30.66, "chi-square \(x2) over df 3")
        #expect(naive[4] > 0 && Self.chiSquare(Array(naive[0..<4]), expected: expected) > 30.66)
    }

    /// If this fails, a deterministic drafter (q = all mass on the draft) is verified wrongly.
    @Test func deterministicDraftFollowsTheTarget() {
        var verifier = Sampler(SamplingParams(temperature: 1, seed: 3))
        var counts = [Int](repeating: 0, count: 4)
        for _ in 0..<Self.trials {
            counts[verifier.verify(draft: 2, p: Self.p, q: nil).token] += 1
        }
        let x2 = Self.chiSquare(counts, expected: Self.p.map(\.p))
        #expect(x2 < 30.66, "chi-square \(x2) over df 3")
    }

    /// Target of a two-step toy model: p2(b | a) shifts p's mass by a (mod 4).
    static func p2(_ a: Int) -> TokenDistribution { p.map { (($0.token + a) % 4, $0.p) } }
    /// Draft of the second step, conditioned on the first draft.
    static func q2(_ a: Int) -> TokenDistribution { q.map { (($0.token + 2 * a) % 5, $0.p) } }

    /// If this fails, chained drafts (two per step, the second conditioned on the first, verified in
    /// order, then plain sampling after a rejection) do not give the joint distribution p(a) p2(b | a).
    @Test func twoChainedDraftsFollowTheJointTarget() {
        var verifier = Sampler(SamplingParams(temperature: 1, seed: 4))
        var drafter = Sampler(SamplingParams(temperature: 1, seed: 5))
        var counts = [Int](repeating: 0, count: 16), naive = [Int](repeating: 0, count: 25)
        for _ in 0..<Self.trials {
            let d1 = drafter.draw(Self.q), d2 = drafter.draw(Self.q2(d1))
            naive[d1 * 5 + d2] += 1
            let (a, ok) = verifier.verify(draft: d1, p: Self.p, q: Self.q)
            let b = ok ? verifier.verify(draft: d2, p: Self.p2(a), q: Self.q2(d1)).token : verifier.draw(Self.p2(a))
            counts[a * 4 + b] += 1
        }
        let expected = (0..<16).map { i in Self.p[i / 4].p * (Self.p2(i / 4).first { $0.token == i % 4 }!.p) }
        let x2 = Self.chiSquare(counts, expected: expected)
        #expect(x2 < 56.49, "chi-square \(x2) over df 15")
        let naiveIn = (0..<16).map { naive[($0 / 4) * 5 + $0 % 4] }
        #expect(Self.chiSquare(naiveIn, expected: expected) > 56.49)
    }
}

/// The sampler's top-k selection against its plain reference.
@Suite struct DistributionTests {
    /// If this fails, selecting the k best tokens before sorting (instead of sorting the whole vocabulary)
    /// changes the distribution: tokens, order and probabilities must equal the full sort's, ties included,
    /// for several k, top-p, min-p and temperatures.
    @Test func topKSelectionEqualsFullSort() {
        var g = SplitMix64(seed: 77)
        for trial in 0..<40 {
            // Coarse logits so that ties (also at the k-th value) happen.
            let logits = (0..<3000).map { _ in Float(Int(g.nextUnit() * 40)) / 4 - 5 }
            let p = SamplingParams(temperature: [0.5, 1, 1.7][trial % 3], topK: [1, 7, 40, 2999, 5000][trial % 5],
                                   topP: trial % 4 == 0 ? 0.9 : 1, minP: trial % 6 == 0 ? 0.05 : 0)
            let s = Sampler(p)
            let fast = s.distribution(logits), ref = s.referenceDistribution(logits)
            #expect(fast.map(\.token) == ref.map(\.token), "trial \(trial)")
            #expect(zip(fast, ref).allSatisfy { abs($0.p - $1.p) < 1e-12 }, "trial \(trial)")
        }
    }

    /// If this fails, the contiguous-array argmax differs from the generic one (first maximum on ties).
    @Test func argmaxOverArrayIsTheGenericOne() {
        var g = SplitMix64(seed: 5)
        for _ in 0..<20 {
            let x = (0..<500).map { _ in Float(Int(g.nextUnit() * 20)) }
            #expect(Sampler.argmax(x) == Sampler.argmax(x[...]))
        }
    }
}
