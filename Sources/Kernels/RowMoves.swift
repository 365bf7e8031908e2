// Row moves of the MoE layer and the cluster's dispatch row codec, each one C call over all rows (rows.c).
import CKernels

/// How the cluster encodes a dispatched hidden state (the topology's `dispatch`).
public enum DispatchEncoding: Int32, Sendable {
    case f32 = 0, bf16, f16, int8

    /// Bytes per dispatched row of `d` floats: the 8-byte header (expert, gate weight) and the payload.
    public func rowBytes(_ d: Int) -> Int { Int(sy_dispatch_row_bytes(rawValue, Int64(d))) }
}

extension Ops {
    /// Rows `index[k]` of `x` ([*, d]) as rows k of the result ([index.count, d]).
    public static func gatherRows(_ x: [Float], _ index: [Int32], width d: Int) -> [Float] {
        var y = [Float](repeating: 0, count: index.count * d)
        gatherRows(x, index, width: d, into: &y)
        return y
    }

    /// Rows `index[k]` of `x` ([*, d]) into rows k of `y` (at least [index.count, d]).
    public static func gatherRows(_ x: [Float], _ index: [Int32], width d: Int, into y: inout [Float]) {
        precondition(y.count >= index.count * d)
        sy_gather_rows(x, index, Int64(index.count), Int64(d), &y)
    }

    /// Row k of `x` ([index.count, d]) into row `index[k]` of `y`.
    public static func scatterRows(_ x: [Float], _ index: [Int32], width d: Int, into y: inout [Float]) {
        precondition(x.count >= index.count * d)
        sy_scatter_rows(x, index, Int64(index.count), Int64(d), &y)
    }

    /// `out[index[k]] += weights[k] · y[k]` for every row k of `y` ([index.count, d]); plain `+=` without weights.
    public static func addRows(_ y: [Float], _ index: [Int32], weights: [Float]?, width d: Int, into out: inout [Float]) {
        precondition(y.count >= index.count * d && (weights?.count ?? index.count) >= index.count)
        if let weights {
            sy_add_rows(y, nil, index, weights, Int64(index.count), Int64(d), &out)
        } else {
            sy_add_rows(y, nil, index, nil, Int64(index.count), Int64(d), &out)
        }
    }

    /// `out[index[k]] += weights[k] · y[from[k]]` for k in order: the combine of rows computed in another
    /// order (expert by expert) with the same additions, in the same order, as gathering them back first.
    public static func addRows(_ y: [Float], from: [Int32], _ index: [Int32], weights: [Float], width d: Int, into out: inout [Float]) {
        precondition(from.count == index.count && weights.count >= index.count && y.count >= index.count * d)
        sy_add_rows(y, from, index, weights, Int64(index.count), Int64(d), &out)
    }

    /// The MoE router's choice for `tokens` rows of scores ([T, E]): per token the `topK` experts of highest
    /// score + `bias` (the bias steers the choice only; ties to the lower index) and their unbiased scores as
    /// weights, divided by their sum (at least 2^-14) when `normalize`, then times `scale` unless it is 0 or 1.
    public static func routeTopK(_ scores: [Float], bias: [Float]?, tokens t: Int, topK a: Int, normalize: Bool,
                                 scale: Float) -> (experts: [Int32], weights: [Float]) {
        var experts: [Int32] = [], weights: [Float] = []
        routeTopK(scores, bias: bias, tokens: t, topK: a, normalize: normalize, scale: scale, into: &experts, &weights)
        return (experts, weights)
    }

    /// `routeTopK` into `experts` and `weights` (their counts set to T·A; storage kept).
    public static func routeTopK(_ scores: [Float], bias: [Float]?, tokens t: Int, topK a: Int, normalize: Bool, scale: Float,
                                 into experts: inout [Int32], _ weights: inout [Float]) {
        let e = scores.count / max(t, 1)
        precondition(scores.count == t * e && a <= e && (bias?.count ?? e) == e)
        experts.setCount(t * a)
        weights.setCount(t * a)
        if let bias {
            sy_moe_route(scores, bias, Int64(t), Int64(e), Int32(a), normalize ? 1 : 0, scale, &experts, &weights)
        } else {
            sy_moe_route(scores, nil, Int64(t), Int64(e), Int32(a), normalize ? 1 : 0, scale, &experts, &weights)
        }
    }

    /// `x[i] = 1 / (1 + exp(-x[i]))` in place.
    public static func sigmoid(_ x: inout [Float]) {
        let n = x.count
        sy_sigmoid(&x, Int64(n))
    }

    /// `y[i] += x[i]` for the first `x.count` elements (residual adds).
    public static func add(_ x: [Float], into y: inout [Float]) {
        precondition(y.count >= x.count)
        sy_add_into(&y, x, Int64(x.count))
    }

    /// `y[k] *= weights[k]` for every row k of `y` ([weights.count, d]).
    public static func scaleRows(_ y: inout [Float], _ weights: [Float], width d: Int) {
        precondition(y.count >= weights.count * d)
        sy_scale_rows(&y, weights, Int64(weights.count), Int64(d))
    }

    /// Dispatch rows: row k carries `experts[k]`, `weights[k]` and row `rows[k]` of `x` ([*, d]) in `encoding`.
    public static func encodeDispatchRows(_ encoding: DispatchEncoding, x: [Float], rows: [Int32], experts: [Int32],
                                          weights: [Float], width d: Int) -> [UInt8] {
        precondition(experts.count == rows.count && weights.count == rows.count)
        var out = [UInt8](repeating: 0, count: rows.count * encoding.rowBytes(d))
        sy_encode_rows(encoding.rawValue, x, rows, experts, weights, Int64(rows.count), Int64(d), &out)
        return out
    }

    /// The first `count` dispatch rows of `bytes`: hidden states [count, d], experts and gate weights.
    public static func decodeDispatchRows(_ encoding: DispatchEncoding, _ bytes: [UInt8], count n: Int, width d: Int)
        -> (x: [Float], experts: [Int32], weights: [Float])
    {
        precondition(bytes.count >= n * encoding.rowBytes(d), "dispatch rows: \(bytes.count) bytes for \(n) rows")
        var x = [Float](repeating: 0, count: n * d), e = [Int32](repeating: 0, count: n), w = [Float](repeating: 0, count: n)
        sy_decode_rows(encoding.rawValue, bytes, Int64(n), Int64(d), &x, &e, &w)
        return (x, e, w)
    }
}
