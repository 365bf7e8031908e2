// GGUF v3 reader: mmap, full metadata (nested arrays included), zero-copy tensor views.
//
// Reference: GGUF specification (ggml `docs/gguf.md`); gguf-py `gguf_reader.py` for the layout.
// Every read is bounds-checked so that a malformed or truncated file gives a `GGUFError`, never a crash.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns the bytes of a GGUF file: an mmap of the file, or a heap copy for in-memory files.
public final class GGUFStorage: @unchecked Sendable {
    let base: UnsafeRawPointer
    /// File size in bytes.
    public let size: Int
    private let mapped: Bool

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw GGUFError.cannotOpen(path: path, reason: "is a directory") }
        size = Int(st.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        mapped = true
    }

    init(bytes: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        base = UnsafeRawPointer(p)
        size = bytes.count
        mapped = false
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), size) } else { base.deallocate() }
    }

    /// Whether the bytes are a file mapping (read from disk on first touch) rather than memory.
    public var isMapped: Bool { mapped }

    /// Raw address of byte `offset`; for kernels that read tensor data in place.
    public func address(_ offset: Int) -> UnsafeRawPointer { base + offset }

    /// Drops the mapped pages wholly inside `offset ..< offset + count` from this process (a copy of them
    /// was made, e.g. repacked weights): they leave the resident set, and a later read maps them again.
    public func release(offset: Int, count: Int) {
        guard mapped else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + count) / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }
}

/// A zero-copy view of one tensor inside a GGUF file.
public struct GGUFTensor: Sendable {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Storage type.
    public let type: GGMLType
    /// Dimensions in ggml order: `shape[0]` (ne0) is the contiguous row length.
    public let shape: [Int]
    /// Absolute byte offset of the data in the file.
    public let offset: Int
    /// Bytes of data.
    public let byteCount: Int
    /// The file the data lives in; kept alive by this view.
    public let storage: GGUFStorage

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of rows (product of all dims after the first).
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    /// Bytes per row.
    public var rowBytes: Int { type.byteCount(elements: shape[0]) }
    /// Address of the first data byte.
    public var address: UnsafeRawPointer { storage.address(offset) }
}

/// A parsed GGUF file: version, ordered metadata and tensor views.
public final class GGUFFile: Sendable {
    /// GGUF format version (2 or 3).
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensors in file order.
    public let tensors: [GGUFTensor]
    /// Data-section alignment.
    public let alignment: Int
    /// Byte offset where the data section starts.
    public let dataOffset: Int
    /// The underlying bytes.
    public let storage: GGUFStorage
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Opens and validates a GGUF file by mmap.
    public convenience init(path: String) throws {
        try self.init(storage: GGUFStorage(path: path))
    }

    /// Parses a GGUF image held in memory (tests, tools).
    public convenience init(bytes: [UInt8]) throws {
        try self.init(storage: GGUFStorage(bytes: bytes))
    }

    init(storage: GGUFStorage) throws {
        self.storage = storage
        var c = Cursor(base: storage.base, size: storage.size)
        let magic: UInt32 = try c.read("magic")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(found: magic) }
        version = try c.read("version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let nTensors: UInt64 = try c.read("tensor count")
        let nKV: UInt64 = try c.read("metadata count")
        // Each KV needs at least 12 bytes and each tensor info 24: bound the counts by the file size.
        guard nKV <= UInt64(storage.size / 12) else { throw GGUFError.tooLarge(what: "metadata", count: nKV) }
        guard nTensors <= UInt64(storage.size / 24) else { throw GGUFError.tooLarge(what: "tensor", count: nTensors) }

        var md: [(key: String, value: GGUFValue)] = []
        var kidx: [String: Int] = [:]
        md.reserveCapacity(Int(nKV))
        for _ in 0..<nKV {
            let key = try c.readString()
            let rawType: UInt32 = try c.read("value type of '\(key)'")
            guard let t = GGUFValueType(rawValue: rawType) else { throw GGUFError.unknownValueType(raw: rawType, key: key) }
            let v = try c.readValue(t, key: key, depth: 0)
            guard kidx[key] == nil else { throw GGUFError.duplicateKey(key) }
            kidx[key] = md.count
            md.append((key, v))
        }
        metadata = md
        keyIndex = kidx

        var align = 32
        if let i = kidx["general.alignment"] {
            guard let a = md[i].value.int, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.badAlignment(md[i].value.int ?? -1)
            }
            align = a
        }
        alignment = align

