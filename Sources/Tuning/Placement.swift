// Expert placements as the tuner sees them: per MoE layer, a list of expert slots on every worker (an
// expert on several workers is replicated; its rows split evenly over the copies, as the runtime's
// token-index spreading does), and the balance they give for a per-expert load.
//
// Dimension legend: E experts per layer, W workers, S slots per worker, R = W·S physical slots.
import Foundation

/// Where one layer's experts live: `slots[w]` are the expert ids worker w holds.
public struct LayerPlacement: Equatable, Sendable {
    public var slots: [[Int]]

    /// A placement from per-worker expert lists.
    public init(slots: [[Int]]) { self.slots = slots }

    /// Workers.
    public var workers: Int { slots.count }

    /// Copies of each of `experts` experts.
    public func copies(experts: Int) -> [Int] {
        var c = [Int](repeating: 0, count: experts)
        for s in slots { for e in s where e >= 0 && e < experts { c[e] += 1 } }
        return c
    }

    /// Load on each worker for per-expert `load`: each copy takes load / copies.
    public func workerLoads(_ load: [Double]) -> [Double] {
        let c = copies(experts: load.count)
        return slots.map { s in s.reduce(0) { $0 + (c[$1] > 0 ? load[$1] / Double(c[$1]) : 0) } }
    }

    /// Busiest worker's load over the mean (1.0: perfectly even; 0 when there is no load).
    public func maxOverMean(_ load: [Double]) -> Double {
        let w = workerLoads(load), mean = w.reduce(0, +) / Double(max(w.count, 1))
        return mean > 0 ? w.max()! / mean : 0
    }

    /// Whether every expert has a copy.
    public func covers(experts: Int) -> Bool { copies(experts: experts).allSatisfy { $0 > 0 } }

    /// `Step 3.5`'s training layout: worker w holds experts [w·E/W, (w+1)·E/W).
    public static func contiguous(experts: Int, workers: Int) -> LayerPlacement {
        LayerPlacement(slots: (0..<workers).map { w in Array((w * experts / workers)..<((w + 1) * experts / workers)) })
    }
}

/// A whole model's placement: one per MoE layer, in the order of `layers` (model layer indices).
public struct ModelPlacement: Equatable, Sendable {
    public var layers: [Int]
    public var placements: [LayerPlacement]
    public var experts: Int

    /// Creates a placement.
    public init(layers: [Int], placements: [LayerPlacement], experts: Int) {
        self.layers = layers
        self.placements = placements
        self.experts = experts
    }

    /// The topology file for `heads` heads (rank layout and threads as the caller gives them): a `map`
    /// placement with the first layer's map as the default and every other layer as an override.
    public func topologyYAML(heads: Int, extra: String = "") -> String {
        func list(_ s: [Int]) -> String {
            // Ascending unique ids, runs written as ranges.
            let ids = Array(Set(s)).sorted()
            var parts: [String] = [], i = 0
            while i < ids.count {
                var j = i
                while j + 1 < ids.count && ids[j + 1] == ids[j] + 1 { j += 1 }
                parts.append(j > i ? "\(ids[i])-\(ids[j])" : "\(ids[i])")
                i = j + 1
            }
            return "[" + parts.joined(separator: ", ") + "]"
        }
        let w = placements.first?.workers ?? 0
        var y = "experts: \(experts)\nheads: \(heads)\nworkers: \(w)\n" + extra
        y += "placement:\n  strategy: map\n  map:\n"
        if let first = placements.first {
            for (k, s) in first.slots.enumerated() { y += "    \(k): \(list(s))\n" }
        }
        if placements.count > 1 {
            y += "  layers:\n"
            for (l, p) in zip(layers, placements).dropFirst() {
                y += "    \(l): {" + p.slots.enumerated().map { "\($0.offset): \(list($0.element))" }.joined(separator: ", ") + "}\n"
            }
        }
        return y
    }
}
