import Foundation
import SwiftNUMA
import Testing

/// The built `switchyard` next to the test bundle.
let switchyardBinary: String = {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let direct = dir.appendingPathComponent("switchyard").path
    if FileManager.default.fileExists(atPath: direct) { return direct }
    return Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().appendingPathComponent("switchyard").path }
        .first { FileManager.default.fileExists(atPath: $0) }!
}()

let fixtureDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

struct Run {
    let status: Int32
    let stdout: Data
    let stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a command; `mpi` ranks > 0 run it under `mpiexec -n`.
func run(_ args: [String], ranks: Int = 0, timeout: Double = 120) throws -> Run {
    ranks > 0 ? try runProcess("/usr/bin/mpiexec", ["-n", "\(ranks)", switchyardBinary] + args, timeout: timeout)
        : try runProcess(switchyardBinary, args, timeout: timeout)
}

/// Runs `executable` with `args` (in `directory` if given) to its end or until `timeout` seconds pass, then
/// stops it; stdout and stderr are read concurrently, so neither can fill and block the child.
func runProcess(_ executable: String, _ args: [String], timeout: Double = 120, directory: URL? = nil) throws -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    p.currentDirectoryURL = directory
    // If the test runner itself runs under a launcher, keep its PMI settings out of the child job.
    p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PMI_") && !$0.key.hasPrefix("PMIX_") }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let e = Collector(err.fileHandleForReading)
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    e.wait()
    return Run(status: p.terminationStatus, stdout: o, stderr: e.text)
}

