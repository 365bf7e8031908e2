// The engine: a long-running service over one model, in one process or as rank 0 of a cluster. Requests
// are submitted at any time and stream their tokens back; the scheduler admits them between passes.
//
// Threads: one compute thread per lane (one in a single process, `micro_batches` under a topology), never
// Swift's cooperative pool. Each runs: plan (under the lock) -> [broadcast] -> apply + pass -> [gather]
// -> deliver events (under the lock). A lane with nothing to do sleeps on a condition; under a cluster it
// wakes every few seconds for an empty step, so a rank lost while idle is found without a request.
import Foundation
import Cluster
import GGUF
import ModelKit
import Step35
import SwiftMPI
import Tokenizer

/// How the engine schedules and what it may hold.
public struct EngineConfig: Sendable {
    /// Sequences decoded together in one pass, per lane of each head (llama-server's `--parallel`).
    public var parallel = 1
    /// Requests that may wait for a slot; more are refused (`--max-queue`).
    public var maxQueue = 256
    /// Total positions shared by the slots (llama-server's `-c` with `-np`); 0: the model's context per
    /// sequence, and a budget from the memory available.
    public var contextSize = 0
    /// KV budget in bytes per head, overriding the one `contextSize` implies (`--kv-budget`).
    public var kvBudget: Int?
    public var kvType: KVType = .f32
    /// Most prompt tokens per pass (`--ubatch-size`).
    public var ubatch = 512
    /// Keep finished sequences' KV for later requests that share their prefix.
    public var prefixCache = true
    /// Observers handed to every pass on this process (read them while the engine runs).
    public var profile: AttentionProfile?
    public var debugHook: DebugHook?
    /// Record routing counts (per layer, per expert) of every pass on rank 0 (`Engine.expertStats`).
    public var recordExpertStats = false

    /// Default settings.
    public init() {}
}

/// The engine's state, for metrics and `/slots`.
public struct EngineSnapshot: Sendable {
    /// Running requests per (head, lane), and slots per lane of each head.
    public var running: [(id: Int, head: Int, lane: Int, generated: Int)]
    public var slotsPerLane: Int
    public var queued: Int
    /// KV bytes in use (running + cached) and the budget, per head; cached sequences and their bytes.
    public var kvUsed: [Int]
    public var kvBudget: Int
    public var cachedSequences: Int
    public var cachedBytes: Int
    /// Requests finished, and tokens generated, since start.
    public var served: Int
    public var generatedTokens: Int
    /// Under a topology: rows dispatched to each worker so far (rank 0's lanes) and each worker's expert
    /// compute seconds (reported every step).
    public var rowsPerWorker: [Int]
    public var workerComputeSeconds: [Double]
}

/// A long-running inference engine.
public final class Engine: @unchecked Sendable {
    /// The model file, the model and its tokenizer (nil when the file has no usable one).
    public let file: GGUFFile
    public let model: Step35Model
    public let tokenizer: BPETokenizer?
    public let config: EngineConfig
    /// The cluster session under a topology (rank 0's view).
    public let session: ClusterSession?
    /// Positions one sequence may have (`-c`; unbounded without it, within the KV budget), and the KV budget
    /// per head in bytes.
    public let contextLimit: Int
    public let kvBudget: Int
    /// Routing counts of rank 0's passes when `recordExpertStats` (readable while running).
    public let expertStats: ExpertStats?
    let scheduler: Scheduler
    let lock = NSCondition()
    let store = CacheStore()
    private var lanes: [Thread] = []
    private var executors: [LaneExecutor] = []
    /// Each lane's in-process experts (their scratch arrays stay with the lane between passes).
    private var localExperts: [LocalExperts] = []
    /// Each lane's forward-pass buffers (a lane's passes run one at a time).
    private var workspaces: [Step35Workspace] = []
    private var stopping = false, finished = false
    private var lanesRunning = 0
    /// The first fatal error (a lost rank), if any.
    private(set) var failure: Error?
    /// A probe of the exchange waiting for lane 0, and its result.
    private var probe: (shape: [Int32], result: Double?)?
    var workerCompute: [Double] = []

