#!/bin/bash
# Issue 18, account enumeration by timing: N (300) wrong-password sign-ins for an
# address with an account and N for one without, in turn, one at a time, against
# the release build; prints the median and p90 of each and their differences.
# The throttles are set out of the way (every attempt is checked, as the first
# ten from one address are). DB=pg uses a fresh PostgreSQL database on
# 127.0.0.1:5432 (trust auth); otherwise SQLite in a temporary data directory.
# ENROLLED=1 (with DB=pg) gives the known account two factors and ten recovery
# codes first, written straight into the database, so the account read that
# comes before the hash returns their rows.
#   cargo build --release -p tweestap
#   docs/bench/telling_apart.sh; DB=pg docs/bench/telling_apart.sh
#   DB=pg ENROLLED=1 docs/bench/telling_apart.sh
set -e
cd "$(dirname "$0")/../.."
B=${B:-target/release/tweestap}; N=${N:-300}
D=$(mktemp -d /tmp/tweestap-apart.XXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DBURL=
if [ "${DB:-sqlite}" = pg ]; then
  NAME=tweestap_apart_$(basename "$D" | tr -dc 'a-z0-9' | tr 'A-Z' 'a-z')$$
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $NAME" postgres
  DBURL="postgres://postgres@127.0.0.1:5432/$NAME"
fi
cat > "$D/config.toml" <<T
listen = "127.0.0.1:$PORT"
data_dir = "$D/data"
${DBURL:+database_url = \"$DBURL\"}
[lockout]
password_max_failures = 1000000
password_account_max_failures = 1000000
password_address_max_failures = 1000000
T
echo 'violet harbour lantern 42' | TWEESTAP_LOG=warn $B --config "$D/config.toml" user add --email known@example.org --password-stdin >/dev/null
if [ -n "$ENROLLED" ] && [ -n "$NAME" ]; then
  psql -q -h 127.0.0.1 -U postgres "$NAME" <<'SQL'
INSERT INTO factors (id, account_id, kind, label, secret_sealed, created_at, confirmed_at)
SELECT gen_random_uuid(), id, k, 'bench', decode(repeat('ab', 60), 'hex'), now(), now()
FROM accounts, (VALUES ('totp'), ('sms')) AS kinds(k) WHERE email = 'known@example.org';
INSERT INTO recovery_codes (account_id, code_mac, created_at)
SELECT id, md5(n::text), now() FROM accounts, generate_series(1, 10) AS n
WHERE email = 'known@example.org';
SQL
fi
env TWEESTAP_LOG=error $B --config "$D/config.toml" serve > "$D/serve.log" 2>&1 &
PID=$!
cleanup() {
  kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true
  [ -n "$NAME" ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $NAME" postgres
  rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
[ -n "$ENROLLED" ] && [ -n "$NAME" ] && psql -Atq -h 127.0.0.1 -U postgres "$NAME" -c "SELECT (SELECT count(*) FROM factors) || ' factors, ' || (SELECT count(*) FROM recovery_codes) || ' recovery codes'"
python3 docs/bench/telling_apart.py 127.0.0.1 "$PORT" "$N" "${DB:-sqlite}"
