// NUMA placement for expert-shard workers, over libnuma.
//
// Reference: ../shared/research/swift-mpi-recipe.md §6 (what libnuma does in a one-node VM: run_on_node(1)
// fails with ERANGE, alloc_onnode on a missing node only warns, so nodes are validated here first) and §3.2
// (libnuma's mutable C globals need `@preconcurrency import`). Unsafe pointers stay in this file.
@preconcurrency import CNUMA
import Foundation

/// What the machine's NUMA layout is and what binding did.
public enum NUMA {
    /// Number of NUMA nodes the kernel reports (1 where libnuma is unusable: no NUMA support means one node).
    public static var nodeCount: Int {
        guard numa_available() >= 0 else { return 1 }
        return Int(numa_num_configured_nodes())
    }

    /// The CPU the calling thread runs on now (for logs).
    public static var currentCPU: Int { Int(sched_getcpu()) }

    /// Node of CPU `cpu`, or nil when unknown.
    public static func node(ofCPU cpu: Int) -> Int? {
        guard numa_available() >= 0 else { return nil }
        let n = numa_node_of_cpu(Int32(cpu))
        return n < 0 ? nil : Int(n)
    }

    /// The outcome of a binding request, as one log line's worth of facts.
    public enum Binding: Sendable, Equatable, CustomStringConvertible {
        /// Threads and memory are bound to `node` (with the node's CPU count).
        case bound(node: Int, cpus: Int)
        /// The machine has a single node: nothing to bind, the process carries on.
        case singleNode(requested: Int)

        public var description: String {
            switch self {
            case .bound(let n, let c): "bound threads and memory to NUMA node \(n) (\(c) CPUs)"
            case .singleNode(let r): "machine has a single NUMA node; not binding (topology asks for node \(r))"
            }
        }
    }

    /// A binding that cannot be honoured.
    public struct BindError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Binds the calling thread (and the threads it creates later) to `node`'s CPUs, and its future
    /// memory, including page-cache pages it faults in from a mapped model file, to `node`'s memory.
    /// Call before creating the kernel thread pool and before touching weights.
    public static func bind(node: Int) throws -> Binding {
        let nodes = nodeCount
        if nodes <= 1 { return .singleNode(requested: node) }
        guard node >= 0 && node < nodes else {
            throw BindError(description: "NUMA node \(node) does not exist: this machine has nodes 0..<\(nodes)")
        }
        guard numa_run_on_node(Int32(node)) == 0 else {
            throw BindError(description: "cannot run on NUMA node \(node): \(String(cString: strerror(errno)))")
        }
        guard let mask = numa_allocate_nodemask() else { throw BindError(description: "numa_allocate_nodemask failed") }
        defer { numa_bitmask_free(mask) }
        numa_bitmask_setbit(mask, UInt32(node))
        numa_set_membind(mask)
        numa_set_strict(1)
        var cpus = 0
        if let cm = numa_allocate_cpumask() {
            defer { numa_bitmask_free(cm) }
            if numa_node_to_cpus(Int32(node), cm) == 0 {
                cpus = Int(numa_bitmask_weight(cm))
            }
        }
        return .bound(node: node, cpus: cpus)
    }
}
