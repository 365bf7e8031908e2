// One forward pass over several sequences (continuous batching): every sequence in decode moves one step
// together, so the weights are read once for all of them, and one sequence still in its prompt rides along
// with its next prompt chunk (chunked prefill mixed with decode steps, so a long prompt does not stall the
// others). The engine's scheduler decides who is in flight; this file only runs the pass.
//
// Dimension legend: B sequences in a pass, T their tokens, D hidden, V vocabulary.
import Foundation
import ModelKit

extension SequenceRun {
    /// The sequences of the next pass, in order: every one in decode, then the first still in its prompt.
    public static func nextPass(_ runs: [SequenceRun]) -> [SequenceRun] {
        runs.filter { !$0.isPrefilling && !$0.isFinished } + (runs.first(where: \.isPrefilling).map { [$0] } ?? [])
    }

    /// Why the model would refuse this sequence's next pass (nil: it can run).
    public func refusal() -> ModelError? {
        nextInput().flatMap { model.refusal(SequenceInput($0, cache: cache, logits: selection)) }
    }

    /// Runs one pass over `runs` (each sequence's next input, with its own logits selection) and hands each
    /// its logits and hidden rows. Returns whether any sequence ran.
    @discardableResult
    public static func runPass(_ runs: [SequenceRun], model: Step35Model, _ ctx: PassContext) throws -> Bool {
        let v = model.config.vocabSize, d = model.config.embeddingLength
        let pass = runs.compactMap { r in r.nextInput().map { (run: r, input: $0) } }
        guard !pass.isEmpty else { return false }
        let out = try model.forward(pass.map { SequenceInput($0.input, cache: $0.run.cache, logits: $0.run.selection) }, ctx)
        var row = 0
        for (i, p) in pass.enumerated() {
            let n = p.input.count
            // One sequence takes the pass's hidden state as it is (no copy of the workspace's buffer).
            let hidden = pass.count == 1 ? out.hidden : Array(out.hidden[(row * d)..<((row + n) * d)])
            try p.run.consume(out.logits[i], hidden: hidden, vocab: v, ctx)
            row += n
        }
        return true
    }
}
