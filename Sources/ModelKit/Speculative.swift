// Speculative sampling (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
// Decoding"; Chen et al. 2023): a draft token x ~ q is kept with probability min(1, p(x)/q(x)); otherwise
// the token is drawn from norm(max(0, p - q)). The kept-or-redrawn token is distributed exactly as p.
//
// Distributions here are sparse (token, probability) lists, as `Sampler.distribution` makes them after
// top-k, temperature and top-p: the draft and target use the same settings, so q and p live on comparable
// supports and the guarantee holds for the truncated target distribution that plain sampling draws from.

/// A token distribution: (token, probability) pairs; tokens not listed have probability 0.
public typealias TokenDistribution = [(token: Int, p: Double)]

extension Sampler {
    /// Draws a token from `dist` with this sampler's generator.
    public mutating func draw(_ dist: TokenDistribution) -> Int {
        var u = nextUnit()
        for (tok, p) in dist {
            u -= p
            if u < 0 { return tok }
        }
        return dist.last!.token
    }

    /// Verifies one draft. `q` is the distribution the draft was drawn from; nil means the drafter is
    /// deterministic (q puts all its mass on `draft`). Returns the token to emit and whether it is the draft.
    public mutating func verify(draft: Int, p: TokenDistribution, q: TokenDistribution?) -> (token: Int, accepted: Bool) {
        let pd = p.first { $0.token == draft }?.p ?? 0
        let qd = q.map { $0.first { $0.token == draft }?.p ?? 0 } ?? 1
        if qd > 0 && nextUnit() < min(1, pd / qd) { return (draft, true) }
        // Residual: max(0, p - q), renormalised.
        var qmap: [Int: Double] = [:]
        if let q { for (t, v) in q { qmap[t] = v } } else { qmap[draft] = 1 }
        var residual: TokenDistribution = p.map { ($0.token, max(0, $0.p - (qmap[$0.token] ?? 0))) }
        let z = residual.reduce(0) { $0 + $1.p }
        // z == 0 only when p <= q everywhere, i.e. p == q: then the draft is always accepted above.
        guard z > 0 else { return (draw(p), false) }
        residual = residual.map { ($0.token, $0.p / z) }
        return (draw(residual), false)
    }
}
