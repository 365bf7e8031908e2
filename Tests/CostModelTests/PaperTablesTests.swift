import CostModel
import Testing

/// The Step-3 paper's Tables 2 and 6 as printed by `switchyard cost --table step3-paper`, against the
/// paper's own numbers.
@Suite struct PaperTablesTests {
    func close(_ a: Double, _ b: Double, _ rel: Double = 0.02) -> Bool { abs(a - b) <= rel * abs(b) }

    /// If this fails, Table 2 (attention at 32K: Byte_KV, FLOP_attn, arithmetic intensity per model) no
    /// longer matches the paper within 2%. Paper values: DSv3 1.15e9 B, 5.89e11, 512; Kimi K2 1.15e9,
    /// 2.95e11, 256; Qwen3 3.15e9, 1.01e11, 32; ERNIE 4.5 3.60e9, 5.80e10, 16; Step-3 1.02e9, 1.31e11, 128.
    @Test func table2AttentionIntensity() {
        let want: [(Double, Double, Double)] = [
            (1.15e9, 5.89e11, 512), (1.15e9, 2.95e11, 256), (3.15e9, 1.01e11, 32), (3.60e9, 5.80e10, 16), (1.02e9, 1.31e11, 128),
        ]
        for (m, w) in zip(ModelCostSpec.step3Paper, want) {
            #expect(close(m.byteKV(context: 32768), w.0), "\(m.name) Byte_KV")
            #expect(close(m.flopAttention(context: 32768), w.1), "\(m.name) FLOP_attn")
            #expect(close(m.arithmeticIntensity(context: 32768), w.2), "\(m.name) intensity \(m.arithmeticIntensity(context: 32768))")
        }
    }

    /// If this fails, Table 6's AFD totals (dollars per 1M tokens, attention on its cheapest chip + FFN on
    /// its cheapest, H800 and H20) drift over 2% from the paper's: 8K Step-3 0.055, DSv3 0.068, Qwen3
    /// 0.062, Kimi K2 0.065; 32K 0.129, 0.211, 0.193, 0.208 (the paper's Figure 1 / Table 6 totals).
    @Test func table6AFDTotals() {
        let paper: [(ModelCostSpec, Double, Double)] = [
            (.step3, 0.055, 0.129), (.deepSeekV3, 0.068, 0.211), (.qwen3, 0.062, 0.193), (.kimiK2, 0.065, 0.208),
        ]
        for (m, at8, at32) in paper {
            let a = DecodeCost.afd(m, context: 8192, chips: [.h800, .h20]).total * 1e6
            let b = DecodeCost.afd(m, context: 32768, chips: [.h800, .h20]).total * 1e6
            #expect(close(a, at8), "\(m.name) AFD 8K \(a)")
            #expect(close(b, at32), "\(m.name) AFD 32K \(b)")
        }
    }

    /// If this fails, the per-chip cells of Table 6 lose their structure: the paper's AFD picks H20 for
    /// attention of the GQA and MFA models and H800 for MLA, and H800 for every FFN.
    @Test func table6ChipChoices() {
        let want = ["H800", "H800", "H20", "H20", "H20"]
        for (m, w) in zip(ModelCostSpec.step3Paper, want) {
            let r = DecodeCost.afd(m, context: 32768, chips: [.h800, .h20])
            #expect(r.attention == w && r.ffn == "H800", "\(m.name): \(r.attention) + \(r.ffn)")
        }
    }
}
