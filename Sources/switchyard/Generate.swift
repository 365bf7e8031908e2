// `switchyard generate`: prompt in, tokens out, with llama-cli style flags.
import ArgumentParser
import Chat
import Engine
import Foundation
import Server
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

    @Flag(help: "Treat each --prompt as a user's chat message: render it with Step 3.5's chat template (the assistant's turn opens with <think>), as llama-cli's conversation mode does for one turn.")
    var chat = false

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
        if parallel < 1 || parallel > 256 { throw ValidationError("--parallel must be 1 to 256") }
    }

    func run() throws {
        try reportingErrors { try generate() }
    }

    private func generate() throws {
        let profile = verbose ? AttentionProfile() : nil
        var config = try cacheOptions.engineConfig(parallel: parallel, maxQueue: max(256, prompt.count + promptTokens.count))
        config.profile = profile
        config.recordExpertStats = expertStats != nil
        guard let engine = try options.startEngine(config) else { return }  // a non-coordinator rank served the job
        defer { engine.shutdown() }
        let tokenizer = engine.tokenizer
        var prompts: [[Int32]] = try promptTokens.map { try parseTokenList($0) }
        if promptTokens.isEmpty {
            guard tokenizer != nil else { throw ValidationError("this model has no usable tokenizer: use --prompt-tokens") }
            for text in prompt.isEmpty ? [""] : prompt { prompts.append(engine.tokenize(chat ? Self.chatPrompt(text, tokenizer: tokenizer) : text)) }
        }
        let requests = prompts.enumerated().map { i, ids in
            // Each sequence draws from its own stream, so results do not depend on where it runs.
            InferenceRequest(prompt: ids, sampling: SamplingParams(temperature: temp, topK: topK, topP: topP, seed: seed &+ UInt64(i)),
                             maxTokens: nPredict, ignoreEOS: ignoreEos, draft: draft)
        }
        let printer = TokenPrinter(tokenizer: tokenizer, ids: printIds)
        let t0 = DispatchTime.now()
        // One sequence streams as it is made; several print in order at the end. --verbose profiles
        // attention during decoding (the first token ends the prompt: reset there).
        let firstToken = OnceFlag()
        let single = requests.count == 1
        let outcomes = try engine.generate(requests) { _, e in
            guard single, case .tokens(let t) = e else { return }
            if firstToken.set() { profile?.reset() }
            for id in t.tokens { printer.put(id) }
        }
        if let path = expertStats, let s = engine.expertStats {
            try ExpertStatsFile(s, source: "switchyard generate \(options.displayName), \(requests.count) sequence(s)", topK: engine.model.config.expertUsedCount)
                .write(to: path)
        }
        let wall = secondsSince(t0)
        if single {
            printer.end()
        } else {
            for (i, o) in outcomes.enumerated() {
                printer.write("### sequence \(i)\n")
                for t in o.tokens { printer.put(t) }
                printer.end()
            }
        }
        let failed = outcomes.enumerated().filter { $0.element.completion.reason == .error }
        for (i, o) in failed { FileHandle.standardError.write(Data("error: sequence \(i): \(o.completion.error ?? "failed")\n".utf8)) }
        if verbose {
            report(outcomes, prompts: prompts, wall: wall, engine: engine)
            if let p = profile, single, p.fullTokens + p.slidingTokens > 0 {
                let ctx = prompts[0].count + outcomes[0].tokens.count
                FileHandle.standardError.write(Data(String(format: "attention (decode, context %d..%d): full layers %.2f us per token per layer, sliding-window layers %.2f us\n",
                    prompts[0].count, ctx, p.fullSeconds / Double(max(p.fullTokens, 1)) * 1e6,
                    p.slidingSeconds / Double(max(p.slidingTokens, 1)) * 1e6).utf8))
            }
        }
        if !failed.isEmpty { engine.shutdown(); throw ExitCode(1) }
    }

    /// One user message in Step 3.5's chat template, with the assistant's turn opened.
    static func chatPrompt(_ text: String, tokenizer: BPETokenizer?) -> String {
        let message = JSONValue.object([(key: "role", value: .string("user")), (key: "content", value: .string(text))])
        return StepFunTemplate.render(messages: [message], tools: nil, addGenerationPrompt: true, bos: ChatService.bosText(tokenizer))
    }

    private func report(_ outcomes: [RequestOutcome], prompts: [[Int32]], wall: Double, engine: Engine) {
        var lines = ["model: \(options.displayName)"]
        let many = outcomes.count > 1
        for (i, o) in outcomes.enumerated() {
            let u = o.completion.usage, p = prompts[i].count, steps = max(o.tokens.count - 1, 0)
            lines.append(String(format: "%@prompt eval: %d tokens in %.2f ms (%.2f tokens/s)", many ? "[\(i)] " : "",
                                p, u.promptSeconds * 1000, Double(p) / max(u.promptSeconds, 1e-9)))
            lines.append(String(format: "%@decode: %d forward passes in %.2f ms (%.2f tokens/s), %d threads",
                                many ? "[\(i)] " : "", steps, u.decodeSeconds * 1000,
                                steps > 0 ? Double(steps) / u.decodeSeconds : 0, engine.model.pool.threads))
        }
        if draft > 0 {
            func line(_ label: String, _ st: SpeculationStats, made: Int) -> String {
                let rates = st.rates.enumerated().map { String(format: "d%d %.3f (%d/%d)", $0.offset + 1, $0.element, st.accepted[$0.offset], st.drafted[$0.offset]) }
                return String(format: "%@speculative: draft %d, %d verification passes, %.2f tokens per pass; acceptance %@", label,
                              draft, st.steps, st.steps > 0 ? Double(made) / Double(st.steps) : 0, rates.joined(separator: ", "))
            }
            var total = SpeculationStats(depth: draft)
            for (i, o) in outcomes.enumerated() {
                total.add(o.completion.usage.speculation)
                if many { lines.append(line("[\(i)] ", o.completion.usage.speculation, made: max(o.tokens.count - 1, 0))) }
            }
            lines.append(line(many ? "total " : "", total, made: outcomes.reduce(0) { $0 + max($1.tokens.count - 1, 0) }))
        }
        if let p = prompts.first {
            let ctx = p.count + nPredict + draft + 1, pass = max(min(cacheOptions.ubatch, p.count), draft + 1, 1)
            let kv = engine.model.config.kvBytes(context: ctx, type: cacheOptions.type, maxPass: pass, mtp: draft > 0)
            lines.append(String(format: "kv cache: %@, context %d, %.2f MiB reserved per sequence (%d-token passes); budget %.2f MiB",
                                cacheOptions.type.rawValue, ctx, Double(kv) / 1_048_576, pass, Double(engine.kvBudget) / 1_048_576))
        }
        let total = outcomes.reduce(0) { $0 + $1.tokens.count }
        if many {
            lines.append(String(format: "total: %d sequences, %d tokens generated in %.2f ms wall (%.2f tokens/s)", outcomes.count,
                                total, wall * 1000, Double(total) / wall))
        }
        if let s = engine.session {
            engine.shutdown()
            let st = s.headStats, n = Double(max(st.layers, 1))
            lines.append(String(format: "exchange: %d MoE layer passes, %d lane(s); per layer: dispatch %.3f ms, combine wait %.3f ms (of which slowest worker compute %.3f ms)",
                                st.layers, s.topology.microBatches, st.dispatch / n * 1000, st.combine / n * 1000, s.maxWorkerCompute / n * 1000))
            lines.append(String(format: "memory: resident %.1f MiB on the largest head, %.1f MiB on the largest worker",
                                s.maxHeadRSS / 1048576, s.maxWorkerRSS / 1048576))
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

}

/// Writes generated tokens to stdout as text (holding back unfinished UTF-8) or as ids, one per line.
final class TokenPrinter: @unchecked Sendable {
    let tokenizer: BPETokenizer?
    let ids: Bool
    private var stream = TextStream()
    private let out = FileHandle.standardOutput

    init(tokenizer: BPETokenizer?, ids: Bool) {
        self.tokenizer = tokenizer
        self.ids = ids
    }

    func write(_ s: String) { out.write(Data(s.utf8)) }

    func put(_ t: Int32) {
        if ids { return write("\(t)\n") }
        guard let tok = tokenizer else { return }
        let text = stream.push(tok.bytes(of: t))
        if !text.isEmpty { write(text) }
    }

    /// Ends one sequence's output.
    func end() {
        guard !ids else { return }
        write(stream.finish())
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

