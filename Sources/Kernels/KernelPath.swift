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

    /// Row `row` of a Q8_0 or Q4_0 matrix against `tokens` quantized activation rows (at most 4) on `path`,
    /// or on the plain reference.
    public static func quantizedDot(_ w: WeightMatrix, row: Int, q: [Int8], d: [Float], tokens: Int, path: KernelPath?) -> [Float] {
        precondition(w.type == .q8_0 || w.type == .q4_0, "quantizedDot: Q8_0 or Q4_0 weights")
        precondition(tokens >= 1 && tokens <= 4 && q.count >= tokens * w.cols && d.count >= tokens * w.cols / 32)
        var out = [Float](repeating: 0, count: tokens)
        let p = w.address + row * w.rowBytes
        if let path {
            sy_qdot_row(Int32(path.rawValue), Int32(w.type.rawValue), p, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        } else {
            sy_qdot_ref(Int32(w.type.rawValue), p, Int64(w.cols), q, d, Int64(w.cols), Int32(tokens), &out)
        }
        return out
    }
}
