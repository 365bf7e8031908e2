// Steering a chat generation in phases: `tool_choice` that forces a call (OpenAI's "required" and
// {"type": "function", ...}, Anthropic's "any" and "tool", the Responses API's forms) and a reasoning budget
// (llama-server's `--reasoning-budget`, Anthropic's `thinking`). The model keeps its reasoning; the server
// writes what must be written and constrains what must be constrained:
//
//   1. reasoning, until `</think>` (or, when a call is forced, a `<tool_call>` opened inside it), at most
//      the budget's tokens; a budget spent closes it with a forced `</think>\n` (budget 0: at once);
//   2. without a forced call: the answer, free, to the end;
//   3. with one: forced `<tool_call>\n<function=` (as the template renders an assistant call); the name,
//      forced when one tool can be called, else token by token, each step sampled only among the tokens
//      that keep the text a prefix of some `NAME>\n` (the sampler's allowed set); the parameters, free,
//      until `</tool_call>`, which is written back.
//
// Each phase is one engine request whose prompt is the original prompt plus the assistant text so far;
// prefix reuse makes that a few tokens of prefill. The client sees one stream and one usage (forced
// tokens count as generated). Parameters are not constrained: the parser types them by the schema and
// returns what does not parse as text, as for any call.
import Chat
import Engine
import Foundation
import ModelKit
import Tokenizer

/// How a request must use its tools.
enum ToolChoice: Equatable {
    case auto, none, required
    case named(String)

    /// The tool_choice field in OpenAI's, the Responses API's or Anthropic's form, checked against the
    /// tools' names (400s name the problem).
    static func parse(_ v: JSONValue?, tools: [JSONValue]?) throws -> ToolChoice {
        let choice: ToolChoice
        switch v {
        case nil, .null?, .string("auto")?: choice = .auto
        case .string("none")?: choice = .none
        case .string("required")?: choice = .required
        case .object?:
            switch v?["type"]?.string {
            case "auto": choice = .auto
            case "none": choice = .none
            case "any": choice = .required
            case "function", "tool":
                // OpenAI chat: {"type": "function", "function": {"name"}}; Responses: {"type": "function", "name"};
                // Anthropic: {"type": "tool", "name"}.
                guard let n = v?["function"]?["name"]?.string ?? v?["name"]?.string else {
                    throw APIError.bad("tool_choice: a forced tool needs its name", param: "tool_choice")
                }
                choice = .named(n)
            default:
                throw APIError.bad("tool_choice: type must be auto, none, any/required, or function/tool with a name", param: "tool_choice")
            }
        default:
            throw APIError.bad("tool_choice must be \"auto\", \"none\", \"required\" or an object naming a function", param: "tool_choice")
        }
        let names = toolNames(tools)
        switch choice {
        case .required where names.isEmpty:
            throw APIError.bad("tool_choice requires a tool call but no function tools were given", param: "tool_choice")
        case .named(let n) where !names.contains(n):
            throw APIError.bad("tool_choice names '\(n)', which is not among the tools (\(names.joined(separator: ", ")))", param: "tool_choice")
        default: return choice
        }
    }

    /// Names of the function tools (OpenAI form, as the routes pass them to the template).
    static func toolNames(_ tools: [JSONValue]?) -> [String] {
        (tools ?? []).compactMap { $0["function"]?["name"]?.string ?? $0["name"]?.string }
    }

    /// The names a forced call may take (empty: nothing is forced).
    func forcedNames(_ tools: [JSONValue]?) -> [String] {
        switch self {
        case .auto, .none: []
        case .required: Self.toolNames(tools)
        case .named(let n): [n]
        }
    }
}

/// A request's events and how to cancel it (every phase of a forced call).
struct Submission {
    let events: AsyncThrowingStream<EngineEvent, Error>
    let cancel: @Sendable () -> Void
}

/// The request a forced call is on now (for cancelling), and whether the client went away.
final class PhaseBox: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Int?, cancelled = false
    /// Records the running phase; false if the client has gone (the phase is cancelled at once).
    func start(_ id: Int, engine: Engine) -> Bool {
        let gone = lock.withLock { current = id; return cancelled }
        if gone { engine.cancel(id) }
        return !gone
    }
    /// Whether the client went away.
    var isGone: Bool { lock.withLock { cancelled } }
    func cancel(_ engine: Engine) {
        let id = lock.withLock { cancelled = true; return current }
        if let id { engine.cancel(id) }
    }
}

