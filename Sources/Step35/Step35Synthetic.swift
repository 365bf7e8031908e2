// Deterministic Step 3.5-shaped GGUF models with random weights: the embedded default model, and
// synthetic files for benchmarks. Same layout rules as the real checkpoint (spec §3, §7): full attention
// on every 4th layer with fewer heads, leading dense layers, MoE with a shared expert, MTP blocks.
//
// Dimension legend: D hidden, V vocab, H heads, Hk KV heads, Dh head dim, E experts, F widths.
import Foundation
import GGUF
import ModelKit
import Tokenizer

/// The shape of a synthetic Step 3.5 model.
public struct Step35Shape: Sendable, Codable, Equatable {
    public var embedding = 256
    public var vocab = 512
    public var layers = 8
    public var denseLayers = 2
    public var mtpLayers = 1
    public var headDim = 32
    public var headsFull = 4
    public var headsSWA = 6
    public var kvHeads = 2
    public var ffn = 512
    public var experts = 16
    public var expertsUsed = 4
    public var expertFFN = 128
    public var sharedFFN = 128
    public var window = 64
    public var context = 4096
    /// Zipf exponent of a skewed router selection bias (0: the usual random bias).
    public var routerSkew = 0.0

    /// The default shape.
    public init() {}

    /// The embedded default: small enough to build in well under a second, shaped like Step 3.5.
    public static let tiny = Step35Shape()

    /// About 0.9 GB at Q8_0 (the issue-2 speed comparison): 2048 wide, 8 layers (1 dense), 32 experts
    /// of width 384, top-8; about 360M parameters are read per decoded token.
    public static var bench1GB: Step35Shape {
        var s = Step35Shape()
        s.embedding = 2048; s.vocab = 32000; s.layers = 8; s.denseLayers = 1; s.mtpLayers = 0
        s.headDim = 128; s.headsFull = 16; s.headsSWA = 24; s.kvHeads = 4; s.ffn = 5632
        s.experts = 32; s.expertsUsed = 8; s.expertFFN = 384; s.sharedFFN = 384; s.window = 512
        return s
    }
}

extension Step35Shape {
    /// Step 3.5 Flash with its width and expert count cut by `scale` (1, 1/2, ..., 1/64): the layer
    /// pattern (45 layers, 3 dense, full attention every 4th), head dim 128, the 2:3 full:SWA head ratio,
    /// window 512, top-8 and 3 MTP blocks stay; hidden, FFN widths, vocab, heads and experts shrink (at
    /// least 1 KV head, at least 8 experts; widths rounded to 32-value blocks). `scale` 1 is the real shape (196B parameters: not for RAM).
    public static func flash(scale: Double) -> Step35Shape {
        func cut(_ x: Int, min m: Int = 1) -> Int { max(m, Int((Double(x) * scale).rounded())) }
        // Widths that are rows of quantized weights stay whole 32-value blocks.
        func width(_ x: Int) -> Int { max(32, Int((Double(x) * scale / 32).rounded()) * 32) }
        var s = Step35Shape()
        s.embedding = width(4096); s.vocab = cut(128_896, min: 512); s.layers = 45; s.denseLayers = 3
        s.mtpLayers = 3; s.headDim = 128; s.headsFull = cut(64, min: 2); s.headsSWA = s.headsFull * 3 / 2
        s.kvHeads = cut(8); s.ffn = width(11264); s.experts = cut(288, min: 8); s.expertsUsed = 8
        s.expertFFN = width(1280); s.sharedFFN = width(1280); s.window = 512; s.context = 262_144
        return s
    }
}

