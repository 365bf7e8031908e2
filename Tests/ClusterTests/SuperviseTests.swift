import Foundation
import Testing

/// `switchyard supervise` in front of `mpiexec -n 3 switchyard serve` (1 head + 2 workers on this host).
@Suite(.serialized) struct SuperviseTests {
    /// If this fails, a worker's death loses requests or leaves the server down for good: with four clients
    /// sending requests (two streamed, two not) through the front, kill -9 of rank 2 must be followed by
    /// `/health` 503 naming the rank (once the job has ended), the job back up without anyone acting (within 60 s), and every request
    /// answered: 200, or a stream that ends with an error event naming rank 2. None may get no answer at all,
    /// and requests after the restart must be served.
    @Test func workerKilledUnderLoadLosesNoRequest() throws {
        let topo = try writeTopology("experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n")
        let job = UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: topo) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: switchyardBinary)
        p.arguments = ["supervise", "--port", "0", "--", "mpiexec", "-n", "3", "-genv", "SY_SUPERVISE_JOB", job, switchyardBinary, "serve",
                       "--topology", topo, "-np", "4"]
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PMI_") }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let errors = Collector(err.fileHandleForReading)
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGINT) }
            let t0 = Date()
            while p.isRunning && Date().timeIntervalSince(t0) < 30 { usleep(100_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for r in 0..<3 { if let q = Self.rankPID(r, job: job) { kill(q, SIGKILL) } }
        }
        let base = try Self.waitForFront(errors)
        try #require(Self.waitHealthy(base, within: 90), "the job never became healthy: \(errors.text.suffix(2000))")
        let tally = Tally()
        let stop = DispatchSemaphore(value: 0), done = DispatchGroup()
        for c in 0..<4 {
            done.enter()
            Thread {
                var n = 0
                while stop.wait(timeout: .now()) == .timedOut && n < 200 {
                    tally.add(Self.request(base, stream: c % 2 == 0, n: n, client: c))
                    n += 1
                }
                done.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 4)
        let victim = try #require(Self.rankPID(2, job: job), "no rank 2")
        kill(victim, SIGKILL)
        let killedAt = Date()
        var outages: [String] = []
        while Date().timeIntervalSince(killedAt) < 60 {
            let h = try? runProcess("/usr/bin/curl", ["-s", "-m", "5", "-w", "\n%{http_code}", base + "/health"], timeout: 10)
            let lines = h?.text.split(separator: "\n") ?? []
            if lines.last == "503" { outages.append(String(lines.first ?? "")) }
            if lines.last == "200", Date().timeIntervalSince(killedAt) > 1 { break }
            usleep(100_000)
        }
        let recovered = Date().timeIntervalSince(killedAt)
        Thread.sleep(forTimeInterval: 4)  // requests after the restart
        stop.signal(); stop.signal(); stop.signal(); stop.signal()
        done.wait()
        let counters = (try? runProcess("/usr/bin/curl", ["-s", base + "/supervisor"], timeout: 10).text) ?? ""
        let t = tally.snapshot()
        print("supervise: kill -9 of rank 2 under 4 clients: back after \(String(format: "%.1f", recovered)) s; \(t.ok) answered, \(t.failedNamed) streams ended with the cause, \(t.other) other errors, \(t.lost) lost; after the restart \(t.okAfter(killedAt.addingTimeInterval(recovered))) answered; front: \(counters)")
        #expect(recovered < 60, "the job did not come back within 60 s: \(errors.text.suffix(2000))")
        // The first 503 may only say the job stopped answering; once it has ended, its cause names the rank.
        #expect(outages.contains { $0.contains("rank 2") }, "health during the outage: \(outages.prefix(3))")
        #expect(t.lost == 0 && t.other == 0, "lost \(t.lost), other errors \(t.samples)")
        #expect(t.okAfter(killedAt.addingTimeInterval(recovered)) > 0, "nothing answered after the restart")
        #expect(counters.contains("\"restarts\": 1"), "\(counters)")
    }

    /// One request; its outcome.
    static func request(_ base: String, stream: Bool, n: Int, client: Int) -> Outcome {
        let body = stream ? #"{"prompt": "import os\n", "max_tokens": 48, "temperature": 0, "stream": true, "ignore_eos": true}"#
            : #"{"messages": [{"role": "user", "content": "count to \#(n)"}], "max_tokens": 12, "temperature": 0}"#
        let path = stream ? "/v1/completions" : "/v1/chat/completions"
        guard let r = try? runProcess("/usr/bin/curl", ["-sN", "-m", "120", "-w", "\n%{http_code}", base + path, "-H", "Content-Type: application/json", "-d", body],
                                      timeout: 130) else { return .lost("curl did not run") }
        let text = r.text
        guard r.status == 0, let code = text.split(separator: "\n").last, code != "000" else { return .lost("curl \(r.status): \(text.suffix(200))") }
        if code != "200" { return .other("HTTP \(code): \(text.suffix(300))") }
        if !stream { return text.contains("\"choices\"") ? .ok(Date()) : .other(String(text.suffix(300))) }
        if text.contains("data: [DONE]") { return .ok(Date()) }
        if text.contains("\"error\"") && text.contains("rank 2") { return .failedNamed }
        return .other("stream without [DONE]: \(text.suffix(300))")
    }

    enum Outcome { case ok(Date), failedNamed, other(String), lost(String) }

    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [Outcome] = []
        func add(_ o: Outcome) { lock.withLock { all.append(o) } }
        func snapshot() -> (ok: Int, failedNamed: Int, other: Int, lost: Int, samples: [String], okAfter: (Date) -> Int) {
            let a = lock.withLock { all }
            var ok = 0, named = 0, other = 0, lost = 0, samples: [String] = [], okTimes: [Date] = []
            for o in a {
                switch o {
                case .ok(let d): ok += 1; okTimes.append(d)
                case .failedNamed: named += 1
                case .other(let s): other += 1; samples.append(s)
                case .lost(let s): lost += 1; samples.append(s)
                }
            }
            return (ok, named, other, lost, Array(samples.prefix(3)), { t in okTimes.filter { $0 > t }.count })
        }
    }

    static func waitForFront(_ errors: Collector) throws -> String {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < 60 {
            if let r = errors.text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) { return String(errors.text[r]) }
            usleep(100_000)
        }
        throw TestbedError(message: "the front did not start: \(errors.text)")
    }

    static func waitHealthy(_ base: String, within seconds: Double) -> Bool {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < seconds {
            if let r = try? runProcess("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/health"], timeout: 10), r.text == "200" { return true }
            usleep(200_000)
        }
        return false
    }

    /// The pid of job `job`'s rank `rank`, if running.
    static func rankPID(_ rank: Int, job: String) -> Int32? {
        guard let procs = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for d in procs {
            guard let pid = Int32(d), let cmd = try? String(contentsOfFile: "/proc/\(d)/cmdline", encoding: .utf8), cmd.hasPrefix(switchyardBinary),
                  let env = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(d)/environ")) else { continue }
            let vars = Set(env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            if vars.contains("PMI_RANK=\(rank)") && vars.contains("SY_SUPERVISE_JOB=\(job)") { return pid }
        }
        return nil
    }
}
