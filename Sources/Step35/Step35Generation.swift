// Sequences as jobs: a prompt, how many tokens to generate and how to sample them, run one forward pass at a
// time. The single process runs jobs one after another; under a cluster every head runs its share of the
// jobs on its lanes (micro-batches), and the coordinator collects the results (Cluster/Session.swift).
//
// Dimension legend: P prompt tokens, V vocabulary.
import Foundation
import ModelKit

/// One sequence to run: a prompt and what to do after it.
public struct GenerationJob: Codable, Sendable, Equatable {
    /// Index in the request (results come back in this order).
    public var id: Int
    /// Prompt token ids (non-empty).
    public var prompt: [Int32]
    /// Tokens to generate after the prompt (0: only evaluate the prompt).
    public var nPredict: Int
    /// How to pick each token.
    public var sampling: SamplingParams
    /// Tokens that end the sequence early (end-of-generation ids), kept in the output.
    public var stop: [Int32]
    /// Keep the prompt's logits at every position ([P, V], for `switchyard logits`).
    public var promptLogits: Bool
    /// Tokens drafted per step with the MTP blocks (0: plain decoding).
    public var draft: Int
    /// Context to reserve KV memory for (0: just what the job needs), and the cache's element type.
    public var context: Int
    public var kvType: KVType
    /// The most prompt tokens per forward pass (llama.cpp's `--ubatch-size`).
    public var ubatch: Int
    /// Positions filled with random keys and values before the prompt (the bench's labelled synthetic
    /// context: attention reads a cache of that length without a prefill). 0 for real runs.
    public var syntheticFill: Int = 0

    /// Creates a job.
    public init(id: Int, prompt: [Int32], nPredict: Int, sampling: SamplingParams = SamplingParams(), stop: [Int32] = [],
                promptLogits: Bool = false, draft: Int = 0, context: Int = 0, kvType: KVType = .f32, ubatch: Int = 512) {
        self.id = id
        self.prompt = prompt
        self.nPredict = nPredict
        self.sampling = sampling
        self.stop = stop
        self.promptLogits = promptLogits
        self.draft = draft
        self.context = context
        self.kvType = kvType
        self.ubatch = ubatch
    }

    /// Positions the job's KV cache is reserved for.
    public var contextSize: Int { context > 0 ? context : syntheticFill + prompt.count + nPredict + draft + 1 }

    /// The most tokens one of the job's passes carries.
    public var maxPass: Int { max(min(ubatch, prompt.count), draft + 1, 1) }
}

/// What a job produced, with its timings.
public struct GenerationResult: Sendable, Equatable {
    /// The job's id.
    public var id: Int
    /// Generated tokens, in order (a stop token, if hit, is the last).
    public var tokens: [Int32]
    /// Prompt logits [P, V] when the job asked for them (only on the rank that ran it).
    public var logits: [Float]?
    /// Seconds spent evaluating the prompt, and decoding after it (decode steps = tokens - 1).
    public var promptSeconds: Double
    public var decodeSeconds: Double
    /// Speculative decoding: forward passes after the prompt, and per draft position how many drafts were
    /// proposed and accepted (empty without drafting).
    public var speculation: SpeculationStats

    /// Creates a result.
    public init(id: Int, tokens: [Int32], logits: [Float]? = nil, promptSeconds: Double = 0, decodeSeconds: Double = 0,
                speculation: SpeculationStats = SpeculationStats(depth: 0)) {
        self.id = id
        self.tokens = tokens
        self.logits = logits
        self.promptSeconds = promptSeconds
        self.decodeSeconds = decodeSeconds
        self.speculation = speculation
    }
}

/// Draft and acceptance counts of speculative decoding.
public struct SpeculationStats: Codable, Sendable, Equatable {
    /// Verification passes (forward passes after the prompt).
    public var steps = 0
    /// Per draft position k (0-based): drafts proposed there, and how many were accepted.
    public var drafted: [Int]
    public var accepted: [Int]

    /// Empty counts for `depth` draft positions.
    public init(depth: Int) {
        drafted = Array(repeating: 0, count: depth)
        accepted = Array(repeating: 0, count: depth)
    }

    /// Adds another sequence's counts.
    public mutating func add(_ o: SpeculationStats) {
        steps += o.steps
        for k in 0..<min(drafted.count, o.drafted.count) {
            drafted[k] += o.drafted[k]
            accepted[k] += o.accepted[k]
        }
        if o.drafted.count > drafted.count {
            drafted += o.drafted[drafted.count...]
            accepted += o.accepted[accepted.count...]
        }
    }

    /// Acceptance rate at each draft position.
    public var rates: [Double] { zip(accepted, drafted).map { $1 > 0 ? Double($0) / Double($1) : 0 } }
}

