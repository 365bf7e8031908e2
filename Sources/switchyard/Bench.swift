// `switchyard bench`: decoding cost at given contexts, llama-bench style, with a per-component breakdown.
//
// A context is reached by a labelled synthetic fill (random K/V at the right positions, so 128K needs no
// 128K prefill) or by a real prefill; either way attention reads the whole cache. Each row decodes
// `-n` tokens greedily after one warm-up step and reports the mean per token.
import ArgumentParser
import CostModel
import Engine
import Kernels
import Foundation
import GGUF
import ModelKit
import Cluster
import Step35

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure decode speed and its breakdown at several contexts (llama-bench style rows, JSON, CSV).")

    @OptionGroup var options: ModelOptions

    @Option(help: "Built-in shape instead of a file: step35-flash (random weights generated in memory).")
    var shape: String?

    @Option(help: "Width and expert scale of --shape, e.g. 1/16.")
    var scale: String = "1/16"

    @Option(help: "Weight type of a built-in shape: f32, f16, bf16, q8_0 or q4_0.")
    var type: String = "q8_0"

    @Option(help: "Built-in shape: skew routing with a Zipf selection bias of this exponent (0: none).")
    var routerSkew: Double = 0

    @Option(help: "Contexts to measure at, comma-separated; K = 1024 (e.g. 0,4K,16K,64K,128K).")
    var contexts: String = "0,4K,16K,64K,128K"

    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Tokens decoded per context (after one warm-up step).")
    var nGen: Int = 8

    @Option(name: [.short, .customLong("repetitions")], help: "Measure each row this many times; rows show the mean and standard deviation (llama-bench's -r).")
    var repetitions: Int = 1

    @Option(name: [.customLong("batch-sizes"), .customLong("npl", withSingleDash: true)],
            help: "Sequences decoded together in one pass, comma-separated (llama-batched-bench's -npl), e.g. 1,4.")
    var batchSizes: String = "1"

    @Option(help: "How each context is reached: synthetic (random K/V at the right positions) or prefill.")
    var fill: String = "synthetic"

    @Option(help: "KV cache type: f32, f16 or q8_0.")
    var kvType: String = "f32"

    @Option(help: "Tokens drafted per step with the MTP blocks (0-3; 0: MTP off).")
    var draft: Int = 0

    @Option(help: "Write the rows as JSON to this file.")
    var json: String?

    @Option(help: "Write the rows as CSV to this file.")
    var csv: String?

    @Option(help: "Draw cost per token against context, split by component, as SVG to this file.")
    var plot: String?

    @Flag(help: "Put the analytic cost model's prediction (this machine's probe, the same shape) beside every row.")
    var predict = false

    @Option(help: "Write the routing counts of the measured tokens (per layer, per expert) as JSON to this file.")
    var expertStats: String?

    func validate() throws {
        guard ["synthetic", "prefill"].contains(fill) else { throw ValidationError("--fill must be synthetic or prefill") }
        guard KVType(rawValue: kvType) != nil else { throw ValidationError("--kv-type must be f32, f16 or q8_0") }
        guard nGen >= 1 else { throw ValidationError("-n must be >= 1") }
        guard (1...100).contains(repetitions) else { throw ValidationError("-r must be 1 to 100") }
        guard (0...3).contains(draft) else { throw ValidationError("--draft must be 0 to 3") }
        if predict && draft > 0 { throw ValidationError("--predict models one token per step; use it with --draft 0") }
        _ = try Self.parseContexts(contexts)
        let bs = try Self.parseContexts(batchSizes)
        guard bs.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--batch-sizes must be numbers from 1 to 256") }
        if shape != nil { _ = try Self.parseScale(scale) }
    }

    static func parseContexts(_ s: String) throws -> [Int] {
        try s.split(separator: ",").map { part in
            let p = part.trimmingCharacters(in: .whitespaces).uppercased()
            let k = p.hasSuffix("K"), num = Int(k ? String(p.dropLast()) : p)
            guard let n = num, n >= 0 else { throw ValidationError("bad context '\(part)' (use numbers like 4096 or 4K)") }
            return k ? n * 1024 : n
        }
    }

    static func parseScale(_ s: String) throws -> Double {
        let parts = s.split(separator: "/").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        let v: Double? = parts.count == 2 ? parts[0].flatMap { a in parts[1].map { a / $0 } } : parts.count == 1 ? parts[0] : nil
        guard let x = v, x > 0, x <= 1 else { throw ValidationError("--scale must be a fraction like 1/16 (got '\(s)')") }
        return x
    }

    func run() throws {
        try reportingErrors { try bench() }
    }

    private func bench() throws {
        var name = options.displayName
        var maker: (() throws -> GGUFFile)?
        if let sh = shape {
            guard sh == "step35-flash" else { throw ValidationError("unknown --shape '\(sh)' (known: step35-flash)") }
            guard let t = GGMLType(name: type), Quantize.types.contains(t) else {
                throw ValidationError("--type of a built-in shape must be f32, f16, bf16, q8_0 or q4_0 (got '\(type)')")
            }
            var shp = Step35Shape.flash(scale: try Self.parseScale(scale))
            guard routerSkew >= 0 else { throw ValidationError("--router-skew must be >= 0") }
            shp.routerSkew = routerSkew
            // Every rank builds the same weights from the same seed.
            maker = { try GGUFFile(bytes: Step35Synthetic.gguf(shape: shp, type: t)) }
            name = "step35-flash x\(scale) \(type) (synthetic\(routerSkew > 0 ? ", router skew \(routerSkew)" : ""))"
        }
        let kv = KVType(rawValue: kvType)!
        let ctxs = try Self.parseContexts(contexts)
        let batches = try Self.parseContexts(batchSizes)
        var config = EngineConfig()
        config.parallel = batches.max() ?? 1
        config.kvType = kv
        config.profile = AttentionProfile()
        config.recordExpertStats = true
        config.prefixCache = false  // every row measures its own fill
        config.contextSize = 0
        guard let engine = try options.startEngine(config, open: maker) else { return }  // other ranks served the run
        defer { engine.shutdown() }
        let model = engine.model, file = engine.file
        if let avail = availableMemory(), let maxC = ctxs.max() {
            let need = model.config.kvBytes(context: maxC + nGen + 2, type: kv) * (batches.max() ?? 1)
            if need > avail {
                throw ValidationError(String(format: "%d sequences of a %d-token context need %.2f GiB of %@ KV but %.2f GiB is available", batches.max() ?? 1, maxC, Double(need) / 1_073_741_824, kvType, Double(avail) / 1_073_741_824))
            }
        }
        let weights = file.tensors.reduce(0) { $0 + $1.byteCount }
        let setup = BenchSetup(model: name, weightBytes: weights, threads: model.pool.threads, kvType: kvType, fill: fill,
                               nGen: nGen, host: ProcessInfo.processInfo.hostName, cores: ProcessInfo.processInfo.activeProcessorCount,
                               topology: engine.session.map { "\($0.topology.heads) head(s) + \($0.topology.workers) worker(s), \($0.topology.file)" } ?? "single process")
        // Per batch size: the machine profile for the step's matmuls at that many tokens and the fixed step cost.
        var predictor: (spec: ModelCostSpec, bytesPerParam: Double, exchange: Double, byBatch: [Int: (profile: HardwareProfile, fixed: Double)])?
        if predict {
            let (calls, sampleRows) = BenchPredict.matmulCalls(model.config, file: file)
            let (spec, bpp) = BenchPredict.spec(model.config, file: file, kv: kv, moeLayers: model.moeLayerIndices.count)
            var exchange = 0.0
            if let session = engine.session {
                let d = model.config.embeddingLength, w = max(session.topology.workers, 1)
                exchange = try engine.probeExchange(rows: (model.config.expertUsedCount + w - 1) / w, rowBytes: session.dispatchRowBytes(hidden: d),
                                                    combineBytes: 4 * d)
                print(String(format: "predict: one MoE layer's exchange with no compute in it (counts + dispatch + combine): %.1f us", exchange * 1e6))
            }
            var byBatch: [Int: (profile: HardwareProfile, fixed: Double)] = [:]
            let base = Probe.profile(threads: model.pool.threads)
            for b in batches {
                let (p, mmSeconds) = BenchPredict.profile(base, threads: model.pool.threads, calls: calls, rows: sampleRows, batch: b)
                let fixed = try BenchPredict.fixedStepSeconds(like: model.config, moeLayers: model.moeLayerIndices.count, threads: model.pool.threads, batch: b)
                byBatch[b] = (p, fixed)
                print(String(format: "predict: B=%d, probe on %d threads: memory read %.2f GB/s, F32 %.2f GFLOP/s, kernel call %.2f us; the step's %d matmuls (%d shapes) stream in %.3f ms alone (%.2f GB/s); fixed step cost %.3f ms (same layers, 32-wide); %.3f bytes per weight read",
                             b, model.pool.threads, p.memoryBandwidth / 1e9, p.flopsF32 / 1e9, p.callOverhead * 1e6, calls.count, Set(calls).count,
                             mmSeconds * 1e3, p.weightBandwidth / 1e9, fixed * 1e3, bpp))
            }
            predictor = (spec, bpp, exchange, byBatch)
        }
        let stats = engine.expertStats!
        let total = ExpertStats(layers: model.config.layerCount, experts: model.config.expertCount)
        print("| model | size | threads | kv | fill | test | B | t/s | ms/token |" + (predict ? " predicted ms | measured/predicted |" : ""))
        print("|---|---|---|---|---|---|---|---|---|" + (predict ? "---|---|" : ""))
        var rows: [BenchRow] = []
        for c in ctxs { for b in batches {
            var reps: [BenchRow] = []
            for _ in 0..<repetitions {
                reps.append(try measure(engine, context: c, batch: b, kv: kv, stats: stats))
                total.add(stats)
            }
            var r = BenchRow.mean(of: reps)
            var tail = ""
            if let pr = predictor {
                let pb = pr.byBatch[b]!
                let st = BenchPredict.predict(spec: pr.spec, bytesPerParam: pr.bytesPerParam, profile: pb.profile, context: c, fixedSeconds: pb.fixed,
                                              exchangeSeconds: pr.exchange, batch: b)
                // Per token: the step serves `b` sequences.
                let total: Double = st.total * 1e3 / Double(b)
                let per = 1e3 / Double(b)
                let p = BenchPrediction(msPerToken: total, attentionMs: st.attention * per, ffnMs: st.ffn * per, exchangeMs: st.exchange * per,
                                        fixedMs: st.calls * per, ratio: r.msPerToken / total)
                r.predicted = p
                tail = String(format: " %.3f | %.2f |", p.msPerToken, p.ratio)
            }
            rows.append(r)
            let tps = repetitions > 1 ? String(format: "%.2f ± %.2f", r.tokensPerSecond, r.tokensPerSecondSD) : String(format: "%.2f", r.tokensPerSecond)
            print(String(format: "| %@ | %.2f GiB | %d | %@ | %@ | tg%d @ d%d | %d | %@ | %.3f |", name, Double(weights) / 1_073_741_824,
                         model.pool.threads, kvType, fill, nGen, c, b, tps, r.msPerToken) + tail)
            fflush(nil)  // rows appear as they are measured
        } }
        if predict {
            print("\npredicted per token, ms (the cost model's parts: attention = KV scan + attention weights; FFN = every other weight read; fixed = host cost of the step):")
            print("| context | B | attention | FFN | exchange | fixed | predicted | measured | measured/predicted |")
            print("|---|---|---|---|---|---|---|---|---|")
            for r in rows { if let p = r.predicted {
                print(String(format: "| %d | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f |", r.context, r.batch, p.attentionMs, p.ffnMs, p.exchangeMs,
                             p.fixedMs, p.msPerToken, r.msPerToken, p.ratio))
            } }
        }
        print("\nper-token breakdown, ms (attention columns are whole attention layers; kernel = the cache scan alone, us per layer):")
        let comps = Step35Component.allCases
        print("| context | B | " + comps.map(\.rawValue).joined(separator: " | ") + " | other | total | kernel full us | kernel swa us | kv MiB | dispatch | combine wait | exchange KiB |")
        print("|" + String(repeating: "---|", count: comps.count + 10))
        for r in rows {
            let cells = comps.map { String(format: "%.3f", r.breakdownMs[$0.rawValue] ?? 0) }
            print("| \(r.context) | \(r.batch) | " + cells.joined(separator: " | ")
                  + String(format: " | %.3f | %.3f | %.1f | %.1f | %.1f | %.3f | %.3f | %.1f |", r.otherMs, r.msPerToken, r.kernelFullUs, r.kernelSWAUs,
                           Double(r.kvBytes) / 1_048_576, r.dispatchMs, r.combineMs, r.exchangeBytesPerToken / 1024))
        }
        if engine.session != nil { print("(routed_experts under a topology is the whole exchange: dispatch + combine wait, which includes the slowest worker's compute)") }
        print("\nexpert load (measured tokens; rows per token per MoE layer on each worker under the topology, max/mean over workers; expert max/mean per layer, mean over layers):")
        print("| context | B | " + (rows.first?.workerLoad.map { $0.indices.map { "w\($0)" }.joined(separator: " | ") + " | worker max/mean | per-layer max/mean | " } ?? "") + "expert max/mean |")
        print("|---|---|" + String(repeating: "---|", count: (rows.first?.workerLoad.map { $0.count + 2 } ?? 0) + 1))
        for r in rows {
            let w = r.workerLoad.map { l in
                l.map { String(format: "%.2f", $0) }.joined(separator: " | ") + String(format: " | %.2f | %.2f | ", r.workerMaxOverMean ?? 0, r.layerMaxOverMean ?? 0)
            } ?? ""
            print("| \(r.context) | \(r.batch) | " + w + String(format: "%.2f |", r.expertMaxOverMean))
        }
        if engine.session != nil {
            // The workers' own clocks: seconds of expert compute each spent over the whole run (warm-ups and
            // fills included), the slowest over the mean; reported to rank 0 with every step.
            let t = engine.snapshot().workerComputeSeconds
            if !t.isEmpty {
                let mean = t.reduce(0, +) / Double(t.count)
                print("\nworker expert compute over the run, s: " + t.enumerated().map { String(format: "w%d %.3f", $0.offset, $0.element) }.joined(separator: ", ")
                      + String(format: " (slowest / mean %.3f)", mean > 0 ? t.max()! / mean : 0))
            }
        }
        if let path = expertStats {
            try ExpertStatsFile(total, source: "switchyard bench \(name), contexts \(contexts), \(nGen) tokens each", topK: model.config.expertUsedCount)
                .write(to: path)
        }
        let report = BenchReport(setup: setup, rows: rows)
        if let path = json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            guard FileManager.default.createFile(atPath: path, contents: try enc.encode(report)) else { throw ValidationError("cannot write \(path)") }
        }
        if let path = plot {
            guard FileManager.default.createFile(atPath: path, contents: Data(BenchPlot.svg(report).utf8)) else {
                throw ValidationError("cannot write \(path)")
            }
        }
        if let path = csv {
            var lines = ["context,batch,fill,tokens_per_second,ms_per_token," + comps.map(\.rawValue).joined(separator: ",") + ",other,kernel_full_us,kernel_swa_us,kv_bytes,dispatch_ms,combine_ms,exchange_bytes_per_token"]
            for r in rows {
                lines.append("\(r.context),\(r.batch),\(r.fill),\(r.tokensPerSecond),\(r.msPerToken)," + comps.map { "\(r.breakdownMs[$0.rawValue] ?? 0)" }.joined(separator: ",")
                             + ",\(r.otherMs),\(r.kernelFullUs),\(r.kernelSWAUs),\(r.kvBytes),\(r.dispatchMs),\(r.combineMs),\(r.exchangeBytesPerToken)")
            }
            guard FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8)) else {
                throw ValidationError("cannot write \(path)")
            }
        }
    }

    /// One row: `batch` sequences reach the context (synthetic fill or real prefill), then decode 1 + nGen
    /// tokens each, together in one pass per step, as jobs (single process or across the cluster); the first
    /// decoded step is the warm-up. Sequence 0's tokens mark the steps (the others move in the same passes).
    private func measure(_ engine: Engine, context c: Int, batch: Int, kv: KVType, stats: ExpertStats) throws -> BenchRow {
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
        if let bad = outcomes.first(where: { $0.completion.reason == .error }) { throw ValidationError(bad.completion.error ?? "failed") }
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
struct BenchSetup: Codable {
    var model: String
    var weightBytes: Int
    var threads: Int
    var kvType: String
    var fill: String
    var nGen: Int
    var host: String
    var cores: Int
    /// "single process" or the topology (heads, workers, file).
    var topology: String
}

/// One measured context (the JSON's `rows`).
struct BenchRow: Codable {
    var context: Int
    /// Measurements averaged (`-r`), and the standard deviation of tokens per second over them.
    var repetitions = 1
    var tokensPerSecondSD = 0.0
    /// Sequences decoded together in each pass.
    var batch: Int = 1
    /// "synthetic" (random K/V) or "prefill" (a real prefill reached the context).
    var fill: String
    var tokensPerSecond: Double
    var msPerToken: Double
    /// Milliseconds per token by component (`Step35Component` raw values).
    var breakdownMs: [String: Double]
    var otherMs: Double
    /// Attention kernel alone (the cache scan), microseconds per layer per pass (all `batch` sequences), by layer kind.
    var kernelFullUs: Double
    var kernelSWAUs: Double
    var kvBytes: Int
    /// Exchange per token under a topology (0 single-process): dispatch, and the wait for the combine.
    var dispatchMs: Double
    var combineMs: Double
    /// Bytes the head sent and received in the expert exchange per token (0 single-process).
    var exchangeBytesPerToken: Double = 0
    /// Kernel calls (thread-pool dispatches) per token on this rank.
    var callsPerToken: Double = 0
    /// Under a topology: rows each worker received per token per MoE layer, and max over mean.
    var workerLoad: [Double]?
    var workerMaxOverMean: Double?
    /// Under a topology: the busiest worker's rows over the mean in each exchange, averaged (per-layer balance).
    var layerMaxOverMean: Double?
    /// Busiest expert over the mean expert, per MoE layer, averaged over layers.
    var expertMaxOverMean: Double = 0
    /// `--predict`: the cost model's prediction for this row.
    var predicted: BenchPrediction?
}

extension BenchRow {
    /// The mean of repeated measurements of one row (timings and the breakdown averaged; tokens per second
    /// as the mean of the repetitions, with their standard deviation); counts and loads from the last.
    static func mean(of reps: [BenchRow]) -> BenchRow {
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
struct BenchReport: Codable {
    var setup: BenchSetup
    var rows: [BenchRow]
}
