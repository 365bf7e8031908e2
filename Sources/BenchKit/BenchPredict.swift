// `bench --predict`: the analytic cost model's prediction (Sources/CostModel, `ServingCost.step`) for each
// measured row, on this machine's profile measured by the probe with the engine's own kernels, for the
// same model shape, thread count and KV type. Batch 1, no MTP: one decode step of one sequence.
//
// What the model is given (all measured or counted before the rows, none from the rows' timings):
//   - weights: the bytes each decode step reads, from the GGUF tensors (routed experts: top-k of them),
//     at the rate the engine's matmul streams the step's own matrix shapes, each timed alone on this
//     machine (routed experts through the grouped matmul on random experts), less the probe's cost of a
//     call (counted once, below);
//   - KV: the bytes of the visible rows at the probe's F32 stream rate, plus the attention FLOPs at its
//     F32 rate, added rather than overlapped (the CPU kernel's loads and FMAs share the core);
//   - under a topology: the session's probe of one MoE layer's exchange (counts, dispatch, combine with no
//     compute in it), once per MoE layer;
//   - the fixed host cost of a step (kernel dispatch, norms, RoPE, routing, bookkeeping): a decode step of
//     a model with the same layers, heads, experts and top-k but 32-wide matrices, timed on this machine.
import CostModel
import Engine
import Foundation
import GGUF
import Kernels
import ModelKit
import Step35

/// The prediction for one bench row.
public struct BenchPrediction: Codable {
    public var msPerToken: Double
    public var attentionMs: Double
    public var ffnMs: Double
    /// Expert exchange under a topology (one per MoE layer, no overlap with one lane).
    public var exchangeMs: Double
    /// Host cost of the step (dispatch and bookkeeping), from the 32-wide model.
    public var fixedMs: Double
    /// measured / predicted.
    public var ratio: Double
    /// Creates a prediction.
    public init(msPerToken: Double, attentionMs: Double, ffnMs: Double, exchangeMs: Double, fixedMs: Double, ratio: Double) {
        self.msPerToken = msPerToken; self.attentionMs = attentionMs; self.ffnMs = ffnMs
        self.exchangeMs = exchangeMs; self.fixedMs = fixedMs; self.ratio = ratio
    }
}

public enum BenchPredict {
    /// One matmul call of a decode step: its weight type and the matrix it streams (grouped experts: the
    /// top-k experts' rows stacked, as one call reads them).
    public struct MatmulShape: Hashable {
        var type: GGMLType
        var rows: Int, cols: Int
        /// Routed experts: `used` of `experts` matrices of rows x cols, picked per token.
        var experts = 0, used = 1
        /// Bytes one call reads for one token.
        var bytes: Int { rows * used * type.byteCount(elements: cols) }
        /// Bytes one call reads for `batch` tokens: the experts they touch on average, E (1 - (1 - k/E)^B).
        func bytes(batch: Int) -> Double {
            guard experts > 0 else { return Double(bytes) }
            let touched = Double(experts) * (1 - pow(1 - Double(used) / Double(experts), Double(batch)))
            return touched * Double(rows * type.byteCount(elements: cols))
        }
    }

    /// The matmul calls of one decode step (batch 1, no drafting) of `file`'s main layers, in tensor order,
    /// and for each shape the bytes of one real row of it (the probe streams copies of real data, so every
    /// weight type works, K-quants included, which have no quantizer here).
    public static func matmulCalls(_ config: Step35Config, file: GGUFFile) -> (calls: [MatmulShape], rows: [MatmulShape: [UInt8]]) {
        var rows: [MatmulShape: [UInt8]] = [:]
        let calls = file.tensors.compactMap { t -> MatmulShape? in
            let n = t.name
            guard n.hasSuffix(".weight"), t.shape.count >= 2, !n.hasPrefix("token_embd") else { return nil }
            if n.hasPrefix("blk."), (Int(n.split(separator: ".")[1]) ?? 0) >= config.layerCount { return nil }
            let shape = n.contains("_exps")
                ? MatmulShape(type: t.type, rows: t.shape[1], cols: t.shape[0], experts: config.expertCount, used: config.expertUsedCount)
                : MatmulShape(type: t.type, rows: t.shape[1], cols: t.shape[0])
            if rows[shape] == nil { rows[shape] = Array(UnsafeRawBufferPointer(start: t.address, count: t.rowBytes)) }
            return shape
        }
        return (calls, rows)
    }

