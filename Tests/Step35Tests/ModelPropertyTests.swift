import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Rewrites a GGUF with edited metadata (same tensors), through the project's own writer.
func rewrite(_ f: GGUFFile, edit: (inout [(String, GGUFValue)]) -> Void) -> [UInt8] {
    var kv = f.metadata.map { ($0.key, $0.value) }
    edit(&kv)
    var w = GGUFWriter()
    w.alignment = f.alignment
    for (k, v) in kv { w.add(k, v) }
    for t in f.tensors {
        w.addTensor(t.name, type: t.type, shape: t.shape,
                    data: Array(UnsafeRawBufferPointer(start: t.address, count: t.byteCount)))
    }
    return w.bytes()
}

@Suite struct ModelPropertyTests {
    /// If this fails, the early StepFun-fork key spellings (per-layer rope dims/bases, swiglu_limits*)
    /// are not read as their llama.cpp equivalents.
    @Test func alternateKeySpellingsGiveSameLogits() throws {
        let (meta, expected) = try Fixtures.golden("tiny-a-f32")
        let f = try GGUFFile(path: Fixtures.path(meta.model))
        let c = try Step35Config(gguf: f)
        let alt = rewrite(f) { kv in
            let drop: Set = ["step35.rope.dimension_count", "step35.rope.freq_base", "step35.rope.freq_base_swa",
                             "step35.swiglu_clamp_exp", "step35.swiglu_clamp_shexp"]
            kv.removeAll { drop.contains($0.0) }
            kv.append(("step35.rope.dimension_count_per_layer", .ints(c.ropeDimensions.map(Int32.init))))
            kv.append(("step35.rope.freq_base_per_layer", .floats(c.ropeFreqBase)))
            kv.append(("step35.swiglu_limits", .floats(c.swigluClampExp)))
            kv.append(("step35.swiglu_limits_shared", .floats(c.swigluClampShexp)))
        }
        let g = try GGUFFile(bytes: alt)
        #expect(try Step35Config(gguf: g) == c)
        let model = try Step35Model(file: g, threads: 2)
        let logits = try model.forward(meta.prompt, cache: model.makeCache(), logits: .all)
        #expect(zip(logits, expected).map { abs($0 - $1) }.max()! <= 1e-3)
    }

    /// If this fails, the KV cache path (prefill then one token at a time) differs from one batched pass.
    @Test func incrementalDecodeEqualsBatch() throws {
        let f = try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny))
        let model = try Step35Model(file: f, threads: 2)
        let toks: [Int32] = (0..<80).map { Int32(($0 * 37 + 11) % 500) }  // longer than nothing: window 64 wraps
        let all = try model.forward(toks, cache: model.makeCache(), logits: .all)
        let cache = model.makeCache()
        _ = try model.forward(Array(toks[0..<50]), cache: cache)
        let v = model.config.vocabSize
        for i in 50..<80 {
            let step = try model.forward([toks[i]], cache: cache)
            let ref = Array(all[(i * v)..<((i + 1) * v)])
            #expect(zip(step, ref).map { abs($0 - $1) }.max()! < 1e-4, "position \(i)")
        }
    }

    /// If this fails, the MTP blocks are not loaded (they are validated now and run in a later stage).
    @Test func mtpBlocksAreLoaded() throws {
        let f = try GGUFFile(path: Fixtures.path("tiny-a-f32.gguf"))
        let model = try Step35Model(file: f, threads: 1)
        #expect(model.config.nextnPredictLayers == 3 && model.mtp.count == 3)
        #expect(model.mtp.allSatisfy { $0.head != nil && $0.block.attention.window > 0 })
        #expect(model.blocks.count == 5)
    }

    /// If this fails, a missing tensor, a wrong shape or a wrong architecture is not reported by name.
    @Test func loaderErrorsNameTheProblem() throws {
        let f = try GGUFFile(path: Fixtures.path("tiny-a-f32.gguf"))
        let noTensor = rewrite(f) { _ in }
        var w = GGUFWriter()
        let g = try GGUFFile(bytes: noTensor)
        for (k, v) in g.metadata { w.add(k, v) }
        for t in g.tensors where t.name != "blk.2.attn_k.weight" {
            w.addTensor(t.name, type: t.type, shape: t.shape, data: Array(UnsafeRawBufferPointer(start: t.address, count: t.byteCount)))
        }
        #expect { try Step35Model(file: GGUFFile(bytes: w.bytes()), threads: 1) } throws: {
            "\($0)".contains("blk.2.attn_k.weight")
        }
        let wrongArch = rewrite(f) { kv in kv[kv.firstIndex { $0.0 == "general.architecture" }!].1 = .string("llama") }
        #expect { try Step35Model(file: GGUFFile(bytes: wrongArch), threads: 1) } throws: { "\($0)".contains("llama") }
        let badHeads = rewrite(f) { kv in kv[kv.firstIndex { $0.0 == "step35.attention.head_count" }!].1 = .uint32(5) }
        #expect { try Step35Model(file: GGUFFile(bytes: badHeads), threads: 1) } throws: { "\($0)".contains("heads") }
    }

    /// If this fails, an out-of-vocabulary token id reaches the embedding lookup instead of an error.
    @Test func badTokenIsAnError() throws {
        let model = try Step35Model(file: GGUFFile(path: Fixtures.path("tiny-a-f32.gguf")), threads: 1)
        #expect(throws: ModelError.self) { try model.forward([1, 100_000], cache: model.makeCache()) }
    }
}
