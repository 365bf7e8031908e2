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

    public var description: String {
        code == nil ? "\(operation): \(detail)" : "\(operation) failed (MPI error \(code!)): \(detail)"
    }
}

/// Process-wide MPI state.
public enum MPI {
    nonisolated(unsafe) private static var started = false

    /// Whether this process was started by an MPI launcher (mpirun/mpiexec with PMI).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["PMI_RANK"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// Initialises MPI once (THREAD_FUNNELED: only the calling thread talks to MPI) and makes errors
    /// return codes instead of aborting. Returns the world communicator.
    public static func initialize() throws -> Communicator {
        if !started {
            // A peer that dies closes its sockets; writing to them must be an error here, not a silent SIGPIPE death.
            signal(SIGPIPE, SIG_IGN)
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread")
            try check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, cmpi_errors_return()), "MPI_Comm_set_errhandler")
            started = true
        }
        return Communicator(MPI_COMM_WORLD)
    }

    /// Finalises MPI (call once, at the end, on every rank).
    public static func finalize() {
        if started { MPI_Finalize() }
        started = false
    }

    /// Prints `message` to stderr and aborts the whole job with `code`.
    public static func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
        // Give the launcher a moment to forward the message before it tears the job down.
        usleep(300_000)
        if started { MPI_Abort(MPI_COMM_WORLD, code) }
        exit(code)
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
        MPI_Comm_dup(comm, &probeComm)
    }

    /// Seconds a collective may stall before this rank checks which peers are still alive.
    public var suspectAfter: Double = 5
    /// Whether stalls trigger liveness probes (off for waits that may legitimately be long, like startup).
    public var probing = true
    /// A private duplicate for liveness probes (made up front: duplicating is itself collective).
    private var probeComm: MPI_Comm = MPI_COMM_NULL
    private static let pingTag: Int32 = 7071, pongTag: Int32 = 7072
    private var pongs: [Int32] = []
    private var token: Int32 = 0

    /// Waits for a request, yielding the core between tests, until `timeout` seconds pass. While waiting it
    /// answers peers' liveness pings; after `suspectAfter` seconds it pings every peer itself and fails at
    /// once, naming the ranks that did not answer.
    private func wait(_ req: inout MPI_Request, _ what: String) throws {
        let start = Date()
        var flag: Int32 = 0
        var spins = 0
        var probed = false
        while true {
            try MPI.check(MPI_Test(&req, &flag, cmpi_status_ignore()), what)
            if flag != 0 { return }
            spins += 1
            if spins & 63 == 0 { try answerPings() }
            if spins & 1023 == 0 {
                let waited = Date().timeIntervalSince(start)
                if probing && !probed && size > 1 && waited > suspectAfter {
                    probed = true
                    let gone = try silentPeers(window: 15)
                    if !gone.isEmpty {
                        throw MPIError(operation: what, code: nil, detail: "no answer from rank\(gone.count > 1 ? "s" : "") \(gone.map(String.init).joined(separator: ", ")): stopped answering (died, hung, or stuck on a dead peer)")
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

    /// Replies to every pending liveness ping.
    private func answerPings() throws {
        while true {
            var flag: Int32 = 0
            var st = MPI_Status()
            try MPI.check(MPI_Iprobe(MPI_ANY_SOURCE, Self.pingTag, probeComm, &flag, &st), "liveness ping")
            if flag == 0 { return }
            var v: Int32 = 0
            try MPI.check(MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, Self.pingTag, probeComm, cmpi_status_ignore()), "liveness ping")
            var req: MPI_Request = MPI_REQUEST_NULL
            pongs.append(v)  // keeps the send buffer alive
            try pongs.withUnsafeMutableBufferPointer { p in
                try MPI.check(MPI_Isend(p.baseAddress! + p.count - 1, 1, MPI_INT, st.MPI_SOURCE, Self.pongTag, probeComm, &req), "liveness pong")
            }
            MPI_Request_free(&req)
        }
    }

    /// Pings every peer and returns those that do not answer within `window` seconds. A live peer answers
    /// from whatever wait it is in; a dead one never does.
    private func silentPeers(window: Double) throws -> [Int] {
        token += 1
        let buf = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * size)  // leaked on purpose if a peer is dead
        var recvs = [MPI_Request](repeating: MPI_REQUEST_NULL, count: size)
        for peer in 0..<size where peer != rank {
            buf[peer] = token
            var sreq: MPI_Request = MPI_REQUEST_NULL
            try MPI.check(MPI_Isend(buf + peer, 1, MPI_INT, Int32(peer), Self.pingTag, probeComm, &sreq), "liveness ping")
            MPI_Request_free(&sreq)
            try MPI.check(MPI_Irecv(buf + size + peer, 1, MPI_INT, Int32(peer), Self.pongTag, probeComm, &recvs[peer]), "liveness pong")
        }
        let deadline = Date().addingTimeInterval(window)
        var heard = Set([rank])
        while heard.count < size && Date() < deadline {
            try answerPings()
            for peer in 0..<size where !heard.contains(peer) {
                var f: Int32 = 0
                try MPI.check(MPI_Test(&recvs[peer], &f, cmpi_status_ignore()), "liveness pong")
                if f != 0 { heard.insert(peer) }
            }
            _ = cmpi_yield()
        }
        return (0..<size).filter { !heard.contains($0) }
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
        precondition(sendCounts.count == size && recvCounts.count == size)
        let sd = exclusiveScan(sendCounts), rd = exclusiveScan(recvCounts)
        var recv = [UInt8](repeating: 0, count: Int(recvCounts.reduce(0, +)))
        var req: MPI_Request = MPI_REQUEST_NULL
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                try MPI.check(MPI_Ialltoallv(s.baseAddress, sendCounts, sd, MPI_BYTE, r.baseAddress, recvCounts, rd, MPI_BYTE,
                                             comm, &req), what)
                try wait(&req, what)
            }
        }
        return recv
    }

    private func exclusiveScan(_ c: [Int32]) -> [Int32] {
        var out = [Int32](repeating: 0, count: c.count)
        for i in 1..<max(c.count, 1) { out[i] = out[i - 1] + c[i - 1] }
        return out
    }
}
