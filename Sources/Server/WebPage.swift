// The web UI at `/`: one static page compiled into the binary (no CDN, no build step). It chats through
// `/v1/chat/completions` with streaming (reasoning in a collapsible block, tool calls as cards, per-message
// time to first token, tokens/s and MTP acceptance from llama-server's `timings`), and draws the cluster
// panel from `GET /cluster` every 1.5 s: ranks, each worker's share of rows, the scheduler, and a heat map
// of routed tokens per MoE layer (rows) and expert (columns), each cell's colour its count over the layer's
// mean, with a strip in the owning worker's colour under a topology.
//
// `window.switchyardUI` exposes the message renderer so the browser test can check tool-call rendering,
// which a model with random weights never produces on its own.
import Hummingbird

enum WebPage {
    /// `GET /`.
    static func response() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                 body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard</title>
<style>
:root { --bg:#f6f7f9; --fg:#1d2330; --mute:#6b7385; --line:#d9dde5; --card:#fff; --accent:#2f6fde; --think:#f1eee4; --tool:#e9f3ec; }
@media (prefers-color-scheme: dark) { :root { --bg:#15181e; --fg:#e3e6ec; --mute:#8a92a3; --line:#2c323d; --card:#1d2129; --accent:#6d9cf0; --think:#2a271f; --tool:#1f2b23; } }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; background:var(--bg); color:var(--fg); height:100vh; display:flex; flex-direction:column; }
header { display:flex; gap:12px; align-items:center; padding:8px 14px; border-bottom:1px solid var(--line); background:var(--card); }
header h1 { font-size:16px; margin:0; } #model { color:var(--mute); } #health { margin-left:auto; color:var(--mute); }
main { flex:1; display:flex; min-height:0; }
#chat { flex:1.4; display:flex; flex-direction:column; min-width:0; border-right:1px solid var(--line); }
#messages { flex:1; overflow-y:auto; padding:14px; }
.msg { max-width:90%; margin:0 0 12px; padding:8px 11px; border-radius:8px; background:var(--card); border:1px solid var(--line); }
.msg.user { margin-left:auto; background:var(--accent); color:#fff; border:none; white-space:pre-wrap; }
.content { white-space:pre-wrap; word-wrap:break-word; }
details.reasoning { background:var(--think); border-radius:6px; padding:4px 8px; margin-bottom:6px; }
details.reasoning summary { cursor:pointer; color:var(--mute); }
.reasoning-text { white-space:pre-wrap; font-size:13px; color:var(--mute); }
.tool-call { background:var(--tool); border-radius:6px; padding:6px 8px; margin-top:6px; font:12px ui-monospace, monospace; white-space:pre-wrap; }
.tool-call b { font-family:system-ui, sans-serif; }
.stats { margin-top:6px; font-size:12px; color:var(--mute); }
.error { color:#d33; }
#composer { display:flex; gap:8px; padding:10px; border-top:1px solid var(--line); background:var(--card); }
#prompt { flex:1; resize:vertical; min-height:44px; font:inherit; padding:8px; border:1px solid var(--line); border-radius:6px; background:var(--bg); color:var(--fg); }
button { font:inherit; padding:6px 14px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:transparent; color:var(--accent); }
button:disabled { opacity:.5; cursor:default; }
#settings { padding:6px 14px; border-bottom:1px solid var(--line); font-size:13px; }
#settings label { display:inline-block; margin:4px 12px 4px 0; } #settings input { width:7em; }
#settings textarea { width:100%; font:12px ui-monospace, monospace; }
#cluster { flex:1; overflow-y:auto; padding:12px 14px; min-width:300px; }
#cluster h2 { font-size:14px; margin:14px 0 6px; } #cluster h2:first-child { margin-top:0; }
table { border-collapse:collapse; width:100%; font-size:12px; } td, th { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); }
.bar { height:8px; background:var(--line); border-radius:4px; overflow:hidden; min-width:60px; } .bar > div { height:100%; }
#heatmap { width:100%; image-rendering:pixelated; border:1px solid var(--line); }
.legend { font-size:11px; color:var(--mute); }
</style></head>
<body>
<header><h1>Switchyard</h1><span id="model">…</span><span id="health">connecting…</span></header>
<details id="settings"><summary>Settings</summary>
  <label>API key <input id="apikey" type="password" style="width:12em"></label>
  <label>Max tokens <input id="maxtokens" type="number" value="256" min="1"></label>
  <label>Temperature <input id="temperature" type="number" value="0.7" step="0.1" min="0"></label>
  <label>System prompt <input id="system" style="width:22em" placeholder="(none)"></label>
  <div><label for="tools">Tools (JSON list in OpenAI's form, optional)</label><textarea id="tools" rows="3" placeholder='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]'></textarea></div>
</details>
<main>
<section id="chat">
  <div id="messages"></div>
  <div id="composer"><textarea id="prompt" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
    <button id="send">Send</button><button id="stop" class="secondary" disabled>Stop</button><button id="clear" class="secondary">New chat</button></div>
</section>
<aside id="cluster">
  <h2>Ranks</h2><table id="ranks"><thead><tr><th>rank</th><th>role</th><th>threads</th><th>lanes</th></tr></thead><tbody></tbody></table>
  <h2>Workers</h2><table id="workers"><thead><tr><th>worker</th><th>rows</th><th>share</th><th>compute s</th></tr></thead><tbody></tbody></table>
  <div id="noworkers" class="legend"></div>
  <h2>Scheduler</h2><div id="sched" class="legend">…</div>
  <h2>Served</h2><div id="served" class="legend">…</div>
  <h2>Expert load per MoE layer</h2>
  <canvas id="heatmap" width="600" height="200"></canvas>
  <div id="heatlegend" class="legend">rows: MoE layers (numbered), columns: experts; colour: tokens routed over the layer's mean (white 0, blue 1x, red 2x+)</div>
</aside>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const palette = ["#e4572e", "#29335c", "#f3a712", "#669bbc", "#a8c686", "#8c4f9f", "#17becf", "#7f7f7f"];
const history = [];
let controller = null;
for (const k of ["apikey", "maxtokens", "temperature", "system", "tools"]) {
  const v = localStorage.getItem("switchyard." + k); if (v !== null) $(k).value = v;
  $(k).addEventListener("change", () => localStorage.setItem("switchyard." + k, $(k).value));
}
function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("apikey").value) h["Authorization"] = "Bearer " + $("apikey").value;
  return h;
}
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function scrollDown() { const m = $("messages"); m.scrollTop = m.scrollHeight; }

// One assistant message: reasoning block, content, tool-call cards, stats line.
function newAssistant() {
  const node = el("div", "msg assistant");
  const details = el("details", "reasoning"); details.open = true; details.hidden = true;
  details.append(el("summary", null, "Reasoning"));
  const reasoning = el("div", "reasoning-text"); details.append(reasoning);
  const content = el("div", "content"), calls = el("div", "calls"), stats = el("div", "stats", "waiting for the first token…");
  node.append(details, content, calls, stats);
  $("messages").append(node); scrollDown();
  return { node, details, reasoning, content, calls, stats, text: "", thinking: "", toolCalls: [], started: performance.now(), first: null, tokens: 0 };
}
function renderCall(m, i) {
  const c = m.toolCalls[i];
  let args = c.arguments;
  try { args = JSON.stringify(JSON.parse(c.arguments), null, 2); } catch (e) {}
  if (!c.node) { c.node = el("div", "tool-call"); m.calls.append(c.node); }
  c.node.replaceChildren(el("b", null, "tool call: " + c.name), document.createTextNode("\n" + args));
}
// Applies one chat.completion.chunk delta to message m.
function applyDelta(m, d) {
  if (m.first === null && (d.content || d.reasoning_content || d.tool_calls)) m.first = performance.now();
  // How many deltas were rendered as they came (the browser test reads it: a streamed reply shows in steps).
  if (d.content || d.reasoning_content || d.tool_calls) m.node.dataset.updates = String(Number(m.node.dataset.updates || 0) + 1);
  if (d.reasoning_content) { m.thinking += d.reasoning_content; m.reasoning.textContent = m.thinking; m.details.hidden = false; }
  if (d.content) {
    if (m.details.open && m.thinking) m.details.open = false;
    m.text += d.content; m.content.textContent = m.text;
  }
  for (const t of d.tool_calls || []) {
    const i = t.index || 0;
    if (!m.toolCalls[i]) m.toolCalls[i] = { id: t.id, name: "", arguments: "" };
    if (t.id) m.toolCalls[i].id = t.id;
    if (t.function && t.function.name) m.toolCalls[i].name += t.function.name;
    if (t.function && t.function.arguments) m.toolCalls[i].arguments += t.function.arguments;
    renderCall(m, i);
  }
  scrollDown();
}
// The stats line once the stream ends: client-side time to first token, decode rate and MTP acceptance.
function finishMessage(m, timings, usage) {
  const parts = [];
  if (m.first !== null) parts.push("TTFT " + Math.round(m.first - m.started) + " ms");
  if (timings) {
    parts.push(timings.predicted_per_second.toFixed(1) + " tok/s");
    parts.push(timings.predicted_n + " tokens");
    if (timings.cache_n > 0) parts.push(timings.cache_n + " prompt tokens cached");
    parts.push(timings.draft_n > 0 ? "MTP " + timings.draft_n_accepted + "/" + timings.draft_n + " accepted (" + Math.round(100 * timings.draft_n_accepted / timings.draft_n) + "%)" : "MTP off");
  } else if (usage) parts.push(usage.completion_tokens + " tokens");
  m.stats.textContent = parts.join(" · ");
  m.stats.dataset.done = "1";
  if (m.details.open && m.thinking && (m.text || m.toolCalls.length)) m.details.open = false;
}
window.switchyardUI = { newAssistant, applyDelta, finishMessage };

async function send() {
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  history.push({ role: "user", content: text });
  $("messages").append(el("div", "msg user", text)); scrollDown();
  const m = newAssistant();
  const body = { messages: ($("system").value ? [{ role: "system", content: $("system").value }] : []).concat(history),
                 stream: true, stream_options: { include_usage: true },
                 max_tokens: parseInt($("maxtokens").value) || 256, temperature: parseFloat($("temperature").value) || 0 };
  if ($("tools").value.trim()) {
    try { body.tools = JSON.parse($("tools").value); } catch (e) { m.stats.textContent = "tools: not JSON (" + e.message + ")"; m.stats.className = "stats error"; return; }
  }
  controller = new AbortController(); $("send").disabled = true; $("stop").disabled = false;
  let timings = null, usage = null;
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!r.ok) { const e = await r.json().catch(() => ({})); throw new Error(r.status + ": " + ((e.error && e.error.message) || r.statusText)); }
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const data = ev.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data || data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.timings) timings = j.timings;
        if (j.usage) usage = j.usage;
        for (const c of j.choices || []) applyDelta(m, c.delta || {});
      }
    }
    finishMessage(m, timings, usage);
  } catch (e) {
    m.stats.textContent = e.name === "AbortError" ? "stopped" : "error: " + e.message;
    if (e.name !== "AbortError") m.stats.className = "stats error";
  } finally {
    const msg = { role: "assistant", content: m.text };
    if (m.thinking) msg.reasoning_content = m.thinking;
    if (m.toolCalls.length) msg.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    history.push(msg);
    controller = null; $("send").disabled = false; $("stop").disabled = true;
  }
}
$("send").onclick = send;
$("stop").onclick = () => controller && controller.abort();
$("clear").onclick = () => { history.length = 0; $("messages").replaceChildren(); };
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });

