// `switchyard inspect`: metadata, tensors, and memory per component.
import ArgumentParser
import Foundation
import Kernels
import GGUF
import ModelKit
import Step35

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a GGUF model's metadata, tensors and memory needs.")

    @OptionGroup var options: ModelOptions

    @Flag(help: "List every tensor (default: the first 40 and a summary).")
    var allTensors = false

    @Option(help: "Instead of a file, show the KV cache sizes of a built-in shape: step35-flash (the released model).")
    var shape: String?

    func run() throws {
        try reportingErrors {
            if let sh = shape {
                guard sh == "step35-flash" else { throw ValidationError("unknown --shape '\(sh)' (known: step35-flash)") }
                print("shape: Step 3.5 Flash (built-in config: 45 layers, 12 full + 33 sliding-window, 8 KV heads x 128, window 512)")
                Self.printKV(Step35Config.flash)
                return
            }
            let f = try options.file()
            print("file: \(options.displayName)")
            print(KernelPath.summary)
            print("GGUF v\(f.version), \(f.metadata.count) metadata keys, \(f.tensors.count) tensors, alignment \(f.alignment)")
            print("\n== metadata ==")
            for (k, v) in f.metadata { print("\(k) = \(Self.render(v))") }
            print("\n== tensors ==")
            print(Self.pad("name", 44) + Self.pad("type", 7) + Self.pad("shape", 22) + "bytes")
            let shown = allTensors ? f.tensors : Array(f.tensors.prefix(40))
            for t in shown {
                print(Self.pad(t.name, 44) + Self.pad(t.type.name, 7) + Self.pad("\(t.shape)", 22) + "\(t.byteCount)")
            }
            if shown.count < f.tensors.count { print("... \(f.tensors.count - shown.count) more (--all-tensors)") }
            print("\n== memory by component ==")
            var groups: [String: (Int, Int)] = [:]
            for t in f.tensors { groups[Self.component(t.name), default: (0, 0)].0 += t.byteCount; groups[Self.component(t.name)]!.1 += 1 }
            for (k, v) in groups.sorted(by: { $0.value.0 > $1.value.0 }) {
                print(Self.pad(k, 24) + Self.pad(Self.bytes(v.0), 12) + "\(v.1) tensors")
            }
            print(Self.pad("total", 24) + Self.bytes(f.tensors.reduce(0) { $0 + $1.byteCount }))
            if let c = try? Step35Config(gguf: f) {
                Self.printKV(c)
                let types = f.tensors.map(\.type).filter { !$0.isSupported }
                if let bad = types.first { print("warning: tensor type \(bad) is not supported by the engine") }
            } else {
                do { _ = try Step35Config(gguf: f) } catch { print("not runnable: \(error)") }
            }
        }
    }

    /// KV bytes per token and reserved totals at 4K, 128K and 256K context for every KV type.
    static func printKV(_ c: Step35Config) {
        let full = (0..<c.layerCount).filter { !c.isSWA($0) }.count
        print("\n== KV cache per sequence (\(full) full-attention layers keep every position; \(c.layerCount - full) sliding-window layers keep a ring of window \(c.slidingWindow) + 511 ubatch slots) ==")
        let ctxs = [4096, 131_072, 262_144]
        print(pad("kv type", 9) + pad("per token", 13) + pad("rings", 12) + ctxs.map { pad("total @ \($0 / 1024)K", 17) }.joined())
        for t in KVType.allCases {
            let row = pad(t.rawValue, 9) + pad(bytes(c.kvBytesPerToken(t)), 13) + pad(bytes(c.kvFixedBytes(t, context: 262_144)), 12)
            print(row + ctxs.map { pad(bytes(c.kvBytes(context: $0, type: t)), 17) }.joined())
        }
        print("MTP drafting adds \(bytes(c.kvFixedBytes(.f16, context: 262_144, mtp: true) - c.kvFixedBytes(.f16, context: 262_144))) (f16) of rings for \(c.nextnPredictLayers) MTP block(s)")
    }

    static func component(_ name: String) -> String {
        if name.hasPrefix("token_embd") { return "embeddings" }
        if name.hasPrefix("output") { return "output head" }
        if name.contains(".nextn.") { return "MTP (nextn)" }
        if name.contains("_exps") { return "routed experts" }
        if name.contains("_shexp") { return "shared expert" }
        if name.contains("ffn_gate_inp") || name.contains("exp_probs_b") { return "router" }
        if name.contains("attn_") { return "attention" }
        if name.contains("ffn_") { return "dense FFN" }
        return "other"
    }

    static func render(_ v: GGUFValue) -> String {
        switch v {
        case .string(let s): return s.count > 80 ? "\"\(s.prefix(77))...\" (\(s.count) chars)" : "\"\(s)\""
        case .array(let t, let a):
            let head = a.prefix(8).map(render).joined(separator: ", ")
            return "[\(head)\(a.count > 8 ? ", ..." : "")] (\(a.count) \(t))"
        case .bool(let b): return "\(b)"
        default: return v.double.map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int64($0)) : "\($0)" } ?? "?"
        }
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if n >= 1 << 30 { return String(format: "%.2f GiB", d / 1_073_741_824) }
        if n >= 1 << 20 { return String(format: "%.2f MiB", d / 1_048_576) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
        return "\(n) B"
    }
}
