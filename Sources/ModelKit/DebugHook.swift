// Named intermediates: every model stage reports its output through one hook, so a layer can be
// dumped and diffed against the reference (names follow llama.cpp's graph callbacks: `attn_norm`,
// `Qcur_normed`, `ffn_moe_topk`, `l_out`, ...).

/// Receives a named intermediate: name, layer index (-1 for model-level), values and shape.
public typealias DebugHook = @Sendable (_ name: String, _ layer: Int, _ values: [Float], _ shape: [Int]) -> Void

/// A hook that writes each intermediate as a raw little-endian float32 file `DIR/NAME-LAYER.f32`
/// and appends a line to `DIR/index.tsv` (name, layer, shape).
public func dumpingHook(directory: String) -> DebugHook {
    { name, layer, values, shape in
        let file = "\(directory)/\(name)-\(layer).f32"
        values.withUnsafeBytes { buf in
            if let f = fopen(file, "wb") { fwrite(buf.baseAddress, 1, buf.count, f); fclose(f) }
        }
        if let f = fopen("\(directory)/index.tsv", "a") {
            fputs("\(name)\t\(layer)\t\(shape.map(String.init).joined(separator: "x"))\n", f)
            fclose(f)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
