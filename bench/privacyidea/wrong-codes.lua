-- wrk script: POST /validate/check with wrong codes, rotating over the users
-- setup.sh enrolled (u00000 .. u<N-1> in realm bench), so each request does
-- the full check and writes its failure and audit rows.
--   wrk -t2 -c4 -d10s -s wrong-codes.lua http://127.0.0.1:P -- N
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local n, i = 200, 0
function init(args)
  n = tonumber(args[1] or "200")
  local id = tonumber(wrk.thread:get("id") or "0")
  -- Threads start far apart, so two requests for one user rarely overlap.
  i = id * 997
  math.randomseed(os.time() + id * 7919)
end
function request()
  local user = i % n
  i = i + 1
  -- A random 6-digit code: wrong except by a tiny chance (the default window
  -- accepts about 13 of a million codes), which does not move the rate.
  local body = string.format("user=u%05d&realm=bench&pass=%06d", user, math.random(0, 999999))
  return wrk.format("POST", "/validate/check",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
