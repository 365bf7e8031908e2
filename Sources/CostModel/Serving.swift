// Decode cost of a serving deployment: the Step-3 paper's roofline terms (CostModel.swift), extended with
// what serving at long context needs, each a named knob (`ServingKnobs`):
//   - a per-user speed SLA: a step must deliver tokens-per-step / step-time >= SLA;
//   - a batch limited by device memory: weights + sequences x KV per sequence <= usable memory;
//   - MTP: each step verifies k drafts; expected tokens per step tau = 1 + a + ... + a^k for acceptance a;
//   - KV precision per model (bytes per KV element);
//   - replicated attention weights (DP attention: every device holds all attention weights and whole
//     sequences) or sharded ones (TP attention over up to 8 devices, KV split by KV head where the
//     architecture allows it).
// Unlike the paper's model, weights are read once per step and shared by the batch, so a small batch
// pays for its weight reads; that is what makes the batch size (and so memory and the SLA) matter.
//
// Step time on one device with b_g sequences per attention group of t devices, q = k + 1 tokens each:
//   attention = max(b_g·q·FLOP_attn/t / F, b_g·KV_read/t_kv / BW) + max(b_g·q·FLOP_lin/t / F, W_attn/t / BW)
//   FFN       = max(b_g·q·FLOP_FFN/t / F, (W_other + W_routed/EP · touched) / BW)
//   exchange  = 2 · MoE layers · (latency + bytes / network)      (0 when overlapped)
//   calls     = kernel calls per token · call overhead + fixed host time per step (0 for GPUs launched
//               as graphs)
// Cost per token = price · step / (b_g/t · tau), with the step paced at the SLA when `paceAtSLA`.
import Foundation

/// Where attention weights and KV live across the devices of an EP group.
public enum AttentionPlacement: String, Codable, Sendable, CaseIterable {
    /// Every device holds all attention weights and whole sequences (DP attention).
    case replicated
    /// Attention weights and heads split over up to 8 devices (TP attention).
    case sharded
    /// Whichever of the two is cheaper and fits.
    case auto
}

/// The serving assumptions the cost depends on, beside the model and hardware.
public struct ServingKnobs: Codable, Sendable, Equatable {
    /// Fraction of device memory available to weights + KV (the rest: activations, buffers, runtime).
    public var usableMemory = 0.9
    /// Achieved fraction of peak memory bandwidth and of peak FLOP/s.
    public var bandwidthEfficiency = 0.8
    public var computeEfficiency = 0.5
    /// Probability that each MTP draft position is accepted, given the ones before it were.
    public var acceptance = 0.7
    /// Bytes per weight parameter (1: FP8).
    public var weightBytesPerParam = 1.0
    /// Attention placement (the replicated-attention-weights knob).
    public var attention = AttentionPlacement.auto
    /// Whether a step faster than the SLA still takes the SLA's time (tokens priced at the advertised speed).
    public var paceAtSLA = true
    /// Whether the expert exchange overlaps compute (micro-batch ping-pong), as the paper assumes.
    public var overlapExchange = true
    /// Wire bytes per hidden element of a routed row: dispatch (1: FP8, as DeepEP sends it) and combine
    /// (2: BF16). Switchyard's own wire format is the topology's dispatch payload and F32 back (4).
    public var dispatchBytesPerElement = 1.0
    public var combineBytesPerElement = 2.0
    /// Whether attention's cache reads overlap its arithmetic (the roofline's max, true of GPUs). False
    /// adds them: measured true of this engine's CPU kernel, whose loads and FMAs share the core's ports
    /// (Docs/COST.md, "Measured against predicted").
    public var overlapAttention = true

    /// Defaults.
    public init() {}
}

/// One deployment to price.
public struct ServingScenario: Codable, Sendable {
    public var model: ModelCostSpec
    public var hardware: HardwareProfile
    public var context: Int
    /// Devices in the expert-parallel group.
    public var ep: Int
    /// MTP draft depth (0: none).
    public var mtp: Int
    /// Per-user decode speed to meet, tokens/s (0: none).
    public var sla: Double
    /// Sequences per device (0: as many as memory and the SLA allow).
    public var batch: Double
    /// Kernel calls per decoded token that pay `hardware.callOverhead` (0: none).
    public var kernelCalls: Double = 0
    /// Host time per step that does not scale with bytes or FLOPs (bookkeeping, small kernels), seconds.
    public var fixedSeconds: Double = 0

