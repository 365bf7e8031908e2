// `switchyard cost`: the analytic decoding-cost model (Sources/CostModel), as tables.
import ArgumentParser
import CostModel
import Kernels
import Foundation

struct Cost: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analytic decode cost per token (the Step-3 paper's model) for built-in models and chips.")

    @Option(help: "Table to print: step3-paper (the paper's Tables 3, 5 and 6, recomputed).")
    var table: String = "step3-paper"

    @Flag(help: "Measure this machine's memory bandwidth and F32 compute with the engine's kernels instead.")
    var probe = false

    @Option(name: [.short, .customLong("threads")], help: "Threads for --probe (default: all cores).")
    var threads: Int?

    func run() throws {
        try reportingErrors {
            if probe {
                let n = threads ?? ProcessInfo.processInfo.activeProcessorCount
                let r = Probe.measure(threads: n)
                print(String(format: "probe (%d threads): memory read %.2f GB/s (F32 decode matmul over a 256 MiB weight), compute %.2f GFLOP/s (F32 matmul, 2048 x 2048 x 256 tokens)",
                             n, r.bandwidth / 1e9, r.flops / 1e9))
                print(String(format: "roofline: %.1f FLOP per byte", r.flops / r.bandwidth))
                return
            }
            guard table == "step3-paper" else { throw ValidationError("unknown --table '\(table)' (known: step3-paper)") }
            printStep3Paper()
        }
    }

    private func e(_ x: Double) -> String { String(format: "%.2e", x) }

    private func printStep3Paper() {
        let models = ModelCostSpec.step3Paper, chips = HardwareProfile.step3Paper
        print("Step-3 paper cost model (arXiv 2507.19427 §4-5): FP8 weights and KV, MLA as 576 latent elements;")
        print("attention = max(FLOP_attn*U_FLOP, Byte_KV*U_byte) + FLOP_linear*U_FLOP; FFN = FLOP_FFN*U_FLOP.\n")
        print("Table 3: per-token inputs")
        print("| model | context | Byte_KV | FLOP_attn | FLOP_linear | FLOP_FFN |")
        print("|---|---|---|---|---|---|")
        for m in models {
            for c in [8192, 32768] {
                print("| \(m.name) | \(c / 1024)K | \(e(m.byteKV(context: c))) | \(e(m.flopAttention(context: c))) | \(e(m.flopLinear)) | \(e(m.flopFFN)) |")
            }
        }
        print("\nTables 4-5: chips and unit costs (U = $/h / 3600 / peak)")
        print("| chip | $/h | FLOP/s | B/s | U_FLOP ($) | U_byte ($) |")
        print("|---|---|---|---|---|---|")
        for h in chips { print("| \(h.name) | \(h.pricePerHour) | \(e(h.flops)) | \(e(h.memoryBandwidth)) | \(e(h.uFLOP)) | \(e(h.uByte)) |") }
        print("\nTable 6: dollars per 1M decoded tokens")
        print("| model | attn 8K H800 | attn 8K H20 | attn 32K H800 | attn 32K H20 | FFN H800 | AFD 8K | AFD 32K |")
        print("|---|---|---|---|---|---|---|---|")
        for m in models {
            let a = { (c: Int, h: HardwareProfile) in String(format: "%.4f", DecodeCost.attention(m, context: c, on: h) * 1e6) }
            let f = String(format: "%.4f", DecodeCost.ffn(m, on: .h800) * 1e6)
            let afd = [8192, 32768].map { c -> String in
                let r = DecodeCost.afd(m, context: c, chips: [.h800, .h20])
                return String(format: "%.4f (%@ + %@)", r.total * 1e6, r.attention, r.ffn)
            }
            print("| \(m.name) | \(a(8192, .h800)) | \(a(8192, .h20)) | \(a(32768, .h800)) | \(a(32768, .h20)) | \(f) | \(afd[0]) | \(afd[1]) |")
        }
    }
}
