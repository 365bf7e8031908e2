// Micro-batch lanes: the ping-pong overlap of MegaScale-Infer and StepFun's AFD.
//
// References: ../shared/research/ep-anchors.md (MegaScale-Infer ping-pong pipeline, m >= 2(1 + Tc/Tf)),
// ../shared/research/swift-mpi-recipe.md §3.5 (blocking MPI waits belong on their own threads).
// Every rank runs `micro_batches` lanes, one thread each. Lane i of every rank shares lane i's
// communicator, so its collectives never interleave with another lane's. On a rank one lane computes at a
// time (the baton); a lane drops the baton while its exchange is in flight, so a head computes lane B's
// attention while the workers compute lane A's experts, and a worker computes lane B's experts while the head
// finishes lane A. The engine decides what each lane step carries (Sources/Engine/EngineCluster.swift).
//
// Dimension legend: R rows received, D hidden.
import Foundation
import Kernels
import ModelKit
import Step35
import SwiftMPI

/// One micro-batch lane: its communicator and its exchange.
public final class Lane: @unchecked Sendable {
    public let index: Int
    public let comm: Communicator
    public let experts: ClusterExperts
    init(index: Int, comm: Communicator, experts: ClusterExperts) {
        self.index = index
        self.comm = comm
        self.experts = experts
    }
}

/// The compute baton of a rank's lanes: held by the lane that computes. A waiting lane sleeps on a
/// condition and wakes every millisecond to answer liveness pings on its communicator.
final class Baton: @unchecked Sendable {
    private let cond = NSCondition()
    private var held = false
    func acquire(answering comm: Communicator?) throws {
        cond.lock()
        defer { cond.unlock() }
        while held {
            if cond.wait(until: Date().addingTimeInterval(0.001)) { continue }
            cond.unlock()
            defer { cond.lock() }
            try comm?.answerPendingPings()
        }
        held = true
    }
    func release() {
        cond.withLock { held = false }
        cond.signal()
    }
}

extension ClusterSession {
    /// Takes the compute baton for `lane` (free with one lane).
    func acquireBaton(_ lane: Lane) throws {
        if lanes.count > 1 { try baton.acquire(answering: lane.comm) }
    }

    func releaseBaton() {
        if lanes.count > 1 { baton.release() }
    }

    /// A head's part of a lane step: `body` (its pass, whose MoE layers exchange on the lane) holding the
    /// baton; or, when it has nothing to run on the lane (or `body` returns false: its pass was refused
    /// before any exchange), an empty exchange per MoE layer (zero rows) so the workers and the other heads
    /// can go on.
    public func headStep(lane i: Int, hasWork: Bool, moeLayers: [Int], d: Int, _ body: () throws -> Bool) throws {
        let lane = lanes[i]
        if hasWork {
            try acquireBaton(lane)
            let ran: Bool
            do {
                defer { releaseBaton() }
                ran = try body()
            }
            if ran { return }
        }
        for il in moeLayers {
            _ = try lane.experts.exchange(layerIndex: il, d: d, x: [], tokens: 0, experts: [], weights: [], topK: 1, holdingBaton: false)
        }
    }

    /// A worker's part of a lane step: each MoE layer's experts for whatever rows arrive.
    public func workerStep(lane i: Int, model: Step35Model) throws {
        guard case .worker(let w) = role else { return }
        for b in model.blocks {
            if case .moe(let m) = b.ffn { try workerLayer(b.index, m, worker: w, pool: model.pool, lane: lanes[i]) }
        }
    }

    /// One MoE layer on a worker: receive rows, run the held experts grouped by expert, send results back.
    func workerLayer(_ il: Int, _ m: Step35MoE, worker w: Int, pool: ThreadPool, lane: Lane) throws {
        let comm = lane.comm
        let d = m.router.cols, p = topology.dispatch, rb = RowCodec.rowBytes(p, d: d)
        let zeros = [Int32](repeating: 0, count: comm.size)
        let rowsIn = try comm.alltoall(zeros, "layer \(il) counts")
        let recv = try comm.alltoallv([], sendCounts: zeros, recvCounts: rowsIn.map { $0 * Int32(rb) }, "layer \(il) dispatch")
        let r = Int(rowsIn.reduce(0, +))
        var y: [Float] = []
        if r > 0 {
            try acquireBaton(lane)
            defer { releaseBaton() }
            let t0 = DispatchTime.now()
            let (x, e32, wt) = Ops.decodeDispatchRows(RowCodec.encoding(p), recv, count: r, width: d)  // [R, D] in arrival order
            var ex = [Int](repeating: 0, count: r)
            for i in 0..<r {
                let e = e32[i]
                guard e >= 0, Int(e) < m.gate.count, topology.owners(layer: il, expert: Int(e)).contains(w) else {
                    throw ClusterError(description: "worker \(w) received a row for expert \(e) of layer \(il), which it does not hold")
                }
                ex[i] = Int(e)
            }
            y = m.expertRows(x, experts: ex, pool: pool)  // [R, D] in arrival order
            Ops.scaleRows(&y, wt, width: d)
            addWorkerCompute(secondsSince(t0))
        }
        let bytes = y.withUnsafeBytes { Array($0) }
        _ = try comm.alltoallv(bytes, sendCounts: rowsIn.map { $0 * Int32(4 * d) }, recvCounts: zeros, "layer \(il) combine")
    }
}
