// `switchyard cost --probe`: this machine's memory bandwidth and compute, measured with the engine's own
// kernels, as a hardware profile for the cost model.
import CostModel
import Foundation
import Kernels
import ModelKit

enum Probe {
    /// Seconds per call of `body`, the best of `reps` after one warm-up.
    static func best(_ reps: Int, _ body: () -> Void) -> Double {
        body()
        var b = Double.infinity
        for _ in 0..<reps {
            let t0 = DispatchTime.now()
            body()
            b = min(b, secondsSince(t0))
        }
        return b
    }

    /// Measures read bandwidth (an F32 decode matmul over a 256 MiB weight: every byte read once per call)
    /// and F32 compute (a 2048 x 2048 weight against 256 tokens), with `threads` kernel threads.
    static func measure(threads: Int) -> (bandwidth: Double, flops: Double) {
        let pool = ThreadPool(threads: threads)
        var g = SplitMix64(seed: 11)
        let n = 8192
        let big = WeightMatrix(rows: n, cols: n, floats: (0..<(n * n)).map { _ in Float(g.nextUnit()) })
        let x = (0..<n).map { _ in Float(g.nextUnit()) }
        let tb = best(5) { _ = Ops.matmul(big, x, tokens: 1, pool: pool) }
        let m = 2048, t = 256
        let w = WeightMatrix(rows: m, cols: m, floats: (0..<(m * m)).map { _ in Float(g.nextUnit()) })
        let xs = (0..<(m * t)).map { _ in Float(g.nextUnit()) }
        let tf = best(3) { _ = Ops.matmul(w, xs, tokens: t, pool: pool) }
        return (Double(n * n * 4) / tb, 2 * Double(m * m * t) / tf)
    }
}
