// Step 3.5 Flash hyperparameters, read from GGUF metadata (`step35.*`).
//
// References: ../shared/research/step35-architecture.md §1, §3, §7.1; llama.cpp
// `src/models/step35.cpp` (`load_arch_hparams`) and `src/llama-model.cpp` (generic keys).
// Both key spellings are accepted: llama.cpp's (`swiglu_clamp_exp`, `rope.freq_base_swa`, ...) and the
// early StepFun-fork ones (`swiglu_limits`, `rope.dimension_count_per_layer`, `rope.freq_base_per_layer`,
// `rope.scaling.apply_mask`).
import GGUF

/// The model configuration, under the checkpoint's own (GGUF) key names. Per-layer arrays cover
/// every block, MTP blocks included (`block_count` entries).
public struct Step35Config: Codable, Sendable, Equatable {
    public var contextLength: Int
    public var embeddingLength: Int
    public var blockCount: Int
    public var nextnPredictLayers: Int
    public var feedForwardLength: Int
    public var headCount: [Int]
    public var headCountKV: [Int]
    public var keyLength: Int
    public var valueLength: Int
    public var rmsEpsilon: Float
    public var slidingWindow: Int
    public var slidingWindowPattern: [Bool]
    public var ropeDimensions: [Int]
    public var ropeFreqBase: [Float]
    public var ropeScalingMask: [Bool]
    public var expertCount: Int
    public var expertUsedCount: Int
    public var expertFeedForwardLength: Int
    public var expertSharedFeedForwardLength: Int
    public var expertGatingFunc: Int
    public var expertWeightsScale: Float
    public var expertWeightsNorm: Bool
    public var swigluClampExp: [Float]
    public var swigluClampShexp: [Float]
    public var vocabSize: Int

    enum CodingKeys: String, CodingKey {
        case contextLength = "context_length"
        case embeddingLength = "embedding_length"
        case blockCount = "block_count"
        case nextnPredictLayers = "nextn_predict_layers"
        case feedForwardLength = "feed_forward_length"
        case headCount = "attention.head_count"
        case headCountKV = "attention.head_count_kv"
        case keyLength = "attention.key_length"
        case valueLength = "attention.value_length"
        case rmsEpsilon = "attention.layer_norm_rms_epsilon"
        case slidingWindow = "attention.sliding_window"
        case slidingWindowPattern = "attention.sliding_window_pattern"
        case ropeDimensions = "rope.dimension_count_per_layer"
        case ropeFreqBase = "rope.freq_base_per_layer"
        case ropeScalingMask = "rope.scaling.apply_mask"
        case expertCount = "expert_count"
        case expertUsedCount = "expert_used_count"
        case expertFeedForwardLength = "expert_feed_forward_length"
        case expertSharedFeedForwardLength = "expert_shared_feed_forward_length"
        case expertGatingFunc = "expert_gating_func"
        case expertWeightsScale = "expert_weights_scale"
        case expertWeightsNorm = "expert_weights_norm"
        case swigluClampExp = "swiglu_clamp_exp"
        case swigluClampShexp = "swiglu_clamp_shexp"
        case vocabSize = "vocab_size"
    }

    /// Main (non-MTP) layers.
    public var layerCount: Int { blockCount - nextnPredictLayers }
    /// Whether layer `il` uses sliding-window attention.
    public func isSWA(_ il: Int) -> Bool { slidingWindowPattern[il] }
    /// Attention window of layer `il` (0 = full causal).
    public func window(_ il: Int) -> Int { isSWA(il) ? slidingWindow : 0 }
}

/// Errors in a model's hyperparameters.
public struct ConfigError: Error, CustomStringConvertible {
    /// What is wrong.
    public let description: String
}

