// Step 3.5 Flash (StepFun, `step35`): the single-device forward pass.
//
// Ports: llama.cpp `src/models/step35.cpp` (`llama_model_step35::graph`), `src/llama-graph.cpp`
// (`build_moe_ffn`, `build_ffn` with the Step35 SwiGLU clamps); spec ../shared/research/step35-architecture.md
// §2 (order), §4 (attention: q/k norm, partial NeoX RoPE, head-wise gate), §5 (dense FFN, MoE, clamps).
// Placement and communication live elsewhere: this file is single-device math. MoE expert compute goes
// through `ExpertBackend`, the one seam a distributed transport replaces.
//
// Dimension legend: T tokens, D hidden, V vocab, H query heads, Hk KV heads, Dh head dim,
// E experts, A active experts per token, F FFN width, N cached keys.
import Foundation
import GGUF
import Kernels
import ModelKit

/// Attention weights and geometry of one block.
public struct Step35Attention: Sendable {
    public let wq, wk, wv, wo: WeightMatrix
    public let gate: WeightMatrix?
    public let qNorm, kNorm: [Float]?
    public let heads, kvHeads, headDim, rotaryDims, window: Int
    public let ropeBase: Float
    /// `rope_freqs` divisors for this layer (full-attention layers only), nil when absent.
    public let ropeFactors: [Float]?
}

/// A SwiGLU MLP: `down(act(gate·x, up·x))` with an optional clamp.
public struct Step35MLP: Sendable {
    public let gate, up, down: WeightMatrix
    /// SwiGLU limit L (0 = unclamped).
    public let clamp: Float
}

/// A routed-expert layer: sigmoid router with selection bias, top-A, plus the shared expert.
public struct Step35MoE: Sendable {
    /// Router [E, D], F32.
    public let router: WeightMatrix
    /// Selection-only bias [E] (`exp_probs_b`).
    public let selectionBias: [Float]?
    /// Per-expert gate, up [F, D] and down [D, F] views into the 3-D expert tensors.
    public let gate, up, down: [WeightMatrix]
    public let clamp: Float
    public let shared: Step35MLP?
}

/// The FFN half of a block.
public enum Step35FFN: Sendable {
    case dense(Step35MLP)
    case moe(Step35MoE)
}

/// One decoder block.
public struct Step35Block: Sendable {
    public let index: Int
    public let attnNorm: [Float]
    public let attention: Step35Attention
    public let ffnNorm: [Float]
    public let ffn: Step35FFN
}

/// One MTP (NextN) block: loaded and validated here; drafting with it is wired in a later stage.
public struct Step35MTPBlock: Sendable {
    public let block: Step35Block
    public let ehProj: WeightMatrix
    public let enorm, hnorm: [Float]
    public let headNorm: [Float]?
    public let head: WeightMatrix?
    public let embed: WeightMatrix?
}

/// Which positions' logits a forward pass returns.
public enum LogitsSelection: Sendable {
    case last
    case all
}

/// Errors raised while running the model.
public struct ModelError: Error, CustomStringConvertible {
    public let description: String
}

/// One sequence's part of a forward pass: its tokens, run at its cache's next positions, and which rows'
/// logits come back.
public struct SequenceInput {
    public var tokens: [Int32]
    public var cache: Step35Cache
    public var logits: LogitsSelection
    /// Creates an input.
    public init(_ tokens: [Int32], cache: Step35Cache, logits: LogitsSelection = .last) {
        self.tokens = tokens
        self.cache = cache
        self.logits = logits
    }
}

/// What a forward pass returns: logits per sequence ([1 or T_i, V] each) and the final hidden state before
/// the output norm ([T, D] over the whole pass, sequences in order; MTP drafting pairs with it).
public struct PassOutput {
    public var logits: [[Float]]
    public var hidden: [Float]
}

