// Loads the model for a command, and under `--topology` joins the expert-parallel job.
import ArgumentParser
import Cluster
import Foundation
import GGUF
import Step35
import SwiftMPI
import SwiftNUMA
import ModelKit

/// The model as a command sees it: single process, or rank 0 of a cluster job.
final class Runtime {
    let file: GGUFFile
    let model: Step35Model
    let session: ClusterSession?
    private var finished = false

    private init(file: GGUFFile, model: Step35Model, session: ClusterSession?) {
        self.file = file
        self.model = model
        self.session = session
    }

    /// Runs jobs to the end and returns their results in order: one after another in a single process, or
    /// spread over the cluster's heads and lanes. `onToken(job, token)` streams tokens sampled on this rank.
    /// Runs `jobs`, decoding up to `parallel` sequences per pass (per head lane under a topology).
    func run(_ jobs: [GenerationJob], parallel: Int = 1, onToken: (@Sendable (Int, Int32) -> Void)? = nil) throws -> [GenerationResult] {
        let v = model.config.vocabSize
        for j in jobs {
            guard j.draft <= model.mtp.count else {
                throw ValidationError("--draft \(j.draft) needs \(j.draft) MTP blocks; this model has \(model.mtp.count) (step35.nextn_predict_layers)")
            }
            let need = j.syntheticFill + j.prompt.count + j.nPredict + j.draft + 1
            guard j.context == 0 || j.context >= need else {
                throw ValidationError("sequence \(j.id): --ctx-size \(j.context) is too small for \(j.prompt.count) prompt + \(j.nPredict) generated + \(j.draft) draft tokens (needs \(need))")
            }
            if j.kvType == .q8_0, let bad = model.blocks.first(where: { $0.attention.headDim % 32 != 0 }) {
                throw ValidationError("--kv-type q8_0 needs a head dim that is a multiple of 32; layer \(bad.index) has \(bad.attention.headDim)")
            }
            // Reserve up front or say it will not fit: the sequences a rank holds at once (`parallel` per lane).
            let kv = model.config.kvBytes(context: j.contextSize, type: j.kvType, maxPass: j.maxPass, mtp: j.draft > 0)
            let held = kv * (session?.topology.microBatches ?? 1) * min(max(parallel, 1), jobs.count)
            if let avail = availableMemory(), held > avail {
                throw ValidationError(String(format: "sequence %d: a %d-token context needs %.2f GiB of %@ KV cache per sequence (%.2f GiB for this rank's lanes) but only %.2f GiB of memory is available; use a smaller --ctx-size or --kv-type q8_0",
                                             j.id, j.contextSize, Double(kv) / 1_073_741_824, j.kvType.rawValue, Double(held) / 1_073_741_824, Double(avail) / 1_073_741_824))
            }
            guard !j.prompt.isEmpty else { throw ValidationError("sequence \(j.id): the prompt is empty") }
            if let bad = j.prompt.first(where: { $0 < 0 || Int($0) >= v }) {
                throw ValidationError("sequence \(j.id): token id \(bad) is outside the vocabulary (0..<\(v))")
            }
        }
        if let s = session {
            // A failure inside a round leaves the other ranks mid-protocol: it ends the job.
            do { return try s.run(jobs, parallel: parallel, model: model, onToken: onToken) } catch {
                MPI.abort("switchyard: rank 0 (head 0): \(error)", cause: error)
            }
        }
        if parallel > 1 { return try model.run(jobs, parallel: parallel, onToken: onToken) }
        return try jobs.map { j in try model.run(j, onToken: onToken.map { f in { f(j.id, $0) } }) }
    }

    /// Ends the job on every rank (no-op for a single process).
    func finish() {
        guard let s = session, !finished else { return }
        finished = true
        do { try s.stop() } catch { MPI.abort("switchyard: rank 0: \(error)", cause: error) }
        MPI.finalize()
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

    /// Builds the runtime. Under a topology, ranks other than 0 serve the whole job here and get nil back.
    static func make(_ o: ModelOptions, file fileOverride: (() throws -> GGUFFile)? = nil) throws -> Runtime? {
        guard let topoPath = o.topology else {
            let f = try fileOverride?() ?? o.file()
            return Runtime(file: f, model: try Step35Model(file: f, threads: o.threads), session: nil)
        }
        let comm = try MPI.initialize()
        let topo: Topology
        do { topo = try Topology(path: topoPath) } catch {
            // Every rank reads the same file; one message is enough.
            if comm.rank == 0 { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
            MPI.finalize()
            throw ExitCode(1)
        }
        let isHead = comm.rank < topo.heads
        var file: GGUFFile?, model: Step35Model?, loadError: Error?
        do {
            // Bind before the kernel pool's threads exist and before any weight page is touched.
            if let line = try placeOnNUMANode(topo, rank: comm.rank) {
                FileHandle.standardError.write(Data("switchyard: rank \(comm.rank) (worker \(comm.rank - topo.heads)): \(line)\n".utf8))
            }
            let f = try fileOverride?() ?? o.file()
            file = f
            model = try Step35Model(file: f, threads: o.threadsGiven ? o.threads : (isHead ? topo.headThreads : topo.workerThreads))
        } catch {
            loadError = error
        }
        let moeLayers = model?.moeLayerIndices ?? []
        let session: ClusterSession
        do {
            session = try ClusterSession(comm: comm, topology: topo, modelExperts: model?.config.expertCount,
                                         moeLayers: moeLayers, loadError: loadError)
        } catch {
            // No MPI_Finalize here: a peer may be dead, and finalizing waits for every rank.
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
        guard let f = file, let m = model else { MPI.abort("switchyard: rank \(comm.rank): model missing after startup") }
        if comm.rank == 0 {
            return Runtime(file: f, model: m, session: session)
        }
        do { try session.serve(model: m) } catch {
            MPI.abort("switchyard: rank \(comm.rank) (\(session.role)): \(error)", cause: error)
        }
        MPI.finalize()
        return nil
    }
}

/// MemAvailable from /proc/meminfo in bytes (nil where unknown).
func availableMemory() -> Int? { procKiB("/proc/meminfo", "MemAvailable:").map { $0 * 1024 } }
