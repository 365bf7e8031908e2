// Cluster descriptions (Cluster/*.yaml): the nodes a job may use, and the mpiexec command that runs a
// topology on them.
import Foundation
import Yams

/// A set of nodes: host name, MPI slots and NUMA domains per node.
public struct ClusterSpec: Sendable {
    public struct Node: Sendable {
        public let host: String
        public let slots: Int
        public let numaNodes: Int
    }

    public let file: String
    public let nodes: [Node]

    /// Parses a cluster file (`nodes:` list of `{host, slots, numa_nodes}`).
    public init(path: String) throws {
        func err(_ n: Yams.Node?, _ m: String) -> TopologyError { TopologyError(file: path, line: n?.mark?.line, problem: m) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw err(nil, "cannot read the file") }
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: text) } catch { throw err(nil, "not valid YAML: \(error)") }
        guard let list = root?.mapping?["nodes"]?.sequence, !list.isEmpty else { throw err(root, "needs a non-empty 'nodes:' list") }
        nodes = try list.map { n in
            guard let m = n.mapping, let host = m["host"]?.string, !host.isEmpty else { throw err(n, "a node needs 'host'") }
            let slots = m["slots"]?.int ?? 1, numa = m["numa_nodes"]?.int ?? 1
            guard slots >= 1, numa >= 1 else { throw err(n, "slots and numa_nodes must be >= 1") }
            return Node(host: host, slots: slots, numaNodes: numa)
        }
        file = path
    }

    /// The mpiexec command line that runs `args` (a switchyard subcommand and its options) with `topology`.
    /// One machine may be oversubscribed (correctness runs); `warning` then says so.
    public func mpiexec(topology t: Topology, topologyPath: String, binary: String, args: [String]) throws
        -> (command: [String], warning: String?)
    {
        let slots = nodes.reduce(0) { $0 + $1.slots }
        let local = nodes.count == 1 && nodes[0].host == "localhost"
        var warning: String?
        if slots < t.ranks {
            guard local else {
                throw TopologyError(file: file, line: nil, problem: "has \(slots) slots but \(topologyPath) needs \(t.ranks) ranks")
            }
            warning = "\(t.ranks) ranks on \(slots) slots: oversubscribed, fine for correctness, not for speed"
        }
        var cmd = ["mpiexec", "-n", "\(t.ranks)"]
        if !local {
            cmd += ["-hosts", nodes.map { "\($0.host):\($0.slots)" }.joined(separator: ",")]
        }
        if nodes.contains(where: { $0.numaNodes > 1 }) { cmd += ["-bind-to", "numa", "-map-by", "numa"] }
        // Report dead ranks ourselves (Docs/CLUSTER.md) instead of having the launcher kill the job silently.
        cmd += ["-disable-auto-cleanup", binary] + args + ["--topology", topologyPath]
        return (cmd, warning)
    }
}
