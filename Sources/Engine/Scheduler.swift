// The scheduler: one per engine, on rank 0. It owns the queue, places requests on (head, lane) slots,
// keeps every head within its KV budget, mirrors what each head has cached (so it can send a request to
// the head that already holds its prefix), and turns the heads' reports into each request's events.
//
// References: llama-server's slots (`--parallel`, `-c` shared by the slots, `cache_prompt`'s longest
// common prefix), vLLM's scheduler (admission while the KV budget allows, FIFO so nothing starves).
// Every method runs under the engine's lock; the events it decides go out after the lock is released.
import Foundation
import ModelKit
import Step35

/// Receives a request's events (on an engine thread; must return quickly).
public typealias EventSink = @Sendable (EngineEvent) -> Void

final class Scheduler {
    struct Waiting {
        var job: GenerationJob
        var sink: EventSink
        var stopStrings: [String]
        var enqueued: UInt64
    }
    struct Running {
        var job: GenerationJob
        var sink: EventSink
        var head: Int, lane: Int
        var text: TextStream
        var generated: [Int32] = []
        var usage = Usage()
        var admitted: UInt64
        var firstToken: UInt64?
        /// Set once rank 0 has decided it ends (stop string, cancel): the head is told, its tokens ignored.
        var ending: FinishReason?
        /// A cached sequence it continues by copying, whose bytes are freed on the head once it is admitted.
        var releaseOnAdmit = 0
        /// Its `finished` event went out already (a stop string ends the stream at once; the head lets go of
        /// the sequence at the lane's next step).
        var finishedSent = false
        /// KV bytes it holds on its head (a fresh reservation, or the cached sequence it continues in place).
        var reserved = 0
    }
    struct Cached {
        var head: Int, id: Int
        var tokens: [Int32]
        var info: CachedInfo
        var lastUsed: UInt64
    }

    let heads: Int, lanes: Int, parallel: Int
    let maxQueue: Int
    let budget: Int
    let prefixCache: Bool
    let config: Step35Config
    let detokenize: @Sendable (Int32) -> [UInt8]
    private(set) var queue: [Waiting] = []
    private(set) var running: [Int: Running] = [:]
    private(set) var cached: [Cached] = []
    /// KV bytes each head holds or has promised (running reservations and cached sequences).
    private(set) var used: [Int]
    private var cancels: [[HeadOrder]]
    private var nextID = 0
    private(set) var served = 0, generatedTokens = 0
    /// Set when the engine stopped taking requests (shut down, or failed).
    var stopped: String?
    /// Events decided under the lock, sent after it is released (a sink may call back into the engine).
    private var outbox: [(EventSink, EngineEvent)] = []

    private func send(_ sink: @escaping EventSink, _ e: EngineEvent) { outbox.append((sink, e)) }

    /// The events decided since the last call, in order.
    func takeOutbox() -> [(EventSink, EngineEvent)] {
        defer { outbox = [] }
        return outbox
    }

