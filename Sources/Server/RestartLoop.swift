// Runs the `serve` job, follows its health, and starts it again when it ends (`switchyard supervise`).
//
// The job runs under a JobSupervisor (so a host whose link is down cannot keep mpiexec waiting) on a free
// loopback port of its own. Its `/health` is read every half second: "ok" makes the front relay to it, "engine
// failed: ..." (a lost rank; the job is about to exit) makes the front hold new requests. When the job ends,
// the front holds requests (JobState.down) and the loop starts a new job on a new port. A job that ends
// without ever having been healthy three times in a row is a configuration error, not a fault: the loop
// gives up then, as after `maxRestarts`.
import Chat
import Cluster
import Foundation

/// The restart loop of `switchyard supervise`.
public final class RestartLoop: @unchecked Sendable {
    let command: [String]
    let state: JobState
    let grace: Double, maxRestarts: Int
    let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var stopping = false
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// `command` is the job without its `--host`/`--port`, which the loop adds.
    public init(command: [String], state: JobState, grace: Double, maxRestarts: Int, log: @escaping @Sendable (String) -> Void) {
        self.command = command
        self.state = state
        self.grace = grace
        self.maxRestarts = maxRestarts
        self.log = log
    }

    /// Runs jobs until a signal stops the supervisor (the last job's status) or it gives up (1).
    public func run() -> Int32 {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [self] in lock.withLock { stopping = true } }
            src.resume()
            Self.sources.append(src)
        }
        var restarts = 0, failedStarts = 0
        while true {
            let port = Self.freePort()
            let (status, everUp, failure) = runOnce(port: port)
            if lock.withLock({ stopping }) { return status }
            failedStarts = everUp ? 0 : failedStarts + 1
            let cause = "the job ended with status \(status)" + (failure.map { ": \($0)" } ?? "")
            restarts += 1
            if restarts > maxRestarts || failedStarts >= 3 {
                state.down(cause, restarting: false)
                log("switchyard supervise: \(cause); \(failedStarts >= 3 ? "it never became healthy in 3 starts" : "\(maxRestarts) restarts used"); giving up")
                return 1
            }
            state.down(cause, restarting: true)
            log("switchyard supervise: \(cause); starting it again (restart \(restarts)); requests without an answer are kept")
            usleep(500_000)
        }
    }

    /// One job on `port`, to its end: its exit status, whether it was ever healthy, its last failure message.
    private func runOnce(port: Int) -> (Int32, Bool, String?) {
        let sup = JobSupervisor(command: command + ["--host", "127.0.0.1", "--port", "\(port)"], grace: grace)
        let exited = DispatchSemaphore(value: 0)
        let box = StatusBox()
        // The lines that name a lost rank (its witness's, a survivor's) are the cause clients and /health get.
        sup.onStderrLine = { line in
            if ["ended on signal", "ended abruptly", "no answer from rank", "stopped answering"].contains(where: line.contains) { box.note(line) }
        }
        let t = Thread { [log] in
            do { box.set(try sup.run(log: log)) } catch {
                log("switchyard supervise: \(error)")
                box.set(127)
            }
            exited.signal()
        }
        t.start()
        var everUp = false, failure: String?
        while exited.wait(timeout: .now() + 0.5) == .timedOut {
            switch Self.health(port) {
            case .ok?:
                if !everUp { log("switchyard supervise: the job answers on port \(port)") }
                everUp = true
                state.up(port: port)
            case .failed(let why)?:
                failure = why
                state.failing(why)
            default: break
            }
        }
        return (box.get(), everUp, box.cause ?? failure)
    }

    enum Health { case ok, loading, failed(String) }

    /// The job's `/health`, or nil when it does not answer.
    static func health(_ port: Int) -> Health? {
        guard let c = try? RelayConnection(port: port, method: "GET", path: "/health", headers: [], body: []),
              let h = try? c.readHead() else { return nil }
        if h.status == 200 { return .ok }
        var text: [UInt8] = []
        try? c.readBody(h) { text += $0 }
        let msg = String(decoding: text, as: UTF8.self)
        if msg.contains("Loading model") { return .loading }
        let parsed = (try? JSONValue.parse(utf8: text))?["error"]?["message"]?.string
        return .failed(parsed ?? "health \(h.status)")
    }

    /// A loopback port free right now (the job binds it a moment later).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A job's exit status, set on its thread.
private final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var v: Int32 = 0, first: String?
    func set(_ s: Int32) { lock.withLock { v = s } }
    func get() -> Int32 { lock.withLock { v } }
    /// The first line that named a lost rank.
    func note(_ line: String) { lock.withLock { if first == nil { first = line } } }
    var cause: String? { lock.withLock { first } }
}