extension Step35Config {
    /// Reads and validates the configuration of a `step35` GGUF file.
    public init(gguf f: GGUFFile) throws {
        guard let arch = f.architecture else { throw GGUFError.missingKey("general.architecture") }
        guard arch == "step35" else {
            throw ConfigError(description: "unsupported architecture '\(arch)': Switchyard runs step35 (Step 3.5 Flash)")
        }
        let p = "step35."
        let n = try f.int(p + "block_count")
        guard n > 0, n <= 512 else { throw ConfigError(description: "block_count \(n) out of range") }
        blockCount = n
        nextnPredictLayers = f.value(p + "nextn_predict_layers")?.int ?? 0
        guard nextnPredictLayers >= 0, nextnPredictLayers < n else {
            throw ConfigError(description: "nextn_predict_layers \(nextnPredictLayers) must be below block_count \(n)")
        }
        let main = n - nextnPredictLayers
        contextLength = f.value(p + "context_length")?.int ?? 4096
        embeddingLength = try f.int(p + "embedding_length")
        feedForwardLength = f.value(p + "feed_forward_length")?.int ?? 0
        guard let heads = try f.numbers(p + "attention.head_count", count: n) else {
            throw GGUFError.missingKey(p + "attention.head_count")
        }
        headCount = heads.map { Int($0) }
        headCountKV = try f.numbers(p + "attention.head_count_kv", count: n)?.map { Int($0) } ?? headCount
        let h0 = headCount.first { $0 > 0 } ?? 1
        keyLength = f.value(p + "attention.key_length")?.int ?? embeddingLength / h0
        valueLength = f.value(p + "attention.value_length")?.int ?? keyLength
        rmsEpsilon = try f.float(p + "attention.layer_norm_rms_epsilon")
        slidingWindow = try f.int(p + "attention.sliding_window")
        // A pattern shorter than block_count leaves the MTP blocks, which are SWA in Step 3.5 (spec §3).
        if let pat = f.value(p + "attention.sliding_window_pattern")?.array {
            let b = pat.compactMap(\.bool)
            slidingWindowPattern = (0..<n).map { $0 < b.count ? b[$0] : $0 >= main }
        } else {
            slidingWindowPattern = (0..<n).map { $0 >= main || $0 % 4 != 0 }
        }
        let swa = slidingWindowPattern
        if let dims = try f.numbers(p + "rope.dimension_count_per_layer", count: n) {
            ropeDimensions = dims.map { Int($0) }
        } else {
            // llama.cpp: full layers rotate rope.dimension_count / 2, SWA layers rope.dimension_count_swa
            // (default rope.dimension_count).
            let nRot = f.value(p + "rope.dimension_count")?.int ?? keyLength
            let nRotSWA = f.value(p + "rope.dimension_count_swa")?.int ?? nRot
            ropeDimensions = swa.map { $0 ? nRotSWA : nRot / 2 }
        }
        if let bases = try f.numbers(p + "rope.freq_base_per_layer", count: n) {
            ropeFreqBase = bases.map { Float($0) }
        } else {
            let full = Float(f.value(p + "rope.freq_base")?.double ?? 10000)
            let sw = Float(f.value(p + "rope.freq_base_swa")?.double ?? 10000)
            ropeFreqBase = swa.map { $0 ? sw : full }
        }
        if let mask = f.value(p + "rope.scaling.apply_mask")?.array {
            let b = mask.compactMap(\.bool)
            ropeScalingMask = (0..<n).map { $0 < b.count ? b[$0] : !swa[$0] }
        } else {
            ropeScalingMask = swa.map { !$0 }
        }
        expertCount = f.value(p + "expert_count")?.int ?? 0
        expertUsedCount = f.value(p + "expert_used_count")?.int ?? 0
        expertFeedForwardLength = f.value(p + "expert_feed_forward_length")?.int ?? 0
        expertSharedFeedForwardLength = f.value(p + "expert_shared_feed_forward_length")?.int ?? expertFeedForwardLength
        let gating = f.value(p + "expert_gating_func")?.int ?? 0
        expertGatingFunc = gating == 0 ? 2 : gating  // Step 3.5 defaults to sigmoid when unset
        expertWeightsScale = Float(f.value(p + "expert_weights_scale")?.double ?? 1)
        expertWeightsNorm = f.value(p + "expert_weights_norm")?.bool ?? false
        let clampE = try f.numbers(p + "swiglu_clamp_exp", count: n) ?? f.numbers(p + "swiglu_limits", count: n)
        let clampS = try f.numbers(p + "swiglu_clamp_shexp", count: n) ?? f.numbers(p + "swiglu_limits_shared", count: n)
        swigluClampExp = clampE?.map { Float($0) } ?? Array(repeating: 0, count: n)
        swigluClampShexp = clampS?.map { Float($0) } ?? Array(repeating: 0, count: n)
        if let toks = f.value("tokenizer.ggml.tokens")?.array {
            vocabSize = toks.count
        } else if let emb = f.tensor("token_embd.weight"), emb.shape.count == 2 {
            vocabSize = emb.shape[1]
        } else {
            throw GGUFError.missingTensor("token_embd.weight")
        }
        try validate()
    }

    /// Checks the relations the forward pass relies on.
    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw ConfigError(description: s) }
        if embeddingLength <= 0 { try fail("embedding_length must be positive") }
        if keyLength != valueLength { try fail("key_length \(keyLength) != value_length \(valueLength) is not supported") }
        for il in 0..<blockCount {
            let h = headCount[il], hk = headCountKV[il]
            if h <= 0 || hk <= 0 || h % hk != 0 {
                try fail("layer \(il): \(h) query heads is not a positive multiple of \(hk) KV heads")
            }
            let r = ropeDimensions[il]
            if r < 0 || r > keyLength || r % 2 != 0 || r > 1024 {
                try fail("layer \(il): rotary dims \(r) must be even and at most key_length \(keyLength)")
            }
        }
        if slidingWindowPattern.contains(true) && slidingWindow <= 0 { try fail("sliding_window must be positive") }
        if expertCount > 0 && (expertUsedCount <= 0 || expertUsedCount > expertCount) {
            try fail("expert_used_count \(expertUsedCount) must be in 1...\(expertCount)")
        }
        if ![1, 2].contains(expertGatingFunc) { try fail("expert_gating_func \(expertGatingFunc) unsupported (1 softmax, 2 sigmoid)") }
    }
}
