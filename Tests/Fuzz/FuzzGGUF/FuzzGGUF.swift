// libFuzzer harness: the GGUF reader on arbitrary bytes must throw or return a file whose every tensor lies
// inside the bytes; never crash, hang or read out of bounds (Tests/Fuzz/Support/FuzzSupport.swift).
import FuzzSupport
import GGUF

@_cdecl("LLVMFuzzerTestOneInput")  // the symbol libFuzzer's runtime links against
public func fuzzGGUF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzReplay.bytes(data, size)
    guard let f = try? GGUFFile(bytes: bytes) else { return 0 }
    // Touch what a loader reads: metadata values, tensor shapes, sizes and the bytes they name.
    _ = f.metadata.map { "\($0.value)" }.count
    for t in f.tensors where t.byteCount > 0 {
        _ = t.shape.reduce(1, &*)
        // The first and last byte a tensor claims must be readable (AddressSanitizer checks it).
        _ = t.address.load(as: UInt8.self)
        _ = (t.address + (t.byteCount - 1)).load(as: UInt8.self)
    }
    return 0
}

@main struct Harness {
    static func main() { FuzzReplay.main("fuzz-gguf", fuzzGGUF) }
}
