// What the scheduler (rank 0) and the executors (every head's lanes) tell each other once per step. In one
// process these values go straight across; under `mpiexec` the plan is broadcast on the lane's
// communicator and the reports are gathered back (EngineCluster.swift).
//
// Named communication points per lane step, in order: `plan` (Bcast of the plan's size, then its bytes),
// the MoE exchanges of the pass when `run`, then `reports` (Gather to rank 0).
import Foundation
import ModelKit
import Step35

/// A request placed on a head's lane, with the cached sequence (on that head) it may continue.
struct Admission: Codable {
    var head: Int
    var job: GenerationJob
    var reuse: Int?
}

/// An order for one head: cancel a running request, or drop a cached sequence.
struct HeadOrder: Codable, Hashable {
    var head: Int
    var id: Int
}

/// Rank 0's instructions for one lane's next step.
struct StepPlan: Codable {
    /// End the lane (the engine shuts down).
    var stop = false
    /// Drop these cached sequences first (room for the admissions), then cancel, then admit.
    var evict: [HeadOrder] = []
    var cancel: [HeadOrder] = []
    var admit: [Admission] = []
    /// Whether any head of the lane has a sequence to run: then every rank takes part in the pass's exchanges.
    var run = false
    /// The exchange probe's shape (rounds, rows, row bytes, combine bytes), instead of a pass.
    var probe: [Int32]?

    var isEmpty: Bool { !stop && evict.isEmpty && cancel.isEmpty && admit.isEmpty && !run && probe == nil }
}

/// What a head's cache keeps of a sequence that ended: positions held and the reservation's shape.
struct CachedInfo: Codable {
    var count: Int
    var bytes: Int
    var context: Int
    var maxPass: Int
    var type: KVType
    var mtp: Bool

    /// Whether `job` runs in these caches without a copy (`CachedSequence.fitsInPlace`, from rank 0's view).
    func fitsInPlace(_ job: GenerationJob) -> Bool {
        context >= job.contextSize && maxPass >= job.maxPass && type == job.kvType && (job.draft == 0 || mtp)
    }
}

/// One request's news from its head after a step.
struct SequenceReport: Codable {
    var id: Int
    /// Set on the step that admitted it: prompt positions taken from a cached sequence.
    var cachedTokens: Int?
    /// Tokens made in this step.
    var tokens: [EmittedToken] = []
    /// Set when it ended on the head: why (nil: cancelled), its timings and what the head cached of it.
    var ended = false
    var end: SequenceEnd?
    var promptSeconds = 0.0, decodeSeconds = 0.0
    var speculation = SpeculationStats(depth: 0)
    var cached: CachedInfo?
    /// Set when the sequence failed on its own (a bad request found by the model), not the whole engine.
    var error: String?
    /// Prompt logits: only filled on rank 0 (never sent).
    var logits: [Float]?

    enum CodingKeys: String, CodingKey {
        case id, cachedTokens, tokens, ended, end, promptSeconds, decodeSeconds, speculation, cached, error
    }
}
