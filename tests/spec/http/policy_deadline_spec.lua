-- The policy time limit is the instruction budget (PRODUCT.md §9): a busy
-- machine must never fail a correct booking.  The wall-clock deadline is
-- only a generous backstop.  Here the server is paused (SIGSTOP/SIGCONT,
-- 150 ms at a time) while it books with a policy that does real work:
-- the pauses land inside policy calls, as a loaded CPU's preemptions do,
-- and every booking must still succeed.
local H = require "http_env"
local socket = require "socket"
local PREMIUM = require("sample_policies").PREMIUM

-- PREMIUM after ~600,000 instructions of arithmetic (two per iteration),
-- well inside the 1,000,000 budget.
local BUSY = PREMIUM:gsub("function M%.price%(ctx%)", [[
function M.price(ctx)
  local x = 0
  for i = 1, 300000 do x = x + i end
  if x < 0 then return nil end]])
local LOOP = "return { price = function(ctx) while true do end end }"
-- PREMIUM that, for a 30-minute booking (not for its own example), spends
-- ~100 ms in C (string.upper over 4,000 bytes, 30,000 times) on ~630,000
-- instructions: within the budget, over a 30 ms wall-clock limit.
local SLOW = PREMIUM:gsub("function M%.price%(ctx%)", [[
function M.price(ctx)
  if ctx.booking.minutes == 30 then
    local s = ("x"):rep(4000)
    for i = 1, 30000 do local t = s:upper() end
  end]])

describe("the policy wall-clock deadline", function()
  local dir = H.policies { ["buildings/bld_1/pricing.lua"] = BUSY,
                           ["buildings/bld_2/pricing.lua"] = LOOP }

  local function book(env, w, n)
    local day, hour = 2 + n // 20, n % 20
    local start = ("2026-02-%02dT%02d:00:00Z"):format(day, hour)
    return env:book(w, start, (start:gsub(":00:00Z", ":30:00Z")))
  end

  it("does not fail correct bookings when the server is descheduled", function()
    local env = H.start { policies = dir }
    local ok, err = pcall(function()
      local w = env:world()
      assert.equal("bld_1", w.building.id)
      env:grant(w, 1000, { start = "2026-01-01" })
      -- Pause the whole server 24 times for 150 ms while it books.
      assert(os.execute(("sh -c 'sleep 0.2; for i in $(seq 24); do "
        .. "kill -STOP %d; sleep 0.15; kill -CONT %d; sleep 0.05; done; touch %s/paused' "
        .. ">/dev/null 2>&1 &"):format(env.pid, env.pid, env.dir)))
      local statuses, n = {}, 0
      repeat
        local status, body = book(env, w, n)
        statuses[status] = (statuses[status] or 0) + 1
        if status ~= 201 then print(status, H.encode(body)) end
        n = n + 1
      until io.open(env.dir .. "/paused") or n > 2000
      assert.is_true(n > 20, "too few bookings: " .. n)
      assert.equal(n, statuses[201])
    end)
    os.execute(("kill -CONT %d 2>/dev/null"):format(env.pid))
    env:stop()
    assert(ok, err)
  end)

  it("still stops an endless policy quickly, by its instruction budget", function()
    local env = H.start { policies = dir }
    local ok, err = pcall(function()
      env:world()
      local w2 = env:world { building_name = "Annex" }
      assert.equal("bld_2", w2.building.id)
      local t0 = socket.gettime()
      local status, body = env:request("POST", "/v1/quotes", {
        resource_id = w2.room.id, user_id = w2.user.id, start = "2026-02-02T09:00:00Z",
        ["end"] = "2026-02-02T10:00:00Z" })
      assert.equal(503, status)
      assert.equal("policy_error", body.error.code)
      assert.matches("instruction", body.error.message)
      assert.is_true(socket.gettime() - t0 < 1)
    end)
    env:stop()
    assert(ok, err)
  end)

  it("keeps the deadline configurable (--policy-wall-ms)", function()
    -- 30 ms, not less: the default policies' own examples run under the
    -- same limit at start-up, and take a few ms under ASan on a busy machine.
    local slow_dir = H.policies { ["buildings/bld_1/pricing.lua"] = SLOW }
    local env = H.start { policies = slow_dir, args = { "--policy-wall-ms", "30" } }
    local ok, err = pcall(function()
      local w = env:world()
      env:grant(w, 1000, { start = "2026-01-01" })
      local status, body = book(env, w, 0)
      assert.equal(503, status)
      assert.matches("time limit %(30 ms%)", body.error.message)
    end)
    env:stop()
    assert(ok, err)
  end)
end)
