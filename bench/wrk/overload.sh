#!/usr/bin/env bash
# Overload: `errand serve` (release, SQLite on this disk, one I/O thread, the
# queue paused so only the durable enqueue is measured) without a concurrency
# limit and with `--concurrency-limit /v1=adaptive`, in one sitting:
#   unloaded   2 connections          → the unloaded p99
#   capacity   SAT connections        → the most enqueues/s (no limit)
#   overload   3 x SAT connections    → goodput (2xx/s) and the p99 of the 2xx
# bench/overload.cpp is the client: closed loop, keep-alive, and it times the
# admitted (2xx) answers apart from the shed ones (503), which wrk cannot.
# Runs alternate between the two modes; medians at the end.
# Usage: bench/wrk/overload.sh [runs=3] [seconds=8] [sat=32]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}; secs=${2:-8}; sat=${3:-32}
scripts/bootstrap
cmake --preset release >/dev/null
cmake --build --preset release --target errand_cli errand_overload >/dev/null
errand=build/release/apps/errand/errand
load=build/release/bench/errand_overload
body='{"type":"demo.noop","payload":{"n":1}}'

work=$(mktemp -d -p "$PWD/build")  # on the disk under test, not tmpfs
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() {  # MODE: none | adaptive. A fresh server on a fresh file; sets port
  rm -f "$work"/e.db*
  local extra=()
  [ "$1" = adaptive ] && extra=(--concurrency-limit /v1=adaptive)
  port=$(free_port)
  "$errand" serve --listen "127.0.0.1:$port" --db "$work/e.db" --threads 1 --queues default=4 \
    --log-level warn --blocking-threads 64 "${extra[@]}" 2>"$work/log" &
  pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
  curl -sf -X POST "127.0.0.1:$port/v1/queues/default/pause" >/dev/null
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

modes=(none adaptive)
echo "errand serve --threads 1; $secs s per step x $runs runs; capacity at $sat connections, overload at $((3 * sat))"
for i in $(seq 1 "$runs"); do
  for m in "${modes[@]}"; do
    serve "$m"
    unloaded=$("$load" "$port" /v1/tasks 2 "$secs" "$body")
    capacity=$("$load" "$port" /v1/tasks "$sat" "$secs" "$body")
    overload=$("$load" "$port" /v1/tasks $((3 * sat)) "$secs" "$body")
    limit=$(curl -s "127.0.0.1:$port/metrics" | awk '$1 ~ /^concurrency_limit\{/ {print $2}')
    stop
    echo "run $i $m: unloaded $unloaded"
    echo "run $i $m: capacity $capacity"
    echo "run $i $m: overload $overload ${limit:+limit $limit}"
    field ok_p99_ms "$unloaded" >>"$work/$m-p99u"
    field ok_per_s "$capacity" >>"$work/$m-cap"
    field ok_per_s "$overload" >>"$work/$m-good"
    field ok_p99_ms "$overload" >>"$work/$m-p99o"
    field shed_per_s "$overload" >>"$work/$m-shed"
  done
done
cap=$(median <"$work/none-cap")
p99u=$(median <"$work/none-p99u")
echo
echo "capacity (no limit, $sat connections): $cap enqueues/s; unloaded p99: $p99u ms"
echo "| at $((3 * sat)) connections | goodput | of capacity | 2xx p99 | of unloaded p99 | shed |"
echo "| --- | --- | --- | --- | --- | --- |"
for m in "${modes[@]}"; do
  good=$(median <"$work/$m-good"); p99=$(median <"$work/$m-p99o"); shed=$(median <"$work/$m-shed")
  awk -v m="$m" -v g="$good" -v c="$cap" -v p="$p99" -v u="$p99u" -v s="$shed" 'BEGIN {
    printf "| %s | %.0f/s | %.0f%% | %.2f ms | %.1fx | %.0f/s |\n", m, g, 100 * g / c, p, p / u, s }'
done
