// `switchyard serve`: the engine behind OpenAI-compatible HTTP, llama-server's flags where meanings match.
// Under `mpiexec`, rank 0 serves HTTP and the other ranks compute.
import ArgumentParser
import Engine
import Foundation
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

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be 1 to 256") }
        guard maxQueue >= 0 && maxBody > 0 else { throw ValidationError("--max-queue must be >= 0 and --max-body > 0") }
        guard draft >= 0 else { throw ValidationError("--draft must be >= 0") }
        guard reasoningBudget >= -1 else { throw ValidationError("--reasoning-budget must be -1 (unlimited) or >= 0") }
    }

    func run() throws {
        try reportingErrors {
            var engineConfig = try cacheOptions.engineConfig(parallel: parallel, maxQueue: maxQueue)
            engineConfig.recordExpertStats = true  // the web UI's heat map
            guard let engine = try options.startEngine(engineConfig) else { return }
            defer { engine.shutdown() }
            var config = ServerConfig()
            config.host = host
            config.port = port
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["SWITCHYARD_API_KEY"]
            config.maxBodyBytes = maxBody
            config.metrics = metrics
            let file = options.model.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? "switchyard-tiny"
            let m = metrics ? ServerMetrics() : nil
            if let m, let s = engine.session { for lane in s.lanes { lane.experts.observe { m.exchanged($0) } } }
            let service = ChatService(engine: engine, modelNames: [alias ?? file, file], metrics: m, draft: draft,
                                      reasoningBudget: reasoningBudget < 0 ? nil : reasoningBudget)
            var logger = Logger(label: "switchyard")
            logger.logLevel = .info
            let host = config.host
            let app = SwitchyardServer.application(service, config: config, logger: logger) { port in
                FileHandle.standardError.write(Data("switchyard: serving \(service.alias) on http://\(host):\(port)\n".utf8))
            }
            let done = DispatchSemaphore(value: 0)
            let failure = ErrorHolder()
            Task {
                do { try await app.runService() } catch { failure.error = error }
                done.signal()
            }
            done.wait()
            if let e = failure.error { throw e }
        }
    }
}

final class ErrorHolder: @unchecked Sendable {
    var error: Error?
}
