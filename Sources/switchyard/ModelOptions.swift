// Options shared by every command that loads a model.
import ArgumentParser
import Foundation
import GGUF
import ModelKit
import Step35
import Tokenizer

struct ModelOptions: ParsableArguments {
    @Option(name: [.short, .customLong("model")], help: "Path to a step35 GGUF file (default: the embedded tiny model).")
    var model: String?

    @Option(name: [.short, .customLong("threads")], help: "Threads for the kernels (default: all cores; under --topology, the topology's threads).")
    var threadsOption: Int?

    @Option(help: "Expert-parallel topology file (YAML, see Docs/TOPOLOGY.md); run under mpirun/mpiexec.")
    var topology: String?

    var threads: Int { threadsOption ?? ProcessInfo.processInfo.activeProcessorCount }
    var threadsGiven: Bool { threadsOption != nil }

    /// Opens the GGUF (or builds the embedded default in memory).
    func file() throws -> GGUFFile {
        guard let path = model else { return try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)) }
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("model file not found: \(path)") }
        return try GGUFFile(path: path)
    }

    var displayName: String { model ?? "embedded tiny Step 3.5 model (random weights)" }

    func validate() throws {
        guard threadsOption.map({ $0 >= 1 && $0 <= 1024 }) ?? true else { throw ValidationError("--threads must be between 1 and 1024") }
    }
}

/// Parses "5,17,200" into token ids.
func parseTokenList(_ s: String) throws -> [Int32] {
    let parts = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    let ids = parts.map { Int32($0) }
    guard !parts.isEmpty, !ids.contains(nil) else {
        throw ValidationError("token list must be comma-separated integers, e.g. 5,17,200 (got '\(s)')")
    }
    return ids.map { $0! }
}

/// KV cache and batching options, named as llama.cpp names them.
struct CacheOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("ctx-size")],
            help: "Context to reserve KV memory for, up to 262144 (default 0: what each sequence needs).")
    var ctxSize: Int = 0

    @Option(help: "KV cache type: f32, f16 or q8_0 (int8 blocks of 32 with one scale; attention reads it in place).")
    var kvType: String = "f32"

    @Option(name: [.customLong("ubatch-size")], help: "Most prompt tokens per forward pass (prefill goes in chunks).")
    var ubatch: Int = 512

    var type: KVType { KVType(rawValue: kvType)! }

    func validate() throws {
        guard KVType(rawValue: kvType) != nil else { throw ValidationError("--kv-type must be f32, f16 or q8_0 (got '\(kvType)')") }
        guard (0...262_144).contains(ctxSize) else { throw ValidationError("--ctx-size must be between 0 and 262144") }
        guard ubatch >= 1 else { throw ValidationError("--ubatch-size must be >= 1") }
    }
}
