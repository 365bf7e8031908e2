// Weight views the kernels read in place: one matrix, or one expert's slice of a 3-D expert tensor.
//
// Dimension legend: R output rows, C input columns (ggml ne0), E experts.
import GGUF

/// A read-only [R, C] weight matrix of any supported type, stored row-major (C contiguous).
public struct WeightMatrix: @unchecked Sendable {
    /// Storage type.
    public let type: GGMLType
    /// Output rows R (ggml ne1).
    public let rows: Int
    /// Input columns C (ggml ne0).
    public let cols: Int
    /// Bytes between rows.
    public let rowBytes: Int
    // Keeps the mapping or buffer alive while the view exists.
    let owner: AnyObject & Sendable
    let address: UnsafeRawPointer

    /// A view of a 2-D GGUF tensor ([C, R] in ggml order).
    public init(_ t: GGUFTensor) throws {
        guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(t.type, tensor: t.name) }
        guard t.shape.count <= 2 else {
            throw GGUFError.invalidDimensions(tensor: t.name, detail: "expected a matrix, found shape \(t.shape)")
        }
        self.init(type: t.type, rows: t.rowCount, cols: t.shape[0], owner: t.storage, address: t.address)
    }

    /// Expert `e` of a 3-D GGUF expert tensor ([C, R, E] in ggml order).
    public init(experts t: GGUFTensor, expert e: Int) throws {
        guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(t.type, tensor: t.name) }
        guard t.shape.count == 3, e >= 0, e < t.shape[2] else {
            throw GGUFError.invalidDimensions(tensor: t.name, detail: "expert \(e) of shape \(t.shape)")
        }
        let per = t.type.byteCount(elements: t.shape[0] * t.shape[1])
        self.init(type: t.type, rows: t.shape[1], cols: t.shape[0], owner: t.storage, address: t.address + e * per)
    }

    /// An F32 matrix from an array (tests, synthetic weights).
    public init(rows: Int, cols: Int, floats: [Float]) {
        precondition(floats.count == rows * cols)
        let box = FloatBox(floats)
        self.init(type: .f32, rows: rows, cols: cols, owner: box, address: UnsafeRawPointer(box.pointer))
    }

    /// A matrix of encoded bytes of `type` (tests).
    public init(type: GGMLType, rows: Int, cols: Int, bytes: [UInt8]) {
        precondition(bytes.count == type.byteCount(elements: rows * cols))
        let box = ByteBox(bytes)
        self.init(type: type, rows: rows, cols: cols, owner: box, address: UnsafeRawPointer(box.pointer))
    }

    init(type: GGMLType, rows: Int, cols: Int, owner: AnyObject & Sendable, address: UnsafeRawPointer) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = type.byteCount(elements: cols)
        self.owner = owner
        self.address = address
    }

    /// Total bytes of the matrix.
    public var byteCount: Int { rowBytes * rows }

    /// Row `r` decoded to floats (embedding lookup).
    public func row(_ r: Int) -> [Float] {
        precondition(r >= 0 && r < rows, "row \(r) out of range 0..<\(rows)")
        return Ops.dequantizeRow(type, address + r * rowBytes, count: cols)
    }
}

final class FloatBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ a: [Float]) {
        pointer = .allocate(capacity: max(a.count, 1))
        a.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: a.count) }
    }
    deinit { pointer.deallocate() }
}

final class ByteBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt8>
    init(_ a: [UInt8]) {
        pointer = .allocate(capacity: max(a.count, 1))
        a.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: a.count) }
    }
    deinit { pointer.deallocate() }
}
