#!/usr/bin/env bash
# Soak: `errand serve` (SQLite, 4 workers) under a steady mixed load for a
# while — enqueues of tasks that run as fast as they come, status reads, a
# filtered task list and the queue counts — sampling every 10 s what must
# stay flat: resident memory, open file descriptors, threads, the SQLite
# file and write-ahead log sizes, and the backlog of tasks waiting. Prints
# the samples as a table, then checks that descriptors and threads did not
# grow, the log stayed under its bound, the highest memory sample of the
# second half is within 10% (+2 MiB) of the first half's, the backlog did
# not grow, and (runs of 5 minutes or more,
# once the retention purge has come round) the file did not either (exit 1
# otherwise).
#
#   bench/soak.sh [--minutes N] [--errand PATH]   (10 minutes, the release build)
#
# tests/CMakeLists.txt runs it for 2 minutes on the ASan build (`soak.two_minutes`).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
errand=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --errand) errand=$2; shift 2 ;;
    *) echo "usage: bench/soak.sh [--minutes N] [--errand PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$errand" ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target errand_cli >/dev/null
  errand=build/release/apps/errand/errand
fi
command -v wrk >/dev/null || { echo "soak: needs wrk (scripts/bootstrap)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A bounded ASan quarantine, so a sanitizer build's memory says something.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16:detect_leaks=0" \
  "$errand" serve --listen "127.0.0.1:$port" --db "$work/e.db" --queues default=4 \
  --log-level warn --retention 1m 2>"$work/log" &
server=$!
pids+=("$server")
url="http://127.0.0.1:$port"
for _ in $(seq 1 400); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.05; done
curl -sf "$url/healthz" >/dev/null || { echo "soak: server did not start"; cat "$work/log"; exit 1; }

cat >"$work/mixed.lua" <<'LUA'
-- Enqueue, read the task back, list pending tasks, count the queues.
local n, last = 0, nil
request = function()
  n = n + 1
  local k = n % 4
  if k == 0 or last == nil then
    return wrk.format("POST", "/v1/tasks", {["Content-Type"] = "application/json"},
                      '{"type":"demo.noop","payload":{"n":1}}')
  elseif k == 1 then
    return wrk.format("GET", "/v1/tasks/" .. last)
  elseif k == 2 then
    return wrk.format("GET", "/v1/tasks?queue=default&state=pending&limit=20")
  end
  return wrk.format("GET", "/v1/queues")
end
response = function(status, headers, body)
  if status == 202 then last = body:match('"id":"(%w+)"') end
end
LUA
secs=$((minutes * 60))
wrk -t1 -c8 -d"${secs}s" -s "$work/mixed.lua" "$url" >"$work/wrk" 2>&1 &
pids+=("$!")

sample() {
  local rss fds threads db wal
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  db=$(stat -c %s "$work/e.db" 2>/dev/null || echo 0)
  wal=$(stat -c %s "$work/e.db-wal" 2>/dev/null || echo 0)
  # Tasks waiting to run: a steady load runs them as fast as they come.
  # Retried: one refused or slow answer under the load is not a backlog
  # (into a file, which a retry starts over, where stdout would be appended).
  backlog=$(curl -sf -m 20 --retry 3 --retry-all-errors --retry-max-time 60 \
              -o "$work/queues.json" "$url/v1/queues" && python3 -c '
import json, sys
print(sum(q["counts"]["pending"] + q["counts"]["scheduled"] + q["counts"]["retrying"] for q in json.load(sys.stdin)["queues"]))' \
    <"$work/queues.json" 2>/dev/null || echo -1)
  echo "$1 $rss $fds $threads $db $wal $backlog"
}
: >"$work/samples"
start=$SECONDS
for t in $(seq 0 10 "$secs"); do
  # On the clock, not 10 s after the last sample: a sample takes a while
  # (more under a sanitizer), and drifting ones would land after the load.
  while [ $((SECONDS - start)) -lt "$t" ]; do sleep 0.2; done
  kill -0 "$server" 2>/dev/null || { echo "soak: the server died"; cat "$work/log"; exit 1; }
  sample "$t" >>"$work/samples"
done
wait "${pids[1]}" || true
echo "| s | RSS MiB | fds | threads | db MiB | WAL MiB | backlog |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
awk '{printf "| %d | %.1f | %d | %d | %.1f | %.1f | %d |\n", $1, $2/1024, $3, $4, $5/1048576, $6/1048576, $7}' \
  "$work/samples"
grep -E "Requests/sec|Non-2xx|Socket errors" "$work/wrk" || true
awk -v half="$((secs / 2))" -v secs="$secs" -v minutes="$minutes" '
  NR == 2 { fd0 = $3; th0 = $4 }
  { if ($3 > fdmax) fdmax = $3; if ($4 > thmax) thmax = $4; if ($6 > walmax) walmax = $6 }
  # Memory: the highest sample of each half (after a 20 s warm-up), so one
  # spike at either end decides nothing.
  $1 >= 20 && $1 < half && $2 > mid { mid = $2 }
  # The last sample is taken as the load ends (connections closing), not under it.
  $1 >= half && $1 < secs && $2 > last { last = $2 }
  $1 >= half && !dbmid { dbmid = $5; backmid = $7 }
  { dblast = $5; backlast = $7 }
  END {
    bad = 0
    if (backlast < 0 || backlast > 2000 && backlast > 2 * backmid) {
      print "soak: the backlog grew (tasks came faster than they ran: not a steady load): " backmid " -> " backlast; bad = 1
    }
    # The retention purge (1 minute, each minute) holds the file once a few
    # minutes have passed; shorter runs end before it has come round.
    if (minutes >= 5 && dblast > dbmid * 1.25 + 16 * 1048576) {
      print "soak: the database file grew in the second half: " dbmid " -> " dblast; bad = 1
    }
    if (fdmax > fd0 + 8) { print "soak: file descriptors grew: " fd0 " -> " fdmax; bad = 1 }
    if (thmax > th0) { print "soak: threads grew: " th0 " -> " thmax; bad = 1 }
    if (walmax > 64 * 1048576 * 1.1) { print "soak: the WAL passed its 64 MiB bound: " walmax; bad = 1 }
    if (last > mid * 1.10 + 2048) { print "soak: memory grew in the second half: " mid " -> " last " KiB (highest of each)"; bad = 1 }
    if (!bad) printf "soak: flat (fds %d-%d, threads %d, WAL max %.1f MiB, highest RSS %.1f -> %.1f MiB from the first half to the second, backlog %d -> %d)\n", fd0, fdmax, thmax, walmax / 1048576, mid / 1024, last / 1024, backmid, backlast
    exit bad
  }' "$work/samples"