    init(heads: Int, lanes: Int, parallel: Int, maxQueue: Int, budget: Int, prefixCache: Bool, config: Step35Config,
         detokenize: @escaping @Sendable (Int32) -> [UInt8]) {
        self.heads = heads
        self.lanes = lanes
        self.parallel = parallel
        self.maxQueue = maxQueue
        self.budget = budget
        self.prefixCache = prefixCache
        self.config = config
        self.detokenize = detokenize
        used = Array(repeating: 0, count: heads)
        cancels = Array(repeating: [], count: lanes)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// KV bytes a fresh reservation for `job` takes.
    func bytes(_ job: GenerationJob) -> Int {
        config.kvBytes(context: job.contextSize, type: job.kvType, maxPass: job.maxPass, mtp: job.draft > 0)
    }

    /// Queues a validated job; returns its id.
    func enqueue(_ job: GenerationJob, stopStrings: [String], sink: @escaping EventSink) throws -> Int {
        if let why = stopped { throw EngineError.stopped(why) }
        guard queue.count < maxQueue else { throw EngineError.queueFull(limit: maxQueue) }
        var j = job
        j.id = nextID
        nextID += 1
        queue.append(Waiting(job: j, sink: sink, stopStrings: stopStrings, enqueued: Self.now()))
        return j.id
    }

    /// Cancels a request: a queued one ends at once, a running one when its head has let go of it.
    func cancel(_ id: Int) {
        if let i = queue.firstIndex(where: { $0.job.id == id }) {
            let w = queue.remove(at: i)
            var u = Usage()
            u.promptTokens = w.job.prompt.count
            u.queueSeconds = Double(Self.now() - w.enqueued) / 1e9
            send(w.sink, .finished(Completion(reason: .cancelled, usage: u, text: "")))
        } else {
            end(id, .cancelled)
        }
    }

    /// Marks a running request as ending and tells its head (at the lane's next step).
    private func end(_ id: Int, _ reason: FinishReason) {
        guard var r = running[id], r.ending == nil else { return }
        r.ending = reason
        running[id] = r
        cancels[r.lane].append(HeadOrder(head: r.head, id: id))
    }

    /// Whether a lane has anything to do now.
    func hasWork(lane: Int) -> Bool {
        !cancels[lane].isEmpty || running.values.contains { $0.lane == lane } || canAdmit(lane: lane)
    }

    private func canAdmit(lane: Int) -> Bool {
        guard let w = queue.first else { return false }
        return placement(w.job, lane: lane) != nil
    }

    /// The next step's plan for `lane`: cancellations, then as many queued requests (in order) as have a
    /// free slot on this lane and fit their head's KV budget, evicting least recently used cached
    /// sequences where needed.
    func plan(lane: Int) -> StepPlan {
        var p = StepPlan()
        p.cancel = cancels[lane]
        cancels[lane] = []
        while let w = queue.first, let (head, placedReuse) = placement(w.job, lane: lane) {
            var reuse = placedReuse
            var job = w.job
            let need: Int, reserved: Int
            var release: Int
            let continued = reuse.flatMap { r in cached.first { $0.head == head && $0.id == r } }
            if let c = continued, c.info.fitsInPlace(job) {
                (need, release, reserved) = (0, 0, c.info.bytes)  // its bytes move from cached to running
            } else {
                (need, release, reserved) = (bytes(job), continued?.info.bytes ?? 0, bytes(job))
            }
            // A copy holds the cached sequence and the new reservation at once: where the budget cannot hold
            // both even with nothing else on the head, the prefix is dropped and the request starts afresh
            // (waiting for room would wait forever: the cached bytes are freed only by this admission).
            if release > 0, release + need > budget, let r = reuse {
                evict(head: head, id: r, into: &p)
                (reuse, release) = (nil, 0)
            }
            // Free room: least recently used cached sequences on that head, never the one being continued.
            while used[head] + need > budget, let victim = cached.indices.filter({ cached[$0].head == head && cached[$0].id != reuse })
                    .min(by: { cached[$0].lastUsed < cached[$1].lastUsed }) {
                evict(head: head, id: cached[victim].id, into: &p)
            }
            guard used[head] + need <= budget else { break }  // wait for running sequences to end
            queue.removeFirst()
            used[head] += need
            cached.removeAll { $0.head == head && $0.id == reuse }
            job.context = 0
            let now = Self.now()
            var r = Running(job: job, sink: w.sink, head: head, lane: lane, text: TextStream(stopStrings: w.stopStrings), admitted: now)
            r.usage.promptTokens = job.prompt.count
            r.usage.queueSeconds = Double(now - w.enqueued) / 1e9
            r.releaseOnAdmit = release
            r.reserved = reserved
            running[job.id] = r
            p.admit.append(Admission(head: head, job: job, reuse: reuse))
        }
        p.run = running.values.contains { $0.lane == lane && $0.ending == nil }
        return p
    }

    /// Drops a cached sequence: its bytes are free now, and its head frees them at the lane's next step.
    private func evict(head: Int, id: Int, into p: inout StepPlan) {
        guard let i = cached.firstIndex(where: { $0.head == head && $0.id == id }) else { return }
        used[head] -= cached[i].info.bytes
        p.evict.append(HeadOrder(head: head, id: id))
        cached.remove(at: i)
    }

    /// Where `job` would go on `lane`: the head holding the longest common prefix among heads with a free
    /// slot there, else the least busy; nil when no head has a free slot on the lane. Prompt logits stay
    /// on rank 0 (head 0).
    private func placement(_ job: GenerationJob, lane: Int) -> (head: Int, reuse: Int?)? {
        let free = (0..<heads).filter { h in
            (!job.promptLogits || h == 0) && running.values.filter { $0.head == h && $0.lane == lane }.count < parallel
        }
        guard !free.isEmpty else { return nil }
        if prefixCache, job.syntheticFill == 0, !job.promptLogits {
            var best: (entry: Cached, common: Int)?
            for c in cached where free.contains(c.head) {
                let n = Self.commonPrefix(c.tokens, job.prompt)
                if n > (best?.common ?? 0) || (n > 0 && n == best?.common && c.lastUsed > best!.entry.lastUsed) { best = (c, n) }
            }
            if let b = best { return (b.entry.head, b.entry.id) }
        }
        let load = free.map { h in (h, running.values.filter { $0.head == h }.count) }
        return (load.min { $0.1 < $1.1 }!.0, nil)
    }

    static func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        var n = 0
        while n < a.count && n < b.count && a[n] == b[n] { n += 1 }
        return n
    }

