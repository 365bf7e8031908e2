import Testing
import Tuning

/// EPLB (the baseline) on cases worked by hand.
@Suite struct EPLBTests {
    /// If this fails, balanced packing no longer goes heaviest first into the lightest pack with room:
    /// [4, 3, 2, 1] into 2 packs of 2 → 4 to pack 0, 3 to pack 1, 2 to pack 1 (3 < 4), 1 to pack 0: loads
    /// 5 and 5.
    @Test func balancedPackingByHand() {
        let (pack, rank) = EPLB.balancedPacking([4, 3, 2, 1], packs: 2)
        #expect(pack == [0, 1, 1, 0] && rank == [0, 0, 1, 1])
    }

    /// If this fails, replication no longer gives each redundant slot to the expert with the most load per
    /// copy: loads [6, 2, 1] in 5 slots → copy expert 0 (6 > 2 > 1), then expert 0 again? 6/2 = 3 > 2, yes.
    @Test func replicateByHand() {
        let (slot, copies) = EPLB.replicate([6, 2, 1], physical: 5)
        #expect(slot == [0, 1, 2, 0, 0] && copies == [3, 1, 1])
    }

    /// If this fails, the hierarchical policy stops keeping groups whole on nodes: 8 experts in 4 groups of
    /// 2 on 2 nodes of 2 GPUs, no redundancy; each node's GPUs must hold whole groups between them.
    @Test func hierarchicalKeepsGroupsOnNodes() {
        let load: [Double] = [8, 1, 1, 1, 4, 4, 2, 2]
        let p = EPLB.hierarchical(load, physical: 8, groups: 4, nodes: 2, gpus: 4)
        #expect(p.covers(experts: 8) && p.slots.allSatisfy { $0.count == 2 })
        let node0 = Set(p.slots[0] + p.slots[1])
        for g in 0..<4 { #expect(node0.contains(2 * g) == node0.contains(2 * g + 1), "group \(g) split across nodes") }
    }
}

/// The tuner: coverage, caps, and beating EPLB on skewed loads.
@Suite struct TunerTests {
    /// If this fails, a tuned placement drops an expert, gives a worker more or fewer slots than its share,
    /// or ignores the memory cap: 288 experts, 8 workers, 32 redundant slots → 40 slots each, every expert
    /// placed, no expert twice on one worker; a cap of 39 is refused with a message.
    @Test func placementsCoverEveryExpertWithinCaps() throws {
        let loads = Zipf.loads(layers: 3, experts: 288, exponent: 1.2, seed: 4)
        var o = TuneOptions(workers: 8)
        o.redundant = 32
        o.groups = 8
        o.capacity = 40
        for policy in TuneOptions.Policy.allCases {
            o.policy = policy
            for p in try Tuner.tune(loads, o) {
                #expect(p.covers(experts: 288) && p.slots.allSatisfy { $0.count == 40 }, "\(policy)")
                #expect(p.slots.allSatisfy { Set($0).count == $0.count } || policy != .refined, "refined placements keep one copy per worker")
            }
        }
        o.capacity = 39
        #expect(throws: TuneError.self) { try Tuner.tune(loads, o) }
        o.capacity = nil
        o.redundant = 30
        #expect(throws: TuneError.self) { try Tuner.tune(loads, o) }
    }

    /// If this fails, the tuner loses to EPLB somewhere on the grid: Zipf exponents 1.0 and 1.5,
    /// 288 experts, 8 and 32 workers, 0 and 32 redundant slots, 4 layers each; its max/mean worker load
    /// must be at most EPLB's (same input, EPLB's own choice of hierarchical or global), and both must beat
    /// the contiguous layout.
    @Test(arguments: [1.0, 1.5])
    func tunerAtLeastMatchesEPLBOnZipf(exponent: Double) throws {
        let loads = Zipf.loads(layers: 4, experts: 288, exponent: exponent, seed: 11)
        for workers in [8, 32] {
            for redundant in [0, 32] {
                var o = TuneOptions(workers: workers)
                o.redundant = redundant
                o.groups = 8
                let ours = try Tuner.tune(loads, o)
                for (l, load) in loads.enumerated() {
                    let eplb = EPLB.rebalance(load, physical: 288 + redundant, groups: 8, nodes: 1, gpus: workers)
                    let a = ours[l].maxOverMean(load), b = eplb.maxOverMean(load)
                    let base = LayerPlacement.contiguous(experts: 288, workers: workers).maxOverMean(load)
                    #expect(a <= b + 1e-9, "s=\(exponent) W=\(workers) R+\(redundant) layer \(l): ours \(a) vs EPLB \(b)")
                    #expect(b < base, "EPLB \(b) vs contiguous \(base)")
                }
            }
        }
    }

    /// If this fails, the refinement can make a placement worse: from a deliberately bad start (all hot
    /// experts on worker 0) it must not raise the max load, and here it must lower it.
    @Test func refinementNeverWorsens() {
        let load: [Double] = [9, 8, 7, 6, 1, 1, 1, 1]
        let bad = LayerPlacement(slots: [[0, 1, 2, 3], [4, 5, 6, 7]])
        let r = Tuner.refine(bad, load: load)
        #expect(r.maxOverMean(load) < bad.maxOverMean(load))
        #expect(r.covers(experts: 8) && r.slots.map(\.count) == [4, 4])
    }
}

/// The Zipf generator.
@Suite struct ZipfTests {
    /// If this fails, sampled counts stop adding up (every token routes exactly k distinct experts) or stop
    /// being skewed and reproducible: 500 tokens x top-8 over 288 experts at s = 1.5.
    @Test func sampledCountsAddUpAndAreSkewed() {
        let a = Zipf.sample(layers: 2, experts: 288, exponent: 1.5, tokens: 500, k: 8, seed: 3)
        let b = Zipf.sample(layers: 2, experts: 288, exponent: 1.5, tokens: 500, k: 8, seed: 3)
        #expect(a == b)
        for row in a {
            #expect(row.reduce(0, +) == 500 * 8)
            #expect(row.allSatisfy { $0 <= 500 })  // distinct experts per token: at most one row per token
            #expect(Double(row.max()!) > 10 * Double(row.reduce(0, +)) / 288)
        }
        #expect(a[0] != a[1])  // each layer has its own hot experts
    }
}
