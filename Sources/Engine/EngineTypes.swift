// What goes into the engine and what comes out: requests, streamed events, usage, and the typed errors a
// front end maps to its own (a CLI message and exit status, an HTTP 400/503).
import Foundation
import ModelKit
import Step35

/// One generation request: prompt tokens and how to continue them.
public struct InferenceRequest: Sendable {
    /// Prompt token ids (non-empty, inside the vocabulary).
    public var prompt: [Int32]
    /// Sampling: temperature, top-k, top-p, min-p, seed, presence and frequency penalties.
    public var sampling: SamplingParams
    /// Most tokens to generate (nil: until the context limit).
    public var maxTokens: Int?
    /// Token ids that end generation (kept in the output); the engine adds the model's end-of-generation ids
    /// unless `ignoreEOS`.
    public var stopTokens: [Int32]
    /// Strings that end generation when they appear in the text (not emitted), matched across tokens.
    public var stopStrings: [String]
    /// Generate past the model's end-of-generation tokens.
    public var ignoreEOS: Bool
    /// Tokens drafted per step with the MTP blocks (0: plain decoding).
    public var draft: Int
    /// Log-probabilities with each token: nil none, 0 the token's own, n also the n most likely.
    public var logprobs: Int?
    /// Keep every prompt position's logits (`switchyard logits`); such a request is never served from cache.
    public var promptLogits: Bool
    /// Positions of random keys and values before the prompt (the bench's labelled synthetic context).
    public var syntheticFill: Int

    /// Creates a request.
    public init(prompt: [Int32], sampling: SamplingParams = SamplingParams(), maxTokens: Int? = nil, stopTokens: [Int32] = [],
                stopStrings: [String] = [], ignoreEOS: Bool = false, draft: Int = 0, logprobs: Int? = nil,
                promptLogits: Bool = false, syntheticFill: Int = 0) {
        self.prompt = prompt
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
        self.ignoreEOS = ignoreEOS
        self.draft = draft
        self.logprobs = logprobs
        self.promptLogits = promptLogits
        self.syntheticFill = syntheticFill
    }
}

/// Why a request ended.
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `maxTokens` or the context limit.
    case length
    /// `cancel(id)`, or the client went away.
    case cancelled
    /// The engine could not finish it (a lost rank, an internal failure); `Completion.error` says why.
    case error
}

/// Counts and timings of one request.
public struct Usage: Sendable, Equatable {
    /// Prompt tokens, of which `cachedTokens` came from a cached sequence (not prefilled).
    public var promptTokens = 0, cachedTokens = 0
    /// Generated tokens (a stop string's tokens included, as llama-server counts them).
    public var completionTokens = 0
    /// Seconds queued before admission, from admission to the first token, prefilling, and decoding after it.
    public var queueSeconds = 0.0, timeToFirstToken = 0.0, promptSeconds = 0.0, decodeSeconds = 0.0
    /// Speculative decoding's counts (empty without drafting).
    public var speculation = SpeculationStats(depth: 0)
    /// Creates empty usage.
    public init() {}
}

/// Tokens produced in one pass for one request, and the text they complete.
public struct TokenEvent: Sendable {
    /// Token ids, in order.
    public var tokens: [Int32]
    /// Text that is now final: whole UTF-8 characters, with any possible stop-string prefix held back.
    public var text: String
    /// Log-probabilities per token, when asked for.
    public var logprobs: [TokenLogprob]
    /// When the engine produced them (monotonic nanoseconds, `DispatchTime.now().uptimeNanoseconds`).
    public var time: UInt64

    /// An event (front ends that splice text into a stream, such as forced tool-call openings, make these).
    public init(tokens: [Int32], text: String, logprobs: [TokenLogprob] = [], time: UInt64) {
        self.tokens = tokens
        self.text = text
        self.logprobs = logprobs
        self.time = time
    }
}

/// The end of a request.
public struct Completion: Sendable {
    public var reason: FinishReason
    public var usage: Usage
    /// The error's message when `reason` is `.error`.
    public var error: String?
    /// Prompt logits [P, V] when the request asked for them.
    public var promptLogits: [Float]?
    /// The text held back to the end (an unfinished character, or a stop-string prefix that never completed).
    public var text: String
    /// The stop string that ended the request, if one did.
    public var stopString: String?

    /// A completion (front ends that combine several requests into one answer make these).
    public init(reason: FinishReason, usage: Usage, error: String? = nil, promptLogits: [Float]? = nil, text: String = "", stopString: String? = nil) {
        self.reason = reason
        self.usage = usage
        self.error = error
        self.promptLogits = promptLogits
        self.text = text
        self.stopString = stopString
    }
}

/// One event of a request's stream: tokens as they are made, then exactly one `finished`.
public enum EngineEvent: Sendable {
    case tokens(TokenEvent)
    case finished(Completion)
}

/// Why the engine refused a request or could not start. Each case says whether it is the client's doing
/// (an HTTP 400), a temporary condition (503) or the engine's failure.
public enum EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    case emptyPrompt
    case tokenOutsideVocabulary(token: Int32, vocabulary: Int)
    /// The prompt plus the tokens asked for exceed the context a sequence may have.
    case contextTooSmall(needed: Int, context: Int)
    /// The sequence's KV cache is larger than the whole KV budget: it could never be admitted.
    case kvDoesNotFit(neededBytes: Int, budgetBytes: Int, positions: Int)
    case draftTooDeep(asked: Int, mtpBlocks: Int)
    case queueFull(limit: Int)
    case invalidParameter(name: String, reason: String)
    /// The engine stopped (shut down, or a rank was lost) and takes no more requests.
    case stopped(String)
    /// The model, the files or the cluster could not be set up.
    case setup(String)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt is empty"
        case .tokenOutsideVocabulary(let t, let v): "token id \(t) is outside the vocabulary (0..<\(v))"
        case .contextTooSmall(let n, let c):
            "the request needs \(n) positions (prompt + tokens to generate + drafts) but a sequence may have at most \(c) (--ctx-size)"
        case .kvDoesNotFit(let need, let budget, let pos):
            String(format: "a %d-position sequence needs %.2f MiB of KV cache but the whole KV budget is %.2f MiB (--kv-budget / --ctx-size)",
                   pos, Double(need) / 1_048_576, Double(budget) / 1_048_576)
        case .draftTooDeep(let a, let m): "--draft \(a) needs \(a) MTP blocks; this model has \(m) (step35.nextn_predict_layers)"
        case .queueFull(let n): "the request queue is full (\(n) waiting, --max-queue); try again later"
        case .invalidParameter(let name, let reason): "\(name): \(reason)"
        case .stopped(let why): "the engine has stopped: \(why)"
        case .setup(let why): why
        }
    }

    /// Whether the request itself is at fault (HTTP 400), as opposed to the engine's state.
    public var isClientError: Bool {
        switch self {
        case .emptyPrompt, .tokenOutsideVocabulary, .contextTooSmall, .kvDoesNotFit, .draftTooDeep, .invalidParameter: true
        case .queueFull, .stopped, .setup: false
        }
    }
}
