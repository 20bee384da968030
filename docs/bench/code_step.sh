#!/bin/bash
# Issue 19, the code step: wrong codes over N (200) half-signed-in sessions, so
# every request runs the whole check and records its failure durably; the lock-out
# is set out of the way (max_failures) so that no answer is a cheap 429. Runs
# ROUNDS (3) rounds of: GET /healthz (the baseline of the same minute), then the code
# step, each `wrk -t2 -cCONNS -dSECS`. DB=pg uses a fresh PostgreSQL database on
# 127.0.0.1:5432 (trust auth); otherwise SQLite in a temporary data directory.
#   cargo build --release -p tweestap
#   docs/bench/code_step.sh; DB=pg docs/bench/code_step.sh
# B=... another binary; KEEP=1 leaves the server running afterwards (its port and
# sessions file printed) for other loads.
set -e
cd "$(dirname "$0")/../.."
B=${B:-target/release/tweestap}; N=${N:-200}; CONNS=${CONNS:-4}; SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
D=$(mktemp -d /tmp/tweestap-code.XXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DBURL=
if [ "${DB:-sqlite}" = pg ]; then
  NAME=tweestap_code_$(basename "$D" | tr -dc 'a-z0-9' | tr 'A-Z' 'a-z')$$
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $NAME" postgres
  DBURL="postgres://postgres@127.0.0.1:5432/$NAME"
fi
cat > "$D/config.toml" <<T
listen = "127.0.0.1:$PORT"
data_dir = "$D/data"
${DBURL:+database_url = \"$DBURL\"}
[lockout]
max_failures = 1000000000
password_max_failures = 1000000
password_account_max_failures = 1000000
password_address_max_failures = 1000000
T
# The first alone: it creates the database.
echo 'violet harbour lantern 42' | TWEESTAP_LOG=warn $B --config "$D/config.toml" user add \
  --email bench-0@example.org --password-stdin >/dev/null
seq 1 $((N - 1)) | xargs -P 2 -I{} sh -c \
  "echo 'violet harbour lantern 42' | TWEESTAP_LOG=warn $B --config $D/config.toml user add --email bench-{}@example.org --password-stdin >/dev/null"
env TWEESTAP_LOG=error $B --config "$D/config.toml" serve > "$D/serve.log" 2>&1 &
PID=$!
cleanup() {
  kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true
  [ -n "$NAME" ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $NAME" postgres
  rm -rf "$D"
}
[ -z "$KEEP" ] && trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 docs/bench/code_step_seed.py 127.0.0.1 "$PORT" "$N" > "$D/sessions"
echo "server $PID on port $PORT, $(wc -l < "$D/sessions") sessions in $D/sessions, ${DB:-sqlite}"
for r in $(seq 1 "$ROUNDS"); do
  H=$(wrk -t2 -c"$CONNS" -d"$SECS"s --latency "http://127.0.0.1:$PORT/healthz")
  C=$(SESSIONS="$D/sessions" wrk -t2 -c"$CONNS" -d"$SECS"s --latency -s docs/bench/code_step.lua \
      "http://127.0.0.1:$PORT/api/v1/login/second-factor")
  h=$(echo "$H" | awk '/Requests\/sec/{print $2}'); c=$(echo "$C" | awk '/Requests\/sec/{print $2}')
  p=$(echo "$C" | awk '$1=="50%"{p50=$2} $1=="99%"{p99=$2} END{print "p50 " p50 ", p99 " p99}')
  n=$(echo "$C" | awk '/^responses:/{print $2 " " $6 " " $7 " " $8}')
  echo "round $r: healthz $h/s; code step $c/s ($p; responses $n); ratio $(python3 -c "print(round($c/$h, 4))")"
done
[ -n "$KEEP" ] && echo "KEEP: kill $PID; rm -rf $D" || true
