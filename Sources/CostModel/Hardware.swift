// Hardware profiles the cost model prices: the Step-3 paper's four chips (its Table 4), Hopper H100,
// a DDR5 CPU node, and the machine it runs on (measured by `switchyard cost --probe`).
import Foundation

/// A device (GPU or CPU node) as the cost model sees it.
public struct HardwareProfile: Codable, Sendable, Equatable {
    public var name: String
    /// Rental price, dollars per hour.
    public var pricePerHour: Double
    /// Peak FLOP/s at each precision (0: the device has no such units).
    public var flopsFP8: Double
    public var flopsBF16: Double
    public var flopsF32: Double
    /// Memory bandwidth (bytes/s) and capacity (bytes).
    public var memoryBandwidth: Double
    public var memoryCapacity: Double
    /// Network bandwidth per device (bytes/s, one direction) and one-way message latency (s).
    public var networkBandwidth: Double
    public var networkLatency: Double
    /// Fixed cost of one kernel call (launch or thread-pool dispatch and join), seconds.
    public var callOverhead: Double
    /// Rate at which the engine's decode matmul streams weights of the model's type, bytes/s (0: the
    /// memory bandwidth). Measured profiles set it: a quantized matmul also spends time dequantizing.
    public var weightBandwidth: Double = 0
    public var source: String

    /// Creates a profile.
    public init(name: String, pricePerHour: Double, flopsFP8: Double = 0, flopsBF16: Double = 0, flopsF32: Double = 0,
                memoryBandwidth: Double, memoryCapacity: Double = 0, networkBandwidth: Double = 0, networkLatency: Double = 0,
                callOverhead: Double = 0, source: String) {
        self.name = name
        self.pricePerHour = pricePerHour
        self.flopsFP8 = flopsFP8
        self.flopsBF16 = flopsBF16
        self.flopsF32 = flopsF32
        self.memoryBandwidth = memoryBandwidth
        self.memoryCapacity = memoryCapacity
        self.networkBandwidth = networkBandwidth
        self.networkLatency = networkLatency
        self.callOverhead = callOverhead
        self.source = source
    }

    /// Peak FLOP/s at the precision the paper's convention uses: FP8 where the device has it, else BF16,
    /// else F32.
    public var flops: Double { flopsFP8 > 0 ? flopsFP8 : flopsBF16 > 0 ? flopsBF16 : flopsF32 }
    /// Dollars per FLOP and per byte read.
    public var uFLOP: Double { pricePerHour / 3600 / flops }
    public var uByte: Double { pricePerHour / 3600 / memoryBandwidth }
}

extension HardwareProfile {
    /// The paper's Table 4: price per hour, FP8 peak on H800/H20, BF16 on A800/910B, memory bandwidth.
    /// Capacities and networks from the vendors' data sheets as the paper's §5.4 uses them (8 NICs per
    /// 8-GPU server: 400 Gb/s per H800/H20, 200 Gb/s per A800/910B).
    public static let h800 = HardwareProfile(
        name: "H800", pricePerHour: 2.00, flopsFP8: 1.98e15, flopsBF16: 9.89e14, flopsF32: 6.7e13, memoryBandwidth: 3.35e12,
        memoryCapacity: 80e9, networkBandwidth: 50e9, networkLatency: 3e-6, callOverhead: 4e-6,
        source: "Step-3 paper Table 4 (price, FP8, bandwidth); 80 GB HBM3; 400 Gb/s NIC per GPU")
    public static let h20 = HardwareProfile(
        name: "H20", pricePerHour: 0.80, flopsFP8: 2.96e14, flopsBF16: 1.48e14, flopsF32: 4.4e13, memoryBandwidth: 4.00e12,
        memoryCapacity: 96e9, networkBandwidth: 50e9, networkLatency: 3e-6, callOverhead: 4e-6,
        source: "Step-3 paper Table 4; 96 GB HBM3; 400 Gb/s NIC per GPU")
    public static let a800 = HardwareProfile(
        name: "A800", pricePerHour: 0.75, flopsBF16: 3.12e14, flopsF32: 1.95e13, memoryBandwidth: 2.00e12,
        memoryCapacity: 80e9, networkBandwidth: 25e9, networkLatency: 3e-6, callOverhead: 5e-6,
        source: "Step-3 paper Table 4 (BF16: no FP8 units); 80 GB HBM2e; 200 Gb/s NIC per GPU")
    public static let ascend910B = HardwareProfile(
        name: "910B", pricePerHour: 0.67, flopsBF16: 2.80e14, memoryBandwidth: 1.60e12,
        memoryCapacity: 64e9, networkBandwidth: 25e9, networkLatency: 3e-6, callOverhead: 5e-6,
        source: "Step-3 paper Table 4 (price marked * there: estimated); 64 GB HBM2e; 200 Gb/s RoCE per NPU")
    /// Hopper H100 SXM: the H800's compute and memory (the H800 differs only in NVLink), at the paper's
    /// Hopper price.
    public static let h100 = HardwareProfile(
        name: "H100", pricePerHour: 2.00, flopsFP8: 1.979e15, flopsBF16: 9.89e14, flopsF32: 6.7e13, memoryBandwidth: 3.35e12,
        memoryCapacity: 80e9, networkBandwidth: 50e9, networkLatency: 3e-6, callOverhead: 4e-6,
        source: "NVIDIA H100 SXM data sheet (dense FP8/BF16, 3.35 TB/s, 80 GB); price as the paper's H800")
    /// One socket of AMD EPYC 9654 (96 Zen 4 cores, 2 x 256-bit FMA per core at 2.4 GHz) with 12 channels
    /// of DDR5-4800: 460.8 GB/s, 768 GB; 100 GbE between nodes. The price is an assumption (no published
    /// on-demand price for one socket); pass --price to use yours.
    public static let ddr5Node = HardwareProfile(
        name: "DDR5-node", pricePerHour: 3.00, flopsBF16: 1.47e13, flopsF32: 7.37e12, memoryBandwidth: 460.8e9,
        memoryCapacity: 768e9, networkBandwidth: 12.5e9, networkLatency: 25e-6, callOverhead: 5e-6,
        source: "EPYC 9654: 96 cores x 2.4 GHz x 32 F32 FLOP/cycle (BF16 dot products 2x); 12 x DDR5-4800 = 460.8 GB/s (ep-anchors.md §6); price assumed")

    /// The paper's four chips, in its order.
    public static let step3Paper: [HardwareProfile] = [h800, h20, a800, ascend910B]
    /// Every built-in profile by its command-line name (`measured` comes from the probe at run time).
    public static let builtIn: [String: HardwareProfile] = [
        "h800": h800, "h100": h100, "hopper": h100, "h20": h20, "a800": a800, "910b": ascend910B, "ddr5": ddr5Node,
    ]
}
