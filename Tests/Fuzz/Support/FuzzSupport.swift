// What every fuzz harness shares (Tests/Fuzz, Scripts/fuzz.sh, Docs/RELIABILITY.md).
//
// Each harness is one executable whose `main` calls `FuzzReplay.main` with its one-input function. Built by
// Scripts/fuzz.sh with `-sanitize=fuzzer,address -D FUZZING`, that hands the function to libFuzzer's driver
// (`LLVMFuzzerRunDriver`; SwiftPM's executable entry point stands in for libFuzzer's own `main`). In a
// normal build (`swift build`, `.ci/run`) it replays a corpus instead: every committed seed and every crash
// kept as a regression input runs through the harness, so a fixed finding stays fixed.
import Foundation

/// A harness's one-input function, as libFuzzer calls it.
public typealias FuzzOne = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                                 _ one: FuzzOne) -> Int32
#endif

/// Replays files (or every file in directories) through a harness, or fuzzes it under FUZZING.
public enum FuzzReplay {
    /// The harness's entry point: libFuzzer's driver under FUZZING, else a corpus replay.
    public static func main(_ name: String, _ one: FuzzOne) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, one))
        #else
        run(name) { one($0, $1) }
        exit(0)
        #endif
    }

    /// Runs every file named on the command line (directories: every file in them) through `body`.
    public static func run(_ name: String, _ body: (UnsafePointer<UInt8>, Int) -> Int32) {
        let paths = CommandLine.arguments.dropFirst()
        guard !paths.isEmpty else {
            FileHandle.standardError.write(Data("usage: \(name) FILE|DIR ... (replays inputs through the harness)\n".utf8))
            exit(2)
        }
        var n = 0
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { continue }
            let files = isDir.boolValue ? ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).sorted().map { "\(p)/\($0)" } : [p]
            for f in files {
                guard let d = FileManager.default.contents(atPath: f) else { continue }
                let bytes = [UInt8](d)
                _ = bytes.withUnsafeBufferPointer { body($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
                n += 1
            }
        }
        print("\(name): \(n) inputs replayed, no crash")
    }

    /// The input as an array (harnesses work on Swift values).
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] { Array(UnsafeBufferPointer(start: data, count: size)) }
}
