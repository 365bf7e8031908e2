// GGUF metadata values and the errors the reader reports.
//
// Reference: the GGUF v3 specification (ggml `docs/gguf.md`), mirrored by gguf-py `GGUFValueType`.

/// The on-disk id of a metadata value type.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12
}

/// One metadata value; arrays may nest (arrays of arrays).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String)
    /// Element type plus elements; an empty array keeps its declared element type.
    case array(GGUFValueType, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// The value's on-disk type.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value as an integer, if it is any integer type (or a bool).
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        case .bool(let v): v ? 1 : 0
        default: nil
        }
    }

    /// The value as a float, if it is numeric.
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    /// The value as a bool (bools and integers 0/1).
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return int.map { $0 != 0 }
    }

    /// The string payload, if this is a string.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The array elements, if this is an array.
    public var array: [GGUFValue]? {
        if case .array(_, let a) = self { return a }
        return nil
    }
}

/// Everything that can be wrong with a GGUF file, each with a message that names the problem.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, fileSize: Int)
    case invalidString(offset: Int)
    case unknownValueType(raw: UInt32, key: String)
    case unknownTensorType(raw: UInt32, tensor: String)
    case unsupportedTensorType(GGMLType, tensor: String)
    case invalidDimensions(tensor: String, detail: String)
    case rowNotBlockAligned(tensor: String, ne0: Int, blockSize: Int, type: GGMLType)
    case tensorOutOfBounds(tensor: String, end: Int, fileSize: Int)
    case misalignedTensor(tensor: String, offset: Int, alignment: Int)
    case overlappingTensors(String, String)
    case duplicateKey(String)
    case duplicateTensor(String)
    case badAlignment(Int)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String, found: GGUFValueType)
    case missingTensor(String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case typeMismatch(tensor: String, expected: String, found: GGMLType)
    case tooLarge(what: String, count: UInt64)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): "cannot open GGUF file '\(p)': \(r)"
        case .badMagic(let m):
            "not a GGUF file: magic is 0x\(String(m, radix: 16)) (expected 0x46554747, \"GGUF\")"
        case .unsupportedVersion(let v): "unsupported GGUF version \(v) (supported: 2, 3)"
        case .truncated(let w, let o, let s): "truncated GGUF file: \(w) at byte \(o) runs past the end (file is \(s) bytes)"
        case .invalidString(let o): "invalid UTF-8 string at byte \(o)"
        case .unknownValueType(let r, let k): "unknown metadata value type \(r) for key '\(k)'"
        case .unknownTensorType(let r, let t): "tensor '\(t)' has unknown ggml type id \(r)"
        case .unsupportedTensorType(let ty, let t):
            "tensor '\(t)' has type \(ty), which Switchyard does not support (supported: \(GGMLType.supported.map(\.name).joined(separator: ", ")))"
        case .invalidDimensions(let t, let d): "tensor '\(t)' has invalid dimensions: \(d)"
        case .rowNotBlockAligned(let t, let n, let b, let ty):
            "tensor '\(t)': row length \(n) is not a multiple of the \(ty) block size \(b)"
        case .tensorOutOfBounds(let t, let e, let s): "tensor '\(t)' data ends at byte \(e), past the end of the file (\(s) bytes)"
        case .misalignedTensor(let t, let o, let a): "tensor '\(t)' offset \(o) is not a multiple of the alignment \(a)"
        case .overlappingTensors(let a, let b): "tensors '\(a)' and '\(b)' overlap in the data section"
        case .duplicateKey(let k): "duplicate metadata key '\(k)'"
        case .duplicateTensor(let t): "duplicate tensor name '\(t)'"
        case .badAlignment(let a): "general.alignment \(a) is not a positive power of two"
        case .missingKey(let k): "missing required metadata key '\(k)'"
        case .wrongKeyType(let k, let e, let f): "metadata key '\(k)' should be \(e) but is \(f)"
        case .missingTensor(let t): "missing required tensor '\(t)'"
        case .shapeMismatch(let t, let e, let f): "tensor '\(t)' has shape \(f), expected \(e)"
        case .typeMismatch(let t, let e, let f): "tensor '\(t)' has type \(f), expected \(e)"
        case .tooLarge(let w, let c): "implausible \(w) count \(c)"
        }
    }
}
