// libFuzzer harness: the byte-level BPE tokenizer of the shipped demo model (Step 3.5's vocabulary).
// First byte even: the rest is text (invalid UTF-8 repaired first); encoding it and decoding the ids must
// give the text back. Odd: the rest is little-endian Int32 ids (any value: negative, past the vocabulary);
// decoding must not trap, and the decoded text must round-trip as above. Never crash or hang
// (Tests/Fuzz/Support/FuzzSupport.swift).
import FuzzSupport
import Foundation
import GGUF
import Tokenizer

private let tokenizer: BPETokenizer = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let path = ProcessInfo.processInfo.environment["SWITCHYARD_DEMO_MODEL"]
        ?? root.appendingPathComponent("Sources/DemoModel/switchyard-demo-q8_0.gguf").path
    do { return try BPETokenizer(gguf: GGUFFile(path: path)) } catch { fatalError("fuzz-tokenizer: cannot load \(path): \(error)") }
}()

/// decode(encode(text)) == text; traps (a finding) when not.
private func checkRoundTrip(_ text: String) {
    let ids = tokenizer.encode(text)
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.count }, "encode gave an id outside the vocabulary")
    let back = tokenizer.decode(ids)
    precondition(back == text, "round trip changed the text: \(Array(text.utf8)) -> \(Array(back.utf8))")
}

@_cdecl("LLVMFuzzerTestOneInput")  // the symbol libFuzzer's runtime links against
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzReplay.bytes(data, size)
    guard let mode = bytes.first else { return 0 }
    let rest = bytes.dropFirst()
    if mode & 1 == 0 {
        checkRoundTrip(String(decoding: rest, as: UTF8.self))
    } else {
        let ids = stride(from: rest.startIndex, to: rest.endIndex - 3, by: 4).map { i in
            Int32(bitPattern: UInt32(rest[i]) | UInt32(rest[i + 1]) << 8 | UInt32(rest[i + 2]) << 16 | UInt32(rest[i + 3]) << 24)
        }
        checkRoundTrip(tokenizer.decode(ids, special: mode & 2 != 0))
    }
    return 0
}

@main struct Harness {
    static func main() { FuzzReplay.main("fuzz-tokenizer", fuzzTokenizer) }
}
