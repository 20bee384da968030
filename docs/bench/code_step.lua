-- Issue 19, the code step: POST /api/v1/login/second-factor with a wrong code,
-- rotating over the half-signed-in sessions listed one a line in $SESSIONS (see
-- docs/bench/code_step.sh), so that every request runs the whole check: session,
-- account and factors read, one attempt taken (atomically), the TOTP compared, the
-- failure recorded durably (the attempt and its audit row). Answers are 401
-- invalid_code while the lock-out is set out of the way (code_step.sh does).
--   SESSIONS=/tmp/sessions wrk -t2 -c4 -d10s --latency -s docs/bench/code_step.lua \
--     http://127.0.0.1:18181/api/v1/login/second-factor
local sessions = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do
  if #line > 0 then sessions[#sessions + 1] = line end
end
local n = 0

function setup(thread)
  -- Each wrk thread starts at another place in the list.
  n = n + 1
  thread:set("start", n * 97)
end

function init(args)
  n = start or 0
end

function request()
  n = n + 1
  local s = sessions[(n % #sessions) + 1]
  -- Never a real code: six digits that vary, with a letter-free shape like one.
  local code = string.format("%06d", (n * 7919) % 1000000)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Cookie"] = "tweestap_session=" .. s,
  }, '{"method":"totp","code":"' .. code .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format("responses: %d, of which non-2xx/3xx: %d (401 expected)\n",
    summary.requests, summary.errors.status))
end
