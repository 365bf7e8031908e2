// Builds a `Step35Model` from a GGUF file. Every tensor name and shape the model uses is here, in
// one place (llama.cpp `llama_model_step35::load_arch_tensors`; spec §7.2).
//
// Dimension legend: D hidden, V vocab, H query heads, Hk KV heads, Dh head dim, E experts,
// F dense FFN width, Fe expert width, Fs shared-expert width.
import GGUF
import Kernels

/// Which weight matrices the loader copies into the four-row layout (`WeightMatrix.repacked()`; llama.cpp's
/// repack, `--no-repack` turns it off). Each rank repacks only what it computes with.
public struct RepackPlan: Sendable {
    /// Every matrix but the routed experts (attention, dense and shared FFNs, the output head, MTP).
    public var dense: Bool
    /// Whether expert `expert` of layer `layer` is repacked.
    public var experts: @Sendable (_ layer: Int, _ expert: Int) -> Bool

    /// Creates a plan.
    public init(dense: Bool, experts: @escaping @Sendable (_ layer: Int, _ expert: Int) -> Bool) {
        self.dense = dense
        self.experts = experts
    }

    /// Nothing repacked: every weight stays in the mapping (zero copy).
    public static let none = RepackPlan(dense: false) { _, _ in false }
    /// Everything repacked (one process).
    public static let all = RepackPlan(dense: true) { _, _ in true }
}

extension Step35Model {
    /// Loads and validates every tensor; weights stay in the mmap (zero copy) unless `repack` copies them into
    /// the four-row layout. `exact`: Q8_0 and Q4_0 weights multiply float activations (the golden-tested path)
    /// rather than Q8_0-quantized ones.
    public convenience init(file f: GGUFFile, threads: Int, exact: Bool = false, repack: RepackPlan = .none) throws {
        let c = try Step35Config(gguf: f)
        let d = c.embeddingLength, v = c.vocabSize, dh = c.keyLength

        // File ranges copied into the four-row layout: their mapped pages are let go (the process keeps one copy).
        var repacked: [Range<Int>] = []
        func packed(_ w: WeightMatrix, _ t: GGUFTensor, at offset: Int, _ count: Int) -> WeightMatrix {
            packed([w], t, at: [offset], count)[0]
        }
        func packed(_ ws: [WeightMatrix], _ t: GGUFTensor, at offsets: [Int], _ count: Int) -> [WeightMatrix] {
            let ps = WeightMatrix.repacked(ws)
            for (p, o) in zip(ps, offsets) where p.packed {
                repacked.append(o..<(o + count))
                t.storage.release(offset: o, count: count)
            }
            return ps
        }
        func dense(_ t: GGUFTensor) throws -> WeightMatrix {
            let m = try WeightMatrix(t)
            return repack.dense ? packed(m, t, at: t.offset, t.byteCount) : m
        }
        func matrix(_ name: String, _ shape: [Int]) throws -> WeightMatrix { try dense(f.tensor(name, shape: shape)) }
        func optMatrix(_ name: String, _ shape: [Int]) throws -> WeightMatrix? { try f.optionalTensor(name, shape: shape).map(dense) }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            try WeightMatrix(f.tensor(name, shape: [n])).row(0)
        }
        func optVector(_ name: String, _ n: Int) throws -> [Float]? {
            try f.optionalTensor(name, shape: [n]).map { try WeightMatrix($0).row(0) }
        }

        let embed = try WeightMatrix(f.tensor("token_embd.weight", shape: [d, v]))  // row lookups: stays as mapped
        let outNorm = try vector("output_norm.weight", d)
        let maxRot = c.ropeDimensions.max() ?? dh
        let ropeFreqs = try f.tensor("rope_freqs.weight").map { t -> [Float] in
            guard t.shape.count == 1, t.shape[0] >= maxRot / 2 else {
                throw GGUFError.shapeMismatch(tensor: t.name, expected: [maxRot / 2], found: t.shape)
            }
            return try WeightMatrix(t).row(0)
        }

