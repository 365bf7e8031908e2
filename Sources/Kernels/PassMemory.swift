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