    /// Creates a scenario.
    public init(model: ModelCostSpec, hardware: HardwareProfile, context: Int, ep: Int = 1, mtp: Int = 0, sla: Double = 0,
                batch: Double = 0, kernelCalls: Double = 0) {
        self.model = model
        self.hardware = hardware
        self.context = context
        self.ep = ep
        self.mtp = mtp
        self.sla = sla
        self.batch = batch
        self.kernelCalls = kernelCalls
    }
}

/// Step time of one device, split by part (seconds).
public struct StepTime: Codable, Sendable, Equatable {
    public var attention = 0.0, ffn = 0.0, exchange = 0.0, calls = 0.0
    /// The whole step.
    public var total: Double { attention + ffn + exchange + calls }
}

/// What a deployment costs, and why.
public struct ServingEstimate: Codable, Sendable {
    public var placement: AttentionPlacement
    /// Devices an attention group spans (1 when replicated).
    public var attentionGroup: Int
    /// Sequences per device: chosen, and the memory and SLA limits on it.
    public var sequencesPerDevice: Double
    public var memoryLimit: Double
    public var slaLimit: Double
    /// What bounds the batch: "memory", "sla", "batch" (given) or "infeasible: ...".
    public var limitedBy: String
    public var feasible: Bool
    public var weightsPerDevice: Double
    public var kvPerSequence: Double
    /// Expected tokens per sequence per step (1 + a + ... + a^k).
    public var tokensPerStep: Double
    public var step: StepTime
    /// Step time paid for (the SLA pace when that is longer).
    public var paidStepSeconds: Double
    public var perUserTokensPerSecond: Double
    public var deviceTokensPerSecond: Double
    /// Dollars per decoded token, and its attention and FFN (with exchange and call overhead) parts.
    public var costPerToken: Double
    public var attentionCost: Double
    public var ffnCost: Double
}

/// The serving cost model.
public enum ServingCost {
    /// Expected tokens per step with `k` drafts accepted position by position with probability `a`.
    public static func tokensPerStep(mtp k: Int, acceptance a: Double) -> Double { (0...max(k, 0)).reduce(0) { $0 + pow(a, Double($1)) } }

    /// Step time of one device holding `bg` sequences per attention group (`t` devices).
    public static func step(_ s: ServingScenario, knobs: ServingKnobs, groupSequences bg: Double, group t: Int) -> StepTime {
        let m = s.model, hw = s.hardware, q = Double(s.mtp + 1), td = Double(t)
        let f = hw.flops * knobs.computeEfficiency, bw = hw.memoryBandwidth * knobs.bandwidthEfficiency
        let wbw = (hw.weightBandwidth > 0 ? hw.weightBandwidth : hw.memoryBandwidth) * knobs.bandwidthEfficiency
        let wb = knobs.weightBytesPerParam
        let kvRead = m.attention.reduce(0.0) { $0 + $1.kvRead(context: s.context) / Double(min(t, max($1.kvHeads, 1))) }
        var st = StepTime()
        let core = (bg * q * m.flopAttention(context: s.context) / td / f, bg * kvRead / bw)
        st.attention = (knobs.overlapAttention ? max(core.0, core.1) : core.0 + core.1)
            + max(bg * q * m.flopLinear / td / f, wb * m.attentionLinearParams / td / wbw)
        let tokens = bg * q * Double(s.ep) / td  // tokens one MoE layer of the EP group sees per step
        let touched = m.experts > 0 ? 1 - pow(1 - Double(m.expertsPerToken) / Double(m.experts), tokens) : 1
        let other = max(m.totalParams - m.routedExpertParams - m.attentionLinearParams, 0)
        let ffnBytes = wb * (other + m.routedExpertParams / Double(s.ep) * touched)
        st.ffn = max(bg * q * m.flopFFN / td / f, ffnBytes / wbw)
        if !knobs.overlapExchange, s.ep > 1, hw.networkBandwidth > 0 {
            // Per MoE layer: dispatch and combine bytes per hidden element per routed copy (1 + 2 by default).
            let bytes = bg * q / td * Double(m.expertsPerToken * m.hidden) * (knobs.dispatchBytesPerElement + knobs.combineBytesPerElement)
            st.exchange = Double(m.moeLayers) * (2 * hw.networkLatency + bytes / hw.networkBandwidth)
        }
        st.calls = s.kernelCalls * hw.callOverhead + s.fixedSeconds
        return st
    }

