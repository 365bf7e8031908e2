// The Step-3 paper's analytic decoding-cost model (arXiv 2507.19427 §4-5, "Step-3 is Large yet
// Affordable"), as ../shared/research/ep-anchors.md §1.2 sets it out:
//   attention = max(FLOP_attn · U_FLOP, Byte_KV · U_byte) + FLOP_linear · U_FLOP
//   FFN       = FLOP_FFN · U_FLOP
// per token, with U = price per hour / 3600 / peak; for AFD each part runs on its cheapest chip.
// Conventions: FP8 weights and KV (1 byte per element); MLA counts 576 = 512 + 64 elements per token and
// layer and d_qk = d_v = 576 (latent-absorbed); embeddings and the LM head are ignored.
// Serving.swift adds what 128K serving needs on top (memory-limited batch, SLA, MTP, weight reads).
//
// Dimension legend: L layers, C context, n_q query heads, n_kv KV heads, d head dims, k top-k keys.
import Foundation

/// Attention of one group of layers, as the cost model sees it.
public struct AttentionSpec: Codable, Sendable, Equatable {
    /// Layers of this kind.
    public var layers: Int
    /// Query heads.
    public var queryHeads: Int
    /// KV elements stored per token per layer (GQA: 2·n_kv·d; MLA: 576).
    public var kvElementsPerToken: Int
    /// d_qk + d_v used by the score and value products per query head (MLA: 576 + 576).
    public var qkPlusV: Int
    /// Sliding window (0: full attention over the whole context).
    public var window: Int = 0
    /// Bytes per KV element (1 for FP8; 2 for BF16 KV).
    public var kvBytesPerElement: Double = 1
    /// KV heads the cache can be split by under tensor-parallel attention (GQA: n_kv; MLA: 1, the latent
    /// is shared by every head).
    public var kvHeads: Int = 1
    /// Sparse attention (DeepSeek DSA): keys each query attends to (0: all of them).
    public var selectedKeys: Int = 0
    /// Sparse attention's indexer: heads and key width scored against every cached token (0: none).
    public var indexerHeads: Int = 0
    public var indexerDim: Int = 0
    /// Bytes per indexer key element (FP8 plus one 4-byte scale per 128).
    public var indexerBytesPerElement: Double = 1 + 4.0 / 128

    /// Creates a group.
    public init(layers: Int, queryHeads: Int, kvElementsPerToken: Int, qkPlusV: Int, window: Int = 0, kvBytesPerElement: Double = 1,
                kvHeads: Int = 1, selectedKeys: Int = 0, indexerHeads: Int = 0, indexerDim: Int = 0) {
        self.layers = layers
        self.queryHeads = queryHeads
        self.kvElementsPerToken = kvElementsPerToken
        self.qkPlusV = qkPlusV
        self.window = window
        self.kvBytesPerElement = kvBytesPerElement
        self.kvHeads = kvHeads
        self.selectedKeys = selectedKeys
        self.indexerHeads = indexerHeads
        self.indexerDim = indexerDim
    }

    /// Cached positions at context `c` (the window caps sliding-window layers).
    func cached(_ c: Int) -> Double { Double(window > 0 ? min(c, window) : c) }
    /// Positions each query reads values from.
    func attended(_ c: Int) -> Double { selectedKeys > 0 ? min(cached(c), Double(selectedKeys)) : cached(c) }

    /// Bytes one decoded token reads from the cache of these layers.
    public func kvRead(context c: Int) -> Double {
        Double(layers) * (attended(c) * Double(kvElementsPerToken) * kvBytesPerElement
            + cached(c) * Double(indexerDim) * (indexerDim > 0 ? indexerBytesPerElement : 0))
    }

    /// Bytes one sequence keeps in these layers' cache.
    public func kvStored(context c: Int) -> Double {
        Double(layers) * cached(c) * (Double(kvElementsPerToken) * kvBytesPerElement
            + Double(indexerDim) * (indexerDim > 0 ? indexerBytesPerElement : 0))
    }

    /// Core attention FLOPs of one query token (scores and weighted values, plus the indexer's scores).
    public func flops(context c: Int) -> Double {
        Double(layers) * (2 * Double(queryHeads * qkPlusV) * attended(c) + 2 * Double(indexerHeads * indexerDim) * cached(c))
    }
}

