#!/usr/bin/env bash
# The test suite under a sanitizer: `swift test --sanitize=address` or `--sanitize=thread`, in its own scratch
# path (.build-asan, .build-tsan), multi-rank tests included (the jobs they start run the sanitized
# switchyard next to the test bundle). Every process writes its reports to files (log_path), so a rank's
# report cannot be lost with its stderr; the summary counts them by kind and first frame of ours.
# Usage: Scripts/sanitize.sh address|thread [swift test --filter REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: Scripts/sanitize.sh address|thread [FILTER]}
case $kind in address) short=asan ;; thread) short=tsan ;; *) echo "sanitize.sh: address or thread, not '$kind'" >&2; exit 2 ;; esac
scratch=.build-$short
reports=$PWD/$scratch/reports
rm -rf "$reports"
mkdir -p "$reports"
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" 2>&1 | grep -E "error|Compiling|Build" | tail -3
# UCX (through MPICH) patches mmap and malloc at load time, which the sanitizers' interceptors do not survive.
export UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_MALLOC_HOOKS=no
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$PWD/Tests/Fuzz/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1"
set +e
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" ${2:+--filter "$2"} > "$scratch/test.log" 2>&1
rc=$?
set -e
grep -E "Test run with|✘ Test .* failed" "$scratch/test.log" | tail -15
n=$(ls "$reports" | wc -l)
echo "sanitize $kind: swift test exit $rc; $n report file(s) in $reports"
if [ "$n" -gt 0 ]; then
    # Kind of report, then the first stack frame in Sources/ or Tests/ (ours), counted.
    for f in "$reports"/*; do
        k=$(grep -m1 -oE "(ERROR: AddressSanitizer: [a-z-]+|ERROR: LeakSanitizer: [a-z ]+|WARNING: ThreadSanitizer: [a-z -]+)" "$f" || echo "other")
        at=$(grep -m1 -oE "$PWD/(Sources|Tests)/[^ ]+" "$f" | sed "s|$PWD/||" || echo "no frame of ours")
        echo "$k at $at"
    done | sort | uniq -c | sort -rn | head -30
    # A rank traced by its witness (SwiftMPI/Witness.swift) cannot be suspended by LeakSanitizer, so what only
    # its main thread's stack holds is reported as leaked (Docs/RELIABILITY.md, "Sanitizers").
    traced=$(grep -l "was not suspended. False leaks are possible" "$reports"/* 2>/dev/null | wc -l)
    [ "$traced" -eq 0 ] || echo "sanitize $kind: $traced file(s) say a thread could not be suspended (a rank traced by its witness): false leaks possible there"
fi
exit $rc
