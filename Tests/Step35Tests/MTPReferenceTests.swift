import Foundation
import GGUF
import Kernels
import ModelKit
import Step35
import Testing

/// MTP draft heads against a plain reference written here from the spec (§6) and llama.cpp's `graph_mtp`
/// (read, not copied): embedding first, then hidden, in the concat; the block's SWA attention over its own
/// cache; dense SwiGLU; the shared head norm and head, falling back to the output norm and output.
@Suite struct MTPReferenceTests {
    /// Plain MTP block k over T pairs at positions 0..<T with an empty cache: [T, V] logits and [T, D] h'.
    static func reference(_ m: Step35Model, _ k: Int, h: [Float], tokens: [Int32]) -> (logits: [Float], out: [Float]) {
        let b = m.mtp[k], a = b.block.attention, c = m.config, t = tokens.count, d = c.embeddingLength
        let eps = c.rmsEpsilon
        let pos = (0..<t).map(Int32.init)
        let e = tokens.flatMap { (b.embed ?? m.tokenEmbedding).row(Int($0)) }
        let en = Reference.rmsNorm(e, weight: b.enorm, rows: t, eps: eps)
        let hn = Reference.rmsNorm(h, weight: b.hnorm, rows: t, eps: eps)
        var cat: [Float] = []  // [T, 2D]
        for i in 0..<t {
            cat += en[(i * d)..<((i + 1) * d)]
            cat += hn[(i * d)..<((i + 1) * d)]
        }
        let u = Reference.matmul(b.ehProj, cat, tokens: t)
        // Decoder block: u + attn(norm(u)), then + mlp(norm(.)).
        let x = Reference.rmsNorm(u, weight: b.block.attnNorm, rows: t, eps: eps)
        var q = Reference.matmul(a.wq, x, tokens: t), kk = Reference.matmul(a.wk, x, tokens: t)
        let v = Reference.matmul(a.wv, x, tokens: t)
        if let w = a.qNorm { q = Reference.rmsNorm(q, weight: w, rows: t * a.heads, eps: eps) }
        if let w = a.kNorm { kk = Reference.rmsNorm(kk, weight: w, rows: t * a.kvHeads, eps: eps) }
        q = Reference.ropeNeox(q, heads: a.heads, headDim: a.headDim, rotaryDims: a.rotaryDims, positions: pos, base: a.ropeBase, factors: a.ropeFactors)
        kk = Reference.ropeNeox(kk, heads: a.kvHeads, headDim: a.headDim, rotaryDims: a.rotaryDims, positions: pos, base: a.ropeBase, factors: a.ropeFactors)
        let shape = AttentionShape(heads: a.heads, kvHeads: a.kvHeads, headDim: a.headDim, window: a.window,
                                   scale: 1 / Float(a.headDim).squareRoot())
        var o = Reference.attention(q: q, queryPositions: pos, k: kk, v: v, keyPositions: pos, shape: shape)
        if let gw = a.gate {
            let g = Reference.matmul(gw, x, tokens: t)
            for i in 0..<(t * a.heads) {
                let s = Float(1 / (1 + exp(-Double(g[i]))))
                for j in 0..<a.headDim { o[i * a.headDim + j] *= s }
            }
        }
        let attn = Reference.matmul(a.wo, o, tokens: t)
        let mid = zip(u, attn).map { $0 + $1 }
        let xf = Reference.rmsNorm(mid, weight: b.block.ffnNorm, rows: t, eps: eps)
        guard case .dense(let mlp) = b.block.ffn else { fatalError("MTP blocks are dense") }
        let f = Reference.matmul(mlp.down, Reference.swiglu(Reference.matmul(mlp.gate, xf, tokens: t),
                                                            Reference.matmul(mlp.up, xf, tokens: t), limit: mlp.clamp), tokens: t)
        let out = zip(mid, f).map { $0 + $1 }
        let normed = Reference.rmsNorm(out, weight: b.headNorm ?? m.outputNorm, rows: t, eps: eps)
        return (Reference.matmul(b.head ?? m.output, normed, tokens: t), out)
    }

