#!/usr/bin/env bash
# End to end: `errand serve` on an ephemeral port answers /healthz and /readyz,
# applies the traffic control of its config file (bearer auth, a rate limit
# per route group, queue backpressure), and exits 0 after a graceful drain on
# SIGTERM.
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
auth-token = ["smoke-test-token-0123456789"]
rate-limit = ["/v1/queues=0.001:2:global"]
concurrency-limit = ["/v1=8:1s"]
queue-max-waiting = "parked=1"
TOML
start_errand "$errand" "$dir" --threads 2 --config "$dir/errand.toml"

token="smoke-test-token-0123456789"
call() {  # METHOD TARGET [BODY [TOKEN]]: print the status line, headers and body
  local body="${3:-}" auth=""
  [ -n "${4:-}" ] && auth="Authorization: Bearer $4"$'\r\n'
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf '%s %s HTTP/1.1\r\nHost: smoke\r\nConnection: close\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$1" "$2" "$auth" "${#body}" "$body" >&3
  timeout 10 cat <&3
  exec 3<&-
}
get() { call GET "$1"; }
# Checks read here-strings, never `echo | grep -q` or `| head -1`: under
# pipefail, the reader leaving early kills the writer with SIGPIPE, a flake.
expect() {  # WHAT STATUS RESPONSE
  grep <<<"${3%%$'\n'*}" -q " $2 " || { echo "$1: expected $2, got: $3"; exit 1; }
}

health=$(get /healthz)
grep <<<"${health%%$'\n'*}" -q "200 OK" || { echo "healthz: $health"; exit 1; }
grep <<<"$health" -q '{"status":"ok"}' || { echo "healthz body: $health"; exit 1; }
ready=$(get /readyz)
grep <<<"${ready%%$'\n'*}" -q "200 OK" || { echo "readyz: $ready"; exit 1; }
missing=$(call GET /missing "" "$token")
grep <<<"$missing" -q '"code":"not_found"' || { echo "404: $missing"; exit 1; }

# Bearer auth: /healthz, /readyz, /metrics stay open; everything else needs the token.
noauth=$(call GET /v1/queues)
expect "no token" 401 "$noauth"
grep <<<"$noauth" -qi '^WWW-Authenticate: Bearer realm="errand"' || { echo "no challenge: $noauth"; exit 1; }
expect "wrong token" 401 "$(call GET /v1/tasks "" wrong-token-wrong-token)"
expect "metrics" 200 "$(get /metrics)"
# The rate limit on /v1/queues (burst 2, global; the 401 above took one).
expect "queues with token" 200 "$(call GET /v1/queues "" "$token")"
limited=$(call GET /v1/queues "" "$token")
expect "rate limited" 429 "$limited"
grep <<<"$limited" -qi '^Retry-After: ' || { echo "no Retry-After: $limited"; exit 1; }
# Backpressure: the unserved queue "parked" takes one waiting task.
task='{"type":"demo.noop","queue":"parked"}'
expect "first parked task" 202 "$(call POST /v1/tasks "$task" "$token")"
full=$(call POST /v1/tasks "$task" "$token")
expect "parked queue full" 503 "$full"
grep <<<"$full" -q '"code":"queue_full"' || { echo "not queue_full: $full"; exit 1; }
# The CLI sends the token from ERRAND_TOKEN; without it the server refuses it.
listed=$(ERRAND_SERVER="http://127.0.0.1:$port" ERRAND_TOKEN="$token" "$errand" list --queue parked)
grep -q demo.noop <<<"$listed" || { echo "cli list with token failed: $listed"; exit 1; }
if ERRAND_SERVER="http://127.0.0.1:$port" "$errand" list >/dev/null 2>"$dir/cli.err"; then echo "cli without token succeeded"; exit 1; fi
grep -q "unauthorized\|Bearer" "$dir/cli.err" || { echo "cli error does not say why: $(cat "$dir/cli.err")"; exit 1; }
metrics=$(get /metrics)
grep <<<"$metrics" -q '^ratelimit_rejected_total{route="/v1/queues"} 1' || { echo "no rate-limit metric: $metrics"; exit 1; }
grep <<<"$metrics" -q '^auth_rejected_total{reason="missing_token"} 2' || { echo "no auth metric"; exit 1; }

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
