#!/usr/bin/env bash
# How errand's costs grow with the store (SQLite): for each size N, a store
# holding N tasks — half run to success (queue `done`), half pending (queue
# `parked`, nobody serves it) — is built with `errand_compare populate`, then
# `errand serve --threads 1` on it is measured:
#   enqueue       wrk POST /v1/tasks into an unserved queue, 2 threads, 64 connections
#   queues        GET /v1/queues, 1 thread, 4 connections
#   list pending  GET /v1/tasks?queue=parked&state=pending&limit=50
#   list done     GET /v1/tasks?queue=done&state=succeeded&limit=50
#   list all      GET /v1/tasks?limit=50
#   purge         the enqueue again, with --retention 1ms, while the purge
#                 deletes the finished half
#   claim         a server whose 4 workers (256 prefetched) run the pending
#                 half's no-op tasks: tasks succeeded per second over `duration`
# with the server's resident memory, the file's size and the write-ahead log's
# largest size seen (sampled every 0.2 s) over each server's life.
# Prints a markdown table. Usage: bench/scale.sh [sizes="0 1000000 10000000"] [duration=10s]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"0 1000000 10000000"}; duration=${2:-10s}
scripts/bootstrap
cmake --preset release >/dev/null
cmake --build --preset release --target errand_cli errand_compare >/dev/null
errand=build/release/apps/errand/errand
compare=build/release/bench/errand_compare

work=$(mktemp -d -p "$PWD/build")  # on the disk under test, not tmpfs
pid=""; sampler=""
trap 'kill "$pid" "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() {  # db, extra flags... ; sets url, starts the WAL sampler
  local db=$1 port
  shift
  port=$(free_port)
  "$errand" serve --listen "127.0.0.1:$port" --threads 1 --db "$db" --max-waiting 0 \
    --log-level warn "$@" 2>"$work/log" &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 1200); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.05; done
  curl -sf "$url/healthz" >/dev/null || { echo "server did not start"; cat "$work/log"; exit 1; }
  : >"$work/wal"
  (while kill -0 "$pid" 2>/dev/null; do stat -c %s "$db-wal" 2>/dev/null >>"$work/wal" || true; sleep 0.2; done) &
  sampler=$!
}
stop() { kill "$pid"; wait "$pid" || true; wait "$sampler" 2>/dev/null || true; pid=""; sampler=""; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
wal_mb() { sort -n "$work/wal" | tail -1 | awk '{printf "%.1f", $1 / 1048576}'; }
ms() {  # wrk latency like 1.23ms / 456.00us / 1.2s -> ms
  awk -v v="$1" 'BEGIN {if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'
}
load() {  # url, threads, connections, [lua] -> "rps p50_ms p99_ms"
  local out
  out=$(BODY='{"type":"demo.noop","queue":"bench"}' wrk -t"$2" -c"$3" -d"$duration" --latency ${4:+-s "$4"} "$1")
  echo "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') $(ms "$(echo "$out" | awk '$1=="50%" {print $2}')") $(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")"
}
succeeded() {  # queue -> succeeded count
  curl -s "$url/v1/queues" | python3 -c "import json,sys; q=[x for x in json.load(sys.stdin)['queues'] if x['name']=='$1']; print(q[0]['counts']['succeeded'] if q else 0)"
}

rows=()
for n in $sizes; do
  db="$work/s$n.db"
  echo "populating $n tasks" >&2
  start=$SECONDS
  "$compare" populate "$db" "$n" >/dev/null
  echo "  in $((SECONDS - start)) s" >&2
  file=$(du -m "$db" | awk '{print $1}')  # before the loads add their own tasks

  serve "$db" --queues default=1
  read -r enq_rps _ enq_p99 < <(load "$url/v1/tasks" 2 64 bench/compare/post.lua)
  read -r _ q_p50 q_p99 < <(load "$url/v1/queues" 1 4)
  read -r _ lp_p50 lp_p99 < <(load "$url/v1/tasks?queue=parked&state=pending&limit=50" 1 4)
  read -r _ ld_p50 ld_p99 < <(load "$url/v1/tasks?queue=done&state=succeeded&limit=50" 1 4)
  read -r _ la_p50 la_p99 < <(load "$url/v1/tasks?limit=50" 1 4)
  rss=$(rss_mb)
  stop
  wal1=$(wal_mb)

  serve "$db" --queues default=1 --retention 1ms
  read -r pur_rps _ pur_p99 < <(load "$url/v1/tasks" 2 64 bench/compare/post.lua)
  stop
  wal2=$(wal_mb)

  serve "$db" --queues parked=4:1:256
  before=$(succeeded parked); t0=$(date +%s.%N)
  sleep "${duration%s}"
  after=$(succeeded parked); t1=$(date +%s.%N)
  claim=$(awk -v a="$before" -v b="$after" -v s="$t0" -v e="$t1" 'BEGIN {printf "%.0f", (b - a) / (e - s)}')
  stop
  wal3=$(wal_mb)

  rows+=("| $n | $enq_rps, p99 $enq_p99 ms | $pur_rps, p99 $pur_p99 ms | $claim | $q_p50 / $q_p99 | $lp_p50 / $lp_p99 | $ld_p50 / $ld_p99 | $la_p50 / $la_p99 | $rss MB | $file MB | $wal1 / $wal2 / $wal3 MB |")
  rm -f "$db" "$db-wal" "$db-shm"
done

echo "Measured $(date -u +%Y-%m-%d) by \`bench/scale.sh \"$sizes\" $duration\` ($(nproc) cores; \`errand serve --threads 1\`, SQLite synchronous=NORMAL)."
echo
echo "| tasks stored (half succeeded, half pending) | enqueue/s, p99 | enqueue/s during the purge, p99 | claimed and run/s | GET /v1/queues p50 / p99 ms | pending page of a queue | succeeded page of a queue | newest page | RSS after the enqueue load | file | WAL high-water (enqueue and reads / purge / claims) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
