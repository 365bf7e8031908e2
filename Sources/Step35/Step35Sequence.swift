// A job in progress: hands out the next forward pass's tokens and takes its logits. With drafting, each
// pass after the prompt verifies [last token + drafts] at once. Greedy: a draft is kept while it equals the
// main model's argmax, so the tokens are exactly those of plain decoding. Sampled: standard speculative
// sampling (`Sampler.verify`), so the tokens are distributed exactly as plain sampling's.
//
// References: llama.cpp common/speculative.cpp `draft-mtp` (the pairing (h_{q-1}, x_q) at position q);
// ../shared/research/step35-architecture.md §6.
//
// Dimension legend: P prompt tokens, V vocabulary, D hidden.
import Foundation
import ModelKit

/// A generated token as the scheduler receives it.
public struct EmittedToken: Sendable, Equatable, Codable {
    public var token: Int32
    public var logprob: TokenLogprob?
}

/// One sequence being run.
public final class SequenceRun {
    /// The job.
    public let job: GenerationJob
    /// The sequence's KV cache.
    public let cache: Step35Cache
    /// Replaces the MTP drafter: given the sequence so far (prompt + generated) and a depth, returns up to
    /// that many draft tokens (an oracle in tests, or prompt lookup). Verification is the same.
    public var drafter: ((_ sequence: [Int32], _ depth: Int) -> [Int32])?
    /// Why it stopped on its own (nil while running).
    public private(set) var end: SequenceEnd?
    /// Prompt positions taken over from a cached sequence.
    public let cachedTokens: Int
    let model: Step35Model
    private let mtpCache: Step35MTPCache?
    private var sampler: Sampler
    /// Draws sampled drafts from the MTP distributions (its own stream, so drafting does not shift the
    /// verifier's draws).
    private var draftSampler: Sampler
    private var generated: [Int32] = []
    private var emitted: [EmittedToken] = []
    private var drafts: [Int32] = []
    /// Main-model hidden state (pre-norm) at the last committed position: the h paired with the next token.
    private var pendingH: [Float]
    /// The distribution each draft was drawn from (nil: deterministic drafter or greedy).
    private var draftDists: [TokenDistribution?] = []
    private var logits: [Float]?
    private var started = false
    /// Prompt tokens already run (the prompt goes in chunks of at most `ubatch`).
    private var promptDone = 0, chunk = 0
    /// After a reuse with drafting, the first chunk re-runs one cached token whose MTP pair is cached.
    private var skipFirstPair = false
    /// Per MTP block: positions below this hold committed pairs (above it: drafts, or nothing).
    private var mtpFrontier: [Int]
    private var promptSeconds = 0.0, decodeSeconds = 0.0
    private var passStart = DispatchTime.now()
    private var stats: SpeculationStats

    /// Starts a job on `model`, in fresh caches (reserving rows for the prompt, every generated token and the
    /// drafts) or continuing the caches of `cached` from `reusablePrefix(cached, job)` positions on.
    public init(_ job: GenerationJob, model: Step35Model, reusing cached: CachedSequence? = nil) {
        self.job = job
        self.model = model
        let keep = cached.map { reusablePrefix($0, for: job) } ?? 0
        if let c = cached, c.fitsInPlace(job) {
            cache = c.cache
            mtpCache = job.draft > 0 ? c.mtpCache : nil
            cache.truncate(to: keep)
            mtpCache?.truncate(to: keep > 0 ? keep + 1 : 0)
        } else {
            cache = model.makeCache(context: job.contextSize, type: job.kvType, maxPass: job.maxPass)
            mtpCache = job.draft > 0 ? model.makeMTPCache(context: job.contextSize, type: job.kvType, maxPass: job.maxPass) : nil
            if let c = cached, keep > 0 {
                cache.copyPrefix(keep, from: c.cache)
                if let m = mtpCache, let from = c.mtpCache { m.copyPrefix(keep + 1, from: from) }
            }
        }
        cachedTokens = keep
        promptDone = keep
        mtpFrontier = Array(repeating: keep > 0 && mtpCache != nil ? keep + 1 : 0, count: model.mtp.count)
        skipFirstPair = keep > 0 && mtpCache != nil
        if job.syntheticFill > 0 { cache.fillSynthetic(upTo: job.syntheticFill) }
        sampler = Sampler(job.sampling)
        var ds = job.sampling
        ds.seed ^= 0x9E37_79B9_7F4A_7C15
        draftSampler = Sampler(ds)
        stats = SpeculationStats(depth: job.draft)
        pendingH = Array(repeating: 0, count: model.config.embeddingLength)
    }

    /// Whether the job has nothing left to run.
    public var isFinished: Bool { end != nil }

    /// Whether the next pass is (part of) the prompt.
    public var isPrefilling: Bool { !started && end == nil }