/// A job in progress: hands out the next forward pass's tokens and takes its logits. With drafting, each
/// pass after the prompt verifies [last token + drafts] at once. Greedy: a draft is kept while it equals the
/// main model's argmax, so the tokens are exactly those of plain decoding. Sampled: standard speculative
/// sampling (`Sampler.verify`), so the tokens are distributed exactly as plain sampling's.
public final class SequenceRun {
    /// The job.
    public let job: GenerationJob
    /// The sequence's KV cache.
    public let cache: Step35Cache
    /// Called with every token as it is sampled (streaming output on the rank that runs the job).
    public var onToken: ((Int32) -> Void)?
    /// Replaces the MTP drafter: given the sequence so far (prompt + generated) and a depth, returns up to
    /// that many draft tokens (an oracle in tests, or prompt lookup). Verification is the same.
    public var drafter: ((_ sequence: [Int32], _ depth: Int) -> [Int32])?
    private let model: Step35Model
    private let mtpCache: Step35MTPCache?
    private var sampler: Sampler
    /// Draws sampled drafts from the MTP distributions (its own stream, so drafting does not shift the
    /// verifier's draws).
    private var draftSampler: Sampler
    private var generated: [Int32] = []
    private var drafts: [Int32] = []
    /// Main-model hidden state (pre-norm) at the last committed position: the h paired with the next token.
    private var pendingH: [Float]
    /// The distribution each draft was drawn from (nil: deterministic drafter or greedy).
    private var draftDists: [TokenDistribution?] = []
    private var logits: [Float]?
    private var started = false, finished = false
    /// Prompt tokens already run (the prompt goes in chunks of at most `ubatch`).
    private var promptDone = 0, chunk = 0
    private var promptSeconds = 0.0, decodeSeconds = 0.0
    private var passStart = DispatchTime.now()
    private var stats: SpeculationStats

    /// Starts a job on `model` (reserving cache rows for the prompt, every generated token and the drafts).
    public init(_ job: GenerationJob, model: Step35Model) {
        self.job = job
        self.model = model
        cache = model.makeCache(context: job.contextSize, type: job.kvType, maxPass: job.maxPass)
        mtpCache = job.draft > 0 ? model.makeMTPCache(context: job.contextSize, type: job.kvType, maxPass: job.maxPass) : nil
        if job.syntheticFill > 0 { cache.fillSynthetic(upTo: job.syntheticFill) }
        sampler = Sampler(job.sampling)
        var ds = job.sampling
        ds.seed ^= 0x9E37_79B9_7F4A_7C15
        draftSampler = Sampler(ds)
        stats = SpeculationStats(depth: job.draft)
        pendingH = Array(repeating: 0, count: model.config.embeddingLength)
    }

    /// Whether the job has nothing left to run.
    public var isFinished: Bool { finished }

    /// Whether the next pass is (part of) the prompt.
    public var isPrefilling: Bool { !started && !finished }

    /// Which logits the next pass must return.
    public var selection: LogitsSelection { (!started && job.promptLogits) || (started && !drafts.isEmpty) ? .all : .last }

    /// The tokens of the next forward pass (the prompt, then the last token and its drafts), or nil when done.
    public func nextInput() -> [Int32]? {
        guard !finished else { return nil }
        passStart = DispatchTime.now()
        if !started {
            chunk = min(job.ubatch, job.prompt.count - promptDone)
            return Array(job.prompt[promptDone..<(promptDone + chunk)])
        }
        return generated.last.map { [$0] + drafts }
    }

    /// Takes the logits ([rows, V]) and final hidden states ([T, D], before the output norm) of the pass
    /// `nextInput` asked for: emits tokens, rolls back rejected drafts, drafts the next ones.
    public func consume(_ out: [Float], hidden: [Float], vocab: Int) {
        let d = model.config.embeddingLength
        if !started {
            let from = promptDone
            promptDone += chunk
            if job.promptLogits { logits = (logits ?? []) + out }
            // Every drafting head sees the committed pairs (h_{q-1}, x_q) of this chunk.
            catchUp(hidden: hidden, tokens: Array(job.prompt[from..<promptDone]), from: job.syntheticFill + from)
            guard promptDone == job.prompt.count else {
                promptSeconds += elapsed()
                return
            }
            started = true
            if job.nPredict > 0 { emit(Int32(model.timed(.sampling) { sampler.sample(Array(out.suffix(vocab))) })) } else { finished = true }
            if !finished { draft(after: generated.last!, at: job.syntheticFill + promptDone) }
            promptSeconds += elapsed()
            return
        }
        let base = cache.nextPosition - (drafts.count + 1)  // position of the pass's first token
        let input = [generated.last!] + drafts
        let n = drafts.count
        var kept = 0
        stats.steps += 1
        let greedy = job.sampling.temperature <= 0
        for i in 0...n {
            let row = Array(out[(i * vocab)..<((i + 1) * vocab)])
            guard i < n else {
                emit(Int32(model.timed(.sampling) { sampler.sample(row) }))  // every draft kept: the last row gives one more
                break
            }
            stats.drafted[i] += 1
            let token: Int32, ok: Bool
            if greedy {
                token = Int32(model.timed(.sampling) { Sampler.argmax(row) })
                ok = token == drafts[i]
            } else {
                let v = model.timed(.sampling) { sampler.verify(draft: Int(drafts[i]), p: sampler.distribution(row), q: draftDists[i]) }
                (token, ok) = (Int32(v.token), v.accepted)
            }
            emit(token)
            guard ok else { break }
            stats.accepted[i] += 1
            kept += 1
            if finished { break }
        }
        // Keep the cache rows of the last token and the accepted drafts; drop the rejected drafts' rows.
        cache.truncate(to: base + kept + 1)
        drafts = []
        if !finished {
            // The pass's committed tokens: the last token and the accepted drafts, at base...base + kept.
            let committed = Array(input.prefix(kept + 1))
            model.timed(.mtp) { catchUp(hidden: Array(hidden[0..<((kept + 1) * d)]), tokens: committed, from: base) }
            model.timed(.mtp) { draft(after: generated.last!, at: base + kept + 1) }
        }
        decodeSeconds += elapsed()
    }

