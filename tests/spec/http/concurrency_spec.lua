-- Races and crashes against the real server: 50 clients spending the last
-- credits at once, two clients taking one slot at once, and bookings in a
-- loop while allotd is killed with SIGKILL; every acknowledged booking must
-- survive, and `allot verify` must pass after each restart.
local H = require "http_env"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function read_lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do out[#out + 1] = line end
  f:close()
  return out
end

-- Starts n curl clients that wait on a common start file, then each POSTs
-- its own body; returns the list of "status body" results.
local function race(env, bodies, header)
  local dir = H.tmpdir()
  local f = assert(io.open(dir .. "/race.sh", "w"))
  for i, body in ipairs(bodies) do
    local bf = assert(io.open(dir .. "/body." .. i, "w"))
    bf:write(body)
    bf:close()
    f:write(([[
(while [ ! -e %s/go ]; do sleep 0.01; done
 curl -s -o %s/out.%d -w '%%{http_code}' -X POST %s/v1/bookings \
   -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' %s \
   --data-binary @%s/body.%d > %s/code.%d) &
]]):format(dir, dir, i, env.url, env.key, header and ("-H '" .. header .. "'") or "", dir, i,
           dir, i))
  end
  f:write("wait\n")
  f:close()
  assert(sh("sh " .. dir .. "/race.sh > /dev/null 2>&1 &"))
  sh("sleep 0.3; touch " .. dir .. "/go")
  local deadline = os.time() + 30
  local results
  repeat
    sh("sleep 0.1")
    results = {}
    for i = 1, #bodies do
      local code = read_lines(dir .. "/code." .. i)[1]
      if code and #code == 3 then
        local out = io.open(dir .. "/out." .. i):read("a")
        results[#results + 1] = { code = tonumber(code), body = out }
      end
    end
  until #results == #bodies or os.time() > deadline
  return results
end

local function verify(db)
  local p = io.popen(("%s/allot verify --db %s --policies %s/policies 2>&1"):format(BUILD, db, SOURCE))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("under concurrency", function()
  local env
  after_each(function() if env then env:stop() end end)

  it("lets exactly one of 50 clients spend the last 10 credits", function()
    env = H.start()
    local w = env:world()
    env:grant(w, 10, { start = "2026-01-01" })
    local bodies = {}
    for i = 1, 50 do
      -- 50 different rooms, so only the credits are contended.
      local room = env:room(w.building, { room_name = "R" .. i })
      bodies[i] = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T08:00:00Z",'
        .. '"end":"2026-01-10T18:00:00Z","payment_method":"credits"}'):format(room.id, w.user.id)
    end
    local results = race(env, bodies)
    assert.equal(50, #results)
    local ok, refused = 0, 0
    for _, r in ipairs(results) do
      if r.code == 201 then ok = ok + 1 end
      if r.code == 409 and r.body:find("insufficient_credits", 1, true) then
        refused = refused + 1
      end
    end
    assert.equal(1, ok)
    assert.equal(49, refused)
    assert.equal(0, env:available(w.user))
    local fine, out = verify(env.db)
    assert.is_true(fine, out)
  end)

  it("keeps one winner with one transaction per write and one reader", function()
    -- The knobs the benchmarks use (scripts/README.md): out of range is
    -- refused at start; --batch-max 1 runs every write in its own
    -- transaction, --readers 1 leaves one pooled read connection.
    for _, case in ipairs {
      { "--batch-max", "0", "from 1 to 128" }, { "--batch-max", "129", "from 1 to 128" },
      { "--batch-max", "x", "from 1 to 128" }, { "--readers", "0", "from 1 to 64" },
      { "--readers", "65", "from 1 to 64" },
    } do
      local p = io.popen(("%s/allotd %s %s --listen 127.0.0.1:0 2>&1"):format(BUILD, case[1], case[2]))
      local out = p:read("a")
      local ok = p:close()
      assert.is_falsy(ok)
      assert.truthy(out:find(case[1] .. " must be " .. case[3], 1, true), out)
    end
    env = H.start { args = { "--batch-max", "1", "--readers", "1" } }
    local w = env:world()
    env:grant(w, 10, { start = "2026-01-01" })
    local bodies = {}
    for i = 1, 20 do
      local room = env:room(w.building, { room_name = "R" .. i })
      bodies[i] = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T08:00:00Z",'
        .. '"end":"2026-01-10T18:00:00Z","payment_method":"credits"}'):format(room.id, w.user.id)
    end
    local results = race(env, bodies)
    assert.equal(20, #results)
    local ok = 0
    for _, r in ipairs(results) do
      if r.code == 201 then ok = ok + 1 end
    end
    assert.equal(1, ok)
    assert.equal(0, env:available(w.user))
    local fine, out = verify(env.db)
    assert.is_true(fine, out)
  end)

  it("plans 40 concurrent bookings on readers, none left whole to the writer", function()
    -- Issue 12: with 4 pooled readers, a booking whose plan found none free
    -- was computed whole by the single writer thread.  The pool now opens
    -- connections as concurrent requests need them (64 by default), hands
    -- them to waiters in turn, and allotd says at its stop what happened.
    env = H.start()
    local w = env:world()
    env:grant(w, 1000, { start = "2026-01-01" })
    local bodies = {}
    for i = 1, 40 do
      local room = env:room(w.building, { room_name = "R" .. i })
      bodies[i] = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T08:00:00Z",'
        .. '"end":"2026-01-10T09:00:00Z","payment_method":"credits"}'):format(room.id, w.user.id)
    end
    local results = race(env, bodies)
    assert.equal(40, #results)
    for _, r in ipairs(results) do assert.equal(201, r.code, r.body) end
    assert.equal(960, env:available(w.user))
    -- Stopped here (not by env:stop(), which removes the log with its dir).
    sh(("kill -TERM %d"):format(env.pid))
    -- Waits for the stats line, not a fixed time (a stop once took over
    -- 5 s on a loaded machine).
    local deadline = os.time() + 30
    local log = env:server_log()
    while not log:find("since start: ", 1, true) and os.time() < deadline do
      sh("sleep 0.05")
      log = env:server_log()
    end
    local writes, batches = log:match("since start: (%d+) writes in (%d+) batches")
    local plans, left = log:match("; (%d+) plans, (%d+) left to the writer without a reader")
    assert.truthy(writes and plans, log)
    assert.is_true(tonumber(writes) >= 40 + 40, log) -- the rooms, the bookings
    assert.is_true(tonumber(batches) <= tonumber(writes), log)
    assert.equal(40, tonumber(plans), log)
    if env.db:find("://", 1, true) then
      -- PostgreSQL keeps 4 readers by default (each is a server process):
      -- plans finding none free are still computed, by the writer.
      assert.is_true(tonumber(left) <= 40, log)
    else
      assert.equal(0, tonumber(left), log)
    end
    local fine, out = verify(env.db)
    assert.is_true(fine, out)
  end)

  it("books once for 10 concurrent requests with the same Idempotency-Key", function()
    env = H.start()
    local w = env:world()
    env:grant(w, 10, { start = "2026-01-01" })
    local body = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T09:00:00Z",'
      .. '"end":"2026-01-10T10:00:00Z","payment_method":"credits"}'):format(w.room.id, w.user.id)
    local bodies = {}
    for i = 1, 10 do bodies[i] = body end
    local results = race(env, bodies, "Idempotency-Key: same-booking")
    assert.equal(10, #results)
    local ids = {}
    for _, r in ipairs(results) do
      assert.equal(201, r.code)
      ids[r.body:match('"id":"(bkg_%d+)"')] = true
    end
    local n = 0
    for _ in pairs(ids) do n = n + 1 end
    assert.equal(1, n)
    assert.equal(9, env:available(w.user))
  end)

  it("gives one slot to exactly one of two clients", function()
    env = H.start()
    local w = env:world()
    env:grant(w, 10, { start = "2026-01-01" })
    local body = ('{"resource_id":"%s","user_id":"%s","start":"2026-01-10T09:00:00Z",'
      .. '"end":"2026-01-10T10:00:00Z","payment_method":"%s"}')
    local results = race(env, { body:format(w.room.id, w.user.id, "credits"),
                                body:format(w.room.id, w.user.id, "card") })
    table.sort(results, function(a, b) return a.code < b.code end)
    assert.equal(201, results[1].code)
    assert.equal(409, results[2].code)
    assert.truthy(results[2].body:find("slot_taken", 1, true))
  end)
end)

describe("after kill -9", function()
  it("keeps every acknowledged booking, and every invariant", function()
    local env = H.start()
    local w = env:world()
    env:grant(w, 100000, { start = "2026-01-01" })
    local dir = H.tmpdir()
    local acked = dir .. "/acked"
    -- A booking loop that records the id of every 201 it receives.
    local loop = ([[
i=0
while [ ! -e %s/stop ]; do
  i=$((i + 1)); day=$(( 1 + (i / 24) %% 28 )); month=$(( 2 + i / 672 )); h=$(( i %% 24 ))
  s=$(printf '2026-%%02d-%%02dT%%02d:00:00Z' $month $day $h)
  e=$(printf '2026-%%02d-%%02dT%%02d:30:00Z' $month $day $h)
  body=$(curl -s -m 5 -X POST "$(cat %s/url)/v1/bookings" -H "Authorization: Bearer %s" \
    -H 'Content-Type: application/json' -w '\n%%{http_code}' \
    -d "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"$s\",\"end\":\"$e\",\"payment_method\":\"credits\"}")
  case "$body" in
    *201) echo "$body" | head -1 | sed 's/.*"id":"\(bkg_[0-9]*\)".*/\1/' >> %s ;;
  esac
done
]]):format(dir, dir, env.key, w.room.id, w.user.id, acked)
    local f = assert(io.open(dir .. "/loop.sh", "w"))
    f:write(loop)
    f:close()
    local uf = assert(io.open(dir .. "/url", "w")); uf:write(env.url); uf:close()
    assert(sh("sh " .. dir .. "/loop.sh > /dev/null 2>&1 &"))
    local db, port = env.db, env.port
    -- Whatever happens below, stop the loop and the server at the end.
    finally(function()
      sh("touch " .. dir .. "/stop")
      if env.pid then sh(("kill -KILL %d 2>/dev/null"):format(env.pid)) end
    end)
    local booked = 0
    for round = 1, 5 do
      sh(("sleep 0.%d"):format(3 + round))
      -- On a loaded machine the loop may not have booked yet: every round
      -- kills with at least two new acknowledged bookings behind it.
      local wait_until = os.time() + 30
      while #read_lines(acked) < booked + 2 and os.time() < wait_until do sh("sleep 0.1") end
      booked = #read_lines(acked)
      sh(("kill -KILL %d"):format(env.pid))
      while H.alive(env.pid) do sh("sleep 0.02") end
      env.pid = nil
      local fine, out = verify(db)
      assert.is_true(fine, "round " .. round .. ": " .. out)
      -- Restart on the same database and port.
      local log = dir .. "/allotd." .. round .. ".log"
      assert(sh(("%s/allotd --db %s --listen 127.0.0.1:%d --policies %s/policies --fake-clock"
        .. " --now 2026-01-01T00:00:00Z > %s 2>&1 & echo $! > %s/pid"):format(
        BUILD, db, port, SOURCE, log, dir)))
      env.pid = tonumber(read_lines(dir .. "/pid")[1])
      local deadline = os.time() + 30 -- a loaded machine starts allotd in seconds
      local function listening()
        local lf = io.open(log)
        local text = lf and lf:read("a") or ""
        if lf then lf:close() end
        return text:find("listening", 1, true) ~= nil
      end
      while os.time() < deadline and not listening() do
        sh("sleep 0.05")
      end
      assert.is_true(listening(), "allotd did not restart")
      -- Every booking acknowledged so far is there, with its debit.
      for _, id in ipairs(read_lines(acked)) do
        local b = env:must(200, "GET", "/v1/bookings/" .. id)
        assert.equal("confirmed", b.status)
        assert.equal(1, #b.credits.paid_from)
      end
    end
    sh("touch " .. dir .. "/stop; sleep 1")
    assert.truthy(#read_lines(acked) > 10, "the loop booked too little to mean anything")
    local fine, out = verify(db)
    env:stop()
    assert.is_true(fine, out)
  end)
end)
