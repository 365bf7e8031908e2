// One HTTP/1.1 exchange with the supervised `serve` job on loopback (`switchyard supervise`'s front relays
// every request through it). Blocking sockets on a thread of its own: a relayed stream may last minutes and
// must not hold a NIO event loop or a Swift concurrency thread.
//
// The job is our own server, so the reader needs only what Hummingbird sends: a status line, headers, then a
// body by Content-Length or chunked transfer coding (streams), ending at the last chunk or the socket's end.
import Foundation
import NIOCore

/// What came back from the job, or how the exchange failed.
struct RelayHead: Sendable {
    var status: Int
    var headers: [(String, String)]
    var header: (String) -> String? {
        { name in headers.first { $0.0.lowercased() == name }?.1 }
    }
}

enum RelayError: Error, CustomStringConvertible {
    /// No connection, or it broke before a whole response head came.
    case unreachable(String)
    /// The body stopped before its end (the job went away mid-response).
    case cut(String)
    var description: String {
        switch self {
        case .unreachable(let s): return "the job did not answer: \(s)"
        case .cut(let s): return "the job's answer was cut: \(s)"
        }
    }
}

/// A blocking HTTP/1.1 connection to 127.0.0.1:port for one request.
final class RelayConnection {
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    /// Connects and sends the request (`Connection: close`).
    init(port: Int, method: String, path: String, headers: [(String, String)], body: [UInt8]) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RelayError.unreachable("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            fd = -1
            throw RelayError.unreachable("connect to port \(port): \(why)")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8) + body)
    }

    deinit { if fd >= 0 { close(fd) } }

    private func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw RelayError.unreachable("write: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// More bytes into the buffer; false at the end of the stream or an error.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            buffer += chunk.prefix(n)
            return true
        }
    }

    private func line() -> String? {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let l = buffer[..<i].last == 13 ? buffer[..<(i - 1)] : buffer[..<i]
                buffer.removeFirst(i + 1)
                return String(decoding: l, as: UTF8.self)
            }
            guard fill() else { return nil }
        }
    }

    /// Reads the status line and headers.
    func readHead() throws -> RelayHead {
        guard let status = line() else { throw RelayError.unreachable("the connection closed before a response") }
        let parts = status.split(separator: " ")
        guard parts.count >= 2, let code = Int(parts[1]) else { throw RelayError.unreachable("bad status line '\(status)'") }
        var headers: [(String, String)] = []
        while let l = line() {
            if l.isEmpty { return RelayHead(status: code, headers: headers) }
            if let c = l.firstIndex(of: ":") {
                headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        throw RelayError.unreachable("the connection closed inside the response head")
    }

    /// Calls `piece` with each part of the body as it arrives, to its end; throws `.cut` when the body stops
    /// early.
    func readBody(_ head: RelayHead, _ piece: ([UInt8]) throws -> Void) throws {
        if head.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                guard let sizeLine = line(), let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw RelayError.cut("the chunked body ended without its last chunk")
                }
                if size == 0 { return }
                while buffer.count < size + 2 { guard fill() else { throw RelayError.cut("a chunk ended early") } }
                try piece(Array(buffer[..<size]))
                buffer.removeFirst(size + 2)
            }
        } else if let n = head.header("content-length").flatMap(Int.init) {
            while buffer.count < n { guard fill() else { throw RelayError.cut("\(buffer.count) of \(n) bytes came") } }
            try piece(Array(buffer[..<n]))
        } else {
            if !buffer.isEmpty { try piece(buffer) }
            buffer = []
            while fill() {
                try piece(buffer)
                buffer = []
            }
        }
    }
}
