#!/bin/bash
# Issue 14 figures: userinfo and introspection (with the session-liveness check) vs JWKS, SQLite.
set -e
cd "$(dirname "$0")/../.."
B=target/release/tweestap; D=$(mktemp -d /tmp/tweestap-bench.XXXX); P=18191
echo "violet harbour lantern 42" | $B --data-dir $D user add --email bench@example.org --password-stdin >/dev/null
OUT=$($B --data-dir $D client add --name Bench --redirect-uri http://127.0.0.1:9/cb)
CID=$(echo "$OUT" | awk '/client_id:/{print $2}'); CSEC=$(echo "$OUT" | awk '/client_secret:/{print $2}')
TWEESTAP_LOG=warn $B --data-dir $D serve --listen 127.0.0.1:$P & SRV=$!
sleep 1.5
curl -s -c $D/jar -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.org","password":"violet harbour lantern 42"}' http://127.0.0.1:$P/api/v1/login >/dev/null
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' -b $D/jar \
  "http://127.0.0.1:$P/oidc/authorize?response_type=code&client_id=$CID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid%20email&state=s&nonce=n")
CODE=$(echo "$LOC" | sed -E 's/.*[?&]code=([^&]+).*/\1/')
ACCESS=$(curl -s -u "$CID:$CSEC" -d grant_type=authorization_code -d "code=$CODE" \
  -d redirect_uri=http://127.0.0.1:9/cb http://127.0.0.1:$P/oidc/token | jq -r .access_token)
curl -s -H "Authorization: Bearer $ACCESS" http://127.0.0.1:$P/oidc/userinfo; echo
curl -s -u "$CID:$CSEC" -d "token=$ACCESS" http://127.0.0.1:$P/oidc/introspect; echo
BASIC=$(printf '%s:%s' "$CID" "$CSEC" | base64 -w0)
cat > $D/introspect.lua <<LUA
wrk.method = "POST"
wrk.body = "token=$ACCESS"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
for i in 1 2 3; do
  for what in jwks userinfo introspect; do
    case $what in
      jwks) r=$(wrk -t2 -c32 -d5s http://127.0.0.1:$P/oidc/jwks | awk '/Requests\/sec/{print $2}');;
      userinfo) r=$(wrk -t2 -c32 -d5s -H "Authorization: Bearer $ACCESS" http://127.0.0.1:$P/oidc/userinfo | awk '/Requests\/sec/{print $2}');;
      introspect) r=$(wrk -t2 -c32 -d5s -s $D/introspect.lua http://127.0.0.1:$P/oidc/introspect | awk '/Requests\/sec/{print $2}');;
    esac
    echo "run $i $what $r"
  done
done
kill $SRV