    /// Which logits the next pass must return.
    public var selection: LogitsSelection { (!started && job.promptLogits) || (started && !drafts.isEmpty) ? .all : .last }

    /// The tokens of the next forward pass (the prompt, then the last token and its drafts), or nil when done.
    public func nextInput() -> [Int32]? {
        guard end == nil else { return nil }
        passStart = DispatchTime.now()
        if !started {
            chunk = min(job.ubatch, job.prompt.count - promptDone)
            return Array(job.prompt[promptDone..<(promptDone + chunk)])
        }
        return generated.last.map { [$0] + drafts }
    }

    /// Tokens generated since the last call, in order.
    public func takeEmitted() -> [EmittedToken] {
        defer { emitted = [] }
        return emitted
    }

    /// Takes the logits ([rows, V]) and final hidden states ([T, D], before the output norm) of the pass
    /// `nextInput` asked for: emits tokens, rolls back rejected drafts, drafts the next ones.
    public func consume(_ out: [Float], hidden: [Float], vocab: Int, _ ctx: PassContext = PassContext()) throws {
        if !started { return try consumePrompt(out, hidden: hidden, vocab: vocab, ctx) }
        let d = model.config.embeddingLength
        let base = cache.nextPosition - (drafts.count + 1)  // position of the pass's first token
        let input = [generated.last!] + drafts
        let n = drafts.count
        var kept = 0
        stats.steps += 1
        for i in 0...n {
            let row = Array(out[(i * vocab)..<((i + 1) * vocab)])
            guard i < n else {
                emit(ctx.timed(.sampling) { pick(row) }, row: row)  // every draft kept: the last row gives one more
                break
            }
            stats.drafted[i] += 1
            let (token, ok) = ctx.timed(.sampling) { check(row, draft: i) }
            emit(token, row: row)
            guard ok else { break }
            stats.accepted[i] += 1
            kept += 1
            if isFinished { break }
        }
        // Keep the cache rows of the last token and the accepted drafts; drop the rejected drafts' rows.
        cache.truncate(to: base + kept + 1)
        drafts = []
        if !isFinished {
            // The pass's committed tokens: the last token and the accepted drafts, at base...base + kept.
            let committed = Array(input.prefix(kept + 1))
            try ctx.timed(.mtp) { try catchUp(hidden: Array(hidden[0..<((kept + 1) * d)]), tokens: committed, from: base, ctx) }
            try ctx.timed(.mtp) { try draft(after: generated.last!, at: base + kept + 1, ctx) }
        }
        decodeSeconds += elapsed()
    }

    private func consumePrompt(_ out: [Float], hidden: [Float], vocab: Int, _ ctx: PassContext) throws {
        let d = model.config.embeddingLength
        var from = promptDone
        promptDone += chunk
        if job.promptLogits { logits = (logits ?? []) + out }
        // Every drafting head sees the committed pairs (h_{q-1}, x_q) of this chunk; a re-run cached token's
        // pair is in the MTP cache already, and its hidden state is the next pair's h.
        var h = hidden
        if skipFirstPair {
            skipFirstPair = false
            pendingH = Array(h[0..<d])
            h.removeFirst(d)
            from += 1
        }
        try catchUp(hidden: h, tokens: Array(job.prompt[from..<promptDone]), from: job.syntheticFill + from, ctx)
        guard promptDone == job.prompt.count else {
            promptSeconds += elapsed()
            return
        }
        started = true
        if job.nPredict > 0 {
            let row = Array(out.suffix(vocab))
            emit(ctx.timed(.sampling) { pick(row) }, row: row)
        } else {
            end = .length
        }
        if !isFinished { try draft(after: generated.last!, at: job.syntheticFill + promptDone, ctx) }
        promptSeconds += elapsed()
    }

    /// The next token from a row of logits (penalties over the generated tokens, then the sampler).
    private func pick(_ row: [Float]) -> Int32 {
        let r = sampler.penalized(row, history: generated)
        return Int32(job.sampling.temperature <= 0 ? Sampler.argmax(r) : sampler.sample(r))
    }

    /// Verifies draft i against its row: the token to emit and whether it is the draft.
    private func check(_ row: [Float], draft i: Int) -> (Int32, Bool) {
        let r = sampler.penalized(row, history: generated)
        if job.sampling.temperature <= 0 {
            let t = Int32(Sampler.argmax(r))
            return (t, t == drafts[i])
        }
        let v = sampler.verify(draft: Int(drafts[i]), p: sampler.distribution(r), q: draftDists[i])
        return (Int32(v.token), v.accepted)
    }

    private func elapsed() -> Double { secondsSince(passStart) }

