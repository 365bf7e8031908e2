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
    /// layer (the shared expert) while a transport's rows are away. A backend that computes at once writes the
    /// output into `out` ([T, D]; its storage reused) and returns `.written`; the default does that through
    /// `routedExperts`.
    func startRoutedExperts(layer: Step35MoE, layerIndex: Int, x: [Float], tokens: Int, experts: [Int32], weights: [Float],
                            topK: Int, pool: ThreadPool, into out: inout [Float]) throws -> RoutedExpertsInFlight
}

/// Routed experts started by `ExpertBackend.startRoutedExperts`: already written, or a step that completes them.
public struct RoutedExpertsInFlight {
    private let body: (() throws -> [Float])?
    /// Wraps the step that completes the computation.
    public init(finish: @escaping () throws -> [Float]) { body = finish }
    private init() { body = nil }
    /// The output is in the caller's buffer already (no closure: nothing allocated per layer).
    public static var written: RoutedExpertsInFlight { RoutedExpertsInFlight() }
    /// Waits for (or computes) the routed experts' output into `out` ([T, D]).
    public func finish(into out: inout [Float]) throws {
        if let body { out = try body() }
    }
}

extension ExpertBackend {
    public func startRoutedExperts(layer: Step35MoE, layerIndex: Int, x: [Float], tokens: Int, experts: [Int32], weights: [Float],
                                   topK: Int, pool: ThreadPool, into out: inout [Float]) throws -> RoutedExpertsInFlight {
        out = try routedExperts(layer: layer, layerIndex: layerIndex, x: x, tokens: tokens, experts: experts, weights: weights,
                                topK: topK, pool: pool)
        return .written
    }
}

/// Runs every expert in this process, grouping tokens by expert so each expert's weights are read once.
public struct LocalExperts: ExpertBackend {
    /// Buffers kept between passes (the engine gives each lane its own backend).
    private let scratch = LocalExpertsScratch()

    /// Creates the in-process backend.
    public init() {}

    /// Gathers each (token, expert) pair's row straight from x in expert order, and adds the outputs into
    /// their tokens in the pairs' own order: the additions of gathering per pair, computing, and scattering
    /// back, without the two [R, D] copies. Every intermediate but the result lives in the scratch.
    public func routedExperts(layer m: Step35MoE, layerIndex: Int, x: [Float], tokens t: Int, experts: [Int32],
                              weights: [Float], topK a: Int, pool: ThreadPool) -> [Float] {
        var out: [Float] = []
        compute(layer: m, x: x, tokens: t, experts: experts, weights: weights, topK: a, pool: pool, into: &out)
        return out
    }

    /// Computes at once, into `out`.
    public func startRoutedExperts(layer m: Step35MoE, layerIndex: Int, x: [Float], tokens t: Int, experts: [Int32], weights: [Float],
                                   topK a: Int, pool: ThreadPool, into out: inout [Float]) -> RoutedExpertsInFlight {
        compute(layer: m, x: x, tokens: t, experts: experts, weights: weights, topK: a, pool: pool, into: &out)
        return .written
    }

    private func compute(layer m: Step35MoE, x: [Float], tokens t: Int, experts: [Int32], weights: [Float], topK a: Int,
                         pool: ThreadPool, into out: inout [Float]) {
        let d = m.router.cols, r = t * a
        let c = scratch
        m.fillPlan(&c.plan, counts: &c.counts, experts: experts)
        c.token.setCount(r); c.position.setCount(r); c.pairToken.setCount(r)
        for (k, i) in c.plan.order.enumerated() {
            c.token[k] = Int32(Int(i) / a)  // row k of the plan is token order[k] / A
            c.position[Int(i)] = Int32(k)  // where pair i sits in the plan's rows
        }
        for i in 0..<r { c.pairToken[i] = Int32(i / a) }
        out.setCount(t * d)
        out.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }  // the rows are added into it
        c.floats.with(0, count: r * d) { xg in
            Ops.gatherRows(x, c.token, width: d, into: &xg)  // [R, D] expert by expert
            c.floats.with(1, count: r * d) { yg in
                m.computeExperts(c.plan, xg, rows: r, into: &yg, scratch: c.floats, pool: pool)
                Ops.addRows(yg, from: c.position, c.pairToken, weights: weights, width: d, into: &out)
            }
        }
    }
}