        func block(_ il: Int) throws -> Step35Block {
            let p = "blk.\(il)."
            let h = c.headCount[il], hk = c.headCountKV[il]
            let attn = Step35Attention(
                wq: try matrix(p + "attn_q.weight", [d, h * dh]),
                wk: try matrix(p + "attn_k.weight", [d, hk * dh]),
                wv: try matrix(p + "attn_v.weight", [d, hk * dh]),
                wo: try matrix(p + "attn_output.weight", [h * dh, d]),
                gate: try optMatrix(p + "attn_gate.weight", [d, h]),
                qNorm: try optVector(p + "attn_q_norm.weight", dh),
                kNorm: try optVector(p + "attn_k_norm.weight", dh),
                heads: h, kvHeads: hk, headDim: dh, rotaryDims: c.ropeDimensions[il], window: c.window(il),
                ropeBase: c.ropeFreqBase[il],
                ropeFactors: c.ropeScalingMask[il] ? ropeFreqs.map { Array($0.prefix(c.ropeDimensions[il] / 2)) } : nil)
            func mlp(_ suffix: String, width: Int, clamp: Float) throws -> Step35MLP? {
                guard f.tensor(p + "ffn_gate\(suffix).weight") != nil else { return nil }
                return Step35MLP(gate: try matrix(p + "ffn_gate\(suffix).weight", [d, width]),
                                 up: try matrix(p + "ffn_up\(suffix).weight", [d, width]),
                                 down: try matrix(p + "ffn_down\(suffix).weight", [width, d]), clamp: clamp)
            }
            let ffn: Step35FFN
            // Dense vs MoE is decided by the router's presence, as in llama.cpp.
            if let routerT = f.tensor(p + "ffn_gate_inp.weight") {
                let e = c.expertCount, fe = c.expertFeedForwardLength
                guard e > 0 else { throw ConfigError(description: "layer \(il) has a router but expert_count is 0") }
                guard routerT.shape == [d, e] else {
                    throw GGUFError.shapeMismatch(tensor: routerT.name, expected: [d, e], found: routerT.shape)
                }
                guard routerT.type == .f32 || routerT.type == .f16 || routerT.type == .bf16 else {
                    throw GGUFError.typeMismatch(tensor: routerT.name, expected: "F32 (router)", found: routerT.type)
                }
                func experts(_ name: String, _ shape: [Int]) throws -> [WeightMatrix] {
                    let t = try f.tensor(p + name, shape: shape)
                    let per = t.byteCount / e
                    var ws = try (0..<e).map { try WeightMatrix(experts: t, expert: $0) }
                    // This rank's experts of the tensor, repacked into one mapping.
                    let mine = (0..<e).filter { repack.experts(il, $0) }
                    for (x, p) in zip(mine, packed(mine.map { ws[$0] }, t, at: mine.map { t.offset + $0 * per }, per)) { ws[x] = p }
                    return ws
                }
                ffn = .moe(Step35MoE(
                    router: try WeightMatrix(routerT),
                    selectionBias: try optVector(p + "exp_probs_b.bias", e),
                    gate: try experts("ffn_gate_exps.weight", [d, fe, e]),
                    up: try experts("ffn_up_exps.weight", [d, fe, e]),
                    down: try experts("ffn_down_exps.weight", [fe, d, e]),
                    clamp: c.swigluClampExp[il],
                    shared: try mlp("_shexp", width: c.expertSharedFeedForwardLength, clamp: c.swigluClampShexp[il])))
            } else {
                // llama.cpp's build_ffn applies the shared-expert clamp to every dense SwiGLU.
                guard let m = try mlp("", width: c.feedForwardLength, clamp: c.swigluClampShexp[il]) else {
                    throw GGUFError.missingTensor(p + "ffn_gate.weight")
                }
                ffn = .dense(m)
            }
            return Step35Block(index: il, attnNorm: try vector(p + "attn_norm.weight", d), attention: attn,
                               ffnNorm: try vector(p + "ffn_norm.weight", d), ffn: ffn)
        }

        let blocks = try (0..<c.layerCount).map(block)
        let mtp = try (c.layerCount..<c.blockCount).map { il -> Step35MTPBlock in
            let p = "blk.\(il).nextn."
            return Step35MTPBlock(
                block: try block(il),
                ehProj: try matrix(p + "eh_proj.weight", [2 * d, d]),
                enorm: try vector(p + "enorm.weight", d),
                hnorm: try vector(p + "hnorm.weight", d),
                headNorm: try optVector(p + "shared_head_norm.weight", d),
                head: try optMatrix(p + "shared_head_head.weight", [d, v]),
                embed: try f.optionalTensor(p + "embed_tokens.weight", shape: [d, v]).map(WeightMatrix.init))  // row lookups
        }
        self.init(config: c, tokenEmbedding: embed, outputNorm: outNorm, output: try matrix("output.weight", [d, v]),
                  blocks: blocks, mtp: mtp, threads: threads, exact: exact, repacked: repacked)
    }
}
