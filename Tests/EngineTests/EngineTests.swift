import Dispatch
@testable import Engine
import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Shared helpers: engines on the fixture models, requests run alone, events collected per request.
enum EngineFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    static func engine(_ model: String = "tiny-a-f32", parallel: Int = 1, maxQueue: Int = 256, budget: Int? = nil,
                       threads: Int = 2, prefixCache: Bool = true) throws -> Engine {
        var c = EngineConfig()
        c.parallel = parallel
        c.maxQueue = maxQueue
        c.kvBudget = budget
        c.prefixCache = prefixCache
        let open: () throws -> GGUFFile = model == "embedded"
            ? { try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)) } : { try GGUFFile(path: "\(directory)/\(model).gguf") }
        return try #require(try Engine.start(ModelSource(threads: threads, open: open), config: c))
    }

    /// Each request's tokens when it runs alone on a fresh engine without prefix caching.
    static func alone(_ requests: [InferenceRequest], model: String = "tiny-a-f32") throws -> [[Int32]] {
        let e = try engine(model, prefixCache: false)
        defer { e.shutdown() }
        return try requests.map { try e.generate([$0])[0].tokens }
    }
}

/// Collects a request's events from engine threads, with a way to wait for the n-th token.
final class Recorder: @unchecked Sendable {
    private let cond = NSCondition()
    private(set) var tokens: [Int32] = []
    private(set) var text = ""
    private(set) var completion: Completion?
    /// Order of events across requests (request index per event), for "who ran when" checks.
    let log: EventLog?
    let index: Int

    init(index: Int = 0, log: EventLog? = nil) {
        self.index = index
        self.log = log
    }

    var sink: EventSink {
        { [self] e in
            cond.withLock {
                switch e {
                case .tokens(let t):
                    tokens += t.tokens
                    text += t.text
                    log?.add(index, started: true)
                case .finished(let c):
                    text += c.text
                    completion = c
                    log?.add(index, started: false)
                }
                cond.broadcast()
            }
        }
    }

    /// Waits until `n` tokens (or the end) have arrived.
    func waitFor(tokens n: Int, timeout: Double = 60) -> Bool {
        cond.withLock {
            let deadline = Date().addingTimeInterval(timeout)
            while tokens.count < n && completion == nil { if !cond.wait(until: deadline) { return false } }
            return true
        }
    }

    /// Waits for the end.
    func waitForEnd(timeout: Double = 120) -> Completion? {
        cond.withLock {
            let deadline = Date().addingTimeInterval(timeout)
            while completion == nil { if !cond.wait(until: deadline) { return nil } }
            return completion
        }
    }
}

/// Which requests were running (had tokens, not finished) at each event, across requests.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var live = Set<Int>()
    private(set) var maxLive = 0
    private(set) var order: [(index: Int, started: Bool)] = []
    func add(_ i: Int, started: Bool) {
        lock.withLock {
            if started { live.insert(i) } else { live.remove(i) }
            maxLive = max(maxLive, live.count)
            order.append((i, started))
        }
    }
    var events: [(index: Int, started: Bool)] { lock.withLock { order } }
}

/// The engine's scheduler: staggered arrivals, cancellation, the queue and the KV budget.
@Suite(.serialized) struct EngineSchedulingTests {
    /// Eight greedy requests of different prompts and lengths, one with a prompt of 150 tokens (prefilled in
    /// chunks riding along the decode passes).
    static func requests(draft: Int) -> [InferenceRequest] {
        let long = (0..<150).map { Int32(($0 * 13 + 7) % 400 + 1) }
        let prompts: [[Int32]] = [[1, 2, 3], [4, 5], [7], [9, 9, 9, 9], long, [11, 300], [42], [5, 6, 7, 8, 9]]
        return prompts.enumerated().map { i, p in InferenceRequest(prompt: p, maxTokens: 10 + 4 * i, ignoreEOS: true, draft: draft) }
    }

