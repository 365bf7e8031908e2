// The tuner: EPLB's placement (EPLB.swift), then two improvements of our own:
//   - a memory cap: each worker holds at most `capacity` expert slots (its memory for weights), and
//     workers may differ; EPLB assumes equal slots everywhere;
//   - a refinement pass that cuts the busiest worker's load by local search: swap two experts between the
//     busiest worker and another one, or retarget a redundant copy to the hottest expert, accepting a move
//     only when the largest worker load goes down (or stays and the sum of squares goes down). Starting
//     from EPLB's answer, it can only match or beat it.
//
// Dimension legend: E experts, W workers, S slots per worker, R physical slots, L MoE layers.
import Foundation

/// How to tune.
public struct TuneOptions: Sendable {
    /// `hierarchical` / `global`: EPLB as published; `refined` (default): EPLB's pick then our refinement.
    public enum Policy: String, Sendable, CaseIterable { case hierarchical, global, refined }
    public var policy = Policy.refined
    /// Workers, nodes they sit in (workers divide evenly), and contiguous expert groups (EPLB's groups;
    /// Step 3.5 Flash's router was trained with 8 groups of 36).
    public var workers: Int
    public var nodes = 1
    public var groups = 1
    /// Redundant slots per layer over the whole cluster (a multiple of `workers` unless capacities say
    /// otherwise).
    public var redundant = 0
    /// Most expert slots one worker may hold (its memory); nil: no cap beyond an even share.
    public var capacity: Int?

    /// Options for `workers` workers.
    public init(workers: Int) { self.workers = workers }
}

/// A tuning request that cannot be met.
public struct TuneError: Error, CustomStringConvertible {
    public let description: String
}

/// The topology tuner.
public enum Tuner {
    /// One placement per layer of `loads` ([L][E]).
    public static func tune(_ loads: [[Double]], _ o: TuneOptions) throws -> [LayerPlacement] {
        try loads.map { try tuneLayer($0, o) }
    }

    /// One layer.
    public static func tuneLayer(_ load: [Double], _ o: TuneOptions) throws -> LayerPlacement {
        let e = load.count, w = o.workers, r = e + o.redundant
        guard w >= 1, e >= 1, o.redundant >= 0 else { throw TuneError(description: "need at least one worker and one expert, and redundant >= 0") }
        guard r % w == 0 else {
            throw TuneError(description: "\(e) experts + \(o.redundant) redundant slots = \(r) do not divide evenly over \(w) workers; pick redundant so that (experts + redundant) % workers == 0")
        }
        if let cap = o.capacity, r / w > cap {
            throw TuneError(description: "each worker would hold \(r / w) expert slots but --capacity allows \(cap): use more workers or fewer redundant slots")
        }
        guard o.nodes >= 1, w % o.nodes == 0 else { throw TuneError(description: "\(w) workers do not divide evenly over \(o.nodes) nodes") }
        guard o.groups >= 1, e % o.groups == 0 else { throw TuneError(description: "\(e) experts do not divide into \(o.groups) groups") }
        switch o.policy {
        case .global: return EPLB.hierarchical(load, physical: r, groups: 1, nodes: 1, gpus: w)
        case .hierarchical:
            guard o.groups % o.nodes == 0, (r / o.nodes) >= e / o.nodes, r % o.nodes == 0 else {
                throw TuneError(description: "hierarchical needs groups (\(o.groups)) divisible by nodes (\(o.nodes)) and slots (\(r)) by nodes")
            }
            return EPLB.hierarchical(load, physical: r, groups: o.groups, nodes: o.nodes, gpus: w)
        case .refined:
            let start = EPLB.rebalance(load, physical: r, groups: o.groups, nodes: o.nodes, gpus: w)
            return refine(start, load: load)
        }
    }

    /// Local search from `p` (slot counts per worker kept): swaps between the busiest worker and another,
    /// and retargeting redundant copies, while the objective (largest worker load, then sum of squares)
    /// goes down. A duplicate copy on one worker is first moved to another expert. Otherwise never returns
    /// a worse placement than `p`.
    public static func refine(_ p: LayerPlacement, load: [Double], maxMoves: Int = 20_000) -> LayerPlacement {
        var slots = p.slots
        let e = load.count, w = slots.count
        var copies = LayerPlacement(slots: slots).copies(experts: e)
        func perCopy(_ x: Int) -> Double { copies[x] > 0 ? load[x] / Double(copies[x]) : 0 }
        func loads() -> [Double] { slots.map { $0.reduce(0) { $0 + perCopy($1) } } }
        func objective(_ l: [Double]) -> (Double, Double) { (l.max() ?? 0, l.reduce(0) { $0 + $1 * $1 }) }
        func better(_ a: (Double, Double), _ b: (Double, Double)) -> Bool {
            a.0 < b.0 - 1e-12 * max(b.0, 1) || (abs(a.0 - b.0) <= 1e-12 * max(b.0, 1) && a.1 < b.1 - 1e-12 * max(b.1, 1))
        }
        // A second copy of an expert on the same worker adds memory but no parallelism (the runtime sends
        // all of that worker's rows for it to one place): give the slot to the expert with the most load
        // per copy that the worker lacks.
        for q in 0..<w {
            var seen = Set<Int>()
            for j in slots[q].indices {
                let y = slots[q][j]
                if seen.insert(y).inserted { continue }
                if let x = (0..<e).filter({ !slots[q].contains($0) }).max(by: { perCopy($0) < perCopy($1) }) {
                    slots[q][j] = x
                    copies[y] -= 1
                    copies[x] += 1
                    seen.insert(x)
                }
            }
        }
        var cur = loads(), obj = objective(cur)
        for _ in 0..<maxMoves {
            let top = cur.indices.max { cur[$0] < cur[$1] }!
            var best: (obj: (Double, Double), apply: () -> Void)?
            // Swaps: an expert of the busiest worker for one of another worker's (neither already there).
            for q in 0..<w where q != top {
                for (i, x) in slots[top].enumerated() {
                    for (j, y) in slots[q].enumerated() where x != y && !slots[q].contains(x) && !slots[top].contains(y) {
                        var l = cur
                        l[top] += perCopy(y) - perCopy(x)
                        l[q] += perCopy(x) - perCopy(y)
                        let o = objective(l)
                        if better(o, best?.obj ?? obj) {
                            best = (o, { slots[top][i] = y; slots[q][j] = x })
                        }
                    }
                }
            }
            // Retargeting: a slot whose expert has other copies now holds the expert with the largest load
            // per copy that its worker lacks.
            let hot = (0..<e).sorted { perCopy($0) > perCopy($1) }.prefix(8)
            for x in hot {
                for q in 0..<w where !slots[q].contains(x) {
                    for (j, y) in slots[q].enumerated() where copies[y] > 1 {
                        copies[x] += 1; copies[y] -= 1
                        var trial = slots
                        trial[q][j] = x
                        let l = trial.map { $0.reduce(0) { $0 + perCopy($1) } }
                        copies[x] -= 1; copies[y] += 1
                        let o = objective(l)
                        if better(o, best?.obj ?? obj) {
                            best = (o, { slots[q][j] = x; copies[x] += 1; copies[y] -= 1 })
                        }
                    }
                }
            }
            guard let b = best else { break }
            b.apply()
            cur = loads()
            obj = objective(cur)
        }
        return LayerPlacement(slots: slots)
    }
}
