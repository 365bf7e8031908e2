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

    /// Creates a job.
    public init(id: Int, prompt: [Int32], nPredict: Int, sampling: SamplingParams = SamplingParams(), stop: [Int32] = [],
                promptLogits: Bool = false) {
        self.id = id
        self.prompt = prompt
        self.nPredict = nPredict
        self.sampling = sampling
        self.stop = stop
        self.promptLogits = promptLogits
    }
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

    /// Creates a result.
    public init(id: Int, tokens: [Int32], logits: [Float]? = nil, promptSeconds: Double = 0, decodeSeconds: Double = 0) {
        self.id = id
        self.tokens = tokens
        self.logits = logits
        self.promptSeconds = promptSeconds
        self.decodeSeconds = decodeSeconds
    }
}

/// A job in progress: hands out the next forward pass's tokens and takes its logits.
public final class SequenceRun {
    /// The job.
    public let job: GenerationJob
    /// The sequence's KV cache.
    public let cache: Step35Cache
    /// Called with every token as it is sampled (streaming output on the rank that runs the job).
    public var onToken: ((Int32) -> Void)?
    private var sampler: Sampler
    private var generated: [Int32] = []
    private var logits: [Float]?
    private var started = false, finished = false
    private var promptSeconds = 0.0, decodeSeconds = 0.0
    private var passStart = DispatchTime.now()

    /// Starts a job on `model` (reserving cache rows for the prompt and every generated token).
    public init(_ job: GenerationJob, model: Step35Model) {
        self.job = job
        cache = model.makeCache(capacity: job.prompt.count + job.nPredict)
        sampler = Sampler(job.sampling)
    }

    /// Whether the job has nothing left to run.
    public var isFinished: Bool { finished }

    /// Which logits the next pass must return.
    public var selection: LogitsSelection { !started && job.promptLogits ? .all : .last }

    /// The tokens of the next forward pass (the prompt, then each sampled token), or nil when done.
    public func nextInput() -> [Int32]? {
        guard !finished else { return nil }
        passStart = DispatchTime.now()
        if !started { return job.prompt }
        return generated.last.map { [$0] }
    }

    /// Takes the logits of the pass `nextInput` asked for and samples the next token.
    public func consume(_ out: [Float], vocab: Int) {
        let dt = Double(DispatchTime.now().uptimeNanoseconds - passStart.uptimeNanoseconds) / 1e9
        if !started {
            started = true
            promptSeconds = dt
            if job.promptLogits { logits = out }
        } else {
            decodeSeconds += dt
        }
        guard generated.count < job.nPredict else { finished = true; return }
        let next = Int32(sampler.sample(Array(out.suffix(vocab))))
        generated.append(next)
        onToken?(next)
        if generated.count == job.nPredict || job.stop.contains(next) { finished = true }
    }

    /// The result so far.
    public var result: GenerationResult {
        GenerationResult(id: job.id, tokens: generated, logits: logits, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds)
    }
}

extension Step35Model {
    /// Runs a job to the end in this process (one forward pass per generated token).
    public func run(_ job: GenerationJob, onToken: ((Int32) -> Void)? = nil) throws -> GenerationResult {
        let s = SequenceRun(job, model: self)
        s.onToken = onToken
        while let input = s.nextInput() {
            s.consume(try forward(input, cache: s.cache, logits: s.selection), vocab: config.vocabSize)
        }
        return s.result
    }
}
