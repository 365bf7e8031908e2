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
    /// The program Hydra starts remote proxies with instead of plain `ssh` (`launcher_exec:`, e.g. the
    /// testbed's ssh wrapper with its own keys).
    public let launcherExec: String?
    /// Environment for every rank (`env:`, e.g. UCX_TLS and UCX_NET_DEVICES to pin the network path).
    public let env: [(String, String)]

    /// Parses a cluster file (`nodes:` list of `{host, slots, numa_nodes}`; optional `launcher_exec:` and an
    /// `env:` mapping).
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
        launcherExec = root?.mapping?["launcher_exec"]?.string
        if let e = root?.mapping?["env"] {
            guard let m = e.mapping else { throw err(e, "'env' must be a mapping of variable names to values") }
            env = try m.map { k, v in
                guard let name = k.string, let value = v.string, !name.isEmpty else { throw err(k, "'env' entries need a name and a value") }
                return (name, value)
            }
        } else {
            env = []
        }
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
        if let l = launcherExec { cmd += ["-launcher", "ssh", "-launcher-exec", URL(fileURLWithPath: l).standardizedFileURL.path] }
        for (k, v) in env { cmd += ["-genv", k, v] }
        // Report dead ranks ourselves (Docs/CLUSTER.md) instead of having the launcher kill the job silently.
        cmd += ["-disable-auto-cleanup", binary] + args + ["--topology", topologyPath]
        return (cmd, warning)
    }
}
