// OpenAI's Responses API (`POST /v1/responses`), which Codex speaks: input items in (messages,
// function_call, function_call_output, reasoning), output items out (reasoning, message, function_call),
// JSON or the typed event stream. Tools of types other than `function` (web_search, local_shell, custom, ...)
// are accepted and ignored, as Codex sends them.
//
// Reference: the OpenAI Responses API reference (response object, output items, streaming events with
// sequence numbers). Stateless: `previous_response_id` is refused (400), the client sends the history.
import Chat
import Engine
import Foundation
import Hummingbird

extension ChatService {
    static let responseFields: Set<String> = ["model", "input", "instructions", "tools", "tool_choice", "stream", "max_output_tokens",
                                              "temperature", "top_p", "parallel_tool_calls", "store", "reasoning", "text", "metadata", "user",
                                              "include", "truncation", "prompt_cache_key", "service_tier", "previous_response_id", "top_logprobs"]

    /// Responses input and instructions as the template's messages; function tools as chat tools.
    func responseInputs(_ b: JSONValue) throws -> (messages: [JSONValue], tools: [JSONValue]?) {
        var out: [JSONValue] = []
        if let i = b["instructions"]?.string { out.append(.object([("role", .string("system")), ("content", .string(i))])) }
        var reasoning: String?
        func assistant(_ f: (inout [(key: String, value: JSONValue)]) -> Void) {
            if case .object(var last)? = out.last, last.first(where: { $0.key == "role" })?.value == .string("assistant") {
                out.removeLast()
                f(&last)
                out.append(.object(last))
            } else {
                var m: [(key: String, value: JSONValue)] = [("role", .string("assistant")), ("content", .string(""))]
                if let r = reasoning { m.append(("reasoning_content", .string(r))) }
                reasoning = nil
                f(&m)
                out.append(.object(m))
            }
        }
        switch b["input"] {
        case .string(let s)?: out.append(.object([("role", .string("user")), ("content", .string(s))]))
        case .array(let items)?:
            for (n, item) in items.enumerated() {
                switch item["type"]?.string ?? (item["role"] != nil ? "message" : "") {
                case "message":
                    var role = item["role"]?.string ?? "user"
                    if role == "developer" { role = "system" }
                    let text = try responseText(item["content"], n)
                    if role == "assistant" {
                        assistant { m in
                            if let i = m.firstIndex(where: { $0.key == "content" }) { m[i].value = .string((m[i].value.string ?? "") + text) }
                        }
                    } else {
                        out.append(.object([("role", .string(role)), ("content", .string(text))]))
                    }
                case "function_call":
                    let call = JSONValue.object([("id", item["call_id"] ?? .null), ("type", .string("function")),
                                                 ("function", .object([("name", item["name"] ?? .string("")), ("arguments", item["arguments"] ?? .string("{}"))]))])
                    assistant { m in
                        if let i = m.firstIndex(where: { $0.key == "tool_calls" }), case .array(let a) = m[i].value { m[i].value = .array(a + [call]) }
                        else { m.append(("tool_calls", .array([call]))) }
                    }
                case "function_call_output":
                    let o: String
                    switch item["output"] {
                    case .string(let s)?: o = s
                    case let v?: o = try responseText(v, n)
                    default: o = ""
                    }
                    out.append(.object([("role", .string("tool")), ("tool_call_id", item["call_id"] ?? .null), ("content", .string(o))]))
                case "reasoning":
                    let parts = (item["content"]?.array ?? []) + (item["summary"]?.array ?? [])
                    reasoning = parts.compactMap { $0["text"]?.string }.joined(separator: "\n")
                default:
                    throw APIError.bad("input[\(n)]: unsupported item type \(item["type"]?.string ?? "none")", param: "input")
                }
            }
        default: throw APIError.bad("input must be a string or a list of items", param: "input")
        }
        // Function tools only; other tool types (built-in tools) are ignored.
        let tools = b["tools"]?.array?.compactMap { t -> JSONValue? in
            guard t["type"]?.string == "function", let name = t["name"] else { return nil }
            var f: [(key: String, value: JSONValue)] = [("name", name)]
            if let d = t["description"] { f.append(("description", d)) }
            f.append(("parameters", t["parameters"] ?? .object([("type", .string("object")), ("properties", .object([]))])))
            return .object([("type", .string("function")), ("function", .object(f))])
        }
        return (out, tools)
    }

