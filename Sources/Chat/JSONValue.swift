// JSON that keeps what chat templates see: object keys in the order the request gave them, integers as
// written (any size), and Python's serializations of both (`json.dumps` with `ensure_ascii`, as Hugging
// Face's `tojson` filter calls it, and `str()`, as Jinja's `string` filter gives it). Foundation's
// JSONSerialization loses key order, which `tojson` of a tool schema must keep byte for byte.

/// A JSON value with ordered object keys.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer as written (Python ints have no size limit).
    case integer(String)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Keys in their original order.
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.integer(let x), .integer(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    /// The value under `key` of an object (nil for a missing key or a non-object).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let kv) = self else { return nil }
        return kv.first { $0.key == key }?.value
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var isNull: Bool { self == .null }
}

/// A JSON text that does not parse, with the byte offset of the problem.
public struct JSONParseError: Error, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Parses JSON from bytes, which must be UTF-8 (RFC 8259 §8.1): invalid UTF-8 is an error naming its
    /// offset, not text quietly repaired with U+FFFD.
    public static func parse(utf8 bytes: [UInt8]) throws -> JSONValue {
        var parser = Unicode.UTF8.ForwardParser(), it = bytes.makeIterator(), offset = 0
        scan: while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let s): offset += s.count
            case .emptyInput: break scan
            case .error: throw JSONParseError(offset: offset, reason: "not UTF-8")
            }
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    /// Parses JSON text (RFC 8259), keeping key order and integer literals.
    public static func parse(_ text: String) throws -> JSONValue {
        var p = Parser(bytes: Array(text.utf8))
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw JSONParseError(offset: p.i, reason: "text after the value") }
        return v
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }

        func fail(_ why: String) -> JSONParseError { JSONParseError(offset: i, reason: why) }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < 512 else { throw fail("nested too deeply") }
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("expected \(word)") }
            i += w.count
        }

        mutating func object(depth: Int) throws -> JSONValue {
            i += 1
            var kv: [(key: String, value: JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let k = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                // A repeated key keeps its first place and its last value, as Python's dict does.
                if let at = kv.firstIndex(where: { $0.key == k }) { kv[at].value = v } else { kv.append((k, v)) }
                if try another("}", in: "an object") { continue }
                return .object(kv)
            }
        }

        /// After a member of an object or array: true past a ',' (another member follows), false past `close`
        /// (the container ends); anything else is an error naming both.
        mutating func another(_ close: Unicode.Scalar, in container: String) throws -> Bool {
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end in \(container)") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; return true }
            guard bytes[i] == UInt8(ascii: close) else { throw fail("expected ',' or '\(close)'") }
            i += 1
            return false
        }

        mutating func array(depth: Int) throws -> JSONValue {
            i += 1
            var a: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
            while true {
                skipSpace()
                a.append(try value(depth: depth + 1))
                if try another("]", in: "an array") { continue }
                return .array(a)
            }
        }

        mutating func number() throws -> JSONValue {
            let start = i
            var integer = true
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw fail("unexpected character") }
            if bytes[i] == 0x30, i + 1 < bytes.count, (0x30...0x39).contains(bytes[i + 1]) { throw fail("leading zero") }
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                integer = false
                i += 1
                guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw fail("digits expected after '.'") }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                integer = false
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw fail("digits expected in the exponent") }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if integer { return .integer(text) }
            guard let d = Double(text) else { throw fail("bad number") }
            return .double(d)
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                guard c >= 0x20 else { throw fail("control character in a string") }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) { code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) } else { i -= 6 }
                    }
                    out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                default: throw fail("bad escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            i += 4
            return v
        }
    }
}

extension JSONValue {
    /// Python's `json.dumps(value, ensure_ascii=...)` with the default separators (", " and ": ").
    public func pythonJSON(ensureASCII: Bool = false) -> String {
        var out = ""
        write(into: &out, ensureASCII: ensureASCII)
        return out
    }

    private func write(into out: inout String, ensureASCII: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let s): out += s
        case .double(let d): out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : Self.pythonRepr(d)
        case .string(let s): Self.quote(s, into: &out, ensureASCII: ensureASCII)
        case .array(let a):
            out += "["
            for (n, v) in a.enumerated() {
                if n > 0 { out += ", " }
                v.write(into: &out, ensureASCII: ensureASCII)
            }
            out += "]"
        case .object(let kv):
            out += "{"
            for (n, e) in kv.enumerated() {
                if n > 0 { out += ", " }
                Self.quote(e.key, into: &out, ensureASCII: ensureASCII)
                out += ": "
                e.value.write(into: &out, ensureASCII: ensureASCII)
            }
            out += "}"
        }
    }

    /// Python's `str(value)` for a scalar (Jinja's `string` filter): True/False/None, ints as written,
    /// floats as `repr`, strings as they are.
    public var pythonString: String {
        switch self {
        case .null: "None"
        case .bool(let b): b ? "True" : "False"
        case .integer(let s): s
        case .double(let d): d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : Self.pythonRepr(d)
        case .string(let s): s
        case .array, .object: pythonJSON()
        }
    }

    /// Python's float repr: the shortest digits that round-trip, fixed notation for exponents -4..<16,
    /// else scientific with a signed two-digit exponent (Swift's `description` follows the same rules).
    static func pythonRepr(_ d: Double) -> String { d.description }

    /// A JSON string as Python's json module quotes it.
    static func quote(_ s: String, into out: inout String, ensureASCII: Bool) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (ensureASCII && u.value > 0x7E) {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += hex(0xD800 + (v >> 10)) + hex(0xDC00 + (v & 0x3FF))
                    } else {
                        out += hex(u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    private static func hex(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
    }
}
