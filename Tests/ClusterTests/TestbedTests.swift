import Foundation
import Testing

/// The rehearsal cluster (Scripts/testbed/testbed.sh up 3, which Scripts/test.sh brings up and tears down):
/// three test hosts in network namespaces, ranks started by Hydra over ssh, talking TCP over veth links.
enum Testbed {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = root.appendingPathComponent("Scripts/testbed/testbed.sh").path
    static let cluster = root.appendingPathComponent("Cluster/testbed.yaml").path
    static let state = ProcessInfo.processInfo.environment["SY_TESTBED_DIR"] ?? "/run/switchyard-testbed"

    /// Whether three test hosts are up (their sshd answering), else why not: the suite is skipped, visibly.
    static let available: Bool = {
        guard let count = try? String(contentsOfFile: "\(state)/count", encoding: .utf8),
              Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 3 else { return false }
        return (try? shell(["status"]).status) == 0
    }()

    /// Runs `testbed.sh ARGS` (e.g. exec 0 CMD..., link 2 down, counters 1).
    static func shell(_ args: [String], timeout: Double = 120) throws -> Run {
        try runProcess("/bin/bash", [script] + args, timeout: timeout, directory: root)
    }

    /// `switchyard launch --run` on host 0 over the testbed cluster file: the head there, workers on hosts 1, 2.
    /// The limit is generous: a 16-token `logits` job that takes 8 s alone took 165.7 s in a fresh-clone CI run
    /// (b2e7318), with the other suites' jobs on the same 2 cores; these tests check results, not speed.
    static func launch(_ topology: String, _ args: [String], timeout: Double = 600) throws -> Run {
        try shell(["exec", "0", switchyardBinary, "launch", "--run", "--cluster", cluster, "--topology", topology, "--"] + args,
                  timeout: timeout)
    }

    /// Starts `launch --run` on host 0 like `launch`, but returns at once with the process and its output
    /// being collected (long jobs: a server, a generation to be cut by a fault).
    static func start(_ topology: String, _ args: [String]) throws -> (process: Process, stdout: Collector, stderr: Collector) {
        try background(["exec", "0", switchyardBinary, "launch", "--run", "--cluster", cluster, "--topology", topology, "--"] + args)
    }

    /// Starts `testbed.sh ARGS` and returns at once, its output being collected.
    static func background(_ args: [String]) throws -> (process: Process, stdout: Collector, stderr: Collector) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PMI_") && !$0.key.hasPrefix("PMIX_") }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, Collector(out.fileHandleForReading), Collector(err.fileHandleForReading))
    }

    /// eth0's received and sent bytes on a host.
    static func counters(_ host: Int) throws -> (rx: Int, tx: Int) {
        let r = try shell(["counters", "\(host)"])
        let f = r.text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        guard f.count == 2 else { throw TestbedError(message: "testbed.sh counters \(host): '\(r.text)' \(r.stderr)") }
        return (f[0], f[1])
    }
}

struct TestbedError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

@Suite(.serialized, .enabled(if: Testbed.available, "no testbed: Scripts/testbed/testbed.sh up 3 was not run or is not allowed here"))
struct TestbedTests {
    static let model = Testbed.root.appendingPathComponent("Sources/DemoModel/switchyard-demo-q8_0.gguf").path
    static let prompt = "1,45,287,1180,302,79,2650,11,419,92,17,640,3021,88,5,933"

    /// If this fails, the expert exchange over TCP between hosts changes what the model computes: logits on
    /// 1 head + 2 workers (three hosts) must match the single process within 1e-4, and the bytes must have
    /// crossed each worker host's veth link.
    @Test func logitsMatchSingleProcessAcrossHosts() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        let single = NSTemporaryDirectory() + "tb-single-\(UUID().uuidString).f32", multi = single + ".multi"
        defer { for f in [topo, single, multi] { try? FileManager.default.removeItem(atPath: f) } }
        let a = try run(["logits", "-m", Self.model, "--tokens", Self.prompt, "--out", single, "-t", "1"])
        #expect(a.status == 0, "\(a.stderr)")
        let before = try [1, 2].map(Testbed.counters)
        let b = try Testbed.launch(topo, ["logits", "-m", Self.model, "--tokens", Self.prompt, "--out", multi])
        let after = try [1, 2].map(Testbed.counters)
        #expect(b.status == 0, "\(b.stderr)")
        let x = try floats(single), y = try floats(multi)
        #expect(x.count == y.count && !x.isEmpty)
        let diff = zip(x, y).map { abs($0 - $1) }.max() ?? .infinity
        #expect(diff <= 1e-4, "max |Δlogit| \(diff)")
        // Each MoE layer sends each worker about one row per token (top-2 of 8 experts, 4 per worker) and gets
        // it back: 16 tokens x 5 MoE layers x 256 floats is 80 KB each way; ask for half.
        for (h, (b0, a0)) in zip(before, after).enumerated() {
            print("testbed: syhost\(h + 1) eth0 rx +\(a0.rx - b0.rx) B, tx +\(a0.tx - b0.tx) B during the run")
            #expect(a0.rx - b0.rx > 40_000 && a0.tx - b0.tx > 40_000, "syhost\(h + 1): rx +\(a0.rx - b0.rx), tx +\(a0.tx - b0.tx)")
        }
    }

    /// If this fails, greedy decoding across hosts (plain, and drafting with the three MTP blocks) leaves the
    /// single process's tokens.
    @Test(arguments: [0, 3])
    func greedyTokensMatchAcrossHosts(draft: Int) throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let gen = ["generate", "-m", Self.model, "-p", "def parse(path):\n    ", "-n", "24", "--temp", "0", "--print-ids",
                   "--ignore-eos", "--draft", "\(draft)"]
        let a = try run(gen + ["-t", "1"])
        let b = try Testbed.launch(topo, gen)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\n\(b.stderr)")
        #expect(a.text.split(separator: "\n").count == 24)
        #expect(a.text == b.text)
    }
}

