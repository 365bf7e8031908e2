// The engine's step protocol on a lane communicator, and the loop every rank other than 0 runs.
//
// Per lane step, on every rank of the lane's communicator, in this order:
//   1. `lane i plan`    Bcast from rank 0: the plan's byte count, then its JSON (admissions, cancellations,
//                       evictions, whether a pass runs). Idle ranks wait here; rank 0 steps an empty plan
//                       every 5 s when idle, and the wait's liveness pings find a dead rank meanwhile.
//   2. the pass, when `run`: heads compute (an empty exchange per MoE layer when they have nothing on the
//      lane), workers serve each MoE layer's counts, dispatch and combine (Cluster/Exchange.swift).
//   3. `lane i reports` Gather to rank 0: each head's sequence reports, each worker's compute seconds.
import Foundation
import Cluster
import Step35
import SwiftMPI

/// What one rank sends back after a lane step.
struct LaneReport: Codable {
    var reports: [SequenceReport] = []
    var workerCompute: Double?
}

extension ClusterSession {
    /// Rank 0: broadcasts a lane's plan.
    func send(_ plan: StepPlan, lane i: Int) throws {
        let c = lanes[i].comm
        var bytes = Array(try JSONEncoder().encode(plan))
        var n: [Int32] = [Int32(bytes.count)]
        try c.broadcast(&n, root: 0, "lane \(i) plan")
        try c.broadcast(bytes: &bytes, root: 0, "lane \(i) plan")
    }

    /// Other ranks: waits for a lane's next plan (idle time between requests is not a fault; a dead
    /// coordinator is, and the liveness pings find it).
    func receivePlan(lane i: Int) throws -> StepPlan {
        let c = lanes[i].comm
        var n: [Int32] = [0]
        c.timeout = 24 * 3600
        defer { c.timeout = 30 }
        try c.broadcast(&n, root: 0, "lane \(i) plan")
        var bytes = [UInt8](repeating: 0, count: Int(n[0]))
        try c.broadcast(bytes: &bytes, root: 0, "lane \(i) plan")
        return try JSONDecoder().decode(StepPlan.self, from: Data(bytes))
    }

    /// Gathers the lane's reports on rank 0: every other head's sequence reports, and each worker's expert
    /// compute seconds so far (index = worker). Other ranks send theirs and get nothing back.
    func gatherReports(_ mine: [SequenceReport], lane i: Int) throws -> (reports: [SequenceReport], workerCompute: [Double]) {
        let isWorker = comm.rank >= topology.heads
        let out = LaneReport(reports: mine, workerCompute: isWorker ? workerCompute : nil)
        let parts = try lanes[i].comm.gather(Array(try JSONEncoder().encode(out)), root: 0, "lane \(i) reports")
        guard comm.rank == 0 else { return ([], []) }
        var reports: [SequenceReport] = [], compute: [Double] = []
        for (rank, p) in parts.enumerated() where rank != 0 {
            let r = try JSONDecoder().decode(LaneReport.self, from: Data(p))
            reports += r.reports
            if let w = r.workerCompute { compute.append(w) }
        }
        return (reports, compute)
    }
}

/// The engine's side on ranks other than 0: every lane follows rank 0's plans until told to stop.
final class FollowerLanes: @unchecked Sendable {
    let session: ClusterSession
    let model: Step35Model
    let executors: [LaneExecutor]
    /// Each lane's forward-pass buffers.
    let workspaces: [Step35Workspace]

    init(session: ClusterSession, model: Step35Model, prefixCache: Bool) {
        self.session = session
        self.model = model
        let store = CacheStore()
        let head = session.comm.rank
        executors = session.lanes.map { _ in LaneExecutor(head: head, model: model, store: store, keepCaches: prefixCache) }
        workspaces = session.lanes.map { _ in Step35Workspace() }
    }

    /// Runs every lane on its own thread until rank 0 stops them; throws the first lane's error.
    func run() throws {
        let group = DispatchGroup()
        let errors = ErrorBox()
        for i in session.lanes.indices {
            group.enter()
            let t = Thread { [self] in
                defer { group.leave() }
                do { try lane(i) } catch { errors.set(error) }
            }
            t.stackSize = 16 << 20
            t.start()
        }
        group.wait()
        if let e = errors.first { throw e }
    }

    private func lane(_ i: Int) throws {
        let isHead = session.comm.rank < session.topology.heads
        while true {
            let plan = try session.receivePlan(lane: i)
            if plan.stop { return }
            if let shape = plan.probe {
                _ = try session.exchangeRounds(shape, lane: 0)
                continue
            }
            if isHead {
                executors[i].apply(plan)
                if plan.run {
                    let ctx = PassContext(experts: session.lanes[i].experts, workspace: workspaces[i])
                    try session.headStep(lane: i, hasWork: executors[i].hasSequences, moeLayers: model.moeLayerIndices,
                                         d: model.config.embeddingLength) { try executors[i].step(ctx) }
                }
            } else if plan.run {
                try session.workerStep(lane: i, model: model)
            }
            _ = try session.gatherReports(isHead ? executors[i].takeReports() : [], lane: i)
        }
    }
}

/// The first error of several threads.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var e: Error?
    func set(_ x: Error) { lock.withLock { if e == nil { e = x } } }
    var first: Error? { lock.withLock { e } }
}
