// `switchyard synth`: writes a deterministic synthetic Step 3.5 GGUF (random weights) for tests and benchmarks.
import ArgumentParser
import Foundation
import GGUF
import Step35

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic Step 3.5-shaped GGUF with deterministic random weights.")

    @Option(help: "Output path.")
    var out: String

    @Option(help: "Preset: tiny (what -m builtin:tiny builds in memory) or bench-1gb (~1 GB at q8_0).")
    var preset: String = "tiny"

    @Option(help: "Weight type: f32, f16, bf16, q8_0 or q4_0.")
    var type: String = "f32"

    @Option(help: "RNG seed.")
    var seed: UInt64 = 0x5357_4954

    func run() throws {
        try reportingErrors {
            guard let t = GGMLType(name: type), Quantize.types.contains(t) else {
                throw ValidationError("--type must be f32, f16, bf16, q8_0 or q4_0")
            }
            let shape: Step35Shape
            switch preset {
            case "tiny": shape = .tiny
            case "bench-1gb": shape = .bench1GB
            default: throw ValidationError("unknown --preset '\(preset)' (tiny, bench-1gb)")
            }
            let bytes = Step35Synthetic.gguf(shape: shape, type: t, seed: seed)
            guard FileManager.default.createFile(atPath: out, contents: Data(bytes)) else { throw ValidationError("cannot write \(out)") }
            FileHandle.standardError.write(Data("wrote \(out): \(bytes.count) bytes\n".utf8))
        }
    }
}
