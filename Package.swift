// swift-tools-version:6.0
// Switchyard: an expert-parallel inference cluster for Step 3.5 Flash.
import PackageDescription

// Hot kernels live in one C target built for the baseline of the architecture: the AVX2 and AVX-512
// functions carry their own target attributes and are chosen at run time from cpuid (qdot.c), so one
// binary runs on every x86-64 CPU. Everything else is portable Swift.
let kernelCFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "Switchyard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: kernelCFlags),
        .target(name: "GGUF"),
        .target(name: "Kernels", dependencies: ["CKernels", "GGUF"]),
        .target(name: "Tokenizer", dependencies: ["GGUF"]),
        .target(name: "ModelKit", dependencies: ["Kernels", "GGUF"]),
        .target(name: "Step35", dependencies: ["ModelKit", "Kernels", "GGUF", "Tokenizer"]),
        .target(name: "CostModel"),
        .target(name: "Tuning"),
        .systemLibrary(name: "CMPI", pkgConfig: "mpich", providers: [.apt(["libmpich-dev"])]),
        .target(name: "SwiftMPI", dependencies: ["CMPI"]),
        .systemLibrary(name: "CNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .target(name: "SwiftNUMA", dependencies: ["CNUMA"]),
        .target(name: "Cluster", dependencies: ["SwiftMPI", "SwiftNUMA", "Step35", "Kernels", "GGUF", .product(name: "Yams", package: "Yams")]),
        .target(name: "Chat"),
        // The trained demo model (Scripts/train/), the default when no -m is given: a resource, found at run time.
        .target(name: "DemoModel", resources: [.copy("switchyard-demo-q8_0.gguf")]),
        .target(name: "Engine", dependencies: ["Step35", "Tokenizer", "GGUF", "ModelKit", "Cluster", "SwiftMPI", "SwiftNUMA"]),
        .target(name: "Server", dependencies: ["Engine", "Chat", "Tokenizer", "Step35", "ModelKit", "Cluster",
                                              .product(name: "Hummingbird", package: "hummingbird"),
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(name: "BenchKit", dependencies: ["Engine", "Cluster", "Step35", "CostModel", "Kernels", "ModelKit", "GGUF"]),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "Engine", "BenchKit", "Server", "Step35", "Tokenizer", "GGUF", "Kernels", "ModelKit", "Cluster", "SwiftMPI", "SwiftNUMA", "CostModel", "Tuning", "DemoModel", "Chat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "GGUF", "ModelKit"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUF"]),
        .testTarget(name: "Step35Tests", dependencies: ["Step35", "ModelKit", "GGUF", "Tokenizer", "Kernels"]),
        .testTarget(name: "CostModelTests", dependencies: ["CostModel"]),
        .testTarget(name: "TuningTests", dependencies: ["Tuning"]),
        .testTarget(name: "ModelKitTests", dependencies: ["ModelKit", "Kernels", "GGUF"]),
        .testTarget(name: "CLITests", dependencies: ["switchyard"]),
        .testTarget(name: "ChatTests", dependencies: ["Chat"]),
        .testTarget(name: "ServerTests", dependencies: ["switchyard", "Server", .product(name: "Hummingbird", package: "hummingbird"),
                                                        .product(name: "Logging", package: "swift-log")]),
        // Fuzz harnesses (Scripts/fuzz.sh builds them with libFuzzer; a plain build replays a corpus).
        .target(name: "FuzzSupport", path: "Tests/Fuzz/Support"),
        .executableTarget(name: "FuzzGGUF", dependencies: ["GGUF", "FuzzSupport"], path: "Tests/Fuzz/FuzzGGUF",
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzTopology", dependencies: ["Cluster", "FuzzSupport"], path: "Tests/Fuzz/FuzzTopology",
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzTokenizer", dependencies: ["Tokenizer", "GGUF", "FuzzSupport"], path: "Tests/Fuzz/FuzzTokenizer",
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzChat", dependencies: ["Chat", "FuzzSupport"], path: "Tests/Fuzz/FuzzChat",
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzHTTP", dependencies: ["Server", "Engine", "Chat", "GGUF", "Step35", "FuzzSupport",
                                                      .product(name: "Hummingbird", package: "hummingbird")],
                          path: "Tests/Fuzz/FuzzHTTP", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "BenchKit", "Step35", "ModelKit", "GGUF", "Tokenizer"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "SwiftNUMA", "switchyard"]),
    ],
    swiftLanguageModes: [.v6]
)
