// A rank's witness: a small process outside the rank's process group that names the rank when it ends
// without a word (kill -9, the OOM killer, a crash).
//
// Why it exists: when a rank dies, MPICH's Hydra kills every other rank's process group at once (SIGKILL;
// MPICH 4.0.2 does so even with -disable-auto-cleanup), 0.3-10 ms later. No survivor lives long enough to
// notice the loss and say which rank it was, and mpiexec's banner names a PID on stdout, not the rank.
// The witness runs in its own session, which Hydra's killpg does not reach, and keeps the rank's stderr,
// so the proxy still forwards what it writes.
//
// How it tells the lost rank from the ranks the launcher then kills: a canary process sits in the rank's
// process group. The launcher kills whole groups, so a rank it killed has a canary that is dead or has
// SIGKILL pending; a rank that was killed alone has a live canary. The witness traces the rank (ptrace
// PTRACE_SEIZE, allowed by the rank through PR_SET_PTRACER): a traced rank's death is reported to the
// witness first, and to its parent (the launcher's proxy) only once the witness has reaped it. So the
// witness looks at the canary before the launcher can know of the death: no race. The witness also learns
// the signal that ended the rank.
//
// Where tracing is not allowed (Yama ptrace_scope 3, a seccomp filter), the witness falls back to a pipe:
// the rank writes "ok\n" when it ends on purpose (at exit, or before MPI_Abort); end of file without it
// is an abrupt end, and the witness looks at the canary at once, racing the launcher's cleanup.
import CMPI
import Foundation

/// Starts and speaks to this rank's witness (see the file comment).
public enum RankWitness {
    nonisolated(unsafe) private static var fd: Int32 = -1
    /// The subcommands the helper processes run (`switchyard __witness RANK RANK_PID CANARY_PID`, `__canary`).
    public static let witnessCommand = "__witness", canaryCommand = "__canary"

