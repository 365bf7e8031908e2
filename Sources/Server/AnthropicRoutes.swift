// Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`), so Claude Code and the
// anthropic SDK can drive the model: content blocks in (text, thinking, tool_use, tool_result), `system` as
// a string or blocks, tools with `input_schema`; out, the same blocks, JSON or the full event stream.
//
// Reference: Anthropic's Messages API and streaming documentation (message_start, content_block_start /
// _delta / _stop with text_delta, thinking_delta, input_json_delta, message_delta, message_stop, ping).
import Chat
import Engine
import Foundation
import Hummingbird

extension ChatService {
    static let messageFields: Set<String> = ["model", "messages", "system", "max_tokens", "tools", "tool_choice", "stop_sequences", "stream",
                                             "temperature", "top_p", "top_k", "metadata", "thinking"]

    /// Anthropic messages, system and tools as the chat template's OpenAI-style messages and tools.
    func templateInputs(_ b: JSONValue) throws -> (messages: [JSONValue], tools: [JSONValue]?) {
        var out: [JSONValue] = []
        switch b["system"] {
        case nil, .null?: break
        case .string(let s)?: out.append(.object([("role", .string("system")), ("content", .string(s))]))
        case .array(let blocks)?: out.append(.object([("role", .string("system")), ("content", .string(try texts(blocks, "system")))]))
        default: throw APIError.bad("system must be a string or a list of text blocks", param: "system")
        }
        guard let messages = b["messages"]?.array, !messages.isEmpty else { throw APIError.bad("messages must be a non-empty list", param: "messages") }
        for (i, m) in messages.enumerated() {
            guard let role = m["role"]?.string, role == "user" || role == "assistant" else {
                throw APIError.bad("messages[\(i)].role must be user or assistant", param: "messages")
            }
            let blocks: [JSONValue]
            switch m["content"] {
            case .string(let s)?: blocks = [.object([("type", .string("text")), ("text", .string(s))])]
            case .array(let a)?: blocks = a
            default: throw APIError.bad("messages[\(i)].content must be a string or a list of blocks", param: "messages")
            }
            out += try role == "user" ? userTurn(blocks) : [assistantTurn(blocks)]
        }
        let tools = try b["tools"]?.array?.map { t -> JSONValue in
            guard let name = t["name"]?.string else { throw APIError.bad("every tool needs a name", param: "tools") }
            var f: [(key: String, value: JSONValue)] = [("name", .string(name))]
            if let d = t["description"] { f.append(("description", d)) }
            f.append(("parameters", t["input_schema"] ?? .object([("type", .string("object")), ("properties", .object([]))])))
            return .object([("type", .string("function")), ("function", .object(f))])
        }
        return (out, tools)
    }

    /// A user turn: tool results become tool messages (first, in order), the rest one user message.
    private func userTurn(_ blocks: [JSONValue]) throws -> [JSONValue] {
        var tools: [JSONValue] = [], parts: [JSONValue] = []
        for blk in blocks {
            switch blk["type"]?.string {
            case "text": parts.append(.object([("type", .string("text")), ("text", blk["text"] ?? .string(""))]))
            case "image": parts.append(.object([("type", .string("image"))]))
            case "tool_result":
                let c: String
                switch blk["content"] {
                case .string(let s)?: c = s
                case .array(let a)?: c = try texts(a, "tool_result.content")
                default: c = ""
                }
                tools.append(.object([("role", .string("tool")), ("tool_call_id", blk["tool_use_id"] ?? .null), ("content", .string(c))]))
            default: throw APIError.bad("unsupported content block type: \(blk["type"]?.string ?? "none")", param: "messages")
            }
        }
        return tools + (parts.isEmpty ? [] : [.object([("role", .string("user")), ("content", .array(parts))])])
    }

    /// An assistant turn: text, thinking as reasoning_content, tool_use as tool calls.
    private func assistantTurn(_ blocks: [JSONValue]) throws -> JSONValue {
        var text = "", thinking: String?, calls: [JSONValue] = []
        for blk in blocks {
            switch blk["type"]?.string {
            case "text": text += blk["text"]?.string ?? ""
            case "thinking": thinking = (thinking ?? "") + (blk["thinking"]?.string ?? "")
            case "redacted_thinking": break
            case "tool_use":
                calls.append(.object([("id", blk["id"] ?? .null), ("type", .string("function")),
                                      ("function", .object([("name", blk["name"] ?? .string("")), ("arguments", blk["input"] ?? .object([]))]))]))
            default: throw APIError.bad("unsupported content block type: \(blk["type"]?.string ?? "none")", param: "messages")
            }
        }
        var m: [(key: String, value: JSONValue)] = [("role", .string("assistant")), ("content", .string(text))]
        if let t = thinking { m.append(("reasoning_content", .string(t))) }
        if !calls.isEmpty { m.append(("tool_calls", .array(calls))) }
        return .object(m)
    }

