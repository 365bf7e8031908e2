// Reading the weights in before serving. The GGUF is mapped, so without this the first requests would
// page it in from disk one fault at a time (llama.cpp prefetches its mapping too). Each rank reads only
// what it will compute with: one process everything; a head everything but the routed experts of the MoE
// layers; worker w only the slices of the experts it owns. A read longer than a second shows progress:
// a line redrawn in place on a TTY, a line per tenth in a log.
import Cluster
import Foundation
import GGUF
import Step35

/// What a rank computes with, for choosing the weight bytes it reads in.
public enum WeightRole: Sendable, Equatable {
    case all, head, worker(Int)
}

enum ModelLoad {
    /// Byte ranges (offset, count) of `file` that `role` reads: routed-expert tensors of `moeLayers` go to
    /// the workers owning each expert (per `owners(layer, expert)`), every other tensor to the heads.
    static func ranges(_ file: GGUFFile, role: WeightRole, moeLayers: Set<Int>, owners: (Int, Int) -> [Int]) -> [(offset: Int, count: Int)] {
        var out: [(offset: Int, count: Int)] = []
        for t in file.tensors {
            let layer = expertLayer(t.name).flatMap { moeLayers.contains($0) ? $0 : nil }
            switch (role, layer) {
            case (.all, _), (.head, nil): out.append((t.offset, t.byteCount))
            case (.head, _?), (.worker, nil): break
            case (.worker(let w), let l?):
                // [cols, rows, E]: expert e is the e-th contiguous slice.
                let e = t.shape.count == 3 ? t.shape[2] : 1, per = t.byteCount / max(e, 1)
                for x in 0..<e where owners(l, x).contains(w) { out.append((t.offset + x * per, per)) }
            }
        }
        return out
    }

    /// The layer of a routed-expert tensor (`blk.N.ffn_*_exps.weight`), nil for any other tensor.
    static func expertLayer(_ name: String) -> Int? {
        guard name.hasPrefix("blk."), name.hasSuffix("_exps.weight") else { return nil }
        return Int(name.dropFirst(4).prefix { $0 != "." })
    }

    /// Reads `ranges` of a mapped file in (advice to the kernel, then one load per page), reporting to
    /// `progress`. Returns a checksum of the bytes loaded so the reads cannot be optimized away.
    @discardableResult
    static func prefetch(_ storage: GGUFStorage, ranges: [(offset: Int, count: Int)], progress: LoadProgress) -> UInt64 {
        let page = Int(sysconf(Int32(_SC_PAGESIZE))), step = 64 << 20
        var sum: UInt64 = 0, done = 0
        for r in ranges {
            let start = r.offset / page * page
            _ = madvise(UnsafeMutableRawPointer(mutating: storage.address(start)), r.offset + r.count - start, MADV_WILLNEED)
            var o = r.offset
            while o < r.offset + r.count {
                let end = min(o + step, r.offset + r.count)
                let p = storage.address(0)
                var a = o
                while a < end {
                    sum &+= UInt64(p.load(fromByteOffset: a, as: UInt8.self))
                    a += page
                }
                done += end - o
                o = end
                progress.update(done)
            }
        }
        progress.finish()
        return sum
    }
}

/// Progress of a long read: silent for the first second, then on a TTY one line redrawn at most 10 times
/// a second, and in a log a line at each tenth; a closing line with the rate once anything was shown.
final class LoadProgress {
    let total: Int, label: String, tty: Bool
    let write: (String) -> Void
    let now: () -> Double
    private let start: Double
    private var shown = false, lastDraw = 0.0, lastTenth = 0

    init(total: Int, label: String, tty: Bool, write: @escaping (String) -> Void,
         now: @escaping () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }) {
        self.total = total
        self.label = label
        self.tty = tty
        self.write = write
        self.now = now
        start = now()
    }

    func update(_ done: Int) {
        let t = now() - start
        guard t >= 1, total > 0 else { return }
        let tenth = done * 10 / total
        if tty {
            guard t - lastDraw >= 0.1 || done == total else { return }
            lastDraw = t
            write("\r" + line(done, t))
        } else {
            guard tenth > lastTenth, done < total else { return }  // the closing line says 100%
            write(line(done, t) + "\n")
        }
        lastTenth = tenth
        shown = true
    }

    func finish() {
        guard shown else { return }
        let t = now() - start
        write((tty ? "\r" : "") + line(total, t) + ", done\n")
    }

    private func line(_ done: Int, _ t: Double) -> String {
        let (unit, name) = total >= 1 << 30 ? (1_073_741_824.0, "GiB") : (1_048_576.0, "MiB")
        return String(format: "switchyard: %@: %3d%% (%.2f of %.2f %@, %.1f s, %.2f %@/s)", label, done * 100 / max(total, 1),
                      Double(done) / unit, Double(total) / unit, name, t, Double(done) / unit / max(t, 1e-9), name)
    }
}
