// Per-layer, per-expert routing counts: where tokens actually go. Recorded by the model's router (every
// routed (token, expert) pair), read by the bench's load columns and written as JSON for the topology
// tuner.
//
// Dimension legend: L layers (all main layers; dense ones stay zero), E routed experts per layer.
import Foundation

/// Routing counts over a window of tokens, safe to record from several sequences' threads.
public final class ExpertStats: @unchecked Sendable {
    /// Main layers and routed experts per layer.
    public let layers: Int, experts: Int
    private var counts: [Int]  // [L, E]
    private var routedTokens: [Int]  // [L]: tokens routed in each layer
    private let lock = NSLock()

    /// Empty counts for `layers` x `experts`.
    public init(layers: Int, experts: Int) {
        self.layers = layers
        self.experts = experts
        counts = [Int](repeating: 0, count: layers * experts)
        routedTokens = [Int](repeating: 0, count: layers)
    }

    /// Adds the routed experts of `tokens` tokens in `layer` (`chosen` holds each token's top-k ids).
    public func record(layer: Int, tokens: Int, chosen: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        guard layer >= 0 && layer < layers else { return }
        routedTokens[layer] += tokens
        for e in chosen where e >= 0 && Int(e) < experts { counts[layer * experts + Int(e)] += 1 }
    }

    /// Adds another window's counts (same shape) to these.
    public func add(_ other: ExpertStats) {
        precondition(other.layers == layers && other.experts == experts)
        let t = other.table, n = other.tokensPerLayer
        lock.lock()
        defer { lock.unlock() }
        for l in 0..<layers {
            routedTokens[l] += n[l]
            for e in 0..<experts { counts[l * experts + e] += t[l][e] }
        }
    }

    /// Clears the window.
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        for i in counts.indices { counts[i] = 0 }
        for i in routedTokens.indices { routedTokens[i] = 0 }
    }

    /// The counts so far, [L][E].
    public var table: [[Int]] {
        lock.lock()
        defer { lock.unlock() }
        return (0..<layers).map { Array(counts[($0 * experts)..<(($0 + 1) * experts)]) }
    }

    /// Tokens routed in each layer so far.
    public var tokensPerLayer: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return routedTokens
    }

    /// Layers that routed any token.
    public var activeLayers: [Int] { tokensPerLayer.indices.filter { tokensPerLayer[$0] > 0 } }

    /// Rows each of `workers` workers received per routed token and layer, averaged over the active layers,
    /// given `owners(layer, expert)` (a replicated expert's rows split evenly over its copies).
    public func workerLoad(workers: Int, owners: (Int, Int) -> [Int]) -> [Double] {
        let t = table, n = tokensPerLayer
        var load = [Double](repeating: 0, count: workers)
        let active = activeLayers
        for l in active {
            for e in 0..<experts where t[l][e] > 0 {
                let o = owners(l, e)
                for w in o where w < workers { load[w] += Double(t[l][e]) / Double(o.count) / Double(n[l]) }
            }
        }
        return load.map { $0 / Double(max(active.count, 1)) }
    }

    /// Largest over mean expert count per active layer, averaged over layers (1.0: perfectly even).
    public var expertImbalance: Double {
        let t = table, active = activeLayers
        guard !active.isEmpty else { return 0 }
        let r = active.map { l -> Double in
            let mean = Double(t[l].reduce(0, +)) / Double(experts)
            return mean > 0 ? Double(t[l].max()!) / mean : 0
        }
        return r.reduce(0, +) / Double(r.count)
    }
}

/// The `--expert-stats FILE` JSON: a window of routing counts, the input of `switchyard tune`.
public struct ExpertStatsFile: Codable, Sendable, Equatable {
    /// Format version (1).
    public var version = 1
    /// What produced the counts (model name or shape, and the command).
    public var source: String
    /// Main layers, routed experts per layer, experts each token uses.
    public var layers: Int, experts: Int, topK: Int
    /// Tokens routed in each layer (0 for dense layers).
    public var tokensPerLayer: [Int]
    /// counts[layer][expert]: (token, expert) pairs routed there.
    public var counts: [[Int]]

    /// A snapshot of `stats`.
    public init(_ stats: ExpertStats, source: String, topK: Int) {
        self.source = source
        layers = stats.layers
        experts = stats.experts
        self.topK = topK
        tokensPerLayer = stats.tokensPerLayer
        counts = stats.table
    }

    /// Writes the file (pretty, sorted keys).
    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: URL(fileURLWithPath: path))
    }

    /// Reads and checks a file: shapes must agree and counts be non-negative.
    public static func read(from path: String) throws -> ExpertStatsFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ExpertStatsError(description: "cannot read expert statistics \(path): \(error.localizedDescription)")
        }
        let f: ExpertStatsFile
        do { f = try JSONDecoder().decode(ExpertStatsFile.self, from: data) } catch {
            throw ExpertStatsError(description: "\(path) is not an expert-statistics file: \(error)")
        }
        guard f.layers > 0, f.experts > 0, f.topK > 0, f.topK <= f.experts, f.counts.count == f.layers, f.tokensPerLayer.count == f.layers,
              f.counts.allSatisfy({ $0.count == f.experts && $0.allSatisfy { $0 >= 0 } }), f.tokensPerLayer.allSatisfy({ $0 >= 0 })
        else {
            throw ExpertStatsError(description: "\(path): counts must be \(f.layers) layers x \(f.experts) experts of non-negative numbers, with top-k in 1...experts")
        }
        return f
    }
}

/// A malformed or unreadable expert-statistics file.
public struct ExpertStatsError: Error, CustomStringConvertible {
    public let description: String
}