/// Builds synthetic Step 3.5 GGUF images.
public enum Step35Synthetic {
    /// Byte-level BPE vocabulary learnt from a fixed text: specials, 256 bytes, merges, chat specials.
    public static func vocabulary(size: Int) -> (tokens: [String], types: [Int32], merges: [String]) {
        let head = ["<s>", "</s>", "<unk>"], tail = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
        var tokens = head + (0..<256).map { BPETokenizer.byteLevel([UInt8($0)]) }
        let text = """
            Switchyard serves a sparse mixture of experts model across machines. Every token visits the \
            router, which picks eight experts out of many; the experts live on workers and the heads keep \
            attention and the cache. The quick brown fox jumps over the lazy dog. Hello world, hello there! \
            The model thinks first and then answers with tools when it needs them.
            """
        var words = text.split(separator: " ").map { (" " + $0).utf8.map { BPETokenizer.byteLevel([$0]) } }
        var merges: [String] = []
        while tokens.count + tail.count < size {
            var counts: [String: (Int, String, String)] = [:]
            for w in words where w.count > 1 {
                for i in 0..<(w.count - 1) {
                    let k = w[i] + "\u{0}" + w[i + 1]
                    counts[k, default: (0, w[i], w[i + 1])].0 += 1
                }
            }
            // Most frequent pair; ties broken by the pair text so the result is deterministic.
            guard let best = counts.max(by: { ($0.value.0, $1.key) < ($1.value.0, $0.key) })?.value else {
                tokens.append("<unused\(tokens.count)>")
                continue
            }
            let (a, b) = (best.1, best.2)
            merges.append("\(a) \(b)")
            tokens.append(a + b)
            words = words.map { w in
                var out: [String] = []
                var i = 0
                while i < w.count {
                    if i + 1 < w.count && w[i] == a && w[i + 1] == b { out.append(a + b); i += 2 } else { out.append(w[i]); i += 1 }
                }
                return out
            }
        }
        tokens += tail
        // Control specials at both ends; padding entries are typed unused (5) so they never print.
        let types = tokens.indices.map { i -> Int32 in
            if i < head.count || i >= tokens.count - tail.count { return 3 }
            return tokens[i].hasPrefix("<unused") ? 5 : 1
        }
        return (tokens, types, merges)
    }

