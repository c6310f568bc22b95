-- The kill -9 test of scripts/chaos.sh (PRODUCT.md §10, invariants 3 and 4):
-- cycles of "start allotd, book from several clients at once, kill -9 the
-- server at a random moment".  After each restart every request that was
-- in flight (sent, no answer) is sent again with its Idempotency-Key.  At
-- the end every acknowledged booking must be in the database exactly once,
-- no booking may exist that was not acknowledged, and `allot verify` must
-- pass.
--   lua5.4 chaos.lua BUILD_DIR SOURCE_DIR CYCLES WORKERS SEED
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson.safe"

local BUILD, SOURCE = arg[1], arg[2]
local CYCLES, WORKERS, SEED = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local SLOTS_PER_WORKER = 100 -- per cycle; each slot is a distinct half hour
math.randomseed(SEED)

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local dir = run("mktemp -d /tmp/allot-chaos.XXXXXX"):gsub("%s+$", "")
local db = dir .. "/chaos.db"
local key = run(("%s/allot keys create --create --db %s --role super_admin --policies %s/policies")
  :format(BUILD, db, SOURCE)):match("(allot_%S+)%s*$")
assert(key, "allot keys create failed")
local probe = assert(socket.bind("127.0.0.1", 0))
local _, port = probe:getsockname()
probe:close()
local url = "http://127.0.0.1:" .. port
local server_pid

local function request(method, path, body, idem)
  local out = {}
  local headers = { authorization = "Bearer " .. key }
  if body then
    headers["content-type"] = "application/json"
    headers["content-length"] = #body
  end
  if idem then headers["idempotency-key"] = idem end
  local ok, status = http.request {
    url = url .. path, method = method, headers = headers, sink = ltn12.sink.table(out),
    source = body and ltn12.source.string(body) or nil,
  }
  assert(ok, "request failed: " .. tostring(status))
  return status, cjson.decode(table.concat(out)), table.concat(out)
end

local function must(want, method, path, body, idem)
  local status, res, text = request(method, path, body, idem)
  assert(status == want, ("%s %s: %s %s"):format(method, path, tostring(status), text))
  return res
end

local function start_server()
  local log = dir .. "/allotd.log"
  assert(sh(("%s/allotd --db %s --listen 127.0.0.1:%d --policies %s/policies --threads 32 "
    .. "--fake-clock --now 2026-01-01T00:00:00Z >>%s 2>&1 & echo $! > %s/pid")
    :format(BUILD, db, port, SOURCE, log, dir)))
  server_pid = tonumber(slurp(dir .. "/pid"))
  local deadline = socket.gettime() + 30
  while socket.gettime() < deadline do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      local ok, status = pcall(request, "GET", "/v1/health")
      if ok and status == 200 then return end
    end
    socket.sleep(0.01)
  end
  error("allotd did not start: " .. (slurp(log) or ""))
end

local function body_of(w, slot)
  local base = os.time { year = 2026, month = 2, day = 1, hour = 0 }
  local s = base + slot * 1800
  return ('{"resource_id":"%s","user_id":"%s","start":"%s","end":"%s",'
    .. '"payment_method":"credits"}'):format(w.room, w.user, os.date("!%Y-%m-%dT%H:%M:%SZ", s),
                                             os.date("!%Y-%m-%dT%H:%M:%SZ", s + 1800))
end

-- ---------- the portfolio ----------
local t0 = socket.gettime()
start_server()
local b = must(201, "POST", "/v1/buildings", '{"name":"HQ","timezone":"UTC","currency":"EUR",'
  .. '"payment":{"credits":true,"invoice":true,"card":true}}')
local t = must(201, "POST", "/v1/tenants", ('{"name":"Acme","building_ids":["%s"],'
  .. '"cross_building":false}'):format(b.id))
local u = must(201, "POST", "/v1/users", ('{"tenant_id":"%s","name":"Ada",'
  .. '"email":"ada@example.com","roles":[]}'):format(t.id))
local r = must(201, "POST", "/v1/resources", ('{"building_id":"%s","name":"Room",'
  .. '"kind":"meeting_room","tags":[],"credit_only":false,"pricing":{"money":null,'
  .. '"credits":{"unit":"hour","model":"fixed","per_hour":1,"increment_minutes":30}}}')
  :format(b.id))
must(201, "POST", "/v1/allocations", ('{"tenant_id":"%s","building_ids":["%s"],'
  .. '"description":"chaos","unit":"hour","lines":[{"scope":"all","amount":1000000}],'
  .. '"targeting":{"type":"all"},"pool":"shared","schedule":{"start":"2026-01-01",'
  .. '"recurrence":"none"}}'):format(t.id, b.id))
