// Step 3.5 Flash multi-token prediction (MTP): the 3 chained NextN blocks that draft tokens.
//
// References: ../shared/research/step35-architecture.md §6 (structure, chaining, input pairing);
// llama.cpp src/models/step35.cpp `graph_mtp` with `nextn_layer_offset` (read, not copied); vLLM
// `step3p5_mtp.py`; llama.cpp common/speculative.cpp `draft-mtp` (the pair (h_{q-1}, token_q) runs at
// the token's position q; the driver that does the pairing is SequenceRun in Step35Generation.swift).
//
// Draft step k uses MTP block k: u = eh_proj(concat(enorm(embed(token)), hnorm(h))), u' = block(u) (SWA
// attention with the block's own KV cache, dense SwiGLU FFN), logits = head(norm(u')), and u' (pre-norm) is
// the h of step k+1. Step 0's h is the main model's final hidden state before the output norm.
//
// Dimension legend: T pairs, D hidden, V vocabulary.
import Foundation
import Kernels
import ModelKit

/// KV caches of the MTP blocks of one sequence (one per block).
public final class Step35MTPCache {
    /// One cache per MTP block, in chain order.
    public let layers: [LayerKVCache]

    init(model: Step35Model, context: Int, type: KVType, maxPass: Int) {
        layers = model.mtp.map { b in
            LayerKVCache(rowWidth: b.block.attention.kvHeads * b.block.attention.headDim, type: type,
                         window: b.block.attention.window, context: context, maxPass: maxPass)
        }
    }

    /// Whether every block keeps the keys the next pair needs after a rollback to `n` positions.
    public func canRollBack(to n: Int) -> Bool { layers.allSatisfy { $0.canRollBack(to: n) } }

    /// Drops every pair at position `n` or later.
    public func truncate(to n: Int) { for l in layers { l.truncate(to: n) } }

    /// Copies the pairs the first `n` positions leave for the next one from `other`.
    public func copyPrefix(_ n: Int, from other: Step35MTPCache) {
        for (mine, theirs) in zip(layers, other.layers) { mine.copyRows(from: theirs, positions: theirs.neededPositions(rollingBackTo: n)) }
    }

    /// Bytes reserved for keys and values over all blocks.
    public var byteCount: Int { layers.reduce(0) { $0 + $1.byteCount } }
}

extension Step35Model {
    /// Empty MTP caches for a sequence.
    public func makeMTPCache(context: Int = 4096, type: KVType = .f32, maxPass: Int = 512) -> Step35MTPCache {
        Step35MTPCache(model: self, context: context, type: type, maxPass: maxPass)
    }

    /// Runs MTP block `k` on T pairs (hidden state, token) at `positions`, appending to the block's
    /// cache after dropping any entries at or beyond the first position (stale drafts). Returns the logits of
    /// the last pair ([V]) and every pair's pre-norm output ([T, D], the next block's h).
    public func mtpStep(_ k: Int, hidden h: [Float], tokens: [Int32], positions: [Int32], cache: Step35MTPCache,
                        _ ctx: PassContext = PassContext()) throws -> (logits: [Float], hidden: [Float])
    {
        let m = mtp[k], t = tokens.count, d = config.embeddingLength
        precondition(h.count == t * d && positions.count == t, "MTP step: shape mismatch")
        let kv = cache.layers[k]
        kv.truncate(fromPosition: positions[0])
        let table = m.embed ?? tokenEmbedding
        var e = [Float](repeating: 0, count: t * d)  // [T, D]
        for (i, tok) in tokens.enumerated() {
            let row = table.row(Int(tok))
            for c in 0..<d { e[i * d + c] = row[c] }
        }
        let en = Ops.rmsNorm(e, weight: m.enorm, rows: t, eps: config.rmsEpsilon)
        let hn = Ops.rmsNorm(h, weight: m.hnorm, rows: t, eps: config.rmsEpsilon)
        var cat = [Float](repeating: 0, count: t * 2 * d)  // [T, 2D]: embedding first, then hidden
        for i in 0..<t {
            for c in 0..<d {
                cat[i * 2 * d + c] = en[i * d + c]
                cat[i * 2 * d + d + c] = hn[i * d + c]
            }
        }
        let il = m.block.index
        var out = Ops.matmul(m.ehProj, cat, tokens: t, pool: pool)  // [T, D]
        ctx.debugHook?("mtp_eh_proj", il, out, [t, d])
        // MTP blocks have a dense FFN: the context's expert backend is never asked.
        try block(m.block, &out, t: t, positions: positions, segments: [PassSegment(start: 0, count: t, cache: nil, layer: kv)], ctx)
        let last = Array(out[((t - 1) * d)...])
        let normed = Ops.rmsNorm(last, weight: m.headNorm ?? outputNorm, rows: 1, eps: config.rmsEpsilon)
        let logits = Ops.matmul(m.head ?? output, normed, tokens: 1, pool: pool)
        ctx.debugHook?("mtp_logits", il, logits, [1, config.vocabSize])
        return (logits, out)
    }
}
