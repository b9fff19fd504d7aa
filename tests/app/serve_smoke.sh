#!/usr/bin/env bash
# End to end: `errand serve` on an ephemeral port answers /healthz and /readyz,
# and exits 0 after a graceful drain on SIGTERM.
set -euo pipefail
errand="$1"
dir=$(mktemp -d)
pid=""
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/serve_lib.sh"

# Store and queues come from a config file; the listen address from a flag.
cat >"$dir/errand.toml" <<TOML
[serve]
db = "$dir/data/errand.db"
queues = "default=2,mail=1"
TOML
start_errand "$errand" "$dir" --threads 2 --config "$dir/errand.toml"

get() {  # GET $1, print the status line and body
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: smoke\r\nConnection: close\r\n\r\n' "$1" >&3
  timeout 10 cat <&3
  exec 3<&-
}

health=$(get /healthz)
echo "$health" | head -1 | grep -q "200 OK" || { echo "healthz: $health"; exit 1; }
echo "$health" | grep -q '{"status":"ok"}' || { echo "healthz body: $health"; exit 1; }
ready=$(get /readyz)
echo "$ready" | head -1 | grep -q "200 OK" || { echo "readyz: $ready"; exit 1; }
missing=$(get /missing)
echo "$missing" | grep -q '"code":"not_found"' || { echo "404: $missing"; exit 1; }

[ -f "$dir/data/errand.db" ] || { echo "no SQLite store at --db"; exit 1; }
grep -q '"msg":"task runtime started".*"queues":2' "$dir/log" || { echo "no task runtime"; cat "$dir/log"; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "exit status $status"; cat "$dir/log"; exit 1; }
grep -q '"msg":"stopped"' "$dir/log" || { echo "no stopped line"; cat "$dir/log"; exit 1; }
grep -q '"msg":"task runtime stopped"' "$dir/log" || { echo "runtime not stopped"; exit 1; }
grep -q '"msg":"request".*"path":"/healthz"' "$dir/log" || { echo "no access log"; exit 1; }
echo "serve smoke: ok (port $port)"
