import Foundation
import Testing

/// Fault handling: a worker killed mid-generation must end the job with a message, well within 30 s.
@Suite(.serialized) struct FaultTests {
    /// If this fails, a dead worker leaves the other ranks hanging (or ending silently) instead of
    /// stopping with an error that names the silent rank.
    @Test func killedWorkerEndsTheRunWithAClearError() throws {
        let topo = try writeTopology("experts: 16\nheads: 1\nworkers: 2\n")
        // Each rank runs through a shell, so the launcher does not tear the job down itself when the worker
        // dies (as with a rank on another node): the surviving ranks must notice on their own.
        let wrapper = NSTemporaryDirectory() + "rank-\(UUID().uuidString).sh"
        try "#!/bin/sh\n\"$@\"\necho \"rank $PMI_RANK status $?\" >&2\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        defer { for f in [topo, wrapper] { try? FileManager.default.removeItem(atPath: f) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpiexec")
        p.arguments = ["-disable-auto-cleanup", "-n", "3", wrapper, switchyardBinary, "generate", "--topology", topo,
                       "-n", "1000000", "--ignore-eos", "--print-ids"]
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PMI_") }
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        // Wait until rank 2 is decoding, then kill it.
        var victim: Int32?
        let start = Date()
        while victim == nil && Date().timeIntervalSince(start) < 60 {
            Thread.sleep(forTimeInterval: 1)
            victim = rankPID(2)
        }
        let pid = try #require(victim, "rank 2 never started")
        Thread.sleep(forTimeInterval: 4)
        kill(pid, SIGKILL)
        let killedAt = Date()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { p.waitUntilExit(); done.signal() }
        let ended = done.wait(timeout: .now() + 40) == .success
        if !ended { p.terminate(); for r in [0, 1] { if let q = rankPID(r) { kill(q, SIGKILL) } } }
        let elapsed = Date().timeIntervalSince(killedAt)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(ended && elapsed < 30, "run did not end within 30 s of the kill (\(elapsed) s)")
        #expect(p.terminationStatus != 0)
        #expect(text.contains("stopped answering") && text.contains("2"), "\(text)")
    }

    /// The pid of the switchyard process with PMI_RANK == rank, if running.
    func rankPID(_ rank: Int) -> Int32? {
        guard let procs = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for d in procs {
            guard let pid = Int32(d),
                  let cmd = try? String(contentsOfFile: "/proc/\(d)/cmdline", encoding: .utf8),
                  cmd.hasPrefix(switchyardBinary), cmd.contains("1000000"),
                  let env = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(d)/environ")) else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("PMI_RANK=\(rank)") { return pid }
        }
        return nil
    }
}
