// Which instruction-set path the kernels take, chosen at run time from cpuid (qdot.c), and the entry
// points tests use to run one path against its plain reference.
import CKernels
import Foundation

/// An instruction-set path of the kernels.
public enum KernelPath: Int, Sendable, CaseIterable, CustomStringConvertible {
    case scalar = 0, avx2, avx512

    /// The best path this CPU has.
    public static var detected: KernelPath { KernelPath(rawValue: Int(sy_isa_detected())) ?? .scalar }
    /// The path in use: the best, or lower when `SWITCHYARD_ISA` (scalar, avx2, avx512) asks for it.
    public static var current: KernelPath { KernelPath(rawValue: Int(sy_isa())) ?? .scalar }
    /// Forces a path for the whole process (clamped to the CPU's best); returns the one in use.
    @discardableResult
    public static func force(_ p: KernelPath) -> KernelPath { KernelPath(rawValue: Int(sy_set_isa(Int32(p.rawValue)))) ?? .scalar }
    /// The paths this CPU can run.
    public static var available: [KernelPath] { allCases.filter { $0.rawValue <= detected.rawValue } }

    /// "scalar", "avx2" or "avx512-vnni".
    public var description: String { String(cString: sy_isa_name(Int32(rawValue))) }

    /// A line for startup and bench headers: the path in use, and the CPU's best when lower.
    public static var summary: String {
        let c = current, d = detected
        return c == d ? "kernels: \(c)" : "kernels: \(c) (forced; CPU has \(d))"
    }
}

extension Ops {
    /// Q8_0-quantized activations: `x.count / 32` blocks of 32 int8 and one scale (rounded through fp16).
    public static func quantizeQ8(_ x: [Float]) -> (q: [Int8], d: [Float]) {
        precondition(x.count % 32 == 0)
        var q = [Int8](repeating: 0, count: x.count), d = [Float](repeating: 0, count: x.count / 32)
        sy_quantize_q8(x, Int64(x.count), &q, &d)
        return (q, d)
    }

