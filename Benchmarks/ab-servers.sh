#!/usr/bin/env bash
# Compares two exar-db binaries under the C load driver, alternating A and B on fresh data
# folders (the machine is noisy: compare within one run, quote medians).
#   Benchmarks/ab-servers.sh OLD_EXAR_DB NEW_EXAR_DB [ROUNDS]
# Each round: 50 connections x 16 in flight (1M events), 1 x 16 (200k), 50 x 1 (200k).
set -euo pipefail
cd "$(dirname "$0")/.."
loadgen=.build/exar-load
cc -O2 -o "$loadgen" Benchmarks/loadgen/exar-load.c -lpthread
. Benchmarks/start-server.sh
run() {
    local bin=$1 label=$2 dir port pid
    read -r pid port dir < <(start_server "$bin")
    rate() { "$loadgen" 127.0.0.1 "$port" "$@" 100 | grep -o 'events_per_second=[0-9]*' | cut -d= -f2; }
    local a b c
    a=$(rate 50 16 20000); b=$(rate 1 16 200000); c=$(rate 50 1 4000)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    echo "$label  50x16: $a   1x16: $b   50x1: $c"
}
for _ in $(seq "${3:-3}"); do run "$1" A; run "$2" B; done
