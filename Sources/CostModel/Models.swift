// The model configurations `switchyard cost` ships, with where each number comes from
// (../shared/research/ep-anchors.md §1.5 gathers the sources; step35-architecture.md §1 for Step 3.5).
// Attention shapes are the published configs; projection and FFN parameter counts are derived from them
// (biases and norms ignored, under 0.1%); totals are the published sizes.
import Foundation

/// Parameter counts derived from a published shape.
enum Params {
    /// GQA projections of one layer: q, k, v, o (+ a per-head output gate when `gate`).
    static func gqa(hidden: Int, heads: Int, kv: Int, keyDim: Int, valueDim: Int, gate: Bool = false) -> Double {
        Double(hidden * heads * keyDim + hidden * kv * (keyDim + valueDim) + heads * valueDim * hidden + (gate ? hidden * heads : 0))
    }

    /// SwiGLU experts: `count` of width `ffn` on `hidden` (gate, up, down).
    static func experts(_ count: Int, hidden: Int, ffn: Int) -> Double { Double(count) * 3 * Double(hidden) * Double(ffn) }
}

extension ModelCostSpec {
    /// Step 3.5 Flash: 45 layers (3 dense), 12 full-attention layers with 64 query heads and 33 sliding-window
    /// layers (512) with 96, 8 KV heads of 128, head-wise output gate; 288 routed experts of 1280, top-8,
    /// 1 shared; 3 MTP blocks.
    public static let step35Flash: ModelCostSpec = {
        let h = 4096
        let full = Params.gqa(hidden: h, heads: 64, kv: 8, keyDim: 128, valueDim: 128, gate: true)
        let swa = Params.gqa(hidden: h, heads: 96, kv: 8, keyDim: 128, valueDim: 128, gate: true)
        return ModelCostSpec(
            name: "Step 3.5 Flash",
            attention: [gqa(layers: 12, heads: 64, kv: 8, dim: 128), gqa(layers: 33, heads: 96, kv: 8, dim: 128, window: 512)],
            attentionLinearParams: 12 * full + 33 * swa,
            activeFFNParams: 3 * Params.experts(1, hidden: h, ffn: 11264) + 42 * Params.experts(9, hidden: h, ffn: 1280),
            totalParams: 196.8e9, routedExpertParams: 42 * Params.experts(288, hidden: h, ffn: 1280), experts: 288, expertsPerToken: 8,
            mtpLayers: 3, hidden: h, moeLayers: 42, source: "step35-architecture.md §1, §3 (GGUF step35.*); 196.8B from the Step-3.5-Flash README")
    }()

    /// DeepSeek V3.2: DeepSeek V3 (61 layers of MLA with 128 heads, 3 dense + 58 MoE layers of 8 of 256
    /// experts of 2048 + 1 shared) plus DSA: a 64-head indexer of width 128 scores every cached token and each
    /// query attends to the top 2048. KV: FlashMLA's FP8 layout, 656 bytes per token and layer.
    public static let deepSeekV32: ModelCostSpec = {
        var mla = ModelCostSpec.mla(layers: 61, heads: 128, kvBytes: 656.0 / 576)
        mla.selectedKeys = 2048
        mla.indexerHeads = 64
        mla.indexerDim = 128
        // Indexer projections per layer: q from the 1536-wide query latent to 64 x 128, k 7168 -> 128,
        // head weights 7168 -> 64.
        let indexer = 61.0 * Double(1536 * 64 * 128 + 7168 * 128 + 7168 * 64)
        return ModelCostSpec(
            name: "DeepSeek V3.2", attention: [mla], attentionLinearParams: ModelCostSpec.deepSeekV3.attentionLinearParams + indexer,
            activeFFNParams: ModelCostSpec.deepSeekV3.activeFFNParams,
            totalParams: 671e9, routedExpertParams: 58 * Params.experts(256, hidden: 7168, ffn: 2048), experts: 256, expertsPerToken: 8,
            mtpLayers: 1, hidden: 7168, moeLayers: 58, source: "transformers deepseek_v32 config.json (index_n_heads 64, index_head_dim 128, index_topk 2048); FlashMLA FP8 KV 656 B")
    }()

    /// Kimi K2: DeepSeek V3's shape with 64 heads, 1 dense + 60 MoE layers of 8 of 384 experts + 1 shared.
    public static let kimiK2Serving: ModelCostSpec = {
        var m = ModelCostSpec.kimiK2
        m.totalParams = 1.04e12
        m.routedExpertParams = 60 * Params.experts(384, hidden: 7168, ffn: 2048)
        m.experts = 384
        m.expertsPerToken = 8
        m.hidden = 7168
        m.moeLayers = 60
        m.source = "ktransformers doc/en/Kimi-K2.md (DeepSeek V3 with 384 experts, 64 heads); 1.04T total"
        return m
    }()