    /// This machine as the cost model sees it for `calls` at `batch` tokens per pass: the probe's memory,
    /// F32 compute and call cost, and the rate at which the engine's matmul streams these very matrix
    /// shapes. Each distinct shape is timed on its own over copies spanning 32 MiB (so the weights come from
    /// memory, as in a decode step) with `batch` token rows; routed experts go through the grouped matmul,
    /// each token picking top-k distinct experts at random among one layer's worth of separately allocated
    /// experts, as routing scatters them. The step's weight bytes (for experts, those a batch of this size
    /// touches on average) over the summed call times give the weight rate. Small matrices stream far below
    /// a large one's rate (per-row and per-call costs), which a single big-matrix probe would miss.
    /// `base` is the probe's profile (`Probe.profile`, measured once for all batch sizes); `rows` has one
    /// real row per shape (`matmulCalls`); `repack`: the copies are repacked as the model's were.
    public static func profile(_ base: HardwareProfile, threads: Int, calls: [MatmulShape], rows: [MatmulShape: [UInt8]], batch: Int = 1,
                               repack: Bool = false) -> (HardwareProfile, matmulSeconds: Double)
    {
        var p = base
        let pool = ThreadPool(threads: threads)
        var g = SplitMix64(seed: 13)
        var perCall: [MatmulShape: Double] = [:]
        for shape in Set(calls) {
            guard let row = rows[shape] else { preconditionFailure("no sample row for \(shape)") }
            var matrix = [UInt8]()
            matrix.reserveCapacity(shape.rows * row.count)
            for _ in 0..<shape.rows { matrix.append(contentsOf: row) }
            let count = max(2 * max(shape.experts, 1), (32 << 20) / max(matrix.count, 1))
            let copies = (0..<count).map { _ in WeightMatrix(type: shape.type, rows: shape.rows, cols: shape.cols, bytes: matrix) }
            let ws = repack ? WeightMatrix.repacked(copies) : copies
            let xs = (0..<(shape.cols * batch)).map { _ in Float(g.nextUnit()) }  // [B, C]
            if shape.experts > 0 {
                // Each call: one layer's experts (a random window of `experts` matrices); each token picks
                // `used` distinct ones; rows grouped expert by expert, as the model does.
                let calls = (0..<64).map { _ -> (ws: [WeightMatrix], segs: [(start: Int, count: Int)], x: [Float]) in
                    let base = Int(g.next() % UInt64(count - shape.experts + 1))
                    var byExpert: [Int: [Int]] = [:]
                    for t in 0..<batch {
                        var set: [Int] = []
                        while set.count < shape.used { let e = Int(g.next() % UInt64(shape.experts)); if !set.contains(e) { set.append(e) } }
                        for e in set { byExpert[e, default: []].append(t) }
                    }
                    var mats: [WeightMatrix] = [], segs: [(start: Int, count: Int)] = [], x: [Float] = []
                    for (e, toks) in byExpert.sorted(by: { $0.key < $1.key }) {
                        segs.append((x.count / shape.cols, toks.count))
                        mats.append(ws[base + e])
                        for t in toks { x += xs[(t * shape.cols)..<((t + 1) * shape.cols)] }
                    }
                    return (mats, segs, x)
                }
                let t = Probe.best(3) { for c in calls { _ = Ops.groupedMatmul(c.ws, c.x, segments: c.segs, pool: pool) } }
                perCall[shape] = t / Double(calls.count)
            } else {
                let t = Probe.best(3) { for w in ws { _ = Ops.matmul(w, xs, tokens: batch, pool: pool) } }
                perCall[shape] = t / Double(count)
            }
        }
        // Streaming only: each call's fixed cost is in the fixed step cost (`fixedStepSeconds`).
        let seconds = calls.reduce(0) { $0 + max(perCall[$1]! - p.callOverhead, 0) }
        if ProcessInfo.processInfo.environment["SY_PREDICT_DEBUG"] != nil {
            var n: [MatmulShape: Int] = [:]
            for c in calls { n[c, default: 0] += 1 }
            for (k, v) in n.sorted(by: { $0.value * $0.key.bytes > $1.value * $1.key.bytes }) {
                print(String(format: "  %@ %dx%d x%d, %d tokens: %d calls, %.1f us each, %.3f ms", k.type.name, k.rows, k.cols, k.used, batch, v,
                             perCall[k]! * 1e6, Double(v) * perCall[k]! * 1e3))
            }
        }
        p.weightBandwidth = calls.reduce(0.0) { $0 + $1.bytes(batch: batch) } / seconds
        return (p, seconds)
    }

