// A thin, checked Swift layer over MPICH: init, a communicator, typed collectives.
//
// Reference: ../shared/research/swift-mpi-recipe.md (§2 shims, §3 Swift 6 rules, §4 exchange, §5 why every
// wait yields). Every collective here is non-blocking plus a test loop that yields the core and gives up
// after a deadline, so a dead or silent peer becomes an error that names the operation instead of a hang,
// and oversubscribed runs (more ranks than cores) do not burn whole scheduler slices busy-polling.
// Unsafe pointers stay in this file.
import CMPI
import Foundation

/// An MPI call failed or timed out.
public struct MPIError: Error, CustomStringConvertible {
    /// What was being done.
    public let operation: String
    /// The MPI error code, or nil for a timeout.
    public let code: Int32?
    /// Human-readable cause.
    public let detail: String
    /// Whether a peer was found dead or silent (then tearing the job down through the launcher can fail).
    public var peerLost: Bool { code == nil }

    public var description: String {
        code == nil ? "\(operation): \(detail)" : "\(operation) failed (MPI error \(code!)): \(detail)"
    }
}

/// Process-wide MPI state.
public enum MPI {
    nonisolated(unsafe) static var started = false
    nonisolated(unsafe) static var liveness: Liveness?

    /// Whether this process was started by an MPI launcher (mpirun/mpiexec with PMI).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["PMI_RANK"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// Whether several threads may call MPI at once (each on its own communicator): true when the library
    /// granted MPI_THREAD_MULTIPLE.
    nonisolated(unsafe) public private(set) static var multipleThreads = false

