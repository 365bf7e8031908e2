import Chat
import Testing

/// Reasoning, content and Qwen3-Coder XML tool calls in Step 3.5's output.
@Suite struct OutputParserTests {
    static func tool(_ name: String, _ props: String) -> JSONValue {
        try! JSONValue.parse(#"{"type": "function", "function": {"name": "\#(name)", "parameters": {"type": "object", "properties": \#(props)}}}"#)
    }
    /// The tools of llama.cpp's tests/test-chat.cpp StepFun cases (their parameter types).
    static let tools = [
        tool("magic", #"{"name": {"type": "string"}, "ref": {"type": "string"}}"#),
        tool("special_function", #"{"arg1": {"type": "integer"}}"#),
        tool("special_function_with_opt", #"{"arg1": {"type": "integer"}, "arg2": {"type": "integer"}}"#),
        tool("magic_int", #"{"ref": {"type": "integer"}, "name": {"type": "string"}}"#),
        tool("string_param", #"{"text": {"type": "string"}}"#),
        tool("quoted_unquoted", #"{"quoted": {"type": "string"}, "unquoted": {"type": "string"}}"#),
        tool("amount", #"{"orig": {"type": "number"}}"#),
        tool("imaginary_number", #"{"number": {"type": "object"}}"#),
        tool("flags", #"{"on": {"type": "boolean"}, "tags": {"type": "array"}, "n": {"type": ["integer", "null"]}}"#),
    ]

    /// (output, reasoning, content, [(name, arguments JSON)]): llama.cpp's StepFun cases, then ours.
    static let cases: [(String, String, String, [(String, String)])] = [
        ("I was thinking\n</think>\nNow I'm not.", "I was thinking", "Now I'm not.", []),
        ("Let me call the magic tool\n</think>\n<tool_call>\n<function=magic>\n<parameter=name>\nfooBar\n</parameter>\n<parameter=ref>\n5123123\n</parameter>\n</function>\n</tool_call>",
         "Let me call the magic tool", "", [("magic", #"{"name": "fooBar", "ref": "5123123"}"#)]),
        ("Let me call the special function\n</think>\n<tool_call>\n<function=special_function>\n<parameter=arg1>\n42555916\n</parameter>\n</function>\n</tool_call>",
         "Let me call the special function", "", [("special_function", #"{"arg1": 42555916}"#)]),
        ("Let me call the special function with opt\n</think>\n<tool_call>\n<function=special_function_with_opt>\n<parameter=arg1>\n42555916\n</parameter>\n</function>\n</tool_call>",
         "Let me call the special function with opt", "", [("special_function_with_opt", #"{"arg1": 42555916}"#)]),
        ("Let me call the magic_int function\n</think>\n<tool_call>\n<function=magic_int>\n<parameter=ref>\n42555916\n</parameter>\n<parameter=name>\nbaz\n</parameter>\n</function>\n</tool_call>",
         "Let me call the magic_int function", "", [("magic_int", #"{"ref": 42555916, "name": "baz"}"#)]),
        ("Call string_param with empty text\n</think>\n<tool_call>\n<function=string_param>\n<parameter=text>\n\n</parameter>\n</function>\n</tool_call>",
         "Call string_param with empty text", "", [("string_param", #"{"text": ""}"#)]),
        ("Test simple quoted unquoted\n</think>\n<tool_call>\n<function=quoted_unquoted>\n<parameter=quoted>\n\"foo\"\n</parameter>\n<parameter=unquoted>\nfoo\n</parameter>\n</function>\n</tool_call>",
         "Test simple quoted unquoted", "", [("quoted_unquoted", #"{"quoted": "\"foo\"", "unquoted": "foo"}"#)]),
        ("Test complex quoted unquoted\n</think>\n<tool_call>\n<function=quoted_unquoted>\n<parameter=quoted>\n\"printf(\\\"foo\\\");\"\n</parameter>\n<parameter=unquoted>\nprintf(\"foo\");\n</parameter>\n</function>\n</tool_call>",
         "Test complex quoted unquoted", "", [("quoted_unquoted", #"{"quoted": "\"printf(\\\"foo\\\");\"", "unquoted": "printf(\"foo\");"}"#)]),
        ("Test negative number\n</think>\n<tool_call>\n<function=magic_int>\n<parameter=ref>\n-14\n</parameter>\n</function>\n</tool_call>",
         "Test negative number", "", [("magic_int", #"{"ref": -14}"#)]),
        ("Test decimal number\n</think>\n<tool_call>\n<function=amount>\n<parameter=orig>\n3.14\n</parameter>\n</function>\n</tool_call>",
         "Test decimal number", "", [("amount", #"{"orig": 3.14}"#)]),
        ("Test imaginary number\n</think>\n<tool_call>\n<function=imaginary_number>\n<parameter=number>\n{ \"real\": 3.14, \"imaginary\": 2.71 }\n</parameter>\n</function>\n</tool_call>",
         "Test imaginary number", "", [("imaginary_number", #"{"number": {"real": 3.14, "imaginary": 2.71}}"#)]),
        // Ours: a tool call opened inside the reasoning is still a tool call.
        ("Thinking about it <tool_call>\n<function=magic>\n<parameter=name>\nx\n</parameter>\n</function>\n</tool_call>",
         "Thinking about it", "", [("magic", #"{"name": "x"}"#)]),
        // A `</think>` in the content (quoted by the model, or an earlier turn's) is content.
        ("R</think>\nThe tag </think> closes reasoning.", "R", "The tag </think> closes reasoning.", []),
        // Not a tool call: text, never a crash; a real one after it still parses.
        ("R</think>See <tool_call>oops</tool_call> and <tool_call>\n<function=string_param>\n<parameter=text>\nhi\n</parameter>\n</function>\n</tool_call>",
         "R", "See <tool_call>oops</tool_call> and", [("string_param", #"{"text": "hi"}"#)]),
        // Inside the reasoning too: it stays reasoning, and the reasoning goes on.
        ("A <tool_call> tag is mentioned\n</think>Done", "A <tool_call> tag is mentioned", "Done", []),
        // Content, then two calls; schema types; a value that does not fit its type stays a string.
        ("R</think>Checking.\n<tool_call>\n<function=flags>\n<parameter=on>\nTrue\n</parameter>\n<parameter=tags>\n[\"a\", 1]\n</parameter>\n<parameter=n>\nnull\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=amount>\n<parameter=orig>\nabout 3\n</parameter>\n</function>\n</tool_call>",
         "R", "Checking.", [("flags", #"{"on": true, "tags": ["a", 1], "n": null}"#), ("amount", #"{"orig": "about 3"}"#)]),
        // Unknown tool and parameter: strings; no parameters: {}.
        ("</think><tool_call>\n<function=other>\n<parameter=k>\n12\n</parameter>\n</function>\n</tool_call><tool_call>\n<function=noop>\n</function>\n</tool_call>",
         "", "", [("other", #"{"k": "12"}"#), ("noop", "{}")]),
        // Output cut inside the reasoning, and inside a tool call (closed with the parameters it completed).
        ("Still thinking when the tokens ran out\n", "Still thinking when the tokens ran out", "", []),
        ("R</think><tool_call>\n<function=magic_int>\n<parameter=ref>\n7\n</parameter>\n<parameter=name>\nunfinis", "R", "", [("magic_int", #"{"ref": 7}"#)]),
        ("é 😀 </think>\n日本語 ", "é 😀", "日本語", []),
    ]

    /// If this fails, reasoning, content or tool calls come out wrong on llama.cpp's StepFun cases or ours
    /// (values typed by the schema; a `<tool_call>` opened inside the reasoning; a `</think>` in the content;
    /// text that is not a tool call; output cut short).
    @Test func parsesEveryCase() throws {
        for (text, reasoning, content, calls) in Self.cases {
            let p = OutputParser.parse(text, tools: Self.tools)
            #expect(p.reasoning == reasoning, "\(text.debugDescription)")
            #expect(p.content == content, "\(text.debugDescription)")
            #expect(p.toolCalls.map(\.name) == calls.map(\.0), "\(text.debugDescription)")
            for (got, want) in zip(p.toolCalls, calls) {
                #expect(try JSONValue.parse(got.arguments) == JSONValue.parse(want.1), "\(got.arguments) vs \(want.1)")
            }
        }
    }

    /// If this fails, streaming changes the result: every case cut into pieces at every position (two
    /// pieces), and into single scalars, must give what the whole text gives.
    @Test func anyChunkingGivesTheSameResult() {
        for (text, _, _, _) in Self.cases {
            let whole = OutputParser.parse(text, tools: Self.tools)
            let u = Array(text.unicodeScalars)
            var cuts: [[Int]] = (0...u.count).map { [$0] }
            cuts.append(Array(0...u.count))
            for c in cuts {
                var p = OutputParser(tools: Self.tools)
                var out = ParsedOutput()
                var from = 0
                for to in c + [u.count] where to >= from {
                    for d in p.push(String(String.UnicodeScalarView(u[from..<to]))) { out.add(d) }
                    from = to
                }
                for d in p.finish() { out.add(d) }
                #expect(out == whole, "\(text.debugDescription) cut at \(c.count == 1 ? "\(c[0])" : "every scalar")")
            }
        }
    }

    /// If this fails, a streaming client sees a tool call's name only after its arguments, or arguments
    /// before the call has begun.
    @Test func toolCallNameComesBeforeItsArguments() {
        var p = OutputParser(tools: Self.tools)
        var seen: [OutputDelta] = []
        for piece in ["R</think>\n<tool_call>\n<function=magic_int>\n", "<parameter=ref>\n4", "2\n</parameter>\n", "</function>\n</tool_call>"] {
            seen += p.push(piece)
        }
        seen += p.finish()
        #expect(seen.first == .reasoning("R"))
        #expect(seen.dropFirst().first == .toolCallStart(index: 0, name: "magic_int"))
        #expect(seen.dropFirst(2).first == .toolCallArguments(index: 0, json: #"{"ref": 42"#))
        #expect(seen.last == .toolCallArguments(index: 0, json: "}"))
    }
}
