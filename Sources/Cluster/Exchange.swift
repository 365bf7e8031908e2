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

/// Row encoding for the dispatch payload: an 8-byte header (expert, weight) and the hidden state.
enum RowCodec {
    static func rowBytes(_ p: DispatchPayload, d: Int) -> Int {
        switch p {
        case .f32: 8 + 4 * d
        case .bf16, .f16: 8 + 2 * d
        case .int8: 8 + 4 + d
        }
    }

    static func encode(_ p: DispatchPayload, expert: Int32, weight: Float, x: ArraySlice<Float>, into out: inout [UInt8]) {
        func put<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        put(expert.littleEndian)
        put(weight.bitPattern.littleEndian)
        switch p {
        case .f32: for v in x { put(v.bitPattern.littleEndian) }
        case .f16: out.append(contentsOf: Quantize.row(.f16, Array(x)))
        case .bf16: out.append(contentsOf: Quantize.row(.bf16, Array(x)))
        case .int8:
            // Per-token symmetric INT8 with one F32 scale (DeepEP-style reduced dispatch).
            let amax = x.reduce(0) { max($0, abs($1)) }
            let scale = amax / 127
            put(scale.bitPattern.littleEndian)
            let inv: Float = scale > 0 ? 1 / scale : 0
            for v in x { out.append(UInt8(bitPattern: Int8(max(-127, min(127, (v * inv).rounded()))))) }
        }
    }

    static func decode(_ p: DispatchPayload, _ b: [UInt8], at o: Int, d: Int, into x: inout [Float], row: Int)
        -> (expert: Int32, weight: Float)
    {
        b.withUnsafeBytes { raw in
            let e = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
            let w = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self)))
            let base = o + 8
            for c in 0..<d {
                let v: Float
                switch p {
                case .f32: v = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 4 * c, as: UInt32.self)))
                case .f16: v = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * c, as: UInt16.self))))
                case .bf16: v = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * c, as: UInt16.self))) << 16)
                case .int8:
                    let s = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base, as: UInt32.self)))
                    v = s * Float(Int8(bitPattern: raw[base + 4 + c]))
                }
                x[row * d + c] = v
            }
            return (e, w)
        }
    }
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

    /// One MoE layer's counts, dispatch and combine; `holdingBaton`: hand the lane baton over while waiting.
    public func exchange(layerIndex il: Int, d: Int, x: [Float], tokens t: Int, experts: [Int32], weights: [Float],
                  topK a: Int, holdingBaton: Bool) throws -> [Float] {
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
        var send: [UInt8] = []
        send.reserveCapacity(t * a * rb)
        for rows in perRank {
            for i in rows {
                RowCodec.encode(p, expert: experts[i], weight: weights[i], x: x[((i / a) * d)..<((i / a + 1) * d)], into: &send)
            }
        }
        let rowsOut = perRank.map { Int32($0.count) }
        if holdingBaton, let w = whileWaiting { w.release() }
        _ = try comm.alltoall(rowsOut, "layer \(il) counts")
        _ = try comm.alltoallv(send, sendCounts: rowsOut.map { $0 * Int32(rb) }, recvCounts: [Int32](repeating: 0, count: comm.size),
                               "layer \(il) dispatch")
        let t1 = DispatchTime.now()
        let back = try comm.alltoallv([], sendCounts: [Int32](repeating: 0, count: comm.size),
                                      recvCounts: rowsOut.map { $0 * Int32(4 * d) }, "layer \(il) combine")
        let t2 = DispatchTime.now()
        if holdingBaton, let w = whileWaiting { try w.reacquire() }
        // Rows come back in the order they were sent: add each into its token.
        var out = [Float](repeating: 0, count: t * d)
        back.withUnsafeBytes { raw in
            let y = raw.bindMemory(to: Float.self)
            var row = 0
            for rows in perRank {
                for i in rows {
                    let tok = i / a
                    for c in 0..<d { out[tok * d + c] += y[row * d + c] }
                    row += 1
                }
            }
        }
        statsLock.withLock {
            sums.bytesSent += send.count + 4 * comm.size
            sums.bytesReceived += back.count
            sums.dispatch += Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
            sums.combine += Double(t2.uptimeNanoseconds - t1.uptimeNanoseconds) / 1e9
            sums.layers += 1
        }
        statsLock.withLock { observer }?(Double(t2.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
        return out
    }
}
