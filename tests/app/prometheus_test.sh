#!/usr/bin/env bash
# GET /metrics is usable by the tools operators run: it passes
# `promtool check metrics` without a warning, and a real Prometheus server
# (Debian's, started here on a free port) scrapes errand and answers a query
# about the tasks errand ran. With tracing on, that Prometheus (exemplar
# storage on, so it asks for OpenMetrics) keeps the trace ids errand attaches
# to its histograms and returns them from its exemplars API.
set -euo pipefail
errand="$1"
dashboard="$(dirname "$0")/../../docs/grafana/errand-dashboard.json"
for tool in prometheus promtool python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/bootstrap"; exit 1; }
done
dir=$(mktemp -d)
pid=""
prom_pid=""
trap 'kill -9 "$pid" "$prom_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/serve_lib.sh"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Tracing on (exemplars name recorded traces only); no collector listens
# there, which errand survives: its spans are dropped and counted. Port 1,
# which no test binds (a port taken and let go could be bound by a test
# running beside this one, whose server would get these spans).
start_errand "$errand" "$dir" --db "$dir/errand.db" --queues default=2 --adaptive-blocking \
  --otlp-endpoint "http://127.0.0.1:1"
export ERRAND_SERVER="http://127.0.0.1:$port"
for _ in 1 2 3; do "$errand" enqueue demo.noop --wait >/dev/null; done
"$errand" enqueue demo.sleep --payload '{"seconds":0,"fail_attempts":5}' --max-attempts 1 \
  --wait >/dev/null && { echo "a task meant to die succeeded"; exit 1; }