    /// Takes a lane's reports: streams tokens, ends requests, and mirrors what the heads cached.
    func deliver(_ reports: [SequenceReport], time: UInt64 = now()) {
        for rep in reports {
            guard var r = running[rep.id] else { continue }
            if let c = rep.cachedTokens {
                r.usage.cachedTokens = c
                used[r.head] -= r.releaseOnAdmit
                r.releaseOnAdmit = 0
            }
            if r.ending == nil && !rep.tokens.isEmpty { stream(&r, rep.tokens, time: time) }
            running[rep.id] = r
            guard rep.ended else { continue }
            running[rep.id] = nil
            served += 1
            r.usage.promptSeconds = rep.promptSeconds
            r.usage.decodeSeconds = rep.decodeSeconds
            r.usage.speculation = rep.speculation
            // The reservation becomes the cached sequence (or is freed).
            used[r.head] -= r.reserved + r.releaseOnAdmit
            if let info = rep.cached, prefixCache {
                let tokens = Array((r.job.prompt + r.generated).prefix(info.count))
                cached.append(Cached(head: r.head, id: rep.id, tokens: tokens, info: info, lastUsed: time))
                used[r.head] += info.bytes
            }
            if r.finishedSent { continue }
            if let e = rep.error {
                send(r.sink, .finished(Completion(reason: .error, usage: r.usage, error: e, text: "")))
                continue
            }
            let reason = r.ending ?? (rep.end == .stop ? .stop : .length)
            send(r.sink, .finished(Completion(reason: reason, usage: r.usage, promptLogits: rep.logits, text: r.text.finish())))
        }
    }

    private func stream(_ r: inout Running, _ tokens: [EmittedToken], time: UInt64) {
        if r.firstToken == nil {
            r.firstToken = time
            r.usage.timeToFirstToken = Double(time - r.admitted) / 1e9
        }
        var text = ""
        var kept: [EmittedToken] = []
        for t in tokens {
            r.generated.append(t.token)
            r.usage.completionTokens += 1
            generatedTokens += 1
            kept.append(t)
            text += r.text.push(detokenize(t.token))
            if r.text.stopped { break }
        }
        send(r.sink, .tokens(TokenEvent(tokens: kept.map(\.token), text: text, logprobs: kept.compactMap(\.logprob), time: time)))
        if r.text.stopped {
            r.ending = .stop
            r.finishedSent = true
            cancels[r.lane].append(HeadOrder(head: r.head, id: r.job.id))
            send(r.sink, .finished(Completion(reason: .stop, usage: r.usage, text: r.text.finish(), stopString: r.text.matched)))
        }
    }

    /// Ends every queued and running request with an error (a lost rank), and takes no more.
    func failAll(_ message: String) {
        stopped = stopped ?? message
        for w in queue { send(w.sink, .finished(Completion(reason: .error, usage: Usage(), error: message, text: ""))) }
        queue = []
        for (_, r) in running where !r.finishedSent { send(r.sink, .finished(Completion(reason: .error, usage: r.usage, error: message, text: ""))) }
        running = [:]
    }
}
