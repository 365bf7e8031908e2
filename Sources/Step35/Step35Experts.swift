// Where a Step 3.5 MoE layer's routed experts run: the backend protocol, the in-process backend, and the
// grouped expert computation shared by in-process experts and cluster workers.
//
// Dimension legend: T tokens, A experts per token, D hidden, F expert width, R = T·A routed rows.
import Kernels
import ModelKit

/// Computes the routed experts of one MoE layer for a batch of (token, expert, weight) assignments.
/// The in-process backend runs them here; a distributed transport sends them to expert-shard workers.
public protocol ExpertBackend: Sendable {
    /// Returns Σ_k weight[t,k] · E_{expert[t,k]}(x[t]) for each token, [T, D].
    /// Throws when the transport fails (a lost peer), which ends the pass for every sequence in it.
    func routedExperts(layer: Step35MoE, layerIndex: Int, x: [Float], tokens: Int, experts: [Int32], weights: [Float],
                       topK: Int, pool: ThreadPool) throws -> [Float]

    /// Starts the same computation and returns how to finish it, so the caller can compute other work of the
    /// layer (the shared expert) while a transport's rows are away. The default computes at once.
    func startRoutedExperts(layer: Step35MoE, layerIndex: Int, x: [Float], tokens: Int, experts: [Int32], weights: [Float],
                            topK: Int, pool: ThreadPool) throws -> RoutedExpertsInFlight
}

/// Routed experts started by `ExpertBackend.startRoutedExperts`; `finish()` returns [T, D].
public struct RoutedExpertsInFlight {
    private let body: () throws -> [Float]
    /// Wraps the step that completes the computation.
    public init(finish: @escaping () throws -> [Float]) { body = finish }
    /// Waits for (or computes) the routed experts' output.
    public func finish() throws -> [Float] { try body() }
}

extension ExpertBackend {
    public func startRoutedExperts(layer: Step35MoE, layerIndex: Int, x: [Float], tokens: Int, experts: [Int32], weights: [Float],
                                   topK: Int, pool: ThreadPool) throws -> RoutedExpertsInFlight {
        let y = try routedExperts(layer: layer, layerIndex: layerIndex, x: x, tokens: tokens, experts: experts, weights: weights,
                                  topK: topK, pool: pool)
        return RoutedExpertsInFlight { y }
    }
}

/// Runs every expert in this process, grouping tokens by expert so each expert's weights are read once.
public struct LocalExperts: ExpertBackend {
    /// Creates the in-process backend.
    public init() {}

    public func routedExperts(layer m: Step35MoE, layerIndex: Int, x: [Float], tokens t: Int, experts: [Int32],
                              weights: [Float], topK a: Int, pool: ThreadPool) -> [Float] {
        let d = m.router.cols
        let token = (0..<(t * a)).map { Int32($0 / a) }
        let rows = Ops.gatherRows(x, token, width: d)  // [T·A, D]: row i is token i / A
        let y = m.expertRows(rows, experts: experts.map(Int.init), pool: pool)
        var out = [Float](repeating: 0, count: t * d)
        Ops.addRows(y, token, weights: weights, width: d, into: &out)
        return out
    }
}

extension Step35MoE {
    /// Runs row r of x [R, D] through expert `experts[r]` and returns [R, D] in the same order. Rows are
    /// grouped by expert first so each expert's weights stream once (shared by in-process experts and workers).
    public func expertRows(_ x: [Float], experts ex: [Int], pool: ThreadPool) -> [Float] {
        let d = router.cols, r = ex.count
        guard r > 0 else { return [] }
        let order = (0..<r).sorted { ex[$0] < ex[$1] || (ex[$0] == ex[$1] && $0 < $1) }
        var segments: [(start: Int, count: Int)] = [], gs: [WeightMatrix] = [], us: [WeightMatrix] = [], ds: [WeightMatrix] = []
        for (k, i) in order.enumerated() {
            if k == 0 || ex[order[k - 1]] != ex[i] {
                segments.append((k, 0))
                gs.append(gate[ex[i]]); us.append(up[ex[i]]); ds.append(down[ex[i]])
            }
            segments[segments.count - 1].count += 1
        }
        let index = order.map { Int32($0) }
        let xg = Ops.gatherRows(x, index, width: d)  // [R, D] ordered expert by expert
        let (g, u) = Ops.groupedMatmulPair(gs, us, xg, segments: segments, pool: pool)  // [R, F] each, one region
        let yg = Ops.groupedMatmul(ds, Ops.swiglu(g, u, limit: clamp), segments: segments, pool: pool)  // [R, D]
        var y = [Float](repeating: 0, count: r * d)
        Ops.scatterRows(yg, index, width: d, into: &y)  // back to the callers' row order
        return y
    }
}