    init(file: GGUFFile, model: Step35Model, config: EngineConfig, session: ClusterSession?) throws {
        self.file = file
        self.model = model
        tokenizer = try? BPETokenizer(gguf: file)
        self.config = config
        self.session = session
        expertStats = config.recordExpertStats ? ExpertStats(layers: model.config.layerCount, experts: model.config.expertCount) : nil
        let slots = max(config.parallel, 1) * (session?.topology.microBatches ?? 1)
        let c = model.config
        if config.kvType == .q8_0, let bad = model.blocks.first(where: { $0.attention.headDim % 32 != 0 }) {
            throw EngineError.invalidParameter(name: "--kv-type q8_0", reason: "needs a head dim that is a multiple of 32; layer \(bad.index) has \(bad.attention.headDim)")
        }
        // Without -c a sequence may be as long as the KV budget allows (the CLI's "what each sequence needs").
        contextLimit = config.contextSize > 0 ? config.contextSize : 1 << 40
        let avail = availableMemory()
        if let b = config.kvBudget {
            kvBudget = b
        } else if config.contextSize > 0 {
            let per = (config.contextSize + slots - 1) / slots
            kvBudget = slots * c.kvBytes(context: per, type: config.kvType, maxPass: config.ubatch, mtp: !model.mtp.isEmpty)
        } else {
            kvBudget = avail.map { $0 / 4 * 3 } ?? Int.max / 4
        }
        if let a = avail, kvBudget > a {
            throw EngineError.setup(String(format: "the KV budget (%.2f GiB) is more than the memory available (%.2f GiB); use a smaller --ctx-size or --kv-budget, or --kv-type q8_0",
                                           Double(kvBudget) / 1_073_741_824, Double(a) / 1_073_741_824))
        }
        let tok = tokenizer
        scheduler = Scheduler(heads: session?.topology.heads ?? 1, lanes: session?.lanes.count ?? 1, parallel: max(config.parallel, 1),
                              maxQueue: config.maxQueue, budget: kvBudget, prefixCache: config.prefixCache, config: c,
                              detokenize: { t in tok?.bytes(of: t) ?? [] })
        executors = (0..<(session?.lanes.count ?? 1)).map { _ in LaneExecutor(head: 0, model: model, store: store, keepCaches: config.prefixCache) }
        localExperts = executors.map { _ in LocalExperts() }
        workspaces = executors.map { _ in Step35Workspace() }
        for i in executors.indices { start(lane: i) }
    }

    private func start(lane i: Int) {
        lanesRunning += 1
        let t = Thread { [self] in laneLoop(i) }
        t.stackSize = 16 << 20
        t.name = "switchyard lane \(i)"
        lanes.append(t)
        t.start()
    }

    /// Runs `body` on the scheduler under the lock, wakes the lanes, then sends the events it decided.
    @discardableResult
    func withScheduler<T>(_ body: (Scheduler) throws -> T) rethrows -> T {
        lock.lock()
        let out: T
        do { out = try body(scheduler) } catch {
            lock.unlock()
            throw error
        }
        let events = scheduler.takeOutbox()
        lock.broadcast()
        lock.unlock()
        for (sink, e) in events { sink(e) }
        return out
    }

    // MARK: requests

    /// Validates a request, queues it, and returns its id; `sink` receives its events on an engine thread.
    public func submit(_ r: InferenceRequest, sink: @escaping EventSink) throws -> Int {
        let job = try makeJob(r)
        return try withScheduler { try $0.enqueue(job, stopStrings: r.stopStrings, sink: sink) }
    }

    /// Validates a request, queues it, and returns its id and its events as an async stream; ending the
    /// stream early (a client that goes away) cancels the request.
    public func submit(_ r: InferenceRequest) throws -> (id: Int, events: AsyncThrowingStream<EngineEvent, Error>) {
        let (stream, cont) = AsyncThrowingStream<EngineEvent, Error>.makeStream()
        let id = try submit(r) { e in
            cont.yield(e)
            if case .finished = e { cont.finish() }
        }
        cont.onTermination = { [weak self] why in
            if case .cancelled = why { self?.cancel(id) }
        }
        return (id, stream)
    }

    /// Cancels a request: it ends with `cancelled`, its slot and KV are free for the next pass.
    public func cancel(_ id: Int) {
        withScheduler { $0.cancel(id) }
    }

