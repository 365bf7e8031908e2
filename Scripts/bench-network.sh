#!/usr/bin/env bash
# The network figures of Docs/CLUSTER.md, in one run:
#   1. one MoE layer's exchange (counts + dispatch + combine, no compute; `switchyard bench-exchange`) at Step 3.5
#      Flash's width (4096, top-8) over shared memory on one host and over the testbed's TCP between hosts,
#      for 1 head + 1 worker and 1 head + 2 workers, with the latency (alpha) and bandwidth (beta) fitted;
#   2. decode on 1 head + 2 workers, one host against the testbed, with the per-layer dispatch and combine times;
#   3. `switchyard cost` for Step 3.5 Flash at EP8 on DDR5 nodes over 10, 25 and 100 GbE, fed with the testbed's
#      measured alpha, and beta = the link, or the link capped at the testbed's measured TCP beta.
# Usage (root; brings a 3-host testbed up if none is, and down again after):
#   bash Scripts/bench-network.sh [MODEL.gguf EXPERTS]
# Default model: models/b1g-q8_0.gguf (synthesized if missing: 8 layers, hidden 2048, 32 experts, top-8).
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
MODEL=${1:-models/b1g-q8_0.gguf}
EXPERTS=${2:-32}
if [ ! -f "$MODEL" ] && [ "$MODEL" = models/b1g-q8_0.gguf ]; then
    mkdir -p models && "$B" synth --preset bench-1gb --type q8_0 --out "$MODEL" >/dev/null
fi
MODEL=$(realpath "$MODEL")
TB="bash Scripts/testbed/testbed.sh"
UP=0
if ! $TB status >/dev/null 2>&1; then $TB up 3 >/dev/null; UP=1; fi
T=$(mktemp -d)
trap '[ $UP = 1 ] && $TB down >/dev/null 2>&1; rm -rf "$T"' EXIT
for w in 1 2; do printf "experts: %s\nheads: 1\nworkers: %s\nthreads: 1\n" "$EXPERTS" "$w" > "$T/w$w.yaml"; done
testbed() { $TB exec 0 "$B" launch --run --cluster Cluster/testbed.yaml --topology "$1" -- "${@:2}"; }

echo "host: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ); MPICH $(mpichversion 2>/dev/null | sed -n 's/^MPICH Version: *//p')"
echo "model for the jobs: $MODEL ($EXPERTS experts); the exchange rows are 4096 wide, top-8 (Step 3.5 Flash), dispatch f32"
for w in 1 2; do
    echo; echo "## exchange, 1 head + $w worker(s), shared memory (one host, mpiexec -n $((w + 1)))"
    mpiexec -n $((w + 1)) "$B" bench-exchange -m "$MODEL" --topology "$T/w$w.yaml" --json "$T/shm$w.json" 2>&1 | grep -v "^exchange:"
    echo; echo "## exchange, 1 head + $w worker(s), testbed TCP (syhost0 + syhost1..$w)"
    testbed "$T/w$w.yaml" bench-exchange -m "$MODEL" --json "$T/tcp$w.json" 2>&1 | grep -v "^exchange:"
done

GEN=(generate -m "$MODEL" -p "def parse(path):" -n 64 --ignore-eos --verbose)
echo; echo "## decode, 64 tokens, 3 runs each"
for i in 1 2 3; do
    echo "single process, 1 thread:"; "$B" "${GEN[@]}" -t 1 2>&1 >/dev/null | grep -E "^decode" | sed 's/^/    /'
    echo "1 head + 2 workers, one host:"; mpiexec -n 3 "$B" "${GEN[@]}" --topology "$T/w2.yaml" 2>&1 >/dev/null | grep -E "^(decode|exchange)" | sed 's/^/    /'
    echo "1 head + 2 workers, testbed:"; testbed "$T/w2.yaml" "${GEN[@]}" 2>&1 >/dev/null | grep -E "^(decode|exchange)" | sed 's/^/    /'
done

read -r ALPHA BETA < <(python3 -c "import json; d = json.load(open('$T/tcp2.json')); print(d['alphaSeconds'], d['betaBytesPerSecond'])")
echo; echo "## Step 3.5 Flash, EP8 on DDR5 nodes, 128K context, MTP-3, exchange not overlapped, f32 dispatch and combine (4 + 4 bytes per element)"
printf "measured on the testbed (1 head + 2 workers): alpha %.1f us per layer -> --network-latency %.1fus (two messages per layer); beta %.3f GB/s\n" \
    "$(python3 -c "print($ALPHA * 1e6)")" "$(python3 -c "print($ALPHA / 2 * 1e6)")" "$(python3 -c "print($BETA / 1e9)")"
LAT=$(python3 -c "print(f'{$ALPHA / 2 * 1e6:.1f}us')")
echo "every input of one row (10 GbE, --batch 1):"
"$B" cost --model step35-flash --hardware ddr5 --ep 8 --context 128K --mtp 3 --batch 1 --serial-exchange --network-latency "$LAT" \
    --network-bandwidth 10GbE --dispatch-bytes 4 --combine-bytes 4 | sed 's/^/    /'
echo "| link | beta used | scenario | batch per device | step ms | exchange ms | per user tok/s | \$ per 1M tokens |"
echo "|---|---|---|---|---|---|---|---|"
for link in 10 25 100; do
    wire=$(python3 -c "print($link * 1e9 / 8)"); capped=$(python3 -c "print(min($link * 1e9 / 8, $BETA))")
    betas=("$wire"); [ "$capped" = "$wire" ] || betas+=("$capped")
    for beta in "${betas[@]}"; do
        label=$([ "$beta" = "$wire" ] && echo "the link" || echo "min(link, testbed TCP)")
        for sc in "--batch 1" "--sla 10"; do
            out=$("$B" cost --model step35-flash --hardware ddr5 --ep 8 --context 128K --mtp 3 $sc --serial-exchange \
                --network-latency "$LAT" --network-bandwidth "$beta" --dispatch-bytes 4 --combine-bytes 4)
            python3 - "$link" "$label" "$beta" "$sc" <<EOF
import re, sys
t = """$out"""
link, label, beta, sc = sys.argv[1:]
seqs = re.search(r"sequences per device ([\d.]+)", t).group(1)
step = re.search(r"step ([\d.]+) ms \(.*exchange ([\d.]+)", t)
user = re.search(r"per user ([\d.]+) tok/s", t).group(1)
cost = re.search(r"cost \\\$([\d.]+) per 1M", t).group(1)
print(f"| {link} GbE | {label}: {float(beta) / 1e9:.3f} GB/s | {sc} | {seqs} | {step.group(1)} | {step.group(2)} | {user} | {cost} |")
EOF
        done
    done
done
