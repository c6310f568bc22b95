-- Spawns the real allotd on a free port with a fresh database and the fake
-- clock, and talks to it over real HTTP (luasocket + cjson).  Each spec file
-- starts one server in setup() and stops it in teardown().
--
--   local H = require "http_env"
--   local env = H.start()                    -- super_admin key in env.key
--   local status, body, headers = env:post("/v1/buildings", {...})
--   local t = env:as(other_key)              -- same server, another key
--   env:stop()
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson.safe"

local M = {}

M.null = cjson.null
M.NOW = "2026-01-01T00:00:00Z"
-- Time allowances multiply by this in the sanitizer build (its binaries
-- run 2-10 times slower on a loaded CI machine): a contract such as
-- "within a second" is checked at its word in the normal build, and the
-- sanitizer build checks the same paths for memory and undefined-behaviour
-- errors without failing for the instrumentation's own slowness.
M.SLOW = (os.getenv("ALLOT_ASAN_RUNTIME") or "") ~= "" and 5 or 1

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."

-- ---------- JSON encoding ----------
-- cjson cannot tell {} (an empty array) from {} (an empty object); M.array
-- marks a table as an array, and M.object as an object.
local ARRAY, OBJECT = {}, {}

function M.array(t) return setmetatable(t or {}, ARRAY) end
function M.object(t) return setmetatable(t or {}, OBJECT) end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == ARRAY then return true end
  if mt == OBJECT then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local encode

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r',
                    ['\t'] = '\\t' }
    return named[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

function encode(v)
  local t = type(v)
  if v == nil or v == cjson.null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) end
    for digits = 14, 17 do
      local s = string.format("%." .. digits .. "g", v)
      if tonumber(s) == v then return s end
    end
  end
  if t == "string" then return encode_string(v) end
  assert(t == "table", "cannot encode a " .. t)
  local parts = {}
  if is_array(v) then
    for i = 1, #v do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = encode_string(k) .. ":" .. encode(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
M.encode = encode

-- ---------- processes ----------

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

M.tmpdir = require("tmpdir").new

-- Creates a key with the command line tool (the key is alone on the last
-- line of its output).
function M.cli_key(db, role)
  local cmd = ("%s/allot keys create --db %s --create --role %s --policies %s/policies 2>&1")
    :format(BUILD, db, role, SOURCE)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local last
  for line in out:gmatch("[^\n]+") do last = line end
  assert(last and last:match("^allot_"), "allot keys create failed: " .. out)
  return last
end

local Client = {}
Client.__index = Client

