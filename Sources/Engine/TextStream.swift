// A request's text as it streams: token bytes in, final text out. Two things are held back until they are
// settled: a UTF-8 character split over tokens (emitted once whole), and a tail that could still become a
// stop string (emitted once it cannot). A stop string found in the text ends the request; it and
// everything after it are not emitted (OpenAI's and llama-server's `stop`).
//
// Works on bytes: stop strings are compared as UTF-8, and every cut falls on a character boundary (a stop
// string begins with a lead byte, and an unfinished character is cut before its lead byte).

/// Incremental detokenized text with stop strings.
public struct TextStream: Sendable {
    private let stops: [[UInt8]]
    private var pending: [UInt8] = []
    /// Whether a stop string was found (nothing more is emitted), and which.
    public private(set) var stopped = false
    public private(set) var matched: String?

    /// A stream that ends at the first of `stopStrings` (empty strings are ignored).
    public init(stopStrings: [String] = []) {
        stops = stopStrings.map { Array($0.utf8) }.filter { !$0.isEmpty }
    }

    /// Adds a token's bytes; returns the text that is now final.
    public mutating func push(_ bytes: [UInt8]) -> String {
        guard !stopped else { return "" }
        pending += bytes
        if let (at, which) = firstStop() {
            stopped = true
            matched = String(decoding: stops[which], as: UTF8.self)
            let text = String(decoding: pending[..<at], as: UTF8.self)
            pending = []
            return text
        }
        let cut = min(Self.completeUTF8Prefix(pending), stopPrefixStart())
        defer { pending.removeFirst(cut) }
        return String(decoding: pending[..<cut], as: UTF8.self)
    }

    /// Everything still held back (at the end of the request: a stop-string prefix that never completed,
    /// or an unfinished character, decoded with replacement characters).
    public mutating func finish() -> String {
        defer { pending = [] }
        return stopped ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Start of the earliest stop string in `pending`.
    private func firstStop() -> (Int, Int)? {
        var best: (Int, Int)?
        for (k, s) in stops.enumerated() where s.count <= pending.count {
            for i in 0...(pending.count - s.count) where pending[i] == s[0] && pending[i..<(i + s.count)].elementsEqual(s) {
                if best.map({ i < $0.0 }) ?? true { best = (i, k) }
                break
            }
        }
        return best
    }

    /// Start of the longest suffix of `pending` that is a proper prefix of a stop string (pending.count: none).
    private func stopPrefixStart() -> Int {
        var start = pending.count
        for s in stops {
            for n in stride(from: min(s.count - 1, pending.count), to: 0, by: -1) where pending.suffix(n).elementsEqual(s.prefix(n)) {
                start = min(start, pending.count - n)
                break
            }
        }
        return start
    }

    /// Length of the longest prefix of `b` that ends on a whole UTF-8 character.
    public static func completeUTF8Prefix(_ b: [UInt8]) -> Int {
        // Find the last lead byte (at most 3 continuation bytes back) and check its sequence is complete.
        var i = b.count - 1
        while i >= 0 && b.count - i <= 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 else { return b.count }
        let c = b[i]
        let need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
        return need > b.count - i ? i : b.count
    }
}
