import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `switchyard serve` process on a free loopback port, stopped at the end. It serves the random-weight
/// tiny model unless told another (`model: "builtin:demo"` for the shipped one).
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private(set) var port = 0

    init(_ args: [String] = [], model: String = "builtin:tiny") throws {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let direct = dir.appendingPathComponent("switchyard").path
        let bin = FileManager.default.fileExists(atPath: direct) ? direct
            : Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().appendingPathComponent("switchyard").path }
                .first { FileManager.default.fileExists(atPath: $0) }!
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["serve", "--port", "0", "-m", model] + args
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let start = Date()
        var text = ""
        while port == 0 && Date().timeIntervalSince(start) < 60 {
            let d = err.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
            if let r = text.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[r].split(separator: ":").last!)!
            }
        }
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// Sends a request; returns status, headers and body.
    func request(_ path: String, method: String = "POST", body: String? = nil, headers: [String: String] = [:]) async throws
        -> (status: Int, headers: [String: String], body: String) {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        r.httpBody = body.map { Data($0.utf8) }
        r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        let (data, resp) = try await URLSession.shared.data(for: r)
        let h = resp as! HTTPURLResponse
        var hs: [String: String] = [:]
        for (k, v) in h.allHeaderFields { hs["\(k)".lowercased()] = "\(v)" }
        return (h.statusCode, hs, String(decoding: data, as: UTF8.self))
    }
}

func object(_ s: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any] }

/// The OpenAI-compatible server over the engine (the random-weight tiny model).
@Suite(.serialized) struct ServerTests {
    /// If this fails, a chat completion stops coming back in OpenAI's shape: a message with content or
    /// reasoning_content, a finish reason, and usage that counts the prompt and the generated tokens.
    @Test func chatCompletion() async throws {
        let s = try ServerProcess()
        let r = try await s.request("/v1/chat/completions", body: #"{"model": "switchyard-tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0}"#)
        #expect(r.status == 200, "\(r.body)")
        let o = try object(r.body)
        #expect(o["object"] as? String == "chat.completion")
        let choice = (o["choices"] as! [[String: Any]])[0], usage = o["usage"] as! [String: Any]
        #expect(choice["finish_reason"] as? String == "length")
        let msg = choice["message"] as! [String: Any]
        #expect(msg["role"] as? String == "assistant" && (msg["content"] != nil || msg["reasoning_content"] != nil))
        #expect(usage["completion_tokens"] as? Int == 8 && (usage["prompt_tokens"] as? Int ?? 0) > 0)
    }

    /// If this fails, streaming breaks OpenAI's SSE sequence: a first chunk with the role, deltas, one chunk
    /// with the finish reason, the usage chunk when stream_options.include_usage, then `data: [DONE]`.
    @Test func streamedChatCompletion() async throws {
        let s = try ServerProcess()
        let r = try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}"#)
        #expect(r.status == 200)
        let events = r.body.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        #expect(events.last == "[DONE]")
        let chunks = try events.dropLast().map(object)
        let first = ((chunks[0]["choices"] as! [[String: Any]])[0]["delta"]) as! [String: Any]
        #expect(first["role"] as? String == "assistant")
        let finishes = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        #expect(finishes == ["length"])
        let usage = try #require(chunks.last?["usage"] as? [String: Any])
        #expect(usage["completion_tokens"] as? Int == 6 && (chunks.last?["choices"] as? [Any])?.isEmpty == true)
    }