    /// If this fails, an MTP draft head (input pairing, norms, eh_proj, its block, the shared head) differs
    /// from the plain reference: drafts would still be verified, but acceptance would silently collapse.
    @Test(arguments: ["tiny-a-f32", "tiny-a-q8_0", "tiny-b-kmix"])
    func draftHeadsMatchThePlainReference(name: String) throws {
        let m = try Step35Model(file: try GGUFFile(path: Fixtures.path("\(name).gguf")), threads: 2, exact: true)  // vs a float reference
        let prompt: [Int32] = [5, 17, 200, 3, 99, 42]
        let main = try m.forwardHidden(prompt, cache: m.makeCache(), logits: .all)
        let d = m.config.embeddingLength, v = m.config.vocabSize, t = prompt.count - 1
        // Pairs (h_p, token_{p+1}) for p in 0..<T, chained through every head.
        var h = Array(main.hidden[0..<(t * d)])
        let toks = Array(prompt.dropFirst())
        var worst: Float = 0
        for k in 0..<m.mtp.count {
            let cache = m.makeMTPCache()
            let fast = try m.mtpStep(k, hidden: h, tokens: toks, positions: (0..<t).map(Int32.init), cache: cache)
            let ref = Self.reference(m, k, h: h, tokens: toks)
            let lastRef = Array(ref.logits[((t - 1) * v)...])
            let dl = zip(fast.logits, lastRef).map { abs($0 - $1) }.max()!
            let dh = zip(fast.hidden, ref.out).map { abs($0 - $1) }.max()!
            worst = max(worst, dl)
            #expect(dl < 1e-3 && dh < 1e-3, "head \(k): max |Δlogit| \(dl), max |Δh| \(dh)")
            #expect(cache.layers[k].count == t)
            h = ref.out
        }
        print("MTP reference \(name): \(m.mtp.count) head(s), max |Δlogit| \(worst)")
    }
}

/// MTP draft heads against llama.cpp's own MTP graph (golden file from Scripts/reference/mtp_golden.py:
/// llama-cpp-python 0.3.36, LLAMA_CONTEXT_TYPE_MTP with llama_set_nextn_layer_offset per head, pairs
/// (h_{q-1}, x_q) at position q).
@Suite struct MTPGoldenTests {
    struct Meta: Decodable {
        let prompt: [Int32]
        let heads: Int
        let n_vocab: Int
        let n_embd: Int
    }

    static func floats(_ file: String) throws -> [Float] {
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// If this fails, a draft head's logits (every position, every head) or the main model's pre-norm
    /// hidden state it consumes differ from llama.cpp's MTP graph on tiny-a-f32 by more than 1e-3.
    @Test func draftHeadsMatchLlamaCpp() throws {
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-a-f32.mtp.json"))))
        let golden = try Self.floats("tiny-a-f32.mtp.f32"), goldenH = try Self.floats("tiny-a-f32.h.f32")
        let m = try Step35Model(file: try GGUFFile(path: Fixtures.path("tiny-a-f32.gguf")), threads: 2)
        let n = meta.prompt.count, d = m.config.embeddingLength, v = meta.n_vocab
        #expect(meta.heads == m.mtp.count && d == meta.n_embd && golden.count == meta.heads * n * v)
        let h = try m.forwardHidden(meta.prompt, cache: m.makeCache(), logits: .last).hidden  // [n, D]
        let dh = zip(h, goldenH).map { abs($0 - $1) }.max()!
        #expect(dh < 1e-4, "main hidden state: max |Δ| \(dh)")
        let shifted = [Float](repeating: 0, count: d) + h.prefix((n - 1) * d)  // h_{q-1}, zeros at q = 0
        var worst: Float = 0
        for k in 0..<meta.heads {
            let out = try m.mtpStep(k, hidden: shifted, tokens: meta.prompt, positions: (0..<n).map(Int32.init),
                                cache: m.makeMTPCache()).hidden
            let normed = Ops.rmsNorm(out, weight: m.mtp[k].headNorm ?? m.outputNorm, rows: n, eps: m.config.rmsEpsilon)
            let logits = Ops.matmul(m.mtp[k].head ?? m.output, normed, tokens: n, pool: m.pool)  // [n, V]
            let want = golden[(k * n * v)..<((k + 1) * n * v)]
            let dl = zip(logits, want).map { abs($0 - $1) }.max()!
            worst = max(worst, dl)
            #expect(dl < 1e-3, "head \(k): max |Δlogit| \(dl)")
        }
        print("MTP vs llama.cpp on tiny-a-f32: \(meta.heads) heads x \(n) positions, max |Δlogit| \(worst), max |Δh| \(dh)")
    }
}
