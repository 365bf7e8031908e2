import Engine
import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Prefix reuse: a request that continues a cached sequence's tokens takes over its KV (main layers,
/// sliding-window rings and MTP caches) and prefills only the rest.
@Suite struct PrefixReuseTests {
    static let model: Step35Model = try! Step35Model(file: try! GGUFFile(path: "\(EngineFixtures.directory)/tiny-a-f32.gguf"), threads: 2)

    /// Runs a job to its end (one pass at a time), reusing `cached` if given; returns the run.
    static func run(_ job: GenerationJob, reusing cached: CachedSequence? = nil) throws -> SequenceRun {
        let s = SequenceRun(job, model: model, reusing: cached)
        while try SequenceRun.runPass([s], model: model, PassContext()) {}
        return s
    }

    /// A second turn: the first turn's prompt and output, cut at `cut` tokens of its output, plus new tokens.
    static func turns(first: [Int32], cut: Int, extra: [Int32], draft: Int) throws
        -> (reused: SequenceRun, fresh: SequenceRun, keep: Int, frontier: Int) {
        let v = model.config.vocabSize
        let t1 = try run(GenerationJob(id: 0, prompt: first, nPredict: 12, draft: draft))
        let cached = try #require(t1.leaveCache())
        let second = first + t1.result.tokens.prefix(cut) + extra
        let job = GenerationJob(id: 1, prompt: second, nPredict: 8, draft: draft, logprobs: v)
        let keep = reusablePrefix(cached, for: job)
        return (try run(job, reusing: cached), try run(job), keep, cached.mtpFrontier.prefix(draft).min() ?? 0)
    }

    /// If this fails, continuing a cached sequence changes the model's output: the reused run's
    /// distribution over the whole vocabulary at every generated token must be within 1e-4 (log-probability)
    /// of a fresh prefill's, with the same greedy tokens, for prompts shorter than the window (6) and far
    /// longer, with a rollback inside the ring (the second turn departs before the first turn's end; with
    /// drafting only a long first prompt leaves the ring room for that, see `rollbackPastTheRingIsRefused`), and
    /// with 2 and 3 MTP drafts (whose caches are reused too); and the cached count must be the common prefix
    /// less the tokens that must be re-run (with drafting, one more, and none past the MTP heads' committed
    /// pairs).
    @Test(arguments: [(3, 12, 0), (40, 12, 0), (3, 9, 0), (40, 7, 0), (40, 12, 3), (3, 12, 3), (40, 5, 2), (40, 8, 3)])
    func reusedPrefixMatchesFreshPrefill(promptLength: Int, cut: Int, draft: Int) throws {
        let first = (0..<promptLength).map { Int32(($0 * 29 + 11) % 500 + 1) }
        let (reused, fresh, keep, frontier) = try Self.turns(first: first, cut: cut, extra: [17, 18, 19], draft: draft)
        // The cache holds prompt + 11 of the 12 generated tokens (the last is never run); the MTP heads hold
        // committed pairs up to the last pass's first token.
        let common = promptLength + min(cut, 11)
        #expect(draft == 0 || frontier >= promptLength + 11 - draft)
        #expect(keep == (draft > 0 ? min(common, frontier) - 1 : common), "kept \(keep) of a \(common)-token common prefix")
        #expect(reused.cachedTokens == keep && fresh.cachedTokens == 0)
        #expect(reused.result.tokens == fresh.result.tokens)
        let a = reused.takeEmittedLogprobs(), b = fresh.takeEmittedLogprobs()
        #expect(a.count == b.count && !a.isEmpty)
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            let byToken = Dictionary(uniqueKeysWithValues: y.top.map { ($0.token, $0.logprob) })
            for alt in x.top { worst = max(worst, abs(alt.logprob - (byToken[alt.token] ?? .infinity))) }
        }
        #expect(worst <= 1e-4, "max |Δ logprob| \(worst)")
    }

    /// If this fails, a cached sequence whose ring no longer holds the keys a rollback needs is reused
    /// anyway (attending to missing keys, silently wrong): the first turn decodes far past the point where
    /// the second departs, beyond what the ring keeps, so nothing may be reused and the output must equal a
    /// fresh prefill's.
    @Test func rollbackPastTheRingIsRefused() throws {
        let t1 = try Self.run(GenerationJob(id: 0, prompt: [1, 2, 3], nPredict: 40))
        let cached = try #require(t1.leaveCache())
        let job = GenerationJob(id: 1, prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], nPredict: 6)
        #expect(reusablePrefix(cached, for: job) == 0)
        let r = try Self.run(job, reusing: cached), f = try Self.run(job)
        #expect(r.cachedTokens == 0 && r.result.tokens == f.result.tokens)
    }

    /// If this fails, the engine does not reuse a conversation's KV on its next turn, or reports the wrong
    /// cached-token count: turn 2 resends turn 1's prompt and reply plus a new message, so all but the
    /// re-run positions come from the cache, the tokens equal those of an engine without prefix caching,
    /// and a request sharing nothing reports 0.
    @Test func secondTurnReportsCachedTokens() throws {
        let e = try EngineFixtures.engine()
        defer { e.shutdown() }
        let p1: [Int32] = (0..<30).map { Int32($0 * 7 % 300 + 2) }
        let o1 = try e.generate([InferenceRequest(prompt: p1, maxTokens: 10, ignoreEOS: true)])[0]
        #expect(o1.completion.usage.cachedTokens == 0)
        let p2 = p1 + o1.tokens + [5, 6, 7]
        let turn2 = InferenceRequest(prompt: p2, maxTokens: 10, ignoreEOS: true)
        let o2 = try e.generate([turn2])[0]
        // The cache held the prompt and 9 of the 10 generated tokens.
        #expect(o2.completion.usage.cachedTokens == 39 && o2.completion.usage.promptTokens == 43)
        #expect(o2.tokens == (try EngineFixtures.alone([turn2]))[0])
        let o3 = try e.generate([InferenceRequest(prompt: [250, 251], maxTokens: 4, ignoreEOS: true)])[0]
        #expect(o3.completion.usage.cachedTokens == 0)
    }
}

