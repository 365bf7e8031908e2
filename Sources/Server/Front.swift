// `switchyard supervise`'s front: the HTTP server clients talk to while the `serve` job behind it may die and
// be restarted. Every request is relayed to the job on a loopback port (Relay.swift); `/health` and
// `/supervisor` are answered here.
//
// What a client sees when a rank dies (Docs/RELIABILITY.md):
// - a request that has had no byte of its answer yet (queued, prefilling, or its job died before answering)
//   is kept and relayed again once the job is back: the client only waits (retried, at most `maxRetries`);
// - a stream that already sent tokens cannot be replayed without repeating them: it ends with the job's own
//   error event, which names the lost rank and host (or one from here, if the job vanished without one);
// - a request that arrives during the outage waits for the restart (up to `queueTimeout`, then 503);
// - `/health` answers 503 with the cause and the seconds since the job went down.
import Chat
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The supervised job as the front sees it: up (its port answers), or down since when and why.
public final class JobState: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int?
    private var downSince: Date? = Date()
    private var cause = "starting"
    /// Requests relayed, relayed again after an outage, and answered with an error because of one.
    public private(set) var relayed = 0, retried = 0, failed = 0, restarts = 0
    /// Seconds each outage lasted (down to up).
    public private(set) var outages: [Double] = []
    /// How many times the job has ended.
    private(set) var ends = 0

    public init() {}

    /// The job answers on `port`.
    public func up(port: Int) {
        lock.withLock {
            if let d = downSince, restarts > 0 { outages.append(Date().timeIntervalSince(d)) }
            self.port = port
            downSince = nil
        }
    }

    /// The job is gone (or going), because of `why`.
    public func down(_ why: String, restarting: Bool) {
        lock.withLock {
            if port != nil || downSince == nil { downSince = Date() }
            port = nil
            cause = why
            ends += 1
            if restarting { restarts += 1 }
        }
    }

    /// Records that the job's health says it failed (before its process has ended).
    func failing(_ why: String) { lock.withLock { if port != nil { port = nil; downSince = Date(); cause = why } } }

    var current: (port: Int?, cause: String, since: Date?) { lock.withLock { (port, cause, downSince) } }

    /// Why the job ended, once it has ended more than `ends` times (waits up to `timeout` seconds).
    func causeOfEnd(after ends: Int, timeout: Double) -> String? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let c = lock.withLock({ self.ends > ends ? cause : nil }) { return c }
            usleep(50_000)
        }
        return nil
    }
    func count(relayed r: Int = 0, retried t: Int = 0, failed f: Int = 0) {
        lock.withLock { relayed += r; retried += t; failed += f }
    }

    /// The job's port once it is up, or nil after `timeout` seconds.
    func waitUntilUp(timeout: Double) async -> Int? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let p = current.port { return p }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return nil
    }
}

/// The front's settings.
public struct FrontConfig: Sendable {
    public var host = "127.0.0.1", port = 8080
    /// Largest request body (413 past it).
    public var maxBodyBytes = 16 << 20
    /// Seconds a request may wait for the job to come back.
    public var queueTimeout = 300.0
    /// Times one request may be relayed again after its job died before answering it.
    public var maxRetries = 2
    public init() {}
}