    /// Prices `s` under `knobs`: the largest batch that fits memory and meets the SLA (or the given batch).
    public static func estimate(_ s: ServingScenario, knobs: ServingKnobs = ServingKnobs()) -> ServingEstimate {
        if knobs.attention == .auto {
            var k = knobs
            k.attention = .replicated
            let r = estimate(s, knobs: k)
            k.attention = .sharded
            let sh = estimate(s, knobs: k)
            if r.feasible != sh.feasible { return r.feasible ? r : sh }
            return r.costPerToken <= sh.costPerToken ? r : sh
        }
        let m = s.model, hw = s.hardware
        let t = knobs.attention == .sharded ? min(max(s.ep, 1), 8) : 1
        let other = max(m.totalParams - m.routedExpertParams - m.attentionLinearParams, 0)
        let weights = knobs.weightBytesPerParam * (other + m.attentionLinearParams / Double(t) + m.routedExpertParams / Double(max(s.ep, 1)))
        let kvDevice = m.attention.reduce(0.0) { $0 + $1.kvStored(context: s.context) / Double(min(t, max($1.kvHeads, 1))) }
        let tau = tokensPerStep(mtp: s.mtp, acceptance: knobs.acceptance)
        // Sequences per attention group that memory allows.
        let memGroup = hw.memoryCapacity > 0 ? max(hw.memoryCapacity * knobs.usableMemory - weights, 0) / kvDevice : Double.infinity
        func time(_ bg: Double) -> Double { step(s, knobs: knobs, groupSequences: bg, group: t).total }
        // Sequences per group the SLA allows: step time grows with the batch, so bisect.
        var slaGroup = Double.infinity
        if s.sla > 0 {
            let hi0 = memGroup.isFinite ? memGroup : 1e6
            if tau / time(hi0) >= s.sla {
                slaGroup = hi0
            } else {
                var lo = 0.0, hi = hi0
                for _ in 0..<100 { let mid = (lo + hi) / 2; if tau / time(mid) >= s.sla { lo = mid } else { hi = mid } }
                slaGroup = lo
            }
        }
        var bg = min(memGroup, slaGroup)
        var limitedBy = memGroup <= slaGroup ? "memory" : "sla"
        if s.batch > 0 { bg = s.batch * Double(t); limitedBy = "batch" }
        var feasible = true
        if memGroup < 1 || (s.batch > 0 && bg > memGroup + 1e-9) {
            feasible = false
            limitedBy = String(format: "infeasible: %.1f GB of weights per device leave room for %.2f sequences of %.2f GB KV", weights / 1e9,
                               memGroup, kvDevice / 1e9)
        } else if s.sla > 0, tau / time(1) < s.sla {
            feasible = false
            limitedBy = String(format: "infeasible: one sequence per group takes %.1f ms per step, the SLA needs %.1f", time(1) * 1e3, tau / s.sla * 1e3)
        }
        if !bg.isFinite { bg = 1 }
        let st = step(s, knobs: knobs, groupSequences: bg, group: t)
        let paid = knobs.paceAtSLA && s.sla > 0 ? max(st.total, tau / s.sla) : st.total
        let perDevice = bg / Double(t)
        let cost = hw.pricePerHour / 3600 * paid / (perDevice * tau)
        let attnShare = st.total > 0 ? st.attention / st.total : 0
        return ServingEstimate(
            placement: knobs.attention, attentionGroup: t, sequencesPerDevice: perDevice, memoryLimit: memGroup / Double(t),
            slaLimit: slaGroup / Double(t), limitedBy: limitedBy, feasible: feasible, weightsPerDevice: weights, kvPerSequence: m.kvStored(context: s.context),
            tokensPerStep: tau, step: st, paidStepSeconds: paid, perUserTokensPerSecond: tau / paid,
            deviceTokensPerSecond: perDevice * tau / paid, costPerToken: cost, attentionCost: cost * attnShare, ffnCost: cost * (1 - attnShare))
    }
}
