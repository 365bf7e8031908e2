// DeepSeek's EPLB (deepseek-ai/EPLB, eplb.py), rewritten from its description for one layer at a time
// (the baseline the tuner must match or beat):
//   replicate: each redundant slot goes to the expert with the largest load per copy;
//   balanced packing: items heaviest first, each into the lightest pack that still has room, every pack
//     taking exactly n/m items;
//   hierarchical (expert groups divide evenly over nodes): pack contiguous expert groups onto nodes by
//     their summed load, replicate within each node, pack each node's copies onto its GPUs by load per copy;
//   global: the same with one group and one node.
//
// Dimension legend: E logical experts, R physical slots (E + redundant), G groups, N nodes, W GPUs (workers).
import Foundation

/// The EPLB algorithm.
public enum EPLB {
    /// Packs `weights` into `packs` packs of `weights.count / packs` items: returns each item's pack and
    /// its rank inside the pack. Heaviest first (ties by index), each to the lightest pack with room.
    public static func balancedPacking(_ weights: [Double], packs m: Int) -> (pack: [Int], rank: [Int]) {
        let n = weights.count, per = n / m
        precondition(m > 0 && n % m == 0, "items must divide evenly into packs")
        if per == 1 { return (Array(0..<n), [Int](repeating: 0, count: n)) }
        var pack = [Int](repeating: -1, count: n), rank = [Int](repeating: 0, count: n)
        var load = [Double](repeating: 0, count: m), count = [Int](repeating: 0, count: m)
        let order = (0..<n).sorted { weights[$0] > weights[$1] || (weights[$0] == weights[$1] && $0 < $1) }
        for i in order {
            var best = -1
            for p in 0..<m where count[p] < per && (best < 0 || load[p] < load[best]) { best = p }
            pack[i] = best
            rank[i] = count[best]
            load[best] += weights[i]
            count[best] += 1
        }
        return (pack, rank)
    }

    /// Replicates `weights.count` experts into `physical` slots: slot i < E holds expert i; every further
    /// slot copies the expert with the largest load per copy. Returns each slot's expert and the copies.
    public static func replicate(_ weights: [Double], physical r: Int) -> (slotExpert: [Int], copies: [Int]) {
        let e = weights.count
        precondition(r >= e)
        var slot = Array(0..<e), copies = [Int](repeating: 1, count: e)
        for _ in e..<r {
            var best = 0
            for x in 1..<e where weights[x] / Double(copies[x]) > weights[best] / Double(copies[best]) { best = x }
            slot.append(best)
            copies[best] += 1
        }
        return (slot, copies)
    }

    /// The hierarchical policy for one layer: `physical` slots over `gpus` workers grouped in `nodes`
    /// nodes, experts in `groups` contiguous groups (`groups % nodes == 0`).
    public static func hierarchical(_ weights: [Double], physical r: Int, groups g: Int, nodes n: Int, gpus w: Int) -> LayerPlacement {
        let e = weights.count
        precondition(e % g == 0 && g % n == 0 && r % w == 0 && w % n == 0 && r % n == 0 && (r / n) >= e / n)
        let groupSize = e / g, groupsPerNode = g / n, perGPU = r / w, expertsPerNode = e / n
        // Step 1: groups to nodes by their summed load. Node k's experts get "node-local" ids
        // k·E/N ..< (k+1)·E/N (mlog), group by group in packing rank order.
        let groupLoad = (0..<g).map { gi in (0..<groupSize).reduce(0.0) { $0 + weights[gi * groupSize + $1] } }
        let (gp, gr) = balancedPacking(groupLoad, packs: n)
        var mlogToLog = [Int](repeating: 0, count: e)
        for gi in 0..<g {
            for j in 0..<groupSize { mlogToLog[(gp[gi] * groupsPerNode + gr[gi]) * groupSize + j] = gi * groupSize + j }
        }
        var slots = [[Int]](repeating: [], count: w)
        for node in 0..<n {
            // Step 2: replicate this node's experts into its R/N slots.
            let local = (0..<expertsPerNode).map { weights[mlogToLog[node * expertsPerNode + $0]] }
            let (slotLocal, copies) = replicate(local, physical: r / n)
            // Step 3: pack the node's copies onto its GPUs by load per copy.
            let perCopy = slotLocal.map { local[$0] / Double(copies[$0]) }
            let (pk, _) = balancedPacking(perCopy, packs: w / n)
            for (i, x) in slotLocal.enumerated() { slots[node * (w / n) + pk[i]].append(mlogToLog[node * expertsPerNode + x]) }
        }
        precondition(slots.allSatisfy { $0.count == perGPU })
        return LayerPlacement(slots: slots)
    }

    /// EPLB's entry point: hierarchical when the groups divide over the nodes, else global (one group, one
    /// node).
    public static func rebalance(_ weights: [Double], physical r: Int, groups g: Int, nodes n: Int, gpus w: Int) -> LayerPlacement {
        g % n == 0 && weights.count % g == 0 ? hierarchical(weights, physical: r, groups: g, nodes: n, gpus: w)
            : hierarchical(weights, physical: r, groups: 1, nodes: 1, gpus: w)
    }
}
