// Micro-batch lanes: the ping-pong overlap of MegaScale-Infer and StepFun's AFD.
//
// References: ../shared/research/ep-anchors.md (MegaScale-Infer ping-pong pipeline, m >= 2(1 + Tc/Tf)),
// ../shared/research/swift-mpi-recipe.md §3.5 (blocking MPI waits belong on their own threads).
// A round runs `micro_batches` lanes on every rank, one thread each. Lane i of every rank shares lane i's
// communicator, so its collectives never interleave with another lane's. On a rank one lane computes at a
// time (the baton); a lane drops the baton while its exchange is in flight, so a head computes lane B's
// attention while the workers compute lane A's experts, and a worker computes lane B's experts while the head
// finishes lane A. Each lane step begins with `lane i step` (Allreduce max of "I have a pass to run"); a
// step with no work anywhere ends the lane.
//
// Dimension legend: R rows received, D hidden.
import Foundation
import Kernels
import Step35
import SwiftMPI

/// One micro-batch lane: its communicator and its exchange.
final class Lane: @unchecked Sendable {
    let index: Int
    let comm: Communicator
    let experts: ClusterExperts
    init(index: Int, comm: Communicator, experts: ClusterExperts) {
        self.index = index
        self.comm = comm
        self.experts = experts
    }
}

/// Results and errors of lanes running on several threads.
private final class LaneOutcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [GenerationResult] = []
    private var errors: [Error] = []
    func add(_ r: [GenerationResult]) { lock.withLock { results += r } }
    func fail(_ e: Error) { lock.withLock { errors.append(e) } }
    func finish() throws -> [GenerationResult] {
        try lock.withLock {
            if let e = errors.first { throw e }
            return results
        }
    }
}

extension ClusterSession {
    /// Runs one round on this rank: a head runs its jobs, a worker serves; lanes on their own threads.
    func round(_ jobs: [GenerationJob], parallel: Int, model: Step35Model, onToken: (@Sendable (Int, Int32) -> Void)?) throws -> [GenerationResult] {
        let outcomes = LaneOutcomes()
        let body: @Sendable (Lane) -> Void = { [self] lane in
            do {
                switch role {
                case .head(let h):
                    let mine = jobs.enumerated().filter { slot(ofJob: $0.offset) == (h, lane.index) }.map(\.element)
                    outcomes.add(try headLane(lane, jobs: mine, parallel: parallel, model: model, onToken: onToken))
                case .worker(let w):
                    try workerLane(lane, worker: w, model: model)
                }
            } catch {
                outcomes.fail(error)
            }
        }
        if lanes.count == 1 {
            body(lanes[0])
        } else {
            let done = DispatchGroup()
            for lane in lanes {
                done.enter()
                let t = Thread { body(lane); done.leave() }
                t.stackSize = 16 << 20
                t.start()
            }
            done.wait()
        }
        return try outcomes.finish()
    }

    /// Takes the compute baton, answering liveness pings on `lane` while another lane computes.
    func acquireBaton(_ lane: Lane) throws {
        if lanes.count == 1 { return baton.lock() }
        while !baton.try() {
            try lane.comm.answerPendingPings()
            usleep(20)
        }
    }

    /// A head's lane: its jobs with up to `parallel` sequences per decode pass (`BatchedRuns`), one pass per
    /// lane step; empty passes (zero rows in every exchange) while other heads' lanes still have work.
    func headLane(_ lane: Lane, jobs: [GenerationJob], parallel: Int, model: Step35Model,
                  onToken: (@Sendable (Int, Int32) -> Void)?) throws -> [GenerationResult] {
        let runs = BatchedRuns(jobs, parallel: parallel, model: model, onToken: onToken)
        let d = model.config.embeddingLength
        let moeLayers = model.moeLayerIndices
        while true {
            let pass = runs.nextPass()
            let active = try lane.comm.allreduceMax([pass == nil ? 0 : 1], "lane \(lane.index) step")[0]
            if active == 0 { return runs.results }
            if let pass {
                try acquireBaton(lane)
                defer { baton.unlock() }
                try runs.run(pass, experts: lane.experts)
            } else {
                for il in moeLayers {
                    _ = try lane.experts.exchange(layerIndex: il, d: d, x: [], tokens: 0, experts: [], weights: [], topK: 1,
                                                  holdingBaton: false)
                }
            }
        }
    }

    /// A worker's lane: every lane step, each MoE layer's experts for whatever rows arrive.
    func workerLane(_ lane: Lane, worker w: Int, model: Step35Model) throws {
        let moe = model.blocks.compactMap { b -> (Int, Step35MoE)? in
            if case .moe(let m) = b.ffn { return (b.index, m) }
            return nil
        }
        while try lane.comm.allreduceMax([0], "lane \(lane.index) step")[0] > 0 {
            for (il, m) in moe { try workerLayer(il, m, worker: w, pool: model.pool, lane: lane) }
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
            defer { baton.unlock() }
            let t0 = Date()
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
            y = m.expertRows(x, experts: ex, pool: pool)  // [R, D] in arrival order
            for i in 0..<r {
                for c in 0..<d { y[i * d + c] *= wt[i] }
            }
            workerCompute += Date().timeIntervalSince(t0)
        }
        let bytes = y.withUnsafeBytes { Array($0) }
        _ = try comm.alltoallv(bytes, sendCounts: rowsIn.map { $0 * Int32(4 * d) }, recvCounts: zeros, "layer \(il) combine")
    }
}
