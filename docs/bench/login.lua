-- wrk script: POST /api/v1/login with a wrong password, so every request runs one
-- Argon2id verification. The e-mail can be changed with the BENCH_EMAIL variable.
-- Usage (from the repository root):
--   wrk -t2 -c32 -d10s --latency -s docs/bench/login.lua http://127.0.0.1:18181/api/v1/login
local email = os.getenv("BENCH_EMAIL") or "bench@example.org"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"' .. email .. '","password":"definitely-not-the-password"}'

function done(summary, latency, requests)
  -- A wrong password is answered 401, so every response counts as "non-2xx".
  io.write(string.format("responses: %d, of which non-2xx/3xx: %d\n",
    summary.requests, summary.errors.status))
end
