#!/usr/bin/env bash
# What tracing costs `errand serve` (release, SQLite on this disk, one I/O
# thread, log level warn) on its two hot paths, in one sitting:
#   GET /healthz (full middleware) and the durable enqueue (POST /v1/tasks,
#   demo.noop, queue paused so only enqueueing is measured),
# each with tracing off, on with every trace sampled (spans exported to a
# local OTLP/HTTP sink), and on with --trace-sample-ratio 0 (spans decided,
# none recorded). Runs alternate between the three; medians at the end, and
# the spans exported and dropped in each "on" run.
# Usage: bench/wrk/tracing.sh [runs=3] [duration=10s] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}; duration=${2:-10s}; conns=${3:-32}
scripts/bootstrap
cmake --preset release >/dev/null
cmake --build --preset release --target errand_cli >/dev/null
errand=build/release/apps/errand/errand

work=$(mktemp -d -p "$PWD/build")  # on the disk under test, not tmpfs
pid=""; sink=""
trap 'kill "$pid" "$sink" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The OTLP sink: answers every POST with 200 {} after reading it (a
# collector elsewhere would not share these two cores; this one does).
sink_port=$(free_port)
python3 - "$sink_port" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
sink=$!

serve() {  # MODE: off | on | unsampled. A fresh server on a fresh file; sets url
  rm -f "$work"/e.db*
  local port extra=()
  port=$(free_port)
  case "$1" in
    on) extra=(--otlp-endpoint "http://127.0.0.1:$sink_port") ;;
    unsampled) extra=(--otlp-endpoint "http://127.0.0.1:$sink_port" --trace-sample-ratio 0) ;;
  esac
  "$errand" serve --listen "127.0.0.1:$port" --db "$work/e.db" --threads 1 --queues default=4 \
    --log-level warn --blocking-threads 64 "${extra[@]}" 2>"$work/log" &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 400); do curl -sf "$url/healthz" >/dev/null && return; sleep 0.05; done
  echo "server did not start"; cat "$work/log"; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1==m {print $2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

modes=(off on unsampled)
for m in "${modes[@]}"; do : >"$work/get-$m"; : >"$work/post-$m"; done
echo "errand serve --threads 1; wrk: 2 threads, $conns connections, $duration x $runs; sink :$sink_port"
for i in $(seq 1 "$runs"); do
  for m in "${modes[@]}"; do
    serve "$m"
    out=$(wrk -t2 -c"$conns" -d"$duration" --latency "$url/healthz")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "$rps" >>"$work/get-$m"
    curl -s -X POST "$url/v1/queues/default/pause" >/dev/null
    out=$(wrk -t2 -c"$conns" -d"$duration" --latency -s bench/wrk/enqueue.lua "$url/v1/tasks")
    erps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    ep99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "$erps" >>"$work/post-$m"
    sleep 2  # the last batch goes out within the 1 s schedule delay
    spans=""
    if [ "$m" != off ]; then
      spans="  spans exported $(metric otel_spans_exported_total), dropped:"
      spans+=" $(curl -s "$url/metrics" | awk '/^otel_spans_dropped_total/ {printf "%s ", $0}')"
    fi
    echo "run $i $m: GET $rps/s (p99 $p99)  enqueue $erps/s (p99 $ep99)$spans"
    stop
  done
done
echo
echo "| path | tracing off | on, every trace sampled | on, ratio 0 |"
echo "| --- | --- | --- | --- |"
for path in get post; do
  row="| $([ $path = get ] && echo 'GET /healthz' || echo 'POST /v1/tasks (durable enqueue)') |"
  for m in "${modes[@]}"; do row+=" $(median <"$work/$path-$m")/s |"; done
  echo "$row"
done
