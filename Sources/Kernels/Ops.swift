// Fast kernels: thin Swift entry points over CKernels. Unsafe pointers stay in this file.
//
// Dimension legend: T tokens, R output rows, C input columns, H query heads, Hk KV heads,
// D head dim, N cached keys.
import CKernels
import GGUF

/// Geometry and masking of one attention call.
public struct AttentionShape: Sendable {
    /// Query heads H.
    public var heads: Int
    /// KV heads Hk (H must be a multiple).
    public var kvHeads: Int
    /// Head dim D (keys and values).
    public var headDim: Int
    /// 0 for full causal attention, else the sliding window (current token included).
    public var window: Int
    /// Score scale, normally 1/sqrt(D).
    public var scale: Float

    /// Creates a shape.
    public init(heads: Int, kvHeads: Int, headDim: Int, window: Int, scale: Float) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.window = window
        self.scale = scale
    }
}

/// The fast kernels.
public enum Ops {
    static func dequantizeRow(_ type: GGMLType, _ p: UnsafeRawPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buf, n in
            sy_dequant_row(Int32(type.rawValue), p, buf.baseAddress, Int64(count))
            n = count
        }
    }

    /// Decodes `count` elements of encoded bytes (tests).
    public static func dequantize(_ type: GGMLType, bytes: [UInt8], count: Int) -> [Float] {
        bytes.withUnsafeBytes { dequantizeRow(type, $0.baseAddress!, count: count) }
    }

    /// y[T, R] = x[T, C] · Wᵀ.
    public static func matmul(_ w: WeightMatrix, _ x: [Float], tokens: Int, pool: ThreadPool) -> [Float] {
        var y = [Float](repeating: 0, count: tokens * w.rows)
        matmul(w, x, tokens: tokens, into: &y, pool: pool)
        return y
    }

    /// y[T, R] = x[T, C] · Wᵀ, written into an existing buffer of at least T·R floats.
    public static func matmul(_ w: WeightMatrix, _ x: [Float], tokens: Int, into y: inout [Float], pool: ThreadPool) {
        precondition(x.count >= tokens * w.cols && y.count >= tokens * w.rows, "matmul: buffer too small")
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                var job = sy_mm_job(w: w.address, x: xp.baseAddress, y: yp.baseAddress,
                                    n_tok: Int64(tokens), ldx: Int64(w.cols), ldy: Int64(w.rows))
                sy_matmul(pool.raw, Int32(w.type.rawValue), Int64(w.rows), Int64(w.cols), w.rowBytes, &job, 1, w.packed ? 1 : 0)
            }
        }
        withExtendedLifetime(w.owner) {}
    }

    /// One product per segment in a single parallel region: rows `start..<start+count` of `x`
    /// ([*, C]) times `weights[i]`ᵀ land in the same rows of the result ([*, R]).
    /// All matrices must share type and geometry (the experts of one layer).
    public static func groupedMatmul(_ weights: [WeightMatrix], _ x: [Float], segments: [(start: Int, count: Int)],
                                     pool: ThreadPool) -> [Float] {
        guard let w0 = weights.first else { return [] }
        var y = [Float](repeating: 0, count: segmentRows(segments) * w0.rows)
        groupedMatmul(weights, x, segments: segments, into: &y, pool: pool)
        return y
    }

    /// `groupedMatmul` into an existing buffer holding at least the segments' rows.
    public static func groupedMatmul(_ weights: [WeightMatrix], _ x: [Float], segments: [(start: Int, count: Int)],
                                     into y: inout [Float], pool: ThreadPool) {
        precondition(weights.count == segments.count)
        guard let w0 = weights.first else { return }
        precondition(y.count >= segmentRows(segments) * w0.rows, "groupedMatmul: buffer too small")
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                withUnsafeTemporaryAllocation(of: sy_mm_job.self, capacity: segments.count) { jobs in
                    let n = segmentJobs(jobs, from: 0, weights, segments, like: w0, x: xp.baseAddress!, y: yp.baseAddress!)
                    sy_matmul(pool.raw, Int32(w0.type.rawValue), Int64(w0.rows), Int64(w0.cols), w0.rowBytes,
                              jobs.baseAddress, Int32(n), w0.packed ? 1 : 0)
                }
            }
        }
        withExtendedLifetime(weights) {}
    }

    /// Writes the jobs of one grouped product into `jobs` from index `k`, returning the next free index:
    /// segment i's rows of x (at `x`) times `weights[i]`ᵀ into the same rows at `y`; empty segments have none.
    /// The callers keep `jobs` on the stack (`withUnsafeTemporaryAllocation`): decode runs this at every MoE layer.
    private static func segmentJobs(_ jobs: UnsafeMutableBufferPointer<sy_mm_job>, from k: Int, _ weights: [WeightMatrix],
                                    _ segments: [(start: Int, count: Int)], like w0: WeightMatrix,
                                    x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) -> Int {
        var k = k
        for (w, s) in zip(weights, segments) where s.count > 0 {
            precondition(w.type == w0.type && w.rows == w0.rows && w.cols == w0.cols && w.packed == w0.packed)
            jobs[k] = sy_mm_job(w: w.address, x: x + s.start * w0.cols, y: y + s.start * w0.rows,
                                n_tok: Int64(s.count), ldx: Int64(w0.cols), ldy: Int64(w0.rows))
            k += 1
        }
        return k
    }

    /// Rows the segments cover.
    private static func segmentRows(_ segments: [(start: Int, count: Int)]) -> Int {
        segments.reduce(0) { max($0, $1.start + $1.count) }
    }

    /// Two grouped products of the same rows of `x` in one parallel region (the experts' gate and up
    /// projections): every token's activations are quantized once for both, and the threads share one
    /// dispatch. Falls back to two regions when the two sets differ in type or geometry.
    public static func groupedMatmulPair(_ a: [WeightMatrix], _ b: [WeightMatrix], _ x: [Float],
                                         segments: [(start: Int, count: Int)], pool: ThreadPool) -> ([Float], [Float]) {
        precondition(a.count == segments.count && b.count == segments.count)
        guard let a0 = a.first, let b0 = b.first,
              a0.type == b0.type && a0.rows == b0.rows && a0.cols == b0.cols && a0.rowBytes == b0.rowBytes && a0.packed == b0.packed else {
            return (groupedMatmul(a, x, segments: segments, pool: pool), groupedMatmul(b, x, segments: segments, pool: pool))
        }
        let total = segmentRows(segments)
        var ya = [Float](repeating: 0, count: total * a0.rows), yb = [Float](repeating: 0, count: total * a0.rows)
        groupedMatmulPair(a, b, x, segments: segments, into: &ya, &yb, pool: pool)
        return (ya, yb)
    }

    /// `groupedMatmulPair` into existing buffers, each holding at least the segments' rows.
    public static func groupedMatmulPair(_ a: [WeightMatrix], _ b: [WeightMatrix], _ x: [Float], segments: [(start: Int, count: Int)],
                                         into ya: inout [Float], _ yb: inout [Float], pool: ThreadPool) {
        precondition(a.count == segments.count && b.count == segments.count)
        guard let a0 = a.first, let b0 = b.first else { return }
        guard a0.type == b0.type && a0.rows == b0.rows && a0.cols == b0.cols && a0.rowBytes == b0.rowBytes && a0.packed == b0.packed else {
            groupedMatmul(a, x, segments: segments, into: &ya, pool: pool)
            groupedMatmul(b, x, segments: segments, into: &yb, pool: pool)
            return
        }
        precondition(ya.count >= segmentRows(segments) * a0.rows && yb.count >= segmentRows(segments) * b0.rows, "groupedMatmulPair: buffer too small")
        x.withUnsafeBufferPointer { xp in
            ya.withUnsafeMutableBufferPointer { ap in
                yb.withUnsafeMutableBufferPointer { bp in
                    withUnsafeTemporaryAllocation(of: sy_mm_job.self, capacity: 2 * segments.count) { jobs in
                        let na = segmentJobs(jobs, from: 0, a, segments, like: a0, x: xp.baseAddress!, y: ap.baseAddress!)
                        let n = segmentJobs(jobs, from: na, b, segments, like: a0, x: xp.baseAddress!, y: bp.baseAddress!)
                        sy_matmul(pool.raw, Int32(a0.type.rawValue), Int64(a0.rows), Int64(a0.cols), a0.rowBytes,
                                  jobs.baseAddress, Int32(n), a0.packed ? 1 : 0)
                    }
                }
            }
        }
        withExtendedLifetime((a, b)) {}
    }

    /// RMSNorm over `rows` rows of `x.count / rows`, times `weight` (broadcast per row) when given; split over
    /// `pool`'s threads when given and the input is large (a prefill), with the same bits.
    public static func rmsNorm(_ x: [Float], weight: [Float]?, rows: Int, eps: Float, pool: ThreadPool? = nil) -> [Float] {
        var y: [Float] = []
        rmsNorm(x, weight: weight, rows: rows, eps: eps, into: &y, pool: pool)
        return y
    }

    /// `rmsNorm` into `y`, which takes x's count (its storage kept).
    public static func rmsNorm(_ x: [Float], weight: [Float]?, rows: Int, eps: Float, into y: inout [Float], pool: ThreadPool? = nil) {
        let n = x.count / rows
        precondition(weight == nil || weight!.count == n)
        y.setCount(x.count)
        if let w = weight {
            w.withUnsafeBufferPointer { sy_rmsnorm_pool(pool?.raw, x, $0.baseAddress, &y, Int64(rows), Int64(n), eps) }
        } else {
            sy_rmsnorm_pool(pool?.raw, x, nil, &y, Int64(rows), Int64(n), eps)
        }
    }

    /// Softmax in place.
    public static func softmax(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { sy_softmax($0.baseAddress, Int64(n)) }
    }

    /// Softmax of each of `rows` rows of x in place.
    public static func softmax(_ x: inout [Float], rows: Int) {
        let n = x.count / max(rows, 1)
        x.withUnsafeMutableBufferPointer { xp in for r in 0..<rows { sy_softmax(xp.baseAddress! + r * n, Int64(n)) } }
    }

    /// RMSNorm of x in place (the kernel reads each element before it writes it): the q/k norms.
    public static func rmsNormInPlace(_ x: inout [Float], weight: [Float]?, rows: Int, eps: Float) {
        let n = x.count / rows
        precondition(weight == nil || weight!.count == n)
        x.withUnsafeMutableBufferPointer { xp in
            if let w = weight {
                w.withUnsafeBufferPointer { sy_rmsnorm(xp.baseAddress, $0.baseAddress, xp.baseAddress, Int64(rows), Int64(n), eps) }
            } else {
                sy_rmsnorm(xp.baseAddress, nil, xp.baseAddress, Int64(rows), Int64(n), eps)
            }
        }
    }

    /// `swiglu` of the first `count` elements into an existing buffer.
    public static func swiglu(_ g: [Float], _ u: [Float], count n: Int, limit: Float, into y: inout [Float], pool: ThreadPool? = nil) {
        precondition(g.count >= n && u.count >= n && y.count >= n)
        sy_swiglu_pool(pool?.raw, g, u, &y, Int64(n), limit)
    }

    /// Clamped SwiGLU: `min(silu(g), L) * clamp(u, -L, L)`, or plain `silu(g) * u` when L <= 1e-6; split over
    /// `pool`'s threads when given and the input is large, with the same bits.
    public static func swiglu(_ g: [Float], _ u: [Float], limit: Float, pool: ThreadPool? = nil) -> [Float] {
        precondition(g.count == u.count)
        return [Float](unsafeUninitializedCapacity: g.count) { buf, c in
            sy_swiglu_pool(pool?.raw, g, u, buf.baseAddress, Int64(g.count), limit)
            c = g.count
        }
    }

    /// NeoX RoPE in place on x[T, H·D]: rotates the first `rotaryDims` of each head by its token's position.
    public static func ropeNeox(_ x: inout [Float], heads: Int, headDim: Int, rotaryDims: Int, positions: [Int32],
                                base: Float, factors: [Float]?) {
        let stride = heads * headDim
        precondition(x.count >= positions.count * stride && rotaryDims <= headDim && rotaryDims <= 1024)
        precondition(factors == nil || factors!.count >= rotaryDims / 2)
        x.withUnsafeMutableBufferPointer { xp in
            for (t, p) in positions.enumerated() {
                if let f = factors {
                    f.withUnsafeBufferPointer {
                        sy_rope_neox(xp.baseAddress! + t * stride, Int64(heads), Int64(headDim), Int64(rotaryDims), p, base, $0.baseAddress)
                    }
                } else {
                    sy_rope_neox(xp.baseAddress! + t * stride, Int64(heads), Int64(headDim), Int64(rotaryDims), p, base, nil)
                }
            }
        }
    }

    /// Causal GQA attention of queries q[T, H·D] at `queryPositions` over cached k, v [N, Hk·D]
    /// at `keyPositions`. Returns [T, H·D].
    public static func attention(q: [Float], queryPositions: [Int32], k: [Float], v: [Float], keyPositions: [Int32],
                                 shape s: AttentionShape, pool: ThreadPool) -> [Float] {
        let t = queryPositions.count, n = keyPositions.count
        let qStride = s.heads * s.headDim, kvStride = s.kvHeads * s.headDim
        precondition(s.heads % s.kvHeads == 0 && q.count >= t * qStride && k.count >= n * kvStride && v.count >= n * kvStride)
        var out = [Float](repeating: 0, count: t * qStride)
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    keyPositions.withUnsafeBufferPointer { kpos in
                        queryPositions.withUnsafeBufferPointer { qpos in
                            out.withUnsafeMutableBufferPointer { op in
                                var a = sy_attn_args(
                                    q: qp.baseAddress, ldq: Int64(qStride), k: kp.baseAddress, v: vp.baseAddress,
                                    ldk: Int64(4 * kvStride), ldv: Int64(4 * kvStride), kv_type: Int32(GGMLType.f32.rawValue),
                                    kpos: kpos.baseAddress, n_kv: Int64(n),
                                    qpos: qpos.baseAddress, n_tok: Int64(t), n_head: Int64(s.heads),
                                    n_head_kv: Int64(s.kvHeads), head_dim: Int64(s.headDim), window: Int32(s.window),
                                    scale: s.scale, out: op.baseAddress, ldo: Int64(qStride))
                                sy_attention(pool.raw, &a)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Causal GQA attention over typed cached rows (F32, F16 or Q8_0 blocks): `k`, `v` point at N rows of
    /// `rowBytes` each, read in place. Returns [T, H·D].
    public static func attention(q: [Float], queryPositions: [Int32], k: UnsafeRawPointer, v: UnsafeRawPointer,
                                 rowBytes: Int, type: GGMLType, keyPositions: UnsafePointer<Int32>, count n: Int,
                                 shape s: AttentionShape, pool: ThreadPool) -> [Float] {
        var out = [Float](repeating: 0, count: queryPositions.count * s.heads * s.headDim)
        attention(q: q, queryPositions: queryPositions, rows: 0..<queryPositions.count, k: k, v: v, rowBytes: rowBytes, type: type,
                  keyPositions: keyPositions, count: n, shape: s, into: &out, pool: pool)
        return out
    }

    /// The typed-cache attention of query rows `rows` of q [T, H·D] (at those entries of `queryPositions`) into
    /// the same rows of `out` ([T, H·D] already): one sequence's rows of a batched pass, without copies.
    public static func attention(q: [Float], queryPositions: [Int32], rows: Range<Int>, k: UnsafeRawPointer, v: UnsafeRawPointer,
                                 rowBytes: Int, type: GGMLType, keyPositions: UnsafePointer<Int32>, count n: Int,
                                 shape s: AttentionShape, into out: inout [Float], pool: ThreadPool) {
        let t = rows.count, qStride = s.heads * s.headDim, r0 = rows.lowerBound
        precondition(s.heads % s.kvHeads == 0 && q.count >= rows.upperBound * qStride && out.count >= rows.upperBound * qStride
                     && queryPositions.count >= rows.upperBound)
        precondition(type == .f32 || type == .f16 || (type == .q8_0 && s.headDim % 32 == 0), "unsupported KV row type")
        q.withUnsafeBufferPointer { qp in
            queryPositions.withUnsafeBufferPointer { qpos in
                out.withUnsafeMutableBufferPointer { op in
                    var a = sy_attn_args(
                        q: qp.baseAddress! + r0 * qStride, ldq: Int64(qStride), k: k, v: v, ldk: Int64(rowBytes), ldv: Int64(rowBytes),
                        kv_type: Int32(type.rawValue), kpos: keyPositions, n_kv: Int64(n), qpos: qpos.baseAddress! + r0,
                        n_tok: Int64(t), n_head: Int64(s.heads), n_head_kv: Int64(s.kvHeads), head_dim: Int64(s.headDim),
                        window: Int32(s.window), scale: s.scale, out: op.baseAddress! + r0 * qStride, ldo: Int64(qStride))
                    sy_attention(pool.raw, &a)
                }
            }
        }
    }

    /// Rows `tokens` of an embedding table decoded into h [T, D] (its count set; storage kept).
    public static func embed(_ table: WeightMatrix, tokens: [Int32], into h: inout [Float]) {
        let d = table.cols
        h.setCount(tokens.count * d)
        h.withUnsafeMutableBufferPointer { hp in
            for (i, tok) in tokens.enumerated() {
                table.withRowBytes(Int(tok)) { sy_dequant_row(Int32(table.type.rawValue), $0.baseAddress, hp.baseAddress! + i * d, Int64(d)) }
            }
        }
    }
}
