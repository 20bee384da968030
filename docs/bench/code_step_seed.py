#!/usr/bin/env python3
"""Issue 19, the code step: N accounts with an authenticator app, each signed in
with its password, so that N half-signed-in sessions wait for their code. Prints
one `tweestap_session` cookie value a line (what docs/bench/code_step.lua reads).
Usage: code_step_seed.py HOST PORT N  (accounts bench-0@example.org ... must exist
with the password below; code_step.sh adds them).  Standard library only."""
import base64, hashlib, hmac, http.client, json, struct, sys, time
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "violet harbour lantern 42"
HOST, PORT, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def totp(secret, at):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 10**6)


def call(path, body, cookie=None):
    c = http.client.HTTPConnection(HOST, PORT, timeout=30)
    h = {"Content-Type": "application/json"}
    if cookie:
        h["Cookie"] = "tweestap_session=" + cookie
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    new = cookie
    for k, v in r.getheaders():
        if k.lower() == "set-cookie" and v.startswith("tweestap_session="):
            new = v.split(";")[0].split("=", 1)[1]
    return r.status, (json.loads(data) if data else {}), new


def seed(i):
    email = "bench-%d@example.org" % i
    login = {"email": email, "password": PASSWORD}
    st, body, cookie = call("/api/v1/login", login)
    if body.get("state") != "second_factor":
        # First time: set up the app (a signed-in or enrolment-only session).
        st, setup, _ = call("/api/v1/me/factors/totp", {"password": PASSWORD}, cookie)
        assert st == 200, (st, setup)
        # A step of its own for the confirming code (it cannot be used again).
        st, b, _ = call("/api/v1/me/factors/totp/%s/confirm" % setup["id"],
                        {"code": totp(setup["secret"], time.time())}, cookie)
        assert st == 200, (st, b)
        st, body, cookie = call("/api/v1/login", login)
    assert body.get("state") == "second_factor", (st, body)
    return cookie


with ThreadPoolExecutor(4) as ex:
    for c in ex.map(seed, range(N)):
        print(c)
