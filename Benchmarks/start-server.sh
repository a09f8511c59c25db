# Sourced by the A/B scripts. start_server BINARY: starts exar-db on a fresh data folder with
# port 0 (it picks a free port and logs it) and prints "PID PORT FOLDER".
start_server() {
    local binary=$1 folder port="" pid
    folder=$(mktemp -d)
    printf 'log4rs_path = "%s/none.toml"\n[database]\nlogs_path = "%s/data"\n[server]\nport = 0\n' \
        "$folder" "$folder" > "$folder/exar-db.toml"
    "$binary" --config="$folder/exar-db.toml" > "$folder/out.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        port=$(grep -o 'exar-db listening on .*:[0-9]*' "$folder/out.log" | grep -o '[0-9]*$' || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "exar-db did not start: $(cat "$folder/out.log")" >&2; return 1; }
    echo "$pid $port $folder"
}
