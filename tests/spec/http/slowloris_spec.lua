-- Slow and idle clients must not starve the server (security notes §3.6,
-- #62).  A separate process holds 1,000 connections open: idle ones, ones
-- trickling a request head a byte every 2 s, and idle keep-alive ones after
-- a request.  Meanwhile /v1/health and an authenticated booking from
-- another client must each answer within 1 s.
local H = require "http_env"
local socket = require "socket"

local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."
local ATTACKERS = 1000
local ANSWER_S_MAX = 1.0 * H.SLOW -- 1 s in the normal build

-- One request on a new connection with a deadline; returns the status (or
-- nil on a timeout) and the seconds it took.
local function timed(env, method, path, body, key)
  local t0 = socket.gettime()
  local c = socket.tcp()
  c:settimeout(ANSWER_S_MAX)
  if not c:connect("127.0.0.1", env.port) then return nil, socket.gettime() - t0 end
  local head = ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"):format(method, path)
  if key then head = head .. "Authorization: Bearer " .. key .. "\r\n" end
  if body then
    head = head .. ("Content-Type: application/json\r\nContent-Length: %d\r\n"):format(#body)
  end
  c:send(head .. "\r\n" .. (body or ""))
  -- The whole deadline covers connect, send and the status line.
  c:settimeout(math.max(0.001, ANSWER_S_MAX - (socket.gettime() - t0)))
  local line = c:receive("*l")
  c:close()
  return line and tonumber(line:match("^HTTP/1%.%d (%d%d%d)")), socket.gettime() - t0
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("slow and idle connections", function()
  local env, w, attacker_pid, ready

  setup(function()
    env = H.start { threads = false } -- the server's defaults are under test
    w = env:world()
    env:grant(w, 100, { start = "2026-01-01" })
    ready = env.dir .. "/ready"
    -- The attacker gets its own fd limit; `ulimit -n` may refuse to go
    -- above the hard limit, which is then what it gets.
    assert(os.execute(("sh -c 'ulimit -n 4096 2>/dev/null; exec lua5.4 %s/tests/helpers/"
      .. "slow_clients.lua %d %d %s 45' >%s/attacker.log 2>&1 & echo $! >%s/attacker.pid")
      :format(SOURCE, env.port, ATTACKERS, ready, env.dir, env.dir)))
    attacker_pid = tonumber(read_file(env.dir .. "/attacker.pid"))
    local deadline = socket.gettime() + 30
    while not read_file(ready) and socket.gettime() < deadline do socket.sleep(0.1) end
  end)

  teardown(function()
    if attacker_pid then os.execute("kill " .. attacker_pid .. " 2>/dev/null") end
    if env then env:stop() end
  end)

  it("opens every attacking connection", function()
    local opened = tonumber((read_file(ready) or ""):match("ready (%d+)"))
    assert.equal(ATTACKERS, opened, read_file(env.dir .. "/attacker.log"))
  end)

  it("answers health and a booking within 1 s, again and again", function()
    -- Over 12 s the slow connections send several bytes each and the
    -- server's header deadline recycles them; every answer stays fast.
    local slowest = 0
    for i = 1, 6 do
      local status, took = timed(env, "GET", "/v1/health")
      assert.equal(200, status, ("health #%d: no answer in %.2f s"):format(i, took))
      slowest = math.max(slowest, took)
      local start = ("2026-02-%02dT09:00:00Z"):format(i + 1)
      local body = H.encode {
        resource_id = w.room.id, user_id = w.user.id, start = start,
        ["end"] = start:gsub("T09", "T10"), payment_method = "credits" }
      status, took = timed(env, "POST", "/v1/bookings", body, env.key)
      assert.equal(201, status, ("booking #%d: no answer in %.2f s"):format(i, took))
      slowest = math.max(slowest, took)
      socket.sleep(2)
    end
    print(("slowest answer under %d slow connections: %.3f s"):format(ATTACKERS, slowest))
  end)

  it("closes a connection whose request head does not arrive in time", function()
    local c = assert(socket.connect("127.0.0.1", env.port))
    c:send("GET /v1/health HTTP/1.1\r\n")
    c:settimeout(15)
    local t0 = socket.gettime()
    local _, err = c:receive("*a")
    c:close()
    local took = socket.gettime() - t0
    assert.is_true(took < 12, ("still open after %.1f s (%s)"):format(took, tostring(err)))
  end)
end)
