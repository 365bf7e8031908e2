// Options shared by every command that loads a model.
import ArgumentParser
import Engine
import DemoModel
import Foundation
import GGUF
import ModelKit
import Step35
import Tokenizer

struct ModelOptions: ParsableArguments {
    @Option(name: [.short, .customLong("model")], help: "Path to a step35 GGUF file, or builtin:tiny for the random-weight tiny model built in memory (default: the shipped demo model, builtin:demo).")
    var model: String?

    @Option(name: [.short, .customLong("threads")], help: "Threads for the kernels (default: all cores; under --topology, the topology's threads).")
    var threadsOption: Int?

    @Option(help: "Expert-parallel topology file (YAML, see Docs/TOPOLOGY.md); run under mpirun/mpiexec.")
    var topology: String?

    @Flag(help: "Multiply Q8_0/Q4_0 weights with float activations (the golden-tested path) instead of Q8_0-quantized ones (faster).")
    var exact = false

    @Flag(name: .customLong("no-repack"),
          help: "Keep Q8_0/Q4_0/Q5_0/IQ4_NL/Q4_K/Q6_K weights as mapped instead of copying them into four-row groups at load (llama.cpp's --no-repack; slower).")
    var noRepack = false

    var threads: Int { threadsOption ?? ProcessInfo.processInfo.activeProcessorCount }
    var threadsGiven: Bool { threadsOption != nil }

    /// The random-weight tiny model's name for `-m` (synthetic tests, shapes the demo model lacks).
    static let builtinTiny = "builtin:tiny"
    /// The shipped demo model's name for `-m` (the default).
    static let builtinDemo = "builtin:demo"

    /// What `-m` names: a built-in model or a file.
    enum Choice { case tiny, demo, file(String) }

    var choice: Choice {
        switch model ?? Self.builtinDemo {
        case Self.builtinTiny: return .tiny
        case Self.builtinDemo: return .demo
        case let path: return .file(path)
        }
    }

    /// Opens the GGUF: the named file, the tiny model built in memory, or the shipped demo model.
    func file() throws -> GGUFFile {
        switch choice {
        case .tiny: return try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny))
        case .demo:
            do { return try GGUFFile(path: try DemoModel.path()) } catch let e as DemoModelError { throw ValidationError(e.description) }
        case .file(let path):
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("model file not found: \(path)") }
            return try GGUFFile(path: path)
        }
    }

    var displayName: String {
        switch choice {
        case .tiny: return "built-in tiny Step 3.5 model (random weights)"
        case .demo: return "demo Step 3.5 model (\(DemoModel.fileName), 12.8M parameters, trained; Docs/MODEL.md)"
        case .file(let path): return path
        }
    }

    /// The name the server answers to by default: the file's name without extension, or the built-in's alias.
    var servedName: String {
        switch choice {
        case .tiny: return "switchyard-tiny"
        case .demo: return DemoModel.alias
        case .file(let path): return URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        }
    }

    /// Where the engine gets the model (`open` overrides the file, e.g. a built-in shape).
    func source(open: (() throws -> GGUFFile)? = nil) -> ModelSource {
        let o = self
        var s = ModelSource(threads: threadsOption, topology: topology) { try open?() ?? o.file() }
        s.exact = exact
        s.repack = !noRepack
        return s
    }

    /// Starts the engine (nil on ranks other than 0, which served the job); setup errors as messages.
    func startEngine(_ config: EngineConfig, open: (() throws -> GGUFFile)? = nil, source given: ModelSource? = nil) throws -> Engine? {
        do { return try Engine.start(given ?? source(open: open), config: config) } catch let e as FollowerExit { throw ExitCode(e.status) }
    }

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
            help: "Total positions of KV cache shared by the sequences (llama-server's -c with -np), up to 262144 (default 0: the model's context per sequence, within the memory available).")
    var ctxSize: Int = 0

    @Option(help: "KV budget per head, e.g. 512M or 4G (default: what --ctx-size implies, else 3/4 of the memory available).")
    var kvBudget: String?

    @Option(help: "KV cache type: f32, f16 or q8_0 (int8 blocks of 32 with one scale; attention reads it in place).")
    var kvType: String = "f32"

    @Option(name: [.customLong("ubatch-size")], help: "Most prompt tokens per forward pass (prefill goes in chunks).")
    var ubatch: Int = 512

    var type: KVType { KVType(rawValue: kvType)! }

    /// The engine's settings for these options.
    func engineConfig(parallel: Int = 1, maxQueue: Int = 256) throws -> EngineConfig {
        var c = EngineConfig()
        c.parallel = parallel
        c.maxQueue = maxQueue
        c.contextSize = ctxSize
        c.kvType = type
        c.ubatch = ubatch
        c.kvBudget = try kvBudget.map(parseBytes)
        return c
    }

    func validate() throws {
        _ = try kvBudget.map(parseBytes)
        guard KVType(rawValue: kvType) != nil else { throw ValidationError("--kv-type must be f32, f16 or q8_0 (got '\(kvType)')") }
        guard (0...262_144).contains(ctxSize) else { throw ValidationError("--ctx-size must be between 0 and 262144") }
        guard ubatch >= 1 else { throw ValidationError("--ubatch-size must be >= 1") }
    }
}

/// Parses a byte count: a number with an optional K, M or G suffix (powers of 1024), e.g. 512M.
func parseBytes(_ s: String) throws -> Int {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    let (digits, unit) = t.last.flatMap { units[$0] }.map { (String(t.dropLast()), $0) } ?? (t.hasSuffix("B") ? String(t.dropLast()) : t, 1)
    guard let v = Double(digits), v > 0 else { throw ValidationError("a byte count must look like 512M or 4G (got '\(s)')") }
    return Int(v * Double(unit))
}
