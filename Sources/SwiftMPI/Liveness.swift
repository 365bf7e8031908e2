// Liveness pings: how a rank tells a dead peer from a slow one without hanging.
//
// Every process answers pings on a private duplicate of the world communicator from a small responder
// thread (MPI_THREAD_MULTIPLE), so a rank that is loading weights, computing a long prefill or waiting for
// a lock still answers. A wait that stalls pings every peer; whoever does not answer within a window is
// gone. Without THREAD_MULTIPLE the waits answer pings themselves, as a fallback.
import CMPI
import Foundation

final class Liveness: @unchecked Sendable {
    let comm: MPI_Comm
    let rank: Int, size: Int
    private static let pingTag: Int32 = 7071, pongTag: Int32 = 7072
    private let answerLock = NSLock(), probeLock = NSLock()
    /// Pong send buffers, reused round-robin (a pong is one eager int; a slot is long free when reused).
    private let pongs = UnsafeMutablePointer<Int32>.allocate(capacity: 4096)
    private var nextPong = 0, token: Int32 = 0
    private var running = false
    private let stopped = DispatchSemaphore(value: 0)

    init(world: MPI_Comm) {
        var c: MPI_Comm = MPI_COMM_NULL
        MPI_Comm_dup(world, &c)
        comm = c
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(c, &r)
        MPI_Comm_size(c, &s)
        rank = Int(r)
        size = Int(s)
    }

    /// Starts the responder thread (only where MPI allows concurrent calls from several threads).
    func startResponder() {
        guard MPI.multipleThreads, size > 1 else { return }
        running = true
        let t = Thread { [self] in
            while answerLock.withLock({ running }) {
                try? answer()
                usleep(2000)
            }
            stopped.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Stops the responder (before MPI_Finalize).
    func stopResponder() {
        guard answerLock.withLock({ running }) else { return }
        answerLock.withLock { running = false }
        stopped.wait()
    }

    /// Replies to every pending ping.
    func answer() throws {
        try answerLock.withLock {
            while true {
                var flag: Int32 = 0
                var st = MPI_Status()
                try MPI.check(MPI_Iprobe(MPI_ANY_SOURCE, Self.pingTag, comm, &flag, &st), "liveness ping")
                if flag == 0 { return }
                let slot = pongs + nextPong
                nextPong = (nextPong + 1) % 4096
                try MPI.check(MPI_Recv(slot, 1, MPI_INT, st.MPI_SOURCE, Self.pingTag, comm, cmpi_status_ignore()), "liveness ping")
                var req: MPI_Request = MPI_REQUEST_NULL
                try MPI.check(MPI_Isend(slot, 1, MPI_INT, st.MPI_SOURCE, Self.pongTag, comm, &req), "liveness pong")
                MPI_Request_free(&req)
            }
        }
    }

    /// Pings every peer and returns those that do not answer within `window` seconds. A peer whose ping or
    /// pong fails outright (over TCP, UCX reports an endpoint timeout or reset once the peer's process or
    /// link is gone) counts as not answering: the caller names it instead of passing on an MPI error stack.
    func silentPeers(window: Double) -> [Int] {
        probeLock.withLock {
            token += 1
            let buf = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * size)  // leaked on purpose if a peer is dead
            var recvs = [MPI_Request](repeating: MPI_REQUEST_NULL, count: size)
            var failed = Set<Int>()
            for peer in 0..<size where peer != rank {
                buf[peer] = token
                var sreq: MPI_Request = MPI_REQUEST_NULL
                guard MPI_Isend(buf + peer, 1, MPI_INT, Int32(peer), Self.pingTag, comm, &sreq) == MPI_SUCCESS,
                      MPI_Irecv(buf + size + peer, 1, MPI_INT, Int32(peer), Self.pongTag, comm, &recvs[peer]) == MPI_SUCCESS
                else { failed.insert(peer); continue }
                MPI_Request_free(&sreq)
            }
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(window * 1e9)
            var heard = Set([rank])
            while heard.count + failed.count < size && DispatchTime.now().uptimeNanoseconds < deadline {
                try? answer()
                for peer in 0..<size where !heard.contains(peer) && !failed.contains(peer) {
                    var f: Int32 = 0
                    if MPI_Test(&recvs[peer], &f, cmpi_status_ignore()) != MPI_SUCCESS { failed.insert(peer) } else if f != 0 { heard.insert(peer) }
                }
                usleep(200)
            }
            // A late pong from a peer that was only slow must not be taken for the next probe's answer:
            // drop unanswered receives (MPI_Cancel on a receive is well defined).
            for peer in 0..<size where !heard.contains(peer) && peer != rank && recvs[peer] != MPI_REQUEST_NULL {
                MPI_Cancel(&recvs[peer])
                MPI_Request_free(&recvs[peer])
            }
            return (0..<size).filter { !heard.contains($0) }
        }
    }
}
