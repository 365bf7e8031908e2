// libFuzzer harness: the reasoning and tool-call output parser and the chat template, on arbitrary model
// output. Byte 0 picks the start (in the reasoning or not) and whether tools type the values; byte 1 seeds
// the chunking. The output parsed in chunks of 1-8 scalars must equal the output parsed whole; every tool
// call's arguments must be one JSON object; rendering the output back as an assistant turn (with its tool
// calls) must not trap. Never crash or hang (Tests/Fuzz/Support/FuzzSupport.swift).
import Chat
import FuzzSupport

private let tools: [JSONValue] = [try! JSONValue.parse(#"""
{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
  "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"},
  "lat": {"type": "number"}, "tags": {"type": "array"}, "opts": {"type": "object"}, "any": {"type": ["string", "null"]}}}}}
"""#)]

@_cdecl("LLVMFuzzerTestOneInput")  // the symbol libFuzzer's runtime links against
public func fuzzChat(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzReplay.bytes(data, size)
    guard bytes.count >= 2 else { return 0 }
    let reasoning = bytes[0] & 1 != 0, typed = bytes[0] & 2 != 0
    let text = String(decoding: bytes.dropFirst(2), as: UTF8.self)
    let whole = OutputParser.parse(text, tools: typed ? tools : [], startsInReasoning: reasoning)
    // The same text in chunks: sizes from a small LCG seeded by byte 1.
    var parser = OutputParser(tools: typed ? tools : [], startsInReasoning: reasoning)
    var chunked = ParsedOutput()
    var state = UInt32(bytes[1]) | 1
    var scalars = Substring(text).unicodeScalars[...]
    while !scalars.isEmpty {
        state = state &* 1_103_515_245 &+ 12345
        let n = Int(state >> 16) % 8 + 1
        let piece = String(String.UnicodeScalarView(scalars.prefix(n)))
        scalars = scalars.dropFirst(n)
        for d in parser.push(piece) { chunked.add(d) }
    }
    for d in parser.finish() { chunked.add(d) }
    precondition(chunked == whole, "chunked parse differs from the whole: \(chunked) vs \(whole)")
    var calls: [JSONValue] = []
    for (i, c) in whole.toolCalls.enumerated() {
        guard let args = try? JSONValue.parse(c.arguments), case .object = args else {
            preconditionFailure("tool call \(c.name): arguments are not one JSON object: \(c.arguments)")
        }
        calls.append(.object([("id", .string("call_\(i)")), ("type", .string("function")),
                              ("function", .object([("name", .string(c.name)), ("arguments", .string(c.arguments))]))]))
    }
    var turn: [(key: String, value: JSONValue)] = [("role", .string("assistant")), ("content", .string(whole.content)),
                                                   ("reasoning_content", .string(whole.reasoning))]
    if !calls.isEmpty { turn.append(("tool_calls", .array(calls))) }
    let messages: [JSONValue] = [.object([("role", .string("user")), ("content", .string(text))]), .object(turn)]
    if let m = try? StepFunTemplate.preprocess(messages) {
        _ = StepFunTemplate.render(messages: m, tools: typed ? tools : nil, addGenerationPrompt: true, bos: "")
    }
    return 0
}

@main struct Harness {
    static func main() { FuzzReplay.main("fuzz-chat", fuzzChat) }
}
