// `switchyard tune`: expert-load statistics in, an EP topology out (Sources/Tuning), with the balance
// before and after; and, from a cluster bench's per-side timings, how many heads per worker and how many
// micro-batches a context needs (MegaScale-Infer's rules).
import ArgumentParser
import Foundation
import ModelKit
import Tuning

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn expert-load statistics into a balanced EP topology (EPLB plus a refinement pass).",
        discussion: """
            Input: --stats FILE (from bench/generate --expert-stats) or --zipf S (a Zipf-skewed synthetic load).
            Output: a topology YAML (--out) whose placement is a map per MoE layer, with replicas of hot experts.
            With --bench-json (a bench run under a topology) it also sizes heads per worker and micro-batches for --context.
            """)

    @Option(help: "Expert statistics JSON (bench --expert-stats).") var stats: String?
    @Option(help: "Instead of --stats: a Zipf-skewed load with this exponent (e.g. 1.0).") var zipf: Double?
    @Option(help: "With --zipf: experts per layer.") var experts: Int = 288
    @Option(help: "With --zipf: MoE layers.") var layers: Int = 42
    @Option(help: "With --zipf: model index of the first MoE layer.") var firstLayer: Int = 3
    @Option(help: "With --zipf: tokens sampled per layer.") var tokens: Int = 4096
    @Option(help: "With --zipf: experts per token.") var topK: Int = 8
    @Option(help: "With --zipf: seed.") var seed: UInt64 = 1
    @Option(help: "With --zipf: also write the sampled counts as a statistics file.") var writeStats: String?

    @Option(help: "Expert-shard workers.") var workers: Int?
    @Option(help: "Nodes the workers sit in (EPLB's hierarchy).") var nodes: Int = 1
    @Option(help: "Contiguous expert groups (default 8 when it divides the experts: Step 3.5's EP-group balance loss).") var groups: Int?
    @Option(help: "Redundant expert slots per layer over all workers.") var redundant: Int = 0
    @Option(help: "Most expert slots a worker may hold (its memory).") var capacity: Int?
    @Option(help: "refined (EPLB + our refinement), hierarchical or global (EPLB as published).") var policy: String = "refined"
    @Option(help: "Head ranks in the written topology.") var heads: Int = 1
    @Option(help: "How the written topology sends rows of a replicated expert: token (by token index) or load (to the least-loaded copy).")
    var replicaDispatch: String = "load"
    @Option(name: [.short, .customLong("out")], help: "Write the topology YAML here.") var out: String?

    @Option(help: "A bench JSON measured under a topology: size heads and micro-batches from its per-side timings.") var benchJson: String?
    @Option(help: "Context to size for with --bench-json (K suffix allowed).") var context: String = "128K"

    func run() throws {
        try reportingErrors {
            if let b = benchJson { try size(b) }
            guard stats != nil || zipf != nil else {
                if benchJson != nil { return }
                throw ValidationError("give --stats FILE or --zipf EXPONENT (and --workers)")
            }
            guard (stats == nil) != (zipf == nil) else { throw ValidationError("give --stats or --zipf, not both") }
            guard let w = workers, w >= 1 else { throw ValidationError("--workers must be given and >= 1") }
            guard let pol = TuneOptions.Policy(rawValue: policy) else { throw ValidationError("--policy must be refined, hierarchical or global") }
            let (loads, moeLayers, e) = try input()
            var o = TuneOptions(workers: w)
            o.policy = pol
            o.nodes = nodes
            o.groups = groups ?? (e % 8 == 0 && e / 8 >= 1 ? 8 : 1)
            o.redundant = redundant
            o.capacity = capacity
            let tuned = try Tuner.tune(loads, o)
            report(loads: loads, tuned: tuned, options: o, experts: e)
            if let path = out {
                guard ["token", "load"].contains(replicaDispatch) else { throw ValidationError("--replica-dispatch must be token or load") }
                let yaml = ModelPlacement(layers: moeLayers, placements: tuned, experts: e)
                    .topologyYAML(heads: heads, extra: "replica_dispatch: \(replicaDispatch)\n")
                let header = "# switchyard tune --policy \(policy) --workers \(w) --redundant \(redundant) (\(stats.map { "stats \($0)" } ?? "zipf \(zipf!)"))\n"
                guard FileManager.default.createFile(atPath: path, contents: Data((header + yaml).utf8)) else { throw ValidationError("cannot write \(path)") }
                print("wrote \(path)")
            }
        }
    }

    /// Loads per MoE layer, the layers' model indices, and experts per layer.
    private func input() throws -> ([[Double]], [Int], Int) {
        if let path = stats {
            let f = try ExpertStatsFile.read(from: path)
            let active = f.tokensPerLayer.indices.filter { f.tokensPerLayer[$0] > 0 }
            guard !active.isEmpty else { throw ValidationError("\(path) has no routed tokens") }
            return (active.map { f.counts[$0].map(Double.init) }, active, f.experts)
        }
        guard experts >= 1, layers >= 1, tokens >= 1, topK >= 1, topK <= experts else {
            throw ValidationError("--experts, --layers, --tokens >= 1 and 1 <= --top-k <= --experts")
        }
        let counts = Zipf.sample(layers: layers, experts: experts, exponent: zipf!, tokens: tokens, k: topK, seed: seed)
        let ids = (0..<layers).map { firstLayer + $0 }
        if let path = writeStats {
            let s = ExpertStats(layers: firstLayer + layers, experts: experts)
            for (l, row) in counts.enumerated() {
                s.record(layer: ids[l], tokens: tokens, chosen: row.enumerated().flatMap { [Int32](repeating: Int32($0.offset), count: $0.element) })
            }
            try ExpertStatsFile(s, source: "switchyard tune --zipf \(zipf!) --tokens \(tokens) --seed \(seed)", topK: topK).write(to: path)
        }
        return (counts.map { $0.map(Double.init) }, ids, experts)
    }

    private func report(loads: [[Double]], tuned: [LayerPlacement], options o: TuneOptions, experts e: Int) {
        let base = LayerPlacement.contiguous(experts: e, workers: o.workers)
        func summary(_ f: (Int) -> Double) -> (mean: Double, worst: Double) {
            let v = loads.indices.map(f)
            return (v.reduce(0, +) / Double(v.count), v.max()!)
        }
        let b = summary { base.maxOverMean(loads[$0]) }
        let ep = summary { EPLB.rebalance(loads[$0], physical: e + o.redundant, groups: o.groups, nodes: o.nodes, gpus: o.workers).maxOverMean(loads[$0]) }
        let t = summary { tuned[$0].maxOverMean(loads[$0]) }
        print("balance over \(loads.count) MoE layers: busiest worker / mean worker load (1.00 = even)")
        print("| placement | mean over layers | worst layer |")
        print("|---|---|---|")
        print(String(format: "| contiguous (%d experts per worker) | %.3f | %.3f |", e / o.workers, b.mean, b.worst))
        print(String(format: "| EPLB (%@, %d redundant) | %.3f | %.3f |", o.groups % o.nodes == 0 ? "hierarchical" : "global", o.redundant, ep.mean, ep.worst))
        print(String(format: "| tuned (%@) | %.3f | %.3f |", o.policy.rawValue, t.mean, t.worst))
        // Per worker, summed over layers, as a share of the mean.
        func perWorker(_ p: (Int) -> LayerPlacement) -> [Double] {
            var s = [Double](repeating: 0, count: o.workers)
            for l in loads.indices { for (w, x) in p(l).workerLoads(loads[l]).enumerated() { s[w] += x } }
            let mean = s.reduce(0, +) / Double(o.workers)
            return s.map { $0 / mean }
        }
        let pb = perWorker { _ in base }, pt = perWorker { tuned[$0] }
        print("\nper worker (load over all layers / mean): contiguous -> tuned")
        print((0..<o.workers).map { String(format: "w%d %.2f -> %.2f", $0, pb[$0], pt[$0]) }.joined(separator: ", "))
    }

    /// MegaScale-Infer's sizing from a cluster bench: per row, head time T_a (the step minus its wait for
    /// the combine), worker time T_e (the combine wait minus the exchange) and exchange T_c; linear fits in
    /// context; then heads per worker T_a / T_e and micro-batches m >= 2 (1 + T_c / T_f), T_f = max(T_a, T_e).
    private func size(_ path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let rows = obj["rows"] as? [[String: Any]], !rows.isEmpty
        else { throw ValidationError("\(path) is not a bench JSON file") }
        let c = try Bench.parseContexts(context)
        guard c.count == 1 else { throw ValidationError("give one --context") }
        var pts: [(ctx: Double, ta: Double, te: Double, tc: Double)] = []
        for r in rows {
            guard let ctx = r["context"] as? Int, let ms = r["msPerToken"] as? Double, let comb = r["combineMs"] as? Double,
                  let disp = r["dispatchMs"] as? Double, comb > 0 else { continue }
            let tc = ((r["predicted"] as? [String: Double])?["exchangeMs"]) ?? disp
            pts.append((Double(ctx), ms - comb, max(comb - tc, 1e-6), tc))
        }
        guard pts.count >= 2 else { throw ValidationError("\(path) needs at least two rows measured under a topology (dispatch and combine times)") }
        func fit(_ ys: [Double]) -> (Double, Double) {
            let xs = pts.map(\.ctx), n = Double(xs.count), mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
            let sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
            let k = sxx > 0 ? zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx : 0
            return (k, my - k * mx)
        }
        let (ka, ba) = fit(pts.map(\.ta)), (ke, be) = fit(pts.map(\.te)), (kc, bc) = fit(pts.map(\.tc))
        let x = Double(c[0])
        let ta = ka * x + ba, te = max(ke * x + be, 1e-6), tc = max(kc * x + bc, 0), tf = max(ta, te)
        let m = Int((2 * (1 + tc / tf)).rounded(.up))
        print(String(format: "sizing at context %d from %@ (%d rows; ms per token, linear fits in context):", c[0], path, pts.count))
        print(String(format: "  head T_a = %.3f ms (%.3g + %.3g/token of context), worker T_e = %.3f ms, exchange T_c = %.3f ms", ta, ba, ka, te, tc))
        print(String(format: "  heads per worker to balance: T_a / T_e = %.1f; micro-batches m >= 2 (1 + T_c / T_f) = %d", ta / te, m))
    }
}
