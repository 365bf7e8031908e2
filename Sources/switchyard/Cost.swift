// `switchyard cost`: the analytic decoding-cost model (Sources/CostModel), as tables or for one deployment.
import ArgumentParser
import BenchKit
import CostModel
import Foundation
import Kernels

struct Cost: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analytic decode cost per token: the Step-3 paper's tables, the seed table, or one deployment.",
        discussion: """
            Tables: --table step3-paper (the paper's Tables 2, 3, 5 and 6, recomputed) or --table seed-128k (relative
            cost at 128K on Hopper, calibrated on Step 3.5 Flash = 1.0x and DeepSeek V3.2 = 6.0x).
            One deployment: --model NAME --hardware NAME [--context 128K --ep 8 --mtp 3 --sla 100 ...].
            Models: \(ModelCostSpec.builtIn.keys.sorted().joined(separator: ", ")).
            Hardware: \(HardwareProfile.builtIn.keys.sorted().joined(separator: ", ")), measured (runs the probe).
            """)

    @Option(help: "Table to print: step3-paper or seed-128k.")
    var table: String?

    @Flag(help: "Measure this machine's memory bandwidth, F32 compute and kernel-call overhead instead.")
    var probe = false

    @Option(name: [.short, .customLong("threads")], help: "Threads for the probe (default: all cores).")
    var threads: Int?

    @Option(help: "Model for one deployment.") var model: String?
    @Option(help: "Hardware profile for one deployment, or for the seed table (default: h100).") var hardware: String?
    @Option(help: "Context length (K suffix allowed).") var context: String = "128K"
    @Option(help: "Devices in the expert-parallel group.") var ep: Int = 8
    @Option(help: "MTP draft depth.") var mtp: Int = 0
    @Option(help: "MTP acceptance per draft position.") var acceptance: Double?
    @Option(help: "Per-user speed SLA, tokens/s (0: none).") var sla: Double = 0
    @Option(help: "Sequences per device (0: as many as memory and the SLA allow).") var batch: Double = 0
    @Option(help: "Bytes per KV element (default: the model's own).") var kvBytes: Double?
    @Option(help: "Bytes per weight parameter.") var weightBytes: Double = 1
    @Option(help: "Attention placement: replicated, sharded or auto.") var attention: String = "auto"
    @Option(help: "Price per device-hour in dollars (overrides the profile's).") var price: Double?
    @Option(help: "One-way message latency between devices (overrides the profile's): seconds, or with us/ms, e.g. 87us.")
    var networkLatency: String?
    @Option(help: "Network bandwidth per device, one direction (overrides the profile's): bytes/s, GB/s, or a link such as 10GbE.")
    var networkBandwidth: String?
    @Flag(help: "The expert exchange does not overlap compute: every MoE layer waits 2 x latency + bytes / bandwidth.")
    var serialExchange = false
    @Option(help: "Wire bytes per hidden element dispatched (1: FP8; Switchyard: 4 for f32, 2 for bf16, 1 for int8).")
    var dispatchBytes: Double = 1
    @Option(help: "Wire bytes per hidden element combined (2: BF16; Switchyard: 4, F32).")
    var combineBytes: Double = 2

    func run() throws {
        try reportingErrors {
            if probe {
                let p = Probe.profile(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
                print(String(format: "probe (%d threads): memory read %.2f GB/s (F32 decode matmul over a 256 MiB weight), compute %.2f GFLOP/s (F32 matmul, 2048 x 2048 x 256 tokens), kernel call %.2f us (a 64 x 64 matmul)",
                             threads ?? ProcessInfo.processInfo.activeProcessorCount, p.memoryBandwidth / 1e9, p.flopsF32 / 1e9, p.callOverhead * 1e6))
                print(String(format: "roofline: %.1f FLOP per byte", p.flopsF32 / p.memoryBandwidth))
                print(String(format: "int8 peak: %.1f G products/s (the kernel path's int8 multiply-add in registers, %d threads)",
                             Probe.int8Peak(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount) / 1e9,
                             threads ?? ProcessInfo.processInfo.activeProcessorCount))
                print(KernelPath.summary)
                return
            }
            switch table {
            case "step3-paper": printStep3Paper()
            case "seed-128k": try printSeed()
            case nil:
                guard model != nil else { throw ValidationError("give --table step3-paper|seed-128k, --probe, or --model and --hardware") }
                try printOne()
            case let t?: throw ValidationError("unknown --table '\(t)' (known: step3-paper, seed-128k)")
            }
        }
    }

    private func hardwareProfile(_ name: String) throws -> HardwareProfile {
        var hw: HardwareProfile
        if name == "measured" {
            hw = Probe.profile(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        } else if let h = HardwareProfile.builtIn[name.lowercased()] {
            hw = h
        } else {
            throw ValidationError("unknown --hardware '\(name)' (known: \(HardwareProfile.builtIn.keys.sorted().joined(separator: ", ")), measured)")
        }
        if let price { hw.pricePerHour = price }
        if let networkLatency { hw.networkLatency = try NetworkUnits.seconds(networkLatency) }
        if let networkBandwidth { hw.networkBandwidth = try NetworkUnits.bytesPerSecond(networkBandwidth) }
        return hw
    }

    private func knobs() throws -> ServingKnobs {
        var k = ServingKnobs()
        guard let placement = AttentionPlacement(rawValue: attention) else {
            throw ValidationError("--attention must be replicated, sharded or auto, not '\(attention)'")
        }
        k.attention = placement
        k.weightBytesPerParam = weightBytes
        k.overlapExchange = !serialExchange
        guard dispatchBytes > 0 && combineBytes > 0 else { throw ValidationError("--dispatch-bytes and --combine-bytes must be > 0") }
        k.dispatchBytesPerElement = dispatchBytes
        k.combineBytesPerElement = combineBytes
        if let acceptance {
            guard (0...1).contains(acceptance) else { throw ValidationError("--acceptance must be in 0...1") }
            k.acceptance = acceptance
        }
        return k
    }

    private func printOne() throws {
        guard let name = model, var m = ModelCostSpec.builtIn[name.lowercased()] else {
            throw ValidationError("unknown --model '\(model ?? "")' (known: \(ModelCostSpec.builtIn.keys.sorted().joined(separator: ", ")))")
        }
        guard m.totalParams > 0 else { throw ValidationError("'\(name)' carries only the paper's per-token inputs; use --table step3-paper") }
        let hw = try hardwareProfile(hardware ?? "h100")
        let c = try Bench.parseContexts(context)
        guard c.count == 1, ep >= 1, mtp >= 0, batch >= 0, sla >= 0 else { throw ValidationError("need one --context, --ep >= 1, --mtp/--batch/--sla >= 0") }
        if let kvBytes { m = m.withKVBytes(kvBytes) }
        let k = try knobs()
        let e = ServingCost.estimate(ServingScenario(model: m, hardware: hw, context: c[0], ep: ep, mtp: mtp, sla: sla, batch: batch), knobs: k)
        print("\(m.name) on \(hw.name) x\(ep), context \(c[0]), MTP-\(mtp)\(sla > 0 ? String(format: ", SLA %.0f tok/s", sla) : "")")
        print(describe(k))
        if !k.overlapExchange {
            print(String(format: "network: %.1f us one-way latency, %.3f GB/s per device; %.2f + %.2f wire bytes per hidden element (dispatch + combine)",
                         hw.networkLatency * 1e6, hw.networkBandwidth / 1e9, k.dispatchBytesPerElement, k.combineBytesPerElement))
        }
        print(String(format: "attention %@ over %d device(s); weights %.1f GB per device; KV %.2f GB per sequence",
                     e.placement.rawValue, e.attentionGroup, e.weightsPerDevice / 1e9, e.kvPerSequence / 1e9))
        print(String(format: "sequences per device %.2f (memory allows %.2f, SLA %.2f) -> limited by %@", e.sequencesPerDevice, e.memoryLimit,
                     e.slaLimit, e.limitedBy))
        print(String(format: "step %.2f ms (attention %.2f, FFN %.2f, exchange %.2f, calls %.2f), paid %.2f ms; %.2f tokens per step",
                     e.step.total * 1e3, e.step.attention * 1e3, e.step.ffn * 1e3, e.step.exchange * 1e3, e.step.calls * 1e3,
                     e.paidStepSeconds * 1e3, e.tokensPerStep))
        print(String(format: "per user %.1f tok/s; per device %.1f tok/s", e.perUserTokensPerSecond, e.deviceTokensPerSecond))
        print(String(format: "cost $%.4f per 1M tokens (attention $%.4f, FFN $%.4f) at $%.2f per device-hour", e.costPerToken * 1e6,
                     e.attentionCost * 1e6, e.ffnCost * 1e6, hw.pricePerHour))
    }

    private func describe(_ k: ServingKnobs) -> String {
        String(format: "knobs: usable memory %.2f, bandwidth efficiency %.2f, compute efficiency %.2f, MTP acceptance %.3f, %.2f bytes per weight, attention %@, pace at SLA %@, exchange overlapped %@",
               k.usableMemory, k.bandwidthEfficiency, k.computeEfficiency, k.acceptance, k.weightBytesPerParam, k.attention.rawValue,
               k.paceAtSLA ? "yes" : "no", k.overlapExchange ? "yes" : "no")
    }

    private func printSeed() throws {
        let hw = try hardwareProfile(hardware ?? "h100")
        var base = try knobs()
        base.acceptance = 0.7
        let k = SeedTable.calibrate(base: base, on: hw)
        let est = SeedTable.estimates(knobs: k, on: hw)
        let ref = est[0].costPerToken
        print("Seed table: relative decode cost at 128K context (\(SeedTable.context) tokens) on \(hw.name) ($\(hw.pricePerHour)/h, \(hw.memoryCapacity / 1e9) GB, \(hw.memoryBandwidth / 1e12) TB/s, FP8 \(hw.flopsFP8 / 1e15) PFLOP/s)")
        print("Calibrated on Step 3.5 Flash = 1.0x and DeepSeek V3.2 = \(SeedTable.anchorRatio)x (StepFun's published rows): MTP acceptance solved for; the other knobs fixed beforehand.")
        print(describe(k))
        print("")
        print("| model | SLA tok/s | MTP | EP | KV B/elem | attention | weights GB/dev | KV GB/seq | seqs/dev | limited by | step ms | tok/s/dev | $/1M tok | attn $ | FFN $ | relative |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (r, e) in zip(SeedTable.rows, est) {
            let rel = e.feasible ? String(format: "%.2fx", e.costPerToken / ref) : "n/a"
            print(String(format: "| %@ | %.0f | %d | %d | %.3f | %@/%d | %.1f | %.2f | %.2f | %@ | %.2f | %.1f | %.4f | %.4f | %.4f | %@ |",
                         r.model.name, r.sla, r.mtp, r.ep, r.kvBytes, e.placement.rawValue, e.attentionGroup, e.weightsPerDevice / 1e9,
                         e.kvPerSequence / 1e9, e.sequencesPerDevice, e.limitedBy, e.step.total * 1e3, e.deviceTokensPerSecond,
                         e.costPerToken * 1e6, e.attentionCost * 1e6, e.ffnCost * 1e6, rel))
        }
        print("\nAssumptions: weights FP8 (\(k.weightBytesPerParam) byte per parameter); experts split evenly over the EP group, the rest of the model on every device")
        print("(attention weights split over up to 8 devices when sharded); MoE layers read every local expert a step's tokens touch;")
        print("the step is paid at the SLA's pace when faster (tokens priced at the advertised speed); the exchange overlaps compute (micro-batches);")
        print("batch is continuous (mean concurrency per device); embeddings and the LM head count as replicated weights; MTP weights are not counted.")
    }

    private func e(_ x: Double) -> String { String(format: "%.2e", x) }

    private func printStep3Paper() {
        let models = ModelCostSpec.step3Paper, chips = HardwareProfile.step3Paper
        print("Step-3 paper cost model (arXiv 2507.19427 §4-5): FP8 weights and KV, MLA as 576 latent elements;")
        print("attention = max(FLOP_attn*U_FLOP, Byte_KV*U_byte) + FLOP_linear*U_FLOP; FFN = FLOP_FFN*U_FLOP.\n")
        print("Table 2: attention per token at 32K (arithmetic intensity = FLOP_attn / Byte_KV)")
        print("| model | attention | Byte_KV | FLOP_attn | intensity |")
        print("|---|---|---|---|---|")
        let kinds = ["MLA", "MLA", "GQA-4", "GQA-8", "MFA"]
        for (m, kind) in zip(models, kinds) {
            print("| \(m.name) | \(kind) | \(e(m.byteKV(context: 32768))) | \(e(m.flopAttention(context: 32768))) | \(String(format: "%.0f", m.arithmeticIntensity(context: 32768))) |")
        }
        print("\nTable 3: per-token inputs")
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

/// Latencies and rates as people write them: "87us", "0.5ms", "8.7e-5"; "10GbE", "25Gb/s", "1.5GB/s", "1.25e9".
enum NetworkUnits {
    static func seconds(_ s: String) throws -> Double {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, scale) in [("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)] where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count)), v >= 0 { return v * scale }
        }
        guard let v = Double(t), v >= 0 else { throw ValidationError("--network-latency '\(s)': give seconds, or a number with us or ms (e.g. 87us)") }
        return v
    }

    static func bytesPerSecond(_ s: String) throws -> Double {
        let t = s.trimmingCharacters(in: .whitespaces)
        // Case matters: Gb (bits: links, "10GbE", "25Gb/s") against GB (bytes); plain numbers are bytes.
        for (suffix, scale) in [("GbE", 1e9 / 8), ("Gbit/s", 1e9 / 8), ("Gb/s", 1e9 / 8), ("Gb", 1e9 / 8), ("GB/s", 1e9), ("GB", 1e9)] where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count)), v > 0 { return v * scale }
        }
        guard let v = Double(t), v > 0 else {
            throw ValidationError("--network-bandwidth '\(s)': give bytes/s, GB/s (bytes), or Gb/s or a link such as 10GbE (bits)")
        }
        return v
    }
}
