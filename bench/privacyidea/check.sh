#!/usr/bin/env bash
# Prove a privacyIDEA started by setup.sh checks codes: check.sh <out.json> [index]
# A wrong code must be refused, the current TOTP accepted, and the same code
# refused when replayed. Exits non-zero otherwise.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <out.json> [token index]" >&2; exit 2; }
exec python3 - "$1" "${2:-0}" <<'PY'
import base64, hashlib, hmac, json, struct, sys, time, urllib.parse, urllib.request

out = json.load(open(sys.argv[1]))
tok = out["tokens"][int(sys.argv[2])]

def totp(secret_b32, step):
    digest = hmac.new(base64.b32decode(secret_b32), struct.pack(">Q", step), hashlib.sha1).digest()
    off = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)

def check(code):
    body = urllib.parse.urlencode({"user": tok["user"], "realm": tok["realm"], "pass": code}).encode()
    with urllib.request.urlopen(out["url"] + "/validate/check", body, timeout=10) as r:
        d = json.load(r)
    return d["result"]["value"], d.get("detail", {}).get("message")

step = int(time.time()) // 30
code = totp(tok["secret_base32"], step)
# Wrong: a code no step of the window (about +-3 minutes) produces.
window = {totp(tok["secret_base32"], step + k) for k in range(-8, 9)}
wrong = next("%06d" % ((int(code) + k) % 1000000) for k in range(1, 100)
             if "%06d" % ((int(code) + k) % 1000000) not in window)
results = [("wrong", check(wrong), False), ("right", check(code), True), ("replayed", check(code), False)]
ok = True
for name, (value, msg), want in results:
    print(f"{tok['user']}@{tok['realm']} {name:8} code: value={value} ({msg})")
    ok &= value is want
sys.exit(0 if ok else 1)
PY
