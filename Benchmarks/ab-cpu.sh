#!/usr/bin/env bash
# Compares two exar-db binaries by the server's CPU time per event (user + system, from
# /proc/PID/stat) and events/s under exar-bench, alternating A and B on fresh data folders, so
# that both see the same machine (it is noisy: quote medians). docs/BENCHMARKS.md, "Publish
# path, second pass", was measured this way.
#   Benchmarks/ab-cpu.sh OLD_EXAR_DB NEW_EXAR_DB ROUNDS "C P N" ["C P N" ...]
#   e.g. Benchmarks/ab-cpu.sh /tmp/exar-db-old .build/release/exar-db 4 "50 16 1000000" "50 1 300000"
# A_DATABASE and B_DATABASE add lines to each side's [database] table, so one binary can be
# compared with two configurations (docs/BENCHMARKS.md, "Retention"):
#   A_DATABASE='segment_size = 8388608' B_DATABASE=$'segment_size = 8388608\nretention = { max_bytes = 33554432 }' \
#     Benchmarks/ab-cpu.sh .build/release/exar-db .build/release/exar-db 4 "50 16 1000000"
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: $0 OLD_EXAR_DB NEW_EXAR_DB ROUNDS \"C P N\" ..." >&2; exit 2; }
old=$1 new=$2 rounds=$3
shift 3
swift build -c release --product exar-bench >/dev/null
bench=.build/release/exar-bench
ticks=$(getconf CLK_TCK)

. Benchmarks/start-server.sh

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One run: "events/s p99 us/event".
run() {
    local binary=$1 connections=$2 pipeline=$3 events=$4 extra=$5 pid port folder before after rate
    read -r pid port folder < <(start_server "$binary" "$extra")
    before=$(cpu "$pid")
    rate=$("$bench" publish -c "$connections" -p "$pipeline" -n "$events" --port "$port" --json |
        grep -o '"events_per_second":[0-9.]*' | cut -d: -f2)
    after=$(cpu "$pid")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$folder"
    awk -v r="$rate" -v b="$before" -v a="$after" -v n="$events" -v t="$ticks" \
        'BEGIN { printf "%.0f/s  %.2f us/event", r, (a - b) / t * 1e6 / n }'
}

for _ in $(seq "$rounds"); do
    for load in "$@"; do
        read -r connections pipeline events <<< "$load"
        echo "$connections x $pipeline ($events):  A $(run "$old" "$connections" "$pipeline" "$events" "${A_DATABASE:-}")   B $(run "$new" "$connections" "$pipeline" "$events" "${B_DATABASE:-}")"
    done
done
