#!/usr/bin/env bash
# Task throughput of `errand serve` (release build, SQLite store on this disk):
#  1. durable enqueue: wrk POSTs demo.noop tasks to /v1/tasks with the queue
#     paused, so only enqueueing is measured (each 202 follows a commit);
#  2. end to end: wrk enqueues for the same duration while 4 workers run the
#     tasks; then we wait until every task has succeeded. tasks/s = tasks
#     succeeded / time from the first enqueue to the last success.
# Alternating runs, medians printed at the end.
# Usage: bench/wrk/tasks.sh [runs=3] [duration=10s] [connections=32] [sync=normal]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}; duration=${2:-10s}; conns=${3:-32}; sync=${4:-normal}
scripts/bootstrap
cmake --preset release >/dev/null
cmake --build --preset release --target errand_cli >/dev/null
errand=build/release/apps/errand/errand

work=$(mktemp -d -p "$PWD/build")  # on the disk under test, not tmpfs
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

serve() {  # starts a fresh server on a fresh file; sets url
  rm -f "$work"/e.db*
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # warn: no access-log line per request, as a production server under load would run
  "$errand" serve --listen "127.0.0.1:$port" --db "$work/e.db" --sync "$sync" --queues default=4 \
    --log-level warn --blocking-threads 64 2>"$work/log" &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 400); do curl -sf "$url/healthz" >/dev/null && return; sleep 0.05; done
  echo "server did not start"; cat "$work/log"; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
count() {  # state -> count in the default queue
  curl -s "$url/v1/queues" | python3 -c "import json,sys; q=[x for x in json.load(sys.stdin)['queues'] if x['name']=='default']; print(q[0]['counts']['$1'] if q else 0)"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/enqueue"; : >"$work/e2e"
echo "errand serve --sync $sync, 4 workers; wrk: 2 threads, $conns connections, $duration x $runs"
for i in $(seq 1 "$runs"); do
  serve
  curl -s -X POST "$url/v1/queues/default/pause" >/dev/null
  out=$(wrk -t2 -c"$conns" -d"$duration" --latency -s bench/wrk/enqueue.lua "$url/v1/tasks")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  refused=$(echo "$out" | awk '/^refused/ {print $2}')
  echo "enqueue run $i: $rps tasks/s acknowledged  p50 $p50  p99 $p99  refused $refused"
  echo "$rps" >>"$work/enqueue"
  stop

  serve
  start=$(date +%s.%N)
  wrk -t2 -c"$conns" -d"$duration" -s bench/wrk/enqueue.lua "$url/v1/tasks" >/dev/null
  while [ "$(count pending)" != 0 ] || [ "$(count active)" != 0 ]; do sleep 0.1; done
  end=$(date +%s.%N)
  done_n=$(count succeeded)
  tps=$(awk -v n="$done_n" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n/(b-a)}')
  echo "end-to-end run $i: $done_n tasks succeeded in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b-a}') s = $tps tasks/s"
  echo "$tps" >>"$work/e2e"
  stop
done
echo "median: durable enqueue $(median <"$work/enqueue") tasks/s; end to end $(median <"$work/e2e") tasks/s"
