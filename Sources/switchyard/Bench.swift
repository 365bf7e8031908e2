// `switchyard bench`: decoding cost at given contexts, llama-bench style, with a per-component breakdown.
//
// A context is reached by a labelled synthetic fill (random K/V at the right positions, so 128K needs no
// 128K prefill) or by a real prefill; either way attention reads the whole cache. Each row decodes
// `-n` tokens greedily after one warm-up step and reports the mean per token.
import ArgumentParser
import CostModel
import BenchKit
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
                let (p, mmSeconds) = BenchPredict.profile(base, threads: model.pool.threads, calls: calls, rows: sampleRows, batch: b,
                                                             repack: !model.repackedRanges.isEmpty)
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
        print("\(KernelPath.summary), \(model.weightSummary)")
        print("| model | size | threads | kv | fill | test | B | t/s | ms/token |" + (predict ? " predicted ms | measured/predicted |" : ""))
        print("|---|---|---|---|---|---|---|---|---|" + (predict ? "---|---|" : ""))
        var rows: [BenchRow] = []
        for c in ctxs { for b in batches {
            var reps: [BenchRow] = []
            for _ in 0..<repetitions {
                reps.append(try BenchHarness.measure(engine, context: c, batch: b, kv: kv, nGen: nGen, draft: draft, fill: fill, stats: stats))
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
}