    private func responseText(_ v: JSONValue?, _ n: Int) throws -> String {
        switch v {
        case .string(let s)?: return s
        case .array(let parts)?:
            return parts.map { p in
                switch p["type"]?.string {
                case "input_text", "output_text", "text": p["text"]?.string ?? ""
                case "input_image": "<im_patch>"
                default: ""
                }
            }.joined()
        default: throw APIError.bad("input[\(n)].content must be a string or a list of parts", param: "input")
        }
    }

    /// `POST /v1/responses`.
    func responses(_ b: JSONValue) async throws -> Response {
        try checkFields(b, Self.responseFields)
        try checkModel(b["model"])
        if let p = b["previous_response_id"], !p.isNull {
            throw APIError.bad("previous_response_id is not supported (responses are not stored): send the whole input", param: "previous_response_id")
        }
        var (messages, tools) = try responseInputs(b)
        let choice = try ToolChoice.parse(b["tool_choice"], tools: tools)
        if choice == .none { tools = nil }
        let prompt = tokens(try renderPrompt(messages: messages, tools: tools?.isEmpty == true ? nil : tools))
        let req = try inference(b, prompt: prompt, maxKeys: ["max_output_tokens"], stopKey: "stop")
        let id = "resp_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        if b["stream"] == .bool(true) { return try streamResponse(req, tools: tools, id: id, choice: choice) }
        let res = try await run(req, tools: tools, choice: choice)
        var items = ResponseItems(id: id)
        if !res.output.reasoning.isEmpty { _ = items.events(.reasoning(res.output.reasoning)) }
        if !res.output.content.isEmpty { _ = items.events(.content(res.output.content)) }
        for (i, c) in res.output.toolCalls.enumerated() {
            _ = items.events(.toolCallStart(index: i, name: c.name))
            _ = items.events(.toolCallArguments(index: i, json: c.arguments))
        }
        _ = items.close()
        return json(responseObject(id, items.done, res.completion))
    }

    func responseObject(_ id: String, _ output: [JSONValue], _ c: Completion?, status: String? = nil) -> JSONValue {
        let u = c?.usage ?? Usage()
        let incomplete = c?.reason == .length
        return .object([("id", .string(id)), ("object", .string("response")), ("created_at", .integer("\(Int(Date().timeIntervalSince1970))")),
                        ("status", .string(status ?? (incomplete ? "incomplete" : "completed"))), ("model", .string(alias)),
                        ("output", .array(output)), ("parallel_tool_calls", .bool(true)), ("tool_choice", .string("auto")), ("tools", .array([])),
                        ("incomplete_details", incomplete && status == nil ? .object([("reason", .string("max_output_tokens"))]) : .null),
                        ("error", .null),
                        ("usage", .object([("input_tokens", .integer("\(u.promptTokens)")),
                                           ("input_tokens_details", .object([("cached_tokens", .integer("\(u.cachedTokens)"))])),
                                           ("output_tokens", .integer("\(u.completionTokens)")),
                                           ("output_tokens_details", .object([("reasoning_tokens", .integer("0"))])),
                                           ("total_tokens", .integer("\(u.promptTokens + u.completionTokens)"))]))])
    }

