// The `switchyard` command line.
import ArgumentParser
import Foundation
import SwiftMPI

@main
struct Switchyard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "Expert-parallel inference for Step 3.5 Flash.",
        subcommands: [Generate.self, Serve.self, Logits.self, Replay.self, Bench.self, ExchangeBench.self, Cost.self, Tune.self, Inspect.self, Synth.self, Launch.self, Supervise.self],
        defaultSubcommand: Generate.self)

    /// Unblocks the stop signals before anything else: a parent that spawned us from a thread with them
    /// blocked (Foundation's Process on a dispatch thread does) would otherwise leave SIGINT and SIGTERM
    /// pending forever, and `serve` or `launch --run` could not be stopped.
    static func main() {
        let args = CommandLine.arguments
        if args.count > 1, [RankWitness.witnessCommand, RankWitness.canaryCommand].contains(args[1]) {
            RankWitness.runHelper(Array(args.dropFirst()))  // a rank's helper process (SwiftMPI/Witness.swift)
        }
        unblockStopSignals()
        Self.main(nil)
    }
}

/// Unblocks SIGINT, SIGTERM and SIGHUP on the calling thread (the main thread: later threads inherit it).
func unblockStopSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Prints an error the way every subcommand reports one, and exits non-zero.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// Runs `body`, turning any thrown error into a message on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        throw fail("\(error)")
    }
}
