// The trained demo model: a 12.8M-parameter Step 3.5 (Scripts/train/, Docs/MODEL.md), shipped as a SwiftPM
// resource of this target and used when no model is named. The file is mapped in place like any GGUF;
// this target only finds it.
import Foundation

/// Finds the shipped demo model, the default of every command that loads a model.
public enum DemoModel {
    /// The GGUF's file name, in this target's directory and in the built resource bundle.
    public static let fileName = "switchyard-demo-q8_0.gguf"

    /// The name the server answers to (`model` in requests) when it serves the demo model.
    public static let alias = "switchyard-demo"

    /// The places looked at, in order: `$SWITCHYARD_DEMO_MODEL`, the resource bundle next to the running
    /// executable (what `swift build` lays out, on Linux and macOS), and this source checkout.
    public static var candidates: [String] {
        var out: [String] = []
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_DEMO_MODEL"], !env.isEmpty { out.append(env) }
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        dirs.append(Bundle.main.bundleURL)
        for d in dirs {
            out.append(d.appendingPathComponent("Switchyard_DemoModel.resources/\(fileName)").path)
            out.append(d.appendingPathComponent("Switchyard_DemoModel.bundle/\(fileName)").path)
            out.append(d.appendingPathComponent("Switchyard_DemoModel.bundle/Contents/Resources/\(fileName)").path)
        }
        out.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(fileName).path)
        return out
    }

    /// The path of the demo model's GGUF, or an error that names every place looked at.
    public static func path() throws -> String {
        let fm = FileManager.default
        if let p = candidates.first(where: { fm.isReadableFile(atPath: $0) }) { return p }
        throw DemoModelError(looked: candidates)
    }
}

/// The demo model is neither beside the binary nor in the checkout it was built from.
public struct DemoModelError: Error, CustomStringConvertible {
    public let looked: [String]
    public var description: String {
        "the demo model \(DemoModel.fileName) was not found (looked at: \(looked.joined(separator: ", "))); "
            + "copy it beside the binary, set SWITCHYARD_DEMO_MODEL, or pass -m MODEL.gguf"
    }
}