func writeTopology(_ yaml: String) throws -> String {
    let path = NSTemporaryDirectory() + "topo-\(UUID().uuidString).yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func floats(_ path: String) throws -> [Float] {
    try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

struct ClusterCase: CustomTestStringConvertible, Sendable {
    let name: String
    let model: String
    let ranks: Int
    let topology: String
    var testDescription: String { name }
}

/// Expert-parallel runs under `mpiexec` against the single process, on the fixture models.
@Suite(.serialized) struct MPIRunTests {
    static let cases: [ClusterCase] = [
        ClusterCase(name: "K=2 contiguous", model: "tiny-a-f32", ranks: 2,
                    topology: "experts: 8\nheads: 1\nworkers: 1\n"),
        ClusterCase(name: "K=3 round-robin q8_0", model: "tiny-a-q8_0", ranks: 3,
                    topology: "experts: 8\nheads: 1\nworkers: 2\nplacement: {strategy: round-robin}\n"),
        ClusterCase(name: "K=5 irregular map with a per-layer override", model: "tiny-a-f32", ranks: 5,
                    topology: """
                        experts: 8
                        heads: 1
                        workers: 4
                        placement:
                          strategy: map
                          map: {0: [0, 5, 6], 1: [1], 2: [2-3], 3: [4, 7]}
                          layers:
                            3: {0: [0-1], 1: [2-6], 2: [7], 3: [3]}
                        """),
        ClusterCase(name: "2 heads + 3 workers with replicas, K-quants", model: "tiny-b-kmix", ranks: 5,
                    topology: """
                        experts: 4
                        heads: 2
                        workers: 3
                        placement: {strategy: contiguous}
                        replicas:
                          - {expert: 0, worker: 2}
                          - {expert: 3, worker: 0}
                        """),
    ]

    /// If this fails, the expert-parallel exchange (routing rows to owners, grouping on workers, combining
    /// in order) changes the model's output compared with in-process experts.
    @Test(arguments: cases)
    func logitsAndGreedyMatchSingleProcess(c: ClusterCase) throws {
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtureDir)/\(c.model).json"))) as! [String: Any]
        let prompt = (meta["prompt"] as! [Int]).map(String.init).joined(separator: ",")
        let model = "\(fixtureDir)/\(c.model).gguf"
        let topo = try writeTopology(c.topology)
        let single = NSTemporaryDirectory() + "single-\(UUID().uuidString).f32"
        let multi = NSTemporaryDirectory() + "multi-\(UUID().uuidString).f32"
        defer { for f in [topo, single, multi] { try? FileManager.default.removeItem(atPath: f) } }

        let a = try run(["logits", "-m", model, "--tokens", prompt, "--out", single, "-t", "1"])
        #expect(a.status == 0, "\(a.stderr)")
        let b = try run(["logits", "-m", model, "--tokens", prompt, "--out", multi, "--topology", topo], ranks: c.ranks)
        #expect(b.status == 0, "\(b.stderr)")
        let x = try floats(single), y = try floats(multi)
        #expect(x.count == y.count && !x.isEmpty)
        #expect(zip(x, y).map { abs($0 - $1) }.max() ?? 1 <= 1e-4)

        let gen = ["generate", "-m", model, "--prompt-tokens", prompt, "-n", "32", "--print-ids", "--ignore-eos"]
        let g1 = try run(gen + ["-t", "1"])
        let g2 = try run(gen + ["--topology", topo], ranks: c.ranks)
        #expect(g2.status == 0, "\(g2.stderr)")
        #expect(g1.text == g2.text && g1.text.split(separator: "\n").count == 32)
    }

    /// If this fails, sequences spread over several heads and micro-batch lanes (each lane on its own
    /// thread and communicator, overlapping its exchanges with the other lane's compute) come out different
    /// from running them one by one in a single process — greedy or sampled, and with a lane's sequences
    /// decoded together in one pass (`--parallel 3`).
    @Test(arguments: [1, 2])
    func sequencesOnHeadsAndLanesMatchSingleProcess(microBatches: Int) throws {
        let topo = try writeTopology("experts: 8\nheads: 2\nworkers: 3\nmicro_batches: \(microBatches)\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let prompts = ["1,2,3", "4,5", "7", "9,9,9,9", "11,300"].flatMap { ["--prompt-tokens", $0] }
        for sampling in [["--temp", "0"], ["--temp", "0.9", "--seed", "7"]] {
            let gen = ["generate", "-m", "\(fixtureDir)/tiny-a-f32.gguf", "-n", "12", "--print-ids", "--ignore-eos"] + prompts + sampling
            let single = try run(gen)
            let multi = try run(gen + ["--topology", topo], ranks: 5)
            #expect(multi.status == 0, "\(multi.stderr)")
            #expect(single.text.split(separator: "\n").count == 5 * 13)
            #expect(single.text == multi.text)
            // Sequences of a lane decoded together in one pass (continuous batching) change nothing either.
            let batched = try run(gen + ["--topology", topo, "--parallel", "3"], ranks: 5)
            #expect(batched.status == 0, "\(batched.stderr)")
            #expect(single.text == batched.text)
        }
    }

    /// If this fails, the record → tune → run workflow breaks, or replicas change the output: routing
    /// statistics recorded by the bench on tiny-a, tuned for 2 workers with 2 redundant slots (replicas of
    /// the hottest experts, rows sent to the least-loaded copy), must load as a topology and give exactly
    /// the single process's 32 greedy tokens; so must the same placement with replicas picked by token index.
    @Test func tunedTopologyWithReplicasKeepsTokens() throws {
        let model = "\(fixtureDir)/tiny-a-f32.gguf"
        let stats = NSTemporaryDirectory() + "stats-\(UUID().uuidString).json"
        let topo = NSTemporaryDirectory() + "tuned-\(UUID().uuidString).yaml"
        defer { for f in [stats, topo] { try? FileManager.default.removeItem(atPath: f) } }
        let rec = try run(["bench", "-m", model, "--contexts", "0", "-n", "16", "-t", "1", "--expert-stats", stats])
        #expect(rec.status == 0, "\(rec.stderr)")
        let gen = ["generate", "-m", model, "--prompt-tokens", "1,2,3", "-n", "32", "--print-ids", "--ignore-eos"]
        let single = try run(gen + ["-t", "1"])
        for dispatch in ["load", "token"] {
            let tune = try run(["tune", "--stats", stats, "--workers", "2", "--redundant", "2", "--replica-dispatch", dispatch, "-o", topo])
            #expect(tune.status == 0 && tune.text.contains("tuned (refined)"), "\(tune.stderr)")
            let yaml = try String(contentsOfFile: topo, encoding: .utf8)
            #expect(yaml.contains("replica_dispatch: \(dispatch)") && yaml.contains("strategy: map"))
            let multi = try run(gen + ["--topology", topo], ranks: 3)
            #expect(multi.status == 0, "\(multi.stderr)")
            #expect(multi.text == single.text && single.text.split(separator: "\n").count == 32, "replica_dispatch \(dispatch)")
        }
    }

    /// If this fails, speculative decoding under the cluster (one exchange per MoE layer for the last token
    /// and all its drafts, rollback on the head) changes the tokens of plain single-process decoding.
    @Test func draftingUnderTheClusterKeepsTokens() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let gen = ["generate", "-m", "\(fixtureDir)/tiny-a-f32.gguf", "--prompt-tokens", "1,2,3", "-n", "128", "--print-ids", "--ignore-eos"]
        let plain = try run(gen + ["--draft", "0"])
        #expect(plain.text.split(separator: "\n").count == 128)
        for d in 1...3 {
            let r = try run(gen + ["--draft", "\(d)", "--topology", topo, "--verbose"], ranks: 3)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.text == plain.text, "--draft \(d)")
            #expect(r.stderr.contains("speculative: draft \(d)"))
        }
    }

    /// If this fails, a reduced dispatch payload (bf16, f16, per-token int8) is decoded wrongly on the
    /// worker: results must stay close to F32 (bounded by the payload's rounding), far from garbage.
    @Test(arguments: [("bf16", Float(0.05)), ("f16", 0.01), ("int8", 0.1)])
    func reducedPayloadsStayClose(payload: String, tolerance: Float) throws {
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtureDir)/tiny-a-f32.json"))) as! [String: Any]
        let prompt = (meta["prompt"] as! [Int]).map(String.init).joined(separator: ",")
        let model = "\(fixtureDir)/tiny-a-f32.gguf"
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\ndispatch: \(payload)\n")
        let single = NSTemporaryDirectory() + "p-single-\(UUID().uuidString).f32"
        let multi = NSTemporaryDirectory() + "p-multi-\(UUID().uuidString).f32"
        defer { for f in [topo, single, multi] { try? FileManager.default.removeItem(atPath: f) } }
        _ = try run(["logits", "-m", model, "--tokens", prompt, "--out", single, "-t", "1"])
        let r = try run(["logits", "-m", model, "--tokens", prompt, "--out", multi, "--topology", topo], ranks: 3)
        #expect(r.status == 0, "\(r.stderr)")
        let x = try floats(single), y = try floats(multi)
        let diff = zip(x, y).map { abs($0 - $1) }.max() ?? 1
        #expect(x.count == y.count && diff <= tolerance && diff > 0, "\(payload): max |Δ| \(diff)")
    }

    /// If this fails, `bench-exchange` does not measure the job's exchange: under mpiexec with 1 head + 1
    /// worker it must print a latency row and one row per token count, and write a fit with positive alpha
    /// and beta; without a topology it must refuse with a message.
    @Test func exchangeBenchMeasuresAndFits() throws {
        let topo = try writeTopology("experts: 16\nheads: 1\nworkers: 1\nthreads: 1\n")
        let json = NSTemporaryDirectory() + "xb-\(UUID().uuidString).json"
        defer { for f in [topo, json] { try? FileManager.default.removeItem(atPath: f) } }
        let r = try run(["bench-exchange", "-m", "builtin:tiny", "--topology", topo, "--tokens", "1,64", "--hidden", "4096", "--rounds", "20",
                         "-r", "1", "--json", json], ranks: 2)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.text.contains("| latency (1 row of 8 B) |") && r.text.contains("fit: t = "), "\(r.text)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        let rows = try #require(doc["rows"] as? [[String: Any]])
        #expect(rows.map { $0["tokens"] as? Int } == [1, 64])
        #expect(rows.allSatisfy { ($0["seconds"] as? Double ?? 0) > 0 })
        #expect((doc["alphaSeconds"] as? Double ?? 0) > 0 && (doc["betaBytesPerSecond"] as? Double ?? 0) > 0, "\(doc)")
        let bad = try run(["bench-exchange", "-m", "builtin:tiny"])
        #expect(bad.status != 0 && bad.stderr.contains("--topology"), "\(bad.stderr)")
    }

    /// If this fails, a topology that does not match `mpiexec -n` starts anyway instead of stopping with a message.
    @Test func rankCountMismatchIsReported() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let r = try run(["logits", "-m", "\(fixtureDir)/tiny-a-f32.gguf", "--tokens", "1,2", "--out", "/dev/null", "--topology", topo], ranks: 2)
        #expect(r.status != 0)
        #expect(r.stderr.contains("declares 3 ranks") && r.stderr.contains("mpirun -n 2"), "\(r.stderr)")
    }

    /// If this fails, a topology written for another expert count is used on the wrong model.
    @Test func expertCountMismatchIsReported() throws {
        let topo = try writeTopology("experts: 288\nheads: 1\nworkers: 1\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let r = try run(["logits", "-m", "\(fixtureDir)/tiny-a-f32.gguf", "--tokens", "1,2", "--out", "/dev/null", "--topology", topo], ranks: 2)
        #expect(r.status != 0)
        #expect(r.stderr.contains("288 experts") && r.stderr.contains("has 8"), "\(r.stderr)")
    }
}

