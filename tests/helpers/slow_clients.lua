-- A slowloris attacker, run as its own process by slowloris_spec.lua:
--
--   lua5.4 slow_clients.lua PORT COUNT READY_FILE SECONDS
--
-- Keeps COUNT connections to 127.0.0.1:PORT open for SECONDS, in three
-- kinds, one third each:
--   idle        connected, nothing sent;
--   slow        a request head trickled one byte every 2 s, never finished;
--   keep-alive  one complete request answered, then silent and kept open.
-- A connection the server closes is opened again at once, as an attacker
-- would.  READY_FILE receives "ready <open connections>" once all are open.
local socket = require "socket"

local port, count = tonumber(arg[1]), tonumber(arg[2])
local ready_file, seconds = arg[3], tonumber(arg[4])
local TRICKLE_S = 2
-- Header lines sent one byte at a time; the blank line never comes.
local SLOW_HEAD = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Padding: slow\r\n"

local conns = {}

local function open(kind)
  local c = socket.tcp()
  c:settimeout(2)
  if not c:connect("127.0.0.1", port) then
    c:close()
    return nil
  end
  local conn = { sock = c, kind = kind, sent = 0, next_s = socket.gettime() }
  if kind == "keepalive" then
    c:send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    -- Read the whole answer (headers and the small JSON body) before going
    -- silent, so the server waits for a next request that never comes.
    local len
    repeat
      local line = c:receive("*l")
      if not line then c:close() return nil end
      len = len or tonumber(line:lower():match("^content%-length:%s*(%d+)"))
    until line == ""
    if len and len > 0 and not c:receive(len) then c:close() return nil end
  end
  c:settimeout(0)
  return conn
end

local function kind_of(i)
  return ({ "idle", "slow", "keepalive" })[i % 3 + 1]
end

-- True while the server keeps the connection open.
local function still_open(conn)
  local _, err = conn.sock:receive(1)
  return err == "timeout"
end

local function step(conn, now)
  if conn.kind == "slow" and now >= conn.next_s then
    local i = conn.sent % #SLOW_HEAD + 1
    local ok = conn.sock:send(SLOW_HEAD:sub(i, i))
    conn.sent = conn.sent + 1
    conn.next_s = now + TRICKLE_S
    return ok ~= nil
  end
  return still_open(conn)
end

for i = 1, count do
  conns[i] = open(kind_of(i)) or false
end
local opened = 0
for i = 1, count do if conns[i] then opened = opened + 1 end end
local f = assert(io.open(ready_file, "w"))
f:write(("ready %d\n"):format(opened))
f:close()

local stop_s = socket.gettime() + seconds
while socket.gettime() < stop_s do
  local now = socket.gettime()
  for i = 1, count do
    local conn = conns[i]
    if not conn or not step(conn, now) then
      if conn then conn.sock:close() end
      conns[i] = open(kind_of(i)) or false
    end
  end
  socket.sleep(0.2)
end
