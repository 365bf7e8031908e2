// The end of an MPI job that cannot hang: under Hydra, the PMI barrier and PMI finalize without
// MPI_Finalize's UCX teardown.
//
// Why: MPICH 4.0.2's ch4:ucx MPI_Finalize closes every UCX endpoint (ucp_disconnect_nb), progresses until
// the closes complete, then enters a PMI barrier. Over TCP a close can need the peer's progress, and a peer
// that already waits in the PMI barrier makes none: one rank spins in uct_tcp_iface_progress and the others
// wait in the barrier, forever. Caught 2026-12-02 with gdb: on the testbed under load (1 of 12 logits jobs:
// rank 0 in PMPI_Finalize -> ucp_worker_progress, ranks 1 and 2 reading their PMI sockets), and on one host
// over UCX_TLS=tcp,self whenever the ranks enter MPI_Finalize together (8 of 15 runs with a world barrier
// just before it). MPICH dropped that PMI barrier upstream (pmodels/mpich#6596); Debian's 4.0.2 has it.
//
// So, when Hydra launched the job (PMI_FD and Hydra's MPIR_CVAR_CH3_INTERFACE_HOSTNAME: the PMI-1 wire), a
// rank ends MPI itself:
// - `cmd=barrier_in` / `barrier_out`: every rank has reached its end, so none still waits on a message
//   (what a rank had to receive, it received before it got here);
// - `cmd=finalize` / `finalize_ack`: the launcher records a clean end;
// - at exit, `_exit` with the process's exit status, after flushing stdio: no library destructor runs over
//   UCX state that was never torn down.
// Elsewhere (a singleton, Slurm's PMI-2 or PMIx) MPI_Finalize runs on a thread, given `finalizeGrace`
// seconds, then the process ends the same way without it.
import CMPI
import Foundation

extension MPI {
    /// Seconds the end of MPI may wait for the other ranks (or for MPI_Finalize) before ending without them.
    public static let finalizeGrace: Double = 60
    nonisolated(unsafe) static var endWithExit = false

    /// Ends MPI (call once, at the end, on every rank); never hangs (see the file comment).
    public static func finalize() {
        liveness?.stopResponder()
        guard started else { return }
        started = false
        let env = ProcessInfo.processInfo.environment
        // Hydra's proxies speak PMI-1 and mark their ranks with MPIR_CVAR_CH3_INTERFACE_HOSTNAME; Slurm's
        // `srun --mpi=pmi2` also passes PMI_FD, but speaks PMI-2: that takes the MPI_Finalize path below.
        if let fd = env["PMI_FD"].flatMap(Int32.init), (env["PMI_SIZE"].flatMap(Int.init) ?? 1) > 1,
           env["MPIR_CVAR_CH3_INTERFACE_HOSTNAME"] != nil {
            if !finishPMI(fd) { note("the launcher did not answer its PMI barrier within \(Int(finalizeGrace)) s") }
            exitWithoutTeardown()
            return
        }
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            MPI_Finalize()
            done.signal()
        }
        t.stackSize = 1 << 20
        t.start()
        if done.wait(timeout: .now() + finalizeGrace) == .timedOut {
            note("MPI_Finalize did not return within \(Int(finalizeGrace)) s")
            exitWithoutTeardown()
        }
    }

    private static func note(_ what: String) {
        let rank = ProcessInfo.processInfo.environment["PMI_RANK"] ?? "?"
        FileHandle.standardError.write(Data("switchyard: rank \(rank): \(what); this rank's work is done, ending without it\n".utf8))
    }

    /// At exit: flush stdio, tell the witness the end is on purpose, and `_exit` with the exit status.
    private static func exitWithoutTeardown() {
        guard !endWithExit else { return }
        endWithExit = true
        on_exit({ status, _ in
            fflush(nil)
            RankWitness.release()
            _exit(status)
        }, nil)
    }

    /// PMI-1 barrier, then finalize, on the launcher's socket; whether both were answered in time.
    private static func finishPMI(_ fd: Int32) -> Bool {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(finalizeGrace * 1e9)
        func say(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == s.utf8.count }
        func expect(_ word: String) -> Bool {
            var line: [UInt8] = [], byte: UInt8 = 0
            while true {
                let now = DispatchTime.now().uptimeNanoseconds
                guard now < deadline else { return false }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, Int32(min((deadline - now) / 1_000_000, 1000)))
                if ready < 0 && errno != EINTR { return false }
                if ready <= 0 { continue }
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                if byte != 10 { line.append(byte); continue }
                if String(decoding: line, as: UTF8.self).hasPrefix("cmd=\(word)") { return true }
                line = []
            }
        }
        return say("cmd=barrier_in\n") && expect("barrier_out") && say("cmd=finalize\n") && expect("finalize_ack")
    }
}
