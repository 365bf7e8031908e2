// `switchyard bench-exchange`: one MoE layer's exchange (counts, dispatch, combine) with no expert compute in
// it, across token counts at a chosen width, and the latency (α) and bandwidth (β) fitted to it.
//
// It runs the engine's exchange probe (`Engine.probeExchange`, the same three collectives on the same lane
// communicator as a MoE layer), so the figures are the job's own transport: shared memory on one host,
// TCP between hosts (Cluster/testbed.yaml forces it), whatever UCX or MPICH picked otherwise.
// Shape of one round, per head: T tokens x A experts per token = R rows, split evenly over W workers;
// dispatch R rows of the topology's payload (header + D elements), combine R rows of D F32 back.
import ArgumentParser
import Cluster
import BenchKit
import Engine
import Foundation
import SwiftMPI

struct ExchangeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-exchange",
        abstract: "Measure one MoE layer's expert exchange (no compute) across token counts; fit latency and bandwidth.",
        discussion: """
            Run under mpiexec with --topology (1 head + W workers, e.g. Cluster/testbed.yaml's hosts). The model only
            starts the job: the rows have the width --hidden and --top-k rows per token, Step 3.5 Flash's 4096 and 8
            by default. The dispatch payload is the topology's (dispatch: f32|bf16|f16|int8); the combine is F32.
            The fit is t = alpha + bytes / beta: alpha is the latency row (8-byte rows), 1/beta the slope over the other
            rows weighted by 1/t^2 (relative error); bytes are what one head sends and receives in the layer.
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Tokens per head per layer, comma-separated.")
    var tokens: String = "1,2,4,8,16,32,64,128,256"

    @Option(help: "Hidden width of a row (Step 3.5 Flash: 4096).")
    var hidden: Int = 4096

    @Option(help: "Routed experts per token (Step 3.5 Flash: 8).")
    var topK: Int = 8

    @Option(help: "Most measured rounds per repetition (fewer when they would move over 50 MB, at least 20), after 10 warm-up rounds.")
    var rounds: Int = 200

    @Option(name: [.short, .customLong("repetitions")], help: "Measure each row this many times; the row shows the median.")
    var repetitions: Int = 5

    @Option(help: "Write the rows and the fit as JSON to this file.")
    var json: String?

    func validate() throws {
        guard options.topology != nil else { throw ValidationError("bench-exchange measures a cluster's exchange: give --topology and run under mpiexec") }
        guard hidden >= 1 && topK >= 1 && rounds >= 1 && repetitions >= 1 else { throw ValidationError("--hidden, --top-k, --rounds and -r must be >= 1") }
        let t = try Bench.parseContexts(tokens)
        guard !t.isEmpty, t.allSatisfy({ $0 >= 1 && $0 <= 65536 }) else { throw ValidationError("--tokens must be numbers from 1 to 65536") }
    }

    func run() throws {
        try reportingErrors { try measure() }
    }

    private func measure() throws {
        var config = EngineConfig()
        config.prefixCache = false
        guard let engine = try options.startEngine(config) else { return }  // workers and other heads served the probes
        defer { engine.shutdown() }
        guard let session = engine.session else { throw ValidationError("no cluster session: run under mpiexec with --topology") }
        let w = session.topology.workers, heads = session.topology.heads
        let rowBytes = session.dispatchRowBytes(hidden: hidden), combineBytes = 4 * hidden
        print("exchange: \(heads) head(s) + \(w) worker(s), \(session.topology.file); hosts \(MPI.hosts.enumerated().map { "\($0.offset):\($0.element)" }.joined(separator: " ")); dispatch \(session.topology.dispatch.rawValue) (\(rowBytes) B per row), combine f32 (\(combineBytes) B per row); D \(hidden), top-\(topK)")
        print("| tokens | rows per worker | bytes out | bytes back | rounds x reps | us per layer (median) | GB/s (out + back) |")
        print("|---|---|---|---|---|---|---|")
        // The latency row: one 8-byte row each way per worker, the three collectives with next to nothing in them.
        let lat = try median { try engine.probeExchange(rounds: rounds, rows: 1, rowBytes: 8, combineBytes: 8) }
        print(String(format: "| latency (1 row of 8 B) | 1 | %d | %d | %d x %d | %.1f | |", 8 * w + 4 * session.comm.size, 8 * w, rounds, repetitions, lat * 1e6))
        var rows: [ExchangeRow] = []
        for t in try Bench.parseContexts(tokens) {
            let perWorker = (t * topK + w - 1) / w
            let out = perWorker * w * rowBytes + 4 * session.comm.size, back = perWorker * w * combineBytes
            let n = max(20, min(rounds, Int(50e6 / Double(out + back))))
            let s = try median { try engine.probeExchange(rounds: n, rows: perWorker, rowBytes: rowBytes, combineBytes: combineBytes) }
            let r = ExchangeRow(tokens: t, rowsPerWorker: perWorker, bytesOut: out, bytesBack: back, rounds: n, seconds: s)
            rows.append(r)
            print(String(format: "| %d | %d | %d | %d | %d x %d | %.1f | %.3f |", t, perWorker, out, back, n, repetitions, s * 1e6, Double(out + back) / s / 1e9))
            fflush(nil)
        }
        let fit = ExchangeFit(rows, alpha: lat)
        print(String(format: "fit: t = %.1f us (the latency row) + bytes / %.3f GB/s (slope weighted by 1/t^2; largest relative residual %.1f%%)",
                     fit.alpha * 1e6, fit.beta / 1e9, fit.worstResidual * 100))
        print(String(format: "cost model inputs: --network-latency %.1fe-6 (alpha / 2: two messages per layer) --network-bandwidth %.3fe9",
                     fit.alpha / 2 * 1e6, fit.beta / 1e9))
        if let json {
            let doc = ExchangeReport(hidden: hidden, topK: topK, heads: heads, workers: w, dispatch: session.topology.dispatch.rawValue,
                                     rows: rows, alphaSeconds: fit.alpha, betaBytesPerSecond: fit.beta)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(doc).write(to: URL(fileURLWithPath: json))
        }
    }
}

extension ExchangeBench {
    /// The median of `repetitions` measurements.
    func median(_ f: () throws -> Double) rethrows -> Double {
        let v = try (0..<repetitions).map { _ in try f() }.sorted()
        return v[v.count / 2]
    }
}

/// What `--json` writes.
struct ExchangeReport: Codable {
    var hidden, topK, heads, workers: Int
    var dispatch: String
    var rows: [ExchangeRow]
    var alphaSeconds, betaBytesPerSecond: Double
}
