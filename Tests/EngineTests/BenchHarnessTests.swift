import BenchKit
import Engine
import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// The bench's timing harness, in process.
@Suite struct BenchHarnessTests {
    /// If this fails, a bench row stops adding up when measured through the engine: the breakdown (every
    /// component plus "other") must sum to the measured time per token, a batch of 2 must hold twice the
    /// KV of one, and the routing counts must cover exactly the measured tokens (top-k per token per MoE
    /// layer).
    @Test func rowAddsUp() throws {
        var c = EngineConfig()
        c.parallel = 2
        c.profile = AttentionProfile()
        c.recordExpertStats = true
        c.prefixCache = false
        let e = try #require(try Engine.start(ModelSource(threads: 1) { try GGUFFile(path: "\(EngineFixtures.directory)/tiny-a-f32.gguf") }, config: c))
        defer { e.shutdown() }
        let stats = try #require(e.expertStats)
        var rows: [BenchRow] = []
        for b in [1, 2] {
            rows.append(try BenchHarness.measure(e, context: 64, batch: b, kv: .f32, nGen: 4, draft: 0, fill: "synthetic", stats: stats))
        }
        for r in rows {
            #expect(r.msPerToken > 0 && r.tokensPerSecond > 0)
            let sum = r.breakdownMs.values.reduce(0, +) + r.otherMs
            #expect(abs(sum - r.msPerToken) < 1e-6 + 0.01 * sum)
        }
        #expect(rows[1].kvBytes == 2 * rows[0].kvBytes)
        // After the last row: its 2 sequences' 4 measured steps, top-k experts per token in each MoE layer.
        let k = e.model.config.expertUsedCount
        for l in e.model.moeLayerIndices { #expect(stats.table[l].reduce(0, +) >= 2 * 4 * k) }
    }
}
