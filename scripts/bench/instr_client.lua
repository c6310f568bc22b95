-- The client of instr.sh: sends quotes or bookings over one keep-alive
-- connection and checks every answer (status and body shape).  Any bad
-- answer prints it and exits 1, so instr.sh never divides a count of
-- refusals.  Usage:
--   lua5.4 instr_client.lua PORT KEY quotes|bookings COUNT FIRST_SLOT [FIRST_USER]
--   lua5.4 instr_client.lua PORT KEY setup TENANTS USERS ROOMS
-- Needs env ROOMS (comma-separated resource ids) and USER_IDS
-- (comma-separated user ids; or USER_ID, one user).  Request i (from 1)
-- goes to room FIRST_USER + i of the list and user FIRST_USER + i (both
-- round-robin on one counter, as bench_http.sh's booking.lua deals them:
-- with 100 rooms and 1,000 users, each user always books the same room).  Bookings take distinct
-- half-hour slots numbered from FIRST_SLOT, paid with credits.
--
-- setup (instr.sh's mix mode) builds what bench_http.sh --tenants/--users
-- builds: one building, TENANTS tenants each with its own monthly credit
-- allocation (so its own lot), USERS users dealt round-robin over the
-- tenants, ROOMS resources priced in money and credits; every creation is
-- checked, and it prints ROOMS=... and USER_IDS=... lines.
local socket = require("socket")

local port, key, kind = tonumber(arg[1]), arg[2], arg[3]
local count, first = tonumber(arg[4]), tonumber(arg[5] or "0")
local first_user = tonumber(arg[6] or "0")
local rooms, users = {}, {}
for id in (os.getenv("ROOMS") or ""):gmatch("[^,]+") do rooms[#rooms + 1] = id end
for id in (os.getenv("USER_IDS") or os.getenv("USER_ID") or ""):gmatch("[^,]+") do
  users[#users + 1] = id
end
assert(port and key and count and (kind == "setup" or (#rooms > 0 and #users > 0)),
  "usage: see the header")

local conn, reconnects = nil, 0
local function connect()
  conn = assert(socket.connect("127.0.0.1", port))
  conn:setoption("tcp-nodelay", true)
  conn:settimeout(600) -- a server under callgrind is ~50x slower
end
connect()

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

-- One request; returns the status and the body.  A connection the server
-- closed while idle (its 2 s keep-alive wait, which a loaded machine can
-- outlast between two requests) is opened again and the request sent on
-- it: nothing of it had reached the server, so nothing is done twice (a
-- booking done twice would answer 409 and fail the run anyway).
local function send(path, body)
  local req = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
    .. "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
    :format(path, key, #body, body)
  conn:send(req)
  local line, why = conn:receive("*l")
  if not line and why == "closed" then
    reconnects = reconnects + 1
    conn:close()
    connect()
    conn:send(req)
    line, why = conn:receive("*l")
  end
  assert(line, why)
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

-- setup: one creation, checked; returns the new id.
local function create(path, body, prefix)
  local status, answer = send(path, body)
  local id = answer:match('"id":"(' .. prefix .. '_%d+)"')
  if status ~= 201 or not id then
    io.stderr:write(("instr: setup %s answered %s: %s\n"):format(path, tostring(status),
      answer:sub(1, 300)))
    os.exit(1)
  end
  return id
end

if kind == "setup" then
  local ntenants, nusers, nrooms = count, first, first_user
  assert(ntenants >= 1 and nusers >= ntenants and nrooms >= 1, "setup TENANTS USERS ROOMS")
  local b = create("/v1/buildings", '{"name":"Mix","timezone":"UTC","currency":"USD"}', "bld")
  local tenants = {}
  for t = 1, ntenants do
    tenants[t] = create("/v1/tenants", ('{"name":"T%d","building_ids":["%s"]}'):format(t, b), "ten")
    create("/v1/allocations", ('{"tenant_id":"%s","building_ids":["%s"],"unit":"hour",'
      .. '"lines":[{"scope":"all","amount":1000000000}],"schedule":{"start":"2027-01-01"}}')
      :format(tenants[t], b), "alc")
  end
  local ids = {}
  for u = 1, nusers do
    ids[u] = create("/v1/users", ('{"tenant_id":"%s","name":"U%d","email":"u%d@x.io"}')
      :format(tenants[(u - 1) % ntenants + 1], u, u), "usr")
  end
  local rids = {}
  for r = 1, nrooms do
    rids[r] = create("/v1/resources", ('{"building_id":"%s","name":"R%d","pricing":'
      .. '{"money":{"per_hour":5000},"credits":{"per_hour":1,"increment_minutes":30}}}')
      :format(b, r), "res")
  end
  print("ROOMS=" .. table.concat(rids, ","))
  print("USER_IDS=" .. table.concat(ids, ","))
  conn:close()
  os.exit(0)
end

-- 2027-01-01 plus FIRST_SLOT half hours: every run of the script books
-- slots no earlier run took.
local base = 1798761600
for i = 1, count do
  local room = rooms[(first_user + i - 1) % #rooms + 1]
  local user = users[(first_user + i - 1) % #users + 1]
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
if reconnects > 0 then
  -- Each costs the server a new connection inside the measured phase.
  io.stderr:write(("instr: %s: %d connections closed by the server while idle, opened again\n")
    :format(kind, reconnects))
end
print(("checked %d %s"):format(count, kind))