/// Everything a forward pass reports to or borrows from its caller: where routed experts run and who
/// watches (profile, routing counts, named intermediates). Scoped to one pass, so the model itself stays
/// immutable and shared between threads.
public struct PassContext: @unchecked Sendable {
    /// Where routed experts run (in process, or a cluster lane's exchange).
    public var experts: any ExpertBackend
    /// Accumulates time per component and attention-kernel time when set.
    public var profile: AttentionProfile?
    /// Receives every routing decision when set (per-layer, per-expert counts).
    public var expertStats: ExpertStats?
    /// Receives every named intermediate when set.
    public var debugHook: DebugHook?

    /// A context; by default experts run in process and nothing watches.
    public init(experts: any ExpertBackend = LocalExperts(), profile: AttentionProfile? = nil, expertStats: ExpertStats? = nil,
                debugHook: DebugHook? = nil) {
        self.experts = experts
        self.profile = profile
        self.expertStats = expertStats
        self.debugHook = debugHook
    }

    /// Values are built only when a hook is set (the arguments are autoclosures: no copies on the hot path).
    func hook(_ name: String, _ il: Int, _ v: @autoclosure () -> [Float], _ shape: @autoclosure () -> [Int]) {
        if let h = debugHook { h(name, il, v(), shape()) }
    }

    /// Runs `body`, adding its time to `c` when profiling.
    public func timed<T>(_ c: Step35Component, _ body: () throws -> T) rethrows -> T {
        guard let p = profile else { return try body() }
        let t0 = DispatchTime.now()
        defer { p.add(c, seconds: secondsSince(t0)) }
        return try body()
    }
}

/// The Step 3.5 Flash model: weights, configuration and the forward pass. Immutable once loaded: every
/// pass gets its observers and expert backend in a `PassContext`.
public final class Step35Model: Sendable {
    public let config: Step35Config
    public let tokenEmbedding: WeightMatrix
    public let outputNorm: [Float]
    public let output: WeightMatrix
    public let blocks: [Step35Block]
    public let mtp: [Step35MTPBlock]
    /// Thread pool for the kernels.
    public let pool: ThreadPool
    /// Byte ranges of the file whose weights the loader copied into the four-row layout (their mapping is not
    /// read again).
    public let repackedRanges: [Range<Int>]

    /// How the weights meet the kernels, for startup lines: the activation path, and how many bytes the loader
    /// repacked into four-row groups.
    public var weightSummary: String {
        if pool.exact { return "exact float activations" }
        let bytes = repackedRanges.reduce(0) { $0 + $1.count }
        return "quantized activations, " + (bytes > 0 ? String(format: "%.2f GiB of weights repacked into four-row groups", Double(bytes) / 1_073_741_824)
                                                       : "no weights repacked")
    }

    /// Indices of the MoE layers, in order.
    public var moeLayerIndices: [Int] {
        blocks.compactMap { b in if case .moe = b.ffn { return b.index } else { return nil } }
    }

    init(config: Step35Config, tokenEmbedding: WeightMatrix, outputNorm: [Float], output: WeightMatrix,
         blocks: [Step35Block], mtp: [Step35MTPBlock], threads: Int, exact: Bool = false, repacked: [Range<Int>] = []) {
        self.config = config
        self.repackedRanges = repacked
        self.tokenEmbedding = tokenEmbedding
        self.outputNorm = outputNorm
        self.output = output
        self.blocks = blocks
        self.mtp = mtp
        pool = ThreadPool(threads: threads, exact: exact)
        PassMemory.keepFreedBuffers()
    }

    /// A KV cache reserved for positions 0..<context (llama.cpp's default context is 4096), whose passes
    /// carry at most `maxPass` tokens.
    public func makeCache(context: Int = 4096, type: KVType = .f32, maxPass: Int = 512) -> Step35Cache {
        Step35Cache(blocks: blocks, context: context, type: type, maxPass: maxPass)
    }

    private func mm(_ w: WeightMatrix, _ x: [Float], _ t: Int) -> [Float] { Ops.matmul(w, x, tokens: t, pool: pool) }

