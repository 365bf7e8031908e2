// Continuous batching of sequences: up to `parallel` jobs in flight; each step, every sequence in decode
// moves one step together in a single pass (`Step35Model.forwardBatch`'s path), so the weights are read
// once for all of them, and one sequence still in its prompt rides along with its next prompt chunk
// (chunked prefill mixed with decode steps, so a long prompt does not stall the others). Finished sequences leave and queued jobs take their place. The single process and a cluster
// head's lane drive it the same way (Cluster/Lanes.swift).
//
// Dimension legend: B sequences in a pass, T their tokens, D hidden, V vocabulary.
import Foundation
import ModelKit

/// Jobs run with up to `parallel` sequences per decode pass.
public final class BatchedRuns {
    /// Sequences of the next pass and their input tokens.
    public typealias Pass = [(run: SequenceRun, input: [Int32])]

    private let model: Step35Model
    private let parallel: Int
    private var queue: ArraySlice<(index: Int, job: GenerationJob)>
    private var active: [(index: Int, run: SequenceRun)] = []
    private var done: [(index: Int, result: GenerationResult)] = []
    private let onToken: ((Int, Int32) -> Void)?

    /// Queues `jobs`; `onToken(job id, token)` streams every token.
    public init(_ jobs: [GenerationJob], parallel: Int, model: Step35Model, onToken: ((Int, Int32) -> Void)?) {
        self.model = model
        self.parallel = max(parallel, 1)
        queue = Array(jobs.enumerated().map { (index: $0.offset, job: $0.element) })[...]
        self.onToken = onToken
    }

    /// Results in job order (complete once `nextPass` has returned nil).
    public var results: [GenerationResult] { done.sorted { $0.index < $1.index }.map(\.result) }

    /// The next pass, or nil when every job is done: every sequence in decode, plus the first sequence
    /// still in its prompt (its next chunk).
    public func nextPass() -> Pass? {
        retireFinished()
        while active.count < parallel, let next = queue.popFirst() {
            let r = SequenceRun(next.job, model: model)
            if let f = onToken { let id = next.job.id; r.onToken = { f(id, $0) } }
            active.append((next.index, r))
            retireFinished()
        }
        guard !active.isEmpty else { return nil }
        let decoding = active.filter { !$0.run.isPrefilling }.map(\.run)
        let chosen = decoding + (active.first(where: { $0.run.isPrefilling }).map { [$0.run] } ?? [])
        return chosen.compactMap { r in r.nextInput().map { (run: r, input: $0) } }
    }

    /// Runs `pass` (with `experts` as the expert backend; nil: the model's own) and hands each sequence its
    /// logits and hidden rows.
    public func run(_ pass: Pass, experts: (any ExpertBackend)?) throws {
        let v = model.config.vocabSize, d = model.config.embeddingLength
        if pass.count == 1, let only = pass.first {
            let (logits, hidden) = try model.forwardHidden(only.input, cache: only.run.cache, logits: only.run.selection, experts: experts)
            only.run.consume(logits, hidden: hidden, vocab: v)
            return
        }
        // Each sequence's own selection: a prompt chunk its last row (or all, for prompt logits), a decode
        // step all its rows (the last token and its drafts).
        let out = try model.pass(pass.map { ($0.input, $0.run.cache) }, logits: pass.map { $0.run.selection }, experts: experts)
        var row = 0
        for (i, p) in pass.enumerated() {
            let n = p.input.count
            p.run.consume(out.logits[i], hidden: Array(out.hidden[(row * d)..<((row + n) * d)]), vocab: v)
            row += n
        }
    }

    private func retireFinished() {
        active.removeAll { a in
            guard a.run.isFinished else { return false }
            done.append((a.index, a.run.result))
            return true
        }
    }
}
