// What every chat route shares: the Step 3.5 prompt from messages and tools (the native template, after
// llama.cpp's StepFun preprocessing), its tokens, sampling fields read from a request body, and a request's
// run through the engine folded into parsed output (reasoning, content, tool calls) with usage.
import Chat
import Engine
import Foundation
import ModelKit
import Step35
import Tokenizer

/// The engine as the HTTP routes see it.
public final class ChatService: Sendable {
    public let engine: Engine
    /// Names a request may use for the model (the alias first).
    public let modelNames: [String]
    /// The BOS token's text (the template writes it first).
    let bosText: String
    /// Metrics fed by every finished request (nil: `--metrics` off).
    public let metrics: ServerMetrics?
    /// MTP draft depth of every request (`--draft`).
    public let draft: Int
    /// Totals over finished requests (the web UI's cluster panel).
    let tally = ServedTally()
    /// Token bytes for constrained steps (forced tool names).
    let vocabulary: VocabularyBytes
    /// Most reasoning tokens per request unless the request says (`--reasoning-budget`; nil unlimited).
    public let reasoningBudget: Int?
    /// Most tools one request may offer (`--max-tools`; OpenAI's limit is 128): thousands of tools render
    /// into a prompt of hundreds of thousands of tokens that would hold a slot for minutes.
    public let maxTools: Int

    public init(engine: Engine, modelNames: [String], metrics: ServerMetrics? = nil, draft: Int = 0, reasoningBudget: Int? = nil,
                maxTools: Int = 128) {
        self.reasoningBudget = reasoningBudget
        self.maxTools = maxTools
        self.engine = engine
        self.modelNames = modelNames
        self.metrics = metrics
        self.draft = draft
        vocabulary = VocabularyBytes(engine.tokenizer)
        bosText = Self.bosText(engine.tokenizer)
    }

    /// The text of the tokenizer's BOS token, which the chat template writes first ("" without one).
    public static func bosText(_ tokenizer: BPETokenizer?) -> String {
        tokenizer.flatMap { t in t.bos.map { String(decoding: t.bytes(of: $0, special: true), as: UTF8.self) } } ?? ""
    }

    /// The alias requests and `/v1/models` use.
    public var alias: String { modelNames.first ?? "switchyard" }

    /// Refuses a request for a model this server does not serve (404); a missing name means this one.
    func checkModel(_ v: JSONValue?) throws {
        guard let v, !v.isNull else { return }
        guard let name = v.string else { throw APIError.bad("model must be a string", param: "model") }
        guard modelNames.contains(name) else {
            throw APIError(.notFound, "the model '\(name)' does not exist; this server serves '\(alias)'", param: "model")
        }
    }

    /// The rendered prompt for `messages` and `tools` (with the generation prompt).
    func renderPrompt(messages: [JSONValue], tools: [JSONValue]?, addGenerationPrompt: Bool = true) throws -> String {
        if let t = tools, t.count > maxTools {
            throw APIError.bad("tools: at most \(maxTools) tools per request, got \(t.count) (the server's --max-tools sets the limit)", param: "tools")
        }
        for (i, m) in messages.enumerated() {
            guard case .object = m, m["role"]?.string != nil else { throw APIError.bad("messages[\(i)] must be an object with a role", param: "messages") }
        }
        let pre: [JSONValue]
        do { pre = try StepFunTemplate.preprocess(messages) } catch {
            throw APIError.bad("a tool call's arguments are not JSON: \(error)", param: "messages")
        }
        return StepFunTemplate.render(messages: pre, tools: tools, addGenerationPrompt: addGenerationPrompt, bos: bosText)
    }

    /// A rendered prompt's tokens (special tokens parsed; BOS is in the text already).
    func tokens(_ prompt: String) -> [Int32] {
        engine.tokenizer?.encode(prompt, addSpecial: false, parseSpecial: true) ?? []
    }

    /// A token's text.
    func piece(_ t: Int32) -> [UInt8] { engine.tokenizer?.bytes(of: t) ?? [] }

