// Plain reference dequantizers and quantizers for the supported GGML types.
//
// References: ggml `ggml-quants.c` (`dequantize_row_*`, `quantize_row_*_ref`) and gguf-py `quants.py`,
// whose numpy dequantizers generate the committed fixtures these are tested against.
// These are the readable versions; the fast kernels in CKernels are checked against them.

/// Reference dequantization, one block at a time, in plain Swift.
public enum Dequantize {
    /// Decodes `count` elements of `type` from `bytes` (a whole number of blocks).
    public static func row(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        let nb = count / type.blockSize
        let bb = type.blockBytes
        for b in 0..<nb {
            let blk = UnsafeRawBufferPointer(rebasing: bytes[(b * bb)..<((b + 1) * bb)])
            let o = b * type.blockSize
            switch type {
            case .f32: out[o] = blk.loadUnaligned(as: Float.self)
            case .f16: out[o] = Float(blk.loadUnaligned(as: Float16.self))
            case .bf16: out[o] = bf16ToFloat(blk.loadUnaligned(as: UInt16.self))
            case .q8_0: q8_0(blk, &out, o)
            case .q4_0: q4_0(blk, &out, o)
            case .q4_1: q4_1(blk, &out, o)
            case .q5_0: q5(blk, &out, o, hasMin: false)
            case .q5_1: q5(blk, &out, o, hasMin: true)
            case .iq4_nl: iq4_nl(blk, &out, o)
            case .q2_K: q2_K(blk, &out, o)
            case .q3_K: q3_K(blk, &out, o)
            case .iq4_xs: iq4_xs(blk, &out, o)
            case .q4_K: q4_K(blk, &out, o)
            case .q5_K: q5_K(blk, &out, o)
            case .q6_K: q6_K(blk, &out, o)
            default: preconditionFailure("no reference dequantizer for \(type)")
            }
        }
        return out
    }

    /// Dequantizes a whole tensor view.
    public static func tensor(_ t: GGUFTensor) -> [Float] {
        row(t.type, UnsafeRawBufferPointer(start: t.address, count: t.byteCount), count: t.elementCount)
    }

    /// BF16 bits to Float.
    public static func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    static func f16(_ p: UnsafeRawBufferPointer, _ at: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
    }

