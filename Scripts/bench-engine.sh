#!/usr/bin/env bash
# The engine under load, through `switchyard replay` (timed request traces):
#  A. time to first token of a request that arrives while 3 others decode, against the same request alone;
#     single process and 1 head + 1 worker under mpiexec;
#  B. a conversation's second turn with and without prefix reuse (time to first token, tokens prefilled).
# Usage: Scripts/bench-engine.sh [MODEL.gguf] [REPEATS]   (default: bench-1gb Q8_0 synthesized in /tmp)
# Prints medians over REPEATS runs (default 3) as Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
MODEL=${1:-/tmp/bench-1gb-q8_0.gguf}
REPEATS=${2:-3}
[ -f "$MODEL" ] || "$B" synth --preset bench-1gb --type q8_0 --out "$MODEL" >/dev/null
EXPERTS=$("$B" inspect -m "$MODEL" | sed -n 's/^step35.expert_count = //p')
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf "experts: %s\nheads: 1\nworkers: 1\nthreads: 1\n" "$EXPERTS" > "$T/1h1w.yaml"
python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
def prompt(seed, n): return [(i * 37 + seed * 101) % 4000 + 10 for i in range(n)]
busy = [{"prompt": prompt(s, 32), "max_tokens": 48, "ignore_eos": True} for s in range(3)]
late = {"prompt": prompt(9, 32), "max_tokens": 4, "ignore_eos": True}
with open(f"{t}/busy.jsonl", "w") as f:
    for r in busy: f.write(json.dumps(r) + "\n")
    f.write(json.dumps(dict(late, at_ms=800)) + "\n")
with open(f"{t}/idle.jsonl", "w") as f: f.write(json.dumps(late) + "\n")
with open(f"{t}/conv.jsonl", "w") as f:
    f.write(json.dumps({"prompt": prompt(5, 512), "max_tokens": 32, "ignore_eos": True}) + "\n")
    f.write(json.dumps({"prompt": prompt(6, 32), "max_tokens": 8, "ignore_eos": True, "continues": 0}) + "\n")
EOF
# run NAME TRACE INDEX ARGS...: REPEATS runs; appends "name ttft queue prefilled" per run to $T/runs
run() {
    local name=$1 trace=$2 index=$3; shift 3
    for _ in $(seq "$REPEATS"); do
        "$@" --requests "$trace" 2>/dev/null | python3 -c "
import json, sys
for l in sys.stdin:
    if not l.startswith('{'): continue
    d = json.loads(l)
    if d.get('finish') and d['index'] == $index:
        print('$name', d['ttft_s'], d['queue_s'], d['prompt_tokens'] - d['cached_tokens'], d['prompt_tokens'])
" >> "$T/runs"
    done
}
S=("$B" replay -m "$MODEL" -t 2 -np 4)
C=(mpiexec -n 2 "$B" replay -m "$MODEL" -np 4 --topology "$T/1h1w.yaml")
run "single, alone" "$T/idle.jsonl" 0 "${S[@]}"
run "single, 3 decoding" "$T/busy.jsonl" 3 "${S[@]}"
run "1h+1w, alone" "$T/idle.jsonl" 0 "${C[@]}"
run "1h+1w, 3 decoding" "$T/busy.jsonl" 3 "${C[@]}"
run "turn 2, prefix reuse" "$T/conv.jsonl" 1 "${S[@]}"
run "turn 2, no reuse" "$T/conv.jsonl" 1 "${S[@]}" --no-prefix-cache
echo "model: $MODEL ($EXPERTS experts), host: $(nproc) cores, $REPEATS runs each, medians"
python3 - "$T/runs" <<'EOF'
import sys, statistics
rows = {}
for l in open(sys.argv[1]):
    *name, ttft, queue, pre, prompt = l.split()
    rows.setdefault(" ".join(name), []).append((float(ttft), float(queue), int(pre), int(prompt)))
print("| case | time to first token, ms | queued, ms | prompt tokens | prefilled |")
print("|---|---|---|---|---|")
for name, rs in rows.items():
    print(f"| {name} | {statistics.median(r[0] for r in rs) * 1e3:.1f} | {statistics.median(r[1] for r in rs) * 1e3:.1f} "
          f"| {rs[0][3]} | {statistics.median(r[2] for r in rs):.0f} |")
EOF
