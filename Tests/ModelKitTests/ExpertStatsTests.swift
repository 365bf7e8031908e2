import Foundation
import ModelKit
import Testing

/// Routing statistics: counts, worker loads and the JSON file the tuner reads.
@Suite struct ExpertStatsTests {
    /// A hand-made routing: 2 layers (layer 0 dense), 4 experts, top-2, 3 tokens in layer 1 choosing
    /// (0, 1), (0, 2), (0, 3).
    func handMade() -> ExpertStats {
        let s = ExpertStats(layers: 2, experts: 4)
        s.record(layer: 1, tokens: 2, chosen: [0, 1, 0, 2])
        s.record(layer: 1, tokens: 1, chosen: [0, 3])
        return s
    }

    /// If this fails, the counts no longer match a hand-made routing: expert 0 got 3 rows, experts 1-3 one
    /// each, 3 tokens routed in layer 1, nothing in the dense layer 0.
    @Test func countsMatchHandMadeRouting() {
        let s = handMade()
        #expect(s.table == [[0, 0, 0, 0], [3, 1, 1, 1]])
        #expect(s.tokensPerLayer == [0, 3])
        #expect(s.activeLayers == [1])
        // Busiest expert 3 over the mean 6 / 4 = 1.5.
        #expect(abs(s.expertImbalance - 2.0) < 1e-12)
    }

    /// If this fails, per-worker load is misattributed: worker 0 holds experts 0 and 1, worker 1 holds 2 and
    /// 3, so per routed token worker 0 gets (3 + 1) / 3 rows and worker 1 (1 + 1) / 3; replicating expert 0
    /// on both workers splits its 3 rows evenly: (1.5 + 1) / 3 and (1.5 + 2) / 3.
    @Test func workerLoadFollowsOwnersAndReplicas() {
        let s = handMade()
        let plain = s.workerLoad(workers: 2) { _, e in [e < 2 ? 0 : 1] }
        #expect(abs(plain[0] - 4.0 / 3) < 1e-12 && abs(plain[1] - 2.0 / 3) < 1e-12)
        let replicated = s.workerLoad(workers: 2) { _, e in e == 0 ? [0, 1] : [e < 2 ? 0 : 1] }
        #expect(abs(replicated[0] - 2.5 / 3) < 1e-12 && abs(replicated[1] - 3.5 / 3) < 1e-12)
    }

    /// If this fails, the statistics file does not round-trip, or a malformed one (wrong row width,
    /// negative count) is accepted instead of refused with a message naming the file.
    @Test func fileRoundTripsAndRejectsMalformed() throws {
        let path = NSTemporaryDirectory() + "stats-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = ExpertStatsFile(handMade(), source: "test", topK: 2)
        try f.write(to: path)
        #expect(try ExpertStatsFile.read(from: path) == f)
        var bad = f
        bad.counts[1] = [1, 2, 3]
        try bad.write(to: path)
        #expect(throws: ExpertStatsError.self) { try ExpertStatsFile.read(from: path) }
        bad = f
        bad.counts[1][2] = -1
        try bad.write(to: path)
        #expect(throws: ExpertStatsError.self) { try ExpertStatsFile.read(from: path) }
        try Data("{".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ExpertStatsError.self) { try ExpertStatsFile.read(from: path) }
    }

    /// If this fails, windows no longer add up: adding a window to an empty one gives the same counts.
    @Test func windowsAdd() {
        let s = handMade(), total = ExpertStats(layers: 2, experts: 4)
        total.add(s)
        total.add(s)
        #expect(total.table == [[0, 0, 0, 0], [6, 2, 2, 2]] && total.tokensPerLayer == [0, 6])
    }
}
