#!/usr/bin/env python3
"""Floods a tweestap with wrong passwords (docs/bench/password_flood.sh): N keep-alive
connections for T seconds. Prints the answers by status, their latency, and the
server's VmRSS/VmHWM sampled each second during the flood and 1, 5 and 30 s after."""
import asyncio, json, sys, time, collections, random

HOST, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
CONNS = int(sys.argv[4]) if len(sys.argv) > 4 else 64
SECS = float(sys.argv[5]) if len(sys.argv) > 5 else 10
counts = collections.Counter()
latencies = []

def mem():
    d = {}
    for line in open(f"/proc/{PID}/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "VmHWM", "Threads"):
            d[k] = v.strip()
    return d

async def worker(i, deadline):
    r = w = None
    while time.monotonic() < deadline:
        try:
            if w is None:
                r, w = await asyncio.open_connection(HOST, PORT)
            email = "an@example.be" if i % 2 == 0 else f"nobody{random.randrange(10**9)}@example.be"
            body = json.dumps({"email": email, "password": f"wrong {random.random()}"}).encode()
            w.write(b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            t0 = time.monotonic()
            await w.drain()
            head = await r.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
                if k.strip().lower() == b"connection" and v.strip().lower() == b"close":
                    close = True
            await r.readexactly(length)
            latencies.append(time.monotonic() - t0)
            counts[status] += 1
            if close:
                w.close(); w = None
        except Exception as e:
            counts[type(e).__name__] += 1
            if w is not None:
                w.close()
                w = None
            await asyncio.sleep(0.05)

async def main():
    print("idle before:", mem(), flush=True)
    deadline = time.monotonic() + SECS
    tasks = [asyncio.create_task(worker(i, deadline)) for i in range(CONNS)]
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        m = mem(); print("during:", m, flush=True)
    await asyncio.gather(*tasks)
    print("counts:", dict(counts))
    if latencies:
        latencies.sort()
        print("latency p50 %.3f s, p99 %.3f s, max %.3f s, %.1f req/s" % (
            latencies[len(latencies)//2], latencies[int(len(latencies)*0.99)], latencies[-1], len(latencies)/SECS))
    waited = 0
    for after in (1, 5, 30):
        await asyncio.sleep(after - waited)
        waited = after
        print(f"idle {after} s after:", mem(), flush=True)

asyncio.run(main())
