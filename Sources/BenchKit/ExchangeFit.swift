// The expert exchange's cost line, t = alpha + bytes / beta, fitted to `switchyard bench-exchange`'s rows:
// the alpha and beta (latency and bandwidth) that `switchyard cost --network-latency/--network-bandwidth` take.
import Foundation

/// One measured shape.
public struct ExchangeRow: Codable, Sendable {
    public var tokens, rowsPerWorker, bytesOut, bytesBack, rounds: Int
    /// Median seconds of one layer's exchange.
    public var seconds: Double

    /// Creates a row.
    public init(tokens: Int, rowsPerWorker: Int, bytesOut: Int, bytesBack: Int, rounds: Int, seconds: Double) {
        self.tokens = tokens
        self.rowsPerWorker = rowsPerWorker
        self.bytesOut = bytesOut
        self.bytesBack = bytesBack
        self.rounds = rounds
        self.seconds = seconds
    }
}

/// t = alpha + bytes / beta with alpha measured (the latency row) and 1/beta by least squares weighted by
/// 1/t^2, so small and large rows count alike.
public struct ExchangeFit: Sendable {
    /// Seconds per layer with no bytes, bytes per second, and the worst |fit - measured| / measured.
    public var alpha = 0.0, beta = 0.0, worstResidual = 0.0

    /// Fits the rows' slope, given the measured latency `alpha`.
    public init(_ rows: [ExchangeRow], alpha a: Double) {
        alpha = a
        let pts = rows.map { (x: Double($0.bytesOut + $0.bytesBack), y: $0.seconds, w: 1 / ($0.seconds * $0.seconds)) }
        let sxx = pts.reduce(0) { $0 + $1.w * $1.x * $1.x }, sxy = pts.reduce(0) { $0 + $1.w * $1.x * ($1.y - a) }
        guard sxx > 0, sxy > 0 else { return }
        let slope = sxy / sxx
        beta = 1 / slope
        worstResidual = pts.map { abs(a + $0.x * slope - $0.y) / $0.y }.max() ?? 0
    }
}