    private func emit(_ t: Int32, row: [Float]) {
        generated.append(t)
        emitted.append(EmittedToken(token: t, logprob: job.logprobs.map { Self.logprob(of: t, in: row, top: $0) }))
        if job.stop.contains(t) { end = .stop } else if generated.count >= job.nPredict { end = .length }
    }

    /// Log-softmax of the raw logits at `t`, and the `top` most likely tokens.
    static func logprob(of t: Int32, in row: [Float], top: Int) -> TokenLogprob {
        let m = row.max() ?? 0
        let lse = m + log(row.reduce(Float(0)) { $0 + expf($1 - m) })
        var best: [(Int, Float)] = []
        if top > 0 {
            best = Array(row.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
                .prefix(top).map { ($0.offset, $0.element) })
        }
        return TokenLogprob(token: t, logprob: row[Int(t)] - lse,
                            top: best.map { TokenLogprob.Alternative(token: Int32($0.0), logprob: $0.1 - lse) })
    }

    /// Feeds committed tokens x_q at positions from... to every drafting head as the pairs (h_{q-1}, x_q) at
    /// position q (llama.cpp's `draft-mtp` pairing): h_{q-1} is the main model's pre-norm hidden state one
    /// position back (`pendingH` for the first, zeros before position 0), so each head's cache holds the real
    /// sequence. Leaves the last row of `hidden` as the next `pendingH`.
    private func catchUp(hidden: [Float], tokens: [Int32], from: Int, _ ctx: PassContext) throws {
        let d = model.config.embeddingLength
        guard !tokens.isEmpty else { return }
        // Only a drafting head pairs with it (keeping it otherwise would hold the pass's buffer: a copy next pass).
        defer { if mtpCache != nil { pendingH = Array(hidden.suffix(d)) } }
        guard let mc = mtpCache, drafter == nil else { return }
        let h = pendingH + hidden.prefix((tokens.count - 1) * d)  // [T, D]: h_{q-1} for each x_q
        let pos = (0..<tokens.count).map { Int32(from + $0) }
        for k in 0..<min(job.draft, model.mtp.count) {
            _ = try model.mtpStep(k, hidden: h, tokens: tokens, positions: pos, cache: mc, ctx)
            mtpFrontier[k] = from + tokens.count
        }
    }

    /// Drafts up to `draft` tokens after `last` (at position `pos0`, not yet run): head k runs the rows
    /// (pendingH, last), (h'_0, d_1), ..., (h'_{k-1}, d_k) at pos0..., where h'_j is head j's output, after
    /// dropping its earlier draft rows, and its last row's logits give d_{k+1}. Never past nPredict.
    private func draft(after last: Int32, at pos0: Int, _ ctx: PassContext) throws {
        drafts = []
        draftDists = []
        let depth = min(job.draft, job.nPredict - generated.count)
        guard depth > 0 else { return }
        if let custom = drafter {
            drafts = Array(custom(job.prompt + generated, depth).prefix(depth))
            draftDists = Array(repeating: nil, count: drafts.count)
            return
        }
        guard let mc = mtpCache else { return }
        let d = model.config.embeddingLength
        var chainH = pendingH, toks = [last]
        for k in 0..<depth {
            let pos = (0...k).map { Int32(pos0 + $0) }
            let (l, u) = try model.mtpStep(k, hidden: chainH, tokens: toks, positions: pos, cache: mc, ctx)
            let next = pickDraft(l)
            mtpFrontier[k] = pos0 + 1  // each head's first row is the committed pair (h, last)
            drafts.append(next)
            chainH += u.suffix(d)
            toks.append(next)
        }
    }

    /// Greedy drafts the argmax; sampling draws from the MTP head's distribution under the same settings.
    private func pickDraft(_ logits: [Float]) -> Int32 {
        if job.sampling.temperature <= 0 {
            draftDists.append(nil)
            return Int32(Sampler.argmax(logits))
        }
        let q = draftSampler.distribution(logits)
        draftDists.append(q)
        return Int32(draftSampler.draw(q))
    }

    /// The result so far.
    public var result: GenerationResult {
        GenerationResult(id: job.id, tokens: generated, logits: logits, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds,
                         speculation: stats, cachedTokens: cachedTokens)
    }

    /// The caches and the tokens they hold, for a later sequence to continue (nil for a synthetic context).
    public func leaveCache() -> CachedSequence? {
        guard job.syntheticFill == 0 else { return nil }
        let n = cache.nextPosition
        // Draft pairs past the frontier were made from draft states: drop them so no later run mistakes them
        // for the sequence's own.
        if let m = mtpCache { for (l, f) in zip(m.layers, mtpFrontier) { l.truncate(to: f) } }
        return CachedSequence(cache: cache, mtpCache: mtpCache, tokens: Array((job.prompt + generated).prefix(n)),
                              mtpFrontier: mtpCache == nil ? [] : mtpFrontier)
    }
}
