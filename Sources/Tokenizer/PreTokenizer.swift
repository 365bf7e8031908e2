// Pre-tokenizers for byte-level (gpt2-type) BPE vocabularies: the regex families llama.cpp selects
// from `tokenizer.ggml.pre`.
//
// Reference: llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_bpe` regex lists, pre-type names) and
// `src/unicode.cpp` (`unicode_regex_split`): each regex in a list splits every fragment left by the
// previous one; text between matches stays as its own fragment; a regex never sees past its fragment.

/// A pre-tokenizer: an ordered list of splitting regexes.
public struct PreTokenizer: @unchecked Sendable {
    /// The `tokenizer.ggml.pre` family name this was built for.
    public let name: String
    let patterns: [String]
    // Compiled once; immutable after init.
    private let compiled: [Regex<AnyRegexOutput>]
    /// Whether the pre-tokenizer's `tokenizer.ggml.pre` family ignores merges for whole-word hits.
    public let ignoreMerges: Bool

    private static let contractions = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    private static let gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
    private static let llama3 = contractions
        + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    private static let qwen2 = contractions
        + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    private static let qwen35 = contractions
        + "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    private static let deepseekLetters =
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"

    /// Pre-tokenizer for a `tokenizer.ggml.pre` name; nil for names this build does not implement.
    public static func named(_ pre: String) -> PreTokenizer? {
        func p(_ pats: [String], ignore: Bool = false) -> PreTokenizer {
            // Matching is per Unicode scalar (code point), as llama.cpp's is, not per grapheme cluster.
            PreTokenizer(name: pre, patterns: pats, compiled: pats.map { try! Regex(scalarRanges($0)).matchingSemantics(.unicodeScalar) },
                         ignoreMerges: ignore)
        }
        switch pre {
        case "default":
            return p(["[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]"])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            return p([llama3], ignore: true)
        case "dbrx", "smaug-bpe":
            return p([llama3])
        case "deepseek-llm":
            return p(["[\\r\\n]", deepseekLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+\\z", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"])
        case "deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4":
            return p(["\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"])
        case "deepseek-coder":
            return p(["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"])
        case "falcon":
            return p(["[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2, "[0-9][0-9][0-9]"])
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2":
            return p(["\\p{N}", gpt2])
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mpt", "olmo",
             "jais", "trillion", "granite-docling", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe":
            return p([gpt2])
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "megrez":
            return p([qwen2])
        case "qwen35":
            return p([qwen35])
        case "chatglm-bpe":
            return p([llama3])
        case "glm4", "glm5":
            return p([llama3], ignore: true)
        case "poro-chat", "bloom", "gpt3-finnish":
            return p([" ?[^(\\s|.,!?…。，、।۔،)]+"])
        case "viking":
            return p([" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"])
        default:
            return nil
        }
    }

    /// Swift compares the ends of a class range as canonically-equivalent Characters, so a range whose
    /// upper end has a singleton decomposition (deepseek-llm's `Ὗ-ώ`: U+1F7D ≡ U+03CE) fails to compile.
    /// Such an end is lowered to the nearest code point that keeps the range valid.
    static func scalarRanges(_ pattern: String) -> String {
        var scalars = Array(pattern.unicodeScalars)
        var inClass = false
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "\\" { i += 2; continue }
            if c == "[" { inClass = true } else if c == "]" { inClass = false }
            if inClass, c == "-", i > 0, i + 1 < scalars.count, scalars[i + 1] != "]", scalars[i - 1] != "[" {
                let lo = Character(scalars[i - 1])
                var hi = scalars[i + 1]
                while Character(hi) < lo, hi.value > scalars[i - 1].value, let prev = Unicode.Scalar(hi.value - 1) { hi = prev }
                scalars[i + 1] = hi
            }
            i += 1
        }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }

    /// Splits `text` into pre-token words (as Unicode scalar sequences, concatenating back to `text`).
    public func split(_ text: String) -> [String] {
        var fragments = [text]
        for re in compiled {
            var next: [String] = []
            for frag in fragments {
                var last = frag.startIndex
                for m in frag.matches(of: re) where !m.range.isEmpty {
                    if m.range.lowerBound > last { next.append(String(frag.unicodeScalars[last..<m.range.lowerBound])) }
                    next.append(String(frag.unicodeScalars[m.range]))
                    last = m.range.upperBound
                }
                if last < frag.endIndex { next.append(String(frag.unicodeScalars[last...])) }
            }
            fragments = next
        }
        return fragments
    }
}
