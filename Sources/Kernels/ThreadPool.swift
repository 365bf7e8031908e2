// A persistent CPU thread pool shared by all kernels of one engine.
import CKernels

/// Worker threads for the fast kernels; the calling thread takes part as thread 0.
public final class ThreadPool: @unchecked Sendable {
    let raw: OpaquePointer?
    /// Number of threads, the caller included.
    public let threads: Int

    /// Starts `threads` - 1 workers.
    public init(threads: Int) {
        self.threads = max(1, threads)
        raw = sy_pool_create(Int32(self.threads))
    }

    deinit { sy_pool_free(raw) }

    /// Kernel calls dispatched so far (each pays one dispatch and join; the cost model counts them).
    public var runs: Int { Int(sy_pool_runs(raw)) }

    /// A single-threaded pool (runs everything on the caller).
    public static let serial = ThreadPool(threads: 1)
}
