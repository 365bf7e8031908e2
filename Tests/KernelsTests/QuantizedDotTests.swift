import Foundation
import GGUF
import Kernels
import ModelKit
import Testing

/// The quantized-activation path of Q8_0 and Q4_0 matmuls: every instruction-set path against the plain
/// reference, and the whole fast matmul against the exact float path within the activation rounding.
@Suite struct QuantizedDotTests {
    /// If this fails, an instruction-set path of the integer dot product computes something else than
    /// the plain reference (each block's integer sum times the two scales, plus the minimum times the block's
    /// activation sum for Q4_1 and Q5_1) for the 32-block weight types, for one to four tokens. Paths the CPU
    /// lacks are skipped (and named).
    @Test(arguments: [GGMLType.q8_0, .q4_0, .q5_0, .iq4_nl, .q4_1, .q5_1])
    func everyPathMatchesTheReference(type: GGMLType) {
        var r = Rand(11)
        let cols = 608, w = randomWeights(type, rows: 6, cols: cols, seed: 3)  // 19 blocks: the 4-block unroll and its tail
        let x = r.floats(4 * cols, scale: 3)
        let (q, d) = Ops.quantizeQ8(x)
        for path in KernelPath.allCases {
            guard KernelPath.available.contains(path) else {
                print("skip \(path): this CPU has \(KernelPath.detected)")
                continue
            }
            for row in 0..<6 {
                for t in 1...4 {
                    let fast = Ops.quantizedDot(w, row: row, q: q, d: d, tokens: t, path: path)
                    let ref = Ops.quantizedDot(w, row: row, q: q, d: d, tokens: t, path: nil)
                    #expect(maxRelErr(fast, ref) < 1e-5, "\(path) row \(row) tokens \(t): \(fast) vs \(ref)")
                }
            }
        }
    }

    /// If this fails, the four-row tile kernel of prefill and batches (rows transposed into 8-byte runs, the
    /// int16 sums of small weights, one scale vector per block) computes something else than four rows of
    /// the plain reference, for one to four tokens, on some path; weights at the extremes of each type's
    /// range (Q8_0 at -127, Q4_0 and Q5_0 at their most negative) are where an int16 sum would overflow.
    @Test(arguments: [GGMLType.q8_0, .q4_0, .q5_0, .iq4_nl])
    func tileMatchesTheReference(type: GGMLType) {
        var r = Rand(29)
        let cols = 320
        var w = randomWeights(type, rows: 8, cols: cols, seed: 41)
        if type != .iq4_nl {
            // Rows 4-7: every weight at the type's most negative value (scale 0.01), activations at full scale.
            w = WeightMatrix(type: type, rows: 8, cols: cols, bytes: randomThenExtremeRows(type, cols: cols, seed: 41))
        }
        var x = r.floats(4 * cols, scale: 3)
        for i in stride(from: 0, to: x.count, by: 7) { x[i] = -3 }
        let (q, d) = Ops.quantizeQ8(x)
        for path in KernelPath.available {
            for row in [0, 4] {
                for t in 1...4 {
                    let tile = Ops.quantizedTile(w, row: row, q: q, d: d, tokens: t, path: path)
                    let ref = Ops.quantizedTile(w, row: row, q: q, d: d, tokens: t, path: nil)
                    #expect(maxRelErr(tile, ref) < 1e-5, "\(type) \(path) rows \(row)+ tokens \(t)")
                }
            }
        }
    }

    /// If this fails, activation quantization is off: every value must come back within half a step of
    /// its block's scale, the scale must be the block's absolute maximum over 127 (rounded through fp16),
    /// and a block of zeros must stay zero.
    @Test func activationQuantizationRoundTrips() {
        var r = Rand(5)
        var x = r.floats(256, scale: 10)
        for i in 64..<96 { x[i] = 0 }
        let (q, d) = Ops.quantizeQ8(x)
        for b in 0..<8 {
            let amax = x[(32 * b)..<(32 * b + 32)].map(abs).max()!
            #expect(d[b] == Float(Float16(amax / 127)))
            for i in (32 * b)..<(32 * b + 32) {
                #expect(abs(Float(q[i]) * d[b] - x[i]) <= d[b] * 0.5 + amax * 2e-3, "x[\(i)]")
            }
        }
        #expect(d[2] == 0 && q[64..<96].allSatisfy { $0 == 0 })
    }

