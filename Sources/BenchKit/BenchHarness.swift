// The bench's timing harness: one row of `switchyard bench` (B sequences reach a context, then decode
// together through the engine, timed from sequence 0's warm-up token to its last), the rows' JSON schema,
// and the mean of repeated rows. The CLI parses flags and prints; this library measures, so tests can
// drive it in process.
import Cluster
import Engine
import Foundation
import Kernels
import ModelKit
import Step35

/// A bench measurement that could not be taken.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
}

/// One bench row's measurement.
public enum BenchHarness {
    /// One row: `batch` sequences reach the context (synthetic fill or real prefill), then decode 1 + nGen
    /// tokens each, together in one pass per step, as jobs (single process or across the cluster); the first
    /// decoded step is the warm-up. Sequence 0's tokens mark the steps (the others move in the same passes).
    public static func measure(_ engine: Engine, context c: Int, batch: Int, kv: KVType, nGen: Int, draft: Int, fill: String,
                               stats: ExpertStats) throws -> BenchRow {
        let model = engine.model, v = model.config.vocabSize
        let synthetic = fill == "synthetic"
        // Sequence i enters with pass i + 1 (prompts join the decode passes one at a time), so from sequence
        // 0's token number `warm` on every pass decodes all of them; the pass before is the warm-up.
        let warm = max(2, batch)
        let requests = (0..<batch).map { i -> InferenceRequest in
            let prompt = synthetic ? [Int32((c + i) % v)] : (0..<max(c, 1)).map { Int32(($0 * 37 + 5 + i) % v) }
            return InferenceRequest(prompt: prompt, maxTokens: nGen + warm, ignoreEOS: true, draft: draft, syntheticFill: synthetic ? c : 0)
        }
        let profile = engine.config.profile!
        profile.reset()
        let mark = RowMark()
        let session = engine.session
        let pool = model.pool
        // Start the clock at sequence 0's token `warm` (events come on the engine's thread, right after the pass).
        let outcomes = try engine.generate(requests) { id, e in
            guard id == 0, case .tokens(let t) = e else { return }
            for _ in t.tokens { mark.token(warm: warm, pool: pool, profile: profile, session: session, stats: stats) }
        }
        if let bad = outcomes.first(where: { $0.completion.reason == .error }) { throw BenchError(description: bad.completion.error ?? "failed") }
        let result = outcomes[0]
        let end = mark.end
        // Per generated token (with drafting a pass can yield several; a step yields one per sequence).
        let steps = result.tokens.count - warm
        let tokens = Double(max(steps, 1) * batch)
        let total = Double(end.uptimeNanoseconds - mark.start.uptimeNanoseconds) / 1e6 / tokens
        var breakdown: [String: Double] = [:]
        for (k, s) in mark.endComponents { breakdown[k.rawValue] = s * 1000 / tokens }
        let full = (0..<model.config.layerCount).filter { !model.config.isSWA($0) }.count
        let swa = model.config.layerCount - full
        var dispatch = 0.0, combine = 0.0, exchangeBytes = 0.0
        if let s0 = mark.stats, let s1 = mark.endStats {
            dispatch = (s1.dispatch - s0.dispatch) * 1000 / tokens
            combine = (s1.combine - s0.combine) * 1000 / tokens
            exchangeBytes = Double(s1.bytesSent - s0.bytesSent + s1.bytesReceived - s0.bytesReceived) / tokens
        }
        // Rows each worker was actually sent per token and MoE layer (replicas as dispatched), and the mean
        // over exchanges of the busiest worker's rows over the mean (what each layer waits for).
        var workerLoad: [Double]?, layerImbalance: Double?
        if let s0 = mark.stats, let s1 = mark.endStats, !s1.rowsPerWorker.isEmpty {
            let before = s0.rowsPerWorker.isEmpty ? [Int](repeating: 0, count: s1.rowsPerWorker.count) : s0.rowsPerWorker
            let perLayer = tokens * Double(max(model.moeLayerIndices.count, 1))
            workerLoad = zip(s1.rowsPerWorker, before).map { Double($0 - $1) / perLayer }
            let n = s1.imbalanceCount - s0.imbalanceCount
            layerImbalance = n > 0 ? (s1.imbalanceSum - s0.imbalanceSum) / Double(n) : nil
        }
        let wmean = workerLoad.map { $0.reduce(0, +) / Double(max($0.count, 1)) }
        let passes = Double(max(steps, 1))
        return BenchRow(context: c, batch: batch, fill: fill, tokensPerSecond: 1000 / total, msPerToken: total, breakdownMs: breakdown,
                        otherMs: max(0, total - breakdown.values.reduce(0, +)),
                        kernelFullUs: full > 0 ? mark.endFull * 1e6 / (passes * Double(full)) : 0,
                        kernelSWAUs: swa > 0 ? mark.endSliding * 1e6 / (passes * Double(swa)) : 0,
                        kvBytes: model.config.kvBytes(context: c + requests[0].prompt.count + nGen + warm + draft + 1, type: kv) * batch, dispatchMs: dispatch, combineMs: combine,
                        exchangeBytesPerToken: exchangeBytes,
                        callsPerToken: Double(mark.endRuns - mark.startRuns) / tokens,
                        workerLoad: workerLoad, workerMaxOverMean: workerLoad.flatMap { l in wmean.map { $0 > 0 ? l.max()! / $0 : 0 } },
                        layerMaxOverMean: layerImbalance,
                        expertMaxOverMean: stats.expertImbalance)
    }
}

