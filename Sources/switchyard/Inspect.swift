// `switchyard inspect`: metadata, tensors, and memory per component.
import ArgumentParser
import Foundation
import GGUF
import Step35

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a GGUF model's metadata, tensors and memory needs.")

    @OptionGroup var options: ModelOptions

    @Flag(help: "List every tensor (default: the first 40 and a summary).")
    var allTensors = false

    func run() throws {
        try reportingErrors {
            let f = try options.file()
            print("file: \(options.displayName)")
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
                let perToken = (0..<c.layerCount).reduce(0) { $0 + 2 * c.headCountKV[$1] * c.keyLength * 4 }
                print("KV cache (f32, all main layers keep every position): \(Self.bytes(perToken)) per token")
                let types = f.tensors.map(\.type).filter { !$0.isSupported }
                if let bad = types.first { print("warning: tensor type \(bad) is not supported by the engine") }
            } else {
                do { _ = try Step35Config(gguf: f) } catch { print("not runnable: \(error)") }
            }
        }
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
