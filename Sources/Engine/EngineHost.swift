// Starting an engine: load the model, and under a topology join the MPI job, bind the worker to its NUMA
// node, check the topology against the model with every rank, and pick the expert backend (the lanes'
// exchanges). Rank 0 (or the single process) gets the engine; every other rank serves the job inside
// `start` and gets nil back when rank 0 shuts down.
import Foundation
import Cluster
import GGUF
import Step35
import SwiftMPI
import SwiftNUMA

/// Where the model comes from and how the process takes part.
public struct ModelSource: @unchecked Sendable {
    /// Opens the GGUF (a path, or an in-memory synthetic model); every rank calls it.
    public var open: () throws -> GGUFFile
    /// Kernel threads (nil: all cores, or under a topology the topology's threads for the rank's role).
    public var threads: Int?
    /// Expert-parallel topology file (run under mpiexec), nil for one process.
    public var topology: String?
    /// Quantized weights multiply float activations (`--exact`) instead of Q8_0-quantized ones.
    public var exact = false
    /// Whether quantized weights are copied into the four-row layout at load (`--no-repack` turns it off;
    /// it never applies with `exact`).
    public var repack = true
    /// Where ranks log their NUMA placement.
    public var log: (String) -> Void
    /// Called on rank 0 (or the single process) once it knows it is the coordinator, before the weights
    /// load: a server starts listening here so `/health` can answer 503 while loading, as llama-server's does.
    public var coordinatorStarting: () -> Void = {}

    /// A source.
    public init(threads: Int? = nil, topology: String? = nil, log: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) },
                open: @escaping () throws -> GGUFFile) {
        self.open = open
        self.threads = threads
        self.topology = topology
        self.log = log
    }
}

extension ModelSource {
    /// `plan`, or nothing when repacking is off or the activations stay float (`exact`).
    func repackPlan(_ plan: RepackPlan) -> RepackPlan { repack && !exact ? plan : .none }
}

/// A rank other than 0 ended its part of a job (it already printed why, where there was anything to say).
public struct FollowerExit: Error {
    /// Exit status for the process.
    public let status: Int32
}

extension Engine {
    /// Loads the model and starts the engine. Under a topology: rank 0 returns the engine; every other rank
    /// serves the job here and returns nil once rank 0 has shut down. Errors before the job starts are
    /// thrown on rank 0; other ranks throw `FollowerExit` after them.
    public static func start(_ source: ModelSource, config: EngineConfig) throws -> Engine? {
        let threads = source.threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard let topoPath = source.topology else {
            source.coordinatorStarting()
            let f = try source.open()
            let model = try Step35Model(file: f, threads: threads, exact: source.exact, repack: source.repackPlan(.all))
            readIn(f, model: model, role: .all, label: "reading the weights in", log: source.log)
            return try Engine(file: f, model: model, config: config, session: nil)
        }
        let comm = try MPI.initialize()
        let topo: Topology
        do { topo = try Topology(path: topoPath) } catch {
            // Every rank reads the same file; one message is enough.
            MPI.finalize()
            if comm.rank == 0 { throw EngineError.setup("\(error)") }
            throw FollowerExit(status: 1)
        }
        let isHead = comm.rank < topo.heads
        if comm.rank == 0 { source.coordinatorStarting() }
        var file: GGUFFile?, model: Step35Model?, loadError: Error?
        do {
            // Bind before the kernel pool's threads exist and before any weight page is touched.
            if let line = try placeOnNUMANode(topo, rank: comm.rank) {
                source.log("switchyard: rank \(comm.rank) (worker \(comm.rank - topo.heads)): \(line)")
            }
            let f = try source.open()
            file = f
            // Each rank repacks what it computes with: a head everything but the routed experts, a worker its experts.
            let worker = comm.rank - topo.heads
            let plan = isHead ? RepackPlan(dense: true) { _, _ in false }
                : RepackPlan(dense: false) { topo.owners(layer: $0, expert: $1).contains(worker) }
            let m = try Step35Model(file: f, threads: source.threads ?? (isHead ? topo.headThreads : topo.workerThreads),
                                    exact: source.exact, repack: source.repackPlan(plan))
            model = m
            let role: WeightRole = isHead ? .head : .worker(worker)
            readIn(f, model: m, role: role, label: "rank \(comm.rank) (\(isHead ? "head" : "worker \(worker)")): reading its weights in",
                   log: source.log) { topo.owners(layer: $0, expert: $1) }
        } catch {
            loadError = error
        }
        let session: ClusterSession
        do {
            session = try ClusterSession(comm: comm, topology: topo, modelExperts: model?.config.expertCount,
                                         moeLayers: model?.moeLayerIndices ?? [], loadError: loadError)
        } catch {
            // No MPI_Finalize here: a peer may be dead, and finalizing waits for every rank.
            source.log("error: \(error)")
            exit(1)
        }
        guard let f = file, let m = model else { MPI.abort("switchyard: rank \(comm.rank): model missing after startup") }
        if comm.rank == 0 {
            do { return try Engine(file: f, model: m, config: config, session: session) } catch {
                MPI.abort("switchyard: rank 0: \(error)")
            }
        }
        let signals = deferSignalsToCoordinator(rank: comm.rank)
        defer { signals.forEach { $0.cancel() } }
        do {
            try FollowerLanes(session: session, model: m, prefixCache: config.prefixCache).run()
            try session.finalStatistics()
        } catch {
            MPI.abort("switchyard: rank \(comm.rank) (\(session.role)): \(error)", cause: error)
        }
        MPI.finalize()
        return nil
    }