extension TestbedTests {
    /// If this fails, the server cannot run across hosts: `serve` under `launch --run` on 1 head + 2 worker
    /// hosts must answer a streamed chat request (role, content deltas, a finish reason, `[DONE]`), asked from
    /// the head host, and stop cleanly on SIGINT.
    @Test func serverStreamsAcrossHosts() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let (p, errors, base) = try Self.startServer(topo)
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGINT) }
            p.waitUntilExit()
        }
        let url = base + "/v1/chat/completions"
        let body = #"{"messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 24, "temperature": 0, "stream": true}"#
        let r = try Testbed.shell(["exec", "0", "curl", "-sN", "--max-time", "60", url, "-H", "Content-Type: application/json", "-d", body])
        let events = r.text.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }
        #expect(events.count >= 3 && events.last == "data: [DONE]", "\(r.text.prefix(2000)) \(r.stderr)")
        let chunks = events.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] }
        let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
        #expect((choices.first?["delta"] as? [String: Any])?["role"] as? String == "assistant", "\(r.text.prefix(2000))")
        #expect(choices.contains { $0["finish_reason"] is String }, "\(r.text.prefix(2000))")
        kill(p.processIdentifier, SIGINT)
        let stop = Date()
        while p.isRunning && Date().timeIntervalSince(stop) < 30 { usleep(100_000) }
        #expect(!p.isRunning, "serve did not stop within 30 s of SIGINT")
        let left = try (0..<3).flatMap { try Self.leftovers(host: $0) }
        #expect(left.isEmpty, "left running: \(left)")
    }
}

extension TestbedTests {
    /// Starts `serve` under `launch --run` across the testbed and waits for its URL (as seen from host 0).
    static func startServer(_ topo: String) throws -> (process: Process, stderr: Collector, base: String) {
        let (p, _, errors) = try Testbed.start(topo, ["serve", "-m", Self.model, "--port", "0"])
        var port: String?
        let start = Date()
        while port == nil && p.isRunning && Date().timeIntervalSince(start) < 90 {
            if let r = errors.text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) { port = String(errors.text[r].split(separator: ":").last!) }
            usleep(200_000)
        }
        guard let port else {
            if p.isRunning { kill(p.processIdentifier, SIGINT) }
            p.waitUntilExit()
            throw TestbedError(message: "no server: \(errors.text)")
        }
        return (p, errors, "http://127.0.0.1:\(port)")
    }
}

/// A fault on a worker host: its link goes down mid-generation, or its rank is killed.
enum TestbedFault: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case linkDown = "link down", kill = "kill -9"
    var testDescription: String { rawValue }
}

