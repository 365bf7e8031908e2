import CostModel
import Testing

/// The serving extension of the cost model (memory-limited batch, SLA, MTP) and the seed table.
@Suite struct ServingCostTests {
    func close(_ a: Double, _ b: Double, _ rel: Double = 0.02) -> Bool { abs(a - b) <= rel * abs(b) }

    /// A toy model and device whose step time is computed by hand (see `handComputedStep`).
    func toy(capacity: Double = 0) -> (ServingScenario, ServingKnobs) {
        let m = ModelCostSpec(name: "toy", attention: [AttentionSpec(layers: 1, queryHeads: 2, kvElementsPerToken: 16, qkPlusV: 8, kvHeads: 2)],
                              attentionLinearParams: 100, activeFFNParams: 1000, totalParams: 10000, routedExpertParams: 8000, source: "test")
        let hw = HardwareProfile(name: "toy", pricePerHour: 3.6, flopsF32: 1e6, memoryBandwidth: 1e4, memoryCapacity: capacity, source: "test")
        var k = ServingKnobs()
        k.bandwidthEfficiency = 1
        k.computeEfficiency = 1
        k.usableMemory = 1
        k.acceptance = 0.5
        k.attention = .replicated
        return (ServingScenario(model: m, hardware: hw, context: 10, ep: 2, mtp: 1, batch: 3), k)
    }

    /// If this fails, the step-time arithmetic is wrong on a case computed by hand: 3 sequences, MTP-1
    /// (2 tokens each, tau = 1 + 0.5 = 1.5), context 10. Attention: KV 3 x 160 B / 1e4 B/s = 0.048 s
    /// (compute 3 x 2 x 320 FLOP / 1e6 is smaller) + linear weights 100 B / 1e4 = 0.01 s. FFN: 1900 B of
    /// other weights + 8000 / 2 of experts = 5900 B / 1e4 = 0.59 s. Step 0.648 s; cost = 3.6/3600 x 0.648
    /// / (3 x 1.5) = 1.44e-4 dollars per token.
    @Test func handComputedStep() {
        let (s, k) = toy()
        let e = ServingCost.estimate(s, knobs: k)
        #expect(close(e.step.attention, 0.058, 1e-9) && close(e.step.ffn, 0.59, 1e-9))
        #expect(close(e.tokensPerStep, 1.5, 1e-12))
        #expect(close(e.costPerToken, 1.44e-4, 1e-9), "\(e.costPerToken)")
        #expect(close(e.attentionCost, 1.44e-4 * 0.058 / 0.648, 1e-9))
    }

    /// If this fails, the SLA no longer bounds the batch as computed by hand: with no batch given and
    /// 100,000 bytes of memory, memory allows (100000 - 6000) / 160 = 587.5 sequences, but 2 tok/s with
    /// tau = 1.5 needs a step <= 0.75 s, and the step is 0.6 + 0.016 b s, so b <= 9.375. The step is then
    /// paid at 0.75 s: cost = 1e-3 x 0.75 / (9.375 x 1.5) = 5.333e-5.
    @Test func slaBoundsTheBatch() {
        var (s, k) = toy(capacity: 100_000)
        s.batch = 0
        s.sla = 2
        let e = ServingCost.estimate(s, knobs: k)
        #expect(close(e.memoryLimit, 587.5, 1e-9))
        #expect(close(e.sequencesPerDevice, 9.375, 1e-6) && e.limitedBy == "sla", "\(e.sequencesPerDevice) \(e.limitedBy)")
        #expect(close(e.costPerToken, 5.333e-5, 1e-3))
        s.sla = 0
        let free = ServingCost.estimate(s, knobs: k)
        #expect(close(free.sequencesPerDevice, 587.5, 1e-9) && free.limitedBy == "memory")
    }

    /// If this fails, the serial exchange term is wrong on a case computed by hand: the toy has 1 MoE layer
    /// of hidden 10 and 2 experts per token; 3 sequences x 2 tokens = 6 tokens x 2 copies x 10 elements x
    /// (4 + 4) bytes = 960 bytes per layer, at 1e-3 s latency (two messages) and 960 B/s: 1.002 s. Overlapped
    /// (the default), the term is 0.
    @Test func serialExchangeIsLatencyPlusBytesOverBandwidth() {
        var (s, k) = toy()
        s.model.moeLayers = 1
        s.model.hidden = 10
        s.model.expertsPerToken = 2
        s.hardware.networkLatency = 1e-3
        s.hardware.networkBandwidth = 960
        #expect(ServingCost.estimate(s, knobs: k).step.exchange == 0)
        k.overlapExchange = false
        k.dispatchBytesPerElement = 4
        k.combineBytesPerElement = 4
        let e = ServingCost.estimate(s, knobs: k)
        #expect(close(e.step.exchange, 1.002, 1e-9), "\(e.step.exchange)")
    }

    /// If this fails, a deployment that cannot hold one sequence is priced instead of reported.
    @Test func infeasibleWhenKVDoesNotFit() {
        let (s0, k) = toy(capacity: 6100)
        var s = s0
        s.batch = 0
        let e = ServingCost.estimate(s, knobs: k)
        #expect(!e.feasible && e.limitedBy.hasPrefix("infeasible"))
    }

    /// If this fails, the shipped 128K inputs drift over 2% from the independent derivation in
    /// ep-anchors.md §1.6 (KV bytes at 1 byte per element, FLOP_attn, FLOP_linear, FLOP_FFN per token).
    @Test func seedInputsAt128K() {
        let want: [(Double, Double, Double, Double)] = [
            (3.26e9, 5.24e10, 9.0e9, 1.28e10), (1.10e9, 1.68e11, 2.46e10, 4.84e10), (4.61e9, 1.18e12, 1.23e10, 4.84e10),
            (2.47e10, 5.93e11, 2.50e10, 3.90e10), (1.66e10, 2.00e11, 5.5e9, 1.40e10), (1.52e9, 4.85e10, 9.0e9, 1.93e10),
        ]
        for (m0, w) in zip(ModelCostSpec.seedModels, want) {
            var m = m0.withKVBytes(1)
            for i in m.attention.indices { m.attention[i].indexerBytesPerElement = 1 }
            #expect(close(m.byteKV(context: 131_072), w.0), "\(m.name) KV \(m.byteKV(context: 131_072))")
            #expect(close(m.flopAttention(context: 131_072), w.1), "\(m.name) FLOP_attn \(m.flopAttention(context: 131_072))")
            #expect(close(m.flopLinear, w.2), "\(m.name) FLOP_linear \(m.flopLinear)")
            #expect(close(m.flopFFN, w.3), "\(m.name) FLOP_FFN \(m.flopFFN)")
        }
    }

    /// If this fails, the seed table no longer reproduces StepFun's published anchor: after calibration
    /// DeepSeek V3.2 must cost 6.0x Step 3.5 Flash within 10%, with every row feasible and the solved MTP
    /// acceptance strictly inside its search range (not pinned at a bound).
    @Test func seedTableCalibration() {
        let k = SeedTable.calibrate()
        let e = SeedTable.estimates(knobs: k)
        #expect(e.allSatisfy { $0.feasible })
        let ratio = e[1].costPerToken / e[0].costPerToken
        #expect(abs(ratio - 6.0) <= 0.6, "DeepSeek V3.2 / Step 3.5 Flash = \(ratio)")
        #expect(k.acceptance > 0.3 && k.acceptance < 0.99, "acceptance \(k.acceptance)")
    }
}
