import Foundation
import GGUF
import ModelKit
import Step35
import Testing

/// Several sequences decoded in one pass.
@Suite struct BatchTests {
    func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    /// If this fails, batching sequences into one pass changes what each computes (a sequence attends to
    /// another's cache, appends to the wrong one, or rows get mixed up in the MoE): three sequences with
    /// different prompts and lengths (so different positions and window states), each decoded 12 steps
    /// alone and together in one pass per step, must give the same logits to 1e-4 at every step, on the
    /// embedded model (sliding-window rings wrap: prompts up to 70 tokens, window 64) and tiny-b-kmix.
    @Test(arguments: ["embedded", "tiny-b-kmix.gguf"])
    func batchedDecodeMatchesOneByOne(_ which: String) throws {
        let file = which == "embedded" ? try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)) : try GGUFFile(path: Fixtures.path(which))
        // Exact: quantized activations turn float-order differences between batch shapes into rounding flips.
        let m = try Step35Model(file: file, threads: 2, exact: true)
        let v = Int32(m.config.vocabSize)
        let prompts: [[Int32]] = [[1, 2, 3], (0..<70).map { ($0 * 7 + 3) % v }, [5]]
        let alone = prompts.map { _ in m.makeCache(context: 128) }, together = prompts.map { _ in m.makeCache(context: 128) }
        var lastAlone: [Int32] = [], lastTogether: [Int32] = []
        for (i, p) in prompts.enumerated() {
            let a = try m.forward(p, cache: alone[i]), b = try m.forward(p, cache: together[i])
            #expect(maxAbs(a, b) == 0)
            lastAlone.append(Int32(a.indices.max { a[$0] < a[$1] }!))
        }
        lastTogether = lastAlone
        for step in 0..<12 {
            let one = try prompts.indices.map { try m.forward([lastAlone[$0]], cache: alone[$0]) }
            let batch = try m.forwardBatch(prompts.indices.map { ([lastTogether[$0]], together[$0]) })
            for i in prompts.indices {
                #expect(maxAbs(one[i], batch[i]) < 1e-4, "step \(step) sequence \(i): \(maxAbs(one[i], batch[i]))")
            }
            lastAlone = one.map { l in Int32(l.indices.max { l[$0] < l[$1] }!) }
            lastTogether = batch.map { l in Int32(l.indices.max { l[$0] < l[$1] }!) }
            #expect(lastAlone == lastTogether)
        }
    }

    /// If this fails, batching changes a sequence's logits on the fast path with repacked weights: the packed
    /// kernels compute a token the same way in any batch, so three sequences decoded alone and together must
    /// give the same logits bit for bit (without the repack, the one-row and four-row kernels round apart and
    /// quantized activations turn that into flips, which is why the test above runs exact; with `repack: .none`
    /// this test fails on tiny-a-q4_0).
    @Test(arguments: ["tiny-a-q8_0.gguf", "tiny-a-q4_0.gguf"])
    func repackedFastPathIsBatchInvariant(_ which: String) throws {
        let m = try Step35Model(file: try GGUFFile(path: Fixtures.path(which)), threads: 2, repack: .all)
        #expect(m.repackedRanges.count > 0)
        let prompts: [[Int32]] = [[1, 2, 3], (0..<19).map { ($0 * 7 + 3) % 200 }, [5]]
        let alone = prompts.map { _ in m.makeCache(context: 64) }, together = prompts.map { _ in m.makeCache(context: 64) }
        var last: [Int32] = []
        for (i, p) in prompts.enumerated() {
            let a = try m.forward(p, cache: alone[i])
            _ = try m.forward(p, cache: together[i])
            last.append(Int32(a.indices.max { a[$0] < a[$1] }!))
        }
        for step in 0..<8 {
            let one = try prompts.indices.map { try m.forward([last[$0]], cache: alone[$0]) }
            let batch = try m.forwardBatch(prompts.indices.map { ([last[$0]], together[$0]) })
            for i in prompts.indices { #expect(one[i] == batch[i], "step \(step) sequence \(i): \(maxAbs(one[i], batch[i]))") }
            last = one.map { l in Int32(l.indices.max { l[$0] < l[$1] }!) }
        }
    }

    /// If this fails, one sequence's pass of several tokens (a draft verification, a prompt chunk) computes a
    /// token differently from a pass of that token alone on the fast path, and drafting changes greedy tokens:
    /// forty tokens in one pass must give, bit for bit, the logits of forty one-token passes (the float matmul
    /// of the router and the attention's exponentials both broke this before; a tail of `expf` did at 40).
    @Test(arguments: ["tiny-a-q8_0.gguf", "tiny-a-q4_0.gguf", "tiny-b-q4_k_s.gguf"])
    func oneLongPassIsManyShortOnes(_ which: String) throws {
        let m = try Step35Model(file: try GGUFFile(path: Fixtures.path(which)), threads: 2, repack: .all)
        let prompt: [Int32] = (0..<40).map { ($0 * 7 + 3) % 200 }
        let long = m.makeCache(context: 64), short = m.makeCache(context: 64)
        let all = try m.forward([SequenceInput(prompt, cache: long, logits: .all)]).logits[0]  // [T, V]
        var rows: [Float] = []
        for t in prompt { rows += try m.forward([SequenceInput([t], cache: short)]).logits[0] }
        #expect(all.count == rows.count)
        let v = m.config.vocabSize
        let first = (0..<prompt.count).first { Array(all[($0 * v)..<(($0 + 1) * v)]) != Array(rows[($0 * v)..<(($0 + 1) * v)]) }
        #expect(first == nil, "first differing position \(first ?? -1): \(maxAbs(all, rows))")
    }

    /// If this fails, a batch that lists one cache twice (two rows writing the same sequence) is accepted.
    @Test func sameCacheTwiceIsRefused() throws {
        let m = try Step35Model(file: try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)), threads: 1)
        let c = m.makeCache(context: 16)
        #expect(throws: ModelError.self) { try m.forwardBatch([([1], c), ([2], c)]) }
    }
}


/// One model shared by several threads.
@Suite struct SharedModelTests {
    /// If this fails, two threads sharing one model (and so its kernel thread pool: two engines' test
    /// cases, or lanes without the baton) overwrite each other's kernel tasks mid-run and get wrong logits
    /// silently: three threads each run 6 forward passes of different prompts on one 2-thread model and
    /// must get exactly the logits of running them alone.
    @Test func concurrentForwardsGetTheirOwnLogits() throws {
        let m = try Step35Model(file: try GGUFFile(path: Fixtures.path("tiny-a-f32.gguf")), threads: 2)
        let prompts: [[Int32]] = [(1...40).map { $0 }, (50...90).map { $0 }, (100...130).map { $0 }]
        let want = try prompts.map { try m.forward($0, cache: m.makeCache(context: 64), logits: .all) }
        let bad = BadCount()
        let done = DispatchGroup()
        for k in prompts.indices {
            done.enter()
            Thread {
                for _ in 0..<6 {
                    let got = try? m.forward(prompts[k], cache: m.makeCache(context: 64), logits: .all)
                    if got != want[k] { bad.add() }
                }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(bad.value == 0)
    }
}

final class BadCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