    /// If this fails, a thread that ran a quantized matmul keeps its quantized activations after it ends:
    /// each engine lane (or test thread) that ends leaks them (LeakSanitizer's report on `qdot.c`'s
    /// thread-local buffers, Docs/RELIABILITY.md). On a thread of its own, 3 tokens of 512 columns must put at
    /// least their 1,536 bytes of int8 values in the thread's kernel scratch, and that scratch must be freed
    /// once the thread ends.
    @Test func aThreadFreesItsQuantizedActivationsWhenItEnds() {
        final class Seen: @unchecked Sendable { var id = 0, before = 0, after = 0 }
        let seen = Seen(), done = DispatchSemaphore(value: 0)
        let t = Thread {
            let w = randomWeights(.q8_0, rows: 8, cols: 512, seed: 5)
            var r = Rand(6)
            let x = r.floats(3 * 512)
            (seen.id, seen.before) = ThreadPool.scratchOfThisThread
            _ = Ops.matmul(w, x, tokens: 3, pool: .serial)
            seen.after = ThreadPool.scratchOfThisThread.bytes
            done.signal()
        }
        t.start()
        done.wait()
        #expect(seen.after - seen.before >= 3 * 512)
        // The thread frees its scratch as it ends, just after the semaphore.
        let deadline = Date().addingTimeInterval(10)
        while !ThreadPool.scratchFreed(id: seen.id) && Date() < deadline { usleep(5_000) }
        #expect(ThreadPool.scratchFreed(id: seen.id))
    }

    /// If this fails, a fast matmul (quantized activations, the default) strays from the exact float path by
    /// more than activation rounding explains: per output, |fast - exact| must stay within the sum over
    /// activation blocks (32 for Q8_0 kinds, 256 for Q8_K) of the weights' absolute sum times half a step
    /// (amax / 127) plus the scale's rounding slack.
    @Test(arguments: [GGMLType.q8_0, .q4_0, .q5_0, .iq4_nl, .q4_1, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs])
    func fastMatmulIsExactUpToActivationRounding(type: GGMLType) {
        var r = Rand(8)
        let rows = 24, cols = 512, tokens = 3, block = type.blockSize == 256 ? 256 : 32
        let w = randomWeights(type, rows: rows, cols: cols, seed: 21)
        let x = r.floats(tokens * cols, scale: 2)
        let fast = Ops.matmul(w, x, tokens: tokens, pool: ThreadPool(threads: 2))
        let exact = Ops.matmul(w, x, tokens: tokens, pool: ThreadPool(threads: 2, exact: true))
        let dense = (0..<rows).map { w.row($0) }
        for t in 0..<tokens {
            let xt = Array(x[(t * cols)..<((t + 1) * cols)])
            for o in 0..<rows {
                var bound: Float = 1e-3 * max(1, abs(exact[t * rows + o]))
                for b in 0..<(cols / block) {
                    let amax = xt[(block * b)..<(block * b + block)].map(abs).max()!
                    bound += dense[o][(block * b)..<(block * b + block)].map(abs).reduce(0, +) * (amax / 127 * 0.5 + amax * 1e-3)
                }
                let diff = abs(fast[t * rows + o] - exact[t * rows + o])
                #expect(diff <= bound, "\(type) token \(t) row \(o): \(diff) > \(bound)")
            }
        }
        #expect(fast != exact, "the \(type) fast path did not run (outputs identical to exact)")
    }

    /// If this fails, a K-quant path (Q8_K activations: 256-blocks with group sums for Q4_K's and Q5_K's
    /// minimums; Q2_K's 16-value minimums and Q3_K's high bits in the kernel) computes something else than its
    /// plain reference on some instruction-set path, for one to four tokens.
    @Test(arguments: [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs])
    func kQuantPathsMatchTheReference(type: GGMLType) {
        var r = Rand(13)
        let cols = 768, w = randomWeights(type, rows: 5, cols: cols, seed: 4)
        let (q, d, s) = Ops.quantizeQ8K(r.floats(4 * cols, scale: 3), tokens: 4)
        for path in KernelPath.available {
            for row in 0..<5 {
                for t in 1...4 {
                    let fast = Ops.quantizedDotK(w, row: row, q: q, d: d, s: s, tokens: t, path: path)
                    let ref = Ops.quantizedDotK(w, row: row, q: q, d: d, s: s, tokens: t, path: nil)
                    #expect(maxRelErr(fast, ref) < 1e-5, "\(path) row \(row) tokens \(t): \(fast) vs \(ref)")
                }
            }
        }
    }
}