    /// Initialises MPI once (asking for THREAD_MULTIPLE, so micro-batch lanes can talk on their own
    /// communicators from their own threads) and makes errors return codes instead of aborting. Returns
    /// the world communicator.
    public static func initialize() throws -> Communicator {
        if !started {
            // A peer that dies closes its sockets; writing to them must be an error here, not a silent SIGPIPE death.
            signal(SIGPIPE, SIG_IGN)
            // Before MPI starts its threads and sockets: the witness that names this rank if it is killed.
            RankWitness.startIfLaunched()
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread")
            multipleThreads = provided >= MPI_THREAD_MULTIPLE
            try check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, cmpi_errors_return()), "MPI_Comm_set_errhandler")
            started = true
            liveness = Liveness(world: MPI_COMM_WORLD)
            liveness?.startResponder()
            hosts = try gatherHostNames(Communicator(MPI_COMM_WORLD))
        }
        return Communicator(MPI_COMM_WORLD)
    }

    /// Each rank's host (MPI_Get_processor_name), gathered at `initialize`: messages about a lost peer name
    /// its host too, which on a cluster says which machine (or link) to look at.
    nonisolated(unsafe) public private(set) static var hosts: [String] = []

    /// "rank 2 (syhost2)": a rank and its host, as every message about a peer names it.
    public static func describe(rank: Int) -> String {
        rank < hosts.count && !hosts[rank].isEmpty ? "rank \(rank) (\(hosts[rank]))" : "rank \(rank)"
    }

    private static func gatherHostNames(_ world: Communicator) throws -> [String] {
        var name = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var len: Int32 = 0
        try check(MPI_Get_processor_name(&name, &len), "MPI_Get_processor_name")
        let width = Int(MPI_MAX_PROCESSOR_NAME)
        var mine = [UInt8](repeating: 0, count: width)
        for i in 0..<min(Int(len), width) { mine[i] = UInt8(bitPattern: name[i]) }
        // Startup: the other ranks may still be starting, so the deadline is long; dead peers are named.
        world.timeout = 3600
        let all = try world.allgather(mine, "host names")
        return (0..<world.size).map { r in
            String(decoding: all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Prints `message` to stderr and aborts the whole job with `code`. When `cause` says a peer is already
    /// gone, this rank only exits: every survivor finds the loss by itself within its timeouts, and asking
    /// the launcher to kill a job with a dead process can take the launcher (and everyone's stderr) down.
    public static func abort(_ message: String, code: Int32 = 1, cause: Error? = nil) -> Never {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
        // Give the launcher a moment to forward the message before this exit (or the abort) makes it tear the
        // job down: a process manager that loses its proxy on the way drops whatever it had not forwarded.
        usleep(300_000)
        if let e = cause as? MPIError, e.peerLost {
            noteLostPeer(message)
            exit(code)
        }
        RankWitness.release()  // this rank ends on purpose, with its message above
        if started { MPI_Abort(MPI_COMM_WORLD, code) }
        exit(code)
    }

    /// Tells a supervising `switchyard launch --run` (through the file it names in SWITCHYARD_LAUNCH_STATUS)
    /// that this rank is ending on a lost peer, so it may stop an mpiexec that waits on an unreachable host
    /// after a short grace instead of the long one a normal ending gets.
    static func noteLostPeer(_ message: String) {
        guard let path = ProcessInfo.processInfo.environment["SWITCHYARD_LAUNCH_STATUS"], !path.isEmpty else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard fd >= 0 else { return }
        let line = Array("lost peer: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
        guard rc != MPI_SUCCESS else { return }
        var buf = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var len: Int32 = 0
        MPI_Error_string(rc, &buf, &len)
        throw MPIError(operation: what(), code: rc, detail: String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

/// An MPI communicator with checked, deadline-bounded collectives.
public final class Communicator: @unchecked Sendable {
    let comm: MPI_Comm
    /// This process's rank.
    public let rank: Int
    /// Number of ranks.
    public let size: Int
    /// How long any one collective may take before it is declared dead.
    public var timeout: Double = 30

    init(_ comm: MPI_Comm) {
        self.comm = comm
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        liveness = MPI.liveness!
    }

    /// Seconds a collective may stall before this rank checks which peers are still alive.
    public var suspectAfter: Double = 5
    /// Whether stalls trigger liveness probes.
    public var probing = true
    /// The process's liveness pings (shared by every communicator).
    private let liveness: Liveness

    /// Waits for a request, yielding the core between tests, until `timeout` seconds pass. While waiting it
    /// answers peers' liveness pings; after `suspectAfter` seconds it pings every peer itself and fails at
    /// once, naming the ranks that did not answer.
    private func wait(_ req: inout MPI_Request, _ what: String) throws {
        // Monotonic: a wall-clock step (NTP) must not fake or hide a timeout.
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var flag: Int32 = 0
        var spins = 0
        var nextProbe = suspectAfter
        while true {
            let rc = MPI_Test(&req, &flag, cmpi_status_ignore())
            if rc != MPI_SUCCESS { try failed(rc, what) }
            if flag != 0 { return }
            spins += 1
            if spins & 63 == 0 && !MPI.multipleThreads { try liveness.answer() }
            if spins & 1023 == 0 {
                let waited = elapsed()
                if probing && size > 1 && waited > nextProbe {
                    let gone = liveness.silentPeers(window: MPI.multipleThreads ? 5 : 15)
                    nextProbe = elapsed() + suspectAfter
                    if !gone.isEmpty {
                        throw MPIError(operation: what, code: nil, detail: "no answer from \(gone.map { MPI.describe(rank: $0) }.joined(separator: ", ")): stopped answering (died, hung, or stuck on a dead peer)")
                    }
                }
                if waited > timeout {
                    throw MPIError(operation: what, code: nil,
                                   detail: "no answer from a peer within \(Int(timeout)) s (a rank died or stopped answering)")
                }
            }
            _ = cmpi_yield()
        }
    }

    /// A collective failed outright (over TCP, UCX ends a dead peer's endpoint with an error rather than a
    /// stall): name the peers that no longer answer, as a stall would, or else pass the MPI error on.
    private func failed(_ rc: Int32, _ what: String) throws -> Never {
        if probing && size > 1, case let gone = liveness.silentPeers(window: 5), !gone.isEmpty {
            throw MPIError(operation: what, code: nil, detail: "no answer from \(gone.map { MPI.describe(rank: $0) }.joined(separator: ", ")): its connection failed (died, or its host or link is down)")
        }
        try MPI.check(rc, what)
        fatalError("unreachable: MPI.check throws for \(rc)")
    }

    /// Replies to pending liveness pings (the responder thread does this too, where MPI allows it).
    public func answerPendingPings() throws { try liveness.answer() }

    /// A new communicator over the same ranks with its own message space (collective: every rank calls it,
    /// in the same order). Errors on it return codes, like on this one.
    public func duplicate(_ what: String = "communicator duplicate") throws -> Communicator {
        var c: MPI_Comm = MPI_COMM_NULL
        try MPI.check(MPI_Comm_dup(comm, &c), what)
        try MPI.check(MPI_Comm_set_errhandler(c, cmpi_errors_return()), what)
        let out = Communicator(c)
        out.timeout = timeout
        return out
    }

    /// Collects every rank's bytes on `root` (others get []): one count exchange, then one Alltoallv.
    public func gather(_ bytes: [UInt8], root: Int, _ what: String = "gather") throws -> [[UInt8]] {
        var counts = [Int32](repeating: 0, count: size)
        counts[root] = Int32(bytes.count)
        let incoming = try alltoall(counts, "\(what) counts")
        let all = try alltoallv(bytes, sendCounts: counts, recvCounts: incoming, what)
        guard rank == root else { return [] }
        var out: [[UInt8]] = [], o = 0
        for c in incoming {
            out.append(Array(all[o..<(o + Int(c))]))
            o += Int(c)
        }
        return out
    }

    /// Every rank's `bytes` (the same length on each), concatenated in rank order, on every rank.
    public func allgather(_ bytes: [UInt8], _ what: String = "allgather") throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes.count * size)
        var req: MPI_Request = MPI_REQUEST_NULL
        try bytes.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { r in
                try MPI.check(MPI_Iallgather(s.baseAddress, Int32(bytes.count), MPI_BYTE, r.baseAddress, Int32(bytes.count), MPI_BYTE,
                                             comm, &req), what)
                try wait(&req, what)
            }
        }
        return out
    }

    /// Barrier.
    public func barrier(_ what: String = "barrier") throws {
        var req: MPI_Request = MPI_REQUEST_NULL
        try MPI.check(MPI_Ibarrier(comm, &req), what)
        try wait(&req, what)
    }

    /// Broadcasts `values` from `root` (every rank passes an array of the same length).
    public func broadcast(_ values: inout [Int32], root: Int, _ what: String = "broadcast") throws {
        let n = Int32(values.count)
        var req: MPI_Request = MPI_REQUEST_NULL
        try values.withUnsafeMutableBufferPointer { p in
            try MPI.check(MPI_Ibcast(p.baseAddress, n, MPI_INT, Int32(root), comm, &req), what)
            try wait(&req, what)
        }
    }

    /// Broadcasts raw bytes of a known length from `root`.
    public func broadcast(bytes: inout [UInt8], root: Int, _ what: String = "broadcast") throws {
        let n = Int32(bytes.count)
        var req: MPI_Request = MPI_REQUEST_NULL
        try bytes.withUnsafeMutableBufferPointer { p in
            try MPI.check(MPI_Ibcast(p.baseAddress, n, MPI_BYTE, Int32(root), comm, &req), what)
            try wait(&req, what)
        }
    }

    /// Element-wise maximum over all ranks.
    public func allreduceMax(_ values: [Double], _ what: String = "allreduce") throws -> [Double] {
        var out = [Double](repeating: 0, count: values.count)
        var req: MPI_Request = MPI_REQUEST_NULL
        try values.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { r in
                try MPI.check(MPI_Iallreduce(s.baseAddress, r.baseAddress, Int32(values.count), MPI_DOUBLE, cmpi_op_max(),
                                             comm, &req), what)
                try wait(&req, what)
            }
        }
        return out
    }

    /// Exchanges one Int32 per peer: `send[r]` goes to rank r; returns what each rank sent here.
    public func alltoall(_ send: [Int32], _ what: String = "alltoall") throws -> [Int32] {
        precondition(send.count == size)
        var recv = [Int32](repeating: 0, count: size)
        var req: MPI_Request = MPI_REQUEST_NULL
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                try MPI.check(MPI_Ialltoall(s.baseAddress, 1, MPI_INT, r.baseAddress, 1, MPI_INT, comm, &req), what)
                try wait(&req, what)
            }
        }
        return recv
    }

    /// `MPI_Alltoallv` over bytes: `send` holds each destination's bytes back to back (`sendCounts[r]` for
    /// rank r); returns the concatenation of what every rank sent here (`recvCounts[r]` bytes from r).
    public func alltoallv(_ send: [UInt8], sendCounts: [Int32], recvCounts: [Int32], _ what: String) throws -> [UInt8] {
        var recv: [UInt8] = []
        try alltoallv(send, sendCounts: sendCounts, recvCounts: recvCounts, into: &recv, what)
        return recv
    }

    /// `alltoallv` into a kept buffer (sized to the received bytes, its storage reused): no allocation per
    /// call once the buffer has grown, so a benchmark times the transport, not the allocator.
    public func alltoallv(_ send: [UInt8], sendCounts: [Int32], recvCounts: [Int32], into recv: inout [UInt8], _ what: String) throws {
        precondition(sendCounts.count == size && recvCounts.count == size)
        let sd = exclusiveScan(sendCounts), rd = exclusiveScan(recvCounts), n = Int(recvCounts.reduce(0, +))
        if recv.count != n { recv = [UInt8](repeating: 0, count: n) }
        var req: MPI_Request = MPI_REQUEST_NULL
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                try MPI.check(MPI_Ialltoallv(s.baseAddress, sendCounts, sd, MPI_BYTE, r.baseAddress, recvCounts, rd, MPI_BYTE,
                                             comm, &req), what)
                try wait(&req, what)
            }
        }
    }

    /// Starts an `MPI_Ialltoallv` of bytes and returns at once; `PendingAlltoallv.wait()` completes it. The
    /// buffers are owned by the returned object until then, so the caller may compute meanwhile (the head's
    /// shared expert while the workers run the routed ones). Every rank must still start its collectives on
    /// this communicator in the same order.
    public func startAlltoallv(_ send: [UInt8], sendCounts: [Int32], recvCounts: [Int32], _ what: String) throws -> PendingAlltoallv {
        precondition(sendCounts.count == size && recvCounts.count == size)
        let pending = PendingAlltoallv(comm: self, send: send, recvBytes: Int(recvCounts.reduce(0, +)), what: what)
        try MPI.check(MPI_Ialltoallv(pending.sendBuffer, sendCounts, exclusiveScan(sendCounts), MPI_BYTE, pending.recvBuffer, recvCounts,
                                     exclusiveScan(recvCounts), MPI_BYTE, comm, &pending.request), what)
        return pending
    }

    /// Completes a started collective (the deadline and liveness rules of every wait).
    func complete(_ p: PendingAlltoallv) throws { try wait(&p.request, p.what) }

    private func exclusiveScan(_ c: [Int32]) -> [Int32] {
        var out = [Int32](repeating: 0, count: c.count)
        for i in 1..<max(c.count, 1) { out[i] = out[i - 1] + c[i - 1] }
        return out
    }
}

