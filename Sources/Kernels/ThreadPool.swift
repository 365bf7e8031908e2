// A persistent CPU thread pool shared by all kernels of one engine.
import CKernels

/// Worker threads for the fast kernels; the calling thread takes part as thread 0.
public final class ThreadPool: @unchecked Sendable {
    let raw: OpaquePointer?
    /// Number of threads, the caller included.
    public let threads: Int

    /// Whether quantized weights multiply float activations (`--exact`) instead of Q8_0-quantized ones.
    public let exact: Bool

    /// Starts `threads` - 1 workers; `exact` picks the float-activation path for the pool's matmuls, and
    /// `path` a kernel path for this pool alone (clamped to the CPU's best; nil: the process's path).
    public init(threads: Int, exact: Bool = false, path: KernelPath? = nil) {
        self.threads = max(1, threads)
        self.exact = exact
        raw = sy_pool_create(Int32(self.threads))
        sy_pool_set_exact(raw, exact ? 1 : 0)
        if let path { sy_pool_set_isa(raw, Int32(path.rawValue)) }
    }

    /// The kernel path this pool's kernels take.
    public var path: KernelPath { KernelPath(rawValue: Int(sy_pool_isa(raw))) ?? .scalar }

    deinit { sy_pool_free(raw) }

    /// Kernel calls dispatched so far (each pays one dispatch and join; the cost model counts them).
    public var runs: Int { Int(sy_pool_runs(raw)) }

    /// A single-threaded pool (runs everything on the caller).
    public static let serial = ThreadPool(threads: 1)
}

extension ThreadPool {
    /// Runs a register-only loop of the pool's int8 multiply-add instruction on every thread and returns the
    /// number of int8 products computed (the probe of the int8 issue rate; time the call).
    public func int8ProbeProducts(iterations: Int) -> Int { Int(sy_probe_int8(raw, iterations)) }

    /// Each of the pool's threads' kernel scratch id (the caller's first): a thread's scratch is freed when
    /// the thread ends, which `scratchFreed(id:)` tells.
    public func scratchIDs() -> [Int] {
        var ids = [Int](repeating: 0, count: threads)
        ids.withUnsafeMutableBufferPointer { $0.withMemoryRebound(to: CLong.self) { sy_pool_scratch_ids(raw, $0.baseAddress) } }
        return ids
    }

    /// The calling thread's kernel scratch id, and the bytes that scratch holds now.
    public static var scratchOfThisThread: (id: Int, bytes: Int) { (Int(sy_scratch_id()), Int(sy_scratch_held())) }

    /// Whether the scratch with this id was freed (its thread ended; among the last 256 freed).
    public static func scratchFreed(id: Int) -> Bool { sy_scratch_was_freed(id) != 0 }
}
