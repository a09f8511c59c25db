#!/usr/bin/env bash
# Compares two exar-db binaries under `exar-bench group` (a consumer group of 4 against one plain
# live subscription, 1M events, 3 rounds each), alternating A and B on fresh data folders.
#   Benchmarks/ab-group.sh OLD_EXAR_DB NEW_EXAR_DB [RUNS]
# Needs .build/release/exar-bench (swift build -c release --product exar-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
. Benchmarks/start-server.sh
run() {
    local bin=$1 label=$2 pid port dir out
    read -r pid port dir < <(start_server "$bin")
    out=$(.build/release/exar-bench group --port "$port" -n 1000000 --rounds 3 2>&1 | grep -E "median|ratio" | tr -s ' ' | tr '\n' ' ')
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir" || true
    echo "$label $out"
}
for _ in $(seq "${3:-5}"); do run "$1" A; run "$2" B; done
