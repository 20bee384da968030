#!/bin/bash
# Issue 19, pages and API reads: req/s of the signed-in reads against GET /healthz in
# the same round, for one or more binaries side by side (before/after in the same
# minutes), on SQLite or PostgreSQL.
#   docs/bench/reads.sh sqlite   BIN [BIN...]
#   docs/bench/reads.sh postgres BIN [BIN...]   (PostgreSQL at 127.0.0.1:5432, trust)
# Prints one line per round, binary and request: req/s and the ratio to /healthz.
set -e
BACKEND=$1; shift
P=18193; ROUNDS=${ROUNDS:-3}; DUR=${DUR:-4s}
for round in $(seq 1 $ROUNDS); do
  for B in "$@"; do
    D=$(mktemp -d /tmp/tweestap-reads.XXXX)
    unset TWEESTAP_DATABASE_URL
    if [ "$BACKEND" = postgres ]; then
      DB=tweestap_reads_$$_${round}_$RANDOM
      psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB" >/dev/null
      export TWEESTAP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
    fi
    echo "violet harbour lantern 42" | $B --data-dir $D user add --email bench@example.org --password-stdin >/dev/null
    OUT=$($B --data-dir $D client add --name Bench --redirect-uri http://127.0.0.1:9/cb)
    CID=$(echo "$OUT" | awk '/client_id:/{print $2}'); CSEC=$(echo "$OUT" | awk '/client_secret:/{print $2}')
    TWEESTAP_LOG=warn $B --data-dir $D serve --listen 127.0.0.1:$P & SRV=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$P/healthz >/dev/null && break; sleep 0.05; done
    curl -s -c $D/jar -H 'Content-Type: application/json' \
      -d '{"email":"bench@example.org","password":"violet harbour lantern 42"}' http://127.0.0.1:$P/api/v1/login >/dev/null
    SID=$(grep tweestap_session $D/jar | awk '{print $7}')
    LOC=$(curl -s -o /dev/null -w '%{redirect_url}' -b $D/jar \
      "http://127.0.0.1:$P/oidc/authorize?response_type=code&client_id=$CID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid%20email&state=s&nonce=n")
    CODE=$(echo "$LOC" | sed -E 's/.*[?&]code=([^&]+).*/\1/')
    ACCESS=$(curl -s -u "$CID:$CSEC" -d grant_type=authorization_code -d "code=$CODE" \
      -d redirect_uri=http://127.0.0.1:9/cb http://127.0.0.1:$P/oidc/token | jq -r .access_token)
    for what in healthz login account me auth userinfo; do
      case $what in
        healthz) args=(http://127.0.0.1:$P/healthz);;
        login) args=(http://127.0.0.1:$P/login);;
        account) args=(-H "Cookie: tweestap_session=$SID" http://127.0.0.1:$P/account);;
        me) args=(-H "Cookie: tweestap_session=$SID" http://127.0.0.1:$P/api/v1/me);;
        auth) args=(-H "Cookie: tweestap_session=$SID" http://127.0.0.1:$P/auth/request);;
        userinfo) args=(-H "Authorization: Bearer $ACCESS" http://127.0.0.1:$P/oidc/userinfo);;
      esac
      out=$(wrk -t2 -c32 -d$DUR --latency "${args[@]}")
      r=$(echo "$out" | awk '/Requests\/sec/{print $2}')
      p99=$(echo "$out" | awk '$1=="99%"{print $2}')
      non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
      [ "$what" = healthz ] && base=$r
      printf '%s round=%s bin=%s %-8s %10s req/s ratio=%.3f p99=%s non2xx=%s\n' "$BACKEND" "$round" "$B" "$what" "$r" \
        "$(echo "$r / $base" | bc -l)" "$p99" "${non2xx:-0}"
    done
    kill $SRV; wait $SRV 2>/dev/null || true
    [ "$BACKEND" = postgres ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $DB" >/dev/null
    rm -rf $D
  done
done
