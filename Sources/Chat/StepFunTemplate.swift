// Step 3.5 Flash's chat template, rendered natively (there is no Jinja engine among the Swift packages).
//
// Reference: `models/templates/StepFun3.5-Flash.jinja` in the llama-cpp-python 0.3.36 sdist (fetched by
// Scripts/chat/fetch-template.sh; read, not copied), run the way Hugging Face transformers runs chat
// templates; llama.cpp `common/chat.cpp` `trim_all_content` (StepFun contents trimmed before rendering,
// `tests/test-chat.cpp` "StepFun trimming regression test"). Checked byte for byte against jinja2 on the
// corpus that Scripts/chat/make_corpus.py writes (Tests/ChatTests).
//
// The template's parts, in order: BOS; a system turn (the first message if it is `system`, plus the tools
// block when there are tools); every message (user, later system or `observation`, assistant with
// reasoning and tool calls, runs of tool messages merged into one `tool_response` turn); the generation
// prompt, which opens `<think>`.

/// Renders conversations with Step 3.5 Flash's chat template.
public enum StepFunTemplate {
    /// The tokens the template uses.
    public static let imStart = "<|im_start|>", imEnd = "<|im_end|>"

    /// The prompt for `messages` (an array of message objects as OpenAI sends them, after `preprocess`) and
    /// `tools` (the request's tool objects, or nil), with `bos` first and, when `addGenerationPrompt`, the
    /// opening of the assistant's turn.
    public static func render(messages: [JSONValue], tools: [JSONValue]?, addGenerationPrompt: Bool, bos: String) -> String {
        var out = bos
        let first = messages.first
        let systemFirst = first?["role"]?.string == "system"
        if let tools, !tools.isEmpty {
            out += imStart + "system\n"
            if systemFirst { out += content(first?["content"]) + "\n\n" }
            out += "# Tools\n\nYou have access to the following functions in JSONSchema format:\n\n<tools>"
            for t in tools { out += "\n" + t.pythonJSON() }
            out += toolsFooter
        } else if systemFirst {
            out += imStart + "system\n" + content(first?["content"]) + imEnd + "\n"
        }
        let lastQuery = lastQueryIndex(messages)
        for (i, m) in messages.enumerated() { out += turn(m, at: i, in: messages, lastQuery: lastQuery) }
        if addGenerationPrompt { out += imStart + "assistant\n<think>\n" }
        return out
    }

    /// The instructions after the tool list (the template's text, verbatim).
    static let toolsFooter = "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...>\n...\n</function> block must be nested within <tool_call>\n...\n</tool_call> XML tags\n- Required parameters MUST be specified\n</IMPORTANT>"
        + imEnd + "\n"

    /// The template's `render_content`: nothing for null, a string as it is, a mapping's `value` or `text`,
    /// a list's text parts (`value` or `text`) concatenated with `<im_patch>` for images.
    static func content(_ c: JSONValue?) -> String {
        guard let c else { return "" }
        switch c {
        case .string(let s): return s
        case .object: return (c["value"] ?? c["text"])?.pythonString ?? ""
        case .array(let parts):
            return parts.map { p in
                switch p["type"]?.string {
                case "text": (p["value"] ?? p["text"])?.pythonString ?? ""
                case "image": "<im_patch>"
                default: ""
                }
            }.joined()
        default: return ""
        }
    }

    /// Index of the last user message that is a real query (not a tool response passed as a user turn);
    /// assistant turns after it keep their reasoning. The last index when there is none.
    static func lastQueryIndex(_ messages: [JSONValue]) -> Int {
        for (i, m) in messages.enumerated().reversed() where m["role"]?.string == "user" {
            let c = content(m["content"])
            if !(c.hasPrefix("<tool_response>") && c.hasSuffix("</tool_response>")) { return i }
        }
        return messages.count - 1
    }

    /// One message's part of the prompt.
    static func turn(_ m: JSONValue, at i: Int, in messages: [JSONValue], lastQuery: Int) -> String {
        let role = m["role"]?.string ?? ""
        let text = content(m["content"])
        // A system message is a turn of its own unless it is the first (that one went into the header).
        if role == "user" || (role == "system" && i > 0) {
            let name = role == "system" && m["name"]?.string == "observation" ? "observation" : role
            return imStart + name + "\n" + text + imEnd + "\n"
        }
        switch role {
        case "assistant":
            return assistant(m, content: text, keepReasoning: i > lastQuery)
        case "tool":
            var out = i == 0 || messages[i - 1]["role"]?.string != "tool" ? imStart + "tool_response\n" : ""
            out += "<tool_response>" + text + "</tool_response>"
            if i == messages.count - 1 || messages[i + 1]["role"]?.string != "tool" { out += imEnd + "\n" }
            return out
        default:
            return ""
        }
    }

