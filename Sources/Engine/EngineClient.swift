// A blocking client of the engine, for front ends that run a fixed list of requests (the CLI's generate,
// logits and bench, tests): submit them all, wait for every one to finish. The same `submit` path as the
// server's.
import Foundation
import Step35

/// A finished request as a blocking client sees it.
public struct RequestOutcome: Sendable {
    /// Every generated token and the whole text.
    public var tokens: [Int32]
    public var text: String
    public var completion: Completion
}

extension Engine {
    /// A text prompt as tokens, as llama.cpp builds one (special tokens added and parsed; an empty prompt is
    /// the BOS token). Empty without a tokenizer.
    public func tokenize(_ text: String) -> [Int32] {
        guard let tok = tokenizer else { return [] }
        var ids = tok.encode(text, addSpecial: true, parseSpecial: true)
        if ids.isEmpty, let b = tok.bos { ids = [b] }
        return ids
    }

    /// Submits `requests` in order and blocks until every one has finished; outcomes in request order.
    /// `onEvent(index, event)` sees each event as it comes, on an engine thread. A request the engine
    /// refuses throws before anything runs.
    public func generate(_ requests: [InferenceRequest], onEvent: (@Sendable (Int, EngineEvent) -> Void)? = nil) throws -> [RequestOutcome] {
        let box = OutcomeBox(count: requests.count)
        for r in requests { _ = try makeJob(r) }  // refuse a bad list before any of it runs
        for (i, r) in requests.enumerated() {
            box.group.enter()
            _ = try submit(r) { e in
                onEvent?(i, e)
                box.add(i, e)
            }
        }
        box.group.wait()
        return box.outcomes
    }
}

/// Collects events into outcomes from engine threads.
private final class OutcomeBox: @unchecked Sendable {
    let group = DispatchGroup()
    private let lock = NSLock()
    private var tokens: [[Int32]], texts: [String], done: [Completion?]
    init(count: Int) {
        tokens = Array(repeating: [], count: count)
        texts = Array(repeating: "", count: count)
        done = Array(repeating: nil, count: count)
    }
    func add(_ i: Int, _ e: EngineEvent) {
        lock.withLock {
            switch e {
            case .tokens(let t):
                tokens[i] += t.tokens
                texts[i] += t.text
            case .finished(let c):
                texts[i] += c.text
                done[i] = c
            }
        }
        if case .finished = e { group.leave() }
    }
    var outcomes: [RequestOutcome] {
        lock.withLock { tokens.indices.map { RequestOutcome(tokens: tokens[$0], text: texts[$0], completion: done[$0]!) } }
    }
}
