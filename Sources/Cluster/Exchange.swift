// The MoE exchange: dispatch (heads -> workers) and combine (workers -> heads) with MPI_Alltoallv.
//
// References: ../shared/research/ep-anchors.md (DeepEP dispatch/combine, MegaScale-Infer/AFD roles),
// ../shared/research/swift-mpi-recipe.md §4 (counts, then Alltoallv, then the reverse Alltoallv).
// Named communication points, per MoE layer and in this order on every rank:
//   1. `counts`   MPI_Alltoall: rows each head sends each worker.
//   2. `dispatch` MPI_Alltoallv: rows of (expert id, gate weight, hidden state) in the chosen payload.
//   3. `combine`  MPI_Alltoallv: each row's gate-weighted expert output (F32) back to its head, in order.
//
// Dimension legend: T tokens, A active experts per token, D hidden, R rows (token, expert) pairs.
import Foundation
import GGUF
import Kernels
import Step35
import SwiftMPI

/// The dispatch payload's row codec (Kernels' `DispatchEncoding`: an 8-byte header (expert, weight) and the
/// hidden state as f32, bf16, f16, or int8 with one f32 scale, DeepEP-style).
enum RowCodec {
    static func encoding(_ p: DispatchPayload) -> DispatchEncoding {
        switch p {
        case .f32: .f32
        case .bf16: .bf16
        case .f16: .f16
        case .int8: .int8
        }
    }

    static func rowBytes(_ p: DispatchPayload, d: Int) -> Int { encoding(p).rowBytes(d) }
}

/// Per-layer exchange timings (seconds, summed over steps) for the benchmark tables.
public struct ExchangeStats: Sendable {
    public var dispatch = 0.0, combine = 0.0, layers = 0
    /// Rows sent to each worker (index = worker, not rank), as dispatched.
    public var rowsPerWorker: [Int] = []
    /// Bytes this head sent (row counts + dispatch payload) and received (combined rows).
    public var bytesSent = 0, bytesReceived = 0
    /// Sum over exchanges that carried rows of (busiest worker's rows / mean rows), and their count: the
    /// measured per-layer balance (what a layer waits for).
    public var imbalanceSum = 0.0, imbalanceCount = 0

    /// Adds another lane's sums.
    public mutating func add(_ o: ExchangeStats) {
        dispatch += o.dispatch
        combine += o.combine
        layers += o.layers
        bytesSent += o.bytesSent
        bytesReceived += o.bytesReceived
        imbalanceSum += o.imbalanceSum
        imbalanceCount += o.imbalanceCount
        if rowsPerWorker.isEmpty { rowsPerWorker = o.rowsPerWorker } else if !o.rowsPerWorker.isEmpty { rowsPerWorker = zip(rowsPerWorker, o.rowsPerWorker).map(+) }
    }
}

/// Head side: an `ExpertBackend` that sends routed rows to the workers that hold their experts.
public final class ClusterExperts: ExpertBackend, @unchecked Sendable {
    let comm: Communicator
    let topology: Topology
    private let statsLock = NSLock()
    private var sums = ExchangeStats()
    /// Accumulated timings (readable from other threads while the lane runs).
    public var stats: ExchangeStats { statsLock.withLock { sums } }
    private var observer: (@Sendable (Double) -> Void)?
    /// Receives each MoE layer's exchange seconds (dispatch + combine wait), e.g. a metrics histogram.
    public func observe(_ f: @escaping @Sendable (Double) -> Void) { statsLock.withLock { observer = f } }
    /// Exchanges so far (turns replicas of one-token steps).
    private var exchanges = 0
    /// How a lane hands its compute baton to the other lanes while its exchange is in flight (nil: one lane).
    var whileWaiting: (release: () -> Void, reacquire: () throws -> Void)?

    init(comm: Communicator, topology: Topology) {
        self.comm = comm
        self.topology = topology
    }

    public func routedExperts(layer m: Step35MoE, layerIndex il: Int, x: [Float], tokens t: Int, experts: [Int32],
                              weights: [Float], topK a: Int, pool: ThreadPool) throws -> [Float] {
        try exchange(layerIndex: il, d: m.router.cols, x: x, tokens: t, experts: experts, weights: weights, topK: a, holdingBaton: true)
    }

    /// Counts and dispatch, then the combine is posted and this returns: the head computes the shared expert
    /// while the workers compute, and `finish()` waits for the rows (handing the lane baton over meanwhile).
    public func startRoutedExperts(layer m: Step35MoE, layerIndex il: Int, x: [Float], tokens t: Int, experts: [Int32],
                                   weights: [Float], topK a: Int, pool: ThreadPool, into out: inout [Float]) throws -> RoutedExpertsInFlight {
        let finish = try startExchange(layerIndex: il, d: m.router.cols, x: x, tokens: t, experts: experts, weights: weights,
                                       topK: a, holdingBaton: true)
        return RoutedExpertsInFlight(finish: finish)
    }

