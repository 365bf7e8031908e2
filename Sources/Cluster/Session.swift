// Roles of an expert-parallel job, and what its ranks share: the lanes and the final statistics.
//
// Rank 0 is the coordinator and a head; ranks 1..<heads are further heads; the rest are expert-shard
// workers. The engine (Sources/Engine) drives the lanes step by step: rank 0 broadcasts each lane's plan,
// heads run their sequences' passes, workers serve the passes' MoE exchanges (Lanes.swift, Exchange.swift).
//
// Named communication points on the world communicator: `startup check` (Allreduce), `connect every
// pair` (Alltoall), the lane communicators' duplication, and at the end `final statistics`.
import Foundation
import Kernels
import ModelKit
import Step35
import SwiftMPI

/// This rank's part in the job.
public enum ClusterRole: Sendable, Equatable {
    case head(Int)
    case worker(Int)
}

/// An expert-parallel job as seen from one rank.
public final class ClusterSession: @unchecked Sendable {
    /// The world communicator: startup and the final statistics.
    public let comm: Communicator
    public let topology: Topology
    public let role: ClusterRole
    /// One lane per micro-batch, each with its own communicator and exchange.
    public let lanes: [Lane]
    /// One lane computes at a time on this rank (they share the kernel pool); a lane lets go of it while
    /// it waits for an exchange, which is where the other lane's compute overlaps.
    let baton = Baton()
    private let statsLock = NSLock()
    private var compute = 0.0
    /// Worker-side expert compute seconds so far (summed over layers, steps and lanes).
    public var workerCompute: Double { statsLock.withLock { compute } }
    func addWorkerCompute(_ s: Double) { statsLock.withLock { compute += s } }

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
                lane.experts.whileWaiting = (release: { [unowned self] in baton.release() },
                                             reacquire: { [unowned self] in try acquireBaton(lane) })
            }
        }
    }

    /// Head-side exchange timings, summed over lanes (readable while the lanes run).
    public var headStats: ExchangeStats {
        lanes.reduce(into: ExchangeStats()) { s, l in s.add(l.experts.stats) }
    }

    /// Slowest worker's expert-compute seconds, and the largest resident sets (bytes) over workers and
    /// heads; known on every rank after `finalStatistics`.
    public private(set) var maxWorkerCompute = 0.0
    public private(set) var maxWorkerRSS = 0.0, maxHeadRSS = 0.0

    /// Bytes one dispatched row of hidden width `d` takes on the wire under this topology's payload.
    public func dispatchRowBytes(hidden d: Int) -> Int { RowCodec.rowBytes(topology.dispatch, d: d) }

    /// The exchange probe's rounds on lane `i` (rounds, rows, row bytes, combine bytes): the same three
    /// collectives as a MoE layer with no compute in them, after 10 unmeasured rounds. Returns the mean
    /// seconds per round on this rank. Every rank of the lane takes part.
    public func exchangeRounds(_ shape: [Int32], lane i: Int) throws -> Double {
        let c = lanes[i].comm, n = c.size, rounds = Int(shape[0]), rows = shape[1], rb = shape[2], cb = shape[3]
        let isHead = c.rank < topology.heads
        // Heads exchange `rows` rows with every worker and workers with every head, both ways: the counts a
        // rank sends are also the counts it receives.
        let peers = (0..<n).map { r in (isHead ? r >= topology.heads : r < topology.heads) ? rows : 0 }
        let sent = isHead ? peers : [Int32](repeating: 0, count: n), returned = isHead ? [Int32](repeating: 0, count: n) : peers
        // Buffers made once: the rounds time the transport, not the allocator.
        let dispatchOut = [UInt8](repeating: 1, count: Int(sent.reduce(0, +) * rb))
        let combineOut = [UInt8](repeating: 2, count: Int(returned.reduce(0, +) * cb))
        var dispatchIn: [UInt8] = [], combineIn: [UInt8] = []
        var t0 = DispatchTime.now()
        for i in 0..<(rounds + 10) {
            if i == 10 { t0 = DispatchTime.now() }
            _ = try c.alltoall(sent, "probe counts")
            try c.alltoallv(dispatchOut, sendCounts: sent.map { $0 * rb }, recvCounts: returned.map { $0 * rb }, into: &dispatchIn, "probe dispatch")
            try c.alltoallv(combineOut, sendCounts: returned.map { $0 * cb }, recvCounts: sent.map { $0 * cb }, into: &combineIn, "probe combine")
        }
        return secondsSince(t0) / Double(max(rounds, 1))
    }

    /// Every rank, once the lanes have stopped: learn the slowest worker's compute time and the ranks' memory.
    public func finalStatistics() throws {
        let rss = Double(residentBytes())
        let isWorker = comm.rank >= topology.heads
        let v = try comm.allreduceMax([workerCompute, isWorker ? rss : 0, isWorker ? 0 : rss], "final statistics")
        maxWorkerCompute = v[0]
        maxWorkerRSS = v[1]
        maxHeadRSS = v[2]
    }
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
