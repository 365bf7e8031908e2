// Runs an mpiexec command and makes sure it ends (`switchyard launch --run`).
//
// Hydra's mpiexec waits for every host's proxy to report. When a host's link goes down, the ranks notice (their
// collectives stop, liveness pings go unanswered), name the lost rank and host, and exit. But mpiexec keeps
// waiting on the TCP connection of the unreachable host's proxy, which gets no FIN or RST while the link is
// down: it would hang until the link comes back. So the supervisor watches rank 0 (a descendant of mpiexec on
// this host, found by its PMI_RANK). Once rank 0 has ended it gives mpiexec `grace` seconds to finish when a
// rank reported a lost peer (SWITCHYARD_LAUNCH_STATUS names the file they write to), and `normalGrace`
// seconds otherwise (the workers of a loaded machine may take a while to finish normally), then stops
// mpiexec's process group. Signals to the supervisor (SIGINT, SIGTERM, SIGHUP) go to mpiexec.
import Foundation

/// Runs a launcher command (mpiexec) in its own process group and ends it once rank 0 has ended.
public final class JobSupervisor: @unchecked Sendable {
    public let command: [String]
    /// Seconds mpiexec may keep running after rank 0 ended on a lost peer, and after a normal end.
    public let grace: Double, normalGrace: Double
    private var pid: pid_t = 0
    /// Where ranks that end on a lost peer say so (passed to them as SWITCHYARD_LAUNCH_STATUS).
    let statusFile = NSTemporaryDirectory() + "switchyard-launch-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).status"

    /// Called with each line the job writes to standard error (which still goes to this process's), when set.
    public var onStderrLine: (@Sendable (String) -> Void)?

    public init(command: [String], grace: Double = 5, normalGrace: Double = 60) {
        self.command = command
        self.grace = grace
        self.normalGrace = normalGrace
    }

    /// Runs the command to its end and returns the exit status to pass on: mpiexec's, or 1 when it had to be
    /// stopped after rank 0 ended (rank 0's own message says why).
    public func run(log: (String) -> Void) throws -> Int32 {
        var cmd = command
        if cmd.first.map({ URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("mpiexec") }) == true {
            cmd.insert(contentsOf: ["-genv", "SWITCHYARD_LAUNCH_STATUS", statusFile], at: 1)
        }
        defer { unlink(statusFile) }
        pid = try spawn(cmd)
        let me = self
        // mpiexec passes a signal on to every host's proxy and ranks; sending it to the whole group as well
        // would hit the local proxy and rank 0 directly, before mpiexec can order the shutdown.
        forwardSignals { sig in kill(me.pid, sig) }
        var rank0: pid_t?, rank0Gone: Date?, stopping: Date?
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return finished(exitCode(status)) }
            if rank0 == nil { rank0 = Self.descendant(of: pid, withRank: 0) }
            if let r0 = rank0, rank0Gone == nil, kill(r0, 0) != 0 { rank0Gone = Date() }
            let lost = FileManager.default.fileExists(atPath: statusFile)
            if let gone = rank0Gone, stopping == nil, Date().timeIntervalSince(gone) > (lost ? grace : normalGrace) {
                log("switchyard launch: rank 0 ended \(Int(lost ? grace : normalGrace)) s ago\(lost ? " on a lost peer" : ""), but mpiexec "
                    + "is still waiting for a host's proxy (an unreachable host or a link that is down?): stopping it")
                kill(-pid, SIGTERM)
                stopping = Date()
            }
            if let s = stopping, Date().timeIntervalSince(s) > 3 {
                kill(-pid, SIGKILL)
                waitpid(pid, &status, 0)
                return finished(1)
            }
            usleep(200_000)
        }
    }

    private func exitCode(_ status: Int32) -> Int32 {
        let sig = status & 0x7f
        return sig == 0 ? (status >> 8) & 0xff : 128 + sig
    }

    /// Starts `args` (PATH lookup) in a new process group, sharing this process's stdin, stdout and stderr.
    private func spawn(_ args: [String]) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Its own process group (so the whole tree can be stopped), no blocked signals and default handling of
        // the stop signals, whatever this process inherited: mpiexec must hear SIGINT and pass it on.
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var none = sigset_t(), stops = sigset_t()
        sigemptyset(&none)
        sigemptyset(&stops)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&stops, s) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &stops)
        let cargs = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        // With onStderrLine, the job's stderr is a pipe that a thread copies to this process's stderr line by line.
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        var errPipe: [Int32] = [-1, -1]
        if onStderrLine != nil, pipe(&errPipe) == 0 {
            posix_spawn_file_actions_adddup2(&fa, errPipe[1], 2)
            posix_spawn_file_actions_addclose(&fa, errPipe[0])
            posix_spawn_file_actions_addclose(&fa, errPipe[1])
        }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, args[0], &fa, &attr, cargs, environ)
        if errPipe[1] >= 0 {
            close(errPipe[1])
            if rc == 0, let each = onStderrLine { copyLines(from: errPipe[0], each) } else { close(errPipe[0]) }
        }
        guard rc == 0 else { throw SupervisorError(message: "cannot start \(args[0]): \(String(cString: strerror(rc)))") }
        return child
    }

    /// Signalled when the job's stderr copy has reached its end.
    private let stderrDone = DispatchSemaphore(value: 0)
    private var copying = false

    /// Copies `fd` to standard error on a thread of its own, handing each line to `each`.
    private func copyLines(from fd: Int32, _ each: @escaping @Sendable (String) -> Void) {
        copying = true
        let done = stderrDone
        let t = Thread {
            var pending: [UInt8] = [], buf = [UInt8](repeating: 0, count: 8192)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                _ = buf.withUnsafeBytes { write(2, $0.baseAddress, n) }
                pending += buf.prefix(n)
                while let i = pending.firstIndex(of: 10) {
                    each(String(decoding: pending[..<i], as: UTF8.self))
                    pending.removeFirst(i + 1)
                }
            }
            close(fd)
            done.signal()
        }
        t.start()
    }

    /// The exit status, once the job's last stderr lines have been handed on (2 s at most: a process that
    /// outlives mpiexec may hold the pipe).
    private func finished(_ status: Int32) -> Int32 {
        if copying { _ = stderrDone.wait(timeout: .now() + 2) }
        return status
    }

    private func forwardSignals(_ send: @escaping @Sendable (Int32) -> Void) {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { send(sig) }
            src.resume()
            Self.sources.append(src)
        }
    }
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// A process under `root` (children, grandchildren, ...) whose environment has PMI_RANK=`rank`.
    static func descendant(of root: pid_t, withRank rank: Int) -> pid_t? {
        var parents: [pid_t: pid_t] = [:]
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let p = pid_t(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]) { parents[p] = ppid }
        }
        func under(_ p: pid_t) -> Bool {
            var q = p, hops = 0
            while let up = parents[q], hops < 16 {
                if up == root { return true }
                q = up
                hops += 1
            }
            return false
        }
        let want = "PMI_RANK=\(rank)"
        for (p, _) in parents where under(p) {
            guard let env = FileManager.default.contents(atPath: "/proc/\(p)/environ") else { continue }
            if env.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == want }) { return p }
        }
        return nil
    }
}

/// The launcher could not be started.
public struct SupervisorError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