    /// The one forward pass: the concatenated tokens of `batch` ([T, D] with T the sum of their lengths),
    /// each sequence at its cache's next positions and attending to its own cache, every weight read once
    /// for all of them. Appends to every cache; returns logits per sequence (its last row, or all its rows)
    /// and the final hidden state [T, D].
    public func forward(_ batch: [SequenceInput], _ ctx: PassContext = PassContext()) throws -> PassOutput {
        let d = config.embeddingLength
        guard !batch.isEmpty, batch.allSatisfy({ !$0.tokens.isEmpty }) else { throw ModelError(description: "empty batch") }
        var segments: [PassSegment] = [], positions: [Int32] = [], tokens: [Int32] = []
        for s in batch {
            try check(s, against: segments)
            segments.append(PassSegment(start: tokens.count, count: s.tokens.count, cache: s.cache, layer: nil))
            positions += (0..<s.tokens.count).map { Int32(s.cache.nextPosition + $0) }
            tokens += s.tokens
        }
        let t = tokens.count
        var h = [Float](repeating: 0, count: t * d)  // [T, D]
        for (i, tok) in tokens.enumerated() {
            let row = tokenEmbedding.row(Int(tok))
            for c in 0..<d { h[i * d + c] = row[c] }
        }
        ctx.hook("inp_embd", -1, h, [t, d])
        for b in blocks {
            h = try block(b, h, t: t, positions: positions, segments: segments, ctx)
        }
        for s in segments { s.cache?.advance(by: s.count) }
        ctx.hook("h_nextn", -1, h, [t, d])
        return PassOutput(logits: outputLogits(h, segments: segments, selection: batch.map(\.logits), ctx), hidden: h)
    }

    /// Why a pass cannot run this sequence (too long, past its context, bad ids), or nil.
    public func refusal(_ s: SequenceInput) -> ModelError? {
        let n = s.tokens.count, cache = s.cache
        guard n <= cache.maxPass else {
            return ModelError(description: "a pass of \(n) tokens exceeds the cache's \(cache.maxPass) per pass (split the batch)")
        }
        guard cache.nextPosition + n <= cache.context else {
            return ModelError(description: "context full: \(cache.nextPosition) + \(n) tokens exceed the context of \(cache.context)")
        }
        if let bad = s.tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            return ModelError(description: "token id \(bad) is outside the vocabulary (0..<\(config.vocabSize))")
        }
        return nil
    }

    /// Refuses a sequence the pass cannot run, or one whose cache is already in the pass.
    private func check(_ s: SequenceInput, against earlier: [PassSegment]) throws {
        if let e = refusal(s) { throw e }
        guard !earlier.contains(where: { $0.cache === s.cache }) else { throw ModelError(description: "a cache appears twice in one batch") }
    }

    /// Output norm and head over the rows whose logits are wanted: each sequence's last, or all of them.
    private func outputLogits(_ h: [Float], segments: [PassSegment], selection sel: [LogitsSelection], _ ctx: PassContext) -> [[Float]] {
        let d = config.embeddingLength, v = config.vocabSize
        let rows = zip(segments, sel).flatMap { s, l in l == .all ? Array(s.start..<(s.start + s.count)) : [s.start + s.count - 1] }
        var last = [Float](repeating: 0, count: rows.count * d)  // [R, D]
        for (i, r) in rows.enumerated() { for c in 0..<d { last[i * d + c] = h[r * d + c] } }
        let normed = Ops.rmsNorm(last, weight: outputNorm, rows: rows.count, eps: config.rmsEpsilon)
        ctx.hook("result_norm", -1, normed, [rows.count, d])
        let logits = ctx.timed(.lmHead) { mm(output, normed, rows.count) }  // [R, V]
        ctx.hook("result_output", -1, logits, [rows.count, v])
        var out: [[Float]] = [], r0 = 0
        for (s, l) in zip(segments, sel) {
            let n = l == .all ? s.count : 1
            out.append(Array(logits[(r0 * v)..<((r0 + n) * v)]))
            r0 += n
        }
        return out
    }

