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
    }

    /// Waits for a request, yielding the core between tests, until `timeout` seconds pass.
    private func wait(_ req: inout MPI_Request, _ what: String) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var flag: Int32 = 0
        var spins = 0
        while true {
            try MPI.check(MPI_Test(&req, &flag, cmpi_status_ignore()), what)
            if flag != 0 { return }
            spins += 1
            if spins & 1023 == 0, Date() > deadline {
                throw MPIError(operation: what, code: nil,
                               detail: "no answer from a peer within \(Int(timeout)) s (a rank died or stopped answering)")
            }
            _ = cmpi_yield()
        }
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