    /// Starts this rank's witness and canary once, when an MPI launcher started more than one rank
    /// (PMI_RANK, PMI_SIZE) and SWITCHYARD_NO_WITNESS is not set (set it to attach a debugger: a traced rank
    /// cannot be traced again). Failing to start them is not an error.
    public static func startIfLaunched() {
        let env = ProcessInfo.processInfo.environment
        guard fd < 0, env["SWITCHYARD_NO_WITNESS"] == nil, let r = env["PMI_RANK"].flatMap(Int.init),
              let n = env["PMI_SIZE"].flatMap(Int.init), n > 1 else { return }
        var toWitness: [Int32] = [-1, -1], canaryLife: [Int32] = [-1, -1]
        guard pipe(&toWitness) == 0, pipe(&canaryLife) == 0 else { closeAll(toWitness + canaryLife); return }
        // Close-on-exec: no other program this rank starts may hold these ends open.
        for f in toWitness + canaryLife { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        defer { closeAll([toWitness[0]] + canaryLife) }
        // The canary stays in this process's group and lives as long as the witness holds its pipe.
        guard let canary = spawn([canaryCommand], stdin: canaryLife[0], fd3: nil, newSession: false) else { close(toWitness[1]); return }
        guard let witness = spawn([witnessCommand, "\(r)", "\(getpid())", "\(canary)"], stdin: toWitness[0], fd3: canaryLife[1],
                                  newSession: true) else {
            close(toWitness[1])
            return
        }
        _ = cmpi_allow_ptracer(witness)  // Yama (ptrace_scope 1) lets only ancestors trace without it
        fd = toWitness[1]
        atexit { RankWitness.release() }
    }

    /// Tells the witness that this rank ends on purpose (idempotent).
    public static func release() {
        guard fd >= 0 else { return }
        let ok: [UInt8] = Array("ok\n".utf8)
        _ = ok.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        fd = -1
    }

    private static func closeAll(_ p: [Int32]) { for f in p where f >= 0 { close(f) } }

    /// posix_spawn of this executable: `stdin` as fd 0, `fd3` as 3; the canary's stdout and stderr are
    /// `/dev/null`, the witness keeps the rank's (the launcher forwards its stderr). A new session when asked
    /// (POSIX_SPAWN_SETSID: out of reach of the launcher's killpg).
    private static func spawn(_ args: [String], stdin: Int32, fd3: Int32?, newSession: Bool) -> pid_t? {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_adddup2(&fa, stdin, 0)
        if !newSession {
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        }
        if let e = fd3 { posix_spawn_file_actions_adddup2(&fa, e, 3) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        if newSession { posix_spawnattr_setflags(&attr, Int16(0x80)) }  // POSIX_SPAWN_SETSID (glibc >= 2.26)
        let argv = (["switchyard"] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ)
        return rc == 0 ? pid : nil
    }

    /// Runs a helper (`args` after the executable) and exits.
    public static func runHelper(_ args: [String]) -> Never {
        // The witness keeps the rank's stdout, stderr and PMI socket open: the launcher's proxy learns of a
        // death from their end of file as well as from SIGCHLD, so it hears of none before the witness spoke.
        let pmi = ProcessInfo.processInfo.environment["PMI_FD"].flatMap(Int32.init)
        closeInherited(keeping: args.first == witnessCommand ? [0, 1, 2, 3] + (pmi.map { [$0] } ?? []) : [0, 1, 2])
        signal(SIGPIPE, SIG_IGN)
        guard args.first == witnessCommand, args.count == 4, let rank = Int(args[1]), let rankPID = pid_t(args[2]),
              let canary = pid_t(args[3]) else {
            _ = readAll(0)  // the canary: until the witness goes
            exit(0)
        }
        let signal: Int32?
        if let traced = trace(rankPID) {
            signal = traced
        } else {
            // Untraceable: the pipe says whether the rank ended on purpose.
            signal = readAll(0).starts(with: Array("ok".utf8)) ? nil : 0
        }
        guard let sig = signal, !groupKilled(canary) else { exit(0) }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let how = sig > 0 ? "on signal \(sig) (\(String(cString: strsignal(sig)))\(sig == SIGKILL ? ": kill -9, or the OOM killer" : ""))"
                          : "abruptly (killed, or crashed)"
        let line = "switchyard: rank \(rank) (\(name)) ended \(how), without a word; the launcher stops the job\n"
        _ = Array(line.utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(0)
    }

    /// Traces `pid` until it ends (passing on every signal it gets) and returns the signal that ended it, or
    /// nil when it exited; returns nil at once, untraced, when tracing is not allowed.
    private static func trace(_ pid: pid_t) -> Int32?? {
        var attached = false
        for _ in 0..<50 {  // the rank allows its tracer just after starting it
            if cmpi_ptrace_seize(pid) == 0 { attached = true; break }
            if errno != EPERM { break }
            usleep(20_000)
        }
        guard attached else { return nil }
        while true {
            var st: Int32 = 0
            let r = waitpid(pid, &st, cmpi_wait_all_threads())
            if r < 0 { return errno == EINTR ? .some(nil) : .some(nil) }
            if st & 0xff == 0x7f {  // stopped: a signal on its way, or a group stop
                let sig = (st >> 8) & 0xff, event = st >> 16
                if event == cmpi_ptrace_event_stop() {
                    _ = [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(sig) ? cmpi_ptrace_listen(pid) : cmpi_ptrace_cont(pid, 0)
                } else {
                    _ = cmpi_ptrace_cont(pid, sig)
                }
                continue
            }
            let term = st & 0x7f
            return .some(term == 0 ? nil : term)  // exited, or ended by a signal
        }
    }

    /// Whether the canary shows that the whole group was killed: gone, a zombie, or SIGKILL pending.
    private static func groupKilled(_ canary: pid_t) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(canary)/status", encoding: .utf8) else { return true }
        for line in status.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: true)
            guard f.count >= 2 else { continue }
            if f[0] == "State:" && (f[1].hasPrefix("Z") || f[1].hasPrefix("X")) { return true }
            if f[0] == "SigPnd:" || f[0] == "ShdPnd:", let mask = UInt64(f[1], radix: 16), mask & (1 << (UInt64(SIGKILL) - 1)) != 0 {
                return true
            }
        }
        return false
    }

    /// Reads `fd` to its end.
    private static func readAll(_ fd: Int32) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 64), seen: [UInt8] = []
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return seen }
            seen += buf.prefix(n)
        }
    }

    /// Closes every inherited descriptor but `keeping` (a helper inherits the rank's, e.g. its PMI socket).
    private static func closeInherited(keeping: [Int32]) {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for f in fds where !keeping.contains(f) { close(f) }
    }
}
