import Foundation
import Testing

/// The engine under `mpiexec`: requests admitted at any time and streamed back, a lost worker turned
/// into error events.
@Suite(.serialized) struct EngineClusterTests {
    /// Eight greedy requests, one with a 150-token prompt, arriving in three waves (`at_ms`), as a trace.
    static func trace(draft: Int, spread: Bool) -> String {
        let long = (0..<150).map { String(($0 * 13 + 7) % 400 + 1) }.joined(separator: ",")
        let prompts = ["1,2,3", "4,5", "7", "9,9,9,9", long, "11,300", "42", "5,6,7,8,9"]
        let at = [0, 0, 60, 60, 60, 150, 150, 150]
        return prompts.enumerated().map { i, p in
            "{\"prompt\": [\(p)], \"max_tokens\": \(10 + 4 * i), \"at_ms\": \(spread ? at[i] : 0), \"draft\": \(draft), \"ignore_eos\": true}"
        }.joined(separator: "\n") + "\n"
    }

    /// Tokens per request index from replay's output lines.
    static func outcomes(_ text: String) throws -> [Int: (tokens: [Int], finish: String, error: String?)] {
        var out: [Int: (tokens: [Int], finish: String, error: String?)] = [:]
        for line in text.split(separator: "\n") {
            // The launcher prints its own banner on stdout when a rank dies: only JSON lines are replay's.
            guard line.hasPrefix("{"), let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let f = o["finish"] as? String else { continue }
            out[o["index"] as! Int] = (o["tokens"] as! [Int], f, o["error"] as? String)
        }
        return out
    }

    /// If this fails, the cluster's per-step protocol (rank 0 admitting requests between passes and
    /// broadcasting them to the heads, heads streaming tokens back every step, workers serving every
    /// lane's exchanges) changes a request's tokens compared with running it alone in one process: 8
    /// requests in staggered waves over 2 heads + 2 workers, at parallel 2 per head, with and without
    /// 2 MTP drafts.
    @Test(arguments: [0, 2])
    func staggeredRequestsOverTwoHeadsMatchAlone(draft: Int) throws {
        let topo = try writeTopology("experts: 8\nheads: 2\nworkers: 2\n")
        let sequential = NSTemporaryDirectory() + "trace-\(UUID().uuidString).jsonl", staggered = sequential + ".b"
        defer { for f in [topo, sequential, staggered] { try? FileManager.default.removeItem(atPath: f) } }
        try Self.trace(draft: draft, spread: false).write(toFile: sequential, atomically: true, encoding: .utf8)
        try Self.trace(draft: draft, spread: true).write(toFile: staggered, atomically: true, encoding: .utf8)
        let model = "\(fixtureDir)/tiny-a-f32.gguf"
        // One at a time, one sequence per pass, nothing reused: each request as it runs alone.
        let alone = try run(["replay", "-m", model, "--requests", sequential, "-np", "1", "--no-prefix-cache", "-t", "1"])
        #expect(alone.status == 0, "\(alone.stderr)")
        let a = try Self.outcomes(alone.text)
        let multi = try run(["replay", "-m", model, "--requests", staggered, "-np", "2", "--topology", topo], ranks: 4)
        #expect(multi.status == 0, "\(multi.stderr)")
        let b = try Self.outcomes(multi.text)
        #expect(a.count == 8 && b.count == 8)
        for i in 0..<8 {
            #expect(b[i]?.finish == "length" && a[i]?.tokens == b[i]?.tokens, "request \(i)")
        }
    }

    /// If this fails, a worker that dies under the engine leaves requests hanging, ends them silently, or
    /// keeps the other ranks alive: with requests in flight on one head, or on two, killing a worker must
    /// end every in-flight request with an `error` event naming the lost rank, and every surviving rank must
    /// exit within 30 s.
    ///
    /// A trial where rank 0 itself vanished without a line (the transport or the launcher taking it down
    /// with the killed peer: issue 16, seen about once in six runs on a loaded 2-core machine) is retried,
    /// at most three trials; the property must hold on one of them and is checked in full there.
    @Test(arguments: [1, 2])
    func lostWorkerBecomesErrorEvents(heads: Int) throws {
        for attempt in 1...3 {
            let (done, note) = try faultTrial(heads: heads, last: attempt == 3)
            if done { return }
            print("engine fault test: \(heads) head(s), trial \(attempt): rank 0 vanished without a line (\(note)); trying again")
        }
    }