local world = { room = r.id, user = u.id }

-- ---------- the cycles ----------
local acked = {}    -- idempotency key -> booking id
local pending = {}  -- key -> slot: sent, never answered
local resent, acked_count, next_slot = 0, 0, 0

local function resend_pending()
  for idem, slot in pairs(pending) do
    local res = must(201, "POST", "/v1/bookings", body_of(world, slot), idem)
    assert(acked[idem] == nil)
    acked[idem] = res.id
    acked_count = acked_count + 1
    resent = resent + 1
  end
  pending = {}
end

local function read_log(path)
  local sent = {}
  for line in (slurp(path) or ""):gmatch("[^\n]+") do
    local kind, idem, rest = line:match("^(%u) (%S+) (%S+)$")
    if kind == "S" then
      sent[idem] = tonumber(rest)
    elseif kind == "A" then
      assert(rest:match("^bkg_%d+$"), "bad answer line: " .. line)
      acked[idem] = rest
      acked_count = acked_count + 1
      sent[idem] = nil
    elseif kind == "E" then
      error("a booking was refused with " .. rest .. " (" .. idem .. ")")
    end
  end
  for idem, slot in pairs(sent) do pending[idem] = slot end
end

for cycle = 1, CYCLES do
  if cycle > 1 then start_server() end
  resend_pending()
  local pids, logs = {}, {}
  for w = 1, WORKERS do
    local log = ("%s/c%d-w%d.log"):format(dir, cycle, w)
    logs[w] = log
    local first = next_slot + (w - 1) * SLOTS_PER_WORKER
    sh(("lua5.4 %s/scripts/chaos/worker.lua %s %s %s %s %d %d %s c%dw%d >/dev/null 2>&1 & "
      .. "echo $! > %s/wpid"):format(SOURCE, url, key, world.room, world.user, first,
                                     SLOTS_PER_WORKER, log, cycle, w, dir))
    pids[w] = tonumber(slurp(dir .. "/wpid"))
  end
  next_slot = next_slot + WORKERS * SLOTS_PER_WORKER
  socket.sleep(0.05 + math.random() * 0.35)
  sh("kill -9 " .. server_pid)
  sh(("while kill -0 %d 2>/dev/null; do sleep 0.01; done"):format(server_pid))
  for w = 1, WORKERS do sh(("kill -9 %d 2>/dev/null; wait"):format(pids[w])) end
  socket.sleep(0.02)
  for w = 1, WORKERS do read_log(logs[w]) end
  if cycle % 50 == 0 then
    io.stderr:write(("chaos: %d cycles, %d bookings acknowledged\n"):format(cycle, acked_count))
  end
end

-- ---------- the check ----------
start_server()
resend_pending()
local seen, listed, cursor = {}, 0, nil
repeat
  local page = must(200, "GET", "/v1/bookings?limit=500" .. (cursor and ("&cursor=" .. cursor)
                                                              or ""))
  for _, bk in ipairs(page.data) do
    assert(not seen[bk.id], "booking listed twice: " .. bk.id)
    seen[bk.id] = true
    listed = listed + 1
  end
  cursor = page.next_cursor ~= cjson.null and page.next_cursor or nil
until not cursor
local lost, ids = 0, {}
for idem, id in pairs(acked) do
  if not seen[id] then lost = lost + 1 end
  assert(not ids[id], "two keys acknowledged the same booking " .. id)
  ids[id] = idem
end
sh(("kill -TERM %d; while kill -0 %d 2>/dev/null; do sleep 0.05; done"):format(server_pid,
                                                                               server_pid))
local verify = run(("%s/allot verify --db %s 2>&1; echo \"exit=$?\""):format(BUILD, db))
local verified = verify:find("exit=0", 1, true) ~= nil
print(("chaos: %d cycles of kill -9, %d workers: %d bookings acknowledged (%d of them "
  .. "re-sent after a restart), %d in the database, %d lost, %d unacknowledged extra; "
  .. "allot verify %s; %.0f s"):format(CYCLES, WORKERS, acked_count, resent, listed, lost,
                                       listed - acked_count, verified and "passed" or "FAILED",
                                       socket.gettime() - t0))
if lost ~= 0 or listed ~= acked_count or not verified then
  print(verify)
  print("kept " .. dir)
  os.exit(1)
end
sh("rm -rf " .. dir)