    /// If this fails, a request admitted while others decode (continuous admission between passes, a long
    /// prompt's chunks mixed into decode passes, slots freed and refilled) gets different tokens from the ones
    /// it gets alone: 8 requests arrive in three waves, each wave while the earlier ones are decoding, at
    /// parallel 3 (so some also wait in the queue), plain and with 2 MTP drafts.
    @Test(arguments: [0, 2])
    func staggeredArrivalsMatchRunningAlone(draft: Int) throws {
        let reqs = Self.requests(draft: draft)
        let alone = try EngineFixtures.alone(reqs)
        let e = try EngineFixtures.engine(parallel: 3)
        defer { e.shutdown() }
        let rec = reqs.indices.map { Recorder(index: $0) }
        for wave in [0..<2, 2..<5, 5..<8] {
            for i in wave { _ = try e.submit(reqs[i], sink: rec[i].sink) }
            // The next wave arrives while this one decodes.
            #expect(rec[wave.lowerBound].waitFor(tokens: 3))
        }
        for (i, r) in rec.enumerated() {
            let c = try #require(r.waitForEnd())
            #expect(c.reason == .length)
            #expect(r.tokens == alone[i], "request \(i)")
        }
    }

    /// If this fails, cancelling a request mid-stream does not free its slot at once (a queued request
    /// waits for an unrelated one to finish) or disturbs the request decoding beside it: at parallel 2, A
    /// (400 tokens) and B (60) run and C waits; A is cancelled after 3 tokens, so C must start before B
    /// ends, B's tokens must be those it makes alone, and A must end `cancelled` with its 3+ tokens counted.
    @Test func cancelFreesTheSlotForAQueuedRequest() throws {
        let a = InferenceRequest(prompt: [1, 2, 3], maxTokens: 400, ignoreEOS: true)
        let b = InferenceRequest(prompt: [4, 5], maxTokens: 60, ignoreEOS: true)
        let c = InferenceRequest(prompt: [7], maxTokens: 10, ignoreEOS: true)
        let bAlone = try EngineFixtures.alone([b])[0]
        let e = try EngineFixtures.engine(parallel: 2)
        defer { e.shutdown() }
        let log = EventLog()
        let ra = Recorder(index: 0, log: log), rb = Recorder(index: 1, log: log), rc = Recorder(index: 2, log: log)
        let ida = try e.submit(a, sink: ra.sink)
        _ = try e.submit(b, sink: rb.sink)
        _ = try e.submit(c, sink: rc.sink)
        #expect(ra.waitFor(tokens: 3))
        #expect(e.snapshot().queued == 1)
        e.cancel(ida)
        let ca = try #require(ra.waitForEnd())
        #expect(ca.reason == .cancelled && ca.usage.completionTokens >= 3 && ca.usage.completionTokens < 400)
        _ = rb.waitForEnd()
        _ = rc.waitForEnd()
        #expect(rb.tokens == bAlone)
        let ev = log.events
        let cFirst = try #require(ev.firstIndex { $0.index == 2 && $0.started })
        let bEnd = try #require(ev.firstIndex { $0.index == 1 && !$0.started })
        #expect(cFirst < bEnd, "C waited for B to finish")
    }

    /// If this fails, a request past a full queue is accepted (or dropped silently) instead of refused
    /// with `queueFull`: one running, one waiting, `--max-queue 1`.
    @Test func fullQueueRefuses() throws {
        let e = try EngineFixtures.engine(parallel: 1, maxQueue: 1)
        defer { e.shutdown() }
        let r = InferenceRequest(prompt: [1, 2], maxTokens: 300, ignoreEOS: true)
        let first = Recorder(), second = Recorder()
        let id1 = try e.submit(r, sink: first.sink)
        #expect(first.waitFor(tokens: 1))
        let id2 = try e.submit(r, sink: second.sink)
        #expect(throws: EngineError.queueFull(limit: 1)) { try e.submit(r) { _ in } }
        e.cancel(id2)
        e.cancel(id1)
        #expect(second.waitForEnd()?.reason == .cancelled)
        #expect(first.waitForEnd()?.reason == .cancelled)
    }

