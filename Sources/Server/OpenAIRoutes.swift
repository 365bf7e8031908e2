// OpenAI's Chat Completions, Completions and Models, JSON and SSE, on the engine.
//
// Reference: the OpenAI API reference (chat.completion, chat.completion.chunk, text_completion objects);
// llama-server's `reasoning_content` field for reasoning in messages and deltas.
import Chat
import Engine
import Foundation
import Hummingbird
import Step35

extension ChatService {
    /// Fields `/v1/chat/completions` reads; any other is refused with a 400 that names it.
    static let chatFields: Set<String> = ["model", "messages", "tools", "tool_choice", "stream", "stream_options", "max_tokens",
                                          "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "logprobs",
                                          "top_logprobs", "presence_penalty", "frequency_penalty", "n", "user", "parallel_tool_calls",
                                          "ignore_eos"]

    /// `POST /v1/chat/completions`.
    func chatCompletions(_ b: JSONValue) async throws -> Response {
        try checkFields(b, Self.chatFields)
        try checkModel(b["model"])
        if let n = try Self.number(b, "n"), n != 1 { throw APIError.bad("n: only 1 choice per request is supported", param: "n") }
        guard let messages = b["messages"]?.array, !messages.isEmpty else { throw APIError.bad("messages must be a non-empty list", param: "messages") }
        var tools = b["tools"]?.array
        let toolChoice = try ToolChoice.parse(b["tool_choice"], tools: tools)
        if toolChoice == .none { tools = nil }
        let prompt = tokens(try renderPrompt(messages: messages, tools: tools))
        let req = try inference(b, prompt: prompt, maxKeys: ["max_completion_tokens", "max_tokens"], stopKey: "stop")
        let id = "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        if b["stream"] == .bool(true) {
            let usage = b["stream_options"]?["include_usage"] == .bool(true)
            return try streamChat(req, tools: tools, id: id, includeUsage: usage, choice: toolChoice)
        }
        let res = try await run(req, tools: tools, choice: toolChoice)
        var message: [(key: String, value: JSONValue)] = [("role", .string("assistant")),
                                                          ("content", res.output.content.isEmpty && !res.output.toolCalls.isEmpty ? .null : .string(res.output.content))]
        if !res.output.reasoning.isEmpty { message.append(("reasoning_content", .string(res.output.reasoning))) }
        if !res.output.toolCalls.isEmpty {
            message.append(("tool_calls", .array(res.output.toolCalls.enumerated().map { i, c in toolCall(id: "\(id)-\(i)", name: c.name, arguments: c.arguments) })))
        }
        var choice: [(key: String, value: JSONValue)] = [("index", .integer("0")), ("message", .object(message))]
        choice.append(("logprobs", req.logprobs == nil ? .null : .object([("content", .array(res.logprobs.map(logprobJSON)))])))
        choice.append(("finish_reason", .string(finishReason(res.completion?.reason, calls: !res.output.toolCalls.isEmpty))))
        return json(.object([("id", .string(id)), ("object", .string("chat.completion")), ("created", .integer("\(Int(Date().timeIntervalSince1970))")),
                             ("model", .string(alias)), ("choices", .array([.object(choice)])), ("usage", usageJSON(res.completion?.usage)),
                             ("timings", timingsJSON(res.completion?.usage))]))
    }

    /// A streamed chat completion: role first, then reasoning, content and tool-call deltas as the
    /// text is parsed, the finish reason, usage when asked, `[DONE]`. A client that goes away cancels it.
    func streamChat(_ req: InferenceRequest, tools: [JSONValue]?, id: String, includeUsage: Bool, choice: ToolChoice) throws -> Response {
        let sub = try submitChat(req, choice: choice, tools: tools), events = sub.events
        let created = Int(Date().timeIntervalSince1970)
        let head: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("chat.completion.chunk")),
                                                       ("created", .integer("\(created)")), ("model", .string(alias))]
        let wantsLogprobs = req.logprobs != nil
        @Sendable func chunk(_ delta: [(key: String, value: JSONValue)], finish: String? = nil, logprobs: [TokenLogprob] = [],
                             timings: JSONValue? = nil) -> ByteBuffer {
            var choice: [(key: String, value: JSONValue)] = [("index", .integer("0")), ("delta", .object(delta))]
            if wantsLogprobs { choice.append(("logprobs", .object([("content", .array(logprobs.map(logprobJSON)))]))) }
            choice.append(("finish_reason", finish.map { .string($0) } ?? .null))
            return sse(.object(head + [("choices", .array([.object(choice)]))] + (timings.map { [("timings", $0)] } ?? [])))
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { [self] writer in
            var parser = OutputParser(tools: tools ?? [])
            var calls = false
            do {
                try await writer.write(chunk([("role", .string("assistant")), ("content", .string(""))]))
                for try await e in events {
                    switch e {
                    case .tokens(let t):
                        let deltas = parser.push(t.text)
                        calls = calls || deltas.contains { if case .toolCallStart = $0 { true } else { false } }
                        for (n, d) in deltas.enumerated() { try await writer.write(chunk(delta(d, id: id), logprobs: n == 0 ? t.logprobs : [])) }
                        if deltas.isEmpty && wantsLogprobs && !t.logprobs.isEmpty { try await writer.write(chunk([], logprobs: t.logprobs)) }
                    case .finished(let c):
                        for d in parser.push(c.text) + parser.finish() {
                            if case .toolCallStart = d { calls = true }
                            try await writer.write(chunk(delta(d, id: id)))
                        }
                        if c.reason == .error {
                            let err = JSONValue.object([("error", .object([("message", .string(c.error ?? "generation failed")), ("type", .string("server_error"))]))])
                            try await writer.write(sse(err))
                        } else {
                            try await writer.write(chunk([], finish: finishReason(c.reason, calls: calls), timings: timingsJSON(c.usage)))
                            if includeUsage { try await writer.write(sse(.object(head + [("choices", .array([])), ("usage", usageJSON(c.usage))]))) }
                        }
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                sub.cancel()
                throw error
            }
        })
    }

    /// One parsed delta in a chunk's `delta`.
    func delta(_ d: OutputDelta, id: String) -> [(key: String, value: JSONValue)] {
        switch d {
        case .reasoning(let s): return [("reasoning_content", .string(s))]
        case .content(let s): return [("content", .string(s))]
        case .toolCallStart(let i, let name):
            return [("tool_calls", .array([.object([("index", .integer("\(i)")), ("id", .string("\(id)-\(i)")), ("type", .string("function")),
                                                    ("function", .object([("name", .string(name)), ("arguments", .string(""))]))])]))]
        case .toolCallArguments(let i, let j):
            return [("tool_calls", .array([.object([("index", .integer("\(i)")), ("function", .object([("arguments", .string(j))]))])]))]
        }
    }

    func toolCall(id: String, name: String, arguments: String) -> JSONValue {
        .object([("id", .string(id)), ("type", .string("function")), ("function", .object([("name", .string(name)), ("arguments", .string(arguments))]))])
    }

    /// `POST /v1/completions`: a raw prompt (text or token ids), continued as text.
    func completions(_ b: JSONValue) async throws -> Response {
        try checkFields(b, ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options",
                            "n", "presence_penalty", "frequency_penalty", "logprobs", "user", "echo", "ignore_eos"])
        try checkModel(b["model"])
        if let n = try Self.number(b, "n"), n != 1 { throw APIError.bad("n: only 1 choice per request is supported", param: "n") }
        if b["echo"] == .bool(true) { throw APIError.bad("echo is not supported", param: "echo") }
        let prompt: [Int32]
        switch b["prompt"] {
        case .string(let s)?: prompt = engine.tokenize(s)
        case .array(let a)? where a.allSatisfy({ if case .integer = $0 { true } else { false } }):
            prompt = a.compactMap { if case .integer(let s) = $0 { Int32(s) } else { nil } }
        default: throw APIError.bad("prompt must be a string or a list of token ids", param: "prompt")
        }
        var req = try inference(b, prompt: prompt, maxKeys: ["max_tokens"], stopKey: "stop", defaultMax: 16)
        if let n = try Self.integer(b, "logprobs") { req.logprobs = n }
        let id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        let head: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("text_completion")),
                                                       ("created", .integer("\(Int(Date().timeIntervalSince1970))")), ("model", .string(alias))]
        if b["stream"] == .bool(true) {
            let (rid, events) = try submit(req)
            let engine = self.engine
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { writer in
                do {
                    for try await e in events {
                        let (text, finish): (String, String?) = switch e {
                        case .tokens(let t): (t.text, nil)
                        case .finished(let c): (c.text, c.reason == .length ? "length" : "stop")
                        }
                        if case .finished(let c) = e, c.reason == .error {
                            // The cause (e.g. a lost rank), as chat completions send it; never a quiet "stop".
                            if !text.isEmpty {
                                let choice = JSONValue.object([("index", .integer("0")), ("text", .string(text)), ("logprobs", .null), ("finish_reason", .null)])
                                try await writer.write(sse(.object(head + [("choices", .array([choice]))])))
                            }
                            try await writer.write(sse(.object([("error", .object([("message", .string(c.error ?? "generation failed")),
                                                                                  ("type", .string("server_error"))]))])))
                            continue
                        }
                        let choice = JSONValue.object([("index", .integer("0")), ("text", .string(text)), ("logprobs", .null),
                                                       ("finish_reason", finish.map { .string($0) } ?? .null)])
                        try await writer.write(sse(.object(head + [("choices", .array([choice]))])))
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                } catch {
                    engine.cancel(rid)
                    throw error
                }
            })
        }
        let res = try await run(req, tools: nil, reasoning: false)
        let text = res.output.content.isEmpty ? String(decoding: res.tokens.flatMap(piece), as: UTF8.self) : rawText(res)
        let choice = JSONValue.object([("index", .integer("0")), ("text", .string(text)), ("logprobs", .null),
                                       ("finish_reason", .string(res.completion?.reason == .length ? "length" : "stop"))])
        return json(.object(head + [("choices", .array([choice])), ("usage", usageJSON(res.completion?.usage))]))
    }

    /// The generated text as it is (a completion is not split into reasoning and tool calls).
    func rawText(_ r: ChatResult) -> String {
        var s = TextStream()
        return r.tokens.map { s.push(piece($0)) }.joined() + s.finish()
    }

    /// `GET /v1/models`.
    func models() -> Response {
        json(.object([("object", .string("list")), ("data", .array(modelNames.prefix(1).map { n in
            .object([("id", .string(n)), ("object", .string("model")), ("created", .integer("\(Int(Date().timeIntervalSince1970))")),
                     ("owned_by", .string("switchyard"))])
        }))]))
    }

    /// The engine request of a body: sampling, token limit, stops, logprobs.
    func inference(_ b: JSONValue, prompt: [Int32], maxKeys: [String], stopKey: String, defaultMax: Int? = nil) throws -> InferenceRequest {
        var maxTokens = defaultMax
        for k in maxKeys { if let m = try Self.integer(b, k) { maxTokens = m; break } }
        var r = InferenceRequest(prompt: prompt, sampling: try Self.sampling(b), maxTokens: maxTokens,
                                 stopStrings: try Self.stops(b[stopKey], param: stopKey))
        if b["logprobs"] == .bool(true) { r.logprobs = try Self.integer(b, "top_logprobs") ?? 0 }
        // llama-server's extension: keep going past end-of-generation tokens (benchmarks, load and fault tests).
        switch b["ignore_eos"] {
        case nil, .null?: break
        case .bool(let v)?: r.ignoreEOS = v
        default: throw APIError.bad("ignore_eos must be a boolean", param: "ignore_eos")
        }
        return r
    }

    func checkFields(_ b: JSONValue, _ known: Set<String>) throws {
        guard case .object(let kv) = b else { throw APIError.bad("the request body must be a JSON object") }
        if let bad = kv.first(where: { !known.contains($0.key) }) {
            throw APIError.bad("unsupported parameter: \(bad.key)", param: bad.key)
        }
    }

    func finishReason(_ r: FinishReason?, calls: Bool) -> String {
        calls ? "tool_calls" : r == .length ? "length" : "stop"
    }

    func usageJSON(_ u: Usage?) -> JSONValue {
        let u = u ?? Usage()
        return .object([("prompt_tokens", .integer("\(u.promptTokens)")), ("completion_tokens", .integer("\(u.completionTokens)")),
                        ("total_tokens", .integer("\(u.promptTokens + u.completionTokens)")),
                        ("prompt_tokens_details", .object([("cached_tokens", .integer("\(u.cachedTokens)"))]))])
    }

    /// llama-server's `timings` object (on a response and on the stream's last chunk): prompt and predicted
    /// tokens with their milliseconds and rates, cached prompt tokens, MTP drafts and acceptances, plus
    /// the server-side time to first token.
    func timingsJSON(_ u: Usage?) -> JSONValue {
        let u = u ?? Usage()
        let pn = u.promptTokens - u.cachedTokens, pms = u.promptSeconds * 1e3, dms = u.decodeSeconds * 1e3
        // llama-server counts the first token in prompt processing; so do the engine's decode seconds.
        let dn = max(u.completionTokens - 1, 0)
        func rate(_ n: Int, _ ms: Double) -> JSONValue { .double(ms > 0 ? Double(n) * 1e3 / ms : 0) }
        return .object([("cache_n", .integer("\(u.cachedTokens)")), ("prompt_n", .integer("\(pn)")), ("prompt_ms", .double(pms)),
                        ("prompt_per_second", rate(pn, pms)), ("predicted_n", .integer("\(u.completionTokens)")), ("predicted_ms", .double(dms)),
                        ("predicted_per_second", rate(dn, dms)), ("draft_n", .integer("\(u.speculation.drafted.reduce(0, +))")),
                        ("draft_n_accepted", .integer("\(u.speculation.accepted.reduce(0, +))")), ("ttft_ms", .double(u.timeToFirstToken * 1e3))])
    }

    func logprobJSON(_ l: TokenLogprob) -> JSONValue {
        func entry(_ t: Int32, _ lp: Float) -> [(key: String, value: JSONValue)] {
            let b = piece(t)
            return [("token", .string(String(decoding: b, as: UTF8.self))), ("logprob", .double(Double(lp))),
                    ("bytes", .array(b.map { .integer("\($0)") }))]
        }
        return .object(entry(l.token, l.logprob) + [("top_logprobs", .array(l.top.map { .object(entry($0.token, $0.logprob)) }))])
    }
}

/// One server-sent event carrying JSON.
func sse(_ v: JSONValue) -> ByteBuffer { ByteBuffer(string: "data: " + v.pythonJSON() + "\n\n") }
