@testable import Engine
import Foundation
import GGUF
import Step35
import Testing

/// Reading the weights in before serving: which bytes each rank reads, and how the progress shows.
@Suite struct ModelLoadTests {
    /// If this fails, a rank reads weights it never computes with (a head reading routed experts, a
    /// worker reading experts it does not own) or misses some: the heads' bytes and every worker's bytes
    /// must be disjoint and add up to the whole tensor data, and each worker must read exactly its
    /// experts' slices.
    @Test func ranksReadDisjointCompleteShares() throws {
        let f = try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny))
        let model = try Step35Model(file: f, threads: 1)
        let moe = Set(model.moeLayerIndices), workers = 3
        let owners: (Int, Int) -> [Int] = { l, e in [(e + l) % workers] }
        let all = ModelLoad.ranges(f, role: .all, moeLayers: moe, owners: owners)
        let head = ModelLoad.ranges(f, role: .head, moeLayers: moe, owners: owners)
        let shares = (0..<workers).map { ModelLoad.ranges(f, role: .worker($0), moeLayers: moe, owners: owners) }
        func bytes(_ r: [(offset: Int, count: Int)]) -> Int { r.reduce(0) { $0 + $1.count } }
        #expect(bytes(all) == f.tensors.reduce(0) { $0 + $1.byteCount })
        #expect(bytes(head) + shares.map(bytes).reduce(0, +) == bytes(all))
        let spans = (head + shares.flatMap { $0 }).sorted { $0.offset < $1.offset }
        #expect(zip(spans, spans.dropFirst()).allSatisfy { $0.offset + $0.count <= $1.offset }, "ranges overlap")
        // Worker w owns, in each MoE layer, the experts e with (e + l) % 3 == w: a third of each expert tensor.
        let expertBytes = f.tensors.filter { ModelLoad.expertLayer($0.name).map(moe.contains) == true }
        for w in 0..<workers {
            let want = expertBytes.reduce(0) { s, t in
                let l = ModelLoad.expertLayer(t.name)!, e = t.shape[2]
                return s + (0..<e).filter { ($0 + l) % workers == w }.count * (t.byteCount / e)
            }
            #expect(bytes(shares[w]) == want)
        }
        #expect(!head.isEmpty && expertBytes.count == 3 * moe.count)
    }

    /// If this fails, model loading gets noisy or silent in the wrong places: nothing may show in the
    /// first second; after it a log gets one line per tenth crossed and a closing line; a TTY gets lines
    /// redrawn in place (carriage returns), at most ten a second.
    @Test func progressShowsAfterOneSecond() {
        var clock = 0.0, out: [String] = []
        let log = LoadProgress(total: 1000, label: "reading", tty: false, write: { out.append($0) }, now: { clock })
        for i in 1...100 {
            clock = Double(i) * 0.05  // 5 s in all
            log.update(i * 10)
        }
        log.finish()
        // Before 1 s nothing; at 1 s (200 bytes) the 20% line, then 30%...90%, then the closing 100% line.
        #expect(out.count == 9 && out.allSatisfy { $0.hasSuffix("\n") && !$0.hasPrefix("\r") }, "\(out)")
        #expect(out.first?.contains(" 20%") == true && out.last?.contains("100%") == true && out.last?.contains("done") == true)

        clock = 0
        out = []
        let quick = LoadProgress(total: 10, label: "reading", tty: true, write: { out.append($0) }, now: { clock })
        clock = 0.5
        quick.update(10)
        quick.finish()
        #expect(out.isEmpty)

        clock = 0
        let tty = LoadProgress(total: 1000, label: "reading", tty: true, write: { out.append($0) }, now: { clock })
        for i in 1...100 {
            clock = Double(i) * 0.02  // 2 s
            tty.update(i * 10)
        }
        tty.finish()
        #expect(out.allSatisfy { $0.hasPrefix("\r") } && out.count >= 8 && out.count <= 12, "\(out.count)")
    }
}
