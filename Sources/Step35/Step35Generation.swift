// Sequences as jobs: a prompt, how many tokens to generate and how to sample them, run one forward pass at a
// time by a scheduler (the engine's, Sources/Engine). A sequence may start from another's KV cache (prefix
// reuse: an agent resends its conversation) and leaves its cache behind when it ends.
//
// Dimension legend: P prompt tokens, V vocabulary, D hidden.
import Foundation
import ModelKit

/// One sequence to run: a prompt and what to do after it.
public struct GenerationJob: Codable, Sendable, Equatable {
    /// The request's id (events and results carry it).
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
    /// Log-probabilities to return with each token: nil none, 0 the token's own, n also the n most likely.
    public var logprobs: Int?

    /// Creates a job.
    public init(id: Int, prompt: [Int32], nPredict: Int, sampling: SamplingParams = SamplingParams(), stop: [Int32] = [],
                promptLogits: Bool = false, draft: Int = 0, context: Int = 0, kvType: KVType = .f32, ubatch: Int = 512,
                logprobs: Int? = nil) {
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
        self.logprobs = logprobs
    }

    /// Positions the job's KV cache is reserved for.
    public var contextSize: Int { context > 0 ? context : syntheticFill + prompt.count + nPredict + draft + 1 }

    /// The most tokens one of the job's passes carries.
    public var maxPass: Int { max(min(ubatch, prompt.count), draft + 1, 1) }
}

/// A token's log-probability under the model (log-softmax of the raw logits), with the most likely
/// alternatives at that position when asked for.
public struct TokenLogprob: Codable, Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
    /// The most likely tokens at this position, most likely first (token, log-probability).
    public var top: [Alternative]
    /// One alternative.
    public struct Alternative: Codable, Sendable, Equatable {
        public var token: Int32
        public var logprob: Float
    }
}

/// Why a sequence stopped on its own.
public enum SequenceEnd: String, Codable, Sendable {
    /// An end-of-generation token.
    case stop
    /// The token limit.
    case length
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
    /// Prompt tokens whose KV came from a cached sequence (not prefilled).
    public var cachedTokens: Int

    /// Creates a result.
    public init(id: Int, tokens: [Int32], logits: [Float]? = nil, promptSeconds: Double = 0, decodeSeconds: Double = 0,
                speculation: SpeculationStats = SpeculationStats(depth: 0), cachedTokens: Int = 0) {
        self.id = id
        self.tokens = tokens
        self.logits = logits
        self.promptSeconds = promptSeconds
        self.decodeSeconds = decodeSeconds
        self.speculation = speculation
        self.cachedTokens = cachedTokens
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

/// The KV state a sequence leaves behind: its caches and the tokens whose keys and values they hold
/// (positions 0..<tokens.count of the main cache; the MTP caches pair the same tokens).
public final class CachedSequence: @unchecked Sendable {
    public let cache: Step35Cache
    public let mtpCache: Step35MTPCache?
    public let tokens: [Int32]
    /// Per MTP block: positions below this hold the sequence's committed pairs (the last pass's accepted
    /// drafts have none: the run ended before they were fed to the heads; a block the run did not use, none).
    public let mtpFrontier: [Int]
    init(cache: Step35Cache, mtpCache: Step35MTPCache?, tokens: [Int32], mtpFrontier: [Int]) {
        self.cache = cache
        self.mtpCache = mtpCache
        self.tokens = tokens
        self.mtpFrontier = mtpFrontier
    }

    /// Bytes its caches hold.
    public var byteCount: Int { cache.byteCount + (mtpCache?.byteCount ?? 0) }

    /// Whether a job can run in these caches as they are (no copy into a larger reservation).
    public func fitsInPlace(_ job: GenerationJob) -> Bool {
        cache.context >= job.contextSize && cache.maxPass >= job.maxPass && cache.type == job.kvType
            && (job.draft == 0 || mtpCache != nil)
    }
}

/// Main-model positions a job can take over from `cached`, given what the caches still hold: the common
/// prefix, less the prompt's last token (its logits are needed), and with drafting one more (the MTP heads
/// pair each token with the hidden state one position back, which the re-run token gives). 0: none.
public func reusablePrefix(_ cached: CachedSequence, for job: GenerationJob) -> Int {
    guard job.syntheticFill == 0, !job.promptLogits, cached.cache.type == job.kvType, job.draft == 0 || cached.mtpCache != nil else {
        return 0
    }
    let common = zip(cached.tokens, job.prompt).prefix { $0 == $1 }.count
    // With drafting, the blocks the job uses must hold committed pairs up to k.
    let blocks = 0..<min(job.draft, cached.mtpFrontier.count)
    let k = min(common, job.prompt.count - 1, blocks.map { cached.mtpFrontier[$0] }.min() ?? Int.max)
    let main = job.draft > 0 ? k - 1 : k
    guard main >= 1, cached.cache.canRollBack(to: main) else { return 0 }
    if job.draft > 0, !blocks.allSatisfy({ cached.mtpCache!.layers[$0].canRollBack(to: k) }) { return 0 }
    return main
}
