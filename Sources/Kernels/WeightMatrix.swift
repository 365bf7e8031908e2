// Weight views the kernels read in place: one matrix, or one expert's slice of a 3-D expert tensor; and
// their copies repacked at load into four-row groups (qpack.c), the layout the integer kernels read fastest.
//
// Dimension legend: R output rows, C input columns (ggml ne0), E experts.
import CKernels
import Foundation
import GGUF

/// A read-only [R, C] weight matrix of any supported type, stored row-major (C contiguous).
public struct WeightMatrix: @unchecked Sendable {
    /// Storage type.
    public let type: GGMLType
    /// Output rows R (ggml ne1).
    public let rows: Int
    /// Input columns C (ggml ne0).
    public let cols: Int
    /// Bytes between rows (in the packed layout, a row group of four starts every four row strides).
    public let rowBytes: Int
    /// Whether the rows are repacked into four-row groups (`repacked()`): only the matmul reads them as they are.
    public let packed: Bool
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

    init(type: GGMLType, rows: Int, cols: Int, owner: AnyObject & Sendable, address: UnsafeRawPointer, packed: Bool = false) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = type.byteCount(elements: cols)
        self.owner = owner
        self.address = address
        self.packed = packed
    }

    /// Total bytes of the matrix.
    public var byteCount: Int { rowBytes * rows }

    /// Whether `repacked()` has a four-row layout for this matrix (Q8_0, Q4_0, Q5_0, IQ4_NL, Q4_K with rows % 4 == 0).
    public var packable: Bool { !packed && rows % 4 == 0 && sy_pack4_takes(Int32(type.rawValue)) != 0 }

    /// A copy in four-row groups (llama.cpp's repack; the layout is in qpack.c): each block of four rows is a
    /// few plain loads for the integer kernels, and one FMA per block and token serves four rows. Itself when
    /// the type has no such layout.
    public func repacked() -> WeightMatrix {
        guard packable else { return self }
        return WeightMatrix.repacked([self])[0]
    }

    /// Several matrices repacked into one mapping (a layer's experts: one mapping lets huge pages cover them,
    /// where each expert alone is smaller than one). Matrices without a packed layout come back as they are.
    public static func repacked(_ ws: [WeightMatrix]) -> [WeightMatrix] {
        let offsets = ws.reduce(into: [0]) { o, w in o.append(o.last! + (w.packable ? (w.byteCount + 63) / 64 * 64 : 0)) }
        guard offsets.last! > 0 else { return ws }
        let box = AlignedBox(bytes: offsets.last!)
        return zip(ws, offsets).map { w, o in w.packable ? w.pack(into: box, at: o) : w }
    }

    private func pack(into box: AlignedBox, at offset: Int) -> WeightMatrix {
        // Row groups in parallel slices of about 8 MiB (a load's time is mostly page faults on both sides).
        let groups = rows / 4, slices = max(1, min(groups, byteCount >> 23)), per = (groups + slices - 1) / slices
        let src = UInt(bitPattern: address), dst = UInt(bitPattern: box.pointer + offset), t = Int32(type.rawValue), stride = 4 * rowBytes
        let c = Int64(cols)
        DispatchQueue.concurrentPerform(iterations: slices) { i in
            let g0 = i * per, n = min(per, groups - g0), o = UInt(g0 * stride)
            if n > 0 { sy_pack4(t, UnsafeRawPointer(bitPattern: src + o), Int64(4 * n), c, UnsafeMutableRawPointer(bitPattern: dst + o)) }
        }
        withExtendedLifetime(owner) {}
        return WeightMatrix(type: type, rows: rows, cols: cols, owner: box, address: UnsafeRawPointer(box.pointer + offset), packed: true)
    }

    /// Calls `body` with row `r`'s bytes in GGUF block layout (unpacked from a packed matrix into a copy).
    public func withRowBytes<T>(_ r: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        precondition(r >= 0 && r < rows, "row \(r) out of range 0..<\(rows)")
        defer { withExtendedLifetime(owner) {} }
        guard packed else { return try body(UnsafeRawBufferPointer(start: address + r * rowBytes, count: rowBytes)) }
        return try withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { copy in
            sy_unpack4_row(Int32(type.rawValue), address, Int64(cols), Int64(r), copy.baseAddress)
            return try body(UnsafeRawBufferPointer(copy))
        }
    }

    /// Row `r` decoded to floats (embedding lookup).
    public func row(_ r: Int) -> [Float] {
        withRowBytes(r) { Ops.dequantizeRow(type, $0.baseAddress!, count: cols) }
    }
}

/// Memory of its own mapping for a repacked matrix (unmapped with the last view). Matrices of 2 MiB or more
/// ask for transparent huge pages: decode streams every weight once per token, and with 4 KiB pages that is a
/// TLB miss every 4 KiB (the kernel's "madvise" THP mode, Debian's default, gives huge pages only on request).
final class AlignedBox: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let size: Int
    init(bytes: Int) {
        let huge = 2 << 20
        size = bytes >= huge ? (bytes + huge - 1) / huge * huge : max(bytes, 1)
        // Huge pages need 2 MiB-aligned ranges: map a 2 MiB more and give back the slack on both sides.
        let extra = size >= huge ? huge : 0
        guard let raw = mmap(nil, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            fatalError("out of memory repacking \(bytes) bytes of weights")
        }
        let head = extra == 0 ? 0 : (huge - Int(bitPattern: raw) % huge) % huge
        if head > 0 { munmap(raw, head) }
        if extra - head > 0 { munmap(raw + head + size, extra - head) }
        pointer = raw + head
        if size >= huge { _ = madvise(pointer, size, MADV_HUGEPAGE) }
    }
    deinit { munmap(pointer, size) }
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
