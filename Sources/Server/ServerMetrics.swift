// `/metrics` (with `--metrics`): Prometheus text via swift-prometheus. llama-server's `llamacpp:*` names
// where the meanings match (prompt and predicted tokens and seconds, requests processing and deferred, KV
// usage ratio), and `switchyard_*` series for what llama-server has no name for: MTP drafts and acceptances
// per draft position, the expert exchange's time per MoE layer (histogram), rows sent to each worker,
// prefix-cache hits.
import Engine
import Foundation
import Prometheus

/// The server's metrics: counters fed by finished requests, gauges read from the engine at each scrape.
public final class ServerMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    let promptTokens, predictedTokens, cachedTokens, requests: Counter
    let promptSeconds, predictedSeconds: Counter
    let processing, deferred, kvRatio, kvCachedSequences: Gauge
    let exchange: ValueHistogram
    private let lock = NSLock()
    // Per draft position and per worker, made as they first appear (under `lock`).
    private var drafted: [Counter] = [], accepted: [Counter] = []
    private var workerRows: [Gauge] = []

    public init() {
        let r = registry
        promptTokens = r.makeCounter(name: "llamacpp:prompt_tokens_total", help: "Number of prompt tokens processed.")
        predictedTokens = r.makeCounter(name: "llamacpp:tokens_predicted_total", help: "Number of generation tokens processed.")
        promptSeconds = r.makeCounter(name: "llamacpp:prompt_seconds_total", help: "Prompt process time")
        predictedSeconds = r.makeCounter(name: "llamacpp:tokens_predicted_seconds_total", help: "Predict process time")
        processing = r.makeGauge(name: "llamacpp:requests_processing", help: "Number of requests processing.")
        deferred = r.makeGauge(name: "llamacpp:requests_deferred", help: "Number of requests deferred.")
        kvRatio = r.makeGauge(name: "llamacpp:kv_cache_usage_ratio", help: "KV-cache usage. 1 means 100 percent usage.")
        cachedTokens = r.makeCounter(name: "switchyard_prompt_tokens_cached_total", help: "Prompt tokens taken from cached sequences (prefix reuse).")
        requests = r.makeCounter(name: "switchyard_requests_total", help: "Requests finished.")
        kvCachedSequences = r.makeGauge(name: "switchyard_kv_cached_sequences", help: "Finished sequences whose KV is kept for prefix reuse.")
        exchange = r.makeValueHistogram(name: "switchyard_exchange_seconds",
                                        buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
                                        help: "Expert exchange (dispatch + combine) time of one MoE layer, head side.")
    }

    /// A finished request's usage.
    func record(_ u: Usage) {
        promptTokens.increment(by: Int64(u.promptTokens - u.cachedTokens))
        cachedTokens.increment(by: Int64(u.cachedTokens))
        predictedTokens.increment(by: Int64(u.completionTokens))
        promptSeconds.increment(by: u.promptSeconds)
        predictedSeconds.increment(by: u.decodeSeconds)
        requests.increment()
        let s = u.speculation
        guard !s.drafted.isEmpty else { return }
        lock.withLock {
            while drafted.count < s.drafted.count {
                let k = "\(drafted.count + 1)"
                drafted.append(registry.makeCounter(name: "switchyard_mtp_drafted_total", labels: [("position", k)],
                                                    help: "MTP draft tokens proposed at each draft position."))
                accepted.append(registry.makeCounter(name: "switchyard_mtp_accepted_total", labels: [("position", k)],
                                                     help: "MTP draft tokens accepted at each draft position."))
            }
            for k in s.drafted.indices {
                drafted[k].increment(by: Int64(s.drafted[k]))
                accepted[k].increment(by: Int64(s.accepted[k]))
            }
        }
    }

    /// One MoE layer's exchange time (seconds).
    public func exchanged(_ seconds: Double) { exchange.record(seconds) }

    /// The Prometheus text, after reading the engine's gauges.
    func scrape(_ engine: Engine) -> String {
        let s = engine.snapshot()
        processing.set(Double(s.running.count))
        deferred.set(Double(s.queued))
        kvRatio.set(s.kvBudget > 0 ? Double(s.kvUsed.max() ?? 0) / Double(s.kvBudget) : 0)
        kvCachedSequences.set(Double(s.cachedSequences))
        lock.withLock {
            while workerRows.count < s.rowsPerWorker.count {
                workerRows.append(registry.makeGauge(name: "switchyard_worker_rows", labels: [("worker", "\(workerRows.count)")],
                                                     help: "Rows (token, expert pairs) rank 0's heads have sent to each worker."))
            }
            for (g, n) in zip(workerRows, s.rowsPerWorker) { g.set(Double(n)) }
        }
        return registry.emitToString()
    }
}
