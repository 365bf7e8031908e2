import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Requests meant to hurt the server (issue 16): each gets a 4xx with a message, and the server keeps
/// serving others.
@Suite(.serialized) struct HostileRequestTests {
    /// A plain request that must still succeed after each hostile one.
    func stillServes(_ s: ServerProcess) async throws {
        let r = try await s.request("/v1/completions", body: #"{"prompt": "hello", "max_tokens": 4, "temperature": 0}"#)
        #expect(r.status == 200, "the server stopped serving: \(r.body)")
    }

    /// The error message of a 4xx answer, checked for OpenAI's shape.
    func message(_ r: (status: Int, headers: [String: String], body: String), _ status: Int, _ needle: String) throws {
        #expect(r.status == status, "\(r.body.prefix(300))")
        let m = (try object(r.body)["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(m.contains(needle), "\(r.body.prefix(300))")
    }

    /// If this fails, a prompt longer than the context is truncated, crashes the server, or runs; it must
    /// be a 400 that says how many positions it needs and the limit.
    @Test func promptLongerThanTheContextIs400() async throws {
        let s = try ServerProcess(["-c", "256"])
        let long = String(repeating: "hello ", count: 2000)
        try message(try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "\#(long)"}], "max_tokens": 4}"#),
                    400, "at most 256 (--ctx-size)")
        try await stillServes(s)
    }

    /// If this fails, an absurd max_tokens (10^9), or a number no Int holds (1e30, which used to stop the
    /// process in an Int conversion), is not a 400 naming the field.
    @Test func hugeNumbersAre400() async throws {
        let s = try ServerProcess()
        try message(try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000000000}"#),
                    400, "1000000022-position")
        try message(try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e30}"#),
                    400, "max_tokens must be an integer")
        try message(try await s.request("/v1/completions", body: #"{"prompt": "hi", "seed": 1e300}"#), 400, "seed must be an integer")
        try message(try await s.request("/v1/completions", body: #"{"prompt": "hi", "top_k": 2.5}"#), 400, "top_k must be an integer")
        let anthropic = try await s.request("/v1/messages", body: #"{"model": "switchyard-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e30}"#)
        #expect(anthropic.status == 400 && anthropic.body.contains("max_tokens"), "\(anthropic.body)")
        try await stillServes(s)
    }

    /// If this fails, deeply nested JSON reaches a recursive parser (a stack overflow stops the process) or
    /// a huge body is read whole: 100,000 nested arrays must be a 400, a body over --max-body a 413.
    @Test func deepOrHugeJSONIs4xx() async throws {
        let s = try ServerProcess(["--max-body", "100000"])
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        try message(try await s.request("/v1/chat/completions", body: String(deep.prefix(99_000))), 400, "nested too deeply")
        try message(try await s.request("/v1/chat/completions", body: deep), 413, "larger than 100000 bytes")
        try await stillServes(s)
    }

    /// If this fails, a body that is not UTF-8 is quietly repaired (U+FFFD) and served; it must be a 400 that
    /// gives the offset of the bad byte.
    @Test func invalidUTF8Is400() async throws {
        let s = try ServerProcess()
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)/v1/chat/completions")!)
        r.httpMethod = "POST"
        r.httpBody = Data(#"{"messages": [{"role": "user", "content": ""#.utf8) + Data([0xFF, 0xFE, 0x41]) + Data(#""}]}"#.utf8)
        let (data, resp) = try await URLSession.shared.data(for: r)
        try message(((resp as! HTTPURLResponse).statusCode, [:], String(decoding: data, as: UTF8.self)), 400, "at byte \(#"{"messages": [{"role": "user", "content": ""#.utf8.count): not UTF-8")
        try await stillServes(s)
    }

    /// If this fails, thousands of tools render into a prompt that holds a slot for minutes; more than
    /// --max-tools (128, OpenAI's limit) must be a 400 naming `tools`.
    @Test func thousandsOfToolsAre400() async throws {
        let s = try ServerProcess()
        let tool = #"{"type": "function", "function": {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}"#
        let tools = "[" + Array(repeating: tool, count: 3000).joined(separator: ",") + "]"
        let r = try await s.request("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "hi"}], "tools": \#(tools)}"#)
        try message(r, 400, "at most 128 tools per request, got 3000")
        #expect((try object(r.body)["error"] as? [String: Any])?["param"] as? String == "tools")
        try await stillServes(s)
    }

    /// If this fails, a client that reads its stream very slowly (50 bytes/s) holds up other requests: with
    /// two slots, a second request must finish within 20 s while the slow one is still streaming.
    @Test func slowReaderDoesNotStallOthers() async throws {
        let s = try ServerProcess(["-np", "2"])
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--limit-rate", "50", "--max-time", "30", "http://127.0.0.1:\(s.port)/v1/completions", "-d",
                          #"{"prompt": "a", "max_tokens": 2000, "stream": true, "ignore_eos": true}"#]
        curl.standardOutput = FileHandle.nullDevice
        try curl.run()
        // SIGKILL: a child started from a test thread may have SIGTERM blocked.
        defer { if curl.isRunning { kill(curl.processIdentifier, SIGKILL) }; curl.waitUntilExit() }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let t0 = Date()
        try await stillServes(s)
        #expect(Date().timeIntervalSince(t0) < 20)
        #expect(curl.isRunning, "the slow stream ended early")
    }

    /// If this fails, a thousand idle connections exhaust the server (descriptors, accept loop) or are never
    /// closed: with them open, a request must still be served, and with --timeout 2 the server must close them.
    @Test func aThousandIdleConnections() async throws {
        let s = try ServerProcess(["--timeout", "2"])
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 1200 { limit.rlim_cur = min(limit.rlim_max, 4096); setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        let fds = (0..<1000).compactMap { _ in connectLoopback(s.port) }
        defer { for f in fds { close(f) } }
        #expect(fds.count == 1000, "opened \(fds.count) connections")
        try await stillServes(s)
        try await Task.sleep(nanoseconds: 4_000_000_000)
        // A connection the server closed reads end of file (0) at once.
        let closed = fds.filter { f in
            var b: UInt8 = 0
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(f, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return recv(f, &b, 1, 0) == 0
        }.count
        print("idle connections: \(fds.count) opened, \(closed) closed by the server after 4 s (--timeout 2)")
        #expect(closed == fds.count)
        try await stillServes(s)
    }
}

/// A TCP connection to 127.0.0.1:port that sends nothing (nil if it could not connect).
func connectLoopback(_ port: Int) -> Int32? {
    let f = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard f >= 0 else { return nil }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = in_port_t(UInt16(port).bigEndian)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(f, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if ok != 0 { close(f); return nil }
    return f
}
