// Per-sequence state of a Step 3.5 forward pass (its KV caches, and its rows in a batched pass) and the
// profile a pass can fill (where its time goes).
import Foundation
import Kernels
import ModelKit

/// One sequence's rows of a batched pass, and its cache.
struct PassSegment {
    let start: Int, count: Int
    /// The sequence's caches, one per main layer; or one cache for a single block (an MTP block's own).
    var cache: Step35Cache?
    var layer: LayerKVCache?
    /// The KV cache this segment's rows use in layer `il`.
    func kv(_ il: Int) -> LayerKVCache { layer ?? cache!.layers[il] }
}

/// Per-sequence state: one KV cache per main layer.
public final class Step35Cache {
    public let layers: [LayerKVCache]
    /// Positions the cache holds (0..<context).
    public let context: Int
    /// The most tokens one forward pass may carry (sliding-window rings are sized for it).
    public let maxPass: Int
    /// Position of the next token.
    public private(set) var nextPosition: Int = 0
    /// Element type of every layer.
    public let type: KVType

    init(blocks: [Step35Block], context: Int, type: KVType, maxPass: Int) {
        self.type = type
        self.context = context
        self.maxPass = maxPass
        layers = blocks.map { b in
            LayerKVCache(rowWidth: b.attention.kvHeads * b.attention.headDim, type: type, window: b.attention.window,
                         context: context, maxPass: maxPass)
        }
    }

    /// Forgets everything after the first `n` positions.
    public func truncate(to n: Int) {
        for l in layers { l.truncate(to: n) }
        nextPosition = min(nextPosition, n)
    }

    /// Fills positions 0..<n with random keys and values (a labelled synthetic context: attention then
    /// reads a cache of the right length and layout without an n-token prefill). Sliding-window rings get
    /// only the positions they would still hold.
    public func fillSynthetic(upTo n: Int, seed: UInt64 = 7) {
        var g = SplitMix64(seed: seed)
        for l in layers {
            let first = l.window > 0 ? max(0, n - l.capacity) : 0
            var p = first
            while p < n {
                let t = min(256, n - p)
                let k = (0..<(t * l.rowWidth)).map { _ in Float(g.nextUnit() * 2 - 1) }
                let v = (0..<(t * l.rowWidth)).map { _ in Float(g.nextUnit() * 2 - 1) }
                l.append(keys: k, values: v, positions: (p..<(p + t)).map { Int32($0) })
                p += t
            }
        }
        nextPosition = n
    }

    /// Bytes reserved for keys and values over all layers.
    public var byteCount: Int { layers.reduce(0) { $0 + $1.byteCount } }

    /// Whether rolling back to the first `n` positions keeps every key the next token needs in every layer.
    public func canRollBack(to n: Int) -> Bool { n <= nextPosition && layers.allSatisfy { $0.canRollBack(to: n) } }

    /// Copies the rows the first `n` positions leave for the next token (all of them in full layers, the
    /// window in sliding ones) from `other` and continues at position n.
    public func copyPrefix(_ n: Int, from other: Step35Cache) {
        for (mine, theirs) in zip(layers, other.layers) { mine.copyRows(from: theirs, positions: theirs.neededPositions(rollingBackTo: n)) }
        nextPosition = n
    }

    func advance(by n: Int) { nextPosition += n }
}

/// Where a forward pass spends its time: the attention kernel by layer kind (scores, softmax and the
/// weighted sum over the cache), and seconds per model component (the bench's breakdown).
public final class AttentionProfile: @unchecked Sendable {
    private let lock = NSLock()
    private var full = 0.0, sliding = 0.0, nFull = 0, nSliding = 0
    private var parts: [Step35Component: Double] = [:]
    /// Creates an empty profile.
    public init() {}
    /// Seconds and query tokens in the attention kernel, summed over layers of each kind.
    public var fullSeconds: Double { lock.withLock { full } }
    public var slidingSeconds: Double { lock.withLock { sliding } }
    public var fullTokens: Int { lock.withLock { nFull } }
    public var slidingTokens: Int { lock.withLock { nSliding } }
    /// Seconds per component, summed over layers and passes (readable while passes run).
    public var components: [Step35Component: Double] { lock.withLock { parts } }
    func add(window: Bool, tokens: Int, seconds: Double) {
        lock.withLock {
            if window { sliding += seconds; nSliding += tokens } else { full += seconds; nFull += tokens }
        }
    }
    /// Adds seconds to a component.
    public func add(_ c: Step35Component, seconds: Double) { lock.withLock { parts[c, default: 0] += seconds } }
    /// Clears the sums.
    public func reset() { lock.withLock { full = 0; sliding = 0; nFull = 0; nSliding = 0; parts = [:] } }
}

/// The parts of a decoding step the bench breaks time into.
public enum Step35Component: String, Sendable, CaseIterable, Codable {
    case attentionFull = "attn_full", attentionSWA = "attn_swa", denseFFN = "dense_ffn", router
    case experts = "routed_experts", shared = "shared_expert", lmHead = "lm_head", mtp = "mtp_draft", sampling
}
