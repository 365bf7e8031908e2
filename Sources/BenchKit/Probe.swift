// `switchyard cost --probe`: this machine's memory bandwidth and compute, measured with the engine's own
// kernels, as a hardware profile for the cost model.
import CostModel
import Foundation
import Kernels
import ModelKit
import Cluster

public enum Probe {
    /// Seconds per call of `body`, the best of `reps` after one warm-up.
    public static func best(_ reps: Int, _ body: () -> Void) -> Double {
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
    public static func measure(threads: Int) -> (bandwidth: Double, flops: Double) {
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

    /// The int8 multiply-add issue rate of the kernel path on `threads` threads, in products per second: a
    /// register-only loop of the path's int8 multiply-add (`vpmaddubsw` on AVX2, `vpdpbusd` with AVX-512 VNNI),
    /// the ceiling any int8 kernel here can reach (real ones also load, widen, sign and scale).
    public static func int8Peak(threads: Int) -> Double {
        let pool = ThreadPool(threads: threads)
        let iters = 2_000_000
        var products = 0
        let t = best(3) { products = pool.int8ProbeProducts(iterations: iters) }
        return Double(products) / t
    }

    /// Seconds one small kernel call costs on `threads` threads: a 64 x 64 F32 decode matmul, whose
    /// 16 KiB of weight reads take well under a microsecond, so the time is the pool's dispatch and join.
    public static func callOverhead(threads: Int) -> Double {
        let pool = ThreadPool(threads: threads)
        var g = SplitMix64(seed: 12)
        let w = WeightMatrix(rows: 64, cols: 64, floats: (0..<4096).map { _ in Float(g.nextUnit()) })
        let x = (0..<64).map { _ in Float(g.nextUnit()) }
        let reps = 2000
        // The median of 9 batches: a batch hit by a context switch on a busy machine does not count.
        var batches: [Double] = []
        for _ in 0..<9 {
            let t0 = DispatchTime.now()
            for _ in 0..<reps { _ = Ops.matmul(w, x, tokens: 1, pool: pool) }
            batches.append(secondsSince(t0) / Double(reps))
        }
        return batches.sorted()[4]
    }

    /// This machine as a cost-model hardware profile: measured bandwidth, F32 compute and call overhead;
    /// capacity from /proc/meminfo; no price (pass --price) and no network.
    public static func profile(threads: Int) -> HardwareProfile {
        let r = measure(threads: threads)
        let total = Double(procKiB("/proc/meminfo", "MemTotal") ?? 0) * 1024
        return HardwareProfile(
            name: "measured", pricePerHour: 0, flopsF32: r.flops, memoryBandwidth: r.bandwidth, memoryCapacity: total,
            callOverhead: callOverhead(threads: threads), source: "switchyard cost --probe on this machine (\(threads) threads)")
    }
}