http_get() {  # HOST:PORT TARGET: print the body of a GET
  local host=${1%:*} p=${1##*:}
  exec 3<>"/dev/tcp/$host/$p"
  # HTTP/1.0: the answer is never chunked (Prometheus chunks answers past
  # 2 KiB to HTTP/1.1, which this reader does not decode).
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
  timeout 10 cat <&3 | sed '1,/^\r$/d'
  exec 3<&-
}

# 1. promtool: no errors and no lint warnings (it exits non-zero on either).
# (A task's state is committed before its attempt is counted: poll for the count.)
counted=""
for _ in $(seq 1 200); do
  http_get "127.0.0.1:$port" /metrics >"$dir/metrics.txt"
  if grep -q '^task_execution_count{type="demo.noop",queue="default",outcome="succeeded"} 3' \
    "$dir/metrics.txt"; then counted=1; break; fi
  sleep 0.1
done
[ -n "$counted" ] || { echo "no task_execution_count"; cat "$dir/metrics.txt"; exit 1; }
# --adaptive-blocking: the limit at the blocking pool's door (/metrics is a
# blocking route, so it has been admitted under it).
grep -Eq '^http_blocking\{what="limit"\} [1-9]' "$dir/metrics.txt" ||
  { echo "no adaptive blocking limit"; grep http_blocking "$dir/metrics.txt"; exit 1; }
if ! promtool check metrics <"$dir/metrics.txt" >"$dir/promtool.out" 2>&1; then
  echo "promtool check metrics failed:"; cat "$dir/promtool.out"; exit 1
fi

# 2. A real Prometheus scrapes errand every second.
cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: errand
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
promtool check config "$dir/prometheus.yml" >/dev/null
prom_port=""
for _ in 1 2 3; do  # a free port may be taken by someone else before Prometheus binds it
  prom_port=$(free_port)
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --enable-feature=exemplar-storage \
    --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
  prom_pid=$!
  for _ in $(seq 1 200); do
    grep -q "Server is ready to receive web requests" "$dir/prometheus.log" && break 2
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$prom_pid" 2>/dev/null || true
  prom_pid=""
done
[ -n "$prom_pid" ] || { echo "prometheus did not start"; cat "$dir/prometheus.log"; exit 1; }

query() {  # PROMQL: print Prometheus's JSON answer
  local q
  q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
  http_get "127.0.0.1:$prom_port" "/api/v1/query?query=$q"
}
value_of() {  # JSON answer on stdin: the first sample's value, or nothing
  python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")'
}
wait_for() {  # PROMQL EXPECTED: until the query answers EXPECTED (60 s at most)
  local got=""
  for _ in $(seq 1 300); do
    got=$(query "$1" | value_of 2>/dev/null || true)
    [ "$got" = "$2" ] && return 0
    sleep 0.2
  done
  echo "Prometheus answered '$got' for $1, expected $2"
  cat "$dir/prometheus.log" | tail -20
  exit 1
}
wait_for 'up{job="errand"}' 1
wait_for 'sum(task_execution_count{type="demo.noop",outcome="succeeded"})' 3
wait_for 'sum(task_execution_count{type="demo.sleep",outcome="dead"})' 1
wait_for 'sum(tasks{state="succeeded"})' 3
wait_for 'count(histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[1m])) >= 0) > 0' 1

# 3. Exemplars: the OpenMetrics exposition's trace ids, as Prometheus stored them.
exemplar_trace() {  # METRIC: the trace_id of one stored exemplar of METRIC, or nothing
  local now
  now=$(date +%s)
  http_get "127.0.0.1:$prom_port" \
    "/api/v1/query_exemplars?query=$1&start=$((now - 600))&end=$((now + 60))" |
    python3 -c 'import json, sys
for series in json.load(sys.stdin)["data"]:
    for e in series["exemplars"]:
        print(e["labels"]["trace_id"]); sys.exit(0)'
}
for metric in http_request_duration_seconds_bucket task_duration_seconds_bucket \
              task_queue_wait_seconds_bucket; do
  trace=""
  for _ in $(seq 1 300); do
    trace=$(exemplar_trace "$metric" 2>/dev/null || true)
    [ -n "$trace" ] && break
    sleep 0.2
  done
  [[ "$trace" =~ ^[0-9a-f]{32}$ ]] || {
    echo "no exemplar with a trace id for $metric: '$trace'"
    now=$(date +%s)
    http_get "127.0.0.1:$prom_port" \
      "/api/v1/query_exemplars?query=$metric&start=$((now - 600))&end=$((now + 60))" | head -c 2000
    echo; tail -20 "$dir/prometheus.log"
    http_get "127.0.0.1:$port" /metrics | grep -E "^(http_request_duration|otel_)" | head -20
    exit 1; }
done
# The OpenMetrics answer itself: exemplars on buckets, counters' families
# without _total, and the closing # EOF.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0\r\nConnection: close\r\n\r\n' >&3
timeout 10 cat <&3 >"$dir/openmetrics.txt"
exec 3<&-
grep -q '^Content-Type: application/openmetrics-text; version=1.0.0' "$dir/openmetrics.txt" ||
  { echo "no OpenMetrics content type"; head -20 "$dir/openmetrics.txt"; exit 1; }
grep -q '^task_duration_seconds_bucket{.*} [0-9]* # {trace_id="[0-9a-f]\{32\}"} ' "$dir/openmetrics.txt" ||
  { echo "no exemplar in the OpenMetrics exposition"; exit 1; }
grep -q '^# TYPE http_requests counter$' "$dir/openmetrics.txt" || { echo "counter family"; exit 1; }
[ "$(tail -1 "$dir/openmetrics.txt" | tr -d '\r')" = "# EOF" ] || { echo "no # EOF"; exit 1; }

# 4. Every query of the sample Grafana dashboard is PromQL this Prometheus
#    accepts.
python3 - "$dashboard" >"$dir/exprs" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["panels"]:
    for t in p.get("targets", []):
        print(t["expr"].replace("$__rate_interval", "1m"))
PY
[ "$(wc -l <"$dir/exprs")" -ge 20 ] || { echo "dashboard has too few queries"; exit 1; }
while IFS= read -r expr; do
  answer=$(query "$expr")
  grep <<<"$answer" -q '"status":"success"' || { echo "dashboard query refused: $expr -> $answer"; exit 1; }
done <"$dir/exprs"
echo "prometheus: ok (errand :$port, prometheus :$prom_port)"