    /// Sampling settings from a request body (OpenAI's names, plus llama-server's top_k and min_p).
    static func sampling(_ b: JSONValue) throws -> SamplingParams {
        // OpenAI's defaults (temperature 1, top_p 1) with llama-server's top_k 40: the tail past the 40 best
        // tokens carries next to no mass, and selecting 40 is a pass over the vocabulary where a full sort is not.
        var s = SamplingParams(temperature: 1, topK: 40, topP: 1, seed: UInt64.random(in: 0...UInt64(UInt32.max)))
        if let t = try number(b, "temperature") { s.temperature = Float(t) }
        if let p = try number(b, "top_p") { s.topP = Float(p) }
        if let k = try integer(b, "top_k") { s.topK = k }
        if let m = try number(b, "min_p") { s.minP = Float(m) }
        if let p = try number(b, "presence_penalty") { s.presencePenalty = Float(p) }
        if let f = try number(b, "frequency_penalty") { s.frequencyPenalty = Float(f) }
        if let seed = try integer(b, "seed") { s.seed = UInt64(bitPattern: Int64(seed)) }
        return s
    }

    /// A numeric field (nil when absent or null), or a 400 naming it.
    static func number(_ b: JSONValue, _ key: String) throws -> Double? {
        switch b[key] {
        case nil, .null?: return nil
        case .integer(let s)?: if let d = Double(s) { return d }
        case .double(let d)?: return d
        default: break
        }
        throw APIError.bad("\(key) must be a number", param: key)
    }

    /// An integer field (nil when absent or null), or a 400 naming it: a fraction, or a number past what an
    /// Int holds exactly (say 1e30), must not reach an `Int(...)` conversion, which would stop the process.
    static func integer(_ b: JSONValue, _ key: String) throws -> Int? {
        switch b[key] {
        case nil, .null?: return nil
        case .integer(let s)?: if let v = Int(s) { return v }
        case .double(let d)?: if d.rounded() == d && abs(d) <= 9.0e15 { return Int(d) }
        default: break
        }
        throw APIError.bad("\(key) must be an integer (at most 9e15 in size)", param: key)
    }

    /// Stop strings: a string or a list of strings.
    static func stops(_ v: JSONValue?, param: String) throws -> [String] {
        switch v {
        case nil, .null?: return []
        case .string(let s)?: return [s]
        case .array(let a)?:
            return try a.map { x in guard let s = x.string else { throw APIError.bad("\(param) must be strings", param: param) }; return s }
        default: throw APIError.bad("\(param) must be a string or a list of strings", param: param)
        }
    }
}

/// A finished generation as the routes answer it.
struct ChatResult {
    var output = ParsedOutput()
    var completion: Completion?
    var tokens: [Int32] = []
    var logprobs: [TokenLogprob] = []
}

extension ChatService {
    /// Runs a request to its end and parses its output.
    func run(_ r: InferenceRequest, tools: [JSONValue]?, reasoning: Bool = true, choice: ToolChoice = .auto, budget: Int? = nil) async throws -> ChatResult {
        let events = try reasoning ? submitChat(r, choice: choice, tools: tools, budget: budget).events : submit(r).events
        var parser = OutputParser(tools: tools ?? [], startsInReasoning: reasoning)
        var res = ChatResult()
        for try await e in events {
            switch e {
            case .tokens(let t):
                res.tokens += t.tokens
                res.logprobs += t.logprobs
                for d in parser.push(t.text) { res.output.add(d) }
            case .finished(let c):
                for d in parser.push(c.text) + parser.finish() { res.output.add(d) }
                res.completion = c
            }
        }
        if let c = res.completion, c.reason == .error { throw APIError(.internalServerError, c.error ?? "generation failed") }
        return res
    }

    /// Submits to the engine (its refusals as API errors); the events as an async stream that records the
    /// request's usage in the metrics when it ends (unless a caller combines several requests' usage), and
    /// cancels the request if the consumer goes away.
    func submit(_ r: InferenceRequest, record: Bool = true) throws -> (id: Int, events: AsyncThrowingStream<EngineEvent, Error>) {
        var req = r
        // --draft for every request; a one-token request (a constrained step) has nothing to verify drafts against.
        req.draft = r.maxTokens == 1 ? 0 : draft
        let (stream, cont) = AsyncThrowingStream<EngineEvent, Error>.makeStream()
        let metrics = self.metrics, tally = self.tally
        let id: Int
        do {
            id = try engine.submit(req) { e in
                if record, case .finished(let c) = e {
                    metrics?.record(c.usage)
                    tally.record(c.usage)
                }
                cont.yield(e)
                if case .finished = e { cont.finish() }
            }
        } catch let e as EngineError { throw APIError(e) }
        cont.onTermination = { [engine] why in if case .cancelled = why { engine.cancel(id) } }
        return (id, stream)
    }
}