    /// If this fails, an error status or shape is wrong: malformed JSON and a bad field (400, naming the
    /// parameter), n > 1 (400 naming n), an unknown model (404), a missing or wrong key (401), a body over
    /// the limit (413).
    @Test func errorsHaveOpenAIShapesAndStatuses() async throws {
        let s = try ServerProcess(["--api-key", "sekret", "--max-body", "2000"])
        let auth = ["Authorization": "Bearer sekret"]
        let cases: [(String, [String: String], Int, String?)] = [
            ("{bad", auth, 400, nil),
            (#"{"messages": "hi"}"#, auth, 400, "messages"),
            (#"{"messages": [{"role": "user", "content": "x"}], "n": 2}"#, auth, 400, "n"),
            (#"{"messages": [{"role": "user", "content": "x"}], "logit_bias": {}}"#, auth, 400, "logit_bias"),
            (#"{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#, auth, 400, "temperature"),
            (#"{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}"#, auth, 404, "model"),
            (#"{"messages": [{"role": "user", "content": "x"}]}"#, [:], 401, nil),
            (#"{"messages": [{"role": "user", "content": "x"}]}"#, ["Authorization": "Bearer wrong"], 401, nil),
            (#"{"messages": [{"role": "user", "content": ""# + String(repeating: "x", count: 3000) + #""}]}"#, auth, 413, nil),
        ]
        for (body, headers, status, param) in cases {
            let r = try await s.request("/v1/chat/completions", body: body, headers: headers)
            #expect(r.status == status, "\(body.prefix(60)): \(r.body)")
            let err = try object(r.body)["error"] as? [String: Any]
            #expect(err?["message"] is String && err?["type"] is String, "\(r.body)")
            if let p = param { #expect(err?["param"] as? String == p, "\(r.body)") }
        }
        // Anthropic's header carries the key too, and /health needs none.
        #expect(try await s.request("/v1/models", method: "GET", headers: ["x-api-key": "sekret"]).status == 200)
        #expect(try await s.request("/health", method: "GET").status == 200)
    }

    /// If this fails, a full queue accepts (or drops) a request instead of answering 503 with Retry-After:
    /// one slot, no queue, one long request running.
    @Test func fullQueueIs503WithRetryAfter() async throws {
        let s = try ServerProcess(["-np", "1", "--max-queue", "0"])
        let long = Task { try await s.request("/v1/completions", body: #"{"prompt": "a", "max_tokens": 3000, "temperature": 0}"#) }
        var answer: (status: Int, headers: [String: String], body: String)?
        for _ in 0..<50 {
            try await Task.sleep(nanoseconds: 100_000_000)
            let r = try await s.request("/v1/completions", body: #"{"prompt": "b", "max_tokens": 2}"#)
            if r.status == 503 { answer = r; break }
        }
        let r = try #require(answer, "never refused")
        #expect(r.headers["retry-after"] == "1" && r.body.contains("queue is full"), "\(r.headers) \(r.body)")
        long.cancel()
    }

    /// If this fails, a client that hangs up mid-stream keeps its request running (its slot and KV held):
    /// after the connection closes, `/slots` must show nothing running within a few seconds.
    @Test func disconnectCancelsTheRequest() async throws {
        let s = try ServerProcess(["-np", "1"])
        // curl reads the stream for 2 s and hangs up.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--max-time", "2", "http://127.0.0.1:\(s.port)/v1/chat/completions", "-d",
                          #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100000, "stream": true}"#]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        let streamed = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        #expect(String(decoding: streamed, as: UTF8.self).contains("chat.completion.chunk"))
        var running = -1
        for _ in 0..<50 {
            try await Task.sleep(nanoseconds: 200_000_000)
            running = ((try object(try await s.request("/slots", method: "GET").body))["running"] as? [Any])?.count ?? -1
            if running == 0 { break }
        }
        #expect(running == 0)
    }

    /// If this fails, the helpers stop answering as llama-server's do: /tokenize and /detokenize round trip,
    /// /apply-template renders tools into the system turn and opens the assistant's <think>, /props and
    /// /v1/completions answer.
    @Test func helpers() async throws {
        let s = try ServerProcess()
        let t = try object(try await s.request("/tokenize", body: #"{"content": "hello world"}"#).body)["tokens"] as! [Int]
        #expect(!t.isEmpty)
        let d = try object(try await s.request("/detokenize", body: "{\"tokens\": \(t)}").body)["content"] as? String
        #expect(d == "hello world")
        let p = try object(try await s.request("/apply-template", body: #"{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]}"#).body)["prompt"] as? String ?? ""
        #expect(p.contains("<tools>\n{\"type\": \"function\"") && p.hasSuffix("<|im_start|>assistant\n<think>\n"))
        #expect(try await s.request("/props", method: "GET").status == 200)
        let c = try object(try await s.request("/v1/completions", body: #"{"prompt": "Once", "max_tokens": 5, "temperature": 0}"#).body)
        #expect(((c["choices"] as? [[String: Any]])?.first?["text"]) is String)
        #expect(try await s.request("/detokenize", body: #"{"tokens": [-1]}"#).status == 400)
    }

    /// If this fails, Anthropic's Messages API stops answering in its shape: a message with content
    /// blocks, a stop reason and usage; the streamed event sequence (message_start, ping, content blocks
    /// opened, delta'd and stopped in order, message_delta, message_stop); count_tokens; Anthropic's error
    /// shape for a missing max_tokens (400) and a wrong x-api-key (401).
    @Test func anthropicMessages() async throws {
        let s = try ServerProcess(["--api-key", "k"])
        let key = ["x-api-key": "k"]
        let history = #"[{"role": "user", "content": [{"type": "text", "text": "Weather?"}]}, {"role": "assistant", "content": [{"type": "thinking", "thinking": "call it"}, {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Bern"}}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "21 C"}]}]"#
        let tools = #"[{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]"#
        let r = try await s.request("/v1/messages", body: #"{"model": "switchyard-tiny", "max_tokens": 6, "temperature": 0, "system": [{"type": "text", "text": "Be brief."}], "messages": \#(history), "tools": \#(tools)}"#, headers: key)
        #expect(r.status == 200, "\(r.body)")
        let o = try object(r.body)
        #expect(o["type"] as? String == "message" && o["stop_reason"] as? String == "max_tokens")
        #expect(!((o["content"] as? [Any]) ?? []).isEmpty && ((o["usage"] as? [String: Any])?["output_tokens"] as? Int) == 6)
        let st = try await s.request("/v1/messages", body: #"{"max_tokens": 5, "temperature": 0, "stream": true, "messages": \#(history)}"#, headers: key)
        let names = st.body.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        #expect(names.first == "message_start" && names.dropFirst().first == "ping" && names.suffix(2) == ["message_delta", "message_stop"], "\(names)")
        let blocks = names.filter { $0.hasPrefix("content_block") }
        #expect(blocks.first == "content_block_start" && blocks.last == "content_block_stop" && blocks.contains("content_block_delta"))
        #expect(blocks.filter { $0 == "content_block_start" }.count == blocks.filter { $0 == "content_block_stop" }.count)
        let n = try object(try await s.request("/v1/messages/count_tokens", body: #"{"messages": \#(history), "tools": \#(tools)}"#, headers: key).body)
        #expect((n["input_tokens"] as? Int ?? 0) > 0)
        let bad = try await s.request("/v1/messages", body: #"{"messages": [{"role": "user", "content": "x"}]}"#, headers: key)
        let badBody = try object(bad.body)
        #expect(bad.status == 400 && badBody["type"] as? String == "error")
        let unauth = try await s.request("/v1/messages", body: #"{"max_tokens": 2, "messages": [{"role": "user", "content": "x"}]}"#, headers: ["x-api-key": "no"])
        let unauthBody = try object(unauth.body)
        #expect(unauth.status == 401 && (unauthBody["error"] as? [String: Any])?["type"] as? String == "authentication_error")
    }

    /// If this fails, a Codex-style Responses request breaks: built-in tool types beside a function tool
    /// must be accepted (and ignored), function_call items with string arguments must render, the output
    /// must come back as items with usage; a stored-response reference gets a 400 naming it.
    @Test func responsesAcceptCodexPayloads() async throws {
        let s = try ServerProcess()
        let body = #"{"model": "switchyard-tiny", "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]}, {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{\"cmd\": [\"ls\"]}"}, {"type": "function_call_output", "call_id": "c1", "output": "a.txt"}], "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"cmd": {"type": "array"}}}}, {"type": "local_shell"}, {"type": "web_search"}, {"type": "custom", "name": "apply_patch"}], "max_output_tokens": 4, "temperature": 0, "store": false, "reasoning": {"effort": "low"}}"#
        let r = try await s.request("/v1/responses", body: body)
        #expect(r.status == 200, "\(r.body)")
        let o = try object(r.body)
        #expect(o["object"] as? String == "response" && !((o["output"] as? [Any]) ?? []).isEmpty)
        #expect(((o["usage"] as? [String: Any])?["output_tokens"] as? Int) == 4)
        let bad = try await s.request("/v1/responses", body: #"{"input": "hi", "previous_response_id": "resp_1"}"#)
        #expect(bad.status == 400 && bad.body.contains("previous_response_id"))
    }

    /// If this fails, /metrics stops exporting llama-server's names and ours, or stops counting: after one
    /// request of 5 tokens with 1 MTP draft per step, the predicted-token counter is 5, the requests and
    /// KV gauges are there, and the MTP counters per draft position appear.
    @Test func metricsCountRequests() async throws {
        let s = try ServerProcess(["--metrics", "--draft", "1"])
        let r = try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "temperature": 0}"#)
        #expect(r.status == 200, "\(r.body)")
        let m = try await s.request("/metrics", method: "GET")
        #expect(m.status == 200)
        for line in ["llamacpp:tokens_predicted_total 5", "switchyard_requests_total 1", "# TYPE llamacpp:requests_processing gauge",
                     "llamacpp:kv_cache_usage_ratio", "llamacpp:prompt_tokens_total", #"switchyard_mtp_drafted_total{position="1"}"#] {
            #expect(m.body.contains(line), "missing \(line) in\n\(m.body)")
        }
    }

    /// If this fails, the web UI loses its data: `/` must serve the page without a key, a response must
    /// carry llama-server's `timings` with the MTP counts, and `/cluster` (behind the key) must count the
    /// request and the routed tokens of every MoE layer (each token picks top-k experts in each layer).
    @Test func webUIAndClusterData() async throws {
        let s = try ServerProcess(["--api-key", "k", "--draft", "1"])
        let page = try await s.request("/", method: "GET")
        #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true && page.body.contains("switchyardUI"))
        #expect(try await s.request("/cluster", method: "GET").status == 401)
        let auth = ["Authorization": "Bearer k"]
        let r = try object(try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "temperature": 0}"#, headers: auth).body)
        let t = try #require(r["timings"] as? [String: Any])
        let prompt = (r["usage"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0
        #expect(t["predicted_n"] as? Int == 5 && t["prompt_n"] as? Int == prompt && (t["draft_n"] as? Int ?? 0) > 0, "\(t)")
        let c = try object(try await s.request("/cluster", method: "GET", headers: auth).body)
        #expect((c["ranks"] as? [Any])?.count == 1 && (c["workers"] as? [Any])?.isEmpty == true)
        let served = try #require(c["served"] as? [String: Any])
        #expect(served["requests"] as? Int == 1 && served["completion_tokens"] as? Int == 5)
        #expect(((served["mtp"] as? [String: Any])?["drafted"] as? [Int])?.first ?? 0 > 0)
        let load = try #require(c["expert_load"] as? [String: Any])
        let counts = try #require(load["counts"] as? [[Int]]), tokens = try #require(load["tokens"] as? [Int])
        #expect(!counts.isEmpty && counts.count == tokens.count)
        // Every token routed through a layer picks the same number of experts there.
        let k = counts[0].reduce(0, +) / max(tokens[0], 1)
        #expect(k > 0 && zip(counts, tokens).allSatisfy { $0.reduce(0, +) == k * $1 && $1 > 0 }, "\(counts) \(tokens)")
    }

    /// If this fails, a forced tool choice stops forcing: with two tools and "required" the answer must be
    /// a call to one of them; with a named function, a call to that one (OpenAI); Anthropic's {"type": "any"}
    /// with thinking disabled must give a tool_use block and no thinking. A reasoning budget (3 tokens, the
    /// server's flag) is what lets a model with random weights reach the call at all.
    @Test func toolChoiceForcesACall() async throws {
        let s = try ServerProcess(["--reasoning-budget", "3"])
        let tools = #"[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}, {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}]"#
        for (choice, allowed) in [(#""required""#, ["get_weather", "get_time"]), (#"{"type": "function", "function": {"name": "get_time"}}"#, ["get_time"])] {
            for seed in 1...3 {
                let r = try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "Weather in Bern?"}], "max_tokens": 40, "temperature": 1, "seed": \#(seed), "tools": \#(tools), "tool_choice": \#(choice)}"#)
                let choice0 = try #require((try object(r.body)["choices"] as? [[String: Any]])?.first, "\(r.body)")
                let calls = (choice0["message"] as? [String: Any])?["tool_calls"] as? [[String: Any]] ?? []
                let name = (calls.first?["function"] as? [String: Any])?["name"] as? String
                #expect(choice0["finish_reason"] as? String == "tool_calls" && allowed.contains(name ?? ""), "\(r.body)")
            }
        }
        let anthropicTools = #"[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}, {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]"#
        let a = try object(try await s.request("/v1/messages", body: #"{"max_tokens": 40, "messages": [{"role": "user", "content": "Time?"}], "tools": \#(anthropicTools), "tool_choice": {"type": "any"}, "thinking": {"type": "disabled"}}"#).body)
        let blocks = a["content"] as? [[String: Any]] ?? []
        #expect(a["stop_reason"] as? String == "tool_use" && blocks.contains { $0["type"] as? String == "tool_use" }, "\(a)")
        #expect(!blocks.contains { $0["type"] as? String == "thinking" }, "\(a)")
    }

    /// If this fails, tool_choice errors lose their 400 or their parameter: a name not among the tools, a
    /// required call without tools, and an unknown form.
    @Test func badToolChoiceIs400() async throws {
        let s = try ServerProcess()
        let tools = #"[{"type": "function", "function": {"name": "f", "parameters": {}}}]"#
        for (tools, choice) in [(tools, #"{"type": "function", "function": {"name": "g"}}"#), ("[]", #""required""#), (tools, #""sometimes""#)] {
            let r = try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "x"}], "tools": \#(tools), "tool_choice": \#(choice)}"#)
            let param = (try object(r.body)["error"] as? [String: Any])?["param"] as? String
            #expect(r.status == 400 && param == "tool_choice", "\(r.body)")
        }
    }
}
