// GGUF v3 writer, for tests and tools (the tiny default model, synthetic benchmark files).
//
// Reference: GGUF specification (ggml `docs/gguf.md`); gguf-py `gguf_writer.py` for field order.

import Foundation

/// Builds a GGUF v3 image in memory and writes it out.
public struct GGUFWriter {
    private var kv: [(String, GGUFValue)] = []
    private var tensors: [(name: String, type: GGMLType, shape: [Int], data: [UInt8])] = []
    /// Data-section alignment.
    public var alignment = 32

    /// Creates an empty writer.
    public init() {}

    /// Adds a metadata pair (file order is insertion order).
    public mutating func add(_ key: String, _ value: GGUFValue) { kv.append((key, value)) }

    /// Adds a tensor. `shape` is in ggml order (ne0 first); `data` holds its raw encoded bytes.
    public mutating func addTensor(_ name: String, type: GGMLType, shape: [Int], data: [UInt8]) {
        precondition(data.count == type.byteCount(elements: shape.reduce(1, *)), "tensor \(name): byte count does not match shape")
        tensors.append((name, type, shape, data))
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(_ name: String, shape: [Int], floats: [Float]) {
        precondition(floats.count == shape.reduce(1, *), "tensor \(name): element count does not match shape")
        let bytes = floats.withUnsafeBytes { Array($0) }
        addTensor(name, type: .f32, shape: shape, data: bytes)
    }

    /// The complete file image.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .float64(let x): put(x.bitPattern)
            case .bool(let x): put(UInt8(x ? 1 : 0))
            case .string(let s): putString(s)
            case .array(let t, let a):
                put(t.rawValue)
                put(UInt64(a.count))
                for e in a { putValue(e) }
            }
        }
        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        var meta = kv
        if alignment != 32, !kv.contains(where: { $0.0 == "general.alignment" }) {
            meta.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        put(UInt64(meta.count))
        for (k, v) in meta {
            putString(k)
            put(v.type.rawValue)
            putValue(v)
        }
        var rel = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(rel)
            rel += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file to `path`.
    public func write(to path: String) throws {
        try Data(bytes()).write(to: URL(fileURLWithPath: path))
    }
}

extension GGUFValue {
    /// An array of UInt32/Int32/Float/Bool/String values.
    public static func ints(_ a: [Int32]) -> GGUFValue { .array(.int32, a.map { .int32($0) }) }
    /// An array of float32 values.
    public static func floats(_ a: [Float]) -> GGUFValue { .array(.float32, a.map { .float32($0) }) }
    /// An array of bools.
    public static func bools(_ a: [Bool]) -> GGUFValue { .array(.bool, a.map { .bool($0) }) }
    /// An array of strings.
    public static func strings(_ a: [String]) -> GGUFValue { .array(.string, a.map { .string($0) }) }
}
