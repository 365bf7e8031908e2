// Per-layer key/value cache: rows of Hk·D floats with the absolute position of each entry.
//
// Dimension legend: N cached entries, Hk KV heads, D head dim.

/// Keys and values of one attention layer, in insertion order.
public final class LayerKVCache {
    /// Floats per cached row (Hk·D).
    public let rowWidth: Int
    /// Keys, N rows of `rowWidth`.
    public private(set) var keys: [Float] = []
    /// Values, N rows of `rowWidth`.
    public private(set) var values: [Float] = []
    /// Absolute token position of each row.
    public private(set) var positions: [Int32] = []

    /// An empty cache reserving room for `capacity` rows.
    public init(rowWidth: Int, capacity: Int = 0) {
        self.rowWidth = rowWidth
        keys.reserveCapacity(capacity * rowWidth)
        values.reserveCapacity(capacity * rowWidth)
        positions.reserveCapacity(capacity)
    }

    /// Number of cached rows N.
    public var count: Int { positions.count }

    /// Appends T rows of keys and values ([T, Hk·D] each) at the given positions.
    public func append(keys k: [Float], values v: [Float], positions p: [Int32]) {
        precondition(k.count == p.count * rowWidth && v.count == k.count, "KV append: shape mismatch")
        keys.append(contentsOf: k)
        values.append(contentsOf: v)
        positions.append(contentsOf: p)
    }

    /// Drops every row after the first `n` (rollback).
    public func truncate(to n: Int) {
        guard n < count else { return }
        keys.removeLast((count - n) * rowWidth)
        values.removeLast((count - n) * rowWidth)
        positions.removeLast(count - n)
    }

    /// Drops every row at position `p` or later (rows are in position order).
    public func truncate(fromPosition p: Int32) {
        var n = count
        while n > 0 && positions[n - 1] >= p { n -= 1 }
        truncate(to: n)
    }

    /// Bytes held by keys and values.
    public var byteCount: Int { (keys.count + values.count) * MemoryLayout<Float>.size }
}