    /// Seconds of a decode step that do not scale with weight or KV bytes: a model with `config`'s layer
    /// pattern, heads, KV heads, experts and top-k but 32-wide matrices (F32, a few MB: cache-resident)
    /// decodes 48 steps of `batch` sequences on `threads` threads after 16 warm-up steps; the mean per step
    /// is the host cost of dispatching the same kernels and doing the same bookkeeping at negligible size.
    public static func fixedStepSeconds(like config: Step35Config, moeLayers: Int, threads: Int, batch: Int = 1) throws -> Double {
        let layers = 0..<config.layerCount
        var s = Step35Shape()
        s.embedding = 32; s.vocab = 512; s.layers = config.layerCount; s.denseLayers = config.layerCount - moeLayers
        s.mtpLayers = max(config.nextnPredictLayers, 1); s.headDim = 32
        s.headsFull = layers.first { !config.isSWA($0) }.map { config.headCount[$0] } ?? config.headCount[0]
        s.headsSWA = layers.first { config.isSWA($0) }.map { config.headCount[$0] } ?? s.headsFull
        s.kvHeads = config.headCountKV[0]; s.ffn = 32; s.experts = max(config.expertCount, 1); s.expertsUsed = max(config.expertUsedCount, 1)
        s.expertFFN = 32; s.sharedFFN = 32; s.window = config.slidingWindow; s.context = 4096
        let file = try GGUFFile(bytes: Step35Synthetic.gguf(shape: s, type: .f32))
        var config = EngineConfig()
        config.parallel = batch
        config.prefixCache = false
        guard let engine = try Engine.start(ModelSource(threads: threads) { file }, config: config) else { return 0 }
        defer { engine.shutdown() }
        let warm = max(16, batch + 1), n = 48  // every sequence decoding before the clock starts
        let clock = FixedClock()
        let requests = (0..<batch).map { InferenceRequest(prompt: [Int32(1 + $0)], maxTokens: warm + n, ignoreEOS: true) }
        _ = try engine.generate(requests) { id, e in
            guard id == 0, case .tokens(let t) = e else { return }
            for _ in t.tokens {
                clock.count += 1
                if clock.count == warm { clock.start = DispatchTime.now() }
                clock.end = DispatchTime.now()
            }
        }
        return Double(clock.end.uptimeNanoseconds - clock.start.uptimeNanoseconds) / 1e9 / Double(n)
    }

    /// The cost model's view of `config` as one decode step reads `file`: attention groups by layer kind,
    /// parameters by role (token embeddings and MTP blocks excluded: a step reads one embedding row and,
    /// without drafting, no MTP block), and the mean bytes per parameter.
    public static func spec(_ config: Step35Config, file: GGUFFile, kv: KVType, moeLayers: Int) -> (ModelCostSpec, bytesPerParam: Double) {
        var attn = 0.0, routed = 0.0, other = 0.0, bytes = 0.0
        for t in file.tensors {
            let n = t.name
            if n.hasPrefix("token_embd") { continue }
            if n.hasPrefix("blk.") {
                let layer = Int(n.split(separator: ".")[1]) ?? 0
                if layer >= config.layerCount { continue }
                if n.contains(".attn_") { attn += Double(t.elementCount) } else if n.contains("_exps") { routed += Double(t.elementCount) } else { other += Double(t.elementCount) }
            } else {
                other += Double(t.elementCount)
            }
            bytes += Double(n.contains("_exps") ? t.byteCount * config.expertUsedCount / max(config.expertCount, 1) : t.byteCount)
        }
        let readParams = attn + other + routed * Double(config.expertUsedCount) / Double(max(config.expertCount, 1))
        let layers = 0..<config.layerCount
        let full = layers.filter { !config.isSWA($0) }, swa = layers.filter { config.isSWA($0) }
        let perElement = Double(kv.bytes(32)) / 32
        func group(_ ls: [Int], window: Int) -> AttentionSpec? {
            guard let l = ls.first else { return nil }
            return AttentionSpec(layers: ls.count, queryHeads: config.headCount[l], kvElementsPerToken: config.headCountKV[l] * (config.keyLength + config.valueLength),
                                 qkPlusV: config.keyLength + config.valueLength, window: window, kvBytesPerElement: perElement, kvHeads: config.headCountKV[l])
        }
        let spec = ModelCostSpec(
            name: "step35 (GGUF)", attention: [group(full, window: 0), group(swa, window: config.slidingWindow)].compactMap { $0 },
            attentionLinearParams: attn, activeFFNParams: readParams - attn, totalParams: attn + routed + other, routedExpertParams: routed,
            experts: config.expertCount, expertsPerToken: config.expertUsedCount, hidden: config.embeddingLength,
            moeLayers: moeLayers, source: "the bench model's GGUF tensors")
        return (spec, bytes / readParams)
    }

    /// The predicted step at `context` (the decoded token sees context + 1 positions).
    /// Under a topology with one lane, the head's work, the exchange and the workers' experts run one after
    /// another: the same step on the head's thread count, plus `exchangeSeconds` per MoE layer (the
    /// session's probe of the three collectives with no compute in them).
    public static func predict(spec: ModelCostSpec, bytesPerParam: Double, profile: HardwareProfile, context: Int, fixedSeconds: Double,
                        exchangeSeconds: Double = 0, batch: Int = 1) -> StepTime {
        var k = ServingKnobs()
        k.bandwidthEfficiency = 1  // the probe measured achieved rates
        k.computeEfficiency = 1
        k.weightBytesPerParam = bytesPerParam
        k.attention = .replicated
        k.overlapAttention = false
        var s = ServingScenario(model: spec, hardware: profile, context: context + 1, ep: 1, mtp: 0, batch: Double(batch))
        s.fixedSeconds = fixedSeconds
        var st = ServingCost.step(s, knobs: k, groupSequences: Double(batch), group: 1)
        st.exchange = Double(spec.moeLayers) * exchangeSeconds
        return st
    }
}

/// Token-callback bookkeeping for `fixedStepSeconds`.
private final class FixedClock: @unchecked Sendable {
    var count = 0
    var start = DispatchTime.now(), end = DispatchTime.now()
}
