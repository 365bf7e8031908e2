import Foundation
import GGUF

/// The committed reference fixtures (Tests/Fixtures), made by Scripts/reference/make_fixtures.py.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path

    struct Golden: Decodable {
        let model: String
        let weights: String
        let n_vocab: Int
        let prompt: [Int32]
        let greedy: [Int32]
    }

    /// Names of the models that have llama.cpp golden logits.
    static let goldenNames = ["tiny-a-f32", "tiny-a-f16", "tiny-a-bf16", "tiny-a-q8_0", "tiny-a-q4_0", "tiny-b-kmix",
                              // llama-quantize presets of tiny-b F16 (Scripts/reference/make_fixtures.py --presets)
                              "tiny-b-q4_k_s", "tiny-b-q4_k_m", "tiny-b-q3_k_m", "tiny-b-q2_k", "tiny-b-iq4_xs"]

    static func golden(_ name: String) throws -> (Golden, [Float]) {
        let meta = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).json")))
        let raw = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).logits.f32"))
        let logits = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (meta, logits)
    }

    static func path(_ file: String) -> String { "\(directory)/\(file)" }
}

import ModelKit
import Step35

/// Test drivers over the one forward pass (`Step35Model.forward` with a batch of sequences): one sequence
/// at a time, and one job run to its end. Product code schedules through the engine.
extension Step35Model {
    func forward(_ t: [Int32], cache: Step35Cache, logits: LogitsSelection = .last) throws -> [Float] {
        try forward([SequenceInput(t, cache: cache, logits: logits)]).logits[0]
    }

    func forwardHidden(_ t: [Int32], cache: Step35Cache, logits: LogitsSelection = .last) throws -> (logits: [Float], hidden: [Float]) {
        let out = try forward([SequenceInput(t, cache: cache, logits: logits)])
        return (out.logits[0], out.hidden)
    }

    func forwardBatch(_ batch: [([Int32], Step35Cache)]) throws -> [[Float]] {
        try forward(batch.map { SequenceInput($0.0, cache: $0.1) }).logits
    }

    /// Runs a job alone to its end, one pass at a time.
    func run(_ job: GenerationJob, drafter: (([Int32], Int) -> [Int32])? = nil) throws -> GenerationResult {
        let s = SequenceRun(job, model: self)
        s.drafter = drafter
        while try SequenceRun.runPass([s], model: self, PassContext()) {}
        return s.result
    }
}
