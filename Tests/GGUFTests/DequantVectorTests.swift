import Foundation
import GGUF
import Testing

/// Fixture `dequant-vectors.gguf`: random blocks of each type with gguf 0.19.0's numpy dequantization
/// (made by Scripts/reference/make_fixtures.py).
@Suite struct DequantVectorTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dequant-vectors.gguf").path

    /// If this fails, the reference dequantizer for that type reads the block layout differently from gguf-py.
    @Test(arguments: ["f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1", "iq4_nl", "q2_k", "q3_k", "iq4_xs"])
    func matchesGGUFPy(type: String) throws {
        let f = try GGUFFile(path: Self.path)
        let raw = try #require(f.tensor("\(type).raw"))
        let expected = Dequantize.tensor(try #require(f.tensor("\(type).expected")))
        #expect(raw.type.name.lowercased() == type)
        let got = Dequantize.tensor(raw)
        #expect(got.count == expected.count && got.count >= 256)
        let bad = zip(got, expected).enumerated().first { abs($0.element.0 - $0.element.1) > 1e-6 * max(1, abs($0.element.1)) }
        #expect(bad == nil, "\(type): first mismatch at \(bad?.offset ?? -1): \(bad.map { "\($0.element)" } ?? "")")
    }
}
