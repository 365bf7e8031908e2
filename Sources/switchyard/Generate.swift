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

    @Option(name: [.short, .customLong("prompt")], help: "Prompt text.")
    var prompt: String?

    @Option(help: "Prompt as comma-separated token ids (e.g. 5,17,200) instead of text.")
    var promptTokens: String?

    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Number of tokens to generate.")
    var nPredict: Int = 32

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

    @Flag(help: "Print timings to stderr.")
    var verbose = false

    func validate() throws {
        if prompt != nil && promptTokens != nil { throw ValidationError("give --prompt or --prompt-tokens, not both") }
        if nPredict < 0 { throw ValidationError("-n must be >= 0") }
        if temp < 0 { throw ValidationError("--temp must be >= 0") }
        if topP <= 0 || topP > 1 { throw ValidationError("--top-p must be in (0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must be >= 0") }
    }

    func run() throws {
        try reportingErrors {
            guard let rt = try Runtime.make(options) else { return }  // a non-coordinator rank served the job
            defer { rt.finish() }
            let model = rt.model
            let tokenizer = try? BPETokenizer(gguf: rt.file)
            var ids: [Int32]
            if let list = promptTokens {
                ids = try parseTokenList(list)
            } else {
                guard let tok = tokenizer else { throw ValidationError("this model has no usable tokenizer: use --prompt-tokens") }
                ids = tok.encode(prompt ?? "", addSpecial: true, parseSpecial: true)
                if ids.isEmpty, let b = tok.bos { ids = [b] }
            }
            guard !ids.isEmpty else { throw ValidationError("the prompt is empty") }
            let stopSet = ignoreEos ? [] : (tokenizer?.endOfGeneration ?? [])
            var sampler = Sampler(SamplingParams(temperature: temp, topK: topK, topP: topP, seed: seed))
            let cache = model.makeCache(capacity: ids.count + nPredict)
            let out = FileHandle.standardOutput
            var pending: [UInt8] = []

            let t0 = DispatchTime.now()
            var logits = try rt.forward(ids, cache: cache)
            let t1 = DispatchTime.now()
            var produced = 0
            for _ in 0..<nPredict {
                let next = Int32(sampler.sample(logits))
                produced += 1
                if printIds {
                    out.write(Data("\(next)\n".utf8))
                } else if let tok = tokenizer {
                    pending += tok.bytes(of: next)
                    let (text, rest) = Self.completeUTF8(pending)
                    pending = rest
                    if !text.isEmpty { out.write(Data(text.utf8)) }
                }
                if stopSet.contains(next) { break }
                if produced == nPredict { break }
                logits = try rt.forward([next], cache: cache)
            }
            if !printIds {
                if !pending.isEmpty { out.write(Data(String(decoding: pending, as: UTF8.self).utf8)) }
                out.write(Data("\n".utf8))
            }
            let t2 = DispatchTime.now()
            if verbose {
                let pe = Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6
                let de = Double(t2.uptimeNanoseconds - t1.uptimeNanoseconds) / 1e6
                let steps = max(produced - 1, 0)
                FileHandle.standardError.write(Data("""
                    model: \(options.displayName)
                    prompt eval: \(ids.count) tokens in \(String(format: "%.2f", pe)) ms (\(String(format: "%.2f", Double(ids.count) / pe * 1000)) tokens/s)
                    decode: \(steps) forward passes in \(String(format: "%.2f", de)) ms (\(String(format: "%.2f", steps > 0 ? Double(steps) / de * 1000 : 0)) tokens/s), \(model.pool.threads) threads

                    """.utf8))
                if let s = rt.session {
                    rt.finish()
                    let st = s.headStats, n = Double(max(st.layers, 1))
                    FileHandle.standardError.write(Data(String(format: "exchange: %d MoE layer passes; per layer: dispatch %.3f ms, combine wait %.3f ms (of which slowest worker compute %.3f ms)\n",
                        st.layers, st.dispatch / n * 1000, st.combine / n * 1000, s.maxWorkerCompute / n * 1000).utf8))
                }
            }
        }
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