/// NUMA placement of expert-shard workers.
@Suite struct NUMATests {
    /// If this fails, a worker whose topology names a NUMA node either stops (it must carry on where the
    /// machine has one node) or binds silently (every worker must log what it did).
    @Test func workersLogTheirNUMAPlacementAndCarryOn() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nnuma: [0, 1]\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let r = try run(["generate", "-m", "\(fixtureDir)/tiny-a-f32.gguf", "--prompt-tokens", "1,2,3", "-n", "4", "--print-ids",
                         "--topology", topo], ranks: 3)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.text.split(separator: "\n").count == 4)
        for w in 0..<2 {
            let line = r.stderr.split(separator: "\n").first { $0.contains("(worker \(w)):") }.map(String.init) ?? ""
            #expect(line.contains("bound threads and memory to NUMA node \(w)") || line.contains("single NUMA node; not binding"), "\(r.stderr)")
        }
    }

    /// If this fails, binding to a node the machine lacks is not caught up front (libnuma only warns and
    /// the worker would run unbound) — or a one-node machine refuses to run.
    @Test func missingNodeIsAClearErrorOnNUMAMachines() throws {
        let n = NUMA.nodeCount
        if n <= 1 {
            #expect(try NUMA.bind(node: 3) == .singleNode(requested: 3))
        } else {
            #expect(throws: NUMA.BindError.self) { try NUMA.bind(node: n) }
        }
    }
}

