// `bench --plot FILE.svg`: per-token decode cost against context, one stacked bar per context, split by
// component. Plain SVG text (no dependencies), readable in any browser.
import BenchKit
import Foundation
import Step35

enum BenchPlot {
    static let colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                         "#9c755f", "#bab0ac"]

    /// The SVG for `rows` (bars in row order; the y axis is linear in ms per token).
    static func svg(_ report: BenchReport) -> String {
        let parts = Step35Component.allCases.map(\.rawValue) + ["other"]
        let rows = report.rows
        let w = 820.0, h = 460.0, left = 70.0, right = 190.0, top = 40.0, bottom = 60.0
        let plotW = w - left - right, plotH = h - top - bottom
        let maxMs = max(rows.map(\.msPerToken).max() ?? 1, 1e-9)
        let slot = plotW / Double(max(rows.count, 1)), barW = slot * 0.6
        func y(_ ms: Double) -> Double { top + plotH - ms / maxMs * plotH }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(left)\" y=\"22\" font-size=\"14\">Decode cost per token against context: \(esc(report.setup.model)), \(esc(report.setup.topology)), \(report.setup.threads) thread(s), \(report.setup.fill) fill</text>"]
        for k in 0...4 {
            let ms = maxMs * Double(k) / 4
            out.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, y(ms), left + plotW, y(ms)))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>", left - 6, y(ms) + 4, ms))
        }
        out.append(String(format: "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">ms per token</text>", top + plotH / 2, top + plotH / 2))
        for (i, r) in rows.enumerated() {
            let x = left + Double(i) * slot + (slot - barW) / 2
            var acc = 0.0
            for (j, p) in parts.enumerated() {
                let v = p == "other" ? r.otherMs : (r.breakdownMs[p] ?? 0)
                guard v > 0 else { continue }
                out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.2f\" fill=\"%@\"><title>%@ %.3f ms</title></rect>",
                                  x, y(acc + v), barW, v / maxMs * plotH, colors[j % colors.count], p, v))
                acc += v
            }
            let label = (r.context >= 1024 ? "\(r.context / 1024)K" : "\(r.context)") + (r.batch > 1 ? " x\(r.batch)" : "")
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>", x + barW / 2, top + plotH + 18, label))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.1f ms</text>", x + barW / 2, y(acc) - 4, acc))
        }
        out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">context (tokens; x B: B sequences per pass, cost per token)</text>", left + plotW / 2, h - 16))
        for (j, p) in parts.enumerated() {
            let ly = top + Double(j) * 20
            out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>", w - right + 16, ly, colors[j % colors.count]))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", w - right + 34, ly + 10, p))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
