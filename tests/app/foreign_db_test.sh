#!/usr/bin/env bash
# `errand serve --db` on another application's SQLite file: a clear message,
# a non-zero exit, and the file left byte for byte as it was (no -wal/-shm).
set -euo pipefail
errand="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
db="$dir/shop.db"
python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                "INSERT INTO customers (name) VALUES ('ada');")
c.close()
PY
before="$(sha256sum "$db")"
set +e
out="$("$errand" serve --listen 127.0.0.1:0 --db "$db" 2>&1)"
rc=$?
set -e
echo "$out"
[ "$rc" -ne 0 ] || { echo "FAIL: exit status 0 on a foreign database"; exit 1; }
grep -q "is not an errand database (it holds customers)" <<<"$out" ||
  { echo "FAIL: no clear message"; exit 1; }
[ "$(sha256sum "$db")" = "$before" ] || { echo "FAIL: the file changed"; exit 1; }
[ ! -e "$db-wal" ] && [ ! -e "$db-shm" ] || { echo "FAIL: -wal/-shm left beside it"; exit 1; }
echo "PASS"
