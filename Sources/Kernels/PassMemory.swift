// How the process's allocator treats the buffers of a forward pass.
//
// A prefill pass allocates arrays of T x D floats per layer (4 MiB and more at 512 tokens), above glibc's
// default mmap threshold: each came from a fresh mapping, and each of its pages faulted and was zeroed by
// the kernel on first touch, every layer (page faults and clear_page were 5-7% of a prefill profile). With a
// fixed threshold above them and a high trim threshold, freed pass buffers stay in the heap and the next
// layer reuses them. Weights do not go through malloc (they are mapped, or repacked into mappings of their
// own), so this touches only the pass's working memory.
import CKernels

/// The allocator policy for forward-pass buffers.
public enum PassMemory {
    /// Keeps freed buffers of up to 32 MiB (glibc's largest mmap threshold) in the heap for reuse, returning
    /// memory to the system only past 512 MiB free at the top of the heap. Idempotent; no-op off glibc.
    public static func keepFreedBuffers() { _ = applied }

    private static let applied: Bool = sy_keep_freed_buffers() == 1
}

/// Float arrays kept from pass to pass for the intermediates too large for the heap.
///
/// glibc maps every allocation of 32 MiB or more afresh (its mmap threshold cannot go higher), so an array
/// of [T·A, D] floats, the expert-ordered rows of a MoE layer at 512 tokens, page-faulted and was zeroed
/// over its whole size at every layer, while the pool's other threads waited (a serial 15% of a prefill
/// profile). A slot keeps its largest array, as llama.cpp keeps a compute buffer sized for its largest batch.
/// One pass uses an instance at a time (the engine gives each lane its own).
public final class ScratchArrays: @unchecked Sendable {
    private var slots: [[Float]]

    /// Creates `count` empty slots.
    public init(slots count: Int) { slots = Array(repeating: [], count: count) }

    /// Runs `body` with slot `i`'s array holding at least `count` floats (contents unspecified).
    public func with<R>(_ i: Int, count: Int, _ body: (inout [Float]) throws -> R) rethrows -> R {
        var a: [Float] = []
        swap(&a, &slots[i])
        defer { swap(&a, &slots[i]) }
        if a.count < count { a = []; a = [Float](repeating: 0, count: count) }
        return try body(&a)
    }
}

extension Array where Element: ExpressibleByIntegerLiteral {
    /// Sets the count to `n`, keeping the storage: a pass's buffer sized for this pass without allocating
    /// once it has held as many. Elements kept keep their values, new ones are zero.
    @inlinable public mutating func setCount(_ n: Int) {
        if n < count { removeLast(count - n) } else if n > count { append(contentsOf: repeatElement(0, count: n - count)) }
    }
}
