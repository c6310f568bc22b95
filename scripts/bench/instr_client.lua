-- The client of instr.sh: sends quotes or bookings over one keep-alive
-- connection and checks every answer (status and body shape).  Any bad
-- answer prints it and exits 1, so instr.sh never divides a count of
-- refusals.  Usage:
--   lua5.4 instr_client.lua PORT KEY quotes|bookings COUNT FIRST_SLOT
-- Needs env ROOMS (comma-separated resource ids) and USER_ID.  Bookings
-- take distinct half-hour slots numbered from FIRST_SLOT, paid with credits.
local socket = require("socket")

local port, key, kind = tonumber(arg[1]), arg[2], arg[3]
local count, first = tonumber(arg[4]), tonumber(arg[5] or "0")
local rooms = {}
for id in (os.getenv("ROOMS") or ""):gmatch("[^,]+") do rooms[#rooms + 1] = id end
local user = os.getenv("USER_ID")
assert(port and key and count and #rooms > 0 and user, "usage: see the header")

local conn = assert(socket.connect("127.0.0.1", port))
conn:setoption("tcp-nodelay", true)
conn:settimeout(600) -- a server under callgrind is ~50x slower

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

-- One request; returns the status and the body.
local function send(path, body)
  conn:send(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
    .. "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
    :format(path, key, #body, body))
  local line = assert(conn:receive("*l"))
  local status = tonumber(line:match("^HTTP/1%.1 (%d+)"))
  local len
  while true do
    local h = assert(conn:receive("*l"))
    if h == "" then break end
    local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then len = tonumber(n) end
  end
  assert(len, "no Content-Length")
  return status, assert(conn:receive(len))
end

-- 2027-01-01 plus FIRST_SLOT half hours: every run of the script books
-- slots no earlier run took.
local base = 1798761600
for i = 1, count do
  local room = rooms[(i - 1) % #rooms + 1]
  local status, body, want, shape
  if kind == "quotes" then
    want, shape = 200, '"payment_methods"'
    status, body = send("/v1/quotes", ('{"resource_id":"%s","user_id":"%s",'
      .. '"start":"2027-03-01T09:00:00Z","end":"2027-03-01T10:30:00Z"}'):format(room, user))
  else
    local s = base + (first + math.floor((i - 1) / #rooms)) * 1800
    want, shape = 201, '"id":"bkg_'
    status, body = send("/v1/bookings", ('{"resource_id":"%s","user_id":"%s","start":"%s",'
      .. '"end":"%s","payment_method":"credits"}'):format(room, user, iso(s), iso(s + 1800)))
  end
  if status ~= want or not body:find(shape, 1, true) then
    io.stderr:write(("instr: %s %d answered %s: %s\n"):format(kind, i, tostring(status),
      body:sub(1, 300)))
    os.exit(1)
  end
end
conn:close()
print(("checked %d %s"):format(count, kind))
