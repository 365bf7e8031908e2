// What Step 3.5 generates after the chat template's generation prompt (which opens `<think>`): reasoning up
// to `</think>`, then content, with tool calls in the Qwen3-Coder XML form
//   <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n</tool_call>
// parsed as the text streams in, in arbitrary chunks, with the same result as one chunk.
//
// References: llama.cpp `common/chat.cpp` (the Qwen3-Coder XML format StepFun-3.5-Flash uses) and its
// `tests/test-chat.cpp` StepFun cases (Tests/ChatTests holds them as data); users-asks.md (peers broke on
// an earlier turn's `</think>`, on `<tool_call>` opened inside the reasoning, on numeric-looking strings).
// Values are typed by the tool's JSON schema; output that is not a tool call stays text.

/// One piece of parsed output, in order.
public enum OutputDelta: Equatable, Sendable {
    case reasoning(String)
    case content(String)
    /// A tool call begins: its index in this output and the function name.
    case toolCallStart(index: Int, name: String)
    /// More of a tool call's arguments, as JSON text (the pieces of one call concatenate to an object).
    case toolCallArguments(index: Int, json: String)
}

/// The whole output, parsed.
public struct ParsedOutput: Equatable, Sendable {
    public var reasoning = ""
    public var content = ""
    public var toolCalls: [(name: String, arguments: String)] = []

    /// Nothing parsed yet.
    public init() {}

    public static func == (a: ParsedOutput, b: ParsedOutput) -> Bool {
        a.reasoning == b.reasoning && a.content == b.content && a.toolCalls.map(\.name) == b.toolCalls.map(\.name)
            && a.toolCalls.map(\.arguments) == b.toolCalls.map(\.arguments)
    }

    /// Folds deltas into the whole.
    public mutating func add(_ d: OutputDelta) {
        switch d {
        case .reasoning(let s): reasoning += s
        case .content(let s): content += s
        case .toolCallStart(_, let n): toolCalls.append((n, ""))
        case .toolCallArguments(let i, let j): toolCalls[i].arguments += j
        }
    }
}

/// Incremental parser of one generation.
public struct OutputParser: Sendable {
    private enum Mode: Sendable { case reasoning, content, toolCall }
    private var mode: Mode
    private var buffer: [Unicode.Scalar] = []
    /// Whether the current section has emitted text yet (its leading whitespace is dropped).
    private var started = false
    /// Whitespace held back at the end of the section (dropped if a tag or the end follows).
    private var pendingSpace: [Unicode.Scalar] = []
    /// The section state before a `<tool_call>` tag, restored if the tag turns out to be text.
    private var beforeCall: (space: [Unicode.Scalar], started: Bool, mode: Mode) = ([], false, .content)
    private var calls = 0
    private var call: (name: String?, params: Int)?
    /// Tool name -> parameter name -> JSON schema type(s).
    private let types: [String: [String: [String]]]

    /// A parser for output that starts inside the reasoning (after the template's generation prompt) or in
    /// the content, typing tool-call values by `tools` (OpenAI tool objects or bare function objects).
    public init(tools: [JSONValue] = [], startsInReasoning: Bool = true) {
        mode = startsInReasoning ? .reasoning : .content
        var t: [String: [String: [String]]] = [:]
        for tool in tools {
            let f = tool["function"] ?? tool
            guard let name = f["name"]?.string, case .object(let props) = f["parameters"]?["properties"] ?? .null else { continue }
            var m: [String: [String]] = [:]
            for (k, schema) in props {
                switch schema["type"] {
                case .string(let s): m[k] = [s]
                case .array(let a): m[k] = a.compactMap(\.string)
                default: m[k] = []
                }
            }
            t[name] = m
        }
        types = t
    }

    /// Parses a whole output at once.
    public static func parse(_ text: String, tools: [JSONValue] = [], startsInReasoning: Bool = true) -> ParsedOutput {
        var p = OutputParser(tools: tools, startsInReasoning: startsInReasoning)
        var out = ParsedOutput()
        for d in p.push(text) + p.finish() { out.add(d) }
        return out
    }

    /// Takes the next piece of text; returns what is now settled.
    public mutating func push(_ text: String) -> [OutputDelta] {
        buffer += text.unicodeScalars
        var out: [OutputDelta] = []
        while step(&out, final: false) {}
        return out
    }

