// `GET /cluster`: what the web UI's cluster panel draws, as JSON. The ranks and their roles (from the
// topology, or one process with in-process experts), each worker's share of the rows rank 0's heads have
// dispatched and its expert-compute seconds, the scheduler's slots, queue and KV per head, the MTP
// acceptance per draft position over every finished request, and the routing counts per MoE layer and
// expert (the heat map), with each expert's primary owner under a topology.
//
// Dimension legend: L MoE layers (in model order), E routed experts per layer, W workers, K draft positions.
import Chat
import Engine
import Foundation
import Hummingbird
import Step35

/// Totals over every request the server finished: requests, tokens, and MTP counts per draft position.
final class ServedTally: @unchecked Sendable {
    private let lock = NSLock()
    private var requests = 0, promptTokens = 0, completionTokens = 0
    private var speculation = SpeculationStats(depth: 0)

    func record(_ u: Usage) {
        lock.withLock {
            requests += 1
            promptTokens += u.promptTokens
            completionTokens += u.completionTokens
            speculation.add(u.speculation)
        }
    }

    /// {"requests", "prompt_tokens", "completion_tokens", "mtp": {"drafted": [K], "accepted": [K]}}.
    var json: JSONValue {
        lock.withLock {
            .object([("requests", .integer("\(requests)")), ("prompt_tokens", .integer("\(promptTokens)")),
                     ("completion_tokens", .integer("\(completionTokens)")),
                     ("mtp", .object([("drafted", ints(speculation.drafted)), ("accepted", ints(speculation.accepted))]))])
        }
    }
}

/// A JSON list of integers.
func ints(_ a: [Int]) -> JSONValue { .array(a.map { .integer("\($0)") }) }

extension ChatService {
    /// `GET /cluster`: the cluster panel's data (see the file header).
    func cluster() -> Response {
        let s = engine.snapshot()
        var body: [(key: String, value: JSONValue)] = [("model", .string(alias)), ("ranks", .array(ranks()))]
        let rows = s.rowsPerWorker, total = max(rows.reduce(0, +), 1)
        body.append(("workers", .array(rows.indices.map { w in
            .object([("worker", .integer("\(w)")), ("rank", .integer("\((engine.session?.topology.heads ?? 1) + w)")),
                     ("rows", .integer("\(rows[w])")), ("share", .double(Double(rows[w]) / Double(total))),
                     ("compute_seconds", .double(w < s.workerComputeSeconds.count ? s.workerComputeSeconds[w] : 0))])
        })))
        body.append(("scheduler", .object([("slots_per_lane", .integer("\(s.slotsPerLane)")), ("running", .integer("\(s.running.count)")),
                                           ("queued", .integer("\(s.queued)")), ("kv_used_bytes", ints(s.kvUsed)),
                                           ("kv_budget_bytes", .integer("\(s.kvBudget)")), ("cached_sequences", .integer("\(s.cachedSequences)")),
                                           ("served", .integer("\(s.served)")), ("generated_tokens", .integer("\(s.generatedTokens)"))])))
        body.append(("served", tally.json))
        body.append(("expert_load", expertLoad()))
        return json(.object(body))
    }

    /// One entry per rank: its role, threads and lanes.
    func ranks() -> [JSONValue] {
        let m = engine.session?.lanes.count ?? 1
        guard let t = engine.session?.topology else {
            return [.object([("rank", .integer("0")), ("role", .string("single process (in-process experts)")),
                             ("threads", .integer("\(engine.model.pool.threads)")), ("lanes", .integer("\(m)"))])]
        }
        return (0..<t.ranks).map { r in
            let head = r < t.heads
            return .object([("rank", .integer("\(r)")), ("role", .string(head ? (r == 0 ? "head (coordinator)" : "head") : "worker \(r - t.heads)")),
                            ("threads", .integer("\(head ? t.headThreads : t.workerThreads)")), ("lanes", .integer("\(m)"))])
        }
    }

    /// Routing counts of the MoE layers: {"layers": [L], "experts": E, "tokens": [L], "counts": [L][E],
    /// "owners": [L][E] primary worker or null}.
    func expertLoad() -> JSONValue {
        let layers = engine.model.moeLayerIndices, e = engine.model.config.expertCount
        guard let stats = engine.expertStats else { return .null }
        let table = stats.table, tokens = stats.tokensPerLayer
        let topo = engine.session?.topology
        return .object([("layers", ints(layers)), ("experts", .integer("\(e)")), ("tokens", ints(layers.map { tokens[$0] })),
                        ("counts", .array(layers.map { ints(table[$0]) })),
                        ("owners", topo.map { t in .array(layers.map { l in ints((0..<e).map { t.owners(layer: l, expert: $0).first ?? -1 }) }) } ?? .null)])
    }
}
