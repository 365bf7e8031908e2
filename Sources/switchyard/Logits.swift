// `switchyard logits`: one forward pass, every position's logits as raw float32.
import ArgumentParser
import Engine
import Foundation
import ModelKit
import Step35

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one forward pass and write [n_tokens][n_vocab] little-endian float32 logits to a file.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions

    @Option(help: "Comma-separated token ids, e.g. 5,17,200.")
    var tokens: String

    @Option(help: "Output file.")
    var out: String

    @Option(help: "Also dump every named intermediate (attn_norm, Qcur_pos, ffn_moe_topk, l_out, ...) as float32 files into this directory.")
    var dumpDir: String?

    func run() throws {
        try reportingErrors {
            let ids = try parseTokenList(tokens)
            var config = try cacheOptions.engineConfig()
            if let dir = dumpDir {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                config.debugHook = dumpingHook(directory: dir)
            }
            guard let engine = try options.startEngine(config) else { return }
            defer { engine.shutdown() }
            let outcome = try engine.generate([InferenceRequest(prompt: ids, maxTokens: 0, promptLogits: true)])[0]
            guard let logits = outcome.completion.promptLogits else {
                throw ValidationError("no logits came back: \(outcome.completion.error ?? "\(outcome.completion.reason)")")
            }
            // Float is little-endian on every platform Swift runs on here; the bytes go out as they are.
            let data = logits.withUnsafeBytes { Data($0) }
            guard FileManager.default.createFile(atPath: out, contents: data) else {
                throw ValidationError("cannot write \(out)")
            }
        }
    }
}
