import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// The shipped demo model (Sources/DemoModel, trained by Scripts/train/) against its fixtures
/// (Tests/Fixtures/demo, written by Scripts/train/fixtures.py): llama.cpp's logits on the same weights, and
/// the held-out perplexity JAX recorded.
@Suite struct DemoModelTests {
    struct Doc: Decodable {
        struct Perplexity: Decodable {
            let code_docs: [[Int32]]
            let chat: [[Int32]]
            let jax_code_docs: Double
            let jax_chat: Double
        }
        struct Golden: Decodable {
            let prompt: [Int32]
            let positions: [Int]
            let greedy: [Int32]
            let n_vocab: Int
        }
        let perplexity: Perplexity
        let golden: Golden
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelPath = root.appendingPathComponent("Sources/DemoModel/switchyard-demo-q8_0.gguf").path

    static func doc() throws -> Doc {
        try JSONDecoder().decode(Doc.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("demo/demo.json"))))
    }

    /// If this fails, Switchyard and llama.cpp disagree on the shipped model (the Q8_0 file in Switchyard's
    /// exact path against llama.cpp on its F32 twin, which holds the same values), past the sliding window.
    @Test func logitsMatchLlamaCpp() throws {
        let g = try Self.doc().golden
        let raw = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("demo/demo.logits.f32")))
        let expected = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let model = try Step35Model(file: GGUFFile(path: Self.modelPath), threads: 2, exact: true)
        let logits = try model.forward(g.prompt, cache: model.makeCache(), logits: .all)
        #expect(expected.count == g.positions.count * g.n_vocab)
        var maxDiff: Float = 0
        for (row, p) in g.positions.enumerated() {
            for v in 0..<g.n_vocab { maxDiff = max(maxDiff, abs(logits[p * g.n_vocab + v] - expected[row * g.n_vocab + v])) }
        }
        print("demo model: Switchyard (exact) vs llama.cpp max |Δlogit| \(maxDiff) over \(g.positions.count) positions")
        #expect(maxDiff <= 1e-3, "max |Δlogit| = \(maxDiff)")
    }

    /// If this fails, greedy decoding of the shipped model with the KV cache leaves llama.cpp's tokens.
    @Test func greedyMatchesLlamaCpp() throws {
        let g = try Self.doc().golden
        let model = try Step35Model(file: GGUFFile(path: Self.modelPath), threads: 2, exact: true)
        let cache = model.makeCache()
        var logits = try model.forward(g.prompt, cache: cache)
        var out: [Int32] = []
        for _ in 0..<g.greedy.count {
            out.append(Int32(Sampler.argmax(logits)))
            logits = try model.forward([out.last!], cache: cache)
        }
        #expect(out == g.greedy)
    }

    /// If this fails, the shipped model's held-out perplexity moved more than 5% from the value JAX recorded
    /// on the same weights: the file, the loader or the forward pass changed what the model computes.
    @Test(arguments: ["code_docs", "chat"])
    func heldOutPerplexityHolds(split: String) throws {
        let p = try Self.doc().perplexity
        let (rows, recorded) = split == "chat" ? (p.chat, p.jax_chat) : (p.code_docs, p.jax_code_docs)
        let model = try Step35Model(file: GGUFFile(path: Self.modelPath), threads: 2)
        let ppl = try Self.perplexity(model, rows)
        print("demo model: held-out \(split) perplexity \(ppl) (Switchyard, \(rows.count) windows), recorded \(recorded) (JAX)")
        #expect(abs(ppl / recorded - 1) <= 0.05, "\(split): perplexity \(ppl), recorded \(recorded)")
    }

    /// exp of the mean next-token cross-entropy over every position of every row, each row its own sequence.
    static func perplexity(_ model: Step35Model, _ rows: [[Int32]]) throws -> Double {
        var total = 0.0, count = 0
        for row in rows {
            let n = row.count - 1
            let logits = try model.forward(Array(row[..<n]), cache: model.makeCache(), logits: .all)
            let v = logits.count / n
            for i in 0..<n {
                let slice = logits[(i * v)..<((i + 1) * v)]
                let m = Double(slice.max()!)
                let lse = m + log(slice.reduce(0.0) { $0 + exp(Double($1) - m) })
                total += lse - Double(slice[slice.startIndex + Int(row[i + 1])])
                count += 1
            }
        }
        return exp(total / Double(count))
    }
}
