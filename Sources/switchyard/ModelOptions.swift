// Options shared by every command that loads a model.
import ArgumentParser
import Foundation
import GGUF
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