    static func q8_0(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0)
        for i in 0..<32 { y[o + i] = d * Float(Int8(bitPattern: b[2 + i])) }
    }

    static func q4_0(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0)
        for i in 0..<16 {
            let q = b[2 + i]
            y[o + i] = d * Float(Int(q & 0x0F) - 8)
            y[o + i + 16] = d * Float(Int(q >> 4) - 8)
        }
    }

    /// Q4_1: {d, m: f16; 16 bytes of nibbles}: d * q + m (low nibbles first).
    static func q4_1(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0), m = f16(b, 2)
        for i in 0..<16 {
            y[o + i] = d * Float(b[4 + i] & 0x0F) + m
            y[o + i + 16] = d * Float(b[4 + i] >> 4) + m
        }
    }

    /// Q5_0 {d; 32 high bits; nibbles}: d * (q - 16); Q5_1 {d, m; 32 high bits; nibbles}: d * q + m.
    /// Element i's fifth bit is bit i of the little-endian 32-bit word.
    static func q5(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int, hasMin: Bool) {
        let d = f16(b, 0), m: Float = hasMin ? f16(b, 2) : 0
        let h = hasMin ? 4 : 2, qs = h + 4
        let high = b.loadUnaligned(fromByteOffset: h, as: UInt32.self)
        let offset: Float = hasMin ? 0 : -16
        for i in 0..<16 {
            let lo = UInt32(b[qs + i] & 0x0F) | ((high >> UInt32(i)) & 1) << 4
            let hi = UInt32(b[qs + i] >> 4) | ((high >> UInt32(i + 16)) & 1) << 4
            y[o + i] = d * (Float(lo) + offset) + m
            y[o + i + 16] = d * (Float(hi) + offset) + m
        }
    }

    /// The 16 non-uniform levels of IQ4_NL and IQ4_XS.
    static let iq4Levels: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// IQ4_NL {d; 16 bytes of nibbles}: d * level[q].
    static func iq4_nl(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0)
        for i in 0..<16 {
            y[o + i] = d * iq4Levels[Int(b[2 + i] & 0x0F)]
            y[o + i + 16] = d * iq4Levels[Int(b[2 + i] >> 4)]
        }
    }

    /// IQ4_XS {d; 16 high scale bits; 4 bytes of low scale nibbles; 128 bytes of nibbles}: 8 sub-blocks of
    /// 32, each d * (6-bit scale - 32) * level[q].
    static func iq4_xs(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0)
        let high = Int(b.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        for s in 0..<8 {
            let ls = (Int(b[4 + s / 2]) >> (4 * (s % 2))) & 0x0F | ((high >> (2 * s)) & 3) << 4
            let dl = d * Float(ls - 32)
            for i in 0..<16 {
                let q = b[8 + 16 * s + i]
                y[o + 32 * s + i] = dl * iq4Levels[Int(q & 0x0F)]
                y[o + 32 * s + i + 16] = dl * iq4Levels[Int(q >> 4)]
            }
        }
    }

    /// Q2_K {16 scale bytes (low nibble scale, high nibble min); 64 bytes of 2-bit values; d, dmin}: two
    /// halves of 128; in each, four shifts (0, 2, 4, 6) of the half's 32 bytes give 2 runs of 16 values.
    static func q2_K(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 80), dmin = f16(b, 82)
        var out = o, sc = 0
        for half in 0..<2 {
            for shift in stride(from: 0, to: 8, by: 2) {
                for run in 0..<2 {
                    let s = b[sc]
                    sc += 1
                    let dl = d * Float(s & 0x0F), ml = dmin * Float(s >> 4)
                    for l in 0..<16 {
                        y[out] = dl * Float((b[16 + 32 * half + 16 * run + l] >> UInt8(shift)) & 3) - ml
                        out += 1
                    }
                }
            }
        }
    }

    /// Q3_K {32 bytes of high bits; 64 bytes of 2-bit values; 12 bytes of 16 six-bit scales; d}: like Q2_K's
    /// walk; a value is its 2 bits minus 4 when its high bit (one bit per shift, across hmask) is clear,
    /// times d * (scale - 32). Scale i: low 4 bits from byte i (i < 8) or the high nibble of byte i - 8,
    /// high 2 bits from byte 8 + i % 4 at bit 2 * (i / 4).
    static func q3_K(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 108)
        func scale(_ i: Int) -> Float {
            let low = i < 8 ? Int(b[96 + i]) & 0x0F : Int(b[96 + i - 8]) >> 4
            let high = (Int(b[96 + 8 + i % 4]) >> (2 * (i / 4))) & 3
            return Float(low | high << 4) - 32
        }
        var out = o, sc = 0, bit = 0
        for half in 0..<2 {
            for shift in stride(from: 0, to: 8, by: 2) {
                for run in 0..<2 {
                    let dl = d * scale(sc)
                    sc += 1
                    for l in 0..<16 {
                        let k = 16 * run + l
                        let q = Int((b[32 + 32 * half + k] >> UInt8(shift)) & 3)
                        let h = (b[k] >> UInt8(bit)) & 1
                        y[out] = dl * Float(q - (h == 0 ? 4 : 0))
                        out += 1
                    }
                }
                bit += 1
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` from the 12-byte K-quant scale array.
    static func scaleMin(_ j: Int, _ s: UnsafeRawBufferPointer, _ at: Int) -> (Float, Float) {
        let q = { (i: Int) -> Int in Int(s[at + i]) }
        if j < 4 { return (Float(q(j) & 63), Float(q(j + 4) & 63)) }
        return (Float((q(j + 4) & 0x0F) | ((q(j - 4) >> 6) << 4)), Float((q(j + 4) >> 4) | ((q(j) >> 6) << 4)))
    }

    static func q4_K(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0), dmin = f16(b, 2)
        for j in 0..<4 {  // 4 groups of 64: low nibbles then high nibbles of 32 bytes
            let (s1, m1) = scaleMin(2 * j, b, 4), (s2, m2) = scaleMin(2 * j + 1, b, 4)
            for l in 0..<32 {
                let q = b[16 + 32 * j + l]
                y[o + 64 * j + l] = d * s1 * Float(q & 0x0F) - dmin * m1
                y[o + 64 * j + 32 + l] = d * s2 * Float(q >> 4) - dmin * m2
            }
        }
    }

    static func q5_K(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 0), dmin = f16(b, 2)
        for j in 0..<4 {
            let (s1, m1) = scaleMin(2 * j, b, 4), (s2, m2) = scaleMin(2 * j + 1, b, 4)
            for l in 0..<32 {
                let q = b[48 + 32 * j + l], h = b[16 + l]
                let hi1: UInt8 = (h >> UInt8(2 * j)) & 1, hi2: UInt8 = (h >> UInt8(2 * j + 1)) & 1
                y[o + 64 * j + l] = d * s1 * Float((q & 0x0F) | (hi1 << 4)) - dmin * m1
                y[o + 64 * j + 32 + l] = d * s2 * Float((q >> 4) | (hi2 << 4)) - dmin * m2
            }
        }
    }

    static func q6_K(_ b: UnsafeRawBufferPointer, _ y: inout [Float], _ o: Int) {
        let d = f16(b, 208)
        for n in 0..<2 {  // two halves of 128
            let ql = 64 * n, qh = 128 + 32 * n, sc = 192 + 8 * n
            for l in 0..<32 {
                let isc = l / 16
                let h = Int(b[qh + l])
                let q1 = Int(b[ql + l] & 0x0F) | ((h >> 0) & 3) << 4
                let q2 = Int(b[ql + l + 32] & 0x0F) | ((h >> 2) & 3) << 4
                let q3 = Int(b[ql + l] >> 4) | ((h >> 4) & 3) << 4
                let q4 = Int(b[ql + l + 32] >> 4) | ((h >> 6) & 3) << 4
                let s = { (k: Int) -> Float in Float(Int8(bitPattern: b[sc + isc + k])) }
                y[o + 128 * n + l] = d * s(0) * Float(q1 - 32)
                y[o + 128 * n + l + 32] = d * s(2) * Float(q2 - 32)
                y[o + 128 * n + l + 64] = d * s(4) * Float(q3 - 32)
                y[o + 128 * n + l + 96] = d * s(6) * Float(q4 - 32)
            }
        }
    }
}

/// Reference quantizers for the types Switchyard writes itself (synthetic and default models).
public enum Quantize {
    /// The types `row` can write (K-quants are read, not written).
    public static let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0]

    /// Encodes floats as `type` (F32, F16, BF16, Q8_0 or Q4_0); `x.count` must be a whole number of blocks.
    public static func row(_ type: GGMLType, _ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(type.byteCount(elements: x.count))
        func putF16(_ v: Float) { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        switch type {
        case .f32: x.withUnsafeBytes { out.append(contentsOf: $0) }
        case .f16: for v in x { putF16(v) }
        case .bf16:
            for v in x {
                // Round to nearest even, as ggml's fp32_to_bf16 does for finite values.
                let bits = v.bitPattern
                let r = UInt16(truncatingIfNeeded: (bits &+ (0x7FFF &+ ((bits >> 16) & 1))) >> 16)
                withUnsafeBytes(of: r.littleEndian) { out.append(contentsOf: $0) }
            }
        case .q8_0:
            for b in stride(from: 0, to: x.count, by: 32) {
                let blk = x[b..<(b + 32)]
                let amax = blk.map(abs).max() ?? 0
                let d = amax / 127
                let id: Float = d == 0 ? 0 : 1 / d
                putF16(d)
                for v in blk { out.append(UInt8(bitPattern: Int8((v * id).rounded()))) }
            }
        case .q4_0:
            for b in stride(from: 0, to: x.count, by: 32) {
                let blk = Array(x[b..<(b + 32)])
                var amax: Float = 0, mx: Float = 0
                for v in blk where abs(v) > amax { amax = abs(v); mx = v }
                let d = mx / -8
                let id: Float = d == 0 ? 0 : 1 / d
                putF16(d)
                for i in 0..<16 {
                    let a = UInt8(min(15, Int8(blk[i] * id + 8.5)))
                    let c = UInt8(min(15, Int8(blk[i + 16] * id + 8.5)))
                    out.append(a | (c << 4))
                }
            }
        default: preconditionFailure("no reference quantizer for \(type)")
        }
        return out
    }
}
