// `switchyard generate`: prompt in, tokens out, with llama-cli style flags.
import ArgumentParser
import Foundation
import GGUF
import ModelKit
import Step35
import Tokenizer

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text (greedy, or sampled with --temp/--top-k/--top-p/--seed).")

    @OptionGroup var options: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions

    @Option(name: [.short, .customLong("prompt")],
            help: "Prompt text. Repeat for several sequences (under a topology they run on the heads' lanes at once).")
    var prompt: [String] = []

    @Option(help: "Prompt as comma-separated token ids (e.g. 5,17,200) instead of text. Repeatable.")
    var promptTokens: [String] = []

    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Number of tokens to generate.")
    var nPredict: Int = 32

    @Option(help: "Tokens to draft per step with the model's MTP blocks (0-3; 0 turns speculative decoding off).")
    var draft: Int = 0

    @Option(help: "Temperature; 0 is greedy.")
    var temp: Float = 0

    @Option(help: "Top-k (0 disables).")
    var topK: Int = 40

    @Option(help: "Top-p (1 disables).")
    var topP: Float = 0.95

    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0

    @Flag(help: "Print generated token ids, one per line, instead of text.")
    var printIds = false

    @Flag(help: "Keep generating past end-of-generation tokens.")
    var ignoreEos = false

    @Option(name: [.customLong("parallel"), .customLong("np", withSingleDash: true)],
            help: "Sequences decoded together in one pass (llama-server's --parallel); several --prompt values share passes.")
    var parallel: Int = 1

    @Flag(help: "Print timings to stderr.")
    var verbose = false

    @Option(help: "Write the routing counts (per layer, per expert) of prompts and generated tokens as JSON (input of `switchyard tune`; under a topology, rank 0's sequences).")
    var expertStats: String?

    func validate() throws {
        if !prompt.isEmpty && !promptTokens.isEmpty { throw ValidationError("give --prompt or --prompt-tokens, not both") }
        if nPredict < 0 { throw ValidationError("-n must be >= 0") }
        if temp < 0 { throw ValidationError("--temp must be >= 0") }
        if draft < 0 || draft > 3 { throw ValidationError("--draft must be 0 to 3") }
        if topP <= 0 || topP > 1 { throw ValidationError("--top-p must be in (0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must be >= 0") }
        if parallel < 1 || parallel > 256 { throw ValidationError("--parallel must be 1 to 256") }
    }

    func run() throws {
        try reportingErrors { try generate() }
    }

    private func generate() throws {
        do {
            guard let rt = try Runtime.make(options) else { return }  // a non-coordinator rank served the job
            defer { rt.finish() }
            let tokenizer = try? BPETokenizer(gguf: rt.file)
            var prompts: [[Int32]] = try promptTokens.map { try parseTokenList($0) }
            if promptTokens.isEmpty {
                guard let tok = tokenizer else { throw ValidationError("this model has no usable tokenizer: use --prompt-tokens") }
                for text in prompt.isEmpty ? [""] : prompt {
                    var ids = tok.encode(text, addSpecial: true, parseSpecial: true)
                    if ids.isEmpty, let b = tok.bos { ids = [b] }
                    prompts.append(ids)
                }
            }
            let stop = ignoreEos ? [] : Array(tokenizer?.endOfGeneration ?? [])
            let jobs: [GenerationJob] = prompts.enumerated().map { (i: Int, ids: [Int32]) -> GenerationJob in
                // Each sequence draws from its own stream, so results do not depend on where it runs.
                GenerationJob(id: i, prompt: ids, nPredict: nPredict,
                              sampling: SamplingParams(temperature: temp, topK: topK, topP: topP, seed: seed &+ UInt64(i)),
                              stop: stop, draft: draft, context: cacheOptions.ctxSize, kvType: cacheOptions.type,
                              ubatch: cacheOptions.ubatch)
            }
            let printer = TokenPrinter(tokenizer: tokenizer, ids: printIds)
            let t0 = DispatchTime.now()
            // One sequence streams as it is sampled; several print in order at the end.
            // --verbose profiles attention during decoding (the first token ends the prompt: reset there).
            let profile = verbose ? AttentionProfile() : nil
            rt.model.profile = profile
            let firstToken = OnceFlag()
            var stream: (@Sendable (Int, Int32) -> Void)? = nil
            if jobs.count == 1 {
                stream = { @Sendable (_: Int, t: Int32) in
                    if firstToken.set() { profile?.reset() }
                    printer.put(t)
                }
            }
            let stats = expertStats.map { _ in ExpertStats(layers: rt.model.config.layerCount, experts: rt.model.config.expertCount) }
            rt.model.expertStats = stats
            let results = try rt.run(jobs, parallel: parallel, onToken: stream)
            if let path = expertStats, let stats {
                try ExpertStatsFile(stats, source: "switchyard generate \(options.displayName), \(jobs.count) sequence(s)", topK: rt.model.config.expertUsedCount)
                    .write(to: path)
            }
            let wall = secondsSince(t0)
            if jobs.count == 1 {
                printer.end()
            } else {
                for r in results {
                    printer.write("### sequence \(r.id)\n")
                    for t in r.tokens { printer.put(t) }
                    printer.end()
                }
            }
            if verbose {
                report(results, jobs: jobs, wall: wall, rt: rt)
                if let p = profile, jobs.count == 1, p.fullTokens + p.slidingTokens > 0 {
                    let ctx = jobs[0].prompt.count + results[0].tokens.count
                    FileHandle.standardError.write(Data(String(format: "attention (decode, context %d..%d): full layers %.2f us per token per layer, sliding-window layers %.2f us\n",
                        jobs[0].prompt.count, ctx, p.fullSeconds / Double(max(p.fullTokens, 1)) * 1e6,
                        p.slidingSeconds / Double(max(p.slidingTokens, 1)) * 1e6).utf8))
                }
            }
        }
    }

    private func report(_ results: [GenerationResult], jobs: [GenerationJob], wall: Double, rt: Runtime) {
        var lines = ["model: \(options.displayName)"]
        for r in results {
            let p = jobs[r.id].prompt.count, steps = max(r.tokens.count - 1, 0)
            lines.append(String(format: "%@prompt eval: %d tokens in %.2f ms (%.2f tokens/s)", results.count > 1 ? "[\(r.id)] " : "",
                                p, r.promptSeconds * 1000, Double(p) / max(r.promptSeconds, 1e-9)))
            lines.append(String(format: "%@decode: %d forward passes in %.2f ms (%.2f tokens/s), %d threads",
                                results.count > 1 ? "[\(r.id)] " : "", steps, r.decodeSeconds * 1000,
                                steps > 0 ? Double(steps) / r.decodeSeconds : 0, rt.model.pool.threads))
        }
        if draft > 0 {
            func line(_ label: String, _ st: SpeculationStats, made: Int) -> String {
                let rates = st.rates.enumerated().map { String(format: "d%d %.3f (%d/%d)", $0.offset + 1, $0.element, st.accepted[$0.offset], st.drafted[$0.offset]) }
                return String(format: "%@speculative: draft %d, %d verification passes, %.2f tokens per pass; acceptance %@", label,
                              draft, st.steps, st.steps > 0 ? Double(made) / Double(st.steps) : 0, rates.joined(separator: ", "))
            }
            var total = SpeculationStats(depth: draft)
            for r in results {
                total.add(r.speculation)
                if results.count > 1 { lines.append(line("[\(r.id)] ", r.speculation, made: max(r.tokens.count - 1, 0))) }
            }
            lines.append(line(results.count > 1 ? "total " : "", total, made: results.reduce(0) { $0 + max($1.tokens.count - 1, 0) }))
        }
        if let j = jobs.first {
            let kv = rt.model.config.kvBytes(context: j.contextSize, type: j.kvType, maxPass: j.maxPass, mtp: j.draft > 0)
            lines.append(String(format: "kv cache: %@, context %d, %.2f MiB reserved per sequence (%d-token passes)", j.kvType.rawValue,
                                j.contextSize, Double(kv) / 1_048_576, j.maxPass))
        }
        let total = results.reduce(0) { $0 + $1.tokens.count }
        if results.count > 1 {
            lines.append(String(format: "total: %d sequences, %d tokens generated in %.2f ms wall (%.2f tokens/s)", results.count,
                                total, wall * 1000, Double(total) / wall))
        }
        if let s = rt.session {
            rt.finish()
            let st = s.headStats, n = Double(max(st.layers, 1))
            lines.append(String(format: "exchange: %d MoE layer passes, %d lane(s); per layer: dispatch %.3f ms, combine wait %.3f ms (of which slowest worker compute %.3f ms)",
                                st.layers, s.topology.microBatches, st.dispatch / n * 1000, st.combine / n * 1000, s.maxWorkerCompute / n * 1000))
            lines.append(String(format: "memory: resident %.1f MiB on the largest head, %.1f MiB on the largest worker",
                                s.maxHeadRSS / 1048576, s.maxWorkerRSS / 1048576))
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Splits bytes into the longest complete UTF-8 prefix (as text) and an unfinished tail.
    static func completeUTF8(_ b: [UInt8]) -> (String, [UInt8]) {
        // Find the last lead byte (at most 3 continuation bytes back) and check its sequence is complete.
        var i = b.count - 1
        while i >= 0 && b.count - i <= 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        var cut = b.count
        if i >= 0 {
            let c = b[i]
            let need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
            if need > b.count - i { cut = i }
        }
        return (String(decoding: b[..<cut], as: UTF8.self), Array(b[cut...]))
    }
}

/// Writes generated tokens to stdout as text (holding back unfinished UTF-8) or as ids, one per line.
final class TokenPrinter: @unchecked Sendable {
    let tokenizer: BPETokenizer?
    let ids: Bool
    private var pending: [UInt8] = []
    private let out = FileHandle.standardOutput

    init(tokenizer: BPETokenizer?, ids: Bool) {
        self.tokenizer = tokenizer
        self.ids = ids
    }

    func write(_ s: String) { out.write(Data(s.utf8)) }

    func put(_ t: Int32) {
        if ids { return write("\(t)\n") }
        guard let tok = tokenizer else { return }
        pending += tok.bytes(of: t)
        let (text, rest) = Generate.completeUTF8(pending)
        pending = rest
        if !text.isEmpty { write(text) }
    }

    /// Ends one sequence's output.
    func end() {
        guard !ids else { return }
        if !pending.isEmpty { write(String(decoding: pending, as: UTF8.self)) }
        pending = []
        write("\n")
    }
}

/// A flag that is set once, from any thread.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    /// Sets the flag; true the first time.
    func set() -> Bool { lock.withLock { defer { done = true }; return !done } }
}
