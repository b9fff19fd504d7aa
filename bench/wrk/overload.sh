#!/usr/bin/env bash
# Overload: bench/overload_server (release, one I/O thread, the standard
# middleware) with and without `adaptive_blocking` (`--adaptive-blocking` of
# `errand serve`), in one sitting, on two workloads of a blocking route:
#   db   GET /db?ms=5   a downstream of 4 connections, 5 ms a call (a
#                       database pool, say): capacity is set by it, the CPU
#                       stays mostly idle
#   cpu  GET /work?us=1000   1 ms of CPU a request, on the server's core
# Steps, each a fresh server:
#   unloaded  open loop at 50/s                       → the unloaded p99
#   capacity  closed loop, 16 connections, no limit   → the most 2xx/s
#   overload  open loop at 3x capacity                → goodput, 2xx p99, shed
# bench/overload.cpp is the client: the open loop sends on schedule whatever
# the server does (wrk2's model) and times each request from its scheduled
# time; a shed request (503) is not retried.
# Usage: bench/wrk/overload.sh [runs=3] [seconds=8] [workloads="db cpu"]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}; secs=${2:-8}; workloads=${3:-db cpu}
scripts/bootstrap
cmake --preset release >/dev/null
cmake --build --preset release --target errand_overload errand_overload_server >/dev/null
server=build/release/bench/errand_overload_server
# The load generator on the first core, the server on the rest: on a shared
# core the client's own work would decide how much CPU the server's workers
# get. (On one core, both share it.)
cores=$(nproc)
if [ "$cores" -ge 2 ]; then server_cpus="1-$((cores - 1))"; client_cpus=0; else server_cpus=0; client_cpus=0; fi
load() { taskset -c "$client_cpus" build/release/bench/errand_overload "$@"; }

work=$(mktemp -d)
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
serve() {  # MODE: none | pool. Sets port.
  taskset -c "$server_cpus" "$server" "$1" 2>"$work/log" &
  pid=$!
  for _ in $(seq 1 400); do grep -q '^port' "$work/log" && break; sleep 0.05; done
  port=$(awk '/^port/ {print $2}' "$work/log")
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

echo "overload_server, one I/O thread; $secs s per step x $runs runs; overload = 3x capacity"
for w in $workloads; do
  case $w in
    db) path='/db?ms=5' ;;
    cpu) path='/work?us=1000' ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
  for i in $(seq 1 "$runs"); do
    serve none
    unloaded=$(load "$port" "$path" "$secs" --rate 50)
    capacity=$(load "$port" "$path" "$secs" --connections 16)
    stop
    cap=$(field ok_per_s "$capacity")
    echo "$w run $i: unloaded $unloaded"
    echo "$w run $i: capacity $capacity"
    field ok_p99_ms "$unloaded" >>"$work/$w-p99u"
    echo "$cap" >>"$work/$w-cap"
    rate=$((3 * ${cap%.*}))
    for m in none pool; do
      serve "$m"
      overload=$(load "$port" "$path" "$secs" --rate "$rate")
      limit=$(curl -s "127.0.0.1:$port/metrics" | awk '$1 == "blocking_limit" {print $2}')
      stop
      echo "$w run $i $m: overload at $rate/s $overload${limit:+ limit $limit}"
      python3 -c "import json,sys; o=json.loads(sys.argv[1]); print(o['ok_per_s']/$cap)" \
        "$overload" >>"$work/$w-$m-good"
      field ok_p99_ms "$overload" >>"$work/$w-$m-p99o"
      python3 -c "import json,sys; o=json.loads(sys.argv[1]); print(o['ok_p99_ms']/$(field ok_p99_ms "$unloaded"))" \
        "$overload" >>"$work/$w-$m-p99r"
      field shed_per_s "$overload" >>"$work/$w-$m-shed"
    done
  done
done
echo
echo "| workload | capacity | unloaded p99 | at 3x capacity | goodput, of capacity | 2xx p99 | of unloaded p99 | shed |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for w in $workloads; do
  cap=$(median <"$work/$w-cap"); p99u=$(median <"$work/$w-p99u")
  for m in none pool; do
    good=$(median <"$work/$w-$m-good"); p99=$(median <"$work/$w-$m-p99o")
    ratio=$(median <"$work/$w-$m-p99r"); shed=$(median <"$work/$w-$m-shed")
    label=$([ "$m" = none ] && echo "no limit" || echo "adaptive_blocking")
    awk -v w="$w" -v l="$label" -v c="$cap" -v u="$p99u" -v g="$good" -v p="$p99" -v r="$ratio" -v s="$shed" 'BEGIN {
      printf "| %s | %.0f/s | %.2f ms | %s | %.0f%% | %.2f ms | %.1fx | %.0f/s |\n", w, c, u, l, 100 * g, p, r, s }'
  done
done
echo "(medians of $runs runs; each ratio is taken within its run, then the median)"
