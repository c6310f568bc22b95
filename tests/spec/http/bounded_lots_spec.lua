-- Issue 10 R1 (PRODUCT.md §9): an allocation starting long ago must not hold
-- the single writer while it materialises every past period.  One request
-- creates at most alloc_open_lots_max lots (periods already begun x lines x
-- owners); past it the request is refused at once, nothing written, and
-- other clients' writes go on meanwhile.
local H = require "http_env"
local socket = require "socket"
local cjson = require "cjson.safe"

local LOTS_MAX = 640

describe("bounded lot creation (issue 10 R1)", function()
  local env, w, users
  setup(function()
    env = H.start()
    w = env:world()
    users = { w.user.id }
    for i = 2, 20 do
      users[i] = env:must(201, "POST", "/v1/users", {
        tenant_id = w.tenant.id, name = "User " .. i, email = ("u%d@example.com"):format(i),
        roles = H.array(),
      }).id
    end
  end)
  teardown(function() if env then env:stop() end end)

  local function lines(n)
    local out = {}
    for i = 1, n do out[i] = { scope = "all", amount = i } end
    return out
  end

  local function allocation(start, pool, n_lines, recurrence)
    return {
      tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
      description = "bounded", lines = lines(n_lines), targeting = { type = "all" },
      pool = pool, schedule = { start = start, recurrence = recurrence or "weekly" },
    }
  end

  -- CPU time of every allotd thread so far, in seconds (schedstat, ns):
  -- what a request costs the server, less sensitive to a loaded machine
  -- than wall time.
  local function server_cpu()
    local p = assert(io.popen("cat /proc/" .. env.pid .. "/task/*/schedstat 2>/dev/null"))
    local total = 0
    for line in p:lines() do total = total + (tonumber(line:match("^(%d+)")) or 0) end
    p:close()
    return total / 1e9
  end

  local function count_allocations()
    return #env:must(200, "GET", "/v1/allocations?tenant_id=" .. w.tenant.id .. "&limit=500").data
  end

  -- POSTs body with curl in the background; returns a function that waits
  -- for it and answers status, seconds taken and the body.
  local function post_in_background(path, body)
    local dir = H.tmpdir()
    local f = assert(io.open(dir .. "/body", "w"))
    f:write(H.encode(body))
    f:close()
    assert(os.execute(([[(curl -s -o %s/out -w '%%{http_code} %%{time_total}' -X POST %s%s \
      -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
      --data-binary @%s/body > %s/code.tmp; mv %s/code.tmp %s/code) &]]):format(
      dir, env.url, path, env.key, dir, dir, dir, dir)))
    return function()
      local deadline = socket.gettime() + 600
      while socket.gettime() < deadline do
        local c = io.open(dir .. "/code")
        if c then
          local line = c:read("a")
          c:close()
          local o = assert(io.open(dir .. "/out"))
          local text = o:read("a")
          o:close()
          os.execute("rm -rf " .. dir)
          local status, secs = line:match("^(%d+) ([%d.]+)")
          return tonumber(status), tonumber(secs), text
        end
        socket.sleep(0.01)
      end
      error("the background request never answered")
    end
  end

  it("refuses the issue's allocation at once while another client books", function()
    local before = count_allocations()
    -- The issue's request: weekly from 1990, per user, 20 users, 32 lines
    -- (about 1.2 million lots before the fix, 276 s on the writer).
    local wait = post_in_background("/v1/allocations",
                                    allocation("1990-01-01", "per_user", 32))
    -- Meanwhile another client books (by card: no credits needed).
    local t0 = socket.gettime()
    local status, res = env:book(w, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", "card")
    local booking_secs = socket.gettime() - t0
    assert.equal(201, status, H.encode(res))
    assert.is_true(booking_secs < 1 * H.SLOW,
                   ("the concurrent booking took %.3f s"):format(booking_secs))
    local code, secs, text = wait()
    print(("\n  R1: the issue's allocation answered %d in %.3f s (wall time, loaded machine);"
           .. " concurrent booking %.3f s"):format(code, secs, booking_secs))
    assert.equal(413, code, text)
    local err = cjson.decode(text).error
    assert.equal("limit_exceeded", err.code)
    assert.equal("alloc_open_lots_max", err.details.limit)
    assert.truthy(err.message:find(tostring(LOTS_MAX), 1, true), err.message)
    assert.is_true(secs < 1 * H.SLOW, ("the refusal took %.3f s"):format(secs))
    -- Nothing written.
    assert.equal(before, count_allocations())
  end)

  it("creates the current period of the issue's allocation (640 lots) in one request", function()
    local a = allocation("2025-12-29", "per_user", 32)
    a.targeting = { type = "users", user_ids = users }
    local t0, c0 = socket.gettime(), server_cpu()
    local res = env:must(201, "POST", "/v1/allocations", a)
    print(("\n  R1: 32 lines x 20 users, current week (640 lots): %.3f s wall, %.3f s server CPU")
          :format(socket.gettime() - t0, server_cpu() - c0))
    assert.equal(LOTS_MAX, #res.lots)
    for _, lot in ipairs(res.lots) do
      assert.equal("active", lot.status)
      assert.equal(0, lot.period)
    end
  end)

  it("materialises a backdated shared allocation up to the bound, expired exactly", function()
    -- Weekly, 32 shared lines: 10 periods have begun since 2025-10-27
    -- (320 lots: 9 expired weeks, which count twice, and the current one).
    local t0, c0 = socket.gettime(), server_cpu()
    local res = env:must(201, "POST", "/v1/allocations", allocation("2025-10-27", "shared", 32))
    print(("\n  R1: 32 shared lines x 10 weeks (320 lots, 288 expired): %.3f s wall, %.3f s"
           .. " server CPU"):format(socket.gettime() - t0, server_cpu() - c0))
    assert.equal(320, #res.lots)
    local expired, active = 0, 0
    for _, lot in ipairs(res.lots) do
      if lot.status == "expired" then
        expired = expired + 1
        assert.equal(0, lot.balance) -- use-it-or-lose-it: an expire entry took it
      else
        active = active + 1
      end
    end
    assert.equal(9 * 32, expired)
    assert.equal(32, active)
    -- One week earlier is one period too many: refused, naming the limit.
    local status, body = env:post("/v1/allocations", allocation("2025-10-20", "shared", 32))
    assert.equal(413, status)
    assert.equal("alloc_open_lots_max", body.error.details.limit)
    assert.truthy(body.error.message:find("at most 10 of its periods", 1, true),
                  body.error.message)
  end)

  it("refuses a per-user allocation whose every period would exceed the bound", function()
    -- 21 users x 32 lines = 672 lots per period, even starting next year.
    env:must(201, "POST", "/v1/users", {
      tenant_id = w.tenant.id, name = "User 21", email = "u21@example.com", roles = H.array(),
    })
    local before = count_allocations()
    local status, res = env:post("/v1/allocations", allocation("2027-01-04", "per_user", 32))
    assert.equal(413, status)
    assert.equal("alloc_open_lots_max", res.error.details.limit)
    assert.truthy(res.error.message:find("672", 1, true), res.error.message)
    assert.equal(before, count_allocations())
    -- Listing 20 users keeps it within the bound.
    local a = allocation("2027-01-04", "per_user", 32)
    a.targeting = { type = "users", user_ids = users }
    env:must(201, "POST", "/v1/allocations", a)
  end)
end)
