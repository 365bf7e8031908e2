import Foundation
import GGUF
import Kernels
import ModelKit
import Testing

/// Weights repacked at load into four-row groups (`WeightMatrix.repacked()`, qpack.c): the layout round trip,
/// the kernels on every path against their plain reference bit for bit, the reference against the row kernels,
/// and the matmul on packed weights against the unpacked ones.
@Suite struct PackedKernelTests {
    static let types: [GGMLType] = [.q8_0, .q4_0, .q5_0, .iq4_nl]
    static let allPacked = types + [.q4_K, .q6_K]

    /// If this fails, packing loses or moves a byte: every row unpacked from the four-row layout must equal the
    /// GGUF row it came from (scales and values), and a packed matrix decodes to the same floats.
    @Test(arguments: allPacked)
    func packingRoundTrips(type: GGMLType) {
        let rows = 12, cols = type == .q4_K || type == .q6_K ? 512 : 160
        let bytes = randomWeightBytes(type, rows: rows, cols: cols, seed: 9)
        let w = WeightMatrix(type: type, rows: rows, cols: cols, bytes: bytes), p = w.repacked()
        #expect(p.packed && !w.packed && p.byteCount == w.byteCount)
        for r in 0..<rows {
            let back = p.withRowBytes(r) { Array($0) }
            #expect(back == Array(bytes[(r * w.rowBytes)..<((r + 1) * w.rowBytes)]), "\(type) row \(r)")
            #expect(p.row(r) == w.row(r))
        }
    }

    /// If this fails, a matrix the packed kernels cannot take was packed anyway (rows not a multiple of 4, or a
    /// type without a packed layout), and its rows would be read in the wrong layout.
    @Test func unpackableMatricesStayAsTheyAre() {
        #expect(!randomWeights(.q8_0, rows: 6, cols: 64, seed: 1).repacked().packed)
        #expect(!randomWeights(.q4_K, rows: 6, cols: 256, seed: 1).repacked().packed)
        #expect(!randomWeights(.q6_K, rows: 6, cols: 256, seed: 1).repacked().packed)
        #expect(!randomWeights(.q5_K, rows: 8, cols: 256, seed: 1).repacked().packed)
        #expect(!randomWeights(.q4_1, rows: 8, cols: 64, seed: 1).repacked().packed)
    }

    /// If this fails, a path's packed kernel (AVX2 or VNNI) gives other bits than the plain reference in the same
    /// order: the integer lane sums are exact everywhere, so every path must agree exactly, for one to four
    /// tokens, including weights at the extremes of their range (Q8_0 at -127, Q4_0 at -8, Q5_0 at -16) and activations
    /// at full scale, where an int16 sum would overflow.
    @Test(arguments: types)
    func everyPathMatchesThePackedReferenceBitForBit(type: GGMLType) {
        var r = Rand(31)
        let cols = 352
        let w = WeightMatrix(type: type, rows: 8, cols: cols, bytes: randomThenExtremeRows(type, cols: cols, seed: 5)).repacked()
        var x = r.floats(4 * cols, scale: 3)
        for i in stride(from: 0, to: x.count, by: 5) { x[i] = -3 }
        let (q, d) = Ops.quantizeQ8(x)
        for path in KernelPath.available {
            for row in [0, 4] {
                for t in 1...4 {
                    let fast = Ops.quantizedPacked(w, row: row, q: q, d: d, tokens: t, path: path)
                    let ref = Ops.quantizedPacked(w, row: row, q: q, d: d, tokens: t, path: nil)
                    #expect(fast == ref, "\(type) \(path) rows \(row)+ tokens \(t)")
                }
            }
        }
    }

    /// If this fails, the packed reference computes another product than the row reference on the unpacked
    /// weights (only the float summation order may differ: lanes of eight elements, then the two lanes of a row).
    @Test(arguments: types)
    func packedReferenceMatchesTheRowReference(type: GGMLType) {
        var r = Rand(37)
        let cols = 288
        let w = randomWeights(type, rows: 8, cols: cols, seed: 13), p = w.repacked()
        let (q, d) = Ops.quantizeQ8(r.floats(4 * cols, scale: 2))
        for row in [0, 4] {
            for t in 1...4 {
                let packed = Ops.quantizedPacked(p, row: row, q: q, d: d, tokens: t, path: nil)
                let rows = (0..<4).flatMap { rr in Ops.quantizedDot(w, row: row + rr, q: q, d: d, tokens: t, path: nil) }
                #expect(maxRelErr(packed, rows) < 1e-5, "\(type) rows \(row)+ tokens \(t)")
            }
        }
    }