function cell(row, texts) { const tr = el("tr"); for (const t of texts) tr.append(t instanceof Node ? (() => { const td = el("td"); td.append(t); return td; })() : el("td", null, String(t))); row.append(tr); }
function mib(b) { return (b / 1048576).toFixed(1) + " MiB"; }
function drawHeat(x) {
  const cv = $("heatmap"), g = cv.getContext("2d");
  if (!x) { $("heatlegend").textContent = "routing counts are off"; return; }
  const L = x.layers.length, E = x.experts, left = 28, cw = Math.max(1, Math.floor(600 / E)), ch = Math.max(4, Math.min(24, Math.floor(360 / Math.max(L, 1)))), strip = x.owners ? 3 : 0;
  cv.width = left + cw * E; cv.height = (ch + strip) * L;
  // Layer numbers on the left (every layer when rows are tall enough, else every fifth).
  g.fillStyle = getComputedStyle(document.body).color; g.font = "10px sans-serif"; g.textBaseline = "middle";
  for (let l = 0; l < L; l++) if (ch + strip >= 10 || l % 5 === 0) g.fillText(String(x.layers[l]), 2, l * (ch + strip) + ch / 2);
  let max = 0;
  for (let l = 0; l < L; l++) {
    const row = x.counts[l], mean = row.reduce((a, b) => a + b, 0) / E;
    for (let e = 0; e < E; e++) {
      const r = mean > 0 ? row[e] / mean : 0; max = Math.max(max, row[e]);
      const t = Math.min(r, 2);
      const [R, G, B] = t <= 1 ? [255 - 208 * t, 255 - 144 * t, 255 - 33 * t] : [47 + 181 * (t - 1), 111 - 61 * (t - 1), 222 - 172 * (t - 1)];
      g.fillStyle = "rgb(" + (R | 0) + "," + (G | 0) + "," + (B | 0) + ")";
      g.fillRect(left + e * cw, l * (ch + strip), cw, ch);
      if (strip) { g.fillStyle = palette[(x.owners[l][e] + palette.length) % palette.length]; g.fillRect(left + e * cw, l * (ch + strip) + ch, cw, strip); }
    }
  }
  $("heatlegend").textContent = "rows: MoE layers (numbered), columns: experts; colour: tokens routed over the layer's mean (white 0, blue 1x, red 2x+)" +
    (strip ? "; strip under each cell: the worker holding the expert (colours as in Workers)" : "");
  cv.dataset.max = String(max); cv.dataset.layers = String(L); cv.dataset.experts = String(E);
  cv.onmousemove = (ev) => {
    const b = cv.getBoundingClientRect(), e = Math.floor(((ev.clientX - b.left) * cv.width / b.width - left) / cw), l = Math.floor((ev.clientY - b.top) / b.height * L);
    if (l >= 0 && l < L && e >= 0 && e < E) cv.title = "layer " + x.layers[l] + ", expert " + e + ": " + x.counts[l][e] + " tokens" + (x.owners ? ", worker " + x.owners[l][e] : "");
  };
}
async function refresh() {
  try {
    const r = await fetch("/cluster", { headers: headers() });
    if (!r.ok) throw new Error(r.status === 401 ? "API key needed (Settings)" : "HTTP " + r.status);
    const c = await r.json();
    $("model").textContent = c.model; $("health").textContent = "live"; $("health").style.color = "";
    const rb = $("ranks").tBodies[0]; rb.replaceChildren();
    for (const k of c.ranks) cell(rb, [k.rank, k.role, k.threads, k.lanes]);
    const wb = $("workers").tBodies[0]; wb.replaceChildren();
    for (const w of c.workers) {
      const bar = el("div", "bar"), fill = el("div"); fill.style.width = (100 * w.share).toFixed(1) + "%"; fill.style.background = palette[w.worker % palette.length]; bar.append(fill);
      cell(wb, [w.worker + " (rank " + w.rank + ")", w.rows, bar, w.compute_seconds.toFixed(2)]);
    }
    $("noworkers").textContent = c.workers.length ? "" : "experts run in this process";
    const s = c.scheduler, kv = Math.max(...s.kv_used_bytes, 0);
    $("sched").textContent = s.running + " running, " + s.queued + " queued, " + s.slots_per_lane + " slots per lane; KV " + mib(kv) + " of " + mib(s.kv_budget_bytes) +
      " per head (" + (100 * kv / Math.max(s.kv_budget_bytes, 1)).toFixed(1) + "%), " + s.cached_sequences + " cached sequences";
    const v = c.served, d = v.mtp.drafted, a = v.mtp.accepted;
    $("served").textContent = v.requests + (v.requests === 1 ? " request, " : " requests, ") + v.prompt_tokens + " prompt and " + v.completion_tokens + " generated tokens; MTP " +
      (d.length ? d.map((n, k) => "position " + (k + 1) + ": " + a[k] + "/" + n).join(", ") : "off");
    drawHeat(c.expert_load);
    $("cluster").dataset.updated = String(Date.now());
  } catch (e) { $("health").textContent = "unreachable: " + e.message; $("health").style.color = "#d33"; }
}
refresh(); setInterval(refresh, 1500);
</script>
</body></html>
"""#
}
