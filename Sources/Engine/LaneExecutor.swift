// A head's side of one lane: the sequences the scheduler placed there, run one pass per step, and the
// cached sequences they leave behind (shared by the lanes of a process). Applies a plan in order
// (evictions, cancellations, admissions), runs the pass, and reports tokens and endings.
import Foundation
import ModelKit
import Step35

/// Cached sequences of one process (one head), by the id of the request that left them.
final class CacheStore: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [Int: CachedSequence] = [:]
    func put(_ id: Int, _ c: CachedSequence) { lock.withLock { entries[id] = c } }
    func take(_ id: Int) -> CachedSequence? { lock.withLock { entries.removeValue(forKey: id) } }
    /// Sequences held, and their bytes.
    var usage: (count: Int, bytes: Int) { lock.withLock { (entries.count, entries.values.reduce(0) { $0 + $1.byteCount }) } }
}

final class LaneExecutor {
    let head: Int
    let model: Step35Model
    let store: CacheStore
    /// Whether ended sequences leave their caches for later requests (prefix caching on).
    let keepCaches: Bool
    private var runs: [SequenceRun] = []
    /// Reports of this step so far, by request id.
    private var reports: [Int: SequenceReport] = [:]

    init(head: Int, model: Step35Model, store: CacheStore, keepCaches: Bool) {
        self.head = head
        self.model = model
        self.store = store
        self.keepCaches = keepCaches
    }

    /// Whether this head has a sequence to run on the lane.
    var hasSequences: Bool { !runs.isEmpty }

    /// Applies this head's part of `plan`.
    func apply(_ plan: StepPlan) {
        for e in plan.evict where e.head == head { _ = store.take(e.id) }
        for c in plan.cancel where c.head == head {
            if let i = runs.firstIndex(where: { $0.job.id == c.id }) { retire(runs.remove(at: i), end: nil) }
        }
        for a in plan.admit where a.head == head {
            let cached = a.reuse.flatMap { store.take($0) }
            let r = SequenceRun(a.job, model: model, reusing: cached)
            runs.append(r)
            report(a.job.id) { $0.cachedTokens = r.cachedTokens }
        }
    }

    /// Runs one pass over this head's sequences on the lane (decode steps plus one prompt chunk). A
    /// sequence the model refuses (`ModelError`, found before any compute or exchange) fails alone with
    /// its error and the others run; returns false when no pass ran (under a cluster the head still owes
    /// the lane its empty exchanges). Transport errors propagate: they end the engine.
    func step(_ ctx: PassContext) throws -> Bool {
        var pass = SequenceRun.nextPass(runs)
        guard !pass.isEmpty else { return false }
        for r in pass { if let e = r.refusal() { retire(r, end: nil, error: e.description) } }
        pass.removeAll { r in reports[r.job.id]?.error != nil }
        runs.removeAll { r in reports[r.job.id]?.error != nil }
        guard !pass.isEmpty else { return false }
        do {
            try SequenceRun.runPass(pass, model: model, ctx)
        } catch let e as ModelError {
            for r in pass { retire(r, end: nil, error: e.description) }
            runs.removeAll { r in pass.contains { $0 === r } }
            return false
        }
        for r in pass {
            let toks = r.takeEmitted()
            if !toks.isEmpty { report(r.job.id) { $0.tokens += toks } }
        }
        for r in runs where r.isFinished { retire(r, end: r.end) }
        runs.removeAll { $0.isFinished }
        return true
    }

    /// The step's reports (and clears them).
    func takeReports() -> [SequenceReport] {
        defer { reports = [:] }
        return reports.values.sorted { $0.id < $1.id }
    }

    /// Ends a sequence on this head: its result goes in the report and its caches into the store.
    private func retire(_ r: SequenceRun, end: SequenceEnd?, error: String? = nil) {
        let res = r.result
        var info: CachedInfo?
        if keepCaches, error == nil, let c = r.leaveCache() {
            store.put(r.job.id, c)
            info = CachedInfo(count: c.tokens.count, bytes: c.byteCount, context: c.cache.context, maxPass: c.cache.maxPass,
                              type: c.cache.type, mtp: c.mtpCache != nil)
        }
        report(r.job.id) {
            $0.tokens += r.takeEmitted()
            $0.ended = true
            $0.end = end
            $0.promptSeconds = res.promptSeconds
            $0.decodeSeconds = res.decodeSeconds
            $0.speculation = res.speculation
            $0.cached = info
            $0.logits = res.logits
            $0.error = error
        }
    }

    private func report(_ id: Int, _ f: (inout SequenceReport) -> Void) {
        var r = reports[id] ?? SequenceReport(id: id)
        f(&r)
        reports[id] = r
    }
}