    /// GLM-4.7 (the GLM-4.5 355B architecture): 92 layers (3 dense of 12288), hidden 5120, 96 query heads and
    /// 8 KV heads of 128 on every layer, 8 of 160 experts of 1536 + 1 shared; 1 MTP layer.
    public static let glm47: ModelCostSpec = {
        let h = 5120
        return ModelCostSpec(
            name: "GLM-4.7", attention: [gqa(layers: 92, heads: 96, kv: 8, dim: 128)],
            attentionLinearParams: 92 * Params.gqa(hidden: h, heads: 96, kv: 8, keyDim: 128, valueDim: 128),
            activeFFNParams: 3 * Params.experts(1, hidden: h, ffn: 12288) + 89 * Params.experts(9, hidden: h, ffn: 1536),
            totalParams: 355e9, routedExpertParams: 89 * Params.experts(160, hidden: h, ffn: 1536), experts: 160, expertsPerToken: 8,
            mtpLayers: 1, hidden: h, moeLayers: 89, source: "zai-org/GLM-4.5 README; slime scripts/models/glm4.5-355B-A32B.sh")
    }()

    /// MiniMax M2.1: 62 layers, hidden 3072, 48 query heads and 8 KV heads of 128 on every layer, 8 of 256
    /// experts of 1536, no shared expert; 3 MTP modules.
    public static let miniMaxM21: ModelCostSpec = {
        let h = 3072
        return ModelCostSpec(
            name: "MiniMax M2.1", attention: [gqa(layers: 62, heads: 48, kv: 8, dim: 128)],
            attentionLinearParams: 62 * Params.gqa(hidden: h, heads: 48, kv: 8, keyDim: 128, valueDim: 128),
            activeFFNParams: 62 * Params.experts(8, hidden: h, ffn: 1536),
            totalParams: 230e9, routedExpertParams: 62 * Params.experts(256, hidden: h, ffn: 1536), experts: 256, expertsPerToken: 8,
            mtpLayers: 3, hidden: h, moeLayers: 62, source: "GPTQModel hf_minimax_m2; Tenstorrent note (256 routed, no shared, 3 MTP modules)")
    }()

    /// MiMo-V2-Flash: 48 layers (1 dense of 16384), hidden 4096, 64 query heads with keys of 192 and values
    /// of 128; 9 full-attention layers with 4 KV heads and 39 sliding-window layers (128) with 8; 8 of 256
    /// experts of 2048, no shared; 3 MTP layers.
    public static let miMoV2Flash: ModelCostSpec = {
        let h = 4096
        return ModelCostSpec(
            name: "MiMo-V2-Flash",
            attention: [gqa(layers: 9, heads: 64, kv: 4, keyDim: 192, valueDim: 128),
                        gqa(layers: 39, heads: 64, kv: 8, keyDim: 192, valueDim: 128, window: 128)],
            attentionLinearParams: 9 * Params.gqa(hidden: h, heads: 64, kv: 4, keyDim: 192, valueDim: 128)
                + 39 * Params.gqa(hidden: h, heads: 64, kv: 8, keyDim: 192, valueDim: 128),
            activeFFNParams: Params.experts(1, hidden: h, ffn: 16384) + 47 * Params.experts(8, hidden: h, ffn: 2048),
            totalParams: 309e9, routedExpertParams: 47 * Params.experts(256, hidden: h, ffn: 2048), experts: 256, expertsPerToken: 8,
            mtpLayers: 3, hidden: h, moeLayers: 47, source: "transformers mimo_v2_flash configuration; MiMo README (5:1 SWA:full, window 128, 3 MTP layers); SWA KV heads 8 from the HF config as third-party loaders echo it")
    }()

    /// The six models of the seed table, in its order.
    public static let seedModels: [ModelCostSpec] = [step35Flash, deepSeekV32, kimiK2Serving, glm47, miniMaxM21, miMoV2Flash]
    /// Every built-in model by its command-line name.
    public static let builtIn: [String: ModelCostSpec] = [
        "step35-flash": step35Flash, "deepseek-v3.2": deepSeekV32, "kimi-k2": kimiK2Serving, "glm-4.7": glm47,
        "minimax-m2.1": miniMaxM21, "mimo-v2-flash": miMoV2Flash, "deepseek-v3": deepSeekV3, "qwen3-235b": qwen3,
        "ernie-4.5": ernie45, "step3": step3,
    ]
}
