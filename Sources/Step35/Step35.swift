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
    /// The pass's buffers, kept for the next pass on the same lane.
    public var workspace: Step35Workspace

    /// A context; by default experts run in process, nothing watches and the buffers are fresh.
    public init(experts: any ExpertBackend = LocalExperts(), profile: AttentionProfile? = nil, expertStats: ExpertStats? = nil,
                debugHook: DebugHook? = nil, workspace: Step35Workspace = Step35Workspace()) {
        self.experts = experts
        self.profile = profile
        self.expertStats = expertStats
        self.debugHook = debugHook
        self.workspace = workspace
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

    /// y[T, R] = x[T, C] · Wᵀ into y (its count set to T·R, storage kept).
    private func mm(_ w: WeightMatrix, _ x: [Float], _ t: Int, into y: inout [Float]) {
        y.setCount(t * w.rows)
        Ops.matmul(w, x, tokens: t, into: &y, pool: pool)
    }

    /// The one forward pass: the concatenated tokens of `batch` ([T, D] with T the sum of their lengths),
    /// each sequence at its cache's next positions and attending to its own cache, every weight read once
    /// for all of them. Appends to every cache; returns logits per sequence (its last row, or all its rows)
    /// and the final hidden state [T, D]. Every intermediate lives in `ctx.workspace`; the returned arrays
    /// share its buffers until the caller lets them go (a decode step allocates nothing).
    public func forward(_ batch: [SequenceInput], _ ctx: PassContext = PassContext()) throws -> PassOutput {
        let d = config.embeddingLength, ws = ctx.workspace
        guard !batch.isEmpty, batch.allSatisfy({ !$0.tokens.isEmpty }) else { throw ModelError(description: "empty batch") }
        ws.segments.removeAll(keepingCapacity: true); ws.positions.removeAll(keepingCapacity: true); ws.tokens.removeAll(keepingCapacity: true)
        defer { ws.segments.removeAll(keepingCapacity: true) }  // the caches are not held past the pass
        for s in batch {
            try check(s, against: ws.segments)
            ws.segments.append(PassSegment(start: ws.tokens.count, count: s.tokens.count, cache: s.cache, layer: nil))
            for i in 0..<s.tokens.count { ws.positions.append(Int32(s.cache.nextPosition + i)) }
            ws.tokens.append(contentsOf: s.tokens)
        }
        let t = ws.tokens.count
        var h = ws.hidden  // [T, D], the residual stream: taken out so it stays unique while the blocks add into it
        ws.hidden = []
        defer { ws.hidden = h }
        Ops.embed(tokenEmbedding, tokens: ws.tokens, into: &h)
        ctx.hook("inp_embd", -1, h, [t, d])
        for b in blocks {
            try block(b, &h, t: t, positions: ws.positions, segments: ws.segments, ctx)
        }
        for s in ws.segments { s.cache?.advance(by: s.count) }
        ctx.hook("h_nextn", -1, h, [t, d])
        return PassOutput(logits: outputLogits(h, segments: ws.segments, batch: batch, ctx), hidden: h)
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

    /// Output norm and head over the rows whose logits are wanted: each sequence's last, or all of them. One
    /// sequence's logits come straight out of the head; several are copied out of one [R, V] product.
    private func outputLogits(_ h: [Float], segments: [PassSegment], batch: [SequenceInput], _ ctx: PassContext) -> [[Float]] {
        let d = config.embeddingLength, v = config.vocabSize, ws = ctx.workspace
        ws.logitRows.removeAll(keepingCapacity: true)
        for (s, b) in zip(segments, batch) {
            if b.logits == .all { for r in s.start..<(s.start + s.count) { ws.logitRows.append(Int32(r)) } }
            else { ws.logitRows.append(Int32(s.start + s.count - 1)) }
        }
        let n = ws.logitRows.count
        ws.lastHidden.setCount(n * d)
        Ops.gatherRows(h, ws.logitRows, width: d, into: &ws.lastHidden)  // [R, D]
        Ops.rmsNorm(ws.lastHidden, weight: outputNorm, rows: n, eps: config.rmsEpsilon, into: &ws.lastNormed)
        ctx.hook("result_norm", -1, ws.lastNormed, [n, d])
        var out = ws.logitsOut  // taken out so each buffer is unique again once the caller has let the last pass's go
        ws.logitsOut = []
        defer { ws.logitsOut = out }
        if out.count > segments.count { out.removeLast(out.count - segments.count) }
        while out.count < segments.count { out.append([]) }
        if segments.count == 1 {
            ctx.timed(.lmHead) { mm(output, ws.lastNormed, n, into: &out[0]) }  // [R, V]
            ctx.hook("result_output", -1, out[0], [n, v])
            return out
        }
        ctx.timed(.lmHead) { mm(output, ws.lastNormed, n, into: &ws.logits) }  // [R, V]
        ctx.hook("result_output", -1, ws.logits, [n, v])
        var r0 = 0
        for (i, b) in batch.enumerated() {
            let k = b.logits == .all ? segments[i].count : 1
            out[i].setCount(k * v)
            out[i].replaceSubrange(0..<(k * v), with: ws.logits[(r0 * v)..<((r0 + k) * v)])
            r0 += k
        }
        return out
    }

/// One decoder block: h + attn(norm(h)), then + ffn(norm(·)), in place on h [T, D].
    func block(_ b: Step35Block, _ h: inout [Float], t: Int, positions: [Int32], segments: [PassSegment], _ ctx: PassContext) throws {
        let il = b.index, d = config.embeddingLength, ws = ctx.workspace
        Ops.rmsNorm(h, weight: b.attnNorm, rows: t, eps: config.rmsEpsilon, into: &ws.attnIn, pool: pool)
        ctx.hook("attn_norm", il, ws.attnIn, [t, d])
        ctx.timed(b.attention.window > 0 ? .attentionSWA : .attentionFull) {
            attention(b.attention, ws.attnIn, t: t, positions: positions, segments: segments, il: il, ctx)  // into ws.attnProj
        }
        Ops.add(ws.attnProj, into: &h)
        ctx.hook("ffn_inp", il, h, [t, d])
        Ops.rmsNorm(h, weight: b.ffnNorm, rows: t, eps: config.rmsEpsilon, into: &ws.ffnIn, pool: pool)
        ctx.hook("ffn_norm", il, ws.ffnIn, [t, d])
        switch b.ffn {
        case .dense(let mlp): ctx.timed(.denseFFN) { self.mlp(mlp, ws.ffnIn, t: t, into: &ws.ffnOut, ws) }
        case .moe(let moe): try self.moe(moe, ws.ffnIn, t: t, il: il, ctx)  // into ws.ffnOut
        }
        ctx.hook("ffn_out", il, ws.ffnOut, [t, d])
        Ops.add(ws.ffnOut, into: &h)
        ctx.hook("l_out", il, h, [t, d])
    }

    /// Gated GQA attention with q/k RMSNorm and partial NeoX RoPE (spec §4), into `ctx.workspace.attnProj` [T, D].
    func attention(_ a: Step35Attention, _ x: [Float], t: Int, positions: [Int32], segments: [PassSegment], il: Int,
                   _ ctx: PassContext) {
        let dh = a.headDim, ws = ctx.workspace
        mm(a.wq, x, t, into: &ws.q)  // [T, H·Dh]
        mm(a.wk, x, t, into: &ws.k)  // [T, Hk·Dh]
        mm(a.wv, x, t, into: &ws.v)  // [T, Hk·Dh]
        ctx.hook("Qcur", il, ws.q, [t, a.heads, dh])
        ctx.hook("Kcur", il, ws.k, [t, a.kvHeads, dh])
        ctx.hook("Vcur", il, ws.v, [t, a.kvHeads, dh])
        // Per-head norms: rows are (token, head) pairs of Dh.
        if let w = a.qNorm { Ops.rmsNormInPlace(&ws.q, weight: w, rows: t * a.heads, eps: config.rmsEpsilon) }
        if let w = a.kNorm { Ops.rmsNormInPlace(&ws.k, weight: w, rows: t * a.kvHeads, eps: config.rmsEpsilon) }
        ctx.hook("Qcur_normed", il, ws.q, [t, a.heads, dh])
        ctx.hook("Kcur_normed", il, ws.k, [t, a.kvHeads, dh])
        Ops.ropeNeox(&ws.q, heads: a.heads, headDim: dh, rotaryDims: a.rotaryDims, positions: positions,
                     base: a.ropeBase, factors: a.ropeFactors)
        Ops.ropeNeox(&ws.k, heads: a.kvHeads, headDim: dh, rotaryDims: a.rotaryDims, positions: positions,
                     base: a.ropeBase, factors: a.ropeFactors)
        ctx.hook("Qcur_pos", il, ws.q, [t, a.heads, dh])
        ctx.hook("Kcur_pos", il, ws.k, [t, a.kvHeads, dh])
        let shape = AttentionShape(heads: a.heads, kvHeads: a.kvHeads, headDim: dh, window: a.window,
                                   scale: 1 / Float(dh).squareRoot())
        // Each sequence appends its rows to, and attends over, its own cache ([T, H·Dh] out, its rows each).
        ws.attnOut.setCount(t * a.heads * dh)
        let t0 = DispatchTime.now()
        for s in segments {
            let kv = s.kv(il), r = s.start..<(s.start + s.count)
            kv.append(keys: ws.k, values: ws.v, positions: positions, rows: r)
            kv.attention(q: ws.q, positions: positions, rows: r, shape: shape, into: &ws.attnOut, pool: pool)
        }
        ctx.profile?.add(window: a.window > 0, tokens: t, seconds: secondsSince(t0))
        ctx.hook("attn_out", il, ws.attnOut, [t, a.heads, dh])
        if let gw = a.gate {
            mm(gw, x, t, into: &ws.headGate)  // [T, H]: one gate per head, broadcast over Dh
            Ops.sigmoid(&ws.headGate)
            ctx.hook("attn_gate_sigmoid", il, ws.headGate, [t, a.heads])
            Ops.scaleRows(&ws.attnOut, ws.headGate, width: dh)  // [T·H, Dh] rows, one gate each
            ctx.hook("attn_gated", il, ws.attnOut, [t, a.heads * dh])
        }
        mm(a.wo, ws.attnOut, t, into: &ws.attnProj)
        ctx.hook("attn_proj", il, ws.attnProj, [t, config.embeddingLength])
    }

    /// SwiGLU MLP (dense layers, shared expert, MTP blocks) into y [T, D], its intermediates in `ws`.
    func mlp(_ m: Step35MLP, _ x: [Float], t: Int, into y: inout [Float], _ ws: Step35Workspace) {
        mm(m.gate, x, t, into: &ws.mlpGate)  // [T, F]
        mm(m.up, x, t, into: &ws.mlpUp)  // [T, F]
        ws.mlpAct.setCount(ws.mlpGate.count)
        Ops.swiglu(ws.mlpGate, ws.mlpUp, count: ws.mlpGate.count, limit: m.clamp, into: &ws.mlpAct, pool: pool)
        mm(m.down, ws.mlpAct, t, into: &y)
    }

    /// Router: scores, top-A selection with the selection bias, renormalised and scaled weights, into
    /// `ctx.workspace`'s experts and weights ([T, A] each).
    func route(_ m: Step35MoE, _ x: [Float], t: Int, il: Int, _ ctx: PassContext) {
        let e = m.gate.count, a = config.expertUsedCount, ws = ctx.workspace
        mm(m.router, x, t, into: &ws.probs)  // [T, E] router logits, then scores in place
        if config.expertGatingFunc == 1 { Ops.softmax(&ws.probs, rows: t) } else { Ops.sigmoid(&ws.probs) }
        ctx.hook("ffn_moe_probs", il, ws.probs, [t, e])
        Ops.routeTopK(ws.probs, bias: m.selectionBias, tokens: t, topK: a, normalize: config.expertWeightsNorm,
                      scale: config.expertWeightsScale, into: &ws.experts, &ws.weights)  // [T, A] each
        ctx.hook("ffn_moe_topk", il, ws.experts.map(Float.init), [t, a])
        ctx.hook("ffn_moe_weights_scaled", il, ws.weights, [t, a])
        ctx.expertStats?.record(layer: il, tokens: t, chosen: ws.experts)
    }

    /// Router, top-A selection with the bias, renormalised and scaled weights, routed experts + shared expert,
    /// into `ctx.workspace.ffnOut` [T, D].
    func moe(_ m: Step35MoE, _ x: [Float], t: Int, il: Int, _ ctx: PassContext) throws {
        let a = config.expertUsedCount, d = config.embeddingLength, ws = ctx.workspace
        ctx.timed(.router) { route(m, x, t: t, il: il, ctx) }
        // The shared expert runs while the routed rows are away (a cluster head would otherwise sit idle in
        // the exchange); in process the routed experts are done by the time it starts.
        let routed = try ctx.timed(.experts) {
            try ctx.experts.startRoutedExperts(layer: m, layerIndex: il, x: x, tokens: t, experts: ws.experts, weights: ws.weights,
                                               topK: a, pool: pool, into: &ws.ffnOut)
        }
        if let sh = m.shared { ctx.timed(.shared) { mlp(sh, x, t: t, into: &ws.shared, ws) } }
        try ctx.timed(.experts) { try routed.finish(into: &ws.ffnOut) }
        ctx.hook("ffn_moe_out", il, ws.ffnOut, [t, d])
        if m.shared != nil {
            ctx.hook("ffn_shared_out", il, ws.shared, [t, d])
            Ops.add(ws.shared, into: &ws.ffnOut)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
