import Foundation
import GGUF
import Kernels
import ModelKit
import Testing

/// Deterministic test data.
struct Rand {
    var g: SplitMix64
    init(_ seed: UInt64) { g = SplitMix64(seed: seed) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in (Float(g.nextUnit()) * 2 - 1) * scale } }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) } }
}

/// Random but valid encoded weights of `type` ([rows, cols]); K-quant scales kept small and finite.
func randomWeights(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> WeightMatrix {
    WeightMatrix(type: type, rows: rows, cols: cols, bytes: randomWeightBytes(type, rows: rows, cols: cols, seed: seed))
}

/// The encoded bytes behind `randomWeights`.
func randomWeightBytes(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
    var r = Rand(seed)
    switch type {
    case .f32, .f16, .bf16, .q8_0, .q4_0:
        return Quantize.row(type, r.floats(rows * cols))
    default:
        var b = r.bytes(type.byteCount(elements: rows * cols))
        // Where each layout keeps its fp16 scales (random bytes there could be inf or NaN).
        let scaleOffsets: [Int] = switch type {
        case .q6_K: [208]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q5_0, .iq4_nl, .iq4_xs: [0]
        default: [0, 2]  // Q4_1, Q5_1, Q4_K, Q5_K
        }
        for blk in 0..<(rows * cols / type.blockSize) {
            for o in scaleOffsets {
                let h = Float16(Float(r.g.nextUnit()) * 0.01 + 0.001).bitPattern
                b[blk * type.blockBytes + o] = UInt8(h & 0xFF)
                b[blk * type.blockBytes + o + 1] = UInt8(h >> 8)
            }
        }
        return b
    }
}

/// Eight rows of `type` ([8, cols]): rows 0-3 random (`randomWeightBytes`), rows 4-7 with every weight at the
/// code of all-zero bits or Q8_0's -127 (the most negative value of Q8_0, Q4_0 and Q5_0, IQ4_NL's -127 level) under
/// scale 0.01: where an int16 sum of a tile kernel would overflow first.
func randomThenExtremeRows(_ type: GGMLType, cols: Int, seed: UInt64) -> [UInt8] {
    var b = randomWeightBytes(type, rows: 4, cols: cols, seed: seed)
    let h = Float16(0.01).bitPattern
    let block = [UInt8(h & 0xFF), UInt8(h >> 8)] + [UInt8](repeating: type == .q8_0 ? 0x81 : 0, count: type.blockBytes - 2)
    for _ in 0..<(4 * cols / 32) { b += block }
    return b
}

func maxRelErr(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(b.map(abs).max() ?? 1, 1e-6)
    return zip(a, b).map { abs($0 - $1) }.max()! / scale
}

@Suite struct MatmulTests {
    /// The float-activation path (QuantizedDotTests covers the quantized one).
    static let pool = ThreadPool(threads: 2, exact: true)

    /// If this fails, the fast matrix product for that weight type (fused AVX2 decode or the K-quant
    /// block path) disagrees with the plain reference at some batch size.
    @Test(arguments: GGMLType.supported, [1, 3, 4, 9])
    func fastMatchesReference(type: GGMLType, tokens: Int) {
        let rows = 37, cols = type.blockSize == 256 ? 512 : 96
        let w = randomWeights(type, rows: rows, cols: cols, seed: UInt64(type.rawValue) * 31 + UInt64(tokens))
        var r = Rand(7)
        let x = r.floats(tokens * cols)
        let fast = Ops.matmul(w, x, tokens: tokens, pool: Self.pool)
        let ref = Reference.matmul(w, x, tokens: tokens)
        #expect(maxRelErr(fast, ref) < 1e-5, "\(type) T=\(tokens)")
    }

    /// If this fails, float weights with rows that are not a multiple of the 32-wide vector loop
    /// (head dims like 24) are read past the row end or lose their tail.
    @Test(arguments: [GGMLType.f32, .f16, .bf16], [1, 5])
    func oddRowLengths(type: GGMLType, tokens: Int) {
        for cols in [1, 24, 48, 72, 300] {
            let w = randomWeights(type, rows: 5, cols: cols, seed: UInt64(cols))
            var r = Rand(UInt64(cols) + 1)
            let x = r.floats(tokens * cols)
            #expect(maxRelErr(Ops.matmul(w, x, tokens: tokens, pool: Self.pool), Reference.matmul(w, x, tokens: tokens)) < 1e-5,
                    "\(type) cols=\(cols)")
        }
    }

    /// If this fails, the multithreaded split of rows (or the serial pool) drops or duplicates rows.
    @Test func threadCountDoesNotChangeResult() {
        let w = randomWeights(.q8_0, rows: 301, cols: 256, seed: 5)
        var r = Rand(9)
        let x = r.floats(2 * 256)
        let one = Ops.matmul(w, x, tokens: 2, pool: .serial)
        let many = Ops.matmul(w, x, tokens: 2, pool: ThreadPool(threads: 3))
        #expect(one == many)
    }

    /// If this fails, the fused gate-and-up product (one region, each token quantized once for both halves)
    /// gives other bits than two grouped products, on the exact path and on the quantized one.
    @Test(arguments: [true, false])
    func fusedPairMatchesTwoGroupedProducts(exact: Bool) {
        let a = (0..<3).map { randomWeights(.q8_0, rows: 44, cols: 96, seed: UInt64($0)) }
        let b = (0..<3).map { randomWeights(.q8_0, rows: 44, cols: 96, seed: UInt64($0) + 10) }
        var r = Rand(6)
        let x = r.floats(7 * 96)
        let segs = [(start: 0, count: 1), (start: 1, count: 5), (start: 6, count: 1)]
        let pool = ThreadPool(threads: 2, exact: exact)
        let (ya, yb) = Ops.groupedMatmulPair(a, b, x, segments: segs, pool: pool)
        #expect(ya == Ops.groupedMatmul(a, x, segments: segs, pool: pool))
        #expect(yb == Ops.groupedMatmul(b, x, segments: segs, pool: pool))
    }

    /// If this fails, the MoE row gather or scatter moves a row to the wrong place or truncates it.
    @Test func gatherAndScatterRows() {
        var r = Rand(12)
        let d = 37, x = r.floats(5 * d)
        let index: [Int32] = [3, 0, 4, 1, 2]
        let g = Ops.gatherRows(x, index, width: d)
        for (k, i) in index.enumerated() { #expect(Array(g[(k * d)..<((k + 1) * d)]) == Array(x[(Int(i) * d)..<((Int(i) + 1) * d)])) }
        var back = [Float](repeating: 0, count: 5 * d)
        Ops.scatterRows(g, index, width: d, into: &back)
        #expect(back == x)
    }

    /// If this fails, grouped (per-expert) products write to the wrong rows or read the wrong expert (on
    /// the exact path, and on the quantized-activation path, which quantizes every job's tokens up front).
    @Test(arguments: [true, false])
    func groupedMatchesSeparate(exact: Bool) {
        let ws = (0..<3).map { randomWeights(.q4_0, rows: 40, cols: 64, seed: UInt64($0)) }
        var r = Rand(3)
        let x = r.floats(6 * 64)
        let segs = [(start: 0, count: 2), (start: 2, count: 3), (start: 5, count: 1)]
        let y = Ops.groupedMatmul(ws, x, segments: segs, pool: ThreadPool(threads: 2, exact: exact))
        let serial = ThreadPool(threads: 1, exact: exact)
        for (w, s) in zip(ws, segs) {
            let part = Ops.matmul(w, Array(x[(s.start * 64)..<((s.start + s.count) * 64)]), tokens: s.count, pool: serial)
            #expect(Array(y[(s.start * 40)..<((s.start + s.count) * 40)]) == part)
        }
    }

    /// If this fails, the fast row decoder (embedding lookup) disagrees with the reference dequantizer.
    @Test(arguments: GGMLType.supported)
    func rowDecodeMatchesReference(type: GGMLType) {
        let w = randomWeights(type, rows: 2, cols: 256, seed: 11)
        let ref = Reference.matmul(w, (0..<256).map { $0 == 5 ? 1 : 0 }, tokens: 1)
        #expect(abs(w.row(1)[5] - ref[1]) <= 1e-6 * max(1, abs(ref[1])))
    }
}

@Suite struct ElementwiseTests {
    /// If this fails, RMSNorm's scale (mean of squares + eps) or the weight multiply is wrong.
    @Test func rmsNorm() {
        var r = Rand(1)
        let x = r.floats(3 * 64, scale: 4), w = r.floats(64)
        #expect(maxRelErr(Ops.rmsNorm(x, weight: w, rows: 3, eps: 1e-5), Reference.rmsNorm(x, weight: w, rows: 3, eps: 1e-5)) < 1e-6)
    }

    /// If this fails, softmax is not normalised or not shift-invariant.
    @Test func softmax() {
        var r = Rand(2)
        var x = r.floats(50, scale: 20)
        let ref = Reference.softmax(x)
        Ops.softmax(&x)
        #expect(maxRelErr(x, ref) < 1e-6)
    }

    /// If this fails, the Step 3.5 clamp is applied to the wrong side (it bounds silu(g) above and u both ways).
    @Test(arguments: [Float(0), 0.5, 7])
    func swigluClamp(limit: Float) {
        var r = Rand(3)
        let g = r.floats(200, scale: 10), u = r.floats(200, scale: 10)
        let fast = Ops.swiglu(g, u, limit: limit), ref = Reference.swiglu(g, u, limit: limit)
        #expect(maxRelErr(fast, ref) < 1e-6)
        if limit > 0 { #expect(fast.allSatisfy { abs($0) <= limit * limit + 1e-4 }) }
        // A large gate saturates at L, a large up clamps at ±L.
        #expect(Reference.swiglu([100], [100], limit: 7) == [49])
        #expect(Reference.swiglu([100], [-100], limit: 7) == [-49])
    }

    /// If this fails, RoPE pairs the wrong dims (NeoX pairs i with i + n/2), ignores the partial width,
    /// or applies the rope_freqs divisors wrongly.
    @Test(arguments: [(16, 16, false), (16, 8, true), (32, 32, true)])
    func ropeNeox(headDim: Int, rot: Int, factors: Bool) {
        var r = Rand(4)
        var x = r.floats(3 * 2 * headDim)
        let pos: [Int32] = [0, 7, 1000]
        let f: [Float]? = factors ? (0..<(rot / 2)).map { 1 + Float($0) / 4 } : nil
        let ref = Reference.ropeNeox(x, heads: 2, headDim: headDim, rotaryDims: rot, positions: pos, base: 10000, factors: f)
        let orig = x
        Ops.ropeNeox(&x, heads: 2, headDim: headDim, rotaryDims: rot, positions: pos, base: 10000, factors: f)
        #expect(maxRelErr(x, ref) < 1e-4)
        // Dims past the rotary width pass through untouched; position 0 is the identity.
        for h in 0..<6 { for i in rot..<headDim { #expect(x[h * headDim + i] == orig[h * headDim + i]) } }
        #expect(Array(x[0..<(2 * headDim)]) == Array(orig[0..<(2 * headDim)]))
    }
}

@Suite struct AttentionTests {
    /// If this fails, GQA head grouping, causal masking or the softmax-weighted sum is wrong.
    @Test(arguments: [0, 3])
    func fastMatchesReference(window: Int) {
        var r = Rand(5)
        let s = AttentionShape(heads: 6, kvHeads: 2, headDim: 16, window: window, scale: 0.25)
        let n = 10, t = 4
        let k = r.floats(n * 2 * 16), v = r.floats(n * 2 * 16), q = r.floats(t * 6 * 16)
        let kp = (0..<n).map(Int32.init), qp: [Int32] = [6, 7, 8, 9]
        let fast = Ops.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s, pool: ThreadPool(threads: 2))
        let ref = Reference.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s)
        #expect(maxRelErr(fast, ref) < 1e-5)
    }

    /// If this fails, splitting the keys of one (token, KV head) into chunks across threads drops,
    /// duplicates or mis-weights a chunk in the merge: one decode token, one KV head of 6 query heads,
    /// 1,500 keys (several 256-key chunks) in ring order (positions not sorted), full and with a window
    /// that ends mid-chunk, over 1, 2, 3, 4 and 8 threads, must all match the reference.
    @Test(arguments: [1, 2, 3, 4, 8])
    func splitKeyChunksMatchReference(threads: Int) {
        var r = Rand(9)
        let n = 1500
        let k = r.floats(n * 32), v = r.floats(n * 32), q = r.floats(2 * 6 * 32)
        // A ring: slot i holds position (i + 700) % n, so chunks cover non-contiguous position ranges.
        let kp = (0..<n).map { Int32(($0 + 700) % n) }, qp: [Int32] = [Int32(n - 1), Int32(n - 2)]
        for window in [0, 333] {
            let s = AttentionShape(heads: 6, kvHeads: 1, headDim: 32, window: window, scale: 0.2)
            let fast = Ops.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s, pool: ThreadPool(threads: threads))
            let ref = Reference.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s)
            #expect(maxRelErr(fast, ref) < 1e-5, "window \(window)")
        }
    }

    /// If this fails, a pool's worker threads keep their kernel scratch after the pool is freed: each engine
    /// restart or short-lived pool leaks its workers' buffers (LeakSanitizer's report on `sy_scratch`,
    /// Docs/RELIABILITY.md). Decode attention over 1,500 keys on 4 threads gives every worker scratch; once
    /// the pool is freed (its workers joined), each worker's scratch must be among those freed.
    @Test func poolWorkersFreeTheirScratchWhenThePoolEnds() {
        var r = Rand(11)
        let n = 1500, s = AttentionShape(heads: 6, kvHeads: 1, headDim: 32, window: 0, scale: 0.2)
        let k = r.floats(n * 32), v = r.floats(n * 32), q = r.floats(6 * 32)
        var workers: [Int] = []
        do {
            let pool = ThreadPool(threads: 4)
            _ = Ops.attention(q: q, queryPositions: [Int32(n - 1)], k: k, v: v, keyPositions: (0..<n).map(Int32.init),
                              shape: s, pool: pool)
            workers = Array(pool.scratchIDs().dropFirst())  // [0] is this thread's, which lives on
            withExtendedLifetime(pool) { #expect(!workers.contains(where: ThreadPool.scratchFreed(id:))) }
        }
        #expect(workers.count == 3 && Set(workers).count == 3)
        for id in workers { #expect(ThreadPool.scratchFreed(id: id), "worker scratch \(id)") }
    }

    /// If this fails, the sliding window is off by one: key p0 must be visible to query p1 iff
    /// 0 <= p1 - p0 < window (the current token counts).
    @Test func windowIncludesCurrentToken() {
        let s = AttentionShape(heads: 1, kvHeads: 1, headDim: 1, window: 2, scale: 1)
        // Values are the key positions; equal scores make the output the mean of visible positions.
        let kp: [Int32] = [0, 1, 2, 3]
        let out = Ops.attention(q: [0], queryPositions: [3], k: [0, 0, 0, 0], v: [0, 1, 2, 3], keyPositions: kp,
                                shape: s, pool: .serial)
        #expect(out == [2.5])  // positions 2 and 3 only
        let full = Ops.attention(q: [0], queryPositions: [1], k: [0, 0, 0, 0], v: [0, 1, 2, 3], keyPositions: kp,
                                 shape: AttentionShape(heads: 1, kvHeads: 1, headDim: 1, window: 0, scale: 1), pool: .serial)
        #expect(full == [0.5])  // causal: positions 0 and 1
    }
}