extension MPIRunTests {
    /// If this fails, a job over TCP can hang at its very end: MPICH 4.0.2's MPI_Finalize over UCX TCP waits
    /// forever on a peer that already sits in its final PMI barrier (SwiftMPI/Finalize.swift; before the fix
    /// 1 of 12 testbed jobs under load, and 8 of 15 one-host TCP jobs whose ranks entered MPI_Finalize
    /// together). Eight 3-rank `logits` jobs over UCX_TLS=tcp,self must each end with status 0 within 20 s,
    /// none of them by giving up on the launcher, and agree on the logits.
    @Test func tcpJobsEndCleanly() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        let model = URL(fileURLWithPath: fixtureDir).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/DemoModel/switchyard-demo-q8_0.gguf").path
        var first: [Float]?
        for trial in 1...8 {
            let out = NSTemporaryDirectory() + "tcp-end-\(UUID().uuidString).f32"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let start = Date()
            let r = try runProcess("/usr/bin/mpiexec", ["-n", "3", "-genv", "UCX_TLS", "tcp,self", switchyardBinary, "logits", "-m", model,
                                                        "--tokens", "1,45,287,1180", "--out", out, "--topology", topo], timeout: 20)
            let took = Date().timeIntervalSince(start)
            #expect(r.status == 0 && took < 20, "trial \(trial): status \(r.status) after \(took) s: \(r.stderr)")
            #expect(!r.stderr.contains("ending without it"), "trial \(trial): \(r.stderr)")
            let x = try floats(out)
            #expect(!x.isEmpty && (first == nil || x == first!), "trial \(trial): logits differ")
            first = first ?? x
        }
        try? FileManager.default.removeItem(atPath: topo)
    }
}