    /// An assistant turn: reasoning (from `reasoning_content`, or split off inline `<think>...</think>`),
    /// shown only after the last query; the content; each tool call as XML.
    static func assistant(_ m: JSONValue, content text: String, keepReasoning: Bool) -> String {
        var content = text, reasoning = ""
        if case .string = m["reasoning_content"] {
            reasoning = Self.content(m["reasoning_content"])
        } else {
            let parts = split(text, by: "</think>")
            if parts.count > 1 {
                reasoning = lstripNewlines(split(rstripNewlines(parts[0]), by: "<think>").last!)
                content = lstripNewlines(parts.last!)
            }
        }
        var out = imStart + "assistant\n" + (keepReasoning ? "<think>\n" + reasoning + "\n</think>\n" : "") + content
        for call in m["tool_calls"]?.array ?? [] { out += toolCall(call) }
        return out + imEnd + "\n"
    }

    /// One tool call: `<tool_call><function=NAME>` and each argument as `<parameter=KEY>` (objects and
    /// arrays as JSON, scalars as Python prints them).
    static func toolCall(_ c: JSONValue) -> String {
        let f: JSONValue = c["function"] ?? c
        var out = "<tool_call>\n<function=" + (f["name"]?.pythonString ?? "") + ">\n"
        if case .object(let args) = f["arguments"] ?? .null {
            for (k, v) in args {
                let value: String
                switch v {
                case .object, .array: value = v.pythonJSON()
                default: value = v.pythonString
                }
                out += "<parameter=" + k + ">\n" + value + "\n</parameter>\n"
            }
        }
        return out + "</function>\n</tool_call>"
    }

    /// Python's `str.split(sep)` (on Unicode scalars, as Python compares code points).
    static func split(_ s: String, by sep: String) -> [String] {
        let u = Array(s.unicodeScalars), p = Array(sep.unicodeScalars)
        var parts: [String] = [], start = 0, i = 0
        while i + p.count <= u.count {
            if u[i] == p[0] && Array(u[i..<(i + p.count)]) == p {
                parts.append(String(String.UnicodeScalarView(u[start..<i])))
                i += p.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(u[start...])))
        return parts
    }

    /// Python's `rstrip('\n')` and `lstrip('\n')` (on scalars: "\r\n" is one Swift Character).
    static func rstripNewlines(_ s: String) -> String {
        var u = Substring(s).unicodeScalars
        while u.last == "\n" { u = u.dropLast() }
        return String(u)
    }

    static func lstripNewlines(_ s: String) -> String {
        var u = Substring(s).unicodeScalars
        while u.first == "\n" { u = u.dropFirst() }
        return String(u)
    }

    /// llama.cpp's StepFun preprocessing: message contents, text parts and `reasoning_content` trimmed of
    /// leading and trailing whitespace (stray whitespace drives the model into reasoning loops), and tool
    /// call arguments sent as a JSON string (OpenAI's form) parsed into an object. Throws when such a string
    /// is not JSON.
    public static func preprocess(_ messages: [JSONValue]) throws -> [JSONValue] {
        try messages.map { m in
            guard case .object(var kv) = m else { return m }
            for i in kv.indices {
                switch kv[i].key {
                case "content": kv[i].value = trimContent(kv[i].value)
                case "reasoning_content": if case .string(let s) = kv[i].value { kv[i].value = .string(trim(s)) }
                case "tool_calls": kv[i].value = try parseArguments(kv[i].value)
                default: break
                }
            }
            return .object(kv)
        }
    }

    static func trimContent(_ c: JSONValue) -> JSONValue {
        switch c {
        case .string(let s): return .string(trim(s))
        case .array(let parts):
            return .array(parts.map { p in
                guard p["type"]?.string == "text", case .object(var kv) = p, let t = p["text"]?.string,
                      let at = kv.firstIndex(where: { $0.key == "text" }) else { return p }
                kv[at].value = .string(trim(t))
                return .object(kv)
            })
        default: return c
        }
    }

    static func parseArguments(_ calls: JSONValue) throws -> JSONValue {
        guard case .array(let list) = calls else { return calls }
        return .array(try list.map { call in
            guard case .object(var kv) = call else { return call }
            if let fi = kv.firstIndex(where: { $0.key == "function" }), case .object(var f) = kv[fi].value {
                try parse(&f)
                kv[fi].value = .object(f)
            } else {
                try parse(&kv)
            }
            return .object(kv)
        })
    }

    private static func parse(_ f: inout [(key: String, value: JSONValue)]) throws {
        if let ai = f.firstIndex(where: { $0.key == "arguments" }), case .string(let s) = f[ai].value {
            f[ai].value = try JSONValue.parse(s)
        }
    }

    /// C's isspace set, as llama.cpp's `trim_whitespace` uses it.
    static func trim(_ s: String) -> String {
        let ws: Set<Unicode.Scalar> = [" ", "\t", "\n", "\u{0B}", "\u{0C}", "\r"]
        var u = Substring(s).unicodeScalars
        while let c = u.first, ws.contains(c) { u = u.dropFirst() }
        while let c = u.last, ws.contains(c) { u = u.dropLast() }
        return String(u)
    }
}