/// The front application.
public enum SupervisorFront {
    public static func application(_ state: JobState, config: FrontConfig, logger: Logger,
                                   onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await handle(request, state: state, config: config)
        }
        return Application(responder: responder, configuration: .init(address: .hostname(config.host, port: config.port), serverName: "switchyard"),
                           onServerRunning: { ch in await onRunning(ch.localAddress?.port ?? 0) }, logger: logger)
    }

    static func handle(_ request: Request, state: JobState, config: FrontConfig) async throws -> Response {
        let path = request.uri.path
        if request.method == .get && path == "/health", state.current.port == nil { return outage(state, status: .serviceUnavailable) }
        if request.method == .get && path == "/supervisor" { return counters(state) }
        let body: [UInt8]
        do { body = Array(try await request.body.collect(upTo: config.maxBodyBytes).readableBytesView) } catch {
            return APIError(.contentTooLarge, "the request body is larger than \(config.maxBodyBytes) bytes").response(.openAI)
        }
        let headers = request.headers.filter { !["host", "content-length", "connection", "transfer-encoding"].contains($0.name.canonicalName) }
            .map { ($0.name.rawName, $0.value) }
        var lastCause = ""
        for attempt in 0...config.maxRetries {
            guard let port = await state.waitUntilUp(timeout: config.queueTimeout) else {
                state.count(failed: 1)
                return APIError(.serviceUnavailable, "the server's job is restarting (\(state.current.cause)); try again later", retryAfter: 5).response(.openAI)
            }
            if attempt > 0 { state.count(retried: 1) }
            switch await relay(method: request.method.rawValue, path: request.uri.description, headers: headers, body: body, port: port, state: state) {
            case .answer(let r):
                state.count(relayed: 1)
                return r
            case .again(let why):
                lastCause = why
                state.failing(why)  // until the supervisor sees the job end, new requests wait
                if path == "/health" { return outage(state, status: .serviceUnavailable) }  // says so; never waits
            }
        }
        state.count(failed: 1)
        return APIError(.serviceUnavailable, "the server's job failed \(config.maxRetries + 1) times on this request: \(lastCause)").response(.openAI)
    }

    enum Outcome { case answer(Response), again(String) }

    /// One relay attempt on a thread of its own: `.again` when the client can be given nothing yet (the
    /// request may be relayed again), else the response, streaming on while the job answers.
    static func relay(method: String, path: String, headers: [(String, String)], body: [UInt8], port: Int, state: JobState) async -> Outcome {
        let ends = state.ends
        return await withCheckedContinuation { (k: CheckedContinuation<Outcome, Never>) in
            let t = Thread {
                let c: RelayConnection, head: RelayHead
                do {
                    c = try RelayConnection(port: port, method: method, path: path, headers: headers, body: body)
                    head = try c.readHead()
                } catch { return k.resume(returning: .again("\(error)")) }
                let type = head.header("content-type") ?? "application/json"
                // What clients read of the job's headers: the body's type and a 503's Retry-After.
                var out: HTTPFields = [.contentType: type]
                if let ra = head.header("retry-after") { out[.retryAfter] = ra }
                let status = HTTPResponse.Status(code: head.status)
                if !type.hasPrefix("text/event-stream") {
                    var all: [UInt8] = []
                    do { try c.readBody(head) { all += $0 } } catch { return k.resume(returning: .again("\(error)")) }
                    // A job whose engine failed answers 5xx while it exits: that request never ran; keep it.
                    if head.status >= 500, let why = Self.jobFailure(port: port) { return k.resume(returning: .again(why)) }
                    return k.resume(returning: .answer(Response(status: status, headers: out, body: .init(byteBuffer: ByteBuffer(bytes: all)))))
                }
                // A stream: hold its head and events back until one carries generated text, so a request the
                // job only queued (or prefilled) before it failed can still be relayed again, unseen.
                let (stream, feed) = AsyncStream<ByteBuffer>.makeStream()
                var started = false, ended = false
                var held: [UInt8] = [], scanned = 0
                do {
                    try c.readBody(head) { piece in
                        let text = String(decoding: piece, as: UTF8.self)
                        if text.contains("data: [DONE]") || text.contains("\"error\"") { ended = true }
                        if started { feed.yield(ByteBuffer(bytes: piece)); return }
                        held += piece
                        guard let cut = held.lastIndex(of: 10), cut >= scanned else { return }
                        let lines = String(decoding: held[scanned...cut], as: UTF8.self).split(separator: "\n")
                        scanned = cut + 1
                        if lines.contains(where: { Self.carriesTokens($0) }) {
                            started = true
                            k.resume(returning: .answer(Response(status: status, headers: out, body: .init(asyncSequence: stream))))
                            feed.yield(ByteBuffer(bytes: held))
                        } else if lines.contains(where: { $0.hasPrefix("data: ") && $0.contains("\"error\"") }) {
                            throw RelayError.cut(String(lines.first { $0.contains("\"error\"") }!.dropFirst(6)))
                        }
                    }
                } catch {
                    guard started else { return k.resume(returning: .again("\(error)")) }
                    if !ended {
                        // The job vanished without its own error event (the launcher killed it at once): name
                        // the cause the supervisor learns from its stderr, when it comes within 3 s.
                        let why = state.causeOfEnd(after: ends, timeout: 3) ?? "\(error)"
                        let msg = JSONValue.object([("error", .object([("message", .string("the server's job ended mid-stream: \(why)")), ("type", .string("server_error"))]))])
                        feed.yield(ByteBuffer(string: "data: \(msg.pythonJSON())\n\n"))
                    }
                }
                if !started {
                    // A whole stream without generated text (e.g. max_tokens 0): pass it on as it came.
                    k.resume(returning: .answer(Response(status: status, headers: out, body: .init(asyncSequence: stream))))
                    feed.yield(ByteBuffer(bytes: held))
                }
                feed.finish()
            }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Whether an SSE line carries generated text (OpenAI chat and completions deltas, the Responses API's
    /// and Anthropic's delta events); role-only and usage events do not.
    static func carriesTokens(_ line: Substring) -> Bool {
        guard line.hasPrefix("data: "), let v = try? JSONValue.parse(String(line.dropFirst(6))) else { return false }
        if let t = v["type"]?.string, t.hasSuffix(".delta") || t == "content_block_delta" { return true }
        for c in v["choices"]?.array ?? [] {
            if let t = c["text"]?.string, !t.isEmpty { return true }
            let d = c["delta"]
            if let t = d?["content"]?.string, !t.isEmpty { return true }
            if let t = d?["reasoning_content"]?.string, !t.isEmpty { return true }
            if d?["tool_calls"]?.array?.isEmpty == false { return true }
        }
        return false
    }

    /// The job's own failure message from its `/health` ("engine failed: ..."), or nil when it is healthy.
    static func jobFailure(port: Int) -> String? {
        switch RestartLoop.health(port) {
        case .ok?: return nil
        case .loading?: return "Loading model"
        case .failed(let why)?: return why
        case nil: return "the job stopped answering"
        }
    }

    static func outage(_ state: JobState, status: HTTPResponse.Status) -> Response {
        let s = state.current
        let secs = s.since.map { String(format: "%.1f", Date().timeIntervalSince($0)) } ?? "0"
        let msg = "the server's job is down (\(s.cause)); restarting for \(secs) s, requests are kept until it is back"
        return APIError(.serviceUnavailable, msg, retryAfter: 2).response(.openAI)
    }

    static func counters(_ state: JobState) -> Response {
        let c = state.current
        let body = JSONValue.object([("up", .bool(c.port != nil)), ("cause", .string(c.cause)), ("restarts", .integer("\(state.restarts)")),
                                     ("relayed", .integer("\(state.relayed)")), ("retried", .integer("\(state.retried)")),
                                     ("failed", .integer("\(state.failed)")),
                                     ("outages_s", .array(state.outages.map { .double(($0 * 100).rounded() / 100) }))])
        return json(body)
    }
}