    private func texts(_ blocks: [JSONValue], _ param: String) throws -> String {
        try blocks.map { b in
            guard b["type"]?.string == "text", let t = b["text"]?.string else { throw APIError.bad("\(param) must hold text blocks", param: param) }
            return t
        }.joined(separator: "\n")
    }

    /// `POST /v1/messages/count_tokens`.
    func countTokens(_ b: JSONValue) throws -> Response {
        try checkFields(b, ["model", "messages", "system", "tools", "tool_choice", "thinking"])
        try checkModel(b["model"])
        let (m, t) = try templateInputs(b)
        return json(.object([("input_tokens", .integer("\(tokens(try renderPrompt(messages: m, tools: t)).count)"))]))
    }

    /// Anthropic's `thinking`: {"type": "disabled"} closes reasoning at once (budget 0), {"type": "enabled",
    /// "budget_tokens": N} allows N reasoning tokens; absent: the server's `--reasoning-budget`.
    static func thinkingBudget(_ v: JSONValue?) throws -> Int? {
        switch v?["type"]?.string {
        case nil where v == nil || v == .null: return nil
        case "disabled"?: return 0
        case "enabled"?:
            guard let n = try? integer(v!, "budget_tokens"), n >= 0 else {
                throw APIError.bad("thinking.budget_tokens must be an integer >= 0", param: "thinking")
            }
            return n
        default: throw APIError.bad("thinking.type must be \"enabled\" or \"disabled\"", param: "thinking")
        }
    }

    /// `POST /v1/messages`.
    func messages(_ b: JSONValue) async throws -> Response {
        try checkFields(b, Self.messageFields)
        try checkModel(b["model"])
        guard let maxTokens = try Self.integer(b, "max_tokens"), maxTokens >= 1 else { throw APIError.bad("max_tokens is required (>= 1)", param: "max_tokens") }
        var (m, tools) = try templateInputs(b)
        let choice = try ToolChoice.parse(b["tool_choice"], tools: tools)
        if choice == .none { tools = nil }
        var req = InferenceRequest(prompt: tokens(try renderPrompt(messages: m, tools: tools)), sampling: try Self.sampling(b),
                                   maxTokens: maxTokens, stopStrings: try Self.stops(b["stop_sequences"], param: "stop_sequences"))
        if b["temperature"] == nil { req.sampling.temperature = 1 }
        let budget = try Self.thinkingBudget(b["thinking"])
        let id = "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        if b["stream"] == .bool(true) { return try streamMessage(req, tools: tools, id: id, choice: choice, budget: budget) }
        let res = try await run(req, tools: tools, choice: choice, budget: budget)
        var content: [JSONValue] = []
        if !res.output.reasoning.isEmpty { content.append(.object([("type", .string("thinking")), ("thinking", .string(res.output.reasoning)), ("signature", .string(""))])) }
        if !res.output.content.isEmpty { content.append(.object([("type", .string("text")), ("text", .string(res.output.content))])) }
        for (i, c) in res.output.toolCalls.enumerated() {
            content.append(.object([("type", .string("tool_use")), ("id", .string("toolu_\(id.dropFirst(4))_\(i)")), ("name", .string(c.name)),
                                    ("input", (try? JSONValue.parse(c.arguments)) ?? .object([]))]))
        }
        let (reason, seq) = stopReason(res.completion, calls: !res.output.toolCalls.isEmpty)
        return json(.object(messageHead(id) + [("content", .array(content)), ("stop_reason", .string(reason)), ("stop_sequence", seq),
                                               ("usage", anthropicUsage(res.completion?.usage))]))
    }

    func messageHead(_ id: String) -> [(key: String, value: JSONValue)] {
        [("id", .string(id)), ("type", .string("message")), ("role", .string("assistant")), ("model", .string(alias))]
    }

    func stopReason(_ c: Completion?, calls: Bool) -> (String, JSONValue) {
        if calls { return ("tool_use", .null) }
        if let s = c?.stopString { return ("stop_sequence", .string(s)) }
        return (c?.reason == .length ? "max_tokens" : "end_turn", .null)
    }

    func anthropicUsage(_ u: Usage?, outputOnly: Bool = false) -> JSONValue {
        let u = u ?? Usage()
        if outputOnly { return .object([("output_tokens", .integer("\(u.completionTokens)"))]) }
        return .object([("input_tokens", .integer("\(u.promptTokens - u.cachedTokens)")), ("output_tokens", .integer("\(u.completionTokens)")),
                        ("cache_read_input_tokens", .integer("\(u.cachedTokens)")), ("cache_creation_input_tokens", .integer("0"))])
    }
}

