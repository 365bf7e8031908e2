// Roles and the step protocol of an expert-parallel job.
//
// Rank 0 is the coordinator and a head; ranks 1..<heads are further heads; the rest are expert-shard
// workers. Rank 0 starts every forward pass with a `step` broadcast (or ends the job with `stop`); during a
// pass every rank takes part in each MoE layer's exchange (Exchange.swift), in layer order.
//
// Dimension legend: R rows received, D hidden, F expert width.
import Foundation
import GGUF
import Kernels
import Step35
import SwiftMPI

/// This rank's part in the job.
public enum ClusterRole: Sendable, Equatable {
    case head(Int)
    case worker(Int)
}

/// An expert-parallel job as seen from one rank.
public final class ClusterSession: @unchecked Sendable {
    public let comm: Communicator
    public let topology: Topology
    public let role: ClusterRole
    /// Worker-side compute seconds (summed over layers and steps).
    public private(set) var workerCompute = 0.0
    let experts: ClusterExperts

    private enum Command: Int32 { case stop = 0, step = 1 }

    /// Joins the job: checks the topology against the job and the model, and has every rank confirm it
    /// loaded its part (a rank that could not names itself, and every rank stops).
    public init(comm: Communicator, topology: Topology, modelExperts: Int?, moeLayers: [Int], loadError: Error?) throws {
        self.comm = comm
        self.topology = topology
        role = comm.rank < topology.heads ? .head(comm.rank) : .worker(comm.rank - topology.heads)
        experts = ClusterExperts(comm: comm, topology: topology)
        var failure: String? = loadError.map { "failed to load its shard: \($0)" }
        if failure == nil {
            do { try topology.validate(worldSize: comm.size, modelExperts: modelExperts, moeLayers: moeLayers) } catch {
                failure = "\(error)"
            }
        }
        // Everyone learns the lowest failing rank, so every rank can stop with the same story. Loading can
        // take long on some ranks, so this wait neither probes nor times out early.
        comm.probing = false
        comm.timeout = 3600
        defer { comm.probing = true; comm.timeout = 30 }
        let bad = try comm.allreduceMax([failure == nil ? -1 : Double(comm.size - comm.rank)], "startup check")[0]
        if let f = failure { throw ClusterError(description: "rank \(comm.rank): \(f)") }
        if bad >= 0 {
            throw ClusterError(description: "rank \(comm.size - Int(bad)) could not start (see its message); stopping rank \(comm.rank)")
        }
    }

    /// The expert backend heads install into their model.
    public var backend: ExpertBackend { experts }

    /// Head-side exchange timings.
    public var headStats: ExchangeStats { experts.stats }

    /// Rank 0: announce a forward pass.
    public func beginStep() throws {
        var cmd: [Int32] = [Command.step.rawValue]
        try comm.broadcast(&cmd, root: 0, "step command")
    }

    /// Slowest worker's expert-compute seconds, known on every rank after `stop` / `serve` return.
    public private(set) var maxWorkerCompute = 0.0

    /// Rank 0: end the job (and learn the slowest worker's compute time).
    public func stop() throws {
        var cmd: [Int32] = [Command.stop.rawValue]
        try comm.broadcast(&cmd, root: 0, "stop command")
        maxWorkerCompute = try comm.allreduceMax([workerCompute], "final statistics")[0]
    }

    /// Every rank but 0: follow rank 0's steps until it says stop. Workers compute their experts; further
    /// heads have no sequences of their own here and join each exchange with zero rows.
    public func serve(model: Step35Model) throws {
        let moeLayers = model.blocks.compactMap { b -> (Int, Step35MoE)? in
            if case .moe(let m) = b.ffn { return (b.index, m) }
            return nil
        }
        while true {
            var cmd: [Int32] = [0]
            comm.timeout = 24 * 3600  // idle between requests is not a fault
            comm.probing = false
            try comm.broadcast(&cmd, root: 0, "step command")
            comm.timeout = 30
            comm.probing = true
            guard cmd[0] == Command.step.rawValue else {
                maxWorkerCompute = try comm.allreduceMax([workerCompute], "final statistics")[0]
                return
            }
            for (il, m) in moeLayers {
                switch role {
                case .head: _ = try experts.exchange(layerIndex: il, d: m.router.cols, x: [], tokens: 0, experts: [], weights: [], topK: 1)
                case .worker(let w): try workerLayer(il, m, worker: w, pool: model.pool)
                }
            }
        }
    }

    /// One MoE layer on a worker: receive rows, run the held experts grouped by expert, send results back.
    func workerLayer(_ il: Int, _ m: Step35MoE, worker w: Int, pool: ThreadPool) throws {
        let d = m.router.cols, p = topology.dispatch, rb = RowCodec.rowBytes(p, d: d)
        let zeros = [Int32](repeating: 0, count: comm.size)
        let rowsIn = try comm.alltoall(zeros, "layer \(il) counts")
        let recv = try comm.alltoallv([], sendCounts: zeros, recvCounts: rowsIn.map { $0 * Int32(rb) }, "layer \(il) dispatch")
        let t0 = Date()
        let r = Int(rowsIn.reduce(0, +))
        var x = [Float](repeating: 0, count: r * d)  // [R, D] in arrival order
        var ex = [Int](repeating: 0, count: r), wt = [Float](repeating: 0, count: r)
        for i in 0..<r {
            let (e, g) = RowCodec.decode(p, recv, at: i * rb, d: d, into: &x, row: i)
            guard e >= 0, Int(e) < m.gate.count, topology.owners(layer: il, expert: Int(e)).contains(w) else {
                throw ClusterError(description: "worker \(w) received a row for expert \(e) of layer \(il), which it does not hold")
            }
            ex[i] = Int(e)
            wt[i] = g
        }
        var y = m.expertRows(x, experts: ex, pool: pool)  // [R, D] in arrival order
        for i in 0..<r {
            for c in 0..<d { y[i * d + c] *= wt[i] }
        }
        workerCompute += Date().timeIntervalSince(t0)
        let bytes = y.withUnsafeBytes { Array($0) }
        _ = try comm.alltoallv(bytes, sendCounts: rowsIn.map { $0 * Int32(4 * d) }, recvCounts: zeros, "layer \(il) combine")
    }
}

/// A cluster-level failure.
public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
}
