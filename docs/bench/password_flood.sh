#!/bin/bash
# Issue 18 (finding 10) figure: the resident memory of `tweestap serve` (release
# build, SQLite) under a flood of wrong passwords, and after it. 64 connections
# (CONNS=...) send sign-ins with wrong passwords for 10 s (SECS=...), half for an
# existing account, half for unknown ones; the password throttle is set out of the
# way so that every request that gets a place is hashed. VmRSS and VmHWM come from
# /proc/<pid>/status each second, then 1, 5 and 30 s after the flood.
# B=... names another binary; ENVX="GLIBC_TUNABLES=..." adds to its environment;
# THROTTLE="" for a binary from before the per-address throttle (its keys unknown).
set -e
cd "$(dirname "$0")/../.."
B=${B:-target/release/tweestap}; CONNS=${CONNS:-64}; SECS=${SECS:-10}
THROTTLE=${THROTTLE-$'password_account_max_failures = 1000000\npassword_address_max_failures = 1000000'}
D=$(mktemp -d /tmp/tweestap-bench.XXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$D/config.toml" <<T
listen = "127.0.0.1:$PORT"
data_dir = "$D/data"
[lockout]
password_max_failures = 1000000
$(printf '%b' "$THROTTLE")
T
echo "violet harbour lantern 42" | TWEESTAP_LOG=warn $B --config "$D/config.toml" user add --email an@example.be --password-stdin >/dev/null
env TWEESTAP_LOG=error ${ENVX:-} $B --config "$D/config.toml" serve > "$D/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 docs/bench/password_flood.py 127.0.0.1 "$PORT" "$PID" "$CONNS" "$SECS"
