// `switchyard logits`: one forward pass, every position's logits as raw float32.
import ArgumentParser
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
            guard let rt = try Runtime.make(options) else { return }
            defer { rt.finish() }
            let model = rt.model
            if let dir = dumpDir {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                model.debugHook = dumpingHook(directory: dir)
            }
            let job = GenerationJob(id: 0, prompt: ids, nPredict: 0, promptLogits: true, context: cacheOptions.ctxSize,
                                    kvType: cacheOptions.type, ubatch: cacheOptions.ubatch)
            guard let logits = try rt.run([job]).first?.logits else { throw ValidationError("no logits came back") }
            // Float is little-endian on every platform Swift runs on here; the bytes go out as they are.
            let data = logits.withUnsafeBytes { Data($0) }
            guard FileManager.default.createFile(atPath: out, contents: data) else {
                throw ValidationError("cannot write \(out)")
            }
        }
    }
}
