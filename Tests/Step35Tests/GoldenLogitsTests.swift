import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Golden tests against llama.cpp (llama-cpp-python 0.3.36, F32 KV, no flash attention).
/// Quantized fixtures are compared with llama.cpp run on their F32 twin: Switchyard computes with
/// float activations, so the only difference allowed is float summation order (Docs/CORRECTNESS.md).
@Suite struct GoldenLogitsTests {
    /// If this fails, some part of the forward pass (norms, RoPE, attention, gate, router, experts,
    /// clamps) disagrees with llama.cpp on that weight type.
    @Test(arguments: Fixtures.goldenNames)
    func logitsMatchLlamaCpp(name: String) throws {
        let (meta, expected) = try Fixtures.golden(name)
        let model = try Step35Model(file: GGUFFile(path: Fixtures.path(meta.model)), threads: 2, exact: true)  // golden: the exact path
        let logits = try model.forward(meta.prompt, cache: model.makeCache(), logits: .all)
        #expect(logits.count == expected.count)
        var maxDiff: Float = 0
        for (a, b) in zip(logits, expected) { maxDiff = max(maxDiff, abs(a - b)) }
        #expect(maxDiff <= 1e-3, "\(name): max |Δlogit| = \(maxDiff)")
    }

    /// If this fails, decoding with the KV cache (one token at a time after a batched prefill)
    /// diverges from llama.cpp's greedy continuation.
    @Test(arguments: Fixtures.goldenNames)
    func greedyMatchesLlamaCpp(name: String) throws {
        let (meta, _) = try Fixtures.golden(name)
        let model = try Step35Model(file: GGUFFile(path: Fixtures.path(meta.model)), threads: 2, exact: true)  // golden: the exact path
        let cache = model.makeCache()
        var logits = try model.forward(meta.prompt, cache: cache)
        var out: [Int32] = []
        for _ in 0..<meta.greedy.count {
            let next = Int32(Sampler.argmax(logits))
            out.append(next)
            logits = try model.forward([next], cache: cache)
        }
        #expect(out == meta.greedy)
    }
}