-- Starts allotd; opts.args adds flags, opts.fake_clock = false drops the
-- fake clock, opts.now changes its start, opts.policies replaces the policy
-- directory.  opts.threads sets the worker count (default 128, enough for
-- every spec's concurrency and quick to start, under ASan too); false keeps
-- the server's own default (2,048, sized for slow clients).
-- With ALLOT_TEST_PG_URI set (postgresql://user@host:port/db of a throwaway
-- cluster, scripts/pg_cluster.sh), each server gets a fresh database of
-- that cluster instead of an SQLite file.
local PG_URI = os.getenv("ALLOT_TEST_PG_URI")
local pg_serial = 0
M.PG = PG_URI ~= nil and PG_URI ~= "" -- the servers run on PostgreSQL

function M.fresh_db(dir)
  if not PG_URI or PG_URI == "" then return dir .. "/a.db" end
  pg_serial = pg_serial + 1
  local name = ("t%d_%d_%d"):format(os.time(), math.random(1, 1e9), pg_serial)
  assert(sh(("psql -q -X '%s' -c 'CREATE DATABASE %s' >/dev/null"):format(PG_URI, name)),
         "cannot create database " .. name)
  return (PG_URI:gsub("/[^/]*$", "/" .. name))
end

function M.start(opts)
  opts = opts or {}
  local dir = M.tmpdir()
  -- opts.db (and opts.key) start a second server on an existing database.
  local db = opts.db or M.fresh_db(dir)
  local key = opts.key or M.cli_key(db, "super_admin")
  local port = opts.port or free_port()
  local flags = { "--db", db, "--listen", "127.0.0.1:" .. port, "--policies",
                  opts.policies or (SOURCE .. "/policies"), "--web", SOURCE .. "/web" }
  if opts.fake_clock ~= false then
    flags[#flags + 1] = "--fake-clock"
    flags[#flags + 1] = "--now"
    flags[#flags + 1] = opts.now or M.NOW
  end
  if opts.threads ~= false then
    flags[#flags + 1] = "--threads"
    flags[#flags + 1] = tostring(opts.threads or 128)
  end
  for _, a in ipairs(opts.args or {}) do flags[#flags + 1] = a end
  local log = dir .. "/allotd.log"
  assert(sh(("%s/allotd %s > %s 2>&1 & echo $! > %s/pid"):format(
    BUILD, table.concat(flags, " "), log, dir)))
  local env = setmetatable({
    dir = dir, db = db, key = key, port = port, log = log,
    url = "http://127.0.0.1:" .. port,
    pid = assert(tonumber(read_file(dir .. "/pid"))),
  }, Client)
  env.env = env
  -- 2,048 workers under ASan on a busy machine take several seconds.
  local deadline = socket.gettime() + 30
  while socket.gettime() < deadline and M.alive(env.pid) do
    if (read_file(log) or ""):find("listening on", 1, true) then
      local status = env:get("/v1/health")
      if status == 200 then return env end
    end
    socket.sleep(0.02)
  end
  -- Read the log before stop() removes it with the directory.
  local why = read_file(log) or ""
  env:stop()
  error("allotd did not start: " .. why)
end

function M.alive(pid)
  return sh(("kill -0 %d 2>/dev/null"):format(pid))
end

-- Stops the server (SIGTERM, then waits; SIGKILL after 15 s) and returns
-- whether it exited by itself.  The bound is generous on purpose: specs
-- check that allotd stops by itself (requests in flight, the writer's
-- last batch, closing the store), and on a machine loaded by other test
-- processes a stop has been seen to miss a 5 s bound once and pass on
-- re-run.
function Client:stop()
  local env = self.env
  if not env.pid then return true end
  sh(("kill -TERM %d 2>/dev/null"):format(env.pid))
  local deadline = socket.gettime() + 15
  while socket.gettime() < deadline do
    if not M.alive(env.pid) then
      env.pid = nil
      -- ALLOT_TEST_LOG_DIR keeps each server's log (debugging a backend).
      local keep = os.getenv("ALLOT_TEST_LOG_DIR")
      if keep and keep ~= "" then
        sh(("mkdir -p %s && cp %s %s/allotd-%d.log"):format(keep, env.log, keep, env.port))
      end
      sh("rm -rf " .. env.dir)
      return true
    end
    socket.sleep(0.02)
  end
  sh(("kill -KILL %d 2>/dev/null"):format(env.pid))
  env.pid = nil
  return false
end

function Client:server_log()
  return read_file(self.env.log) or ""
end

-- A client of the same server acting with another key (false: no key).
function Client:as(key)
  return setmetatable({ env = self.env, key = key, url = self.url }, Client)
end

-- One request.  body: a table (sent as JSON), a string (sent as is) or nil.
-- headers: extra headers; Authorization = false sends none.  Returns the
-- status, the decoded JSON body (or the raw text), the response headers
-- (lower-case names) and the raw text.
function Client:request(method, path, body, headers)
  local h = {}
  for k, v in pairs(headers or {}) do h[k:lower()] = v end
  if h.authorization == nil and self.key then
    h.authorization = "Bearer " .. self.key
  elseif h.authorization == false then
    h.authorization = nil
  end
  local source
  if body ~= nil then
    local text = type(body) == "string" and body or encode(body)
    if h["content-type"] == nil then h["content-type"] = "application/json" end
    if h["content-type"] == false then h["content-type"] = nil end
    h["content-length"] = tostring(#text)
    source = ltn12.source.string(text)
  end
  local out = {}
  local ok, status, rh = http.request {
    url = self.url .. path, method = method, headers = h, source = source,
    sink = ltn12.sink.table(out),
  }
  assert(ok, "request failed: " .. tostring(status))
  local text = table.concat(out)
  local decoded = cjson.decode(text)
  return status, decoded == nil and text or decoded, rh or {}, text
end

function Client:get(path, headers) return self:request("GET", path, nil, headers) end
function Client:post(path, body, headers) return self:request("POST", path, body or {}, headers) end
function Client:patch(path, body, headers) return self:request("PATCH", path, body, headers) end
function Client:put(path, body, headers) return self:request("PUT", path, body, headers) end
function Client:delete(path, headers) return self:request("DELETE", path, nil, headers) end

-- Like request, but the status must be `want`; returns the body.
function Client:must(want, method, path, body, headers)
  local status, res, rh, text = self:request(method, path, body, headers)
  if status ~= want then
    error(("%s %s: expected %d, got %s: %s"):format(method, path, want, tostring(status),
                                                    text), 2)
  end
  return res, rh
end

-- Sends raw bytes on a new connection and reads what comes back until the
-- server closes or `timeout` seconds pass.  Returns the response text and
-- whether the server closed the connection.
function Client:raw(bytes, timeout)
  local c = assert(socket.connect("127.0.0.1", self.env.port))
  c:settimeout(timeout or 2)
  -- The server may answer and close before it has all the bytes (a 413):
  -- the send then fails, but the answer is still there to read.
  c:send(bytes)
  local parts, closed = {}, false
  while true do
    local data, rerr, partial = c:receive(4096)
    if data then parts[#parts + 1] = data end
    if partial and #partial > 0 then parts[#parts + 1] = partial end
    if rerr == "closed" or (rerr and rerr:find("reset")) then closed = true break end
    if rerr then break end
  end
  c:close()
  return table.concat(parts), closed
end

-- Sets the fake clock.
function Client:clock(now)
  return self:must(200, "PUT", "/v1/clock", { now = now })
end

-- A copy of the shipped policies with `files` ({["buildings/bld_1/pricing.lua"]
-- = source, ...}) added; returns its directory.
function M.policies(files)
  local dir = M.tmpdir()
  assert(sh(("cp -r %s/policies/. %s/"):format(SOURCE, dir)))
  for name, text in pairs(files) do
    assert(sh(("mkdir -p %s/%s"):format(dir, name:match("^(.*)/") or ".")))
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

-- ---------- a small portfolio ----------

-- A building (all payment methods on), a tenant leasing it, a user, and a
-- room at 1 hour credit per hour (30-minute increments) and 7000/h.
function Client:world(opts)
  opts = opts or {}
  local b = self:must(201, "POST", "/v1/buildings", {
    name = opts.building_name or "HQ", timezone = opts.timezone or "Europe/Paris",
    currency = "USD", payment = opts.payment or { credits = true, invoice = true, card = true },
  })
  local t = self:must(201, "POST", "/v1/tenants", {
    name = opts.tenant_name or "Acme", building_ids = { b.id },
    cross_building = false,
  })
  local u = self:must(201, "POST", "/v1/users", {
    tenant_id = t.id, name = opts.user_name or "Ada", email = "ada@example.com",
    roles = M.array(opts.roles or {}),
  })
  local r = self:room(b, opts)
  return { building = b, tenant = t, user = u, room = r }
end

function Client:room(building, opts)
  opts = opts or {}
  return self:must(201, "POST", "/v1/resources", {
    building_id = building.id, name = opts.room_name or "Room", kind = "meeting_room",
    tags = M.array(opts.tags or {}), credit_only = opts.credit_only or false,
    pricing = opts.pricing or {
      money = { per_hour = 7000 },
      credits = { unit = opts.unit or "hour", model = "fixed", per_hour = opts.per_hour or 1,
                  increment_minutes = 30 },
    },
  })
end

-- An allocation with one all-resources line of `amount` hours.
function Client:grant(w, amount, schedule, extra)
  local args = {
    tenant_id = w.tenant.id, building_ids = { w.building.id }, description = "test grant",
    unit = "hour", lines = { { scope = "all", amount = amount } },
    targeting = { type = "all" }, pool = "shared", schedule = schedule,
  }
  for k, v in pairs(extra or {}) do args[k] = v end
  return self:must(201, "POST", "/v1/allocations", args)
end

function Client:book(w, start, stop, method, headers)
  return self:request("POST", "/v1/bookings", {
    resource_id = w.room.id, user_id = w.user.id, start = start, ["end"] = stop,
    payment_method = method or "credits",
  }, headers)
end

-- The user's available hours (a number, or "unlimited").
function Client:available(user, unit)
  unit = unit or "hour"
  local wallet = self:must(200, "GET", "/v1/users/" .. user.id .. "/wallet?unit=" .. unit)
  for _, b in ipairs(wallet.balances) do
    if b.unit == unit then return b.available, wallet end
  end
  return 0, wallet
end

-- A key of `role` created over HTTP (tenant_id / user_id as needed).
function Client:new_key(role, extra)
  local args = { role = role }
  for k, v in pairs(extra or {}) do args[k] = v end
  return self:must(201, "POST", "/v1/keys", args).key
end

return M
