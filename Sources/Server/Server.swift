// `switchyard serve`: the HTTP front of the engine (Hummingbird 2 on SwiftNIO). Routes decode bodies as
// ordered JSON, check the key, and hand off to ChatService; errors come back in the route's API shape.
//
// Routes: OpenAI `/v1/chat/completions`, `/v1/completions`, `/v1/responses`, `/v1/models`; Anthropic `/v1/messages`,
// `/v1/messages/count_tokens`; llama-server's `/health`,
// `/props`, `/slots`, `/tokenize`, `/detokenize`, `/apply-template`; the web UI at `/` and its `/cluster` data.
import Chat
import Engine
import Foundation
import Hummingbird
import Logging

/// How the server listens and whom it lets in.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Required key (`Authorization: Bearer` or `x-api-key`), nil for none.
    public var apiKey: String?
    /// Largest request body; larger ones get 413.
    public var maxBodyBytes = 16 << 20
    /// Serve `/metrics` (llama-server's `--metrics`).
    public var metrics = false
    /// Seconds a connection may sit idle (no request in progress) before it is closed (llama-server's
    /// `--timeout`); idle and half-sent connections must not hold descriptors forever.
    public var idleTimeoutSeconds = 600

    public init() {}
}

/// The chat service once the model has loaded; nil while loading, when every route answers 503.
public final class ServiceSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ChatService?
    public init(_ service: ChatService? = nil) { value = service }
    /// The service (set once loading is done).
    public var service: ChatService? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// The HTTP server over an engine.
public enum SwitchyardServer {
    /// Builds the application (tests and `serve` run it). It may start before the model has loaded: until
    /// `slot` holds the service, `/health` and every other route answer 503 "Loading model".
    public static func application(_ slot: ServiceSlot, config: ServerConfig, logger: Logger,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.middlewares.add(AccessLog(logger: logger))
        let max = config.maxBodyBytes, key = config.apiKey
        // A route: read the body (413 past the limit), check the key, run; errors in the route's API shape.
        func route(_ method: HTTPRequest.Method, _ path: RouterPath, _ flavor: APIFlavor, auth: Bool = true,
                   _ body: @escaping @Sendable (ChatService, JSONValue) async throws -> Response) {
            router.on(path, method: method) { request, _ -> Response in
                do {
                    if auth, let k = key, !authorized(request, key: k) { throw APIError(.unauthorized, "invalid or missing API key") }
                    guard let service = slot.service else { throw APIError(.serviceUnavailable, "Loading model", retryAfter: 1) }
                    var bodyValue = JSONValue.null
                    if method == .post {
                        let buf: ByteBuffer
                        do { buf = try await request.body.collect(upTo: max) } catch {
                            throw APIError(.contentTooLarge, "the request body is larger than \(max) bytes")
                        }
                        do { bodyValue = try JSONValue.parse(utf8: Array(buf.readableBytesView)) } catch {
                            throw APIError.bad("malformed JSON: \(error)")
                        }
                    }
                    return try await body(service, bodyValue)
                } catch let e as APIError {
                    return e.response(flavor)
                } catch let e as EngineError {
                    return APIError(e).response(flavor)
                }
            }
        }
        route(.post, "/v1/chat/completions", .openAI) { try await $0.chatCompletions($1) }
        route(.post, "/v1/completions", .openAI) { try await $0.completions($1) }
        route(.post, "/v1/responses", .openAI) { try await $0.responses($1) }
        route(.get, "/v1/models", .openAI) { s, _ in s.models() }
        route(.post, "/v1/messages", .anthropic) { try await $0.messages($1) }
        route(.post, "/v1/messages/count_tokens", .anthropic) { try $0.countTokens($1) }
        // llama-server's answers: 503 with "Loading model" until the model is ready, then {"status": "ok"}.
        router.on("/health", method: .get) { _, _ -> Response in
            guard slot.service != nil else {
                return json(.object([("error", .object([("code", .integer("503")), ("message", .string("Loading model")),
                                                       ("type", .string("unavailable_error"))]))]), status: .serviceUnavailable)
            }
            if let why = slot.service?.engine.failureMessage {
                // The engine stopped (a lost rank): the process is about to exit; say why meanwhile.
                return json(.object([("error", .object([("code", .integer("503")), ("message", .string("engine failed: \(why)")),
                                                       ("type", .string("unavailable_error"))]))]), status: .serviceUnavailable)
            }
            return json(.object([("status", .string("ok"))]))
        }
        if config.metrics {
            route(.get, "/metrics", .openAI) { s, _ in
                guard let m = s.metrics else { throw APIError(.notFound, "metrics are off") }
                return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: m.scrape(s.engine))))
            }
        }
        route(.get, "/props", .openAI) { s, _ in s.props() }
        route(.get, "/cluster", .openAI) { s, _ in s.cluster() }
        // The page loads while the model does (its panel shows the 503 until the model is ready).
        router.on("/", method: .get) { _, _ in WebPage.response() }
        route(.get, "/slots", .openAI) { s, _ in s.slots() }
        route(.post, "/tokenize", .openAI) { try $0.tokenize($1) }
        route(.post, "/detokenize", .openAI) { try $0.detokenize($1) }
        route(.post, "/apply-template", .openAI) { try $0.applyTemplate($1) }
        return Application(router: router, server: .http1(configuration: .init(idleTimeout: .seconds(Int64(config.idleTimeoutSeconds)))),
                           configuration: .init(address: .hostname(config.host, port: config.port), serverName: "switchyard"),
                           onServerRunning: { ch in await onRunning(ch.localAddress?.port ?? 0) }, logger: logger)
    }

    /// Whether the request carries the key (`Authorization: Bearer KEY` or Anthropic's `x-api-key: KEY`).
    static func authorized(_ r: Request, key: String) -> Bool {
        if let a = r.headers[.authorization], a == "Bearer \(key)" { return true }
        if r.headers.contains(where: { $0.name.canonicalName == "x-api-key" && $0.value == key }) { return true }
        return false
    }
}

