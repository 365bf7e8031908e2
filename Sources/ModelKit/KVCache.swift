// Per-layer key/value cache with typed rows, reserved up front: every position for full-attention layers,
// a ring for sliding-window layers.
//
// References: ../shared/research/step35-architecture.md §4.2 (window includes the current token: SWA layers
// need `window` positions plus the current micro-batch) and §4.3 (sizing; Q8_0 = 34 bytes per 32 values).
// A row sits in slot `position % capacity`. A full layer's capacity is the context, so slots are positions;
// a sliding-window layer's capacity is `window + maxPass - 1`, the fewest slots with which a pass of up to
// `maxPass` tokens never overwrites a key that one of its own queries still sees, and a rollback of a
// pass's drafts never needs a key older than the window. Slots hold their position, or `empty`;
// attention masks by position, so slot order does not matter.
//
// Dimension legend: N slots, Hk KV heads, D head dim, T tokens appended.
import GGUF
import Kernels

/// Element type of the KV cache (`--kv-type`, as llama.cpp's `-ctk`/`-ctv`).
public enum KVType: String, Sendable, CaseIterable, Codable {
    case f32, f16
    /// Blocks of 32 int8 values with one F16 scale (ggml Q8_0): the "INT8 KV cache".
    case q8_0

    /// The GGML row type.
    public var ggml: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .q8_0: .q8_0
        }
    }

    /// Bytes of `n` values.
    public func bytes(_ n: Int) -> Int {
        switch self {
        case .f32: 4 * n
        case .f16: 2 * n
        case .q8_0: 34 * ((n + 31) / 32)
        }
    }
}

/// Keys and values of one attention layer.
public final class LayerKVCache: @unchecked Sendable {
    /// Marks a slot without a row.
    public static let empty = Int32.max
    /// Floats per row (Hk·D) and bytes per stored row.
    public let rowWidth: Int, rowBytes: Int
    /// Element type.
    public let type: KVType
    /// Sliding window (0: full attention).
    public let window: Int
    /// Slots reserved.
    public let capacity: Int
    private let keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer
    private let slotPositions: UnsafeMutablePointer<Int32>
    /// Slots ever written (attention scans these).
    public private(set) var used = 0
    /// Highest position held (-1: none), so a rollback touches only the slots it clears.
    private var highest: Int32 = -1