        struct Info { let name: String; let type: GGMLType; let shape: [Int]; let rel: Int; let bytes: Int }
        var infos: [Info] = []
        var tidx: [String: Int] = [:]
        for _ in 0..<nTensors {
            let name = try c.readString()
            let nDims: UInt32 = try c.read("dimension count of '\(name)'")
            guard (1...4).contains(nDims) else {
                throw GGUFError.invalidDimensions(tensor: name, detail: "\(nDims) dimensions (1...4 allowed)")
            }
            var shape: [Int] = []
            var elements: UInt64 = 1
            for _ in 0..<nDims {
                let d: UInt64 = try c.read("dimensions of '\(name)'")
                guard d > 0, d < (1 << 40) else { throw GGUFError.invalidDimensions(tensor: name, detail: "dimension \(d)") }
                let (m, o) = elements.multipliedReportingOverflow(by: d)
                guard !o, m < (1 << 48) else { throw GGUFError.invalidDimensions(tensor: name, detail: "element count overflows") }
                elements = m
                shape.append(Int(d))
            }
            let rawType: UInt32 = try c.read("type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else { throw GGUFError.unknownTensorType(raw: rawType, tensor: name) }
            let rel: UInt64 = try c.read("offset of '\(name)'")
            guard shape[0] % type.blockSize == 0 else {
                throw GGUFError.rowNotBlockAligned(tensor: name, ne0: shape[0], blockSize: type.blockSize, type: type)
            }
            guard rel % UInt64(align) == 0 else { throw GGUFError.misalignedTensor(tensor: name, offset: Int(clamping: rel), alignment: align) }
            guard tidx[name] == nil else { throw GGUFError.duplicateTensor(name) }
            tidx[name] = infos.count
            infos.append(Info(name: name, type: type, shape: shape, rel: Int(clamping: rel),
                              bytes: type.byteCount(elements: Int(elements))))
        }
        tensorIndex = tidx
        let data = (c.offset + align - 1) / align * align
        dataOffset = data
        var views: [GGUFTensor] = []
        for info in infos {
            let (end, o) = data.addingReportingOverflow(info.rel)
            let (end2, o2) = end.addingReportingOverflow(info.bytes)
            guard !o, !o2, end2 <= storage.size else {
                throw GGUFError.tensorOutOfBounds(tensor: info.name, end: o || o2 ? Int.max : end2, fileSize: storage.size)
            }
            views.append(GGUFTensor(name: info.name, type: info.type, shape: info.shape,
                                    offset: data + info.rel, byteCount: info.bytes, storage: storage))
        }
        // Overlap check over tensors sorted by offset.
        let sorted = views.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError.overlappingTensors(a.name, b.name)
        }
        tensors = views
    }

    /// The value of a metadata key, if present.
    public func value(_ key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    /// The tensor with this name, if present.
    public func tensor(_ name: String) -> GGUFTensor? { tensorIndex[name].map { tensors[$0] } }

    /// `general.architecture`, if present.
    public var architecture: String? { value("general.architecture")?.string }
}

/// Bounds-checked little-endian reader over the file image.
struct Cursor {
    let base: UnsafeRawPointer
    let size: Int
    var offset = 0

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, offset <= size, size - offset >= n else {
            throw GGUFError.truncated(what: what(), offset: offset, fileSize: size)
        }
    }

    mutating func read<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    mutating func readString() throws -> String {
        let start = offset
        let n: UInt64 = try read("string length")
        guard n <= UInt64(size) else { throw GGUFError.truncated(what: "string", offset: start, fileSize: size) }
        try need(Int(n), "string bytes")
        let buf = UnsafeRawBufferPointer(start: base + offset, count: Int(n))
        offset += Int(n)
        guard let s = String(validating: buf.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw GGUFError.invalidString(offset: start)
        }
        return s
    }

    mutating func readValue(_ t: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of '\(key)'"
        switch t {
        case .uint8: return .uint8(try read(what))
        case .int8: return .int8(try read(what))
        case .uint16: return .uint16(try read(what))
        case .int16: return .int16(try read(what))
        case .uint32: return .uint32(try read(what))
        case .int32: return .int32(try read(what))
        case .uint64: return .uint64(try read(what))
        case .int64: return .int64(try read(what))
        case .float32: return .float32(Float(bitPattern: try read(what)))
        case .float64: return .float64(Double(bitPattern: try read(what)))
        case .bool:
            let b: UInt8 = try read(what)
            return .bool(b != 0)
        case .string: return .string(try readString())
        case .array:
            guard depth < 8 else { throw GGUFError.tooLarge(what: "array nesting of '\(key)'", count: UInt64(depth)) }
            let rawType: UInt32 = try read("array type of '\(key)'")
            guard let et = GGUFValueType(rawValue: rawType) else { throw GGUFError.unknownValueType(raw: rawType, key: key) }
            let n: UInt64 = try read("array length of '\(key)'")
            // Every element takes at least one byte: a longer array cannot fit in the file.
            guard n <= UInt64(size - offset) else { throw GGUFError.truncated(what: "array '\(key)'", offset: offset, fileSize: size) }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(n))
            for _ in 0..<n { out.append(try readValue(et, key: key, depth: depth + 1)) }
            return .array(et, out)
        }
    }
}
