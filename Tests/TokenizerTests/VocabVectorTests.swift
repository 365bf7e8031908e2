import Foundation
import GGUF
import Testing
import Tokenizer

/// llama.cpp's own tokenizer test vectors (`models/ggml-vocab-*.gguf` with `.inp`/`.out`), fetched into
/// `vocab/` by Scripts/fetch-vocab.sh (the test command runs it first).
enum VocabVectors {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("vocab").path

    /// Every byte-level BPE ("gpt2") vocabulary in the sdist that ships test vectors.
    static let bpeVocabs = ["command-r", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "llama-bpe", "mpt",
                            "qwen2", "qwen35", "refact", "starcoder"]

    static func cases(_ name: String) throws -> [(String, [Int32])] {
        let base = "\(directory)/ggml-vocab-\(name).gguf"
        // Split bytes, not Characters: Swift would fuse a "\r" before the separator's "\n".
        let inp = Array(try Data(contentsOf: URL(fileURLWithPath: base + ".inp")))
        let sep = Array("\n__ggml_vocab_test__\n".utf8)
        var texts: [String] = []
        var start = 0, i = 0
        while i + sep.count <= inp.count {
            if Array(inp[i..<(i + sep.count)]) == sep {
                texts.append(String(decoding: inp[start..<i], as: UTF8.self))
                i += sep.count
                start = i
            } else {
                i += 1
            }
        }
        // .out has one line of ids per input.
        let out = try String(contentsOfFile: base + ".out", encoding: .utf8)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        return texts.enumerated().map { k, t in
            (t, k < lines.count ? lines[k].split(separator: " ").compactMap { Int32($0) } : [])
        }
    }
}

@Suite struct VocabVectorTests {
    /// If this fails, the pre-tokenizer regexes, the byte mapping, the merge order or special-token
    /// partitioning differs from llama.cpp for that vocabulary; the message names the first bad input.
    @Test(arguments: VocabVectors.bpeVocabs)
    func encodesLikeLlamaCpp(vocab: String) throws {
        let path = "\(VocabVectors.directory)/ggml-vocab-\(vocab).gguf"
        try #require(FileManager.default.fileExists(atPath: path), "missing \(path): run Scripts/fetch-vocab.sh")
        let tok = try BPETokenizer(gguf: GGUFFile(path: path))
        let cases = try VocabVectors.cases(vocab)
        #expect(cases.count > 20)
        var failures: [String] = []
        for (text, expected) in cases {
            let got = tok.encode(text)
            if got != expected { failures.append("\(text.debugDescription): got \(got) expected \(expected)") }
        }
        #expect(failures.isEmpty, "\(vocab): \(failures.count)/\(cases.count) differ; first: \(failures.prefix(3))")
    }

    /// If this fails, decoding does not invert encoding for plain text (byte mapping is broken).
    @Test func decodeInvertsEncode() throws {
        let path = "\(VocabVectors.directory)/ggml-vocab-gpt-2.gguf"
        try #require(FileManager.default.fileExists(atPath: path), "missing \(path): run Scripts/fetch-vocab.sh")
        let tok = try BPETokenizer(gguf: GGUFFile(path: path))
        let text = "Hello, wörld! \t 3.14159 🦙 — ok\n\nbye"
        #expect(tok.decode(tok.encode(text)) == text)
    }
}