/// The in-process experts' buffers: the expert-ordered rows and outputs ([R, D]: 32 MiB at 512 tokens, which
/// glibc would map afresh every layer), the gate, up and activation rows ([R, F]), the plan and its indexes.
/// One lane's passes use it one at a time.
final class LocalExpertsScratch: @unchecked Sendable {
    let floats = ScratchArrays(slots: 5)
    var plan = ExpertPlan(order: [], segments: [], gate: [], up: [], down: [])
    var counts: [Int32] = [], token: [Int32] = [], position: [Int32] = [], pairToken: [Int32] = []
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
    /// Groups rows routed to `ex[r]` expert by expert.
    public func expertPlan(_ ex: [Int]) -> ExpertPlan {
        var plan = ExpertPlan(order: [], segments: [], gate: [], up: [], down: [])
        var counts: [Int32] = []
        fillPlan(&plan, counts: &counts, experts: ex.map { Int32($0) })
        return plan
    }

    /// Groups rows routed to `ex[r]` expert by expert into `plan`, reusing its storage: a counting sort
    /// (stable, so rows keep their order within an expert); `counts` is the sort's scratch.
    func fillPlan(_ plan: inout ExpertPlan, counts: inout [Int32], experts ex: [Int32]) {
        counts.setCount(gate.count)
        for e in 0..<counts.count { counts[e] = 0 }
        for e in ex { counts[Int(e)] += 1 }
        plan.order.setCount(ex.count)
        plan.segments.removeAll(keepingCapacity: true)
        plan.gate.removeAll(keepingCapacity: true); plan.up.removeAll(keepingCapacity: true); plan.down.removeAll(keepingCapacity: true)
        var start: Int32 = 0
        for e in 0..<counts.count where counts[e] > 0 {  // counts[e] becomes expert e's next free row
            let n = counts[e]
            plan.segments.append((Int(start), Int(n)))
            plan.gate.append(gate[e]); plan.up.append(up[e]); plan.down.append(down[e])
            counts[e] = start
            start += n
        }
        for (i, e) in ex.enumerated() {
            plan.order[Int(counts[Int(e)])] = Int32(i)
            counts[Int(e)] += 1
        }
    }

    /// The experts of `plan` on its grouped rows xg ([R, D], R = `rows`) into yg (at least [R, D]), with the
    /// [R, F] intermediates in slots 2-4 of `scratch`.
    func computeExperts(_ plan: ExpertPlan, _ xg: [Float], rows r: Int, into yg: inout [Float], scratch: ScratchArrays,
                        pool: ThreadPool) {
        let f = gate.first?.rows ?? 0
        scratch.with(2, count: r * f) { g in
            scratch.with(3, count: r * f) { u in
                Ops.groupedMatmulPair(plan.gate, plan.up, xg, segments: plan.segments, into: &g, &u, pool: pool)  // [R, F] each
                scratch.with(4, count: r * f) { act in
                    Ops.swiglu(g, u, count: r * f, limit: clamp, into: &act, pool: pool)
                    Ops.groupedMatmul(plan.down, act, segments: plan.segments, into: &yg, pool: pool)  // [R, D]
                }
            }
        }
    }

    /// Runs row r of x [R, D] through expert `experts[r]` and returns [R, D] in the same order. Rows are
    /// grouped by expert first so each expert's weights stream once (cluster workers).
    public func expertRows(_ x: [Float], experts ex: [Int], pool: ThreadPool) -> [Float] {
        let d = router.cols, r = ex.count
        guard r > 0 else { return [] }
        let plan = expertPlan(ex)
        let xg = Ops.gatherRows(x, plan.order, width: d)  // [R, D] ordered expert by expert
        var yg = [Float](repeating: 0, count: r * d)
        computeExperts(plan, xg, rows: r, into: &yg, scratch: ScratchArrays(slots: 5), pool: pool)
        var y = [Float](repeating: 0, count: r * d)
        Ops.scatterRows(yg, plan.order, width: d, into: &y)  // back to the callers' row order
        return y
    }
}