extension ChatService {
    /// Submits a chat request: directly, or in phases when a call is forced or reasoning has a budget
    /// (`budget`: most reasoning tokens, nil unlimited).
    func submitChat(_ r: InferenceRequest, choice: ToolChoice, tools: [JSONValue]?, budget: Int? = nil) throws -> Submission {
        let names = choice.forcedNames(tools)
        let budget = budget ?? reasoningBudget
        guard !names.isEmpty || budget != nil, engine.tokenizer != nil else {
            let (id, events) = try submit(r)
            return Submission(events: events) { [engine] in engine.cancel(id) }
        }
        var reasoning = r
        reasoning.stopStrings += names.isEmpty ? ["</think>"] : ["</think>", "<tool_call>"]
        if let b = budget { reasoning.maxTokens = min(r.maxTokens ?? b, b) }
        let (first, events) = try submit(reasoning, record: false)
        let box = PhaseBox()
        _ = box.start(first, engine: engine)
        let (stream, cont) = AsyncThrowingStream<EngineEvent, Error>.makeStream()
        cont.onTermination = { [engine] why in if case .cancelled = why { box.cancel(engine) } }
        Task {
            var run = PhasedRun(service: self, request: r, box: box) { cont.yield($0) }
            do {
                let done = try await run.steer(first: events, names: names, budget: budget)
                metrics?.record(done.usage)
                tally.record(done.usage)
                cont.yield(.finished(done))
                cont.finish()
            } catch {
                cont.finish(throwing: error)
            }
        }
        return Submission(events: stream) { [engine] in box.cancel(engine) }
    }
}

/// One steered generation: the assistant text so far, the combined usage, and the phases.
struct PhasedRun {
    let service: ChatService
    let request: InferenceRequest
    let box: PhaseBox
    let yield: (EngineEvent) -> Void
    var text = "", usage = Usage(), generated = 0, started = false

    init(service: ChatService, request: InferenceRequest, box: PhaseBox, yield: @escaping (EngineEvent) -> Void) {
        self.service = service
        self.request = request
        self.box = box
        self.yield = yield
    }

    var engine: Engine { service.engine }
    var left: Int? { request.maxTokens.map { $0 - generated } }

    /// Runs the phases of the file header after the reasoning request `first`; the combined completion.
    mutating func steer(first: AsyncThrowingStream<EngineEvent, Error>, names: [String], budget: Int?) async throws -> Completion {
        let a = try await forward(first)
        let spent = a.reason == .length && budget.map { a.usage.completionTokens >= $0 } == true && left.map { $0 > 0 } ?? true
        switch (a.reason, a.stopString) {
        case (.stop, "</think>"?): say("</think>", tokens: [])
        case (.stop, "<tool_call>"?): break
        case (.length, _) where spent: force("</think>\n")
        default: return finished(a)
        }
        guard !names.isEmpty else {
            guard let b = try await phase({ _ in }) else { return finished(a, reason: box.isGone ? .cancelled : .length) }
            return finished(b)
        }
        force((text.hasSuffix("\n") || text.isEmpty ? "" : "\n") + "<tool_call>\n<function=")
        if names.count == 1 {
            force(names[0] + ">\n")
        } else if let stopped = try await chooseName(names) {
            return finished(stopped)
        }
        let stops = request.stopStrings + ["</tool_call>"]
        guard let c = try await phase({ q in q.stopStrings = stops }) else {
            return finished(a, reason: box.isGone ? .cancelled : .length)
        }
        if c.reason == .stop && c.stopString == "</tool_call>" { say("</tool_call>", tokens: []) }
        return finished(c)
    }

