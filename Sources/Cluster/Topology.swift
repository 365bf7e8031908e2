// Expert-parallel topology files (YAML): ranks, expert placement, replicas, dispatch payload, threads, NUMA.
// Schema: Docs/TOPOLOGY.md. Every error names the file, the line and the problem.
//
// Dimension legend: E experts per MoE layer, W workers, H heads.
import Foundation
import Yams

/// How hidden states travel to the workers.
public enum DispatchPayload: String, Sendable, CaseIterable {
    case f32, bf16, f16, int8
}

/// A problem in a topology file.
public struct TopologyError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let problem: String
    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(problem)" }
}

/// A parsed, validated topology.
public struct Topology: Sendable {
    /// Source file (for messages).
    public let file: String
    /// Experts per MoE layer the topology was written for.
    public let experts: Int
    /// Head ranks 0..<heads (rank 0 is the coordinator).
    public let heads: Int
    /// Worker ranks heads..<heads+workers.
    public let workers: Int
    /// Dispatch payload encoding.
    public let dispatch: DispatchPayload
    /// Kernel threads per head / per worker rank.
    public let headThreads: Int
    public let workerThreads: Int
    /// Micro-batch lanes per rank: independent streams of forward passes whose exchanges overlap with each
    /// other's compute (ping-pong, MegaScale-Infer / StepFun AFD). 1 runs one pass at a time.
    public let microBatches: Int
    /// NUMA node per worker (nil: no binding requested).
    public let numa: [Int]?
    /// How rows of a replicated expert pick a copy: by token index, or to the copy whose worker has the
    /// fewest rows so far in that exchange.
    public enum ReplicaDispatch: String, Sendable { case token, load }
    public let replicaDispatch: ReplicaDispatch
    /// Default owners of each expert: `owners[e]` lists workers holding expert e (first = primary).
    let defaultOwners: [[Int]]
    /// Per-layer overrides of the owners table.
    let layerOwners: [Int: [[Int]]]

    /// Total ranks the job must have.
    public var ranks: Int { heads + workers }

    /// Workers holding expert `e` of layer `layer`, primary first.
    public func owners(layer: Int, expert e: Int) -> [Int] { (layerOwners[layer] ?? defaultOwners)[e] }

    /// Experts (ids) worker `w` holds in `layer`.
    public func experts(layer: Int, worker w: Int) -> [Int] {
        let table = layerOwners[layer] ?? defaultOwners
        return (0..<experts).filter { table[$0].contains(w) }
    }

    /// Checks the topology against an `mpirun -n` size and a model's expert count and MoE layers.
    public func validate(worldSize: Int?, modelExperts: Int?, moeLayers: [Int]) throws {
        if let n = worldSize, n != ranks {
            throw TopologyError(file: file, line: nil,
                                problem: "declares \(ranks) ranks (\(heads) heads + \(workers) workers) but the job has \(n) (mpirun -n \(n))")
        }
        if let e = modelExperts, e != experts {
            throw TopologyError(file: file, line: nil, problem: "written for \(experts) experts per layer but the model has \(e)")
        }
        for l in layerOwners.keys where !moeLayers.contains(l) {
            throw TopologyError(file: file, line: nil, problem: "placement for layer \(l), which is not an MoE layer of this model (\(moeLayers.first ?? 0)...\(moeLayers.last ?? 0))")
        }
    }

