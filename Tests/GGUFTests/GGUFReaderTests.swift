import Foundation
import GGUF
import Testing

/// A small valid image: a few metadata types (nested arrays included) and two tensors.
func sampleImage() -> [UInt8] {
    var w = GGUFWriter()
    w.add("general.architecture", .string("test"))
    w.add("u8", .uint8(7))
    w.add("i64", .int64(-5))
    w.add("f64", .float64(2.5))
    w.add("flag", .bool(true))
    w.add("nested", .array(.array, [.ints([1, 2]), .ints([3])]))
    w.add("empty", .array(.uint32, []))
    w.addTensor("a", shape: [4, 2], floats: (0..<8).map(Float.init))
    w.addTensor("b", type: .q8_0, shape: [32], data: Quantize.row(.q8_0, (0..<32).map { Float($0) / 8 }))
    return w.bytes()
}

@Suite struct GGUFReaderTests {
    /// If this fails, the writer and reader disagree on the layout, so every fixture and tool breaks.
    @Test func roundTripsMetadataAndTensors() throws {
        let f = try GGUFFile(bytes: sampleImage())
        #expect(f.version == 3)
        #expect(f.value("u8") == .uint8(7))
        #expect(f.value("i64")?.int == -5)
        #expect(f.value("f64")?.double == 2.5)
        #expect(f.value("flag")?.bool == true)
        #expect(f.value("nested") == .array(.array, [.ints([1, 2]), .ints([3])]))
        #expect(f.value("empty") == .array(.uint32, []))
        let a = try #require(f.tensor("a"))
        #expect(a.shape == [4, 2] && a.type == .f32 && a.offset % f.alignment == 0)
        #expect(Dequantize.tensor(a) == (0..<8).map(Float.init))
        #expect(f.tensor("b")?.byteCount == 34)
    }

    /// If this fails, a file from a path (mmap) reads differently from the same bytes in memory.
    @Test func mmapMatchesInMemory() throws {
        let path = NSTemporaryDirectory() + "gguf-\(UUID().uuidString).gguf"
        try Data(sampleImage()).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try GGUFFile(path: path)
        #expect(f.tensors.map(\.name) == ["a", "b"])
        #expect(Dequantize.tensor(f.tensor("a")!) == (0..<8).map(Float.init))
    }
}

/// Malformed inputs: each must raise the matching `GGUFError`, never crash or read out of bounds.
@Suite struct GGUFMalformedTests {
    func expectError(_ bytes: [UInt8], _ check: (GGUFError) -> Bool, _ comment: Comment) {
        do {
            _ = try GGUFFile(bytes: bytes)
            Issue.record("accepted a malformed file: \(comment)")
        } catch let e as GGUFError {
            #expect(check(e), "\(comment): got \(e)")
            #expect(!e.description.isEmpty)
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }

    /// If this fails, a non-GGUF file is not recognised as such.
    @Test func wrongMagic() {
        var b = sampleImage()
        b[0] = UInt8(ascii: "X")
        expectError(b, { if case .badMagic = $0 { true } else { false } }, "bad magic")
    }

    /// If this fails, unsupported versions (1, 4) are parsed with the wrong layout.
    @Test func wrongVersion() {
        var b = sampleImage()
        b[4] = 1
        expectError(b, { $0 == .unsupportedVersion(1) }, "version 1")
    }

    /// If this fails, a cut file (every possible truncation point in the header) can crash the reader.
    @Test func everyTruncationIsReported() {
        let b = sampleImage()
        let f = try! GGUFFile(bytes: b)
        for n in stride(from: 0, to: f.dataOffset, by: 1) {
            expectError(Array(b[0..<n]), { e in
                switch e { case .truncated, .badMagic, .tooLarge, .tensorOutOfBounds: true; default: false }
            }, "truncated to \(n)")
        }
        // Cut inside the data section: the tensor runs past the end.
        expectError(Array(b[0..<(b.count - 40)]), { if case .tensorOutOfBounds = $0 { true } else { false } }, "data cut")
    }

    /// If this fails, an unknown metadata value type is misparsed instead of rejected.
    @Test func unknownValueType() {
        var w = GGUFWriter()
        w.add("k", .uint32(1))
        var b = w.bytes()
        // Header is 24 bytes; the key is 8 + 1 bytes; then the u32 type id.
        b[24 + 9] = 99
        expectError(b, { $0 == .unknownValueType(raw: 99, key: "k") }, "value type 99")
    }

    /// If this fails, unknown tensor types or out-of-range offsets are accepted.
    @Test func badTensorInfo() throws {
        var w = GGUFWriter()
        w.addTensor("t", shape: [8], floats: Array(repeating: 1, count: 8))
        let good = w.bytes()
        let f = try GGUFFile(bytes: good)
        // Tensor info: name(8+1), n_dims(4), dims(8), type(4), offset(8) after the 24-byte header.
        let typeAt = 24 + 9 + 4 + 8
        var b = good
        b[typeAt] = 200
        expectError(b, { $0 == .unknownTensorType(raw: 200, tensor: "t") }, "type 200")
        b = good
        b[typeAt + 4 + 1] = 0x10  // offset += 4096
        expectError(b, { if case .tensorOutOfBounds = $0 { true } else { false } }, "offset past end")
        b = good
        b[typeAt + 4] = 3  // misaligned offset
        expectError(b, { if case .misalignedTensor = $0 { true } else { false } }, "misaligned")
        b = good
        b[24 + 9 + 4] = 0  // dimension 0
        expectError(b, { if case .invalidDimensions = $0 { true } else { false } }, "zero dim")
        #expect(f.tensors.count == 1)
    }

    /// If this fails, a Q8_0 row whose length is not a multiple of 32 is accepted (shape mismatch).
    @Test func rowNotBlockAligned() {
        var w = GGUFWriter()
        w.addTensor("q", type: .q8_0, shape: [32], data: [UInt8](repeating: 0, count: 34))
        var b = w.bytes()
        b[24 + 9 + 4] = 16  // ne0 = 16
        expectError(b, { if case .rowNotBlockAligned = $0 { true } else { false } }, "ne0 16 for Q8_0")
    }

    /// If this fails, absurd counts make the reader allocate or loop before noticing the file is short.
    @Test func hugeCounts() {
        var b = sampleImage()
        for i in 8..<16 { b[i] = 0xFF }
        expectError(b, { if case .tooLarge = $0 { true } else { false } }, "tensor count 2^64-1")
    }

    /// If this fails, a missing file is not reported with its path.
    @Test func missingFile() {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
    }
}
