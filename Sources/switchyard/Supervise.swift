// `switchyard supervise`: serves through a front that restarts the `serve` job when it ends (a rank died),
// keeping the requests that had no answer yet (Server/Front.swift; Docs/RELIABILITY.md).
import ArgumentParser
import Cluster
import Foundation
import Logging
import Server

struct Supervise: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve through a front that restarts the serve job when a rank dies, keeping queued requests.",
        discussion: """
        Give the job after --: a full command (mpiexec -n 3 switchyard serve -m model.gguf --topology T.yaml), or, \
        with --cluster and --topology, the serve command alone (as switchyard launch takes it). The job listens on a \
        private loopback port (do not give it --host or --port); clients talk to this front, which relays each request. \
        When the job ends, the front starts it again; requests that had no answer yet are relayed again once it is \
        back, streams that had begun end with the job's error event, and /health answers 503 with the cause meanwhile.
        """)

    @Option(help: "Address the front listens on.")
    var host = "127.0.0.1"

    @Option(help: "Port the front listens on (0: any free port, printed at start).")
    var port = 8080

    @Option(help: "Cluster description (with --topology: the job after -- is the switchyard command alone).")
    var cluster: String?

    @Option(help: "Topology file (with --cluster).")
    var topology: String?

    @Option(help: "Restarts allowed before the supervisor gives up and exits non-zero (0: none).")
    var maxRestarts = 100

    @Option(help: "Seconds a request may wait for the job to come back before it gets 503.")
    var queueTimeout = 300.0

    @Option(help: "Times one request may be relayed again after its job died before answering it.")
    var retries = 2

    @Option(help: "Largest request body in bytes (more: 413).")
    var maxBody = 16 << 20

    @Option(help: "Seconds mpiexec may outlive rank 0 once a rank reported a lost peer (as launch --grace).")
    var grace: Double = 5

    @Argument(parsing: .captureForPassthrough, help: "The serve job, after --.")
    var command: [String] = []

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (cluster == nil) == (topology == nil) else { throw ValidationError("give --cluster and --topology together") }
        guard maxRestarts >= 0, retries >= 0, queueTimeout > 0 else { throw ValidationError("--max-restarts and --retries must be >= 0, --queue-timeout > 0") }
    }

    func run() throws {
        try reportingErrors {
            let job = try jobCommand()
            // Keep SIGINT, SIGTERM and SIGHUP pending for the dispatch sources that handle them (the loop's, the
            // front's): a thread that neither blocks nor catches one would drop it (it is ignored). Threads
            // started from here inherit the mask; the job starts with an empty one.
            var stops = sigset_t()
            sigemptyset(&stops)
            for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&stops, s) }
            pthread_sigmask(SIG_BLOCK, &stops, nil)
            var config = FrontConfig()
            config.host = host
            config.port = port
            config.queueTimeout = queueTimeout
            config.maxRetries = retries
            config.maxBodyBytes = maxBody
            raiseDescriptorLimit()
            var logger = Logger(label: "switchyard-supervise")
            logger.logLevel = .warning
            let state = JobState()
            let app = SupervisorFront.application(state, config: config, logger: logger) { [host] p in
                say("switchyard supervise: listening on http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(p) (the job restarts when it ends)")
            }
            Task {
                do { try await app.runService() } catch { say("switchyard supervise: \(error)"); Foundation.exit(1) }
            }
            let loop = RestartLoop(command: job, state: state, grace: grace, maxRestarts: maxRestarts, log: say)
            throw ExitCode(loop.run())
        }
    }

    /// The job's command line, without the port the loop adds.
    func jobCommand() throws -> [String] {
        let args = command.first == "--" ? Array(command.dropFirst()) : command
        guard args.contains("serve") else { throw ValidationError("give the serve job after --, e.g. -- mpiexec -n 3 switchyard serve -m model.gguf") }
        guard !args.contains("--port") && !args.contains("--host") else {
            throw ValidationError("the job listens on a private port the supervisor picks: leave --host and --port out of it")
        }
        guard let cluster, let topology else { return args }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let (cmd, warning) = try ClusterSpec(path: cluster).mpiexec(topology: try Topology(path: topology), topologyPath: topology, binary: binary, args: args)
        if let w = warning { say("note: \(w)") }
        return cmd
    }
}

private func say(_ s: String) { FileHandle.standardError.write(Data("\(s)\n".utf8)) }