    /// A complete GGUF image. Matrices are stored as `type` (F32, F16, BF16, Q8_0 or Q4_0); norms, router,
    /// bias and `rope_freqs` stay F32, as llama.cpp's quantizer keeps them.
    public static func gguf(shape s: Step35Shape, type: GGMLType = .f32, seed: UInt64 = 0x5357_4954) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var w = GGUFWriter()
        let n = s.layers + s.mtpLayers
        let swa = (0..<n).map { $0 >= s.layers || $0 % 4 != 0 }
        let p = "step35."
        w.add("general.architecture", .string("step35"))
        w.add("general.name", .string("switchyard-synthetic-step35"))
        w.add(p + "context_length", .uint32(UInt32(s.context)))
        w.add(p + "embedding_length", .uint32(UInt32(s.embedding)))
        w.add(p + "block_count", .uint32(UInt32(n)))
        w.add(p + "feed_forward_length", .uint32(UInt32(s.ffn)))
        w.add(p + "attention.head_count", .ints(swa.map { Int32($0 ? s.headsSWA : s.headsFull) }))
        w.add(p + "attention.head_count_kv", .uint32(UInt32(s.kvHeads)))
        w.add(p + "attention.key_length", .uint32(UInt32(s.headDim)))
        w.add(p + "attention.value_length", .uint32(UInt32(s.headDim)))
        w.add(p + "attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.add(p + "attention.sliding_window", .uint32(UInt32(s.window)))
        w.add(p + "attention.sliding_window_pattern", .bools(swa))
        w.add(p + "rope.dimension_count", .uint32(UInt32(s.headDim)))
        w.add(p + "rope.freq_base", .float32(5e6))
        w.add(p + "rope.freq_base_swa", .float32(1e4))
        w.add(p + "expert_count", .uint32(UInt32(s.experts)))
        w.add(p + "expert_used_count", .uint32(UInt32(s.expertsUsed)))
        w.add(p + "expert_feed_forward_length", .uint32(UInt32(s.expertFFN)))
        w.add(p + "expert_shared_feed_forward_length", .uint32(UInt32(s.sharedFFN)))
        w.add(p + "expert_gating_func", .uint32(2))
        w.add(p + "expert_weights_scale", .float32(3))
        w.add(p + "expert_weights_norm", .bool(true))
        w.add(p + "swiglu_clamp_exp", .floats((0..<n).map { $0 >= s.layers - 2 && $0 < s.layers ? 7 : 0 }))
        w.add(p + "swiglu_clamp_shexp", .floats((0..<n).map { $0 == s.layers - 1 ? 16 : 0 }))
        w.add(p + "leading_dense_block_count", .uint32(UInt32(s.denseLayers)))
        if s.mtpLayers > 0 { w.add(p + "nextn_predict_layers", .uint32(UInt32(s.mtpLayers))) }
        let vocab = vocabulary(size: s.vocab)
        w.add("tokenizer.ggml.model", .string("gpt2"))
        w.add("tokenizer.ggml.pre", .string("qwen2"))
        w.add("tokenizer.ggml.tokens", .strings(vocab.tokens))
        w.add("tokenizer.ggml.token_type", .ints(vocab.types))
        w.add("tokenizer.ggml.merges", .strings(vocab.merges))
        w.add("tokenizer.ggml.bos_token_id", .uint32(0))
        w.add("tokenizer.ggml.eos_token_id", .uint32(UInt32(vocab.tokens.count - 3)))

        // Uniform(-a, a) with a = sqrt(3/fan_in) has standard deviation 1/sqrt(fan_in).
        func random(_ count: Int, scale: Float) -> [Float] {
            (0..<count).map { _ in (Float(rng.nextUnit()) * 2 - 1) * scale }
        }
        func mat(_ name: String, _ shape: [Int], gain: Float = 1) {
            let fanIn = shape[0]
            let x = random(shape.reduce(1, *), scale: gain * (3 / Float(fanIn)).squareRoot())
            w.addTensor(name, type: type, shape: shape, data: Quantize.row(type, x))
        }
        func norm(_ name: String, _ count: Int) {
            w.addTensor(name, shape: [count], floats: random(count, scale: 0.1).map { 1 + $0 })
        }
        let d = s.embedding, v = s.vocab, dh = s.headDim
        mat("token_embd.weight", [d, v], gain: Float(d).squareRoot())
        norm("output_norm.weight", d)
        mat("output.weight", [d, v], gain: 2)
        w.addTensor("rope_freqs.weight", shape: [dh / 2], floats: llama3Divisors(pairs: dh / 2, rotaryDims: dh / 2))
        for il in 0..<n {
            let b = "blk.\(il).", h = swa[il] ? s.headsSWA : s.headsFull
            norm(b + "attn_norm.weight", d)
            mat(b + "attn_q.weight", [d, h * dh]); mat(b + "attn_k.weight", [d, s.kvHeads * dh])
            mat(b + "attn_v.weight", [d, s.kvHeads * dh]); mat(b + "attn_output.weight", [h * dh, d])
            norm(b + "attn_q_norm.weight", dh); norm(b + "attn_k_norm.weight", dh)
            mat(b + "attn_gate.weight", [d, h])
            norm(b + "ffn_norm.weight", d)
            if il < s.denseLayers || il >= s.layers {
                mat(b + "ffn_gate.weight", [d, s.ffn]); mat(b + "ffn_up.weight", [d, s.ffn]); mat(b + "ffn_down.weight", [s.ffn, d])
            } else {
                w.addTensor(b + "ffn_gate_inp.weight", shape: [d, s.experts],
                            floats: random(d * s.experts, scale: 2 * (3 / Float(d)).squareRoot()))
                var bias = random(s.experts, scale: 0.3)
                if s.routerSkew > 0 { bias = Self.skewedBias(experts: s.experts, exponent: s.routerSkew, layer: il) }
                w.addTensor(b + "exp_probs_b.bias", shape: [s.experts], floats: bias)
                mat(b + "ffn_gate_exps.weight", [d, s.expertFFN, s.experts])
                mat(b + "ffn_up_exps.weight", [d, s.expertFFN, s.experts])
                mat(b + "ffn_down_exps.weight", [s.expertFFN, d, s.experts])
                mat(b + "ffn_gate_shexp.weight", [d, s.sharedFFN]); mat(b + "ffn_up_shexp.weight", [d, s.sharedFFN])
                mat(b + "ffn_down_shexp.weight", [s.sharedFFN, d])
            }
            if il >= s.layers {
                mat(b + "nextn.eh_proj.weight", [2 * d, d])
                norm(b + "nextn.enorm.weight", d); norm(b + "nextn.hnorm.weight", d)
                norm(b + "nextn.shared_head_norm.weight", d)
            }
        }
        return w.bytes()
    }

    /// llama3 rope scaling divisors (factor 2, low 1, high 32, original context 131072; spec §4.1),
    /// computed over a rotary slice of `rotaryDims` with base 5e6.
    /// A selection bias that makes routing Zipf-skewed: expert of popularity rank r (a seeded permutation
    /// per layer) gets 1 / (r + 1)^s added to its score when experts are chosen (weights stay unbiased).
    public static func skewedBias(experts e: Int, exponent s: Double, layer: Int) -> [Float] {
        var g = SplitMix64(seed: 0xB1A5 &+ UInt64(layer))
        var rank = Array(0..<e)
        for i in stride(from: e - 1, to: 0, by: -1) { rank.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        return rank.map { Float(1 / pow(Double($0 + 1), s)) }
    }

    public static func llama3Divisors(pairs: Int, rotaryDims: Int) -> [Float] {
        (0..<pairs).map { i in
            let inv = pow(5e6, -2 * Double(i) / Double(rotaryDims))
            let wl = 2 * Double.pi / inv
            if wl < 131072 / 32 { return 1 }
            if wl > 131072 { return 2 }
            let s = (131072 / wl - 1) / 31
            return Float(1 / ((1 - s) / 2 + s))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