/// One decoder block: h + attn(norm(h)), then + ffn(norm(·)).
    func block(_ b: Step35Block, _ h: [Float], t: Int, positions: [Int32], segments: [PassSegment], _ ctx: PassContext) throws -> [Float] {
        let il = b.index, d = config.embeddingLength
        let x = Ops.rmsNorm(h, weight: b.attnNorm, rows: t, eps: config.rmsEpsilon, pool: pool)
        ctx.hook("attn_norm", il, x, [t, d])
        let attn = ctx.timed(b.attention.window > 0 ? .attentionSWA : .attentionFull) {
            attention(b.attention, x, t: t, positions: positions, segments: segments, il: il, ctx)
        }
        var ffnInp = h
        Ops.add(attn, into: &ffnInp)
        ctx.hook("ffn_inp", il, ffnInp, [t, d])
        let xf = Ops.rmsNorm(ffnInp, weight: b.ffnNorm, rows: t, eps: config.rmsEpsilon, pool: pool)
        ctx.hook("ffn_norm", il, xf, [t, d])
        let f: [Float]
        switch b.ffn {
        case .dense(let mlp): f = ctx.timed(.denseFFN) { self.mlp(mlp, xf, t: t) }
        case .moe(let moe): f = try self.moe(moe, xf, t: t, il: il, ctx)
        }
        ctx.hook("ffn_out", il, f, [t, d])
        var out = ffnInp
        Ops.add(f, into: &out)
        ctx.hook("l_out", il, out, [t, d])
        return out
    }

    /// Gated GQA attention with q/k RMSNorm and partial NeoX RoPE (spec §4).
    func attention(_ a: Step35Attention, _ x: [Float], t: Int, positions: [Int32], segments: [PassSegment], il: Int,
                   _ ctx: PassContext) -> [Float] {
        let dh = a.headDim
        var q = mm(a.wq, x, t)  // [T, H·Dh]
        var k = mm(a.wk, x, t)  // [T, Hk·Dh]
        let v = mm(a.wv, x, t)  // [T, Hk·Dh]
        ctx.hook("Qcur", il, q, [t, a.heads, dh])
        ctx.hook("Kcur", il, k, [t, a.kvHeads, dh])
        ctx.hook("Vcur", il, v, [t, a.kvHeads, dh])
        // Per-head norms: rows are (token, head) pairs of Dh.
        if let w = a.qNorm { q = Ops.rmsNorm(q, weight: w, rows: t * a.heads, eps: config.rmsEpsilon) }
        if let w = a.kNorm { k = Ops.rmsNorm(k, weight: w, rows: t * a.kvHeads, eps: config.rmsEpsilon) }
        ctx.hook("Qcur_normed", il, q, [t, a.heads, dh])
        ctx.hook("Kcur_normed", il, k, [t, a.kvHeads, dh])
        Ops.ropeNeox(&q, heads: a.heads, headDim: dh, rotaryDims: a.rotaryDims, positions: positions,
                     base: a.ropeBase, factors: a.ropeFactors)
        Ops.ropeNeox(&k, heads: a.kvHeads, headDim: dh, rotaryDims: a.rotaryDims, positions: positions,
                     base: a.ropeBase, factors: a.ropeFactors)
        ctx.hook("Qcur_pos", il, q, [t, a.heads, dh])
        ctx.hook("Kcur_pos", il, k, [t, a.kvHeads, dh])
        let shape = AttentionShape(heads: a.heads, kvHeads: a.kvHeads, headDim: dh, window: a.window,
                                   scale: 1 / Float(dh).squareRoot())
        // Each sequence appends to and attends over its own cache; one segment is the whole pass.
        var o: [Float]  // [T, H·Dh]
        let t0 = DispatchTime.now()
        if segments.count == 1 {
            let kv = segments[0].kv(il)
            kv.append(keys: k, values: v, positions: positions)
            o = kv.attention(q: q, positions: positions, shape: shape, pool: pool)
        } else {
            o = [Float](repeating: 0, count: t * a.heads * dh)
            let qw = a.heads * dh, kw = a.kvHeads * dh
            for s in segments {
                let kv = s.kv(il), r = s.start..<(s.start + s.count)
                kv.append(keys: Array(k[(r.lowerBound * kw)..<(r.upperBound * kw)]), values: Array(v[(r.lowerBound * kw)..<(r.upperBound * kw)]),
                          positions: Array(positions[r]))
                let os = kv.attention(q: Array(q[(r.lowerBound * qw)..<(r.upperBound * qw)]), positions: Array(positions[r]), shape: shape, pool: pool)
                o.replaceSubrange((r.lowerBound * qw)..<(r.upperBound * qw), with: os)
            }
        }
        ctx.profile?.add(window: a.window > 0, tokens: t, seconds: secondsSince(t0))
        ctx.hook("attn_out", il, o, [t, a.heads, dh])
        if let gw = a.gate {
            var gs = mm(gw, x, t)  // [T, H]: one gate per head, broadcast over Dh
            Ops.sigmoid(&gs)
            ctx.hook("attn_gate_sigmoid", il, gs, [t, a.heads])
            Ops.scaleRows(&o, gs, width: dh)  // [T·H, Dh] rows, one gate each
            ctx.hook("attn_gated", il, o, [t, a.heads * dh])
        }
        let out = mm(a.wo, o, t)
        ctx.hook("attn_proj", il, out, [t, config.embeddingLength])
        return out
    }

    /// SwiGLU MLP (dense layers, shared expert, MTP blocks).
    func mlp(_ m: Step35MLP, _ x: [Float], t: Int) -> [Float] {
        let g = mm(m.gate, x, t), u = mm(m.up, x, t)
        return mm(m.down, Ops.swiglu(g, u, limit: m.clamp, pool: pool), t)
    }

    /// Router: scores, top-A selection with the selection bias, renormalised and scaled weights ([T, A] each).
    func route(_ m: Step35MoE, _ x: [Float], t: Int, il: Int, _ ctx: PassContext) -> (experts: [Int32], weights: [Float]) {
        let e = m.gate.count, a = config.expertUsedCount
        var probs = mm(m.router, x, t)  // [T, E] router logits, then scores in place
        if config.expertGatingFunc == 1 {
            for r in 0..<t {
                var row = Array(probs[(r * e)..<((r + 1) * e)])
                Ops.softmax(&row)
                probs.replaceSubrange((r * e)..<((r + 1) * e), with: row)
            }
        } else {
            Ops.sigmoid(&probs)
        }
        ctx.hook("ffn_moe_probs", il, probs, [t, e])
        let (experts, weights) = Ops.routeTopK(probs, bias: m.selectionBias, tokens: t, topK: a, normalize: config.expertWeightsNorm,
                                               scale: config.expertWeightsScale)  // [T, A] each
        ctx.hook("ffn_moe_topk", il, experts.map(Float.init), [t, a])
        ctx.hook("ffn_moe_weights_scaled", il, weights, [t, a])
        ctx.expertStats?.record(layer: il, tokens: t, chosen: experts)
        return (experts, weights)
    }

    /// Router, top-A selection with the bias, renormalised and scaled weights, routed experts + shared expert.
    func moe(_ m: Step35MoE, _ x: [Float], t: Int, il: Int, _ ctx: PassContext) throws -> [Float] {
        let a = config.expertUsedCount, d = config.embeddingLength
        let (experts, weights) = ctx.timed(.router) { route(m, x, t: t, il: il, ctx) }
        // The shared expert runs while the routed rows are away (a cluster head would otherwise sit idle in
        // the exchange); in process the routed experts are done by the time it starts.
        let routed = try ctx.timed(.experts) {
            try ctx.experts.startRoutedExperts(layer: m, layerIndex: il, x: x, tokens: t, experts: experts, weights: weights, topK: a, pool: pool)
        }
        let shared = m.shared.map { sh in ctx.timed(.shared) { mlp(sh, x, t: t) } }
        var out = try ctx.timed(.experts) { try routed.finish() }
        ctx.hook("ffn_moe_out", il, out, [t, d])
        if let s = shared {
            ctx.hook("ffn_shared_out", il, s, [t, d])
            Ops.add(s, into: &out)
        }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