    /// The end of the output: flushes what was held back (an unfinished tool call is closed with the
    /// parameters it completed; one that never named its function is text).
    public mutating func finish() -> [OutputDelta] {
        var out: [OutputDelta] = []
        while step(&out, final: true) {}
        switch mode {
        case .reasoning, .content:
            text(String(String.UnicodeScalarView(buffer)), &out, end: true)
        case .toolCall:
            if call?.name != nil { closeCall(&out) } else { text("<tool_call>" + String(String.UnicodeScalarView(buffer)), &out, end: true, as: .content) }
        }
        buffer = []
        return out
    }

    // MARK: steps

    /// Consumes what can be decided now; false when it needs more text.
    private mutating func step(_ out: inout [OutputDelta], final: Bool) -> Bool {
        switch mode {
        case .reasoning: return prose(&out, final: final, tags: ["</think>", "<tool_call>"])
        case .content: return prose(&out, final: final, tags: ["<tool_call>"])
        case .toolCall: return toolStep(&out, final: final)
        }
    }

    /// Reasoning or content: text up to the first tag, holding back what could still become a tag.
    private mutating func prose(_ out: inout [OutputDelta], final: Bool, tags: [String]) -> Bool {
        if let (at, tag) = firstTag(tags) {
            let before = Array(buffer[..<at])
            text(String(String.UnicodeScalarView(before)), &out, end: true)
            let trailing = before.isEmpty ? pendingSpace : Array(before.reversed().prefix { $0.properties.isWhitespace }.reversed())
            beforeCall = (started ? (before.allSatisfy(\.properties.isWhitespace) ? pendingSpace + before : trailing) : [], started, mode)
            buffer.removeFirst(at + tag.unicodeScalars.count)
            if tag == "<tool_call>" {
                mode = .toolCall
                call = (nil, 0)
            } else {
                mode = .content
            }
            started = false
            pendingSpace = []
            return true
        }
        if final { return false }
        let keep = partialTagSuffix(tags)
        text(String(String.UnicodeScalarView(buffer[..<(buffer.count - keep)])), &out, end: false)
        buffer.removeFirst(buffer.count - keep)
        return false
    }

    /// Emits section text: leading whitespace of a section dropped, trailing whitespace held back until
    /// more text follows (dropped at a tag or the end).
    private mutating func text(_ s: String, _ out: inout [OutputDelta], end: Bool, as forced: Mode? = nil) {
        var u = Array(s.unicodeScalars)
        if !started { u = Array(u.drop { $0.properties.isWhitespace }) }
        guard !u.isEmpty else { return }
        let body = u.count - u.reversed().prefix { $0.properties.isWhitespace }.count
        let visible = pendingSpace + u[..<body]
        if body > 0 {
            started = true
            pendingSpace = end ? [] : Array(u[body...])
            let piece = String(String.UnicodeScalarView(visible))
            out.append((forced ?? mode) == .reasoning ? .reasoning(piece) : .content(piece))
        } else if !end {
            pendingSpace += u
        }
    }

    private func firstTag(_ tags: [String]) -> (Int, String)? {
        var best: (Int, String)?
        for t in tags {
            let p = Array(t.unicodeScalars)
            guard p.count <= buffer.count else { continue }
            for i in 0...(buffer.count - p.count) where buffer[i] == p[0] && Array(buffer[i..<(i + p.count)]) == p {
                if best.map({ i < $0.0 }) ?? true { best = (i, t) }
                break
            }
        }
        return best
    }

    /// Length of the longest suffix of the buffer that is a proper prefix of a tag.
    private func partialTagSuffix(_ tags: [String]) -> Int {
        var keep = 0
        for t in tags {
            let p = Array(t.unicodeScalars)
            for n in stride(from: min(p.count - 1, buffer.count), to: 0, by: -1) where Array(buffer.suffix(n)) == Array(p.prefix(n)) {
                keep = max(keep, n)
                break
            }
        }
        return keep
    }

    // MARK: tool calls