    /// If this fails, a request whose KV cache could never fit the budget waits forever (or crashes
    /// later) instead of failing at once with the numbers.
    @Test func requestLargerThanTheBudgetFailsAtOnce() throws {
        let e = try EngineFixtures.engine(budget: 64 * 1024)
        defer { e.shutdown() }
        do {
            _ = try e.submit(InferenceRequest(prompt: [1, 2, 3], maxTokens: 4000)) { _ in }
            Issue.record("accepted")
        } catch let err as EngineError {
            guard case .kvDoesNotFit(let need, let budget, let positions) = err else { Issue.record("\(err)"); return }
            #expect(need > budget && budget == 64 * 1024 && positions == 4004)
            #expect("\(err)".contains("MiB") && "\(err)".contains("4004-position"))
        }
    }

    /// If this fails, requests whose KV together exceed the budget crash or run past it instead of
    /// queueing: four requests of 200 tokens with a budget for two at once, at parallel 4, must all finish
    /// with their tokens alone, never more than two decoding at a time.
    @Test func requestsBeyondTheBudgetQueueAndAllFinish() throws {
        let reqs = (0..<4).map { InferenceRequest(prompt: [Int32(1 + $0), 2], maxTokens: 200, ignoreEOS: true) }
        let alone = try EngineFixtures.alone(reqs)
        let probe = try EngineFixtures.engine(prefixCache: false)
        let one = probe.model.config.kvBytes(context: 2 + 200 + 1, type: .f32, maxPass: 2)
        probe.shutdown()
        let e = try EngineFixtures.engine(parallel: 4, budget: 2 * one + one / 2, prefixCache: false)
        defer { e.shutdown() }
        let log = EventLog()
        let rec = reqs.indices.map { Recorder(index: $0, log: log) }
        for (i, r) in reqs.enumerated() { _ = try e.submit(r, sink: rec[i].sink) }
        for (i, r) in rec.enumerated() {
            #expect(r.waitForEnd()?.reason == .length)
            #expect(r.tokens == alone[i])
        }
        #expect(log.maxLive <= 2)
        #expect(e.snapshot().kvUsed[0] <= e.kvBudget)
    }

    /// If this fails, a request that shares a prefix with a cached sequence it cannot continue in place waits
    /// forever when the budget cannot hold that sequence and its own reservation at once (the cached bytes
    /// were to be freed only by its admission). Found by the http fuzz harness (2026-12-02): the engine sat
    /// with nothing running and one request queued.
    @Test func aCachedPrefixTooBigToCopyIsDroppedNotWaitedFor() throws {
        let first = InferenceRequest(prompt: [1, 2, 3], maxTokens: 40, ignoreEOS: true)
        let second = InferenceRequest(prompt: [1, 2, 3, 7, 8], maxTokens: 80, ignoreEOS: true)
        let alone = try EngineFixtures.alone([second])[0]
        let probe = try EngineFixtures.engine(prefixCache: false)
        let kv = { (n: Int) in probe.model.config.kvBytes(context: n, type: .f32, maxPass: 2) }
        let budget = kv(100) + kv(44) / 2  // holds the second request, not it and the first's cached sequence
        probe.shutdown()
        let e = try EngineFixtures.engine(budget: budget)
        defer { e.shutdown() }
        _ = try e.generate([first])
        #expect(e.snapshot().cachedSequences == 1)
        let rec = Recorder()
        _ = try e.submit(second, sink: rec.sink)
        #expect(rec.waitForEnd(timeout: 60)?.reason == .length)
        #expect(rec.tokens == alone)
        #expect(e.snapshot().kvUsed[0] <= e.kvBudget)
    }

