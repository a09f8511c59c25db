#!/usr/bin/env bash
# Opens N collections (one event each) on a fresh exar-db and prints threads, descriptors, RSS
# and disk use: Benchmarks/many-collections.sh [EXAR_DB] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. Benchmarks/start-server.sh
bin=${1:-.build/release/exar-db}
read -r pid port dir < <(start_server "$bin")
python3 Benchmarks/many-collections.py "$port" "$pid" "$dir/data" "${2:-300}" || true
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$dir"
