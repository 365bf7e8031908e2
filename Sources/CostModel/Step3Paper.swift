// The models and chips of the Step-3 paper's cost tables (arXiv 2507.19427, Tables 3-6), with where each
// number comes from. Attention shapes are public model configs; projection and FFN parameter counts are
// derived from them where the architecture is fully public, otherwise taken from the paper's Table 3
// (quoted in ../shared/research/ep-anchors.md §1.2).
import Foundation

extension ModelCostSpec {
    /// Multi-head latent attention (DeepSeek V3 style): 576 latent elements per token and layer, and
    /// d_qk = d_v = 576 in the absorbed form.
    static func mla(layers: Int, heads: Int, kvBytes: Double = 1) -> AttentionSpec {
        AttentionSpec(layers: layers, queryHeads: heads, kvElementsPerToken: 576, qkPlusV: 1152, kvBytesPerElement: kvBytes)
    }

    /// Grouped-query attention with `kv` KV heads of `dim`.
    static func gqa(layers: Int, heads: Int, kv: Int, dim: Int, window: Int = 0, kvBytes: Double = 1) -> AttentionSpec {
        gqa(layers: layers, heads: heads, kv: kv, keyDim: dim, valueDim: dim, window: window, kvBytes: kvBytes)
    }

    /// Grouped-query attention whose keys and values differ in width (MiMo: 192 / 128).
    static func gqa(layers: Int, heads: Int, kv: Int, keyDim: Int, valueDim: Int, window: Int = 0, kvBytes: Double = 1) -> AttentionSpec {
        AttentionSpec(layers: layers, queryHeads: heads, kvElementsPerToken: kv * (keyDim + valueDim), qkPlusV: keyDim + valueDim,
                      window: window, kvBytesPerElement: kvBytes, kvHeads: kv)
    }

    /// DeepSeek V3: 61 layers of MLA with 128 heads; 3 dense layers (18432) + 58 MoE layers of 8 routed
    /// + 1 shared experts of 2048, hidden 7168.
    public static let deepSeekV3 = ModelCostSpec(
        name: "DeepSeek-V3", attention: [mla(layers: 61, heads: 128)], attentionLinearParams: 11_413_422_080,
        activeFFNParams: 24_178_065_408,
        source: "config.json (hidden 7168, q_lora 1536, kv_lora 512 + rope 64, 128 heads of 128/192); params derived")
    /// Kimi K2: DeepSeek V3's shape with 64 heads, 1 dense layer + 60 MoE layers (8 of 384 + 1 shared).
    public static let kimiK2 = ModelCostSpec(
        name: "Kimi K2", attention: [mla(layers: 61, heads: 64)], attentionLinearParams: 6_168_444_928,
        activeFFNParams: 24_178_065_408, source: "config.json (as DeepSeek V3 with 64 heads); params derived")
    /// Qwen3-235B-A22B: 94 layers, 64 query heads, 4 KV heads of 128, 8 of 128 experts of 1536.
    public static let qwen3 = ModelCostSpec(
        name: "Qwen3-235B", attention: [gqa(layers: 94, heads: 64, kv: 4, dim: 128)], attentionLinearParams: 6_702_497_792,
        activeFFNParams: 14_193_524_736, source: "config.json (hidden 4096, 64/4 heads of 128, 8 experts of 1536); params derived")
    /// ERNIE 4.5 300B-A47B: 54 layers, 64 query heads, 8 KV heads of 128; FFN parameters from the paper.
    public static let ernie45 = ModelCostSpec(
        name: "ERNIE 4.5", attention: [gqa(layers: 54, heads: 64, kv: 8, dim: 128)], attentionLinearParams: 8_153_726_976,
        activeFFNParams: 3.805e10, source: "config.json (hidden 8192, 64/8 heads of 128); FFN params: paper Table 3")
    /// Step-3: 61 layers of MFA, 64 query heads sharing one KV head of 256; linear and FFN from the paper.
    public static let step3 = ModelCostSpec(
        name: "Step-3", attention: [gqa(layers: 61, heads: 64, kv: 1, dim: 256)], attentionLinearParams: 1.035e10,
        activeFFNParams: 2.665e10, source: "paper §3 (MFA, 64 heads, 1 KV head of 256); linear and FFN params: paper Table 3")

    /// The five models of the paper's Tables 3 and 6, in its order.
    public static let step3Paper: [ModelCostSpec] = [deepSeekV3, kimiK2, qwen3, ernie45, step3]
}

