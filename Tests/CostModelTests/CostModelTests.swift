import CostModel
import Testing

/// The Step-3 paper's cost model: its inputs, units and arithmetic.
@Suite struct CostModelTests {
    func close(_ a: Double, _ b: Double, _ rel: Double = 0.02) -> Bool { abs(a - b) <= rel * abs(b) }

    /// If this fails, a model's per-token inputs at 32K no longer reproduce the paper's Table 3 (as quoted
    /// in ep-anchors.md §1.2) within 2%: Byte_KV, FLOP_attn, FLOP_linear, FLOP_FFN.
    @Test func table3Inputs() {
        let want: [(Double, Double, Double, Double)] = [
            (1.15e9, 5.89e11, 2.28e10, 4.84e10), (1.15e9, 2.95e11, 1.23e10, 4.84e10), (3.15e9, 1.01e11, 1.34e10, 2.84e10),
            (3.62e9, 5.80e10, 1.63e10, 7.61e10), (1.02e9, 1.31e11, 2.07e10, 5.33e10),
        ]
        for (m, w) in zip(ModelCostSpec.step3Paper, want) {
            #expect(close(m.byteKV(context: 32768), w.0), "\(m.name) Byte_KV \(m.byteKV(context: 32768))")
            #expect(close(m.flopAttention(context: 32768), w.1), "\(m.name) FLOP_attn \(m.flopAttention(context: 32768))")
            #expect(close(m.flopLinear, w.2), "\(m.name) FLOP_linear \(m.flopLinear)")
            #expect(close(m.flopFFN, w.3), "\(m.name) FLOP_FFN \(m.flopFFN)")
        }
    }

    /// If this fails, the unit costs differ from the paper's Table 5 (U_FLOP, U_byte per chip) by over 2%.
    @Test func table5Units() {
        let want: [(Double, Double)] = [(2.80e-19, 1.66e-16), (7.51e-19, 5.56e-17), (6.68e-19, 1.04e-16), (6.65e-19, 1.16e-16)]
        for (hw, w) in zip(HardwareProfile.step3Paper, want) {
            #expect(close(hw.uFLOP, w.0), "\(hw.name) U_FLOP \(hw.uFLOP)")
            #expect(close(hw.uByte, w.1), "\(hw.name) U_byte \(hw.uByte)")
        }
    }

    /// If this fails, the cost formula's arithmetic is wrong on a case computed by hand: 1 layer, 2 heads,
    /// 2 KV heads of 4 (16 KV elements per token, d_qk + d_v = 8), context 10, FP8 KV; linear 100 and FFN
    /// 1000 parameters; a chip at $3.6/h with 1e3 FLOP/s and 1e2 B/s (U_FLOP 1e-6, U_byte 1e-5 $).
    /// Byte_KV = 16·10 = 160 → 1.6e-3 $; FLOP_attn = 2·2·8·10 = 320 → 3.2e-4 $; memory-bound, so
    /// attention = 1.6e-3 + 200·1e-6 = 1.8e-3 $, FFN = 2000·1e-6 = 2e-3 $. With a 4-token window the KV
    /// term is 16·4 = 64 bytes → 6.4e-4 $ and attention = 8.4e-4 $.
    @Test func handComputedCase() {
        let chip = HardwareProfile(name: "toy", pricePerHour: 3.6, flopsF32: 1e3, memoryBandwidth: 1e2, source: "test")
        var m = ModelCostSpec(name: "toy", attention: [AttentionSpec(layers: 1, queryHeads: 2, kvElementsPerToken: 16, qkPlusV: 8)],
                              attentionLinearParams: 100, activeFFNParams: 1000, source: "test")
        #expect(close(DecodeCost.attention(m, context: 10, on: chip), 1.8e-3, 1e-9))
        #expect(close(DecodeCost.ffn(m, on: chip), 2e-3, 1e-9))
        m.attention[0].window = 4
        #expect(close(DecodeCost.attention(m, context: 10, on: chip), 8.4e-4, 1e-9))
        let fast = HardwareProfile(name: "fast", pricePerHour: 3.6, flopsF32: 1e4, memoryBandwidth: 1e2, source: "test")
        let afd = DecodeCost.afd(m, context: 10, chips: [chip, fast])
        #expect(afd.ffn == "fast" && close(afd.total, DecodeCost.attention(m, context: 10, on: fast) + 2e-4, 1e-9))
    }
}
