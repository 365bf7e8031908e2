import Chat
import Foundation
import Testing

/// The native Step 3.5 chat template against jinja2's render of the real template.
@Suite struct TemplateCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat-template/corpus.jsonl").path

    /// If this fails, the native renderer's prompt differs from the real template's (run by jinja2 the way
    /// transformers runs it, after llama.cpp's StepFun trimming) on one of the committed conversations:
    /// system first or later, `observation`, tools serialized as `tojson` does in the request's key order,
    /// reasoning from `reasoning_content` or inline `<think>`, reasoning kept only after the last query,
    /// merged tool responses, content parts, string tool arguments, every scalar type — byte for byte.
    @Test func nativeRendererMatchesJinjaByteForByte() throws {
        let lines = try String(contentsOfFile: Self.corpus, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 40)
        var mismatches: [String] = []
        for line in lines {
            let c = try JSONValue.parse(String(line))
            let messages = try StepFunTemplate.preprocess(c["messages"]?.array ?? [])
            let got = StepFunTemplate.render(messages: messages, tools: c["tools"]?.array,
                                             addGenerationPrompt: c["add_generation_prompt"] == .bool(true), bos: c["bos_token"]?.string ?? "")
            let want = c["rendered"]?.string ?? ""
            if got != want {
                let at = zip(got.unicodeScalars, want.unicodeScalars).prefix { $0 == $1 }.count
                mismatches.append("\(c["name"]?.string ?? "?"): first difference at scalar \(at): got …\(String(got.unicodeScalars.dropFirst(max(0, at - 40)).prefix(80)))… want …\(String(want.unicodeScalars.dropFirst(max(0, at - 40)).prefix(80)))…")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(lines.count) differ:\n\(mismatches.joined(separator: "\n"))")
    }

    /// If this fails, llama.cpp's StepFun trimming is lost: padded content, reasoning and text parts must
    /// reach the prompt trimmed (llama.cpp's tests/test-chat.cpp "StepFun trimming regression test").
    @Test func contentsAreTrimmed() throws {
        let m = try JSONValue.parse("""
            [{"role": "assistant", "content": "Let me check.\\n\\n", "reasoning_content": "I am thinking.\\n\\n"},
             {"role": "user", "content": [{"type": "text", "text": "First part.\\n\\n"}, {"type": "text", "text": "Second part.\\n\\n"}]}]
            """)
        let p = StepFunTemplate.render(messages: try StepFunTemplate.preprocess(m.array!), tools: nil, addGenerationPrompt: true, bos: "")
        #expect(!p.contains("Let me check.\n\n") && !p.contains("I am thinking.\n\n"))
        #expect(p.contains("First part.Second part.") && !p.contains("First part.\n\n"))
    }

    /// If this fails, the ordered JSON loses what `tojson` must keep: key order, big integers as written,
    /// Python's float repr and escapes.
    @Test func pythonJSONKeepsOrderAndForm() throws {
        let v = try JSONValue.parse(#"{"z": 1, "a": [1.5, 1e-05, 12345678901234567890, true, null], "é": "q\"\n\u0001"}"#)
        #expect(v.pythonJSON() == #"{"z": 1, "a": [1.5, 1e-05, 12345678901234567890, true, null], "é": "q\"\n\u0001"}"#)
        #expect(v.pythonJSON(ensureASCII: true).contains(#""\u00e9""#))
        #expect(JSONValue.bool(true).pythonString == "True" && JSONValue.null.pythonString == "None")
        #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\": }") }
    }
}