    /// The Responses event stream; a client that goes away cancels the request.
    func streamResponse(_ req: InferenceRequest, tools: [JSONValue]?, id: String, choice: ToolChoice) throws -> Response {
        let sub = try submitChat(req, choice: choice, tools: tools), events = sub.events
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { [self] writer in
            var parser = OutputParser(tools: tools ?? [])
            var items = ResponseItems(id: id)
            var seq = 0
            func send(_ type: String, _ fields: [(key: String, value: JSONValue)]) async throws {
                let v = JSONValue.object([("type", .string(type)), ("sequence_number", .integer("\(seq)"))] + fields)
                seq += 1
                try await writer.write(ByteBuffer(string: "event: \(type)\ndata: \(v.pythonJSON())\n\n"))
            }
            do {
                try await send("response.created", [("response", responseObject(id, [], nil, status: "in_progress"))])
                try await send("response.in_progress", [("response", responseObject(id, [], nil, status: "in_progress"))])
                for try await e in events {
                    let (text, end): (String, Completion?) = switch e {
                    case .tokens(let t): (t.text, nil)
                    case .finished(let c): (c.text, c)
                    }
                    var deltas = parser.push(text)
                    if end != nil { deltas += parser.finish() }
                    for d in deltas { for (t, f) in items.events(d) { try await send(t, f) } }
                    guard let c = end else { continue }
                    for (t, f) in items.close() { try await send(t, f) }
                    if c.reason == .error {
                        try await send("error", [("message", .string(c.error ?? "generation failed"))])
                    } else {
                        try await send(c.reason == .length ? "response.incomplete" : "response.completed", [("response", responseObject(id, items.done, c))])
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

/// Output items built from parsed deltas, with the stream events that open, fill and close them.
struct ResponseItems {
    enum Kind: Equatable { case reasoning, message, call(Int) }
    let id: String
    var kind: Kind?
    var text = "", name = "", callID = ""
    var done: [JSONValue] = []

    init(id: String) { self.id = id }

    var itemID: String { "\(kind.map { k in k == .reasoning ? "rs" : k == .message ? "msg" : "fc" } ?? "it")_\(id.dropFirst(5))_\(done.count)" }

    /// The current item as it stands (status in_progress or completed).
    func item(completed: Bool) -> JSONValue {
        let status = JSONValue.string(completed ? "completed" : "in_progress")
        switch kind {
        case .reasoning?:
            return .object([("type", .string("reasoning")), ("id", .string(itemID)), ("summary", .array([])),
                            ("content", .array(completed ? [.object([("type", .string("reasoning_text")), ("text", .string(text))])] : []))])
        case .message?:
            return .object([("type", .string("message")), ("id", .string(itemID)), ("status", status), ("role", .string("assistant")),
                            ("content", .array(completed ? [part] : []))])
        default:
            return .object([("type", .string("function_call")), ("id", .string(itemID)), ("call_id", .string(callID)), ("name", .string(name)),
                            ("arguments", .string(completed ? text : "")), ("status", status)])
        }
    }

    var part: JSONValue { .object([("type", .string("output_text")), ("text", .string(text)), ("annotations", .array([]))]) }

    private mutating func open(_ k: Kind) -> [(String, [(key: String, value: JSONValue)])] {
        var ev = close()
        kind = k
        text = ""
        let n = JSONValue.integer("\(done.count)")
        ev.append(("response.output_item.added", [("output_index", n), ("item", item(completed: false))]))
        if k == .message {
            ev.append(("response.content_part.added", [("item_id", .string(itemID)), ("output_index", n), ("content_index", .integer("0")),
                                                       ("part", .object([("type", .string("output_text")), ("text", .string("")), ("annotations", .array([]))]))]))
        }
        return ev
    }

    /// Events for one parsed delta.
    mutating func events(_ d: OutputDelta) -> [(String, [(key: String, value: JSONValue)])] {
        var ev: [(String, [(key: String, value: JSONValue)])] = []
        let kindNow: Kind, piece: String
        switch d {
        case .reasoning(let s): (kindNow, piece) = (.reasoning, s)
        case .content(let s): (kindNow, piece) = (.message, s)
        case .toolCallStart(let i, let n):
            name = n
            callID = "call_\(id.dropFirst(5))_\(i)"
            return open(.call(i))
        case .toolCallArguments(let i, let j): (kindNow, piece) = (.call(i), j)
        }
        if kind != kindNow { ev += open(kindNow) }
        text += piece
        let n = JSONValue.integer("\(done.count)")
        let type = kindNow == .reasoning ? "response.reasoning_text.delta" : kindNow == .message ? "response.output_text.delta" : "response.function_call_arguments.delta"
        var f: [(key: String, value: JSONValue)] = [("item_id", .string(itemID)), ("output_index", n)]
        if case .call = kindNow {} else { f.append(("content_index", .integer("0"))) }
        ev.append((type, f + [("delta", .string(piece))]))
        return ev
    }

    /// Closes the open item: its done events, and it joins the output.
    mutating func close() -> [(String, [(key: String, value: JSONValue)])] {
        guard let k = kind else { return [] }
        let n = JSONValue.integer("\(done.count)"), iid = JSONValue.string(itemID)
        var ev: [(String, [(key: String, value: JSONValue)])] = []
        switch k {
        case .reasoning: ev.append(("response.reasoning_text.done", [("item_id", iid), ("output_index", n), ("content_index", .integer("0")), ("text", .string(text))]))
        case .message:
            ev.append(("response.output_text.done", [("item_id", iid), ("output_index", n), ("content_index", .integer("0")), ("text", .string(text))]))
            ev.append(("response.content_part.done", [("item_id", iid), ("output_index", n), ("content_index", .integer("0")), ("part", part)]))
        case .call: ev.append(("response.function_call_arguments.done", [("item_id", iid), ("output_index", n), ("arguments", .string(text))]))
        }
        let finished = item(completed: true)
        ev.append(("response.output_item.done", [("output_index", n), ("item", finished)]))
        done.append(finished)
        kind = nil
        return ev
    }
}