/// Faults on the testbed (in the same serialized suite: one job on the testbed at a time).
extension TestbedTests {
    /// If this fails, a lost worker host leaves something running (a rank, a Hydra proxy, mpiexec) or ends
    /// the job without naming the host: after syhost2's link goes down (or its rank is killed) while the head
    /// decodes, `launch --run` and every process on every test host must be gone within 30 s, and the head's
    /// stderr must name rank 2 and syhost2.
    @Test(arguments: TestbedFault.allCases)
    func lostWorkerHostEndsEverythingNamingIt(fault: TestbedFault) throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        defer {
            _ = try? Testbed.shell(["link", "2", "up"])
            try? FileManager.default.removeItem(atPath: topo)
        }
        let (p, lines, errors) = try Testbed.start(topo, ["generate", "-m", Self.model, "-p", "import os\n", "-n", "1000000", "--ignore-eos", "--print-ids"])
        let start = Date()
        while lines.text.split(separator: "\n").count < 40 && p.isRunning && Date().timeIntervalSince(start) < 90 { usleep(200_000) }
        #expect(p.isRunning, "the job ended before the fault: \(errors.text)")
        let t0 = Date()
        switch fault {
        case .linkDown: _ = try Testbed.shell(["link", "2", "down"])
        case .kill: _ = try Testbed.shell(["kill", "2", "switchyard generate"])
        }
        let (elapsed, left) = try Self.awaitEnd(p, faultAt: t0)
        lines.wait()
        errors.wait()
        print("testbed fault (\(fault.rawValue)): launch exited \(String(format: "%.1f", elapsed)) s after the fault with status \(p.terminationStatus); processes left \(String(format: "%.1f", Date().timeIntervalSince(t0))) s after the fault: \(left.count)")
        #expect(elapsed < 30, "launch still running \(Int(elapsed)) s after the fault")
        #expect(left.isEmpty, "left running: \(left)")
        #expect(p.terminationStatus != 0)
        #expect(errors.text.contains("rank 2 (syhost2)"), "\(errors.text.suffix(1500))")
    }

    /// Waits (45 s at most) for the job `p` to end after a fault at `faultAt`, stopping it if it has not, then
    /// for the other hosts' sessions to end as their ssh clients go (until 30 s after the fault): the seconds
    /// from the fault to the job's end, and what is still running on any host.
    static func awaitEnd(_ p: Process, faultAt t0: Date) throws -> (elapsed: Double, left: [String]) {
        while p.isRunning && Date().timeIntervalSince(t0) < 45 { usleep(100_000) }
        let elapsed = Date().timeIntervalSince(t0)
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        var left = try (0..<3).flatMap { try Self.leftovers(host: $0) }
        while !left.isEmpty && Date().timeIntervalSince(t0) < 30 {
            usleep(250_000)
            left = try (0..<3).flatMap { try Self.leftovers(host: $0) }
        }
        return (elapsed, left)
    }

    /// Processes in a test host's network namespace other than its sshd (ranks, proxies, mpiexec, launch).
    static func leftovers(host: Int) throws -> [String] {
        try Testbed.shell(["procs", "\(host)"]).text.split(separator: "\n").map(String.init)
    }
}

/// The server on the testbed faults.
extension TestbedTests {
    /// If this fails, a lost worker host leaves the server's clients hanging or told nothing, or leaves the
    /// server up answering errors, or running processes behind: after syhost2's link goes down (or its rank is
    /// killed) while a completion streams, the stream must end with an error event naming rank 2 (syhost2),
    /// `serve` must say so on stderr and exit non-zero within 30 s, and nothing may be left on any host.
    @Test(arguments: TestbedFault.allCases)
    func lostWorkerHostFailsServerRequestsNamingIt(fault: TestbedFault) throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        defer {
            _ = try? Testbed.shell(["link", "2", "up"])
            try? FileManager.default.removeItem(atPath: topo)
        }
        let (p, errors, base) = try Self.startServer(topo)
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        let body = #"{"prompt": "import os\n", "max_tokens": 3500, "temperature": 0, "stream": true, "ignore_eos": true}"#
        let (c, stream, _) = try Testbed.background(["exec", "0", "curl", "-sN", "--max-time", "120", base + "/v1/completions",
                                                     "-H", "Content-Type: application/json", "-d", body])
        func events() -> [String] { stream.text.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") } }
        let start = Date()
        while events().count < 40 && c.isRunning && Date().timeIntervalSince(start) < 90 { usleep(200_000) }
        #expect(c.isRunning && p.isRunning, "the request ended before the fault: \(stream.text.suffix(500)) \(errors.text)")
        let t0 = Date()
        switch fault {
        case .linkDown: _ = try Testbed.shell(["link", "2", "down"])
        case .kill: _ = try Testbed.shell(["kill", "2", "switchyard serve"])
        }
        let (elapsed, left) = try Self.awaitEnd(p, faultAt: t0)
        c.waitUntilExit()
        stream.wait()
        errors.wait()
        let last = events().last(where: { $0 != "data: [DONE]" }) ?? ""
        print("testbed server fault (\(fault.rawValue)): \(events().count) events, the last: \(last.prefix(240)); serve exited \(String(format: "%.1f", elapsed)) s after the fault with status \(p.terminationStatus); processes left: \(left.count)")
        #expect(elapsed < 30, "serve still running \(Int(elapsed)) s after the fault")
        #expect(p.terminationStatus != 0)
        #expect(left.isEmpty, "left running: \(left)")
        #expect(last.contains("\"error\"") && last.contains("rank 2 (syhost2)"), "\(stream.text.suffix(1500))")
        #expect(errors.text.contains("rank 2 (syhost2)"), "\(errors.text.suffix(1500))")
    }
}
