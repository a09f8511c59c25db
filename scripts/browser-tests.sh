#!/usr/bin/env bash
# The browser and metrics tests (Tests/browser/): starts the real exar-db (the debug build the
# Swift tests just made) on free loopback ports with a fresh data folder, drives the console in
# headless Chromium (Selenium) and parses /metrics with prometheus-client, once without and
# once with credentials; then stops it with SIGTERM and checks it exits 0.
#   scripts/browser-tests.sh [--screenshots docs/images]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-browser.sh
binary="$(swift build --show-bin-path)/exar-db"
[ -x "$binary" ] || swift build --product exar-db
screenshots=()
[ "${1:-}" = "--screenshots" ] && screenshots=(--screenshots "$2")

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

folder=$(mktemp -d)
pid=""
stop() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap 'stop; rm -rf "$folder"' EXIT

# start_server [username password]: exar-db on fresh ports; sets pid, port, http_port.
start_server() {
    port=$(free_port)
    http_port=$(free_port)
    rm -rf "$folder/data"
    {
        printf 'log4rs_path = "%s/none.toml"\n[database]\nlogs_path = "%s/data"\n' "$folder" "$folder"
        # One delivery per event: what a member leaves unacknowledged is parked at once (the
        # console's groups check).
        printf 'groups = { ack_wait_in_ms = 3600000, max_deliver = 1 }\n'
        printf '[server]\nport = %s\n' "$port"
        [ $# -eq 2 ] && printf 'username = "%s"\npassword = "%s"\n' "$1" "$2"
        printf '[http]\nport = %s\n' "$http_port"
    } > "$folder/exar-db.toml"
    "$binary" --config="$folder/exar-db.toml" > "$folder/exar-db.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        grep -q "console: http" "$folder/exar-db.log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "browser tests: exar-db did not start:" >&2
    cat "$folder/exar-db.log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$pid"
    local status=0
    wait "$pid" || status=$?
    pid=""
    [ "$status" -eq 0 ] || { echo "browser tests: exar-db exited $status after SIGTERM" >&2; cat "$folder/exar-db.log" >&2; exit 1; }
}

start_server
python3 Tests/browser/console_test.py --url "http://127.0.0.1:$http_port" --port "$port" "${screenshots[@]}"
python3 Tests/browser/metrics_test.py --url "http://127.0.0.1:$http_port" --port "$port"
stop_server

start_server admin s3cret
EXAR_USERNAME=admin EXAR_PASSWORD=s3cret \
    python3 Tests/browser/metrics_test.py --url "http://127.0.0.1:$http_port" --port "$port"
# Without the credentials every route is refused.
status=$(python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1]); print(200)
except urllib.error.HTTPError as error:
    print(error.code)' "http://127.0.0.1:$http_port/metrics")
[ "$status" = 401 ] || { echo "browser tests: /metrics without credentials answered $status, not 401" >&2; exit 1; }
echo "browser tests: /metrics refused without credentials"
stop_server
