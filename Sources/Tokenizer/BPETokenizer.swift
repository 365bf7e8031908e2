// Byte-level BPE tokenizer read from GGUF `tokenizer.ggml.*` (model "gpt2").
//
// Reference: llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_bpe_session::tokenize`,
// `tokenizer_st_partition`, `token_to_piece`) and GPT-2's `bytes_to_unicode`.
// Steps: split out special tokens, pre-tokenize by regex, map each word's UTF-8 bytes to printable
// code points, merge the lowest-ranked adjacent pair until none is left, look the pieces up.
import GGUF

/// GGUF token types (`tokenizer.ggml.token_type`).
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Errors building a tokenizer.
public struct TokenizerError: Error, CustomStringConvertible {
    public let description: String
}

/// A byte-level BPE tokenizer.
public final class BPETokenizer: @unchecked Sendable {
    /// Token strings by id (in byte-mapped form).
    public let tokens: [String]
    /// Token types by id.
    public let types: [TokenType]
    /// The pre-tokenizer in use.
    public let pre: PreTokenizer
    /// Beginning-of-sequence id, if any.
    public let bos: Int32?
    /// End-of-sequence id, if any.
    public let eos: Int32?
    /// Ids that end generation (EOS plus end-of-turn tokens such as `<|im_end|>`).
    public let endOfGeneration: Set<Int32>
    /// Whether a BOS is prepended when encoding with special tokens.
    public let addBOS: Bool

    private let tokenToID: [String: Int32]
    private let ranks: [Pair: Int]
    private let specials: [(text: String, id: Int32, control: Bool)]
    private static let byteToScalar: [Unicode.Scalar] = makeByteMap()
    private static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    struct Pair: Hashable {
        let a: String
        let b: String
    }