extension SequenceRun {
    /// The log-probabilities of the tokens made so far.
    func takeEmittedLogprobs() -> [TokenLogprob] { takeEmitted().compactMap(\.logprob) }
}

/// Streamed text: UTF-8 characters and stop strings split across tokens.
@Suite struct TextStreamTests {
    /// If this fails, a multi-byte character split over tokens is streamed as replacement characters: "é"
    /// (2 bytes), "€" (3) and "😀" (4) arrive one byte per token, and each must come out whole, once.
    @Test func splitCharactersComeOutWhole() {
        var s = TextStream()
        var out: [String] = []
        for b in Array("aé€😀b".utf8) { out.append(s.push([b])) }
        #expect(out.joined() + s.finish() == "aé€😀b")
        #expect(out.allSatisfy { !$0.contains("\u{FFFD}") })
        #expect(out.filter { !$0.isEmpty } == ["a", "é", "€", "😀", "b"])
    }

    /// If this fails, a stop string split across tokens is emitted (in part or whole), or text after it
    /// leaks, or text that only looked like the start of a stop string is lost.
    @Test func stopStringsAcrossTokensAreCut() {
        var s = TextStream(stopStrings: ["</answer>", "STOP"])
        var out = ""
        for piece in ["The answer", " is 4</", "ans", "wer> and more"] { out += s.push(Array(piece.utf8)) }
        #expect(out == "The answer is 4" && s.stopped && s.finish().isEmpty)
        var t = TextStream(stopStrings: ["STOP"])
        let a = t.push(Array("go ST".utf8)), b = t.push(Array("ILL".utf8))
        #expect(a == "go " && b == "STILL" && !t.stopped)
        var u = TextStream(stopStrings: ["STOP"])
        #expect(u.push(Array("end S".utf8)) == "end " && u.finish() == "S")
    }

    /// If this fails, the engine emits a stop string that spans two tokens, keeps generating after it, or
    /// ends with the wrong reason: on the embedded model (which has text), the stop string is the last two
    /// characters of one token's text and the first two of the next's.
    @Test func engineCutsStopStringsAcrossTokens() throws {
        let e = try EngineFixtures.engine("embedded")
        defer { e.shutdown() }
        guard let tok = e.tokenizer else { Issue.record("no tokenizer"); return }
        let base = InferenceRequest(prompt: e.tokenize("Hello"), maxTokens: 40, ignoreEOS: true)
        let plain = try e.generate([base])[0]
        let pieces = plain.tokens.map { String(decoding: tok.bytes(of: $0), as: UTF8.self) }
        // A boundary between two tokens with at least two plain ASCII characters either side.
        let ok = { (s: String) in s.count >= 2 && s.allSatisfy { $0.isASCII && $0.isLetter } }
        guard let i = (3..<(pieces.count - 1)).first(where: { ok(pieces[$0]) && ok(pieces[$0 + 1]) }) else {
            Issue.record("no suitable token boundary in \(pieces)")
            return
        }
        let stop = String(pieces[i].suffix(2)) + String(pieces[i + 1].prefix(2))
        var r = base
        r.stopStrings = [stop]
        let cut = try e.generate([r])[0]
        let expected = String(plain.text[..<plain.text.range(of: stop)!.lowerBound])
        #expect(cut.completion.reason == .stop)
        #expect(cut.text == expected, "stop \(stop)")
        #expect(cut.tokens == Array(plain.tokens.prefix(cut.tokens.count)) && cut.tokens.count <= i + 2)
    }
}
