#!/usr/bin/env bash
# The `errand` client commands against a real `errand serve` process on an
# ephemeral port with a temp SQLite file: output, exit codes, --wait, --json.
set -euo pipefail
errand="$1"
dir=$(mktemp -d)
pid=""
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/serve_lib.sh"

start_errand "$errand" "$dir" --threads 2 --db "$dir/errand.db" --queues default=2 --task-grace 1s \
  --schedule 'nightly=cron:0 3 * * *:demo.noop' --schedule 'tick=every:1h:demo.noop:default:{"n":1}'
export ERRAND_SERVER="http://127.0.0.1:$port"

fail() { echo "FAIL: $*"; exit 1; }
expect_rc() {  # expected-rc command...: runs it, checks its exit code, prints its stdout
  local want=$1; shift
  local rc=0
  out=$("$@" 2>"$dir/stderr") || rc=$?
  [ "$rc" -eq "$want" ] || fail "$* exited $rc, wanted $want: $out $(cat "$dir/stderr")"
}

# enqueue --wait: progress on stderr, final state and result on stdout, exit 0.
expect_rc 0 "$errand" enqueue demo.sleep --payload '{"seconds":0.3,"steps":3}' --wait
grep <<<"$out" -q '^succeeded {"slept_ms":300,"steps":3}$' || fail "wait output: $out"
grep -q '100% succeeded step 3/3' "$dir/stderr" || fail "no progress: $(cat "$dir/stderr")"

# A task that ends dead makes --wait exit 1.
expect_rc 1 "$errand" enqueue demo.sleep --payload '{"seconds":0,"fail_attempts":1}' \
  --max-attempts 1 --wait
grep <<<"$out" -q '^dead: demo.sleep: failing attempt 1 on purpose$' || fail "dead: $out"

# enqueue prints the id; status shows it; cancel stops it; a second cancel is refused.
expect_rc 0 "$errand" enqueue demo.sleep --payload '{"seconds":300,"steps":300}'
id="$out"
[[ "$id" =~ ^[0-9A-Z]{26}$ ]] || fail "not an id: $id"
for _ in $(seq 1 200); do
  expect_rc 0 "$errand" status "$id" --json
  grep <<<"$out" -q '"state":"active"' && break
  sleep 0.05
done
expect_rc 0 "$errand" status "$id"
grep <<<"$out" -q "^state  *active$" || fail "status: $out"
expect_rc 0 "$errand" cancel "$id"
grep <<<"$out" -q "cancel requested" || fail "cancel: $out"
for _ in $(seq 1 200); do
  expect_rc 0 "$errand" status "$id" --json
  grep <<<"$out" -q '"state":"cancelled"' && break
  sleep 0.05
done
grep <<<"$out" -q '"state":"cancelled"' || fail "not cancelled: $out"
expect_rc 1 "$errand" cancel "$id"
grep -q "409 task_final" "$dir/stderr" || fail "second cancel: $(cat "$dir/stderr")"
expect_rc 0 "$errand" retry "$id"
[ "$out" = "pending" ] || fail "retry: $out"

# list and queues: tables by default, JSON with --json.
expect_rc 0 "$errand" list --limit 10
grep <<<"${out%%$'\n'*}" -q "^ID  *TYPE  *QUEUE  *STATE" || fail "list header: $out"
[ "$(grep <<<"$out" -c demo.sleep)" -eq 3 ] || fail "list rows: $out"
expect_rc 0 "$errand" list --state dead --json
grep <<<"$out" -q '"state":"dead"' || fail "list --json: $out"
expect_rc 0 "$errand" queues
grep <<<"$out" -q "^default  *no" || fail "queues: $out"

# schedules: each one with when it runs and its node.
expect_rc 0 "$errand" schedules
grep <<<"$out" -q "^nightly  *cron 0 3 \* \* \*  *demo.noop  *default  *-  *[0-9-]*T03:00:00.000Z" ||
  fail "schedules: $out"
grep <<<"$out" -q "^tick  *every 3600000 ms  *demo.noop  *default " || fail "schedules: $out"

# Errors: the server's message and exit 1; bad usage exit 2; no server exit 3.
expect_rc 1 "$errand" enqueue no.such.type
grep -q "unknown_task_type" "$dir/stderr" || fail "unknown type: $(cat "$dir/stderr")"
expect_rc 1 "$errand" status 01ARZ3NDEKTSV4RRFFQ69G5FAV
expect_rc 1 "$errand" list --state bogus
expect_rc 2 "$errand" enqueue demo.sleep --payload 'not json'
expect_rc 2 "$errand" list --limit 0
expect_rc 3 "$errand" queues --server http://127.0.0.1:1

kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
echo "cli: all checks passed"