    /// One MoE layer's counts, dispatch and combine; `holdingBaton`: hand the lane baton over while waiting.
    public func exchange(layerIndex il: Int, d: Int, x: [Float], tokens t: Int, experts: [Int32], weights: [Float],
                         topK a: Int, holdingBaton: Bool) throws -> [Float] {
        try startExchange(layerIndex: il, d: d, x: x, tokens: t, experts: experts, weights: weights, topK: a, holdingBaton: holdingBaton)()
    }

    /// Counts and dispatch (blocking), the combine posted; the returned step waits for it and adds the rows up.
    /// The baton is handed over for the counts and dispatch and again for the combine wait, and held between.
    func startExchange(layerIndex il: Int, d: Int, x: [Float], tokens t: Int, experts: [Int32], weights: [Float],
                       topK a: Int, holdingBaton: Bool) throws -> () throws -> [Float] {
        let p = topology.dispatch, rb = RowCodec.rowBytes(p, d: d)
        // Destination rank of every (token, k) row; a replicated expert is picked by token index.
        var perRank = [[Int]](repeating: [], count: comm.size)
        // A replicated expert's row goes to a copy by token index, offset by a per-exchange count so that
        // one-token decode steps take turns, or to the copy whose worker has the fewest rows so far.
        exchanges += 1
        for i in 0..<(t * a) {
            let owners = topology.owners(layer: il, expert: Int(experts[i]))
            let w: Int
            switch topology.replicaDispatch {
            case .token: w = owners[(i / a + exchanges) % owners.count]
            case .load:
                // Fewest rows so far; ties go round the copies as exchanges pass, not always to the first.
                let n = owners.count
                w = (0..<n).map { owners[($0 + exchanges) % n] }.min { perRank[topology.heads + $0].count < perRank[topology.heads + $1].count }!
            }
            perRank[topology.heads + w].append(i)
        }
        let counts = (0..<topology.workers).map { perRank[topology.heads + $0].count }
        statsLock.withLock {
            if sums.rowsPerWorker.isEmpty { sums.rowsPerWorker = [Int](repeating: 0, count: topology.workers) }
            for w in 0..<topology.workers { sums.rowsPerWorker[w] += counts[w] }
            let total = counts.reduce(0, +)
            if total > 0 {
                sums.imbalanceSum += Double(counts.max()!) / (Double(total) / Double(topology.workers))
                sums.imbalanceCount += 1
            }
        }
        let t0 = DispatchTime.now()
        let sent = perRank.joined()  // (token, k) rows in send order
        let tokenOfRow = sent.map { Int32($0 / a) }
        let send = Ops.encodeDispatchRows(RowCodec.encoding(p), x: x, rows: tokenOfRow,
                                          experts: sent.map { experts[$0] }, weights: sent.map { weights[$0] }, width: d)
        let rowsOut = perRank.map { Int32($0.count) }
        if holdingBaton, let w = whileWaiting { w.release() }
        _ = try comm.alltoall(rowsOut, "layer \(il) counts")
        _ = try comm.alltoallv(send, sendCounts: rowsOut.map { $0 * Int32(rb) }, recvCounts: [Int32](repeating: 0, count: comm.size),
                               "layer \(il) dispatch")
        let combine = try comm.startAlltoallv([], sendCounts: [Int32](repeating: 0, count: comm.size),
                                              recvCounts: rowsOut.map { $0 * Int32(4 * d) }, "layer \(il) combine")
        let t1 = DispatchTime.now()
        if holdingBaton, let w = whileWaiting { try w.reacquire() }
        return { [self] in
            // Only the wait itself counts as the head's idle time in the combine.
            if holdingBaton, let w = whileWaiting { w.release() }
            let w0 = DispatchTime.now()
            let back = try combine.wait()
            let t2 = DispatchTime.now()
            if holdingBaton, let w = whileWaiting { try w.reacquire() }
            // Rows come back in the order they were sent: add each into its token.
            var out = [Float](repeating: 0, count: t * d)
            let y = back.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            Ops.addRows(y, tokenOfRow, weights: nil, width: d, into: &out)
            let dispatch = Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9, wait = Double(t2.uptimeNanoseconds - w0.uptimeNanoseconds) / 1e9
            statsLock.withLock {
                sums.bytesSent += send.count + 4 * comm.size
                sums.bytesReceived += back.count
                sums.dispatch += dispatch
                sums.combine += wait
                sums.layers += 1
            }
            statsLock.withLock { observer }?(dispatch + wait)
            return out
        }
    }
}
