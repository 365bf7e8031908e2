import Foundation
import ModelKit
import Testing

@Suite struct SamplerTests {
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
        let c = LayerKVCache(rowWidth: 2)
        c.append(keys: [1, 2, 3, 4, 5, 6], values: [6, 5, 4, 3, 2, 1], positions: [0, 1, 2])
        c.truncate(to: 1)
        #expect(c.count == 1 && c.keys == [1, 2] && c.values == [6, 5] && c.positions == [0])
        c.append(keys: [9, 9], values: [8, 8], positions: [1])
        #expect(c.keys == [1, 2, 9, 9] && c.byteCount == 8 * 4)
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
