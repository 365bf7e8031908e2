// The seed table: relative decode cost at 128K context on Hopper under the serving assumptions StepFun
// lists beside its Step 3.5 Flash release (stepfun-ai/Step-3.5-Flash README). StepFun publishes Step 3.5
// Flash = 1.0x and DeepSeek V3.2 = 6.0x only, without its method; the knobs below are calibrated on those
// two rows alone (one knob, the MTP acceptance, solved for; the others fixed beforehand) and the other
// four rows are predictions.
import Foundation

/// One row's serving assumptions.
public struct SeedRow: Sendable {
    public var model: ModelCostSpec
    /// Per-user speed, tokens/s.
    public var sla: Double
    public var mtp: Int
    public var ep: Int
    /// Bytes per KV element (the KV-precision knob per model).
    public var kvBytes: Double
}

/// The seed table and its calibration.
public enum SeedTable {
    public static let context = 131_072
    /// The published anchor: DeepSeek V3.2 / Step 3.5 Flash.
    public static let anchorRatio = 6.0

    /// The six rows. KV precision: FP8 everywhere (the Step-3 convention; Step 3.5 Flash ships an INT8 KV
    /// path), DeepSeek V3.2 in FlashMLA's FP8 layout (656 bytes per token and layer for 576 elements).
    public static let rows: [SeedRow] = [
        SeedRow(model: .step35Flash, sla: 100, mtp: 3, ep: 8, kvBytes: 1),
        SeedRow(model: .deepSeekV32, sla: 33, mtp: 1, ep: 32, kvBytes: 656.0 / 576),
        SeedRow(model: .kimiK2Serving, sla: 33, mtp: 0, ep: 32, kvBytes: 1),
        SeedRow(model: .glm47, sla: 100, mtp: 3, ep: 8, kvBytes: 1),
        SeedRow(model: .miniMaxM21, sla: 100, mtp: 3, ep: 8, kvBytes: 1),
        SeedRow(model: .miMoV2Flash, sla: 100, mtp: 3, ep: 8, kvBytes: 1),
    ]

    /// The scenario of `row` on `hardware`.
    public static func scenario(_ row: SeedRow, on hardware: HardwareProfile) -> ServingScenario {
        ServingScenario(model: row.model.withKVBytes(row.kvBytes), hardware: hardware, context: context, ep: row.ep, mtp: row.mtp, sla: row.sla)
    }

    /// Estimates of every row under `knobs`.
    public static func estimates(knobs: ServingKnobs, on hardware: HardwareProfile = .h100) -> [ServingEstimate] {
        rows.map { ServingCost.estimate(scenario($0, on: hardware), knobs: knobs) }
    }

    /// DeepSeek V3.2's cost over Step 3.5 Flash's under `knobs`.
    public static func anchor(knobs: ServingKnobs, on hardware: HardwareProfile = .h100) -> Double {
        let e = Array(estimates(knobs: knobs, on: hardware).prefix(2))
        return e[1].costPerToken / e[0].costPerToken
    }

    /// Solves for the MTP acceptance that puts DeepSeek V3.2 at `anchorRatio` x Step 3.5 Flash, the other
    /// knobs held at `base`. Returns the closest value on a 0.001 grid in [0.30, 0.99].
    public static func calibrate(base: ServingKnobs = ServingKnobs(), on hardware: HardwareProfile = .h100) -> ServingKnobs {
        var best = base, bestErr = Double.infinity
        for i in 300...990 {
            var k = base
            k.acceptance = Double(i) / 1000
            let err = abs(anchor(knobs: k, on: hardware) - anchorRatio)
            if err < bestErr - 1e-12 { best = k; bestErr = err }
        }
        return best
    }
}
