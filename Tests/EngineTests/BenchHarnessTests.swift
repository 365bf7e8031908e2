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

/// The exchange benchmark's fit (`switchyard bench-exchange`, BenchKit/ExchangeFit.swift).
@Suite struct ExchangeFitTests {
    func row(_ bytes: Int, _ seconds: Double) -> ExchangeRow {
        ExchangeRow(tokens: 1, rowsPerWorker: 1, bytesOut: bytes / 2, bytesBack: bytes - bytes / 2, rounds: 1, seconds: seconds)
    }

    /// If this fails, the alpha and beta fed to the cost model are not those of the rows: points on
    /// t = 50 us + bytes / 2 GB/s must give back 2 GB/s with no residual.
    @Test func exactLineIsRecovered() {
        let rows = [1_000, 100_000, 10_000_000].map { row($0, 50e-6 + Double($0) / 2e9) }
        let f = ExchangeFit(rows, alpha: 50e-6)
        #expect(abs(f.beta - 2e9) / 2e9 < 1e-9 && f.worstResidual < 1e-9, "\(f)")
    }

    /// If this fails, the fit lets the largest rows decide alone (it must weigh rows by relative error): with
    /// one row 10% slow at each end, beta stays within 10% of the true 2 GB/s and the worst residual is about 5-10%.
    @Test func rowsCountByRelativeError() {
        let rows = [row(1_000_000, (50e-6 + 1e6 / 2e9) * 1.1), row(4_000_000, 50e-6 + 4e6 / 2e9), row(64_000_000, (50e-6 + 64e6 / 2e9) * 0.9)]
        let f = ExchangeFit(rows, alpha: 50e-6)
        #expect(abs(f.beta - 2e9) / 2e9 < 0.1 && f.worstResidual < 0.12, "\(f)")
    }
}
