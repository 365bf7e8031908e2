// libFuzzer harness: request decoding for every HTTP endpoint of `serve`, on the random-weight tiny model
// (builtin:tiny) with a 96-token context, so that a body that decodes runs to its end quickly. Byte 0 picks
// the endpoint; the rest is the body, decoded as the route decodes it (JSONValue.parse(utf8:)), then handed
// to the route's ChatService method, and a streamed answer is read to its end. Each must answer (a response,
// or an APIError/EngineError that becomes a 4xx/5xx); never crash or hang
// (Tests/Fuzz/Support/FuzzSupport.swift).
import Chat
import Engine
import Foundation
import FuzzSupport
import GGUF
import Hummingbird
@testable import Server
import Step35

private let service: ChatService = {
    var config = EngineConfig()
    config.contextSize = 96
    config.parallel = 2
    let source = ModelSource(threads: 1, log: { _ in }) { try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)) }
    do {
        guard let engine = try Engine.start(source, config: config) else { fatalError("fuzz-http: no engine") }
        return ChatService(engine: engine, modelNames: ["fuzz"], maxTools: 16)
    } catch { fatalError("fuzz-http: cannot start the engine: \(error)") }
}()

/// Reads a response body to its end.
private struct Drain: ResponseBodyWriter {
    var bytes = 0
    mutating func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytes }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

private let endpoints: [(String, @Sendable (ChatService, JSONValue) async throws -> Response)] = [
    ("chat", { try await $0.chatCompletions($1) }), ("completions", { try await $0.completions($1) }),
    ("responses", { try await $0.responses($1) }), ("messages", { try await $0.messages($1) }),
    ("count_tokens", { try $0.countTokens($1) }), ("tokenize", { try $0.tokenize($1) }),
    ("detokenize", { try $0.detokenize($1) }), ("apply-template", { try $0.applyTemplate($1) }),
]

/// The outcome of one request, set by its task.
private final class Box: @unchecked Sendable { var error: Error? }

@_cdecl("LLVMFuzzerTestOneInput")  // the symbol libFuzzer's runtime links against
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzReplay.bytes(data, size)
    guard let pick = bytes.first, let body = try? JSONValue.parse(utf8: Array(bytes.dropFirst())) else { return 0 }
    let (_, call) = endpoints[Int(pick) % endpoints.count]
    let s = service, done = DispatchSemaphore(value: 0), box = Box()
    Task {
        do {
            let r = try await call(s, body)
            try await r.body.write(Drain())
        } catch let e as APIError {
            precondition((400..<600).contains(e.status.code), "APIError with status \(e.status.code)")
        } catch let e as EngineError {
            _ = APIError(e)  // what the route would answer
        } catch { box.error = error }
        done.signal()
    }
    // An input that waits long prints the engine's state, which tells a stuck scheduler (nothing running,
    // something queued) from slow generation; libFuzzer's -timeout then ends the run with the input.
    while done.wait(timeout: .now() + 20) == .timedOut {
        let e = s.engine.snapshot()
        let note = "fuzz-http: still waiting: running \(e.running.count), queued \(e.queued), KV \(e.kvUsed) of \(e.kvBudget) B, cached \(e.cachedSequences)\n"
        FileHandle.standardError.write(Data(note.utf8))
    }
    if let e = box.error { preconditionFailure("a route threw something that is not an API error: \(e)") }
    return 0
}

@main struct Harness {
    static func main() {
        _ = service  // the engine starts before the first input: its start is not any input's time
        FuzzReplay.main("fuzz-http", fuzzHTTP)
    }
}
