// Built-in Step 3.5 Flash configuration and KV-cache sizing.
//
// Reference: ../shared/research/step35-architecture.md §1 (config), §3 (layer schedule: full attention iff
// i % 4 == 0 over 48 layers, 64 / 96 query heads, 8 KV heads, head dim 128, window 512), §4.3 (KV sizing:
// 12 full layers x 2 x 8 x 128 = 24,576 values per token; 12.0 GiB at 262,144 tokens in 16-bit).
import Foundation
import ModelKit

extension Step35Config {
    /// The released Step 3.5 Flash configuration (45 main layers + 3 MTP blocks), decoded from the
    /// checkpoint's own key names (GGUF `step35.*`).
    public static let flash: Step35Config = {
        let n = 48
        let full = (0..<n).map { $0 % 4 == 0 }
        let json: [String: Any] = [
            "context_length": 262_144, "embedding_length": 4096, "block_count": n, "nextn_predict_layers": 3,
            "feed_forward_length": 11264,
            "attention.head_count": full.map { $0 ? 64 : 96 }, "attention.head_count_kv": Array(repeating: 8, count: n),
            "attention.key_length": 128, "attention.value_length": 128, "attention.layer_norm_rms_epsilon": 1e-5,
            "attention.sliding_window": 512, "attention.sliding_window_pattern": full.map { !$0 },
            "rope.dimension_count_per_layer": full.map { $0 ? 64 : 128 },
            "rope.freq_base_per_layer": full.map { $0 ? 5_000_000.0 : 10_000.0 },
            "rope.scaling.apply_mask": full,
            "expert_count": 288, "expert_used_count": 8, "expert_feed_forward_length": 1280,
            "expert_shared_feed_forward_length": 1280, "expert_gating_func": 2, "expert_weights_scale": 3.0,
            "expert_weights_norm": true,
            "swiglu_clamp_exp": (0..<n).map { $0 == 43 || $0 == 44 ? 7.0 : 0.0 },
            "swiglu_clamp_shexp": (0..<n).map { $0 == 44 ? 16.0 : 0.0 },
            "vocab_size": 128_896,
        ]
        // The literal above is fixed and valid; failing to decode it is a programming error.
        return try! JSONDecoder().decode(Step35Config.self, from: JSONSerialization.data(withJSONObject: json))
    }()

    /// KV bytes per token of context (full-attention main layers: they keep every position).
    public func kvBytesPerToken(_ type: KVType) -> Int {
        (0..<layerCount).filter { !isSWA($0) }.reduce(0) { $0 + 2 * type.bytes(headCountKV[$1] * keyLength) }
    }

    /// KV bytes that do not grow with context: the sliding-window rings (window + maxPass - 1 slots each),
    /// and the MTP blocks' rings when `mtp` (capped by the context).
    public func kvFixedBytes(_ type: KVType, context: Int, maxPass: Int = 512, mtp: Bool = false) -> Int {
        let layers = (0..<layerCount).filter { isSWA($0) } + (mtp ? Array(layerCount..<blockCount) : [])
        let slots = min(context, slidingWindow + max(maxPass, 1) - 1)
        return layers.reduce(0) { $0 + 2 * slots * type.bytes(headCountKV[$1] * keyLength) }
    }

    /// Everything one sequence reserves for `context` positions.
    public func kvBytes(context: Int, type: KVType, maxPass: Int = 512, mtp: Bool = false) -> Int {
        context * kvBytesPerToken(type) + kvFixedBytes(type, context: context, maxPass: maxPass, mtp: mtp)
    }
}
