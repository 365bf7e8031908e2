import Foundation
import GGUF
import Kernels
import ModelKit
import Testing

/// Every kernel path this CPU has (scalar, AVX2, AVX-512 VNNI) through whole kernels: each test runs a pool
/// forced to one path (`ThreadPool(path:)`), so the paths of one binary are all exercised on a machine that
/// has them, side by side, without touching the process's own path. Paths the CPU lacks are not listed by
/// `KernelPath.available` (the run prints which were skipped).
@Suite struct KernelPathTests {
    static let paths: [KernelPath] = {
        let skipped = KernelPath.allCases.filter { !KernelPath.available.contains($0) }
        if !skipped.isEmpty { print("kernel paths skipped (this CPU has \(KernelPath.detected)): \(skipped)") }
        return KernelPath.available
    }()

    /// If this fails, the float-activation matmul of that path (the AVX2 fused decoders, the AVX2 block
    /// path of the K-quants, or the plain C loop a CPU without AVX2 runs) disagrees with the Swift
    /// reference for some weight type, for one token (decode) or several (prefill's token groups).
    @Test(arguments: GGMLType.supported)
    func floatMatmulOnEveryPath(type: GGMLType) {
        let rows = 19, cols = type.blockSize == 256 ? 512 : 96
        let w = randomWeights(type, rows: rows, cols: cols, seed: UInt64(type.rawValue) + 101)
        var r = Rand(17)
        for tokens in [1, 5] {
            let x = r.floats(tokens * cols)
            let ref = Reference.matmul(w, x, tokens: tokens)
            for path in Self.paths {
                let pool = ThreadPool(threads: 2, exact: true, path: path)
                #expect(pool.path == path)
                #expect(maxRelErr(Ops.matmul(w, x, tokens: tokens, pool: pool), ref) < 1e-5, "\(type) \(path) T=\(tokens)")
            }
        }
    }

    /// If this fails, a path's quantized-activation matmul (activation quantizer plus integer dot) gives
    /// another answer than the scalar path's: the integer sums are exact on every path, so only the float
    /// accumulation order may differ.
    @Test(arguments: GGMLType.supported.filter { [.q8_0, .q4_0, .q5_0, .iq4_nl, .q4_1, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs].contains($0) })
    func quantizedMatmulAgreesAcrossPaths(type: GGMLType) {
        let rows = 23, cols = type.blockSize == 256 ? 768 : 608
        let w = randomWeights(type, rows: rows, cols: cols, seed: UInt64(type.rawValue) + 7)
        var r = Rand(23)
        for tokens in [1, 6] {
            let x = r.floats(tokens * cols, scale: 2)
            let scalar = Ops.matmul(w, x, tokens: tokens, pool: ThreadPool(threads: 2, path: .scalar))
            for path in Self.paths where path != .scalar {
                let y = Ops.matmul(w, x, tokens: tokens, pool: ThreadPool(threads: 2, path: path))
                #expect(maxRelErr(y, scalar) < 1e-5, "\(type) \(path) T=\(tokens)")
            }
        }
    }

    /// If this fails, a path's attention (the blocked four-row scores and 64-wide value sums of AVX2, or
    /// the plain loops) disagrees with the reference: head dims 64 and 128 take the blocked kernels, 24
    /// the row-at-a-time ones, with and without a sliding window, over several key chunks.
    @Test(arguments: [24, 64, 128])
    func attentionOnEveryPath(headDim: Int) {
        var r = Rand(UInt64(headDim))
        let n = 600, t = 3
        let k = r.floats(n * 2 * headDim), v = r.floats(n * 2 * headDim), q = r.floats(t * 4 * headDim)
        let kp = (0..<n).map(Int32.init), qp: [Int32] = [597, 598, 599]
        for window in [0, 300] {
            let s = AttentionShape(heads: 4, kvHeads: 2, headDim: headDim, window: window, scale: 0.125)
            let ref = Reference.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s)
            for path in Self.paths {
                let fast = Ops.attention(q: q, queryPositions: qp, k: k, v: v, keyPositions: kp, shape: s,
                                         pool: ThreadPool(threads: 2, path: path))
                #expect(maxRelErr(fast, ref) < 1e-5, "D \(headDim) window \(window) \(path)")
            }
        }
    }
}