    /// The name, token by token among the tokens that keep it a prefix of some "NAME>\n"; nil when chosen,
    /// else the completion that ended the request.
    mutating func chooseName(_ names: [String]) async throws -> Completion? {
        let candidates = names.map { Array(($0 + ">\n").utf8) }
        var prefix: [UInt8] = [], step: UInt64 = 0
        while !candidates.contains(prefix) {
            let allowed = service.vocabulary.allowed(after: prefix, candidates: candidates)
            guard !allowed.isEmpty else {
                throw APIError(.internalServerError, "no token continues the tool name \(String(decoding: prefix, as: UTF8.self))")
            }
            let seed = request.sampling.seed &+ step
            guard let c = try await phase({ q in
                q.maxTokens = 1
                q.ignoreEOS = true
                q.stopStrings = []
                q.sampling.allowedTokens = allowed
                q.sampling.seed = seed
            }) else { return Completion(reason: box.isGone ? .cancelled : .length, usage: usage, text: "") }
            guard c.reason != .cancelled && c.reason != .error else { return c }
            prefix = Array((text.components(separatedBy: "<function=").last ?? "").utf8)
            step += 1
        }
        return nil
    }

    /// Continues the assistant text in a new request (`configure` adjusts it); nil when no token is left
    /// or the client went away.
    mutating func phase(_ configure: (inout InferenceRequest) -> Void) async throws -> Completion? {
        guard left.map({ $0 > 0 }) ?? true else { return nil }
        var q = request
        q.prompt = request.prompt + (engine.tokenizer?.encode(text, addSpecial: false, parseSpecial: true) ?? [])
        q.maxTokens = left
        configure(&q)
        let (id, events) = try service.submit(q, record: false)
        guard box.start(id, engine: engine) else { return nil }
        return try await forward(events)
    }

    /// Forwards a phase's events (its held text too) and adds its usage; returns its completion.
    mutating func forward(_ events: AsyncThrowingStream<EngineEvent, Error>) async throws -> Completion {
        var end: Completion?
        for try await e in events {
            switch e {
            case .tokens(let t):
                text += t.text
                yield(e)
            case .finished(let c):
                if !c.text.isEmpty { say(c.text, tokens: []) }
                end = c
            }
        }
        guard let c = end else { throw APIError(.internalServerError, "a phase of the generation ended without finishing") }
        if !started {
            usage = c.usage
            started = true
        } else {
            usage.completionTokens += c.usage.completionTokens
            usage.promptSeconds += c.usage.promptSeconds
            usage.decodeSeconds += c.usage.decodeSeconds
            usage.speculation.add(c.usage.speculation)
        }
        generated += c.usage.completionTokens
        return c
    }

    mutating func say(_ s: String, tokens: [Int32]) {
        text += s
        yield(.tokens(TokenEvent(tokens: tokens, text: s, time: DispatchTime.now().uptimeNanoseconds)))
    }

    /// Forced text; its tokens count as generated.
    mutating func force(_ s: String) {
        let ids = engine.tokenizer?.encode(s, addSpecial: false, parseSpecial: true) ?? []
        say(s, tokens: ids)
        usage.completionTokens += ids.count
        generated += ids.count
    }

    /// The client's completion: the phase's reason (or `reason`), the combined usage.
    func finished(_ c: Completion, reason: FinishReason? = nil) -> Completion {
        var out = c
        out.usage = usage
        out.text = ""
        // Only the client's own stop strings are theirs to see (the phases' are the server's).
        if let s = c.stopString, !request.stopStrings.contains(s) { out.stopString = nil }
        if let reason { out.reason = reason }
        return out
    }
}

/// Each token's bytes (control tokens none), for the allowed sets of constrained steps; built on first use.
final class VocabularyBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [[UInt8]]?
    private let tokenizer: BPETokenizer?
    init(_ t: BPETokenizer?) { tokenizer = t }

    /// Tokens whose bytes, after `prefix`, keep it a prefix of (or equal to) some candidate.
    func allowed(after prefix: [UInt8], candidates: [[UInt8]]) -> [Int32] {
        let t = lock.withLock {
            if table == nil, let tok = tokenizer { table = (0..<tok.count).map { tok.bytes(of: Int32($0)) } }
            return table ?? []
        }
        var out: [Int32] = []
        for (id, b) in t.enumerated() where !b.isEmpty {
            let s = prefix + b
            if candidates.contains(where: { $0.count >= s.count && $0.starts(with: s) }) { out.append(Int32(id)) }
        }
        return out
    }
}