    private func elapsed() -> Double { secondsSince(passStart) }

    private func emit(_ t: Int32) {
        generated.append(t)
        onToken?(t)
        if generated.count >= job.nPredict || job.stop.contains(t) { finished = true }
    }

    /// Feeds committed tokens x_q at positions from... to every drafting head as the pairs (h_{q-1}, x_q) at
    /// position q (llama.cpp's `draft-mtp` pairing, `common/speculative.cpp`): h_{q-1} is the main model's
    /// pre-norm hidden state one position back (`pendingH` for the first, zeros before position 0), so each
    /// head's cache holds the real sequence. Leaves the last row of `hidden` as the next `pendingH`.
    private func catchUp(hidden: [Float], tokens: [Int32], from: Int) {
        let d = model.config.embeddingLength
        defer { pendingH = Array(hidden.suffix(d)) }
        guard let mc = mtpCache, drafter == nil, !tokens.isEmpty else { return }
        let h = pendingH + hidden.prefix((tokens.count - 1) * d)  // [T, D]: h_{q-1} for each x_q
        let pos = (0..<tokens.count).map { Int32(from + $0) }
        for k in 0..<min(job.draft, model.mtp.count) {
            _ = model.mtpStep(k, hidden: h, tokens: tokens, positions: pos, cache: mc)
        }
    }

    /// Drafts up to `draft` tokens after `last` (at position `pos0`, not yet run): head k runs the rows
    /// (pendingH, last), (h'_0, d_1), ..., (h'_{k-1}, d_k) at pos0..., where h'_j is head j's output, after
    /// dropping its earlier draft rows, and its last row's logits give d_{k+1}. Never past nPredict.
    private func draft(after last: Int32, at pos0: Int) {
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
        // Greedy drafts the argmax; sampling draws from the MTP head's distribution under the same settings.
        func pick(_ logits: [Float]) -> Int32 {
            if job.sampling.temperature <= 0 {
                draftDists.append(nil)
                return Int32(Sampler.argmax(logits))
            }
            let q = draftSampler.distribution(logits)
            draftDists.append(q)
            return Int32(draftSampler.draw(q))
        }
        let d = model.config.embeddingLength
        var chainH = pendingH, toks = [last]
        for k in 0..<depth {
            let pos = (0...k).map { Int32(pos0 + $0) }
            let (l, u) = model.mtpStep(k, hidden: chainH, tokens: toks, positions: pos, cache: mc)
            let next = pick(l)
            drafts.append(next)
            chainH += u.suffix(d)
            toks.append(next)
        }
    }

    /// The result so far.
    public var result: GenerationResult {
        GenerationResult(id: job.id, tokens: generated, logits: logits, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds,
                         speculation: stats)
    }
}

extension Step35Model {
    /// Runs jobs in this process with up to `parallel` sequences decoding together in one pass each step
    /// (`BatchedRuns`); results in job order.
    public func run(_ jobs: [GenerationJob], parallel: Int, onToken: ((Int, Int32) -> Void)? = nil) throws -> [GenerationResult] {
        let runs = BatchedRuns(jobs, parallel: parallel, model: self, onToken: onToken)
        while let pass = runs.nextPass() { try runs.run(pass, experts: nil) }
        return runs.results
    }

    /// Runs a job to the end in this process (one forward pass per generated token).
    public func run(_ job: GenerationJob, onToken: ((Int32) -> Void)? = nil) throws -> GenerationResult {
        let s = SequenceRun(job, model: self)
        s.onToken = onToken
        while let input = s.nextInput() {
            let (logits, hidden) = try forwardHidden(input, cache: s.cache, logits: s.selection)
            s.consume(logits, hidden: hidden, vocab: config.vocabSize)
        }
        return s.result
    }
}
