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
    /// The expert-ordered rows and their outputs ([R, D] each), kept between passes (`ScratchArrays`).
    private let scratch = ScratchArrays(slots: 2)

    /// Creates the in-process backend.
    public init() {}

    /// Gathers each (token, expert) pair's row straight from x in expert order, and adds the outputs into
    /// their tokens in the pairs' own order: the additions of gathering per pair, computing, and scattering
    /// back, without the two [R, D] copies.
    public func routedExperts(layer m: Step35MoE, layerIndex: Int, x: [Float], tokens t: Int, experts: [Int32],
                              weights: [Float], topK a: Int, pool: ThreadPool) -> [Float] {
        let d = m.router.cols, r = t * a
        let plan = m.expertPlan(experts.map(Int.init))
        let token = plan.order.map { Int32(Int($0) / a) }  // row k of the plan is token order[k] / A
        var position = [Int32](repeating: 0, count: r)  // where pair i sits in the plan's rows
        for (k, i) in plan.order.enumerated() { position[Int(i)] = Int32(k) }
        var out = [Float](repeating: 0, count: t * d)
        scratch.with(0, count: r * d) { xg in
            Ops.gatherRows(x, token, width: d, into: &xg)  // [R, D] expert by expert
            scratch.with(1, count: r * d) { yg in
                m.computeExperts(plan, xg, into: &yg, pool: pool)
                Ops.addRows(yg, from: position, (0..<r).map { Int32($0 / a) }, weights: weights, width: d, into: &out)
            }
        }
        return out
    }
}

/// Rows grouped by expert: the order that sorts them (stable), each expert's segment and matrices.
public struct ExpertPlan {
    /// Row k of the grouped matrix is input row `order[k]`.
    public var order: [Int32]
    /// Each used expert's rows of the grouped matrix.
    public var segments: [(start: Int, count: Int)]
    var gate: [WeightMatrix], up: [WeightMatrix], down: [WeightMatrix]
}

extension Step35MoE {
    /// Groups rows routed to `ex[r]` expert by expert: a counting sort (stable, so rows keep their order within
    /// an expert), with every array sized once (decode runs this at every MoE layer).
    public func expertPlan(_ ex: [Int]) -> ExpertPlan {
        var count = [Int32](repeating: 0, count: gate.count)
        for e in ex { count[e] += 1 }
        let used = count.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        var plan = ExpertPlan(order: [Int32](repeating: 0, count: ex.count), segments: [], gate: [], up: [], down: [])
        plan.segments.reserveCapacity(used)
        plan.gate.reserveCapacity(used); plan.up.reserveCapacity(used); plan.down.reserveCapacity(used)
        var next = count  // becomes each expert's first row, then its next free row
        var start = 0
        for e in 0..<count.count where count[e] > 0 {
            plan.segments.append((start, Int(count[e])))
            plan.gate.append(gate[e]); plan.up.append(up[e]); plan.down.append(down[e])
            next[e] = Int32(start)
            start += Int(count[e])
        }
        for (i, e) in ex.enumerated() {
            plan.order[Int(next[e])] = Int32(i)
            next[e] += 1
        }
        return plan
    }

    /// The experts of `plan` on its grouped rows xg ([R, D]), into yg (at least [R, D]).
    public func computeExperts(_ plan: ExpertPlan, _ xg: [Float], into yg: inout [Float], pool: ThreadPool) {
        let (g, u) = Ops.groupedMatmulPair(plan.gate, plan.up, xg, segments: plan.segments, pool: pool)  // [R, F] each, one region
        Ops.groupedMatmul(plan.down, Ops.swiglu(g, u, limit: clamp, pool: pool), segments: plan.segments, into: &yg, pool: pool)  // [R, D]
    }

    /// Runs row r of x [R, D] through expert `experts[r]` and returns [R, D] in the same order. Rows are
    /// grouped by expert first so each expert's weights stream once (cluster workers).
    public func expertRows(_ x: [Float], experts ex: [Int], pool: ThreadPool) -> [Float] {
        let d = router.cols, r = ex.count
        guard r > 0 else { return [] }
        let plan = expertPlan(ex)
        let xg = Ops.gatherRows(x, plan.order, width: d)  // [R, D] ordered expert by expert
        var yg = [Float](repeating: 0, count: r * d)
        computeExperts(plan, xg, into: &yg, pool: pool)
        var y = [Float](repeating: 0, count: r * d)
        Ops.scatterRows(yg, plan.order, width: d, into: &y)  // back to the callers' row order
        return y
    }
}
