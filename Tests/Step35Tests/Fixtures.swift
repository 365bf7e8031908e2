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
    static let goldenNames = ["tiny-a-f32", "tiny-a-f16", "tiny-a-bf16", "tiny-a-q8_0", "tiny-a-q4_0", "tiny-b-kmix"]

    static func golden(_ name: String) throws -> (Golden, [Float]) {
        let meta = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).json")))
        let raw = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).logits.f32"))
        let logits = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (meta, logits)
    }

    static func path(_ file: String) -> String { "\(directory)/\(file)" }
}
