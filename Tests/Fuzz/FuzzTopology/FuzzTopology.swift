// libFuzzer harness: the topology YAML loader on arbitrary text must throw a message or return a topology
// that validates or throws; never crash or hang (Tests/Fuzz/Support/FuzzSupport.swift).
import Cluster
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")  // the symbol libFuzzer's runtime links against
public func fuzzTopology(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: FuzzReplay.bytes(data, size), as: UTF8.self)
    guard let t = try? Topology(yaml: text, file: "fuzz.yaml") else { return 0 }
    _ = try? t.validate(worldSize: t.heads + t.workers, modelExperts: t.experts, moeLayers: [1, 2, 3])
    return 0
}

@main struct Harness {
    static func main() { FuzzReplay.main("fuzz-topology", fuzzTopology) }
}