    /// Parses and validates a topology file.
    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TopologyError(file: path, line: nil, problem: "cannot read the file")
        }
        try self.init(yaml: text, file: path)
    }

    /// Parses and validates topology text (`file` is only used in messages).
    public init(yaml text: String, file: String) throws {
        func err(_ node: Node?, _ msg: String) -> TopologyError {
            TopologyError(file: file, line: node?.mark?.line, problem: msg)
        }
        let root: Node
        do {
            guard let r = try Yams.compose(yaml: text) else { throw err(nil, "the file is empty") }
            root = r
        } catch let e as TopologyError {
            throw e
        } catch let e as YamlError {
            throw TopologyError(file: file, line: Self.line(of: e), problem: "not valid YAML: \(e)")
        }
        guard let top = root.mapping else { throw err(root, "the top level must be a mapping of keys") }
        let known: Set = ["experts", "heads", "workers", "dispatch", "threads", "placement", "replicas", "numa", "micro_batches",
                          "replica_dispatch"]
        for (k, _) in top where !known.contains(k.string ?? "") {
            throw err(k, "unknown key '\(k.string ?? "?")' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func int(_ n: Node?, _ name: String, min: Int) throws -> Int {
            guard let n else { throw err(root, "missing required key '\(name)'") }
            guard let v = n.int, v >= min else { throw err(n, "'\(name)' must be an integer >= \(min)") }
            return v
        }
        experts = try int(top["experts"], "experts", min: 1)
        heads = try int(top["heads"], "heads", min: 1)
        workers = try int(top["workers"], "workers", min: 1)
        if let mb = top["micro_batches"] {
            guard let v = mb.int, (1...8).contains(v) else { throw err(mb, "micro_batches must be an integer from 1 to 8") }
            microBatches = v
        } else {
            microBatches = 1
        }
        let rd = top["replica_dispatch"]?.string ?? "load"
        guard let rdv = ReplicaDispatch(rawValue: rd) else {
            throw err(top["replica_dispatch"], "replica_dispatch '\(rd)' must be token or load")
        }
        replicaDispatch = rdv
        let d = top["dispatch"]?.string ?? "f32"
        guard let payload = DispatchPayload(rawValue: d) else {
            throw err(top["dispatch"], "dispatch '\(d)' must be one of f32, bf16, f16, int8")
        }
        dispatch = payload
        var ht = 1, wt = 1
        if let t = top["threads"] {
            if let v = t.int {
                guard v >= 1 else { throw err(t, "threads must be >= 1") }
                ht = v; wt = v
            } else if let m = t.mapping {
                for (k, v) in m {
                    guard let key = k.string, key == "heads" || key == "workers" else { throw err(k, "threads takes 'heads' and 'workers'") }
                    guard let n = v.int, n >= 1 else { throw err(v, "threads.\(key) must be an integer >= 1") }
                    if key == "heads" { ht = n } else { wt = n }
                }
            } else {
                throw err(t, "threads must be an integer or a mapping with heads/workers")
            }
        }
        headThreads = ht
        workerThreads = wt
        if let n = top["numa"] {
            guard let seq = n.sequence else { throw err(n, "numa must be a list with one NUMA node per worker") }
            guard seq.count == workers else { throw err(n, "numa lists \(seq.count) nodes for \(workers) workers") }
            numa = try seq.map { v in
                guard let i = v.int, i >= 0 else { throw err(v, "a NUMA node must be an integer >= 0") }
                return i
            }
        } else {
            numa = nil
        }

        // Placement.
        let w = workers, e = experts
        var table: [[Int]]
        var perLayer: [Int: [[Int]]] = [:]
        let placement = top["placement"]
        let strategy = placement?.mapping?["strategy"]?.string ?? placement?.string ?? "contiguous"
        func workerIndex(_ node: Node) throws -> Int {
            guard let i = node.int else { throw err(node, "a worker index must be an integer") }
            guard (0..<w).contains(i) else { throw err(node, "worker index \(i) is out of range (0..<\(w))") }
            return i
        }
        func expertList(_ node: Node) throws -> [Int] {
            guard let seq = node.sequence else { throw err(node, "expected a list of experts such as [0-7, 12]") }
            var out: [Int] = []
            for item in seq {
                let s = item.string ?? ""
                let parts = s.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard (1...2).contains(parts.count), !parts.contains(nil), let lo = parts.first!, let hi = parts.last! else {
                    throw err(item, "'\(s)' is not an expert id or range (like 5 or 0-7)")
                }
                guard lo <= hi, lo >= 0, hi < e else { throw err(item, "expert range \(s) is outside 0..<\(e)") }
                out += Array(lo...hi)
            }
            return out
        }
        func mapTable(_ node: Node, what: String) throws -> [[Int]] {
            guard let m = node.mapping else { throw err(node, "\(what) must map worker index -> expert list") }
            var t = [[Int]](repeating: [], count: e)
            for (k, v) in m {
                let wi = try workerIndex(k)
                for ex in try expertList(v) where !t[ex].contains(wi) { t[ex].append(wi) }
            }
            if let missing = t.firstIndex(where: \.isEmpty) { throw err(node, "expert \(missing) is not placed on any worker in \(what)") }
            return t
        }
        switch strategy {
        case "contiguous":
            // Worker k holds experts [k·E/W, (k+1)·E/W): the EP-group layout Step 3.5's router was trained for.
            table = (0..<e).map { [$0 * w / e] }
        case "round-robin":
            table = (0..<e).map { [$0 % w] }
        case "map":
            guard let m = placement?.mapping?["map"] else { throw err(placement, "strategy 'map' needs a 'map:' of worker -> experts") }
            table = try mapTable(m, what: "placement.map")
            if let layers = placement?.mapping?["layers"] {
                guard let lm = layers.mapping else { throw err(layers, "placement.layers must map layer index -> map") }
                for (k, v) in lm {
                    guard let l = k.int, l >= 0 else { throw err(k, "a layer index must be an integer >= 0") }
                    perLayer[l] = try mapTable(v, what: "placement.layers.\(l)")
                }
            }
        default:
            throw err(placement, "placement strategy '\(strategy)' must be contiguous, round-robin or map")
        }
        if let reps = top["replicas"] {
            guard let seq = reps.sequence else { throw err(reps, "replicas must be a list of {expert, worker}") }
            for r in seq {
                guard let m = r.mapping, let en = m["expert"], let wn = m["worker"] else {
                    throw err(r, "a replica needs 'expert' and 'worker'")
                }
                guard let ex = en.int, (0..<e).contains(ex) else { throw err(en, "replica expert must be in 0..<\(e)") }
                let wi = try workerIndex(wn)
                if table[ex].contains(wi) { throw err(wn, "worker \(wi) already holds expert \(ex)") }
                table[ex].append(wi)
                for l in perLayer.keys where !perLayer[l]![ex].contains(wi) { perLayer[l]![ex].append(wi) }
            }
        }
        defaultOwners = table
        layerOwners = perLayer
        self.file = file
    }

    private static func line(of e: YamlError) -> Int? {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }
}
