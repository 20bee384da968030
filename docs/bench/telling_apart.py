"""Times wrong-password sign-ins for a known and an unknown address, in turn (see
telling_apart.sh): median and p90 of each, in milliseconds, and their differences."""
import http.client
import json
import statistics
import sys
import time

host, port, n, db = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection(host, port)


def sign_in(email):
    body = json.dumps({"email": email, "password": "wrong horse battery"})
    start = time.perf_counter()
    conn.request("POST", "/api/v1/login", body, {"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    took = (time.perf_counter() - start) * 1000
    assert r.status == 401, r.status
    return took


def p90(v):
    return sorted(v)[int(len(v) * 0.9)]


for email in ["known@example.org", "nobody@example.org"] * 10:  # warm up
    sign_in(email)
known, unknown = [], []
for i in range(n):
    # Which goes first alternates, so neither always follows the other.
    pair = [("known@example.org", known), ("nobody@example.org", unknown)]
    for email, into in pair if i % 2 == 0 else pair[::-1]:
        into.append(sign_in(email))
mk, mu = statistics.median(known), statistics.median(unknown)
pk, pu = p90(known), p90(unknown)
print(f"{db}, {n} each: known median {mk:.2f} ms, p90 {pk:.2f}; unknown median {mu:.2f}, "
      f"p90 {pu:.2f}; known - unknown: median {mk - mu:+.2f} ms, p90 {pk - pu:+.2f} ms")