    /// Reads the weights `role` computes with into memory when the file is mapped (progress after 1 s on
    /// standard error: redrawn on a TTY, else through `log`).
    static func readIn(_ f: GGUFFile, model: Step35Model, role: WeightRole, label: String, log: @escaping (String) -> Void,
                       owners: (Int, Int) -> [Int] = { _, _ in [] }) {
        guard f.storage.isMapped else { return }
        let copied = Set(model.repackedRanges.map(\.lowerBound))  // repacked at load: read then, not mapped now
        let ranges = ModelLoad.ranges(f, role: role, moeLayers: Set(model.moeLayerIndices), owners: owners).filter { !copied.contains($0.offset) }
        let tty = isatty(2) != 0
        let progress = LoadProgress(total: ranges.reduce(0) { $0 + $1.count }, label: label, tty: tty) { s in
            if tty { FileHandle.standardError.write(Data(s.utf8)) } else { log(String(s.dropLast())) }
        }
        ModelLoad.prefetch(f.storage, ranges: ranges, progress: progress)
    }

    /// A follower's SIGINT and SIGTERM: mpiexec forwards Ctrl-C to every rank, but only rank 0 may end the
    /// job (it stops serving, then tells the lanes to stop, and every rank finalizes MPI). A follower that
    /// died at once would make the launcher report a bad termination and could leave rank 0 mid-collective.
    /// So followers wait for rank 0's stop; if it has not come 30 s after the signal (rank 0 wedged), they
    /// exit with 128 + the signal. A dead rank 0 is caught sooner by the liveness checks.
    static func deferSignalsToCoordinator(rank: Int) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                FileHandle.standardError.write(Data("switchyard: rank \(rank): signal \(sig); waiting for rank 0 to stop the job\n".utf8))
                DispatchQueue.global().asyncAfter(deadline: .now() + 30) {
                    FileHandle.standardError.write(Data("switchyard: rank \(rank): rank 0 did not stop the job within 30 s of signal \(sig); exiting\n".utf8))
                    _exit(128 + sig)
                }
            }
            src.resume()
            return src
        }
    }

    /// Binds a worker to the NUMA node its topology names; returns what to log (nil: nothing was asked
    /// and the machine has one node).
    static func placeOnNUMANode(_ topo: Topology, rank: Int) throws -> String? {
        guard rank >= topo.heads else { return nil }
        let w = rank - topo.heads
        guard let nodes = topo.numa else {
            let n = NUMA.nodeCount
            return n > 1 ? "machine has \(n) NUMA nodes but the topology has no 'numa:' list; not binding" : nil
        }
        return "\(try NUMA.bind(node: nodes[w])), now on CPU \(NUMA.currentCPU)"
    }
}
