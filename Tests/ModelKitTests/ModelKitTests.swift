import Foundation
import GGUF
import Kernels
import ModelKit
import Testing

@Suite struct SamplerTests {
    /// If this fails, a constrained step (a forced tool name) can pick a token outside its allowed set:
    /// greedy and sampled picks must stay inside it even when every other token is far more likely.
    @Test func allowedTokensBoundThePick() {
        var logits = [Float](repeating: 5, count: 50)
        logits[7] = -3
        logits[31] = -2
        for t: Float in [0, 0.7, 2] {
            var s = Sampler(SamplingParams(temperature: t, topK: 0, topP: 1, seed: 9))
            var p = s.params
            p.allowedTokens = [7, 31]
            s = Sampler(p)
            for _ in 0..<50 {
                let r = s.penalized(logits, history: [])
                let pick = t == 0 ? Sampler.argmax(r) : s.sample(r)
                #expect(pick == 7 || pick == 31)
                if t == 0 { #expect(pick == 31) }
            }
        }
    }

    /// If this fails, greedy decoding does not pick the first maximum (llama.cpp's argmax tie rule).
    @Test func greedyPicksFirstMaximum() {
        var s = Sampler(SamplingParams(temperature: 0))
        #expect(s.sample([0.1, 3, 3, -1]) == 1)
    }

    /// If this fails, top-k keeps the wrong candidates or top-p cuts at the wrong mass.
    @Test func topKAndTopPTruncate() {
        let logits: [Float] = [0, 1, 2, 3, 4].map { Float($0) }
        let k = Sampler(SamplingParams(temperature: 1, topK: 2, topP: 1)).distribution(logits)
        #expect(k.map(\.token) == [4, 3])
        #expect(abs(k[0].p - 1 / (1 + exp(-1.0))) < 1e-9)
        let p = Sampler(SamplingParams(temperature: 1, topK: 0, topP: 0.5)).distribution(logits)
        #expect(p.map(\.token) == [4])  // the top token alone holds 64% of the mass
    }

    /// If this fails, the same seed no longer gives the same tokens (runs are not reproducible).
    @Test func seedReproduces() {
        let logits = (0..<50).map { Float($0 % 7) }
        var a = Sampler(SamplingParams(temperature: 1.2, topK: 0, topP: 1, seed: 42))
        var b = Sampler(SamplingParams(temperature: 1.2, topK: 0, topP: 1, seed: 42))
        let xa = (0..<20).map { _ in a.sample(logits) }, xb = (0..<20).map { _ in b.sample(logits) }
        #expect(xa == xb)
        #expect(Set(xa).count > 1)
    }

    /// If this fails, sampling does not follow the softmax distribution (frequencies over many draws).
    @Test func frequenciesFollowSoftmax() {
        let logits: [Float] = [0, log(2), log(3)]
        var s = Sampler(SamplingParams(temperature: 1, topK: 0, topP: 1, seed: 1))
        var counts = [0, 0, 0]
        for _ in 0..<60_000 { counts[s.sample(logits)] += 1 }
        for (i, want) in [1.0 / 6, 2.0 / 6, 3.0 / 6].enumerated() {
            #expect(abs(Double(counts[i]) / 60_000 - want) < 0.01)
        }
    }
}

@Suite struct KVCacheTests {
    /// If this fails, rollback leaves stale rows behind or drops kept ones.
    @Test func truncateKeepsPrefix() {
        let c = LayerKVCache(rowWidth: 2, context: 8)
        c.append(keys: [1, 2, 3, 4, 5, 6], values: [6, 5, 4, 3, 2, 1], positions: [0, 1, 2])
        c.truncate(to: 1)
        #expect(c.count == 1 && c.positions == [0] && c.decoded().keys == [1, 2] && c.decoded().values == [6, 5])
        c.append(keys: [9, 9], values: [8, 8], positions: [1])
        #expect(c.decoded().keys == [1, 2, 9, 9] && c.byteCount == 2 * 8 * 2 * 4)
    }

    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(g.nextUnit() * 2 - 1) }
    }

    /// If this fails, a sliding-window layer's ring (window + maxPass - 1 slots, reused by position) loses
    /// a key a query still sees, or keeps one it must not: every step's attention must equal attention over
    /// the whole history with the window mask, for passes of 1 to maxPass tokens and after rollbacks.
    @Test(arguments: [KVType.f32, .f16, .q8_0])
    func ringMatchesFullHistory(type: KVType) {
        let shape = AttentionShape(heads: 4, kvHeads: 2, headDim: 32, window: 5, scale: 0.2)
        let w = shape.kvHeads * shape.headDim, qw = shape.heads * shape.headDim
        let ring = LayerKVCache(rowWidth: w, type: type, window: 5, context: 100, maxPass: 3)
        #expect(ring.capacity == 7)
        var hk: [Float] = [], hv: [Float] = [], hp: [Int32] = []  // history, decoded as the cache stores it
        var pos: Int32 = 0, step: UInt64 = 0, worst: Float = 0
        let pool = ThreadPool(threads: 2)
        while pos < 40 {
            step += 1
            let t = Int(step % 3) + 1  // passes of 1, 2, 3 tokens
            let p = (0..<t).map { pos + Int32($0) }
            let k = Self.random(t * w, seed: step), v = Self.random(t * w, seed: step + 1000)
            ring.append(keys: k, values: v, positions: p)
            let dk = Ops.dequantize(type.ggml, bytes: Quantize.row(type.ggml, k), count: k.count)
            let dv = Ops.dequantize(type.ggml, bytes: Quantize.row(type.ggml, v), count: v.count)
            let q = Self.random(t * qw, seed: step + 2000)
            let got = ring.attention(q: q, positions: p, shape: shape, pool: pool)
            let want = Reference.attention(q: q, queryPositions: p, k: hk + dk, v: hv + dv, keyPositions: hp + p, shape: shape)
            worst = max(worst, zip(got, want).map { abs($0 - $1) }.max()!)
            // Every third pass is a verification whose last token is rejected: roll it back.
            if step % 3 == 2 {
                ring.truncate(fromPosition: p.last!)
                hk += dk.dropLast(w); hv += dv.dropLast(w); hp += p.dropLast()
                pos += Int32(t - 1)
            } else {
                hk += dk; hv += dv; hp += p
                pos += Int32(t)
            }
        }
        #expect(worst < 1e-5, "max |Δ| \(worst)")
        #expect(ring.count <= 7)
    }

    /// If this fails, the context reservation is not what the sizing formula says.
    @Test func reservesWholeContextForFullLayers() {
        let full = LayerKVCache(rowWidth: 64, type: .q8_0, context: 1000)
        #expect(full.capacity == 1000 && full.byteCount == 2 * 1000 * 68)
        let swa = LayerKVCache(rowWidth: 64, type: .f16, window: 512, context: 262_144, maxPass: 512)
        #expect(swa.capacity == 1023 && swa.byteCount == 2 * 1023 * 128)
    }
}

@Suite struct DebugHookTests {
    /// If this fails, intermediates can no longer be dumped for diffing against the reference.
    @Test func dumpWritesFilesAndIndex() throws {
        let dir = NSTemporaryDirectory() + "dump-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hook = dumpingHook(directory: dir)
        hook("attn_norm", 3, [1, 2, 3, 4], [2, 2])
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/attn_norm-3.f32"))
        #expect(data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == [1, 2, 3, 4])
        #expect(try String(contentsOfFile: "\(dir)/index.tsv", encoding: .utf8) == "attn_norm\t3\t2x2\n")
    }
}
