#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time, starting from the committed seed corpus and
# findings (copied: the committed files are never changed). Exits non-zero on a finding, which is
# left in .fuzz-findings/ with the command to replay it.
#   scripts/fuzz.sh [seconds per target]   (make fuzz builds the targets first)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bin=.build-fuzz/debug
findings=.fuzz-findings
mkdir -p "$findings"
# The Swift backtracer and ASan's reports get in each other's way: let ASan report.
export SWIFT_BACKTRACE=enable=no
status=0
for target in protocol segment; do
    work=$(mktemp -d)
    cp Fuzz/corpus/"$target"/* "$work"/
    if [ -d Fuzz/regressions/"$target" ] && [ -n "$(ls -A Fuzz/regressions/"$target")" ]; then
        cp Fuzz/regressions/"$target"/* "$work"/
    fi
    echo "== fuzzing $target for ${seconds}s"
    if ! "$bin/exar-fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$findings/$target-" -print_final_stats=1 "$work" 2>"$findings/$target.log"; then
        status=1
        echo "!! $target: finding (log: $findings/$target.log):"
        # The report from its first line (the trap's message and stack), then each finding as
        # base64 so a CI log alone is enough to reproduce it.
        sed -n '/ERROR\|Fatal error/,/SUMMARY/p' "$findings/$target.log" | head -60 || true
        for artifact in "$findings"/"$target"-*; do
            [ -f "$artifact" ] || continue
            echo "   replay: $bin/exar-fuzz-$target $artifact"
            echo "   input (base64, $(stat -c %s "$artifact") bytes):"
            base64 -w 100 "$artifact" | head -60 | sed "s|^|     |"
        done
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$findings/$target.log" | sed "s|^|   $target |" || true
    rm -rf "$work"
done
exit $status