    /// The engine's state now.
    public func snapshot() -> EngineSnapshot {
        lock.lock()
        defer { lock.unlock() }
        let s = scheduler
        let stats = session?.headStats
        return EngineSnapshot(running: s.running.map { (id: $0.key, head: $0.value.head, lane: $0.value.lane, generated: $0.value.generated.count) }
                                .sorted { $0.id < $1.id },
                              slotsPerLane: s.parallel, queued: s.queue.count, kvUsed: s.used, kvBudget: kvBudget,
                              cachedSequences: s.cached.count, cachedBytes: s.cached.reduce(0) { $0 + $1.info.bytes },
                              served: s.served, generatedTokens: s.generatedTokens, rowsPerWorker: stats?.rowsPerWorker ?? [],
                              workerComputeSeconds: workerCompute)
    }

    /// Stops taking requests, ends every lane (and the cluster's ranks), and returns when they are down.
    /// After a lost rank it exits the process instead (finalizing would wait for the dead).
    public func shutdown() {
        lock.lock()
        if finished { return lock.unlock() }
        finished = true
        stopping = true
        scheduler.stopped = scheduler.stopped ?? "shut down"
        lock.broadcast()
        while lanesRunning > 0 { lock.wait() }
        // Each lane's Thread holds a closure that holds the engine: dropping them lets a shut-down engine
        // (its model, caches and pools) be freed once its last user lets go.
        lanes.removeAll()
        let failed = failure
        lock.unlock()
        // Whatever was still queued or running ends now, with an error event, never silently.
        withScheduler { $0.failAll(failed.map { "\($0)" } ?? "the engine shut down") }
        if let e = failed, session != nil { MPI.abort("switchyard: rank 0 (head 0): \(e)", cause: e) }
        if let s = session {
            do { try s.finalStatistics() } catch { MPI.abort("switchyard: rank 0: \(error)", cause: error) }
            MPI.finalize()
        }
    }

    /// Why the engine stopped serving, if it failed.
    public var failureMessage: String? { lock.withLock { failure.map { "\($0)" } } }

    /// Blocks until the engine fails (returning why: a lost rank, named with its host) or shuts down (nil).
    /// By then every request it held has had its error event.
    public func waitForFailure() -> String? {
        lock.lock()
        defer { lock.unlock() }
        while failure == nil && !finished { lock.wait() }
        return failure.map { "\($0)" }
    }

    /// Rank 0: seconds one MoE layer's exchange takes with no expert compute (lane 0 runs the probe).
    public func probeExchange(rounds: Int = 200, rows: Int = 8, rowBytes: Int, combineBytes: Int) throws -> Double {
        guard session != nil else { return 0 }
        lock.lock()
        defer { lock.unlock() }
        probe = ([Int32(rounds), Int32(rows), Int32(rowBytes), Int32(combineBytes)], nil)
        lock.broadcast()
        while probe?.result == nil && failure == nil { lock.wait() }
        if let e = failure { throw e }
        defer { probe = nil }
        return probe!.result!
    }

    // MARK: the lane loop

    private func laneLoop(_ i: Int) {
        defer { lock.withLock { lanesRunning -= 1; lock.broadcast() } }
        do {
            while true {
                let plan = nextPlan(i)
                if let s = session { try s.send(plan, lane: i) }
                if plan.stop { return }
                if let shape = plan.probe, let s = session {
                    let t = try s.exchangeRounds(shape, lane: 0)
                    lock.withLock { probe?.result = t; lock.broadcast() }
                    continue
                }
                executors[i].apply(plan)
                if plan.run { try runPass(i) }
                var reports = executors[i].takeReports()
                if let s = session {
                    let (others, compute) = try s.gatherReports([], lane: i)
                    reports += others
                    lock.withLock { workerCompute = compute }
                }
                withScheduler { $0.deliver(reports) }
            }
        } catch {
            withScheduler { s in
                failure = failure ?? error
                s.failAll("\(error)")
            }
        }
    }

    /// Blocks until lane `i` has something to do; under a cluster an idle lane steps every 5 s.
    private func nextPlan(_ i: Int) -> StepPlan {
        lock.lock()
        defer { lock.unlock() }
        let deadline = Date().addingTimeInterval(5)
        while true {
            if stopping || failure != nil { return StepPlan(stop: true) }
            if i == 0, let p = probe, p.result == nil { return StepPlan(probe: p.shape) }
            if scheduler.hasWork(lane: i) {
                let p = scheduler.plan(lane: i)
                if !p.isEmpty { return p }
            }
            if session == nil {
                lock.wait()
            } else if !lock.wait(until: deadline) {
                return StepPlan()
            }
        }
    }