    /// Inside `<tool_call>`: the function name, then each parameter, then the closing tags.
    private mutating func toolStep(_ out: inout [OutputDelta], final: Bool) -> Bool {
        let lead = buffer.prefix { $0.properties.isWhitespace }.count
        let rest = Array(buffer[lead...])
        guard call?.name != nil else {
            // `<function=NAME>` must come first; anything else means this was text.
            guard let (name, used) = element(rest, open: "<function=") else {
                if isPrefix(rest, of: "<function=") && !final { return false }
                // Not a tool call: the tag (and the space before it) is text of the section it was in, which
                // goes on.
                mode = beforeCall.mode
                started = beforeCall.started
                pendingSpace = []
                call = nil
                text(String(String.UnicodeScalarView(beforeCall.space)) + "<tool_call>", &out, end: false)
                return true
            }
            buffer.removeFirst(lead + used)
            call = (name, 0)
            out.append(.toolCallStart(index: calls, name: name))
            return true
        }
        if isPrefixOf(rest, "<parameter=") {
            guard let (pname, used) = element(rest, open: "<parameter=") else { return false }
            let body = Array(rest[used...])
            guard let end = find(body, "</parameter>") else { return false }
            emitParameter(pname, String(String.UnicodeScalarView(body[..<end])), &out)
            buffer.removeFirst(lead + used + end + "</parameter>".unicodeScalars.count)
            return true
        }
        var closing = 0  // scalars through `</function>` and the whitespace after it
        if isPrefixOf(rest, "</function>") {
            let n = "</function>".unicodeScalars.count
            closing = n + rest[n...].prefix { $0.properties.isWhitespace }.count
        }
        let after = Array(rest[closing...])
        if isPrefixOf(after, "</tool_call>") {
            buffer.removeFirst(lead + closing + "</tool_call>".unicodeScalars.count)
            endCall(&out)
            return true
        }
        if !final && (isPrefix(after, of: "</tool_call>") || (closing == 0 && (isPrefix(rest, of: "<parameter=") || isPrefix(rest, of: "</function>")))) {
            return false  // could still be a tag: wait for more
        }
        // Something else inside the call: close it with what it has, and treat the rest as text.
        buffer.removeFirst(lead + closing)
        endCall(&out)
        return true
    }

    private mutating func endCall(_ out: inout [OutputDelta]) {
        closeCall(&out)
        mode = .content
        started = false
        pendingSpace = []
    }

    /// `<TAG=NAME>` at the start of `s`: the name and the scalars used (through '>' and one newline).
    private func element(_ s: [Unicode.Scalar], open: String) -> (String, Int)? {
        let p = Array(open.unicodeScalars)
        guard s.count > p.count, Array(s.prefix(p.count)) == p, let close = s[p.count...].firstIndex(of: ">") else { return nil }
        var used = close + 1
        if used < s.count, s[used] == "\n" { used += 1 }
        let name = String(String.UnicodeScalarView(s[p.count..<close]))
        return name.unicodeScalars.contains("\n") || name.unicodeScalars.contains("<") ? nil : (name, used)
    }

    private func find(_ s: [Unicode.Scalar], _ t: String) -> Int? {
        let p = Array(t.unicodeScalars)
        guard p.count <= s.count else { return nil }
        return (0...(s.count - p.count)).first { s[$0] == p[0] && Array(s[$0..<($0 + p.count)]) == p }
    }

    /// Whether `s` could still grow into something starting with `t`.
    private func isPrefix(_ s: [Unicode.Scalar], of t: String) -> Bool {
        let p = Array(t.unicodeScalars)
        return s.count < p.count ? Array(p.prefix(s.count)) == s : Array(s.prefix(p.count)) == p
    }

    private func isPrefixOf(_ s: [Unicode.Scalar], _ t: String) -> Bool {
        let p = Array(t.unicodeScalars)
        return s.count >= p.count && Array(s.prefix(p.count)) == p
    }

    private mutating func emitParameter(_ name: String, _ raw: String, _ out: inout [OutputDelta]) {
        var v = Substring(raw).unicodeScalars
        if v.first == "\n" { v = v.dropFirst() }
        if v.last == "\n" { v = v.dropLast() }
        let value = typed(String(v), types[call?.name ?? ""]?[name] ?? [])
        var key = ""
        JSONValue.quote(name, into: &key, ensureASCII: false)
        out.append(.toolCallArguments(index: calls, json: (call!.params == 0 ? "{" : ", ") + key + ": " + value.pythonJSON()))
        call!.params += 1
    }

    private mutating func closeCall(_ out: inout [OutputDelta]) {
        guard let c = call, c.name != nil else { return }
        out.append(.toolCallArguments(index: calls, json: c.params == 0 ? "{}" : "}"))
        calls += 1
        call = nil
    }

    /// A parameter's text as its schema's type: numbers, booleans, objects and arrays parsed when they
    /// parse as that type, strings (and anything without a schema) kept as written.
    func typed(_ s: String, _ kinds: [String]) -> JSONValue {
        let parsed = try? JSONValue.parse(s)
        for k in kinds {
            switch (k, parsed) {
            case ("integer", .integer?), ("number", .integer?), ("number", .double?), ("object", .object?), ("array", .array?):
                return parsed!
            case ("null", _) where s == "null":
                return .null
            case ("boolean", _):
                let l = s.lowercased()
                if l == "true" || l == "false" { return .bool(l == "true") }
            default: break
            }
        }
        return .string(s)
    }
}
