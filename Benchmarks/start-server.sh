# Sourced by the A/B scripts. start_server BINARY [DATABASE_LINES]: starts exar-db on a fresh data
# folder with port 0 (it picks a free port and logs it) and prints "PID PORT FOLDER";
# DATABASE_LINES (e.g. $'segment_size = 8388608\nretention = { max_bytes = 33554432 }') go into [database].
start_server() {
    local binary=$1 extra=${2:-} folder port="" pid
    folder=$(mktemp -d)
    printf 'log4rs_path = "%s/none.toml"\n[database]\nlogs_path = "%s/data"\n%s\n[server]\nport = 0\n' \
        "$folder" "$folder" "$extra" > "$folder/exar-db.toml"
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
