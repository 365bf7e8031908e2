import Foundation
import Testing

/// Runs the built `switchyard` binary (built next to the test bundle).
func switchyard(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, stdout: Data, stderr: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("switchyard")
    let bin = FileManager.default.fileExists(atPath: exe.path) ? exe
        : Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().appendingPathComponent("switchyard") }
            .first { FileManager.default.fileExists(atPath: $0.path) }!
    let p = Process()
    p.executableURL = bin
    p.arguments = args
    if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, o, String(decoding: e, as: UTF8.self))
}

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

struct GoldenMeta: Decodable {
    let prompt: [Int32]
    let greedy: [Int32]
}

@Suite(.serialized) struct CLITests {
    /// If this fails, a user cannot see or lower the kernels' instruction-set path: `inspect` must name the
    /// path, and SWITCHYARD_ISA=scalar must force the scalar path (saying it was forced when the CPU has more).
    @Test func kernelPathIsShownAndCanBeLowered() throws {
        let plain = try switchyard(["inspect"])
        let line = String(decoding: plain.stdout, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("kernels: ") }
        #expect(plain.status == 0 && line != nil, "\(plain.stderr)")
        let forced = try switchyard(["inspect"], env: ["SWITCHYARD_ISA": "scalar"])
        let text = String(decoding: forced.stdout, as: UTF8.self)
        #expect(text.contains("kernels: scalar"), "\(text.prefix(300))")
        if line != "kernels: scalar" { #expect(text.contains("(forced; CPU has")) }
    }

    /// If this fails, `cost` does not take measured network figures as people write them: a link in
    /// gigabits (10GbE = 1.25 GB/s) and a latency in us must reach the serial exchange term, GB/s must
    /// mean bytes, and a malformed rate must be refused with a message naming the option.
    @Test func costTakesNetworkFigures() throws {
        let base = ["cost", "--model", "step35-flash", "--hardware", "ddr5", "--ep", "8", "--batch", "1", "--serial-exchange"]
        let link = try switchyard(base + ["--network-latency", "100us", "--network-bandwidth", "10GbE"])
        let text = String(decoding: link.stdout, as: UTF8.self)
        #expect(link.status == 0 && text.contains("network: 100.0 us one-way latency, 1.250 GB/s per device"), "\(text) \(link.stderr)")
        let bytes = try switchyard(base + ["--network-bandwidth", "1.25GB/s"])
        #expect(String(decoding: bytes.stdout, as: UTF8.self).contains("1.250 GB/s per device"))
        let bad = try switchyard(base + ["--network-bandwidth", "fast"])
        #expect(bad.status != 0 && bad.stderr.contains("--network-bandwidth 'fast'"), "\(bad.stderr)")
    }

    /// If this fails, `switchyard logits` writes something other than raw [n_tokens][n_vocab] float32
    /// logits matching llama.cpp.
    @Test func logitsCommandMatchesGolden() throws {
        let meta = try JSONDecoder().decode(GoldenMeta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/tiny-b-kmix.json")))
        let out = NSTemporaryDirectory() + "logits-\(UUID().uuidString).f32"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try switchyard(["logits", "--model", "\(fixtures)/tiny-b-kmix.gguf", "--tokens",
                                meta.prompt.map(String.init).joined(separator: ","), "--out", out, "--exact"])
        #expect(r.status == 0, "\(r.stderr)")
        let got = try Data(contentsOf: URL(fileURLWithPath: out))
        let want = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/tiny-b-kmix.logits.f32"))
        #expect(got.count == want.count)
        let a = got.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let b = want.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(zip(a, b).map { abs($0 - $1) }.max()! <= 1e-3)
    }

    /// If this fails, `generate --prompt-tokens --print-ids` does not reproduce llama.cpp's greedy tokens.
    @Test func generatePrintsGreedyIds() throws {
        let meta = try JSONDecoder().decode(GoldenMeta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/tiny-a-q8_0.json")))
        let r = try switchyard(["generate", "--model", "\(fixtures)/tiny-a-q8_0.gguf", "--prompt-tokens",
                                meta.prompt.map(String.init).joined(separator: ","), "-n", "32", "--print-ids", "--ignore-eos"])
        #expect(r.status == 0, "\(r.stderr)")
        let ids = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) }
        #expect(ids == meta.greedy)
    }

    /// If this fails, MTP drafting on the shipped demo model (the default, three MTP blocks) changes greedy
    /// output: `--draft 3` must print `--draft 0`'s tokens on a code prompt and on a chat prompt.
    @Test(arguments: ["def parse_args(argv):\n    ", "<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n<think>\n"])
    func draftingKeepsGreedyTokens(prompt: String) throws {
        func ids(_ draft: Int) throws -> [Substring] {
            let r = try switchyard(["generate", "-p", prompt, "-n", "64", "--temp", "0", "--draft", "\(draft)", "--print-ids", "--ignore-eos"])
            #expect(r.status == 0, "\(r.stderr)")
            return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n")
        }
        let plain = try ids(0)
        #expect(plain.count == 64)
        #expect(try ids(3) == plain)
    }

    /// If this fails, the README's first command (generate on the shipped demo model) is broken.
    /// It runs that command: the demo model must close its reasoning and answer, drafting with --draft 3.
    @Test func generateRunsOnEmbeddedModel() throws {
        let r = try switchyard(["generate", "--chat", "--prompt", "What is 12 * 7?", "-n", "64", "--draft", "3", "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        let text = String(decoding: r.stdout, as: UTF8.self)
        let answer = text.components(separatedBy: "</think>").dropFirst().first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        #expect(!answer.isEmpty, "no answer after </think>: \(text)")
        #expect(r.stderr.contains("speculative: draft 3"), "\(r.stderr)")
        let sampled = try switchyard(["generate", "-m", "builtin:tiny", "-p", "Hello", "-n", "8", "--temp", "0.7", "--seed", "1"])
        #expect(sampled.status == 0, "\(sampled.stderr)")
    }

    /// If this fails, bad input crashes or exits 0 instead of a clear message and a non-zero status.
    @Test(arguments: [
        (["logits", "--model", "/nonexistent.gguf", "--tokens", "1,2", "--out", "/tmp/x"], "not found"),
        (["logits", "--tokens", "1,x", "--out", "/tmp/x"], "comma-separated"),
        (["logits", "--tokens", "1,99999", "--out", "/tmp/x"], "outside the vocabulary"),
        (["generate", "--model", "\(fixtures)/tiny-a-f32.json", "-n", "1"], "not a GGUF file"),
        (["inspect", "--model", "\(fixtures)/dequant-vectors.gguf"], "not runnable"),
    ])
    func badInputIsReported(args: [String], message: String) throws {
        let r = try switchyard(args)
        let text = r.stderr + String(decoding: r.stdout, as: UTF8.self)
        #expect(text.contains(message), "\(args): \(text)")
        if args[0] != "inspect" { #expect(r.status != 0) }
    }

    /// If this fails, `launch` stops printing a runnable mpiexec line for a cluster and topology pair,
    /// or stops noting that one machine is oversubscribed.
    @Test func launchPrintsMpiexec() throws {
        let root = URL(fileURLWithPath: fixtures).deletingLastPathComponent().deletingLastPathComponent().path
        let r = try switchyard(["launch", "--cluster", "\(root)/Cluster/8nodes.yaml", "--topology", "\(root)/Topologies/ep8-8nodes.yaml",
                                "--", "generate", "-m", "m.gguf", "-p", "Hi there"])
        let s = String(decoding: r.stdout, as: UTF8.self)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(s.hasPrefix("mpiexec -n 9 -hosts node0:2,node1:1") && s.contains("-bind-to numa"))
        #expect(s.contains("generate -m m.gguf -p 'Hi there' --topology"))
        let bad = try switchyard(["launch", "--cluster", "\(root)/Cluster/local.yaml", "--topology", "\(root)/Topologies/ep8-8nodes.yaml",
                                  "--", "generate"])
        #expect(bad.status == 0 && bad.stderr.contains("oversubscribed"))
    }

    /// If this fails, `inspect` stops showing metadata, tensors or the memory breakdown.
    @Test func inspectShowsComponents() throws {
        let r = try switchyard(["inspect", "--model", "\(fixtures)/tiny-b-kmix.gguf"])
        let s = String(decoding: r.stdout, as: UTF8.self)
        #expect(r.status == 0)
        for part in ["step35.expert_count", "blk.0.attn_q.weight", "routed experts", "Q4_K", "KV cache"] {
            #expect(s.contains(part), "missing \(part)")
        }
    }
}

/// `switchyard bench`: rows, breakdown and the JSON file's schema.
@Suite struct BenchCommandTests {
    /// If this fails, the bench JSON loses a field of its documented schema (setup: model, weightBytes,
    /// threads, kvType, fill, nGen, host, cores; rows: context, fill, tokensPerSecond, msPerToken,
    /// breakdownMs by component, otherMs, kernelFullUs, kernelSWAUs, kvBytes, batch, repetitions,
    /// tokensPerSecondSD) or stops matching its rows: one row per context and batch size, a batch of 2
    /// holding twice the KV of one, the breakdown summing to the (averaged) total.
    @Test func benchWritesRowsAndJSON() throws {
        let path = NSTemporaryDirectory() + "bench-\(UUID().uuidString).json", svg = path + ".svg"
        defer { for f in [path, svg] { try? FileManager.default.removeItem(atPath: f) } }
        let r = try switchyard(["bench", "--contexts", "0,300", "--batch-sizes", "1,2", "-n", "2", "-r", "2", "-t", "1", "--json", path, "--plot", svg])
        let plot = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(plot.hasPrefix("<svg") && plot.contains("routed_experts") && plot.contains(">300<"))
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(out.contains("tg2 @ d0") && out.contains("tg2 @ d300") && out.contains("routed_experts"))
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let setup = obj["setup"] as! [String: Any], rows = obj["rows"] as! [[String: Any]]
        for k in ["model", "weightBytes", "threads", "kvType", "fill", "nGen", "host", "cores"] { #expect(setup[k] != nil, "setup.\(k)") }
        #expect(rows.count == 4 && rows.map { $0["context"] as! Int } == [0, 0, 300, 300] && rows.map { $0["batch"] as! Int } == [1, 2, 1, 2])
        #expect(rows[3]["kvBytes"] as! Int == 2 * (rows[2]["kvBytes"] as! Int))
        for row in rows {
            #expect(row["repetitions"] as? Int == 2 && (row["tokensPerSecondSD"] as? Double ?? -1) >= 0)
            for k in ["context", "batch", "fill", "tokensPerSecond", "msPerToken", "breakdownMs", "otherMs", "kernelFullUs", "kernelSWAUs", "kvBytes"] {
                #expect(row[k] != nil, "rows[].\(k)")
            }
            let parts = row["breakdownMs"] as! [String: Double]
            for k in ["attn_full", "attn_swa", "router", "routed_experts", "lm_head", "sampling"] { #expect(parts[k] != nil, "breakdownMs.\(k)") }
            let sum = parts.values.reduce(0, +) + (row["otherMs"] as! Double)
            #expect(abs(sum - (row["msPerToken"] as! Double)) < 1e-6 + 0.01 * sum)
            #expect(row["fill"] as! String == "synthetic")
        }
    }

    /// If this fails, `bench --predict` stops putting the cost model's prediction beside each row, or its
    /// JSON (rows[].predicted: msPerToken, attentionMs, ffnMs, exchangeMs, fixedMs, ratio) stops adding up:
    /// the parts must sum to the prediction, the ratio must be measured / predicted, and the attention part
    /// must grow with the context (the KV scan is in it).
    @Test func benchPredictAddsThePrediction() throws {
        let path = NSTemporaryDirectory() + "bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try switchyard(["bench", "--contexts", "0,2000", "-n", "2", "-t", "1", "--predict", "--json", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self).contains("measured/predicted"))
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let rows = obj["rows"] as! [[String: Any]]
        #expect(rows.count == 2)
        var attention: [Double] = []
        for row in rows {
            let p = try #require(row["predicted"] as? [String: Double])
            for k in ["msPerToken", "attentionMs", "ffnMs", "exchangeMs", "fixedMs", "ratio"] { #expect(p[k] != nil, "predicted.\(k)") }
            let total = p["msPerToken"]!
            #expect(total > 0 && abs(p["attentionMs"]! + p["ffnMs"]! + p["exchangeMs"]! + p["fixedMs"]! - total) < 1e-9 + 1e-6 * total)
            #expect(abs(p["ratio"]! - (row["msPerToken"] as! Double) / total) < 1e-9)
            attention.append(p["attentionMs"]!)
        }
        #expect(attention[1] > attention[0])
        // K-quant weights have no quantizer here: the probe streams copies of the file's own rows.
        let kq = try switchyard(["bench", "-m", "\(fixtures)/tiny-b-kmix.gguf", "--contexts", "0", "-n", "2", "-t", "1", "--predict"])
        #expect(kq.status == 0 && String(decoding: kq.stdout, as: UTF8.self).contains("measured/predicted"), "\(kq.stderr)")
        let bad = try switchyard(["bench", "--predict", "--draft", "1"])
        #expect(bad.status != 0 && bad.stderr.contains("--draft 0"))
    }

    /// If this fails, `generate --expert-stats` stops recording routing: every MoE layer must route the
    /// prompt's and the generated tokens (3 + 4 - 1 passes' worth: the last token is not run), each to
    /// top-k experts, and dense layers nothing.
    @Test func generateRecordsExpertStats() throws {
        let path = NSTemporaryDirectory() + "gstats-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try switchyard(["generate", "--prompt-tokens", "1,2,3", "-n", "4", "--ignore-eos", "--print-ids", "--expert-stats", path])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let tokens = obj["tokensPerLayer"] as! [Int], counts = obj["counts"] as! [[Int]], k = obj["topK"] as! Int
        #expect(tokens.contains(6) && tokens.allSatisfy { $0 == 0 || $0 == 6 })
        for (l, row) in counts.enumerated() { #expect(row.reduce(0, +) == tokens[l] * k) }
    }

    /// If this fails, a bad context list, scale, synthetic weight type or batch size is not refused with a
    /// message.
    @Test func benchRejectsBadInput() throws {
        let a = try switchyard(["bench", "--contexts", "4Q"])
        #expect(a.status != 0 && a.stderr.contains("bad context"))
        let b = try switchyard(["bench", "--shape", "step35-flash", "--scale", "3"])
        #expect(b.status != 0 && b.stderr.contains("--scale"))
        // A weight type the synthetic generator cannot write is refused, not a crash.
        let c = try switchyard(["bench", "--shape", "step35-flash", "--type", "q4_k"])
        #expect(c.status == 1 && c.stderr.contains("--type of a built-in shape"))
        let d = try switchyard(["bench", "--batch-sizes", "0"])
        #expect(d.status != 0 && d.stderr.contains("--batch-sizes"))
    }
}