/// A model's per-token decode inputs.
public struct ModelCostSpec: Codable, Sendable, Equatable {
    public var name: String
    /// Attention layer groups (one for uniform models; full + sliding-window for hybrids).
    public var attention: [AttentionSpec]
    /// Attention projection parameters over all layers (FLOP_linear = 2x).
    public var attentionLinearParams: Double
    /// Active FFN parameters per token over all layers (FLOP_FFN = 2x).
    public var activeFFNParams: Double
    /// All parameters, and the routed experts' share of them (what expert parallelism splits).
    public var totalParams: Double = 0
    public var routedExpertParams: Double = 0
    /// Routed experts per MoE layer and experts each token uses (for the fraction a batch touches).
    public var experts: Int = 0
    public var expertsPerToken: Int = 0
    /// MTP (next-token prediction) layers the checkpoint ships.
    public var mtpLayers: Int = 0
    /// Hidden width and MoE layers (what one token sends to and gets back from the experts).
    public var hidden: Int = 0
    public var moeLayers: Int = 0
    /// Where the numbers come from.
    public var source: String

    /// Creates a spec.
    public init(name: String, attention: [AttentionSpec], attentionLinearParams: Double, activeFFNParams: Double,
                totalParams: Double = 0, routedExpertParams: Double = 0, experts: Int = 0, expertsPerToken: Int = 0,
                mtpLayers: Int = 0, hidden: Int = 0, moeLayers: Int = 0, source: String) {
        self.name = name
        self.attention = attention
        self.attentionLinearParams = attentionLinearParams
        self.activeFFNParams = activeFFNParams
        self.totalParams = totalParams
        self.routedExpertParams = routedExpertParams
        self.experts = experts
        self.expertsPerToken = expertsPerToken
        self.mtpLayers = mtpLayers
        self.hidden = hidden
        self.moeLayers = moeLayers
        self.source = source
    }

    /// KV bytes read per decoded token at `context` (the paper's Byte_KV).
    public func byteKV(context c: Int) -> Double { attention.reduce(0) { $0 + $1.kvRead(context: c) } }
    /// KV bytes one sequence keeps at `context`.
    public func kvStored(context c: Int) -> Double { attention.reduce(0) { $0 + $1.kvStored(context: c) } }
    /// Attention core FLOPs (scores and weighted values) per decoded token at `context`.
    public func flopAttention(context c: Int) -> Double { attention.reduce(0) { $0 + $1.flops(context: c) } }
    /// Attention projection FLOPs per token.
    public var flopLinear: Double { 2 * attentionLinearParams }
    /// FFN FLOPs per token.
    public var flopFFN: Double { 2 * activeFFNParams }
    /// Attention arithmetic intensity at `context`: FLOP_attn / Byte_KV (the paper's Table 2 column).
    public func arithmeticIntensity(context c: Int) -> Double { flopAttention(context: c) / byteKV(context: c) }

    /// This model with every KV element stored in `bytes` bytes (the KV-precision knob).
    public func withKVBytes(_ bytes: Double) -> ModelCostSpec {
        var m = self
        for i in m.attention.indices { m.attention[i].kvBytesPerElement = bytes }
        return m
    }
}

/// The paper's per-token cost, in dollars.
public enum DecodeCost {
    /// Attention part on `hw` at `context`.
    public static func attention(_ m: ModelCostSpec, context c: Int, on hw: HardwareProfile) -> Double {
        max(m.flopAttention(context: c) * hw.uFLOP, m.byteKV(context: c) * hw.uByte) + m.flopLinear * hw.uFLOP
    }

    /// FFN part on `hw`.
    public static func ffn(_ m: ModelCostSpec, on hw: HardwareProfile) -> Double { m.flopFFN * hw.uFLOP }

    /// AFD: each part on its cheapest chip among `chips`; returns the total and the chosen chips.
    public static func afd(_ m: ModelCostSpec, context c: Int, chips: [HardwareProfile]) -> (total: Double, attention: String, ffn: String) {
        let a = chips.min { attention(m, context: c, on: $0) < attention(m, context: c, on: $1) }!
        let f = chips.min { ffn(m, on: $0) < ffn(m, on: $1) }!
        return (attention(m, context: c, on: a) + ffn(m, on: f), a.name, f.name)
    }
}
