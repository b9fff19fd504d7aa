#!/usr/bin/env bash
# Load test with wrk: errand (bench/echo_server.cpp, release build) against a
# Gin baseline (bench/compare/gin/main.go) on the same machine in the same run. Routes:
# GET /healthz (static JSON) and POST /echo (bind a struct, reply with it).
# Runs alternate errand/Gin so that machine noise hits both; prints every run,
# then medians and the errand/Gin ratio.
# errand runs twice: "errand" with its full standard middleware stack, and
# "bare" with recovery only — the same middleware as the Gin baseline.
# Usage: bench/wrk/run.sh [runs=5] [duration=10s] [connections=64] [server_threads=1]
#        NO_GIN=1 bench/wrk/run.sh ...   # errand only
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}; duration=${2:-10s}; conns=${3:-64}; sthreads=${4:-1}
if [ -z "${NO_GIN:-}" ]; then scripts/bootstrap --bench; else scripts/bootstrap; fi
cmake --preset release -DERRAND_BUILD_BENCH=ON >/dev/null
cmake --build --preset release --target errand_echo_server >/dev/null

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

start() {  # name, command... ; sets port_<name>
  "${@:2}" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 400); do grep -q '^port ' "$work/$1.log" && break; sleep 0.05; done
  eval "port_$1=$(grep '^port ' "$work/$1.log" | awk '{print $2}')"
}

start errand build/release/bench/errand_echo_server "$sthreads" full
start bare build/release/bench/errand_echo_server "$sthreads" bare
servers=(errand bare)
if [ -z "${NO_GIN:-}" ]; then
  GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$work/gocache" \
    go build -o "$work/gin_echo" bench/compare/gin/main.go
  GOMAXPROCS=$sthreads start gin "$work/gin_echo"
  servers+=(gin)
fi

once() {  # server, route -> "rps p50 p99"
  local port_var="port_$1" url args=()
  url="http://127.0.0.1:${!port_var}"
  if [ "$2" = echo ]; then args=(-s bench/wrk/echo.lua "$url/echo"); else args=("$url/healthz"); fi
  wrk -t1 -c"$conns" -d"$duration" --latency "${args[@]}" |
    awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

echo "server threads: $sthreads (Gin: GOMAXPROCS=$sthreads); wrk: 1 thread, $conns connections, $duration x $runs"
for route in healthz echo; do
  for s in "${servers[@]}"; do : >"$work/$s.$route"; done
  for i in $(seq 1 "$runs"); do
    for s in "${servers[@]}"; do
      read -r rps p50 p99 < <(once "$s" "$route")
      echo "$route $s run $i: $rps req/s  p50 $p50  p99 $p99"
      echo "$rps" >>"$work/$s.$route"
    done
  done
  line="$route median:"
  for s in "${servers[@]}"; do
    m=$(median <"$work/$s.$route"); eval "med_$s=$m"; line="$line $s $m req/s;"
  done
  line="$line full/bare = $(awk -v a="$med_errand" -v b="$med_bare" 'BEGIN {printf "%.2f", a/b}')"
  if [ -n "${med_gin:-}" ]; then
    line="$line; bare/gin = $(awk -v a="$med_bare" -v b="$med_gin" 'BEGIN {printf "%.2f", a/b}')"
    line="$line; full/gin = $(awk -v a="$med_errand" -v b="$med_gin" 'BEGIN {printf "%.2f", a/b}')"
  fi
  echo "$line"
  unset med_gin
done