/// Per-row bookkeeping touched from the token callback.
private final class RowMark: @unchecked Sendable {
    var count = 0
    var start = DispatchTime.now(), end = DispatchTime.now()
    var stats: ExchangeStats?
    var startRuns = 0, endRuns = 0
    var endComponents: [Step35Component: Double] = [:]
    var endFull = 0.0, endSliding = 0.0
    var endStats: ExchangeStats?

    /// Sequence 0's next token: the clock starts at token `warm` and every figure stops at the last one.
    func token(warm: Int, pool: ThreadPool, profile: AttentionProfile, session: ClusterSession?, stats: ExpertStats) {
        count += 1
        end = DispatchTime.now()  // the last token's arrival (not the job's teardown, which frees the KV)
        endRuns = pool.runs
        // Everything measured stops here too: other sequences of the batch may still run a pass after
        // sequence 0's last token (they entered a pass later), and that pass is not in the clock.
        endComponents = profile.components
        endFull = profile.fullSeconds
        endSliding = profile.slidingSeconds
        endStats = session?.headStats
        if count == warm {
            startRuns = pool.runs
            stats.reset()
            profile.reset()
            self.stats = session?.headStats
            start = DispatchTime.now()
        }
    }
}

/// What a bench run measured on (the JSON's `setup`).
public struct BenchSetup: Codable {
    /// Creates a setup.
    public init(model: String, weightBytes: Int, threads: Int, kvType: String, fill: String, nGen: Int, host: String, cores: Int, topology: String) {
        self.model = model; self.weightBytes = weightBytes; self.threads = threads; self.kvType = kvType; self.fill = fill
        self.nGen = nGen; self.host = host; self.cores = cores; self.topology = topology
    }
    public var model: String
    public var weightBytes: Int
    public var threads: Int
    public var kvType: String
    public var fill: String
    public var nGen: Int
    public var host: String
    public var cores: Int
    /// "single process" or the topology (heads, workers, file).
    public var topology: String
    /// The kernels' instruction-set path and activation mode (absent in files written before it was recorded).
    public var kernels: String? = KernelPath.summary
}

/// One measured context (the JSON's `rows`).
public struct BenchRow: Codable {
    public var context: Int
    /// Measurements averaged (`-r`), and the standard deviation of tokens per second over them.
    public var repetitions = 1
    public var tokensPerSecondSD = 0.0
    /// Sequences decoded together in each pass.
    public var batch: Int = 1
    /// "synthetic" (random K/V) or "prefill" (a real prefill reached the context).
    public var fill: String
    public var tokensPerSecond: Double
    public var msPerToken: Double
    /// Milliseconds per token by component (`Step35Component` raw values).
    public var breakdownMs: [String: Double]
    public var otherMs: Double
    /// Attention kernel alone (the cache scan), microseconds per layer per pass (all `batch` sequences), by layer kind.
    public var kernelFullUs: Double
    public var kernelSWAUs: Double
    public var kvBytes: Int
    /// Exchange per token under a topology (0 single-process): dispatch, and the wait for the combine.
    public var dispatchMs: Double
    public var combineMs: Double
    /// Bytes the head sent and received in the expert exchange per token (0 single-process).
    public var exchangeBytesPerToken: Double = 0
    /// Kernel calls (thread-pool dispatches) per token on this rank.
    public var callsPerToken: Double = 0
    /// Under a topology: rows each worker received per token per MoE layer, and max over mean.
    public var workerLoad: [Double]?
    public var workerMaxOverMean: Double?
    /// Under a topology: the busiest worker's rows over the mean in each exchange, averaged (per-layer balance).
    public var layerMaxOverMean: Double?
    /// Busiest expert over the mean expert, per MoE layer, averaged over layers.
    public var expertMaxOverMean: Double = 0
    /// `--predict`: the cost model's prediction for this row.
    public var predicted: BenchPrediction?
}

extension BenchRow {
    /// The mean of repeated measurements of one row (timings and the breakdown averaged; tokens per second
    /// as the mean of the repetitions, with their standard deviation); counts and loads from the last.
    public static func mean(of reps: [BenchRow]) -> BenchRow {
        guard var m = reps.last, reps.count > 1 else { return reps[0] }
        let n = Double(reps.count)
        func avg(_ f: (BenchRow) -> Double) -> Double { reps.reduce(0) { $0 + f($1) } / n }
        m.repetitions = reps.count
        m.tokensPerSecond = avg(\.tokensPerSecond)
        m.tokensPerSecondSD = (reps.reduce(0) { $0 + ($1.tokensPerSecond - m.tokensPerSecond) * ($1.tokensPerSecond - m.tokensPerSecond) } / (n - 1)).squareRoot()
        m.msPerToken = avg(\.msPerToken)
        m.otherMs = avg(\.otherMs)
        m.kernelFullUs = avg(\.kernelFullUs)
        m.kernelSWAUs = avg(\.kernelSWAUs)
        m.dispatchMs = avg(\.dispatchMs)
        m.combineMs = avg(\.combineMs)
        m.exchangeBytesPerToken = avg(\.exchangeBytesPerToken)
        var parts: [String: Double] = [:]
        for r in reps { for (k, v) in r.breakdownMs { parts[k, default: 0] += v / n } }
        m.breakdownMs = parts
        return m
    }
}

/// The JSON file `bench --json` writes.
public struct BenchReport: Codable {
    /// Creates a report.
    public init(setup: BenchSetup, rows: [BenchRow]) {
        self.setup = setup
        self.rows = rows
    }
    public var setup: BenchSetup
    public var rows: [BenchRow]
}