    /// This process's pass on lane `i` (with empty exchanges when its head has nothing on the lane).
    private func runPass(_ i: Int) throws {
        let ctx = PassContext(experts: session.map { $0.lanes[i].experts } ?? localExperts[i], profile: config.profile,
                              expertStats: expertStats, debugHook: config.debugHook, workspace: workspaces[i])
        if let s = session {
            try s.headStep(lane: i, hasWork: executors[i].hasSequences, moeLayers: model.moeLayerIndices, d: model.config.embeddingLength) {
                try executors[i].step(ctx)
            }
        } else {
            _ = try executors[i].step(ctx)
        }
    }

    /// Builds the job a request runs as, or says what is wrong with it.
    func makeJob(_ r: InferenceRequest) throws -> GenerationJob {
        let v = model.config.vocabSize
        guard !r.prompt.isEmpty else { throw EngineError.emptyPrompt }
        if let bad = r.prompt.first(where: { $0 < 0 || Int($0) >= v }) { throw EngineError.tokenOutsideVocabulary(token: bad, vocabulary: v) }
        guard r.draft >= 0 else { throw EngineError.invalidParameter(name: "draft", reason: "must be >= 0") }
        guard r.draft <= model.mtp.count else { throw EngineError.draftTooDeep(asked: r.draft, mtpBlocks: model.mtp.count) }
        try validate(r.sampling)
        if let n = r.logprobs, n < 0 || n > 20 { throw EngineError.invalidParameter(name: "top_logprobs", reason: "must be 0 to 20") }
        let fixed = r.syntheticFill + r.prompt.count + r.draft + 1
        if let n = r.maxTokens, n < 0 { throw EngineError.invalidParameter(name: "max_tokens", reason: "must be >= 0") }
        let needed = fixed + (r.maxTokens ?? 1)
        guard needed <= contextLimit else { throw EngineError.contextTooSmall(needed: needed, context: contextLimit) }
        // Without a limit a request may fill the context a sequence may have (the model's, without -c).
        let maxTokens = r.maxTokens ?? (min(contextLimit, max(model.config.contextLength, fixed + 1)) - fixed)
        let stop = r.stopTokens + (r.ignoreEOS ? [] : Array(tokenizer?.endOfGeneration ?? []).sorted())
        var job = GenerationJob(id: 0, prompt: r.prompt, nPredict: maxTokens, sampling: r.sampling, stop: stop, promptLogits: r.promptLogits,
                                draft: r.draft, kvType: config.kvType, ubatch: config.ubatch, logprobs: r.logprobs)
        job.syntheticFill = r.syntheticFill
        let need = scheduler.bytes(job)
        guard need <= kvBudget else { throw EngineError.kvDoesNotFit(neededBytes: need, budgetBytes: kvBudget, positions: job.contextSize) }
        return job
    }

    private func validate(_ s: SamplingParams) throws {
        guard s.temperature >= 0 && s.temperature.isFinite else { throw EngineError.invalidParameter(name: "temperature", reason: "must be >= 0") }
        guard s.topP > 0 && s.topP <= 1 else { throw EngineError.invalidParameter(name: "top_p", reason: "must be in (0, 1]") }
        guard s.topK >= 0 else { throw EngineError.invalidParameter(name: "top_k", reason: "must be >= 0") }
        guard s.minP >= 0 && s.minP <= 1 else { throw EngineError.invalidParameter(name: "min_p", reason: "must be in [0, 1]") }
        for (n, p) in [("presence_penalty", s.presencePenalty), ("frequency_penalty", s.frequencyPenalty)] where !(p >= -2 && p <= 2) {
            throw EngineError.invalidParameter(name: n, reason: "must be between -2 and 2")
        }
    }
}

/// MemAvailable from /proc/meminfo in bytes (nil where unknown).
public func availableMemory() -> Int? { procKiB("/proc/meminfo", "MemAvailable:").map { $0 * 1024 } }
