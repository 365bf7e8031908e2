// `switchyard replay`: plays a trace of requests against the engine at their arrival times (vLLM's
// benchmark_serving with a trace, without HTTP), and prints one JSON line per request as it finishes:
// tokens, text, finish reason, usage and timings. The same engine and scheduler a server drives.
import ArgumentParser
import Engine
import Foundation
import ModelKit

/// One line of a trace file (JSON Lines).
struct TraceRequest: Decodable {
    /// Prompt as token ids, or as text (tokenized as `generate` does).
    var prompt: [Int32]?
    var text: String?
    var max_tokens: Int?
    /// Milliseconds after the start at which the request arrives.
    var at_ms: Double?
    /// Cancel the request once it has produced this many tokens.
    var cancel_after_tokens: Int?
    var temperature: Float?
    var seed: UInt64?
    var draft: Int?
    var stop: [String]?
    var ignore_eos: Bool?
    var logprobs: Int?
    /// A conversation's next turn: request N's prompt and reply come first (this request is sent once
    /// request N has finished, `at_ms` counting from then), then this request's prompt or text.
    var continues: Int?
}

/// What `replay` prints per request.
struct ReplayLine: Encodable {
    var index: Int
    var tokens: [Int32]
    var text: String
    var finish: String
    var error: String?
    var prompt_tokens: Int, cached_tokens: Int, completion_tokens: Int
    /// Seconds from arrival to the first token, queued, and from admission to the first token.
    var ttft_s: Double, queue_s: Double, admit_to_first_s: Double
    var prompt_s: Double, decode_s: Double
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play a trace of requests (JSON Lines: prompt, max_tokens, at_ms, cancel_after_tokens, ...) against the engine and print each outcome as a JSON line.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions

    @Option(help: "Trace file, one JSON request per line.")
    var requests: String

    @Option(name: [.customLong("parallel"), .customLong("np", withSingleDash: true)], help: "Sequences decoded together in one pass (per lane of each head).")
    var parallel: Int = 1

    @Option(help: "Requests that may wait for a slot; more are refused.")
    var maxQueue: Int = 256

    @Flag(help: "Do not reuse cached prefixes.")
    var noPrefixCache = false

    @Flag(help: "Also print every token event as it comes ({\"index\", \"tokens\"}).")
    var stream = false

    @Option(help: "Write the JSON lines to this file instead of stdout (each line written as it is made; nothing depends on the launcher forwarding rank 0's output).")
    var output: String?

    func run() throws {
        try reportingErrors {
            let lines = try String(contentsOfFile: requests, encoding: .utf8).split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            let trace = try lines.enumerated().map { i, l in
                do { return try JSONDecoder().decode(TraceRequest.self, from: Data(l.utf8)) } catch {
                    throw ValidationError("\(requests):\(i + 1): not a trace request: \(error)")
                }
            }
            var config = try cacheOptions.engineConfig(parallel: parallel, maxQueue: maxQueue)
            config.prefixCache = !noPrefixCache
            guard let engine = try options.startEngine(config) else { return }
            defer { engine.shutdown() }
            let failed = try play(trace, on: engine)
            if failed { engine.shutdown(); throw ExitCode(1) }
        }
    }

    /// Submits each request at its time; returns whether any ended with an error.
    private func play(_ trace: [TraceRequest], on engine: Engine) throws -> Bool {
        var sink = FileHandle.standardOutput
        if let path = output {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write \(path)")
            }
            sink = h
        }
        let out = ReplayOutput(count: trace.count, stream: stream, to: sink)
        let t0 = DispatchTime.now().uptimeNanoseconds
        var prompts: [[Int32]] = []
        for (i, t) in trace.enumerated() {
            var prompt = t.prompt ?? engine.tokenize(t.text ?? "")
            var base = t0
            if let prev = t.continues {
                guard prev >= 0 && prev < i else { throw ValidationError("request \(i): continues \(prev), which is not an earlier request") }
                let (tokens, ended) = out.waitFor(prev)
                prompt = prompts[prev] + tokens + (t.prompt ?? Array(engine.tokenize(t.text ?? "").drop { $0 == engine.tokenizer?.bos }))
                base = ended
            }
            prompts.append(prompt)
            let r = InferenceRequest(prompt: prompt, sampling: SamplingParams(temperature: t.temperature ?? 0, seed: t.seed ?? UInt64(i)),
                                     maxTokens: t.max_tokens ?? 32, stopStrings: t.stop ?? [], ignoreEOS: t.ignore_eos ?? false,
                                     draft: t.draft ?? 0, logprobs: t.logprobs)
            let at = base + UInt64((t.at_ms ?? 0) * 1e6)
            let now = DispatchTime.now().uptimeNanoseconds
            if at > now { usleep(UInt32(min((at - now) / 1000, UInt64(UInt32.max)))) }
            let arrived = DispatchTime.now().uptimeNanoseconds
            let cancelAfter = t.cancel_after_tokens, promptCount = prompt.count
            let box = IDBox()
            do {
                box.id = try engine.submit(r) { e in
                    switch e {
                    case .tokens(let ev):
                        let n = out.add(i, ev, arrived: arrived)
                        if let c = cancelAfter, n >= c, let id = box.id { engine.cancel(id) }
                    case .finished(let c):
                        out.finish(i, c, prompt: promptCount)
                    }
                }
            } catch {
                out.refuse(i, "\(error)", prompt: prompt.count)
            }
        }
        return out.wait()
    }
}

