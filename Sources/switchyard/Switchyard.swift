// The `switchyard` command line.
import ArgumentParser
import Foundation

@main
struct Switchyard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "Expert-parallel inference for Step 3.5 Flash.",
        subcommands: [Generate.self, Serve.self, Logits.self, Replay.self, Bench.self, Cost.self, Tune.self, Inspect.self, Synth.self, Launch.self],
        defaultSubcommand: Generate.self)
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
