import Foundation
import Hummingbird
import Logging
import Server
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The server before its model has loaded.
@Suite struct LoadingTests {
    /// If this fails, probes and clients cannot tell "loading" from "down": while the slot has no service,
    /// /health must answer llama-server's 503 {"error": {"code": 503, "message": "Loading model"}}, an API
    /// route must answer 503 in its own shape with Retry-After, and the web page must still load.
    @Test func answers503WhileLoading() async throws {
        var config = ServerConfig()
        config.port = 0
        let (stream, cont) = AsyncStream<Int>.makeStream()
        let app = SwitchyardServer.application(ServiceSlot(), config: config, logger: Logger(label: "test")) { cont.yield($0) }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { task.cancel() }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        func get(_ path: String, post: Bool = false) async throws -> (Int, String, String?) {
            // The in-process server's handlers, and this test's own continuations, run on Swift's cooperative
            // threads (2 here). Other suites' synchronous tests hold them for minutes while they wait on their
            // jobs, so an answer can be late by that much; URLSession's 60-s default ended this test with
            // NSURLErrorDomain -1001 twice in CI. The test checks what the server answers, not how fast.
            var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 1800)
            if post {
                r.httpMethod = "POST"
                r.httpBody = Data(#"{"messages": [{"role": "user", "content": "x"}]}"#.utf8)
            }
            let (d, resp) = try await URLSession.shared.data(for: r)
            let h = resp as! HTTPURLResponse
            return (h.statusCode, String(decoding: d, as: UTF8.self), h.value(forHTTPHeaderField: "Retry-After"))
        }
        let health = try await get("/health")
        #expect(health.0 == 503 && health.1.contains(#""message": "Loading model""#) && health.1.contains(#""code": 503"#), "\(health)")
        let chat = try await get("/v1/chat/completions", post: true)
        #expect(chat.0 == 503 && chat.1.contains(#""error""#) && chat.2 == "1", "\(chat)")
        #expect(try await get("/").0 == 200)
    }
}