/// An `MPI_Ialltoallv` in flight (`Communicator.startAlltoallv`), with the send and receive buffers it owns.
public final class PendingAlltoallv: @unchecked Sendable {
    let comm: Communicator
    let what: String
    var request: MPI_Request = MPI_REQUEST_NULL
    let sendBuffer: UnsafeMutableRawPointer, recvBuffer: UnsafeMutableRawPointer
    let recvBytes: Int
    private var done = false

    init(comm: Communicator, send: [UInt8], recvBytes: Int, what: String) {
        self.comm = comm
        self.what = what
        self.recvBytes = recvBytes
        let sb = UnsafeMutableRawPointer.allocate(byteCount: max(send.count, 1), alignment: 64)
        send.withUnsafeBytes { if let b = $0.baseAddress { sb.copyMemory(from: b, byteCount: send.count) } }
        sendBuffer = sb
        recvBuffer = .allocate(byteCount: max(recvBytes, 1), alignment: 64)
    }

    /// Waits for the collective and returns the received bytes.
    public func wait() throws -> [UInt8] {
        try comm.complete(self)
        done = true
        return Array(UnsafeRawBufferPointer(start: recvBuffer, count: recvBytes))
    }

    deinit {
        // MPI may still write into buffers of a collective that never completed (its pass failed on a lost
        // peer, and the process is on its way out): leave them rather than free memory MPI owns.
        guard done else { return }
        sendBuffer.deallocate()
        recvBuffer.deallocate()
    }
}
