import Foundation
import Testing

/// The shipped demo model through the serving path: held-out conversations (Tests/Fixtures/demo/demo.json,
/// never trained on) sent to `/v1/chat/completions` greedily, as Scripts/train/evaluate.py sends them.
@Suite(.serialized) struct DemoServingTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/demo/demo.json")

    /// The held-out prompts of one kind ("chat" or "tools"): messages, and the tools offered.
    static func prompts(_ kind: String) throws -> [[String: Any]] {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture)) as! [String: Any]
        return doc[kind] as! [[String: Any]]
    }

    /// Sends every prompt of a kind (greedy, 160 tokens at most) and returns each reply's choice.
    static func replies(_ kind: String) async throws -> [(prompt: [String: Any], choice: [String: Any])] {
        let s = try ServerProcess(["-np", "2"], model: "builtin:demo")
        var out: [(prompt: [String: Any], choice: [String: Any])] = []
        for p in try prompts(kind) {
            let body: [String: Any] = ["messages": p["messages"]!, "tools": p["tools"]!, "temperature": 0, "max_tokens": 160]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let r = try await s.request("/v1/chat/completions", body: text)
            #expect(r.status == 200, "\(r.body)")
            let choice = ((try object(r.body))["choices"] as? [[String: Any]])?.first ?? [:]
            out.append((p, choice))
        }
        return out
    }

    /// If this fails, the demo model (or the template, the reasoning parser or the stop on `<|im_end|>`) no
    /// longer ends at least 18 of 20 held-out chat turns well-formed: reasoning closed, an answer, "stop".
    @Test func chatTurnsEndWellFormed() async throws {
        let rs = try await Self.replies("chat")
        let ok = rs.filter { r in
            let m = r.choice["message"] as? [String: Any] ?? [:]
            let reasoning = (m["reasoning_content"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let content = (m["content"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            return r.choice["finish_reason"] as? String == "stop" && !reasoning.isEmpty && !content.isEmpty
        }
        #expect(rs.count == 20)
        #expect(ok.count >= 18, "\(ok.count) of \(rs.count) well-formed")
    }

    /// If this fails, fewer than 16 of 20 held-out tool prompts give a tool call that the server's parser
    /// returns, to an offered tool, with arguments valid for its schema.
    @Test func toolPromptsGiveValidCalls() async throws {
        let rs = try await Self.replies("tools")
        let ok = rs.filter { r in
            let tools = r.prompt["tools"] as! [[String: Any]]
            var schemas: [String: [String: Any]] = [:]
            for t in tools {
                let f = t["function"] as! [String: Any]
                schemas[f["name"] as! String] = f["parameters"] as? [String: Any] ?? [:]
            }
            let calls = (r.choice["message"] as? [String: Any])?["tool_calls"] as? [[String: Any]] ?? []
            guard r.choice["finish_reason"] as? String == "tool_calls", !calls.isEmpty else { return false }
            return calls.allSatisfy { c in
                let f = c["function"] as? [String: Any] ?? [:]
                guard let name = f["name"] as? String, let schema = schemas[name], let a = f["arguments"] as? String,
                      let args = try? JSONDecoder().decode([String: JSONValue].self, from: Data(a.utf8)) else { return false }
                return Self.valid(args, schema)
            }
        }
        #expect(rs.count == 20)
        #expect(ok.count >= 16, "\(ok.count) of \(rs.count) valid tool calls")
    }

    /// Whether arguments satisfy a tool's JSON schema: required present, no unknown names, types and enums.
    static func valid(_ args: [String: JSONValue], _ schema: [String: Any]) -> Bool {
        let props = schema["properties"] as? [String: [String: Any]] ?? [:]
        let required = schema["required"] as? [String] ?? []
        guard required.allSatisfy({ args[$0] != nil }), args.keys.allSatisfy({ props[$0] != nil }) else { return false }
        for (k, v) in args {
            let p = props[k]!
            if let options = p["enum"] as? [String] {
                guard case .string(let s) = v, options.contains(s) else { return false }
            }
            switch (p["type"] as? String, v) {
            case ("string", .string), ("number", .number), ("boolean", .bool), (nil, _), ("object", _), ("array", _): break
            case ("integer", .number(let n)): if n.rounded() != n { return false }
            default: return false
            }
        }
        return true
    }
}

/// One JSON value, keeping booleans apart from numbers (JSONDecoder decodes neither as the other).
enum JSONValue: Decodable {
    case string(String), number(Double), bool(Bool), other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .other }
    }
}