/// An Anthropic event on the wire.
func anthropicEvent(_ v: JSONValue) -> ByteBuffer {
    ByteBuffer(string: "event: " + (v["type"]?.string ?? "message") + "\ndata: " + v.pythonJSON() + "\n\n")
}

/// The content blocks of a streamed message, opened and closed as the parsed deltas change kind.
struct BlockStream {
    enum Kind: Equatable { case thinking, text, tool(Int) }
    var index = -1
    var kind: Kind?

    /// Events for one parsed delta.
    mutating func events(_ d: OutputDelta, id: String) -> [JSONValue] {
        var out: [JSONValue] = []
        func open(_ k: Kind, _ block: JSONValue) {
            out += close()
            index += 1
            kind = k
            out.append(.object([("type", .string("content_block_start")), ("index", .integer("\(index)")), ("content_block", block)]))
        }
        func delta(_ d: JSONValue) {
            out.append(.object([("type", .string("content_block_delta")), ("index", .integer("\(index)")), ("delta", d)]))
        }
        switch d {
        case .reasoning(let s):
            if kind != .thinking { open(.thinking, .object([("type", .string("thinking")), ("thinking", .string(""))])) }
            delta(.object([("type", .string("thinking_delta")), ("thinking", .string(s))]))
        case .content(let s):
            if kind != .text { open(.text, .object([("type", .string("text")), ("text", .string(""))])) }
            delta(.object([("type", .string("text_delta")), ("text", .string(s))]))
        case .toolCallStart(let i, let name):
            open(.tool(i), .object([("type", .string("tool_use")), ("id", .string("toolu_\(id.dropFirst(4))_\(i)")), ("name", .string(name)),
                                    ("input", .object([]))]))
        case .toolCallArguments(_, let j):
            delta(.object([("type", .string("input_json_delta")), ("partial_json", .string(j))]))
        }
        return out
    }

    /// Closes the open block, if any.
    mutating func close() -> [JSONValue] {
        guard kind != nil else { return [] }
        kind = nil
        return [.object([("type", .string("content_block_stop")), ("index", .integer("\(index)"))])]
    }
}

extension ChatService {
    /// The full Anthropic event sequence for a streamed message; a client that goes away cancels it.
    func streamMessage(_ req: InferenceRequest, tools: [JSONValue]?, id: String, choice: ToolChoice, budget: Int?) throws -> Response {
        let sub = try submitChat(req, choice: choice, tools: tools, budget: budget), events = sub.events
        let start = JSONValue.object([("type", .string("message_start")), ("message", .object(messageHead(id) + [
            ("content", .array([])), ("stop_reason", .null), ("stop_sequence", .null),
            ("usage", .object([("input_tokens", .integer("\(req.prompt.count)")), ("output_tokens", .integer("0"))]))]))])
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { [self] writer in
            var parser = OutputParser(tools: tools ?? [])
            var blocks = BlockStream()
            var calls = false
            do {
                try await writer.write(anthropicEvent(start))
                try await writer.write(anthropicEvent(.object([("type", .string("ping"))])))
                for try await e in events {
                    switch e {
                    case .tokens(let t):
                        for d in parser.push(t.text) {
                            if case .toolCallStart = d { calls = true }
                            for ev in blocks.events(d, id: id) { try await writer.write(anthropicEvent(ev)) }
                        }
                    case .finished(let c):
                        for d in parser.push(c.text) + parser.finish() {
                            if case .toolCallStart = d { calls = true }
                            for ev in blocks.events(d, id: id) { try await writer.write(anthropicEvent(ev)) }
                        }
                        for ev in blocks.close() { try await writer.write(anthropicEvent(ev)) }
                        if c.reason == .error {
                            try await writer.write(anthropicEvent(.object([("type", .string("error")), ("error", .object([
                                ("type", .string("api_error")), ("message", .string(c.error ?? "generation failed"))]))])))
                        } else {
                            let (reason, seq) = stopReason(c, calls: calls)
                            try await writer.write(anthropicEvent(.object([("type", .string("message_delta")),
                                ("delta", .object([("stop_reason", .string(reason)), ("stop_sequence", seq)])), ("usage", anthropicUsage(c.usage, outputOnly: true))])))
                            try await writer.write(anthropicEvent(.object([("type", .string("message_stop"))])))
                        }
                    }
                }
                try await writer.finish(nil)
            } catch {
                sub.cancel()
                throw error
            }
        })
    }
}