/// One access-log line per request: method, path, status, milliseconds.
struct AccessLog<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try await next(request, context)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        logger.info("\(request.method) \(request.uri.path) \(r.status.code) \(String(format: "%.1f", ms)) ms")
        return r
    }
}

extension ChatService {
    /// `GET /props`: llama-server's server properties.
    func props() -> Response {
        let e = engine
        return json(.object([("model_alias", .string(alias)), ("total_slots", .integer("\(e.config.parallel * (e.session?.lanes.count ?? 1))")),
                             ("n_ctx", .integer("\(e.config.contextSize)")), ("kv_budget_bytes", .integer("\(e.kvBudget)")),
                             ("mtp_blocks", .integer("\(e.model.mtp.count)")), ("chat_template", .string("StepFun3.5-Flash (native)")),
                             ("build_info", .string("switchyard"))]))
    }

    /// `GET /slots`: the engine's running requests and queue.
    func slots() -> Response {
        let s = engine.snapshot()
        return json(.object([("slots_per_lane", .integer("\(s.slotsPerLane)")), ("queued", .integer("\(s.queued)")),
                             ("running", .array(s.running.map { r in .object([("id", .integer("\(r.id)")), ("head", .integer("\(r.head)")),
                                                                             ("lane", .integer("\(r.lane)")), ("n_decoded", .integer("\(r.generated)"))]) })),
                             ("kv_used_bytes", .array(s.kvUsed.map { .integer("\($0)") })), ("kv_budget_bytes", .integer("\(s.kvBudget)")),
                             ("cached_sequences", .integer("\(s.cachedSequences)"))]))
    }

    /// `POST /tokenize` {"content", "add_special"?}.
    func tokenize(_ b: JSONValue) throws -> Response {
        guard let text = b["content"]?.string else { throw APIError.bad("content must be a string", param: "content") }
        let ids = engine.tokenizer?.encode(text, addSpecial: b["add_special"] == .bool(true), parseSpecial: true) ?? []
        return json(.object([("tokens", .array(ids.map { .integer("\($0)") }))]))
    }

    /// `POST /detokenize` {"tokens"}.
    func detokenize(_ b: JSONValue) throws -> Response {
        guard let a = b["tokens"]?.array else { throw APIError.bad("tokens must be a list of token ids", param: "tokens") }
        let v = engine.model.config.vocabSize
        let ids: [Int32] = try a.map { x in
            guard case .integer(let s) = x, let t = Int32(s), t >= 0, Int(t) < v else {
                throw APIError.bad("tokens must be token ids in 0..<\(v)", param: "tokens")
            }
            return t
        }
        return json(.object([("content", .string(String(decoding: ids.flatMap(piece), as: UTF8.self)))]))
    }

    /// `POST /apply-template` {"messages", "tools"?}: the rendered prompt.
    func applyTemplate(_ b: JSONValue) throws -> Response {
        guard let messages = b["messages"]?.array else { throw APIError.bad("messages must be a list", param: "messages") }
        return json(.object([("prompt", .string(try renderPrompt(messages: messages, tools: b["tools"]?.array)))]))
    }
}