    /// If this fails, a matmul on packed weights disagrees with the same matmul on the mapped layout: on a
    /// quantized pool within float reordering, and on an exact pool (which unpacks each row for the float path)
    /// bit for bit.
    @Test(arguments: allPacked)
    func packedMatmulMatchesTheMappedLayout(type: GGMLType) {
        var r = Rand(41)
        let rows = 44, cols = 512
        let w = randomWeights(type, rows: rows, cols: cols, seed: 17), p = w.repacked()
        for tokens in [1, 3, 9] {
            let x = r.floats(tokens * cols, scale: 2)
            let pool = ThreadPool(threads: 2), exact = ThreadPool(threads: 2, exact: true)
            #expect(maxRelErr(Ops.matmul(p, x, tokens: tokens, pool: pool), Ops.matmul(w, x, tokens: tokens, pool: pool)) < 1e-5,
                    "\(type) T=\(tokens)")
            #expect(Ops.matmul(p, x, tokens: tokens, pool: exact) == Ops.matmul(w, x, tokens: tokens, pool: exact), "\(type) exact T=\(tokens)")
        }
    }

    /// If this fails, a token's output from packed weights depends on the batch it came in: the packed kernels
    /// run one loop for any token count, so decode (one token) and a batch of nine must give the same bits.
    @Test(arguments: allPacked)
    func packedOutputsDoNotDependOnTheBatch(type: GGMLType) {
        var r = Rand(43)
        let rows = 20, cols = 256, tokens = 9
        let p = randomWeights(type, rows: rows, cols: cols, seed: 19).repacked()
        let pool = ThreadPool(threads: 2)
        let x = r.floats(tokens * cols, scale: 2)
        let batch = Ops.matmul(p, x, tokens: tokens, pool: pool)
        for t in 0..<tokens {
            let one = Ops.matmul(p, Array(x[(t * cols)..<((t + 1) * cols)]), tokens: 1, pool: pool)
            #expect(one == Array(batch[(t * rows)..<((t + 1) * rows)]), "\(type) token \(t)")
        }
    }

    /// If this fails, a packed K-quant kernel (Q4_K: four rows' runs as packed codes, their six-bit scales in one
    /// vpmaddwd per run, the minimums against the token's run sums; Q6_K: codes with their top bit pairs, int8
    /// scales per 16 values, the 32 off against the token's 16-value sums) gives other bits than its plain
    /// reference on some path, or another product than the row reference on the unpacked weights, for one to
    /// four tokens.
    @Test(arguments: [GGMLType.q4_K, .q6_K])
    func packedKQuantMatchesItsReferences(type: GGMLType) {
        var r = Rand(47)
        let cols = 512
        let w = randomWeights(type, rows: 8, cols: cols, seed: 23), p = w.repacked()
        #expect(p.packed)
        let (q, d, s) = Ops.quantizeQ8K(r.floats(4 * cols, scale: 3), tokens: 4)
        for row in [0, 4] {
            for t in 1...4 {
                let ref = Ops.quantizedPacked(p, row: row, q: q, d: d, s: s, tokens: t, path: nil)
                for path in KernelPath.available {
                    #expect(Ops.quantizedPacked(p, row: row, q: q, d: d, s: s, tokens: t, path: path) == ref, "\(path) rows \(row)+ tokens \(t)")
                }
                let rows = (0..<4).flatMap { rr in Ops.quantizedDotK(w, row: row + rr, q: q, d: d, s: s, tokens: t, path: nil) }
                #expect(maxRelErr(ref, rows) < 1e-5, "rows \(row)+ tokens \(t): \(ref) vs \(rows)")
            }
        }
    }
}
