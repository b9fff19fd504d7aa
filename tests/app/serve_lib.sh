# Sourced by the shell tests: start_errand ERRAND DIR ARGS... runs
# `ERRAND serve --listen 127.0.0.1:0 ARGS...` with its log in DIR/log, waits
# for its "listening" line (up to 20 s), and sets $pid and $port.
start_errand() {
  local errand=$1 dir=$2
  shift 2
  "$errand" serve --listen 127.0.0.1:0 "$@" 2>"$dir/log" &
  pid=$!
  port=""
  for _ in $(seq 1 400); do
    port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$dir/log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "server did not start"
  cat "$dir/log"
  exit 1
}
