// The buffers of a forward pass, kept from pass to pass: decode allocates nothing in steady state.
//
// Each stage writes its named intermediate into a buffer here (`Ops.… into:`), sized for the pass with
// `setCount` (capacity kept), as llama.cpp reuses one compute buffer sized for its largest batch. One lane's
// passes use a workspace one at a time: the engine gives each lane its own, and `PassContext()` makes a fresh
// one (tests, tools). The MTP blocks run after the main pass and share the block buffers.
//
// Dimension legend: T tokens, D hidden, H query heads, Hk KV heads, Dh head dim, E experts, A active experts,
// F FFN width, R rows whose logits are wanted, V vocabulary.
import Kernels

/// A forward pass's intermediates, reused by the next pass on the same lane.
public final class Step35Workspace: @unchecked Sendable {
    /// The pass's tokens, their positions and each sequence's rows.
    var tokens: [Int32] = [], positions: [Int32] = []
    var segments: [PassSegment] = []
    /// The residual stream [T, D].
    var hidden: [Float] = []
    /// RMSNorm outputs ahead of attention and of the FFN [T, D].
    var attnIn: [Float] = [], ffnIn: [Float] = []
    /// Projections [T, H·Dh] / [T, Hk·Dh] (normed and rotated in place), attention output [T, H·Dh], head
    /// gates [T, H], output projection [T, D].
    var q: [Float] = [], k: [Float] = [], v: [Float] = []
    var attnOut: [Float] = [], headGate: [Float] = [], attnProj: [Float] = []
    /// SwiGLU gate, up and activation [T, F] (dense layers and the shared expert), the shared expert's output
    /// and the FFN's output [T, D].
    var mlpGate: [Float] = [], mlpUp: [Float] = [], mlpAct: [Float] = [], shared: [Float] = [], ffnOut: [Float] = []
    /// Router scores [T, E], chosen experts and their weights [T, A].
    var probs: [Float] = [], experts: [Int32] = [], weights: [Float] = []
    /// Rows whose logits are wanted, their hidden states and norms [R, D], the logits [R, V], and each
    /// sequence's logits as handed out.
    var logitRows: [Int32] = [], lastHidden: [Float] = [], lastNormed: [Float] = [], logits: [Float] = []
    var logitsOut: [[Float]] = []

    /// An empty workspace; buffers grow to the largest pass run with it.
    public init() {}
}
