import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Speculative decoding: verification of [last + drafts] in one pass, rollback of rejected drafts, and
/// output identical to plain decoding (greedy and seeded sampling).
@Suite struct SpeculativeTests {
    static func model(_ name: String = "tiny-a-f32") throws -> Step35Model {
        try Step35Model(file: try GGUFFile(path: Fixtures.path("\(name).gguf")), threads: 1)
    }

    static func job(draft: Int, temp: Float = 0, n: Int = 96) -> GenerationJob {
        GenerationJob(id: 0, prompt: [1, 2, 3, 40], nPredict: n,
                      sampling: SamplingParams(temperature: temp, topK: 40, topP: 0.95, seed: 11), draft: draft)
    }

    /// Runs a job with a custom drafter.
    static func run(_ m: Step35Model, _ job: GenerationJob, drafter: (([Int32], Int) -> [Int32])?) throws -> GenerationResult {
        try m.run(job, drafter: drafter)
    }

    /// If this fails, drafting with the model's own MTP blocks (random weights: drafts mostly rejected, so
    /// every step rolls the cache back) changes the greedy tokens of plain decoding.
    @Test(arguments: [("tiny-a-f32", 1), ("tiny-a-f32", 2), ("tiny-a-f32", 3), ("tiny-a-q8_0", 3), ("tiny-a-bf16", 2),
                      ("tiny-b-kmix", 1)])
    func mtpDraftingKeepsGreedyTokens(model name: String, draft: Int) throws {
        let m = try Self.model(name)
        let plain = try m.run(Self.job(draft: 0, n: 128))
        let spec = try m.run(Self.job(draft: draft, n: 128))
        #expect(plain.tokens.count == 128)
        #expect(spec.tokens == plain.tokens)
        #expect(spec.speculation.drafted[0] == spec.speculation.steps)
    }

    /// If this fails, accepted drafts are mishandled: with a perfect drafter every draft must be accepted,
    /// each pass must yield draft + 1 tokens, and the tokens must still equal plain decoding.
    @Test(arguments: [(1, Float(0)), (2, Float(0)), (3, Float(0))])
    func perfectDraftsAreAllAccepted(draft: Int, temp: Float) throws {
        let m = try Self.model()
        let plain = try m.run(Self.job(draft: 0, temp: temp))
        let oracle: ([Int32], Int) -> [Int32] = { seq, depth in
            let done = seq.count - 4
            return Array(plain.tokens.dropFirst(done).prefix(depth))
        }
        let spec = try Self.run(m, Self.job(draft: draft, temp: temp), drafter: oracle)
        #expect(spec.tokens == plain.tokens)
        #expect(spec.speculation.accepted == spec.speculation.drafted)
        #expect(spec.speculation.steps == Int((Double(95) / Double(draft + 1)).rounded(.up)))
    }

    /// If this fails, a partly accepted draft (first right, second wrong) leaves the wrong rows in the KV
    /// cache or emits the wrong correction token.
    @Test(arguments: [Float(0)])
    func partlyWrongDraftsRollBack(temp: Float) throws {
        let m = try Self.model()
        let plain = try m.run(Self.job(draft: 0, temp: temp))
        let vocab = Int32(m.config.vocabSize)
        let corrupt: ([Int32], Int) -> [Int32] = { seq, depth in
            var d = Array(plain.tokens.dropFirst(seq.count - 4).prefix(depth))
            if d.count > 1 { d[1] = (d[1] + 1) % vocab }
            return d
        }
        let spec = try Self.run(m, Self.job(draft: 3, temp: temp), drafter: corrupt)
        #expect(spec.tokens == plain.tokens)
        #expect(spec.speculation.accepted[0] == spec.speculation.drafted[0])
        #expect(spec.speculation.accepted[1] == 0 && spec.speculation.drafted[1] > 0)
        #expect(spec.speculation.drafted[2] == 0)  // never reached past a rejection
    }
}

extension SpeculativeTests {
    /// If this fails, sampled speculative decoding with the MTP drafts breaks: it must produce the
    /// requested number of tokens, count drafts per position consistently, and stay reproducible per seed.
    @Test func sampledDraftingIsConsistent() throws {
        let m = try Self.model()
        let a = try m.run(Self.job(draft: 3, temp: 0.8))
        let b = try m.run(Self.job(draft: 3, temp: 0.8))
        #expect(a.tokens.count == 96 && a.tokens == b.tokens)
        let s = a.speculation
        #expect(s.drafted[0] == s.steps)
        #expect(s.drafted[1] <= s.accepted[0] && s.drafted[2] <= s.accepted[1])
        #expect(s.steps + s.accepted.reduce(0, +) == 95)  // every pass emits its accepted drafts + 1
    }
}