    /// One kill; returns false (with what was seen) when rank 0 wrote nothing at all and `last` is false.
    func faultTrial(heads: Int, last: Bool) throws -> (Bool, String) {
        let ranks = heads + 2, victimRank = heads + 1
        let topo = try writeTopology("experts: 16\nheads: \(heads)\nworkers: 2\n")
        let trace = NSTemporaryDirectory() + "trace-\(UUID().uuidString).jsonl", results = trace + ".out"
        try (0..<4).map { "{\"prompt\": [\($0 + 1), 2, 3], \"max_tokens\": 20000, \"ignore_eos\": true}" }.joined(separator: "\n")
            .write(toFile: trace, atomically: true, encoding: .utf8)
        // Each rank runs through a shell, so the launcher does not tear the job down itself when the worker
        // dies (as with a rank on another node): the surviving ranks must notice on their own.
        let wrapper = NSTemporaryDirectory() + "rank-\(UUID().uuidString).sh"
        try "#!/bin/sh\n\"$@\"\necho \"rank $PMI_RANK status $?\" >&2\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        defer { for f in [topo, wrapper, trace, results] { try? FileManager.default.removeItem(atPath: f) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpiexec")
        p.arguments = ["-disable-auto-cleanup", "-n", "\(ranks)", wrapper, switchyardBinary, "replay", "-m", "builtin:tiny", "--topology", topo, "--requests", trace,
                       "-np", "\(4 / heads)", "--stream", "--output", results]
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PMI_") }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Rank 0 writes its lines to a file: a launcher proxy that falls over when a rank dies (issue 16)
        // cannot lose them on the way to stdout.
        let stdout = Collector(out.fileHandleForReading), errors = Collector(err.fileHandleForReading)
        let lines = FileLines(results)
        // Wait until every request is decoding, then kill the worker.
        let start = Date()
        func streaming() -> Bool { (0..<4).allSatisfy { i in lines.text.contains("{\"index\":\(i),\"tokens\"") } }
        while !(streaming() && lines.text.split(separator: "\n").count > 40) && Date().timeIntervalSince(start) < 90 {
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(streaming(), "requests never started decoding: \(errors.text)")
        let victim = try #require(replayRankPID(victimRank, of: trace), "the worker never started")
        kill(victim, SIGKILL)
        let killedAt = Date()
        let survivors = (0..<ranks).filter { $0 != victimRank }
        while survivors.contains(where: { replayRankPID($0, of: trace) != nil }) && Date().timeIntervalSince(killedAt) < 40 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let elapsed = Date().timeIntervalSince(killedAt)
        let gone = survivors.allSatisfy { replayRankPID($0, of: trace) == nil }
        for r in 0..<ranks { if let q = replayRankPID(r, of: trace) { kill(q, SIGKILL) } }
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { p.waitUntilExit(); done.signal() }
        if done.wait(timeout: .now() + 10) != .success { kill(p.processIdentifier, SIGKILL); done.wait() }
        stdout.wait()
        errors.wait()
        print("engine fault test: \(heads) head(s): survivors \(gone ? "exited" : "still running") \(String(format: "%.1f", elapsed)) s after the kill")
        #expect(gone && elapsed < 30, "survivors did not exit within 30 s")
        let ends = try Self.outcomes(lines.text)
        if ends.isEmpty && !last && !errors.text.contains("rank 0 (head 0)") { return (false, String(errors.text.suffix(300))) }
        #expect(ends.count == 4, "\(lines.text.suffix(2000))\n\(errors.text)")
        for (i, e) in ends {
            // "no answer from rank a (host), rank b (host): ...": peers stuck on the dead one may be named beside
            // it (issue 16).
            let named = (e.error ?? "").components(separatedBy: "no answer from ").dropFirst().first.map { tail in
                tail.prefix { $0 != ":" }.components(separatedBy: "rank ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
            } ?? []
            #expect(e.finish == "error" && named.contains(victimRank) && !e.tokens.isEmpty, "request \(i): \(e)")
        }
        return (true, "")
    }

    /// The text of a file another process is writing.
    struct FileLines {
        let path: String
        init(_ path: String) { self.path = path }
        var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    }

    /// The pid of the replay process with PMI_RANK == rank, if running.
    /// The process of `rank` in the job replaying `trace`. The trace path is unique to a trial: the test's two
    /// cases run at once, and matching the rank alone found (and killed) the other case's rank 0, which showed
    /// up as "rank 0 vanished without a line" in about one trial of four.
    func replayRankPID(_ rank: Int, of trace: String) -> Int32? {
        guard let procs = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for d in procs {
            guard let pid = Int32(d),
                  let cmd = try? String(contentsOfFile: "/proc/\(d)/cmdline", encoding: .utf8),
                  cmd.hasPrefix(switchyardBinary), cmd.contains("replay"), cmd.contains("--stream"), cmd.contains(trace),
                  let env = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(d)/environ")) else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("PMI_RANK=\(rank)") { return pid }
        }
        return nil
    }
}
