// `switchyard launch`: prints the exact mpiexec command for a cluster and a topology, or runs it (--run)
// under a supervisor that ends it once rank 0 has ended.
import ArgumentParser
import Cluster
import Foundation

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the mpiexec command that runs a switchyard command on a cluster with a topology.",
        discussion: "Example: switchyard launch --cluster Cluster/local.yaml --topology Topologies/local-1h2w.yaml -- generate -m model.gguf -p Hi\nWith --run it runs the command and stops mpiexec if it outlives rank 0 by --grace seconds (a host whose link is down keeps it waiting).")

    @Option(help: "Cluster description (Cluster/*.yaml).")
    var cluster: String

    @Option(help: "Topology file (Topologies/*.yaml).")
    var topology: String

    @Flag(name: .customLong("run"), help: "Run the command instead of printing it (mpiexec must be on PATH here).")
    var execute = false

    @Option(help: "With --run: seconds mpiexec may outlive rank 0 once a rank has reported a lost peer before it is stopped (60 after a normal end).")
    var grace: Double = 5

    @Argument(parsing: .captureForPassthrough, help: "The switchyard command to run, after --.")
    var command: [String] = []

    func run() throws {
        try reportingErrors {
            let args = command.first == "--" ? Array(command.dropFirst()) : command
            guard !args.isEmpty else { throw ValidationError("give the switchyard command after --, e.g. -- generate -m model.gguf") }
            let spec = try ClusterSpec(path: cluster)
            let topo = try Topology(path: topology)
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
            let (cmd, warning) = try spec.mpiexec(topology: topo, topologyPath: topology, binary: binary, args: args)
            if let w = warning { FileHandle.standardError.write(Data("note: \(w)\n".utf8)) }
            guard execute else { return print(cmd.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")) }
            let status = try JobSupervisor(command: cmd, grace: grace).run { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            throw ExitCode(status)
        }
    }
}