    /// If this fails, a bad request gets through to the model (or crashes it) instead of a typed error a
    /// server can answer with a 400.
    @Test func badRequestsGetTypedErrors() throws {
        let e = try EngineFixtures.engine()
        defer { e.shutdown() }
        let v = e.model.config.vocabSize
        #expect(throws: EngineError.emptyPrompt) { try e.submit(InferenceRequest(prompt: [])) { _ in } }
        #expect(throws: EngineError.tokenOutsideVocabulary(token: Int32(v), vocabulary: v)) {
            try e.submit(InferenceRequest(prompt: [1, Int32(v)])) { _ in }
        }
        #expect(throws: EngineError.draftTooDeep(asked: 4, mtpBlocks: 3)) { try e.submit(InferenceRequest(prompt: [1], draft: 4)) { _ in } }
        #expect(throws: EngineError.self) { try e.submit(InferenceRequest(prompt: [1], sampling: SamplingParams(temperature: -1))) { _ in } }
        var c = EngineConfig()
        c.contextSize = 16
        let small = try #require(try Engine.start(ModelSource(threads: 1) { try GGUFFile(path: "\(EngineFixtures.directory)/tiny-a-f32.gguf") }, config: c))
        defer { small.shutdown() }
        #expect(throws: EngineError.contextTooSmall(needed: 24, context: 16)) {
            try small.submit(InferenceRequest(prompt: [1, 2, 3], maxTokens: 20)) { _ in }
        }
        #expect(EngineError.contextTooSmall(needed: 24, context: 16).isClientError && !EngineError.queueFull(limit: 1).isClientError)
    }
}

/// An engine that was shut down lets go of what it held.
@Suite struct EngineLifetimeTests {
    /// If this fails, an engine that was shut down is never freed (its lane threads' closures held it, a
    /// cycle that LeakSanitizer reported as megabytes per engine): every engine a server restarts in process,
    /// or a test starts, would keep its model, KV caches and kernel pool for the life of the process.
    @Test func aShutDownEngineIsFreed() throws {
        weak var freed: Engine?
        do {
            let e = try EngineFixtures.engine()
            freed = e
            _ = try e.generate([InferenceRequest(prompt: [1, 2, 3], maxTokens: 4, ignoreEOS: true)])
            e.shutdown()
        }
        // A lane thread lets go of its Thread object as it exits, just after shutdown returns.
        let deadline = Date().addingTimeInterval(10)
        while freed != nil && Date() < deadline { usleep(10_000) }
        #expect(freed == nil)
    }
}

/// A request the model refuses fails alone.
@Suite struct RequestFailureTests {
    /// If this fails, one bad sequence takes the others down (or is silently dropped): a job whose cache
    /// is too small for its output (the model refuses the pass that would overflow it) ends with an error
    /// naming the cause, the job beside it in the same passes keeps its tokens, and the lane goes on.
    @Test func aRefusedSequenceFailsAloneAndTheOthersContinue() throws {
        let e = try EngineFixtures.engine()
        defer { e.shutdown() }
        let store = CacheStore()
        let exec = LaneExecutor(head: 0, model: e.model, store: store, keepCaches: false)
        var bad = GenerationJob(id: 7, prompt: [1, 2, 3], nPredict: 20)
        bad.context = 8  // room for 8 positions, asked for 3 + 20
        let good = GenerationJob(id: 8, prompt: [4, 5], nPredict: 20)
        exec.apply(StepPlan(admit: [Admission(head: 0, job: bad, reuse: nil), Admission(head: 0, job: good, reuse: nil)], run: true))
        var reports: [SequenceReport] = []
        while exec.hasSequences {
            #expect(try exec.step(PassContext()))
            reports += exec.takeReports()
        }
        let failed = try #require(reports.first { $0.id == 7 && $0.ended })
        #expect(failed.error?.contains("context full") == true, "\(failed.error ?? "no error")")
        let goodTokens = reports.filter { $0.id == 8 }.flatMap(\.tokens).map(\.token)
        let alone = try EngineFixtures.alone([InferenceRequest(prompt: [4, 5], maxTokens: 20, ignoreEOS: true)])[0]
        #expect(reports.contains { $0.id == 8 && $0.ended && $0.error == nil })
        #expect(goodTokens == alone)
    }
}
