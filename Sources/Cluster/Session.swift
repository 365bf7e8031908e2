// Roles and the round protocol of an expert-parallel job.
//
// Rank 0 is the coordinator and a head; ranks 1..<heads are further heads; the rest are expert-shard
// workers. Work comes in rounds. On the world communicator rank 0 broadcasts `run` with a list of jobs (or
// `stop`); every head runs its share of the jobs on its micro-batch lanes while every worker serves the
// lanes' MoE exchanges (Lanes.swift); then the coordinator gathers the generated tokens.
//
// Named communication points on the world communicator, in order per round:
//   `round command` (Bcast), `job list` (Bcast), lanes..., `results` (gather to rank 0).
import Foundation
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
    /// The world communicator: startup, round commands and results.
    public let comm: Communicator
    public let topology: Topology
    public let role: ClusterRole
    /// One lane per micro-batch, each with its own communicator and exchange.
    let lanes: [Lane]
    /// One lane computes at a time on this rank (they share the kernel pool); a lane lets go of it while
    /// it waits for an exchange, which is where the other lane's compute overlaps.
    let baton = NSLock()
    /// Worker-side compute seconds (summed over layers, steps and lanes; updated under the baton).
    var workerCompute = 0.0

    private enum Command: Int32 { case stop = 0, run = 1, probe = 2 }

    /// Joins the job: checks the topology against the job and the model, and has every rank confirm it
    /// loaded its part (a rank that could not names itself, and every rank stops).
    public init(comm: Communicator, topology: Topology, modelExperts: Int?, moeLayers: [Int], loadError: Error?) throws {
        self.comm = comm
        self.topology = topology
        role = comm.rank < topology.heads ? .head(comm.rank) : .worker(comm.rank - topology.heads)
        var failure: String? = loadError.map { "failed to load its shard: \($0)" }
        if failure == nil {
            do { try topology.validate(worldSize: comm.size, modelExperts: modelExperts, moeLayers: moeLayers) } catch {
                failure = "\(error)"
            }
        }
        if failure == nil && topology.microBatches > 1 && !MPI.multipleThreads {
            failure = "micro_batches: \(topology.microBatches) needs an MPI library with MPI_THREAD_MULTIPLE"
        }
        // Everyone learns the lowest failing rank, so every rank can stop with the same story. Loading can
        // take long on some ranks, so this wait does not time out early; a rank that died while loading is
        // found by the liveness pings (a live one answers them from its responder thread).
        comm.timeout = 3600
        defer { comm.timeout = 30 }
        let bad = try comm.allreduceMax([failure == nil ? -1 : Double(comm.size - comm.rank)], "startup check")[0]
        if let f = failure { throw ClusterError(description: "rank \(comm.rank): \(f)") }
        if bad >= 0 {
            throw ClusterError(description: "rank \(comm.size - Int(bad)) could not start (see its message); stopping rank \(comm.rank)")
        }
        // Connect every pair of ranks now: MPICH opens connections lazily, looking the peer up through the
        // process manager (PMI) on first contact; a lookup in flight when a rank dies can take Hydra's
        // proxy down with everyone's stderr. After this exchange the run needs no PMI traffic.
        _ = try comm.alltoall([Int32](repeating: 0, count: comm.size), "connect every pair")
        var ls: [Lane] = []
        for i in 0..<topology.microBatches {
            let c = try comm.duplicate("lane \(i) communicator")
            c.timeout = 30
            ls.append(Lane(index: i, comm: c, experts: ClusterExperts(comm: c, topology: topology)))
        }
        lanes = ls
        if ls.count > 1 {
            // While a lane's exchange is in flight, the other lanes may compute.
            for lane in ls {
                lane.experts.whileWaiting = (release: { [unowned self] in baton.unlock() },
                                             reacquire: { [unowned self] in try acquireBaton(lane) })
            }
        }
    }

    /// Head-side exchange timings, summed over lanes.
    public var headStats: ExchangeStats {
        lanes.reduce(into: ExchangeStats()) { s, l in
            s.dispatch += l.experts.stats.dispatch
            s.combine += l.experts.stats.combine
            s.layers += l.experts.stats.layers
            s.bytesSent += l.experts.stats.bytesSent
            s.bytesReceived += l.experts.stats.bytesReceived
            s.imbalanceSum += l.experts.stats.imbalanceSum
            s.imbalanceCount += l.experts.stats.imbalanceCount
            let r = l.experts.stats.rowsPerWorker
            if s.rowsPerWorker.isEmpty { s.rowsPerWorker = r } else if !r.isEmpty { s.rowsPerWorker = zip(s.rowsPerWorker, r).map(+) }
        }
    }

    /// Each worker's expert-compute seconds over the whole job, on rank 0 after `stop`.
    public private(set) var workerComputeSeconds: [Double] = []
    /// Slowest worker's expert-compute seconds, known on every rank after `stop` / `serve` return.
    public private(set) var maxWorkerCompute = 0.0
    /// Largest resident set (bytes) over the workers, and over the heads, known after `stop` / `serve`.
    public private(set) var maxWorkerRSS = 0.0, maxHeadRSS = 0.0

    /// The (head, lane) that runs job number `j`: jobs fill heads first, then lanes.
    public func slot(ofJob j: Int) -> (head: Int, lane: Int) {
        let s = j % (topology.heads * lanes.count)
        return (s % topology.heads, s / topology.heads)
    }

    /// Rank 0: runs `jobs` across the heads and lanes, each lane decoding up to `parallel` of its sequences
    /// in one pass, and returns every result in job order. `onToken` streams the tokens of jobs that run on
    /// rank 0.
    public func run(_ jobs: [GenerationJob], parallel: Int = 1, model: Step35Model,
                    onToken: (@Sendable (Int, Int32) -> Void)? = nil) throws -> [GenerationResult] {
        var cmd: [Int32] = [Command.run.rawValue]
        try comm.broadcast(&cmd, root: 0, "round command")
        var list = try JSONEncoder().encode(RoundRequest(parallel: parallel, jobs: jobs)).map { $0 }
        var n: [Int32] = [Int32(list.count)]
        try comm.broadcast(&n, root: 0, "job list")
        try comm.broadcast(bytes: &list, root: 0, "job list")
        let mine = try round(jobs, parallel: parallel, model: model, onToken: onToken)
        let parts = try comm.gather(try JSONEncoder().encode(mine.map(WireResult.init)).map { $0 }, root: 0, "results")
        var byID: [Int: GenerationResult] = [:]
        for r in mine { byID[r.id] = r }
        for (rank, p) in parts.enumerated() where rank != 0 && !p.isEmpty {
            for w in try JSONDecoder().decode([WireResult].self, from: Data(p)) { byID[w.id] = w.result }
        }
        return try jobs.map { j in
            guard let r = byID[j.id] else { throw ClusterError(description: "no result came back for job \(j.id)") }
            return r
        }
    }

    /// Bytes one dispatched row of hidden width `d` takes on the wire under this topology's payload.
    public func dispatchRowBytes(hidden d: Int) -> Int { RowCodec.rowBytes(topology.dispatch, d: d) }

    /// Rank 0: seconds one MoE layer's exchange takes with no expert compute in it, for the cost model:
    /// `rounds` rounds of the same three collectives on lane 0's communicator (row counts, a dispatch of
    /// `rows` rows of `rowBytes` to every worker, a combine of `rows` rows of `combineBytes` back), after
    /// 10 unmeasured rounds. Every rank takes part (the workers from `serve`).
    public func probeExchange(rounds: Int = 200, rows: Int = 8, rowBytes: Int, combineBytes: Int) throws -> Double {
        var cmd: [Int32] = [Command.probe.rawValue]
        try comm.broadcast(&cmd, root: 0, "round command")
        var shape: [Int32] = [Int32(rounds), Int32(rows), Int32(rowBytes), Int32(combineBytes)]
        try comm.broadcast(&shape, root: 0, "probe shape")
        return try exchangeRounds(shape)
    }

    /// The probe's rounds; returns the mean seconds per round on this rank.
    private func exchangeRounds(_ shape: [Int32]) throws -> Double {
        let c = lanes[0].comm, n = c.size, rounds = Int(shape[0]), rows = shape[1], rb = shape[2], cb = shape[3]
        let isHead = c.rank < topology.heads
        // Heads exchange `rows` rows with every worker and workers with every head, both ways: the counts a
        // rank sends are also the counts it receives.
        let peers = (0..<n).map { r in (isHead ? r >= topology.heads : r < topology.heads) ? rows : 0 }
        let sent = isHead ? peers : [Int32](repeating: 0, count: n), returned = isHead ? [Int32](repeating: 0, count: n) : peers
        var t0 = DispatchTime.now()
        for i in 0..<(rounds + 10) {
            if i == 10 { t0 = DispatchTime.now() }
            _ = try c.alltoall(sent, "probe counts")
            _ = try c.alltoallv([UInt8](repeating: 1, count: Int(sent.reduce(0, +) * rb)), sendCounts: sent.map { $0 * rb },
                                recvCounts: returned.map { $0 * rb }, "probe dispatch")
            _ = try c.alltoallv([UInt8](repeating: 2, count: Int(returned.reduce(0, +) * cb)), sendCounts: returned.map { $0 * cb },
                                recvCounts: sent.map { $0 * cb }, "probe combine")
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9 / Double(max(rounds, 1))
    }

    /// Rank 0: end the job (and learn the slowest worker's compute time and the ranks' memory).
    public func stop() throws {
        var cmd: [Int32] = [Command.stop.rawValue]
        try comm.broadcast(&cmd, root: 0, "round command")
        try finalStatistics()
    }

    /// Every rank but 0: take part in rank 0's rounds until it says stop.
    public func serve(model: Step35Model) throws {
        while true {
            var cmd: [Int32] = [0]
            comm.timeout = 24 * 3600  // idle between requests is not a fault (a dead coordinator is: pings find it)
            try comm.broadcast(&cmd, root: 0, "round command")
            comm.timeout = 30
            if cmd[0] == Command.probe.rawValue {
                var shape: [Int32] = [0, 0, 0, 0]
                try comm.broadcast(&shape, root: 0, "probe shape")
                _ = try exchangeRounds(shape)
                continue
            }
            guard cmd[0] == Command.run.rawValue else { return try finalStatistics() }
            var n: [Int32] = [0]
            try comm.broadcast(&n, root: 0, "job list")
            var list = [UInt8](repeating: 0, count: Int(n[0]))
            try comm.broadcast(bytes: &list, root: 0, "job list")
            let request = try JSONDecoder().decode(RoundRequest.self, from: Data(list))
            let mine = try round(request.jobs, parallel: request.parallel, model: model, onToken: nil)
            _ = try comm.gather(role == .head(comm.rank) ? try JSONEncoder().encode(mine.map(WireResult.init)).map { $0 } : [],
                                root: 0, "results")
        }
    }

    private func finalStatistics() throws {
        let rss = Double(residentBytes())
        let isWorker = comm.rank >= topology.heads
        let v = try comm.allreduceMax([workerCompute, isWorker ? rss : 0, isWorker ? 0 : rss], "final statistics")
        maxWorkerCompute = v[0]
        maxWorkerRSS = v[1]
        maxHeadRSS = v[2]
        // Every worker's expert-compute seconds, on rank 0 (the bench's per-worker time).
        let mine = withUnsafeBytes(of: workerCompute.bitPattern.littleEndian) { Array($0) }
        let parts = try comm.gather(isWorker ? mine : [], root: 0, "worker compute times")
        if comm.rank == 0 {
            workerComputeSeconds = parts.dropFirst(topology.heads).map { p in
                p.count == 8 ? Double(bitPattern: p.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }) : 0
            }
        }
    }
}