    /// Reads the tokenizer of a GGUF file.
    public convenience init(gguf f: GGUFFile) throws {
        let model = f.value("tokenizer.ggml.model")?.string ?? "(missing)"
        guard model == "gpt2" else {
            throw TokenizerError(description: "tokenizer model '\(model)' is not supported (Switchyard implements byte-level BPE, 'gpt2')")
        }
        guard let toks = f.value("tokenizer.ggml.tokens")?.array?.compactMap(\.string), !toks.isEmpty else {
            throw GGUFError.missingKey("tokenizer.ggml.tokens")
        }
        let types = f.value("tokenizer.ggml.token_type")?.array?.map { TokenType(rawValue: $0.int ?? 1) ?? .normal }
            ?? Array(repeating: .normal, count: toks.count)
        guard types.count == toks.count else {
            throw TokenizerError(description: "tokenizer.ggml.token_type has \(types.count) entries for \(toks.count) tokens")
        }
        guard let merges = f.value("tokenizer.ggml.merges")?.array?.compactMap(\.string) else {
            throw GGUFError.missingKey("tokenizer.ggml.merges")
        }
        let preName = f.value("tokenizer.ggml.pre")?.string ?? "default"
        guard let pre = PreTokenizer.named(preName) else {
            throw TokenizerError(description: "pre-tokenizer '\(preName)' is not implemented")
        }
        let id = { (k: String) in f.value(k)?.int.map(Int32.init) }
        let eos = id("tokenizer.ggml.eos_token_id")
        var eog = Set([eos, id("tokenizer.ggml.eot_token_id"), id("tokenizer.ggml.eom_token_id")].compactMap { $0 })
        for (i, t) in toks.enumerated() where types[i] == .control && ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>"].contains(t) {
            eog.insert(Int32(i))
        }
        try self.init(tokens: toks, types: types, merges: merges, pre: pre, bos: id("tokenizer.ggml.bos_token_id"),
                      eos: eos, endOfGeneration: eog, addBOS: f.value("tokenizer.ggml.add_bos_token")?.bool ?? false)
    }

    /// Builds a tokenizer from its parts.
    public init(tokens: [String], types: [TokenType], merges: [String], pre: PreTokenizer, bos: Int32?, eos: Int32?,
                endOfGeneration: Set<Int32>, addBOS: Bool) throws {
        self.tokens = tokens
        self.types = types
        self.pre = pre
        self.bos = bos
        self.eos = eos
        self.endOfGeneration = endOfGeneration
        self.addBOS = addBOS
        var map: [String: Int32] = [:]
        map.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where map[t] == nil { map[t] = Int32(i) }
        tokenToID = map
        var r: [Pair: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            // Split at the first space after the first character (a merge side may itself start with one).
            let chars = Array(m)
            guard let sp = chars.dropFirst().firstIndex(of: " ") else {
                throw TokenizerError(description: "malformed merge #\(i): '\(m)'")
            }
            let pair = Pair(a: String(chars[..<sp]), b: String(chars[(sp + 1)...]))
            if r[pair] == nil { r[pair] = i }
        }
        ranks = r
        // Longest first, so a special token is never split by a shorter one it contains.
        specials = tokens.enumerated()
            .filter { [.control, .userDefined, .unknown].contains(types[$0.offset]) && !$0.element.isEmpty }
            .map { (text: $0.element, id: Int32($0.offset), control: types[$0.offset] != .userDefined) }
            .sorted { $0.text.utf8.count > $1.text.utf8.count }
    }

    /// Vocabulary size.
    public var count: Int { tokens.count }

    /// Encodes text. User-defined tokens are always matched whole; control tokens only when `parseSpecial`.
    /// `addSpecial` prepends BOS when the vocabulary asks for it.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        if addSpecial, addBOS, let b = bos { out.append(b) }
        for frag in partition(text, parseSpecial: parseSpecial) {
            switch frag {
            case .special(let id): out.append(id)
            case .text(let s):
                for word in pre.split(s) { encodeWord(word, into: &out) }
            }
        }
        return out
    }

    enum Fragment {
        case text(String)
        case special(Int32)
    }

    func partition(_ text: String, parseSpecial: Bool) -> [Fragment] {
        var frags: [Fragment] = [.text(text)]
        for sp in specials where parseSpecial || !sp.control {
            var next: [Fragment] = []
            for f in frags {
                guard case .text(let s) = f else { next.append(f); continue }
                var rest = Substring(s)
                while let r = rest.range(of: sp.text) {
                    if r.lowerBound > rest.startIndex { next.append(.text(String(rest[..<r.lowerBound]))) }
                    next.append(.special(sp.id))
                    rest = rest[r.upperBound...]
                }
                if !rest.isEmpty { next.append(.text(String(rest))) }
            }
            frags = next
        }
        return frags
    }

    private func encodeWord(_ word: String, into out: inout [Int32]) {
        let mapped = String(String.UnicodeScalarView(word.utf8.map { Self.byteToScalar[Int($0)] }))
        if pre.ignoreMerges, let id = tokenToID[mapped] {
            out.append(id)
            return
        }
        var syms = mapped.unicodeScalars.map { String($0) }
        // Merge the lowest-ranked adjacent pair (leftmost on ties) until no pair has a rank.
        while syms.count > 1 {
            var best = Int.max, at = -1
            for i in 0..<(syms.count - 1) {
                if let r = ranks[Pair(a: syms[i], b: syms[i + 1])], r < best { best = r; at = i }
            }
            if at < 0 { break }
            syms[at] += syms[at + 1]
            syms.remove(at: at + 1)
        }
        for s in syms {
            if let id = tokenToID[s] {
                out.append(id)
            } else {
                // llama.cpp's fallback: look up each byte of the piece as a one-byte token.
                for b in s.utf8 { if let id = tokenToID[String(UnicodeScalar(b))] { out.append(id) } }
            }
        }
    }

    /// The bytes a token stands for (control tokens give their text only when `special`).
    public func bytes(of id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        let t = tokens[Int(id)]
        switch types[Int(id)] {
        case .control, .unknown, .unused: return special ? Array(t.utf8) : []
        case .userDefined: return Array(t.utf8)
        default: return t.unicodeScalars.flatMap { s in Self.scalarToByte[s.value].map { [$0] } ?? Array(String(s).utf8) }
        }
    }

    /// Decodes tokens to text (invalid UTF-8 is repaired).
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        String(decoding: ids.flatMap { bytes(of: $0, special: special) }, as: UTF8.self)
    }

    /// The token id of an exact token string, if present.
    public func id(of token: String) -> Int32? { tokenToID[token] }

    /// GPT-2's byte → printable code point map.
    static func makeByteMap() -> [Unicode.Scalar] {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var cps = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            cps.append(256 + n)
            n += 1
        }
        var map = [Unicode.Scalar](repeating: "\0", count: 256)
        for (b, c) in zip(printable, cps) { map[b] = Unicode.Scalar(UInt32(c))! }
        return map
    }

    /// The byte-level form of raw bytes (for building vocabularies).
    public static func byteLevel(_ bytes: some Sequence<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { byteToScalar[Int($0)] }))
    }
}
