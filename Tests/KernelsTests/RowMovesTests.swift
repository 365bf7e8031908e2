import Foundation
import GGUF
import Kernels
import Testing

/// The MoE row moves and the cluster's dispatch row codec (rows.c) against plain Swift.
@Suite struct RowMovesTests {
    /// If this fails, a dispatch row is encoded or decoded differently from the plain rounding of its payload
    /// (f16 and bf16 to nearest even, int8 with one scale amax / 127 and half-away-from-zero), its header
    /// (expert, gate weight) is lost, or a row other than the one asked for is sent. Widths 37 and 64 cover
    /// the F16C loop and its tail.
    @Test(arguments: [DispatchEncoding.f32, .bf16, .f16, .int8], [37, 64])
    func dispatchRowsRoundTrip(encoding: DispatchEncoding, d: Int) {
        var r = Rand(UInt64(d) + UInt64(encoding.rawValue))
        let x = r.floats(4 * d, scale: 5)
        let rows: [Int32] = [2, 0, 3, 3, 1], experts: [Int32] = [7, 0, 287, 5, 9]
        let weights: [Float] = [0.5, 0.25, 1, 0.125, 0.75]
        let bytes = Ops.encodeDispatchRows(encoding, x: x, rows: rows, experts: experts, weights: weights, width: d)
        #expect(bytes.count == rows.count * encoding.rowBytes(d))
        let (y, e, w) = Ops.decodeDispatchRows(encoding, bytes, count: rows.count, width: d)
        #expect(e == experts && w == weights)
        for (k, src) in rows.enumerated() {
            let row = Array(x[(Int(src) * d)..<((Int(src) + 1) * d)])
            let want: [Float]
            switch encoding {
            case .f32: want = row
            case .f16: want = row.map { Float(Float16($0)) }
            case .bf16: want = Quantize.row(.bf16, row).withUnsafeBytes { Dequantize.row(.bf16, $0, count: d) }
            case .int8:
                let scale = row.map(abs).max()! / 127, inv = 1 / scale
                want = row.map { scale * Float(Int8(max(-127, min(127, ($0 * inv).rounded())))) }
            }
            #expect(Array(y[(k * d)..<((k + 1) * d)]) == want, "\(encoding) row \(k)")
        }
    }

    /// If this fails, the gate-weighted combine adds a row into the wrong token, drops its weight, or rounds
    /// otherwise than `out += w * y` per element (the cluster and the in-process experts must agree bitwise).
    @Test func addRowsIsTheWeightedSum() {
        var r = Rand(3)
        let d = 19, y = r.floats(5 * d)
        let index: [Int32] = [1, 0, 1, 2, 0], w: [Float] = [0.3, 0.7, 0.1, 1, 0.9]
        var out = r.floats(3 * d), want = out
        for k in 0..<5 { for c in 0..<d { want[Int(index[k]) * d + c] += w[k] * y[k * d + c] } }
        Ops.addRows(y, index, weights: w, width: d, into: &out)
        #expect(out == want)
        var scaled = y
        Ops.scaleRows(&scaled, w, width: d)
        #expect(scaled == (0..<(5 * d)).map { y[$0] * w[$0 / d] })
    }

    /// If this fails, the in-process experts' combine (rows computed expert by expert, read back through an
    /// index) adds other rows, or in another order, than gathering them back to the pairs' order first: the
    /// single-process and cluster paths would then differ in their last bits.
    @Test func addRowsThroughAnIndexIsGatherThenAdd() {
        var r = Rand(5)
        let d = 23, y = r.floats(6 * d)
        let from: [Int32] = [4, 0, 5, 2, 1, 3], index: [Int32] = [0, 0, 1, 1, 2, 2], w = r.floats(6, scale: 1)
        var out = r.floats(3 * d), want = out
        Ops.addRows(Ops.gatherRows(y, from, width: d), index, weights: w, width: d, into: &want)
        Ops.addRows(y, from: from, index, weights: w, width: d, into: &out)
        #expect(out == want)
    }

    /// If this fails, a prefill-sized RMSNorm or SwiGLU split over the pool's threads loses or repeats rows or
    /// chunks at a boundary, or rounds otherwise than the serial call (sizes past the split threshold, with a
    /// SwiGLU length that is not a multiple of the 64-element chunk).
    @Test func pooledRowwiseOpsMatchTheSerialCall() {
        var r = Rand(11)
        let pool = ThreadPool(threads: 3)
        let rows = 67, n = 1_031, x = r.floats(rows * n, scale: 3), w = r.floats(n, scale: 1)
        #expect(Ops.rmsNorm(x, weight: w, rows: rows, eps: 1e-5, pool: pool) == Ops.rmsNorm(x, weight: w, rows: rows, eps: 1e-5))
        let g = r.floats(100_003, scale: 8), u = r.floats(100_003, scale: 8)
        for limit: Float in [0, 7] {
            #expect(Ops.swiglu(g, u, limit: limit, pool: pool) == Ops.swiglu(g, u, limit: limit), "limit \(limit)")
        }
        var acc = x
        Ops.add(w, into: &acc)
        #expect(acc == x.indices.map { $0 < n ? x[$0] + w[$0] : x[$0] })
    }

    /// If this fails, the router picks other experts than the plain selection (highest score + bias first, ties
    /// to the lower index, the bias only steering), or weighs them otherwise (unbiased scores over their sum,
    /// floored at 2^-14, then the scale), so routing would differ from llama.cpp's and the cluster's.
    @Test func routeTopKIsThePlainSelection() {
        var r = Rand(13)
        let t = 5, e = 12, a = 4
        var scores = r.floats(t * e, scale: 1).map { abs($0) }
        scores[3] = scores[7]; scores[e + 2] = scores[e + 9]   // ties
        for i in (4 * e)..<(5 * e) { scores[i] = 1e-7 }        // a token whose weights hit the floor
        let bias = r.floats(e, scale: 0.05)
        for (b, norm, scale) in [(Optional(bias), true, Float(3)), (nil, false, 1), (Optional(bias), false, 0)] {
            let (ex, w) = Ops.routeTopK(scores, bias: b, tokens: t, topK: a, normalize: norm, scale: scale)
            for tok in 0..<t {
                let row = Array(scores[(tok * e)..<((tok + 1) * e)])
                let sel = b.map { zip(row, $0).map { $0 + $1 } } ?? row
                let top = Array(sel.indices.sorted { sel[$0] > sel[$1] || (sel[$0] == sel[$1] && $0 < $1) }.prefix(a))
                var want = top.map { row[$0] }
                if norm { let s = max(want.reduce(0, +), 6.103515625e-5); want = want.map { $0 / s } }
                if scale != 0 && scale != 1 { want = want.map { $0 * scale } }
                #expect(Array(ex[(tok * a)..<((tok + 1) * a)]) == top.map(Int32.init), "token \(tok)")
                #expect(Array(w[(tok * a)..<((tok + 1) * a)]) == want, "token \(tok)")
            }
        }
    }
}