/// The id of a submitted request, for its own sink (set right after `submit` returns).
private final class IDBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int?
    var id: Int? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Per-request state of a replay, printed as each request ends.
private final class ReplayOutput: @unchecked Sendable {
    private let lock = NSLock()
    private let group = DispatchGroup()
    private let ended = NSCondition()
    private var tokens: [[Int32]], texts: [String], firstAt: [UInt64?], arrivedAt: [UInt64], endedAt: [UInt64?]
    private var failed = false
    private let stream: Bool
    private let file: FileHandle

    init(count: Int, stream: Bool, to file: FileHandle) {
        self.stream = stream
        self.file = file
        tokens = Array(repeating: [], count: count)
        texts = Array(repeating: "", count: count)
        firstAt = Array(repeating: nil, count: count)
        arrivedAt = Array(repeating: 0, count: count)
        endedAt = Array(repeating: nil, count: count)
        for _ in 0..<count { group.enter() }
    }

    /// Adds tokens; returns how many the request has made.
    func add(_ i: Int, _ e: TokenEvent, arrived: UInt64) -> Int {
        lock.withLock {
            arrivedAt[i] = arrived
            if firstAt[i] == nil { firstAt[i] = e.time }
            tokens[i] += e.tokens
            texts[i] += e.text
            if stream { emit("{\"index\":\(i),\"tokens\":[\(e.tokens.map(String.init).joined(separator: ","))]}") }
            return tokens[i].count
        }
    }

    func finish(_ i: Int, _ c: Completion, prompt: Int) {
        lock.withLock {
            let u = c.usage
            let ttft = firstAt[i].map { Double($0 - arrivedAt[i]) / 1e9 } ?? 0
            emit(line(ReplayLine(index: i, tokens: tokens[i], text: texts[i] + c.text, finish: c.reason.rawValue, error: c.error,
                                  prompt_tokens: prompt, cached_tokens: u.cachedTokens, completion_tokens: u.completionTokens, ttft_s: ttft,
                                  queue_s: u.queueSeconds, admit_to_first_s: u.timeToFirstToken, prompt_s: u.promptSeconds, decode_s: u.decodeSeconds)))
            if c.reason == .error { failed = true }
        }
        markEnded(i)
    }

    func refuse(_ i: Int, _ message: String, prompt: Int) {
        lock.withLock {
            emit(line(ReplayLine(index: i, tokens: [], text: "", finish: "refused", error: message, prompt_tokens: prompt, cached_tokens: 0,
                                  completion_tokens: 0, ttft_s: 0, queue_s: 0, admit_to_first_s: 0, prompt_s: 0, decode_s: 0)))
        }
        markEnded(i)
    }

    /// Writes a line to stdout at once (a run that ends on a lost rank still shows what finished).
    private func emit(_ s: String) { file.write(Data((s + "\n").utf8)) }

    private func line(_ l: ReplayLine) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: enc.encode(l), as: UTF8.self)) ?? "{}"
    }

    /// Records that request `i` ended (wakes a conversation's next turn) and counts it done.
    private func markEnded(_ i: Int) {
        ended.withLock {
            lock.withLock { endedAt[i] = DispatchTime.now().uptimeNanoseconds }
            ended.broadcast()
        }
        group.leave()
    }

    /// Waits for request `i` to end; its tokens and when it ended.
    func waitFor(_ i: Int) -> ([Int32], UInt64) {
        ended.withLock {
            while lock.withLock({ endedAt[i] }) == nil { ended.wait() }
        }
        return lock.withLock { (tokens[i], endedAt[i]!) }
    }

    /// Waits for every request; whether any failed.
    func wait() -> Bool {
        group.wait()
        return lock.withLock { failed }
    }
}
