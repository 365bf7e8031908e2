// Plain reference kernels: obvious loops, double accumulation, no threads.
// The fast kernels in `Ops` are tested against these; they are not used on the hot path.
//
// Dimension legend: T tokens, R output rows, C input columns, H query heads, Hk KV heads,
// D head dim, N cached keys.
import Foundation
import GGUF

/// Readable reference versions of every kernel in `Ops`.
public enum Reference {
    /// y[T, R] = x[T, C] · Wᵀ, with the weight decoded by the reference dequantizer.
    public static func matmul(_ w: WeightMatrix, _ x: [Float], tokens: Int) -> [Float] {
        var y = [Float](repeating: 0, count: tokens * w.rows)
        for r in 0..<w.rows {
            let row = w.withRowBytes(r) { Dequantize.row(w.type, $0, count: w.cols) }
            for t in 0..<tokens {
                var s = 0.0
                for c in 0..<w.cols { s += Double(row[c]) * Double(x[t * w.cols + c]) }
                y[t * w.rows + r] = Float(s)
            }
        }
        return y
    }

    /// RMSNorm per row: x / sqrt(mean(x²) + eps) * w.
    public static func rmsNorm(_ x: [Float], weight: [Float]?, rows: Int, eps: Float) -> [Float] {
        let n = x.count / rows
        var y = x
        for r in 0..<rows {
            var ss = 0.0
            for i in 0..<n { ss += Double(x[r * n + i]) * Double(x[r * n + i]) }
            let scale = 1 / (ss / Double(n) + Double(eps)).squareRoot()
            for i in 0..<n { y[r * n + i] = Float(Double(x[r * n + i]) * scale * Double(weight?[i] ?? 1)) }
        }
        return y
    }

    /// Softmax.
    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    /// SiLU.
    public static func silu(_ g: Float) -> Float { Float(Double(g) / (1 + exp(-Double(g)))) }

    /// Clamped SwiGLU, the Step 3.5 "SwigluStep": min(silu(g), L) * clamp(u, -L, L); plain when L <= 1e-6.
    public static func swiglu(_ g: [Float], _ u: [Float], limit: Float) -> [Float] {
        zip(g, u).map { g, u in
            limit > 1e-6 ? min(silu(g), limit) * min(max(u, -limit), limit) : silu(g) * u
        }
    }

    /// NeoX RoPE: pairs (i, i + n/2) of the first n = rotaryDims dims of each head rotate by
    /// pos · base^(-2i/n) / factor[i]; the remaining dims pass through.
    public static func ropeNeox(_ x: [Float], heads: Int, headDim: Int, rotaryDims n: Int, positions: [Int32],
                                base: Float, factors: [Float]?) -> [Float] {
        var y = x
        let half = n / 2
        for (t, p) in positions.enumerated() {
            for h in 0..<heads {
                let o = (t * heads + h) * headDim
                for i in 0..<half {
                    let theta = Double(p) * pow(Double(base), -2 * Double(i) / Double(n)) / Double(factors?[i] ?? 1)
                    let a = Double(x[o + i]), b = Double(x[o + i + half])
                    y[o + i] = Float(a * cos(theta) - b * sin(theta))
                    y[o + i + half] = Float(a * sin(theta) + b * cos(theta))
                }
            }
        }
        return y
    }

    /// Causal GQA attention; key p0 is visible to query p1 iff 0 <= p1 - p0 (< window when window > 0).
    public static func attention(q: [Float], queryPositions: [Int32], k: [Float], v: [Float], keyPositions: [Int32],
                                 shape s: AttentionShape) -> [Float] {
        let d = s.headDim, group = s.heads / s.kvHeads
        var out = [Float](repeating: 0, count: queryPositions.count * s.heads * d)
        for (t, p1) in queryPositions.enumerated() {
            for h in 0..<s.heads {
                let hk = h / group
                var scores: [(Int, Double)] = []
                for (j, p0) in keyPositions.enumerated() {
                    let dp = Int(p1) - Int(p0)
                    guard dp >= 0, s.window == 0 || dp < s.window else { continue }
                    var dot = 0.0
                    for i in 0..<d { dot += Double(q[(t * s.heads + h) * d + i]) * Double(k[(j * s.kvHeads + hk) * d + i]) }
                    scores.append((j, dot * Double(s.scale)))
                }
                guard let m = scores.map(\.1).max() else { continue }
                let z = scores.reduce(0) { $0 + exp($1.1 - m) }
                for (j, sc) in scores {
                    let p = exp(sc - m) / z
                    for i in 0..<d { out[(t * s.heads + h) * d + i] += Float(p * Double(v[(j * s.kvHeads + hk) * d + i])) }
                }
            }
        }
        return out
    }
}