    /// Reserves a cache for positions 0..<context. A sliding-window layer keeps a ring of
    /// `window + maxPass - 1` slots (or fewer if the context is shorter).
    public init(rowWidth: Int, type: KVType = .f32, window: Int = 0, context: Int, maxPass: Int = 512) {
        precondition(type != .q8_0 || rowWidth % 32 == 0, "Q8_0 KV rows need a multiple of 32 values")
        self.rowWidth = rowWidth
        self.type = type
        self.window = window
        rowBytes = type.bytes(rowWidth)
        capacity = max(1, window > 0 ? min(context, window + max(maxPass, 1) - 1) : context)
        keys = .allocate(byteCount: capacity * rowBytes, alignment: 64)
        values = .allocate(byteCount: capacity * rowBytes, alignment: 64)
        // Touch every page now: the memory is reserved for the whole context, not found missing later.
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * rowBytes)
        values.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * rowBytes)
        slotPositions = .allocate(capacity: capacity)
        slotPositions.initialize(repeating: Self.empty, count: capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        slotPositions.deallocate()
    }

    /// Rows currently held.
    public var count: Int { (0..<used).reduce(0) { $0 + (slotPositions[$1] == Self.empty ? 0 : 1) } }

    /// Positions of the rows held, ascending.
    public var positions: [Int32] { (0..<used).map { slotPositions[$0] }.filter { $0 != Self.empty }.sorted() }

    /// Writes T rows of keys and values ([T, Hk·D] each) at their positions, encoding to the cache type.
    public func append(keys k: [Float], values v: [Float], positions p: [Int32]) {
        precondition(k.count == p.count * rowWidth && v.count == k.count, "KV append: shape mismatch")
        append(keys: k, values: v, positions: p, rows: 0..<p.count)
    }

    /// Writes rows `rows` of keys and values ([*, Hk·D] each) at those entries of `p`: one sequence's rows of a
    /// batched pass, without copies.
    public func append(keys k: [Float], values v: [Float], positions p: [Int32], rows: Range<Int>) {
        precondition(k.count >= rows.upperBound * rowWidth && v.count >= rows.upperBound * rowWidth && p.count >= rows.upperBound,
                     "KV append: shape mismatch")
        for i in rows {
            let pos = p[i]
            precondition(window > 0 || Int(pos) < capacity, "KV append: position \(pos) is past the context (\(capacity))")
            let slot = Int(pos) % capacity
            store(k[(i * rowWidth)..<((i + 1) * rowWidth)], at: keys + slot * rowBytes)
            store(v[(i * rowWidth)..<((i + 1) * rowWidth)], at: values + slot * rowBytes)
            slotPositions[slot] = pos
            used = max(used, slot + 1)
            highest = max(highest, pos)
        }
    }

    private func store(_ x: ArraySlice<Float>, at dst: UnsafeMutableRawPointer) {
        switch type {
        case .f32: x.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .f16, .q8_0:
            let b = Quantize.row(type.ggml, Array(x))
            b.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// Drops every row at position `p` or later (rollback of rejected drafts).
    public func truncate(fromPosition p: Int32) {
        // Positions p...highest sit in slots q % capacity (at most `capacity` of them): O(rows dropped).
        guard p <= highest else { return }
        var q = max(p, highest - Int32(capacity) + 1)
        while q <= highest {
            let slot = Int(q) % capacity
            if slotPositions[slot] == q { slotPositions[slot] = Self.empty }
            q += 1
        }
        highest = p - 1
    }

    /// Drops every row after the first `n` positions.
    public func truncate(to n: Int) { truncate(fromPosition: Int32(n)) }

    /// Positions the next query after a rollback to `n` positions still needs: all of 0..<n for a full
    /// layer, the last `window - 1` for a sliding-window layer (the window includes the query itself).
    public func neededPositions(rollingBackTo n: Int) -> Range<Int> {
        window > 0 ? max(0, n - window + 1)..<n : 0..<n
    }

    /// Whether a rollback to `n` positions leaves every key the next query needs (a ring may have
    /// overwritten older positions; prefix reuse must not silently attend to fewer keys).
    public func canRollBack(to n: Int) -> Bool {
        guard n <= Int(highest) + 1 else { return false }
        return neededPositions(rollingBackTo: n).allSatisfy { slotPositions[$0 % capacity] == Int32($0) }
    }

    /// Copies the stored rows of `positions` from `other` (same row type and width) into this cache, as they
    /// are (no re-encoding): a prefix moved into a larger reservation.
    public func copyRows(from other: LayerKVCache, positions: Range<Int>) {
        precondition(other.rowBytes == rowBytes && other.type == type, "KV copy: row layout differs")
        for pos in positions {
            let src = pos % other.capacity, dst = pos % capacity
            guard other.slotPositions[src] == Int32(pos) else { continue }
            precondition(window > 0 || pos < capacity, "KV copy: position \(pos) is past the context (\(capacity))")
            (keys + dst * rowBytes).copyMemory(from: other.keys + src * rowBytes, byteCount: rowBytes)
            (values + dst * rowBytes).copyMemory(from: other.values + src * rowBytes, byteCount: rowBytes)
            slotPositions[dst] = Int32(pos)
            used = max(used, dst + 1)
            highest = max(highest, Int32(pos))
        }
    }

    /// Keys and values decoded to floats, in slot order, with their positions (tests and debugging).
    public func decoded() -> (keys: [Float], values: [Float], positions: [Int32]) {
        var k: [Float] = [], v: [Float] = [], p: [Int32] = []
        for s in 0..<used where slotPositions[s] != Self.empty {
            k += Ops.dequantize(type.ggml, bytes: Array(UnsafeRawBufferPointer(start: keys + s * rowBytes, count: rowBytes)), count: rowWidth)
            v += Ops.dequantize(type.ggml, bytes: Array(UnsafeRawBufferPointer(start: values + s * rowBytes, count: rowBytes)), count: rowWidth)
            p.append(slotPositions[s])
        }
        return (k, v, p)
    }

    /// Attention of queries q [T, H·D] at `positions` over this cache, reading rows in place.
    public func attention(q: [Float], positions: [Int32], shape: AttentionShape, pool: ThreadPool) -> [Float] {
        Ops.attention(q: q, queryPositions: positions, k: keys, v: values, rowBytes: rowBytes, type: type.ggml,
                      keyPositions: slotPositions, count: used, shape: shape, pool: pool)
    }

    /// Attention of query rows `rows` of q [T, H·D] (at those entries of `positions`) over this cache into the
    /// same rows of `out` ([T, H·D] already).
    public func attention(q: [Float], positions: [Int32], rows: Range<Int>, shape: AttentionShape, into out: inout [Float],
                          pool: ThreadPool) {
        Ops.attention(q: q, queryPositions: positions, rows: rows, k: keys, v: values, rowBytes: rowBytes, type: type.ggml,
                      keyPositions: slotPositions, count: used, shape: shape, into: &out, pool: pool)
    }

    /// Bytes reserved for keys and values.
    public var byteCount: Int { 2 * capacity * rowBytes }
}