/// What rank 0 broadcasts for a round: the jobs, and how many sequences a lane decodes per pass.
struct RoundRequest: Codable {
    var parallel: Int
    var jobs: [GenerationJob]
}

/// A result as it travels to the coordinator (tokens and timings; logits stay where they were made).
struct WireResult: Codable {
    var id: Int
    var tokens: [Int32]
    var promptSeconds: Double, decodeSeconds: Double
    var speculation: SpeculationStats
    init(_ r: GenerationResult) {
        speculation = r.speculation
        id = r.id
        tokens = r.tokens
        promptSeconds = r.promptSeconds
        decodeSeconds = r.decodeSeconds
    }
    var result: GenerationResult { GenerationResult(id: id, tokens: tokens, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds,
                                        speculation: speculation) }
}

/// This process's resident set size in bytes (Linux /proc; 0 where unavailable).
public func residentBytes() -> Int { (procKiB("/proc/self/status", "VmRSS:") ?? 0) * 1024 }

/// The kB figure on the line of a /proc file that starts with `key` (e.g. "VmRSS:" in /proc/self/status).
public func procKiB(_ file: String, _ key: String) -> Int? {
    guard let s = try? String(contentsOfFile: file, encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix(key) })
    else { return nil }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
}

/// A cluster-level failure.
public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
}
