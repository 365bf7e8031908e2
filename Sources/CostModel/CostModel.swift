// The Step-3 paper's analytic decoding-cost model (arXiv 2507.19427 §4-5, "Step-3 is Large yet
// Affordable"), as ../shared/research/ep-anchors.md §1.2 sets it out:
//   attention = max(FLOP_attn · U_FLOP, Byte_KV · U_byte) + FLOP_linear · U_FLOP
//   FFN       = FLOP_FFN · U_FLOP
// per token, with U = price per hour / 3600 / peak; for AFD each part runs on its cheapest chip.
// Conventions: FP8 weights and KV (1 byte per element); MLA counts 576 = 512 + 64 elements per token and
// layer and d_qk = d_v = 576 (latent-absorbed); embeddings and the LM head are ignored.
//
// Dimension legend: L layers, C context, n_q query heads, n_kv KV heads, d head dims.
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

    /// Creates a group.
    public init(layers: Int, queryHeads: Int, kvElementsPerToken: Int, qkPlusV: Int, window: Int = 0, kvBytesPerElement: Double = 1) {
        self.layers = layers
        self.queryHeads = queryHeads
        self.kvElementsPerToken = kvElementsPerToken
        self.qkPlusV = qkPlusV
        self.window = window
        self.kvBytesPerElement = kvBytesPerElement
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
    /// Where the numbers come from.
    public var source: String

    /// Creates a spec.
    public init(name: String, attention: [AttentionSpec], attentionLinearParams: Double, activeFFNParams: Double, source: String) {
        self.name = name
        self.attention = attention
        self.attentionLinearParams = attentionLinearParams
        self.activeFFNParams = activeFFNParams
        self.source = source
    }

    /// KV bytes read per decoded token at `context`.
    public func byteKV(context c: Int) -> Double {
        attention.reduce(0) { acc, a in
            acc + Double(a.layers * a.kvElementsPerToken) * Double(a.window > 0 ? min(c, a.window) : c) * a.kvBytesPerElement
        }
    }

    /// Attention core FLOPs (scores and weighted values) per decoded token at `context`.
    public func flopAttention(context c: Int) -> Double {
        attention.reduce(0) { acc, a in
            acc + 2 * Double(a.queryHeads * a.qkPlusV) * Double(a.window > 0 ? min(c, a.window) : c) * Double(a.layers)
        }
    }

    /// Attention projection FLOPs per token.
    public var flopLinear: Double { 2 * attentionLinearParams }
    /// FFN FLOPs per token.
    public var flopFFN: Double { 2 * activeFFNParams }
}

/// A chip as the cost model prices it.
public struct HardwareProfile: Codable, Sendable, Equatable {
    public var name: String
    /// Rental price, dollars per hour.
    public var pricePerHour: Double
    /// Peak FLOP/s at the precision the model uses (FP8 where the chip has it, else BF16).
    public var flops: Double
    /// Memory bandwidth, bytes/s.
    public var memoryBandwidth: Double
    public var source: String

    /// Creates a profile.
    public init(name: String, pricePerHour: Double, flops: Double, memoryBandwidth: Double, source: String) {
        self.name = name
        self.pricePerHour = pricePerHour
        self.flops = flops
        self.memoryBandwidth = memoryBandwidth
        self.source = source
    }

    /// Dollars per FLOP and per byte read.
    public var uFLOP: Double { pricePerHour / 3600 / flops }
    public var uByte: Double { pricePerHour / 3600 / memoryBandwidth }
}

/// The model's per-token cost, in dollars.
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
