-- Two allotd nodes on one PostgreSQL database (issue 11): concurrency is
-- settled by the database, not by either process.  Requests race across the
-- nodes; whatever the interleaving, the ledger allows exactly what one node
-- would, and killing one node loses nothing it acknowledged.  What one node
-- changes in memory the other follows through the database: a policy
-- uploaded to one node serves on the other within a second, the fake clock
-- is shared, and a period boundary is processed by one node only (the
-- boundary lock; each node logs the boundaries it processed).  Runs only
-- against PostgreSQL (ALLOT_TEST_PG_URI, set by tests/helpers/with_pg.sh in
-- ctest busted_http_pg); on SQLite it is pending.
local H = require "http_env"
local socket = require "socket"
local PREMIUM = require("sample_policies").PREMIUM

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."
local PG = (os.getenv("ALLOT_TEST_PG_URI") or "") ~= ""

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Starts one curl per body, the i-th against urls[i], all waiting on a
-- common start file; returns { code, body } for each, in order.  method
-- and path default to POST /v1/bookings.
local function race(urls, key, bodies, header, method, path)
  local dir = H.tmpdir()
  local f = assert(io.open(dir .. "/race.sh", "w"))
  for i, body in ipairs(bodies) do
    local bf = assert(io.open(dir .. "/body." .. i, "w"))
    bf:write(body)
    bf:close()
    f:write(([[
(while [ ! -e %s/go ]; do sleep 0.01; done
 curl -s -m 60 -o %s/out.%d -w '%%{http_code}' -X %s %s%s \
   -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' %s \
   --data-binary @%s/body.%d > %s/code.%d) &
]]):format(dir, dir, i, method or "POST", urls[i], path or "/v1/bookings", key,
           header and ("-H '" .. header .. "'") or "", dir, i, dir, i))
  end
  f:write("wait\n")
  f:close()
  assert(sh("sh " .. dir .. "/race.sh > /dev/null 2>&1 &"))
  sh("sleep 0.3; touch " .. dir .. "/go")
  local deadline = os.time() + 90
  local results
  repeat
    sh("sleep 0.1")
    results = {}
    for i = 1, #bodies do
      local code = read_file(dir .. "/code." .. i)
      if code and #code == 3 then
        results[i] = { code = tonumber(code), body = read_file(dir .. "/out." .. i) or "" }
      end
    end
    local n = 0
    for _ in pairs(results) do n = n + 1 end
  until n == #bodies or os.time() > deadline
  sh("rm -rf " .. dir)
  return results
end

local function verify(db)
  local p = io.popen(("%s/allot verify --db %s --policies %s/policies 2>&1"):format(BUILD, db, SOURCE))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function count(results, code, needle)
  local n = 0
  for i = 1, #results do
    local r = results[i]
    if r and r.code == code and (not needle or r.body:find(needle, 1, true)) then n = n + 1 end
  end
  return n
end

-- Every answer, for an assertion's message.
local function answers(results)
  local out = {}
  for i = 1, #results do
    local r = results[i]
    out[#out + 1] = r and (r.code .. " " .. r.body:sub(1, 160)) or "no answer"
  end
  return table.concat(out, "\n")
end

describe("two nodes on one PostgreSQL database", function()
  local one, two

  before_each(function()
    if not PG then return end
    one = H.start()
    two = H.start { db = one.db, key = one.key }
  end)
  after_each(function()
    if two then two:stop() end
    if one then one:stop() end
    one, two = nil, nil
  end)

  -- Alternates the nodes: odd requests to one, even ones to two.
  local function split(n)
    local urls = {}
    for i = 1, n do urls[i] = i % 2 == 1 and one.url or two.url end
    return urls
  end

  it("let exactly one of 50 clients spend the last credit", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 1, { start = "2026-01-01" })
    local bodies = {}
    for i = 1, 50 do
      -- 50 rooms (created on either node), so only the credit is contended.
      local node = i % 2 == 1 and one or two
      local room = node:room(w.building, { room_name = "R" .. i })
      bodies[i] = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T08:00:00Z",'
        .. '"end":"2026-01-10T09:00:00Z","payment_method":"credits"}'):format(room.id, w.user.id)
    end
    local results = race(split(50), one.key, bodies)
    assert.equal(1, count(results, 201), answers(results))
    assert.equal(49, count(results, 409, "insufficient_credits"), answers(results))
    assert.equal(0, one:available(w.user))
    assert.equal(0, two:available(w.user))
    local fine, out = verify(one.db)
    assert.is_true(fine, out)
  end)

  it("give one slot to exactly one of 20 clients across both nodes", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 100, { start = "2026-01-01" })
    local bodies = {}
    for i = 1, 20 do
      bodies[i] = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-12T10:00:00Z",'
        .. '"end":"2026-01-12T11:00:00Z","payment_method":"credits"}'):format(w.room.id, w.user.id)
    end
    local results = race(split(20), one.key, bodies)
    assert.equal(1, count(results, 201), answers(results))
    assert.equal(19, count(results, 409, "slot_taken"), answers(results))
    assert.equal(99, two:available(w.user))
    local list = two:must(200, "GET", "/v1/bookings?limit=100&user_id=" .. w.user.id)
    assert.equal(1, #list.data)
    local fine, out = verify(one.db)
    assert.is_true(fine, out)
  end)

  it("give one Idempotency-Key one effect, whichever node gets it", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 100, { start = "2026-01-01" })
    local body = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-13T10:00:00Z",'
      .. '"end":"2026-01-13T11:00:00Z","payment_method":"credits"}'):format(w.room.id, w.user.id)
    local bodies = {}
    for i = 1, 10 do bodies[i] = body end
    local results = race(split(10), one.key, bodies, "Idempotency-Key: two-nodes-1")
    assert.equal(10, count(results, 201), answers(results))
    local id = results[1].body:match('"id":"(bkg_%d+)"')
    assert.truthy(id)
    for i = 2, 10 do
      assert.equal(id, results[i].body:match('"id":"(bkg_%d+)"'))
    end
    assert.equal(99, one:available(w.user))
    local fine, out = verify(one.db)
    assert.is_true(fine, out)
  end)

  it("lose nothing acknowledged when one node is killed under load", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 100000, { start = "2026-01-01" })
    local dir = H.tmpdir()
    local acked = dir .. "/acked"
    -- A booking loop alternating the nodes, recording every 201's id.
    local loop = ([[
i=0
while [ ! -e %s/stop ]; do
  i=$((i + 1)); day=$(( 1 + (i / 24) %% 28 )); month=$(( 2 + i / 672 )); h=$(( i %% 24 ))
  s=$(printf '2026-%%02d-%%02dT%%02d:00:00Z' $month $day $h)
  e=$(printf '2026-%%02d-%%02dT%%02d:30:00Z' $month $day $h)
  if [ $((i %% 2)) = 0 ]; then url=%s; else url=%s; fi
  body=$(curl -s -m 5 -X POST "$url/v1/bookings" -H "Authorization: Bearer %s" \
    -H 'Content-Type: application/json' -w '\n%%{http_code}' \
    -d "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"$s\",\"end\":\"$e\",\"payment_method\":\"credits\"}")
  case "$body" in
    *201) echo "$body" | head -1 | sed 's/.*"id":"\(bkg_[0-9]*\)".*/\1/' >> %s ;;
  esac
done
]]):format(dir, one.url, two.url, one.key, w.room.id, w.user.id, acked)
    local f = assert(io.open(dir .. "/loop.sh", "w"))
    f:write(loop)
    f:close()
    assert(sh("sh " .. dir .. "/loop.sh > /dev/null 2>&1 &"))
    finally(function() sh("touch " .. dir .. "/stop") end)
    local port = one.port
    for round = 1, 3 do
      sh(("sleep 0.%d"):format(5 + round))
      sh(("kill -KILL %d"):format(one.pid))
      while H.alive(one.pid) do sh("sleep 0.02") end
      one.pid = nil
      -- Node two serves on while node one is down.
      assert.equal(200, (two:get("/v1/health")))
      local fine, out = verify(two.db)
      assert.is_true(fine, "round " .. round .. ": " .. out)
      one:stop()
      one = H.start { db = two.db, key = two.key, port = port }
    end
    sh("touch " .. dir .. "/stop; sleep 1")
    local ids = {}
    for line in (read_file(acked) or ""):gmatch("[^\n]+") do ids[#ids + 1] = line end
    assert.truthy(#ids > 3, "the loop booked too little to mean anything")
    for _, id in ipairs(ids) do
      local b = two:must(200, "GET", "/v1/bookings/" .. id)
      assert.equal("confirmed", b.status)
      assert.equal(1, #b.credits.paid_from)
    end
    local fine, out = verify(two.db)
    assert.is_true(fine, out)
    sh("rm -rf " .. dir)
  end)

  it("serve from node two what node one wrote, at once", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    local t = two:must(200, "GET", "/v1/tenants/" .. w.tenant.id)
    assert.equal(w.tenant.name, t.name)
    one:grant(w, 7, { start = "2026-01-01" })
    assert.equal(7, two:available(w.user))
    local status = two:book(w, "2026-01-14T10:00:00Z", "2026-01-14T12:00:00Z")
    assert.equal(201, status)
    assert.equal(5, one:available(w.user))
  end)

  -- The credits a quote of two hours on `node` costs (the default pricing:
  -- 1 an hour; PREMIUM: 3).
  local function quote(node, w)
    return node:must(200, "POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" }).credits.amount
  end

  -- Polls quote(node) until it answers `want` or `limit_s` seconds have passed
  -- since t0; returns the last answer and the seconds it took.
  local function quote_until(node, w, want, t0, limit_s)
    local got
    repeat
      got = quote(node, w)
      if got == want then break end
      socket.sleep(0.02)
    until socket.gettime() - t0 > limit_s
    return got, socket.gettime() - t0
  end

  it("use on node two, within a second, a policy uploaded to node one", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 100, { start = "2026-01-01" })
    local base = "/v1/buildings/" .. w.building.id .. "/policies"
    local LUA = { ["Content-Type"] = "text/x-lua" }
    -- Node two has the building's default set cached.
    assert.equal(2, quote(two, w))
    one:must(200, "PUT", base .. "/pricing", PREMIUM, LUA)
    local t0 = socket.gettime()
    local got, took = quote_until(two, w, 6, t0, 1.0)
    assert.equal(6, got, ("node two still prices the old way %.2f s later"):format(took))
    -- A booking on node two pays the new price.
    local status, b = two:book(w, "2026-01-15T09:00:00Z", "2026-01-15T11:00:00Z")
    assert.equal(201, status)
    assert.equal(6, b.credits.amount)
    assert.truthy(tostring(b.policy_versions.pricing):find("^v1:"), H.encode(b.policy_versions))
    -- And back the other way: removed on node two, default again on node one.
    two:must(200, "DELETE", base .. "/pricing")
    t0 = socket.gettime()
    got, took = quote_until(one, w, 2, t0, 1.0)
    assert.equal(2, got, ("node one still prices the old way %.2f s later"):format(took))
    local fine, out = verify(one.db)
    assert.is_true(fine, out)
  end)

  it("share the fake clock: set on one node, it is the other's", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    one:grant(w, 100, { start = "2026-01-01" })
    -- At the start clock (2026-01-01) a booking in February is in the future.
    local c = one:must(200, "PUT", "/v1/clock", { now = "2026-03-05T10:00:00Z" })
    assert.equal("2026-03-05T10:00:00Z", c.now)
    -- Node two runs at node one's clock: February is now the past there.
    local status, body = two:book(w, "2026-02-10T09:00:00Z", "2026-02-10T10:00:00Z")
    assert.equal(400, status, H.encode(body))
    assert.truthy(H.encode(body):find("in the past", 1, true), H.encode(body))
    assert.equal(201, (two:book(w, "2026-03-06T09:00:00Z", "2026-03-06T10:00:00Z")))
    -- The other way, and backwards.
    c = two:must(200, "PUT", "/v1/clock", { now = "2026-02-01T08:00:00Z" })
    assert.equal("2026-02-01T08:00:00Z", c.now)
    assert.equal(201, (one:book(w, "2026-02-10T09:00:00Z", "2026-02-10T10:00:00Z")))
    -- A node that starts later joins the clock... unless it brings its own
    -- start instant (--now), which sets it for every node, like PUT /v1/clock.
    local three = H.start { db = one.db, key = one.key, now = "2026-04-01T00:00:00Z" }
    finally(function() three:stop() end)
    status = one:book(w, "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z")
    assert.equal(400, status)
    local fine, out = verify(one.db)
    assert.is_true(fine, out)
  end)

  it("process a period boundary once, whichever nodes race to it", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local w = one:world()
    -- Enough allocations that processing a boundary takes a while, so that
    -- without the boundary lock the two nodes would overlap.
    local allocs = {}
    for i = 1, 24 do
      allocs[i] = (i % 2 == 1 and one or two):grant(w, 10, { start = "2026-01-01",
                                                              recurrence = "monthly" })
    end
    assert.equal(240, two:available(w.user))
    for month = 2, 4 do
      -- 12 clients across both nodes move the clock past the boundary at
      -- once: each node's clock setter processes what is due.
      local now = ("2026-%02d-03T12:00:00Z"):format(month)
      local bodies = {}
      for i = 1, 12 do bodies[i] = ('{"now":"%s"}'):format(now) end
      local results = race(split(12), one.key, bodies, nil, "PUT", "/v1/clock")
      assert.equal(12, count(results, 200), answers(results))
      -- Exactly one node did the work, once: each node logs every attempt
      -- at processing boundaries that found work.
      local lines = {}
      for line in (one:server_log() .. two:server_log()):gmatch("[^\n]*boundaries due by "
                                                                 .. now:gsub("%-", "%%-")
                                                                 .. "[^\n]*") do
        lines[#lines + 1] = line
      end
      assert.equal(1, #lines, now .. ":\n" .. table.concat(lines, "\n"))
      assert.truthy(lines[1]:find("processed by this node", 1, true), lines[1])
    end
    -- Per allocation one lot per month, whichever node opened it.
    for _, alloc in ipairs(allocs) do
      local a = two:must(200, "GET", "/v1/allocations/" .. alloc.id)
      assert.equal(4, #a.lots, H.encode(a.lots))
    end
    assert.equal(240, one:available(w.user))
    assert.equal(240, two:available(w.user))
    local fine, out = verify(two.db)
    assert.is_true(fine, out)
  end)
  -- Starts two allotd on `db` at the same instant, on the real clock;
  -- returns them as clients once both answer.
  local function start_together(db, key)
    local dir = H.tmpdir()
    local nodes = {}
    local cmd = {}
    for i = 1, 2 do
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local log = ("%s/allotd.%d.log"):format(dir, i)
      nodes[i] = { port = tonumber(port), log = log, db = db, key = key,
                   url = "http://127.0.0.1:" .. port, dir = dir .. "/" .. i }
      sh("mkdir -p " .. nodes[i].dir)
      cmd[#cmd + 1] = ("%s/allotd --db %s --listen 127.0.0.1:%d --policies %s/policies --web %s/web"
        .. " --threads 16 > %s 2>&1 & echo $! > %s/pid.%d"):format(BUILD, db, port, SOURCE,
        SOURCE, log, dir, i)
    end
    assert(sh(table.concat(cmd, "\n")))
    local meta = getmetatable(one)
    for i = 1, 2 do
      nodes[i].pid = tonumber(read_file(("%s/pid.%d"):format(dir, i)))
      nodes[i] = setmetatable(nodes[i], meta)
      nodes[i].env = nodes[i]
    end
    local deadline = socket.gettime() + 60
    for i = 1, 2 do
      while socket.gettime() < deadline and H.alive(nodes[i].pid)
            and not (read_file(nodes[i].log) or ""):find("listening on", 1, true) do
        socket.sleep(0.05)
      end
      if not (read_file(nodes[i].log) or ""):find("listening on", 1, true) then
        for j = 1, 2 do sh(("kill -KILL %d 2>/dev/null"):format(nodes[j].pid)) end
        error("allotd did not start: " .. (read_file(nodes[i].log) or ""))
      end
    end
    return nodes[1], nodes[2]
  end

  it("catch up after downtime once, when two nodes start together", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    if os.time() < os.time { year = 2026, month = 4, day = 1, hour = 0 } then
      pending("the real clock must be months past the fake start (2026-01-01)")
      return
    end
    local w = one:world()
    local allocs = {}
    for i = 1, 24 do
      allocs[i] = one:grant(w, 10, { start = "2026-01-01", recurrence = "monthly" })
    end
    two:stop()
    one:stop()
    -- Months of boundaries are due on the real clock: both nodes start at
    -- once, both open the engine, which processes what is due.
    one, two = start_together(one.db, one.key)
    local lines = {}
    for line in (read_file(one.log) .. read_file(two.log)):gmatch("[^\n]*boundaries due by[^\n]*") do
      lines[#lines + 1] = line
    end
    assert.equal(1, #lines, table.concat(lines, "\n"))
    assert.truthy(lines[1]:find("processed by this node", 1, true), lines[1])
    local months
    for _, alloc in ipairs(allocs) do
      local a = two:must(200, "GET", "/v1/allocations/" .. alloc.id)
      months = months or #a.lots
      assert.equal(months, #a.lots)
    end
    assert.truthy(months > 3, "too few periods caught up to mean anything")
    assert.equal(one:available(w.user), two:available(w.user))
    local fine, out = verify(two.db)
    assert.is_true(fine, out)
  end)
end)

-- On SQLite one allotd serves a file, but another process may write it (the
-- REPL): a policy activated there serves in allotd within a second too,
-- through the same policy generation poll.
describe("a second process on one SQLite file", function()
  it("has allotd use a policy the REPL activated, within a second", function()
    if PG then pending("SQLite only (two allotd share a PostgreSQL database above)") return end
    local env = H.start()
    finally(function() env:stop() end)
    local w = env:world()
    env:grant(w, 100, { start = "2026-01-01" })
    local function quote()
      return env:must(200, "POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
        start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" }).credits.amount
    end
    assert.equal(2, quote())
    local dir = H.tmpdir()
    local f = assert(io.open(dir .. "/put.lua", "w"))
    f:write(("assert(db:call(\"policies.put\", {building_id = %q, kind = \"pricing\", source = %q}))\n")
      :format(w.building.id, PREMIUM))
    f:close()
    local p = io.popen(("%s/allot repl --db %s --policies %s/policies --now %s < %s/put.lua 2>&1")
      :format(BUILD, env.db, SOURCE, H.NOW, dir))
    local out = p:read("a")
    assert.truthy(p:close(), out)
    local t0 = socket.gettime()
    local got
    repeat
      got = quote()
      if got == 6 then break end
      socket.sleep(0.02)
    until socket.gettime() - t0 > 1.0 * H.SLOW
    assert.equal(6, got, ("allotd still prices the old way %.2f s later"):format(socket.gettime() - t0))
    sh("rm -rf " .. dir)
  end)
end)
