#!/usr/bin/env bash
# Load test with wrk against bench/echo_server (release build):
#   GET /healthz and POST /echo (JSON bind + reply), each RUNS times; prints
#   requests/s and latency p50/p99 per run and the median of the runs.
# Usage: bench/wrk/run.sh [runs=5] [duration=10s] [connections=64] [server_threads=1]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}; duration=${2:-10s}; conns=${3:-64}; sthreads=${4:-1}
scripts/bootstrap
cmake --preset release -DERRAND_BUILD_BENCH=ON >/dev/null
cmake --build --preset release --target errand_echo_server >/dev/null

log=$(mktemp)
build/release/bench/errand_echo_server "$sthreads" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 200); do grep -q '^port ' "$log" && break; sleep 0.05; done
port=$(grep '^port ' "$log" | awk '{print $2}')
base="http://127.0.0.1:$port"

measure() {  # name, wrk args...
  local name=$1; shift
  local rps=()
  for i in $(seq 1 "$runs"); do
    out=$(wrk -t1 -c"$conns" -d"$duration" --latency "$@")
    r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "$name run $i: $r req/s  p50 $p50  p99 $p99"
    rps+=("$r")
  done
  printf '%s\n' "${rps[@]}" | sort -n | awk -v n="$name" \
    '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print n " median: " m " req/s"}'
}

echo "server threads: $sthreads, wrk: 1 thread, $conns connections, $duration x $runs"
measure "GET /healthz" "$base/healthz"
measure "POST /echo" -s bench/wrk/echo.lua "$base/echo"
