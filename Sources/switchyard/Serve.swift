// `switchyard serve`: the engine behind OpenAI-compatible HTTP, llama-server's flags where meanings match.
// Under `mpiexec`, rank 0 serves HTTP and the other ranks compute.
import ArgumentParser
import Engine
import Foundation
import Kernels
import Logging
import Server

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over HTTP (OpenAI Chat Completions and Completions, llama-server's helpers).")

    @OptionGroup var options: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions

    @Option(help: "Address to listen on (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(name: [.short, .customLong("alias")], help: "Model name clients use (default: the model file's name).")
    var alias: String?

    @Option(help: "API key clients must send (Authorization: Bearer or x-api-key); also read from SWITCHYARD_API_KEY.")
    var apiKey: String?

    @Option(name: [.customLong("parallel"), .customLong("np", withSingleDash: true)], help: "Sequences decoded together in one pass (per lane of each head).")
    var parallel = 4

    @Option(help: "Requests that may wait for a slot; more get 503 with Retry-After.")
    var maxQueue = 64

    @Option(help: "Largest request body in bytes (more: 413).")
    var maxBody = 16 << 20

    @Flag(help: "Serve Prometheus metrics at /metrics (llamacpp:* and switchyard_* series).")
    var metrics = false

    @Option(help: "Tokens drafted per step with the model's MTP blocks for every request (0: off).")
    var draft = 0

    @Option(help: "Most reasoning tokens per chat request before </think> is forced (-1: unlimited, 0: no reasoning); Anthropic's thinking overrides it.")
    var reasoningBudget = -1

    @Option(help: "Seconds a connection may stay idle (no request in progress) before the server closes it (llama-server's --timeout).")
    var timeout = 600

    @Option(help: "Most tools one request may offer (OpenAI's limit: 128).")
    var maxTools = 128

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be 1 to 256") }
        guard maxQueue >= 0 && maxBody > 0 else { throw ValidationError("--max-queue must be >= 0 and --max-body > 0") }
        guard draft >= 0 else { throw ValidationError("--draft must be >= 0") }
        guard maxTools >= 0 else { throw ValidationError("--max-tools must be >= 0") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be >= 1 second") }
        guard reasoningBudget >= -1 else { throw ValidationError("--reasoning-budget must be -1 (unlimited) or >= 0") }
    }

    func run() throws {
        try reportingErrors {
            var engineConfig = try cacheOptions.engineConfig(parallel: parallel, maxQueue: maxQueue)
            engineConfig.recordExpertStats = true  // the web UI's heat map
            var config = ServerConfig()
            config.host = host
            config.port = port
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["SWITCHYARD_API_KEY"]
            config.maxBodyBytes = maxBody
            config.metrics = metrics
            config.idleTimeoutSeconds = timeout
            raiseDescriptorLimit()
            var logger = Logger(label: "switchyard")
            logger.logLevel = .info
            let slot = ServiceSlot(), ready = Readiness(host: host)
            let done = DispatchSemaphore(value: 0)
            // Rank 0 listens before the weights load, so /health answers 503 "Loading model" meanwhile.
            var source = options.source()
            source.coordinatorStarting = { [config, logger] in
                let app = SwitchyardServer.application(slot, config: config, logger: logger) { ready.listening($0) }
                Task {
                    do { try await app.runService() } catch {
                        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                        Foundation.exit(1)
                    }
                    // Stopped (SIGINT or SIGTERM) before the model was ready: nothing to drain.
                    if !ready.isLoaded { Foundation.exit(130) }
                    done.signal()
                }
            }
            guard let engine = try options.startEngine(engineConfig, source: source) else { return }
            defer { engine.shutdown() }
            let file = options.servedName
            let m = metrics ? ServerMetrics() : nil
            if let m, let s = engine.session { for lane in s.lanes { lane.experts.observe { m.exchanged($0) } } }
            let service = ChatService(engine: engine, modelNames: [alias ?? file, file], metrics: m, draft: draft,
                                      reasoningBudget: reasoningBudget < 0 ? nil : reasoningBudget, maxTools: maxTools)
            slot.service = service
            FileHandle.standardError.write(Data("switchyard: \(KernelPath.summary), \(engine.model.weightSummary)\n".utf8))
            ready.loaded(service.alias)
            Thread.detachNewThread {
                // A failed engine (a lost rank) has already failed every request with the cause; stop serving
                // rather than answer errors forever, so the launcher (or a supervisor) sees the job end.
                guard let why = engine.waitForFailure() else { return }
                FileHandle.standardError.write(Data("switchyard: serve: the engine stopped (\(why)); in-flight requests were failed with that message; exiting\n".utf8))
                usleep(1_000_000)  // the streams' error events reach their clients
                done.signal()
            }
            done.wait()
            if let why = engine.failureMessage {
                engine.shutdown()  // in a cluster this ends the process, naming the cause
                throw ServeFailure(description: "the engine stopped: \(why)")
            }
        }
    }
}

/// Raises the open-file limit to its hard limit: every client connection is a descriptor, and a soft limit of
/// 1024 (a common default) would refuse clients long before the machine runs short.
func raiseDescriptorLimit() {
    var r = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r) == 0, r.rlim_cur < r.rlim_max else { return }
    r.rlim_cur = r.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
}

/// Why `serve` ended without being asked to.
struct ServeFailure: Error, CustomStringConvertible {
    let description: String
}

/// Prints "serving ALIAS on http://HOST:PORT" once both the port is bound and the model is ready
/// (scripts and tests wait for that line), and a line without the URL while the model still loads.
final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private let host: String
    private var port: Int?, alias: String?
    init(host: String) { self.host = host }

    var isLoaded: Bool { lock.withLock { alias != nil } }

    func listening(_ p: Int) {
        let loaded = lock.withLock { port = p; return alias != nil }
        if !loaded { say("switchyard: listening on \(host) port \(p) while the model loads (/health answers 503 until it is ready)") }
        announce()
    }

    func loaded(_ a: String) {
        lock.withLock { alias = a }
        announce()
    }

    private func announce() {
        let line: String? = lock.withLock {
            guard let p = port, let a = alias else { return nil }
            defer { port = nil }  // once
            return "switchyard: serving \(a) on http://\(host):\(p)"
        }
        if let line { say(line) }
    }

    private func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}