    /// Row `row` of a Q8_0, Q4_0, Q5_0, IQ4_NL, Q4_1 or Q5_1 matrix against `tokens` quantized activation rows (at most 4) on `path`,
    /// or on the plain reference.
    public static func quantizedDot(_ w: WeightMatrix, row: Int, q: [Int8], d: [Float], tokens: Int, path: KernelPath?) -> [Float] {
        precondition(sy_q8_0_pairs(Int32(w.type.rawValue)) != 0, "quantizedDot: Q8_0, Q4_0, Q5_0, IQ4_NL, Q4_1 or Q5_1 weights")
        precondition(tokens >= 1 && tokens <= 4 && q.count >= tokens * w.cols && d.count >= tokens * w.cols / 32)
        var out = [Float](repeating: 0, count: tokens)
        let p = w.address + row * w.rowBytes
        if let path {
            let s = blockSums(q)
            sy_qdot_row(Int32(path.rawValue), Int32(w.type.rawValue), p, Int64(w.cols), q, d, s, Int64(w.cols), Int32(tokens), &out)
        } else {
            sy_qdot_ref(Int32(w.type.rawValue), p, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        }
        return out
    }
}

extension Ops {
    /// Rows `row ..< row + 4` of a Q8_0, Q4_0, Q5_0 or IQ4_NL matrix against `tokens` (at most 4) quantized
    /// activation rows, as the four-row tile kernel computes them on `path` (nil: the plain reference);
    /// element `4 * r + t` is row `row + r` against token `t`.
    public static func quantizedTile(_ w: WeightMatrix, row: Int, q: [Int8], d: [Float], tokens: Int, path: KernelPath?) -> [Float] {
        precondition(sy_qtile_takes(Int32(w.type.rawValue)) != 0 && row + 4 <= w.rows, "quantizedTile: four rows of Q8_0, Q4_0, Q5_0 or IQ4_NL weights")
        precondition(tokens >= 1 && tokens <= 4 && q.count >= tokens * w.cols && d.count >= tokens * w.cols / 32)
        var out = [Float](repeating: 0, count: 16)
        let p = w.address + row * w.rowBytes
        if let path {
            sy_qtile(Int32(path.rawValue), Int32(w.type.rawValue), p, w.rowBytes, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        } else {
            sy_qtile_ref(Int32(w.type.rawValue), p, w.rowBytes, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        }
        return (0..<4).flatMap { r in out[(4 * r)..<(4 * r + tokens)] }
    }

    /// Rows `row ..< row + 4` (row a multiple of 4) of a packed Q8_0, Q4_0, Q5_0, IQ4_NL, Q4_K or Q6_K matrix (`repacked()`) against
    /// `tokens` (at most 4) quantized activation rows, as the packed kernels compute them on `path` (nil: their plain
    /// reference); element `4 * r + t` is row `row + r` against token `t`.
    /// Q4_K and Q6_K take Q8_K activations with their group sums `s` (`quantizeQ8K`).
    public static func quantizedPacked(_ w: WeightMatrix, row: Int, q: [Int8], d: [Float], s: [Int16]? = nil, tokens: Int,
                                       path: KernelPath?) -> [Float] {
        precondition(w.packed && row % 4 == 0 && row + 4 <= w.rows, "quantizedPacked: a row group of a packed matrix")
        precondition(tokens >= 1 && tokens <= 4 && q.count >= tokens * w.cols && d.count >= tokens * w.cols / 32)
        precondition((w.type != .q4_K && w.type != .q6_K) || s != nil, "quantizedPacked: Q4_K and Q6_K need the Q8_K group sums")
        var out = [Float](repeating: 0, count: 16)
        let p = w.address + row * w.rowBytes
        let sums = s ?? blockSums(q)
        if let path {
            sy_qpack(Int32(path.rawValue), Int32(w.type.rawValue), p, Int64(w.cols), q, d, sums, Int64(w.cols), Int32(tokens), &out)
        } else if w.type == .q4_K {
            sy_qpack_q4k_ref(p, Int64(w.cols), q, d, sums, Int64(w.cols), Int32(tokens), &out)
        } else if w.type == .q6_K {
            sy_qpack_q6k_ref(p, Int64(w.cols), q, d, sums, Int64(w.cols), Int32(tokens), &out)
        } else {
            sy_qpack_ref(Int32(w.type.rawValue), p, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        }
        withExtendedLifetime(w) {}
        return (0..<4).flatMap { r in out[(4 * r)..<(4 * r + tokens)] }
    }

    /// The sum of each 32-value block of Q8_0 activations, as sy_matmul's quantizer keeps them (the Q4_0, Q5_0,
    /// Q4_1 and Q5_1 kernels read them).
    static func blockSums(_ q: [Int8]) -> [Int16] {
        (0..<(q.count / 32)).map { b in Int16(q[(32 * b)..<(32 * b + 32)].reduce(0) { $0 + Int($1) }) }
    }

    /// Q8_K-quantized activations of `tokens` rows of `cols` (the layout the K-quant paths read): per token
    /// `cols` int8, `cols / 32` slots of scales (the first `cols / 256` used) and `cols / 16` sums of 16-value groups.
    public static func quantizeQ8K(_ x: [Float], tokens: Int) -> (q: [Int8], d: [Float], s: [Int16]) {
        let cols = x.count / tokens
        precondition(cols % 256 == 0 && cols * tokens == x.count)
        var q = [Int8](repeating: 0, count: x.count), d = [Float](repeating: 0, count: x.count / 32)
        var s = [Int16](repeating: 0, count: x.count / 16)
        for t in 0..<tokens {
            x.withUnsafeBufferPointer { xp in
                q.withUnsafeMutableBufferPointer { qp in
                    d.withUnsafeMutableBufferPointer { dp in
                        s.withUnsafeMutableBufferPointer { sp in
                            sy_quantize_q8k(xp.baseAddress! + t * cols, Int64(cols), qp.baseAddress! + t * cols,
                                            dp.baseAddress! + t * cols / 32, sp.baseAddress! + t * cols / 16)
                        }
                    }
                }
            }
        }
        return (q, d, s)
    }

    /// Row `row` of a Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_XS matrix against `tokens` (at most 4) Q8_K activation rows on `path`, or on the
    /// plain reference.
    public static func quantizedDotK(_ w: WeightMatrix, row: Int, q: [Int8], d: [Float], s: [Int16], tokens: Int, path: KernelPath?) -> [Float] {
        precondition([.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs].contains(w.type) && tokens >= 1 && tokens <= 4 && q.count >= tokens * w.cols)
        var out = [Float](repeating: 0, count: tokens)
        let p = w.address + row * w.rowBytes
        if let path {
            sy_qdot_k_row(Int32(path.rawValue), Int32(w.type.rawValue), p, Int64(w.cols), q, d, s, Int64(w.cols), Int32(tokens), &out)
        } else {
            sy_qdot_k_ref(Int32(w.type.rawValue), p, Int64(w.cols), q, d, s, Int64(w.cols), Int32(tokens), &out)
        }
        return out
    }
}
