-- Bounded policy work (PRODUCT.md §6, §9): a simulation needs manager or
-- above and stops at its total budget with limit_exceeded naming the limit;
-- a pricing upload whose results the booking path would refuse (NaN, a huge
-- float, a negative amount) is refused at upload (422 policy_error) instead
-- of making every quote answer 503.
local H = require "http_env"

local LUA = { ["Content-Type"] = "text/x-lua" }

describe("bounded policy work", function()
  local env, w, base
  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 10, { start = "2026-01-01" })
    base = "/v1/buildings/" .. w.building.id .. "/policies"
  end)
  teardown(function() if env then env:stop() end end)

  local function quote()
    return env:request("POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" })
  end

  describe("simulation", function()
    local LOOP = "return { price = function(ctx) while true do end end }"
    local CHEAP = "return { price = function(ctx) return { credits = 500, unit = 'hour' } end }"

    setup(function()
      -- 120 card bookings of 30 minutes, more than 100 full per-call budgets.
      for i = 0, 119 do
        local day, slot = i // 20, i % 20
        local start = os.time { year = 2026, month = 2, day = 2 + day, hour = 8, min = 0,
                                sec = 0, isdst = false } + slot * 1800
        local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end
        local s = env:book(w, iso(start), iso(start + 1800), "card")
        assert.equal(201, s)
      end
    end)

    it("needs manager or above", function()
      local body = { source = CHEAP, from = "2026-02-01", to = "2026-02-03" }
      local viewer = env:as(env:new_key("viewer"))
      local s, res = viewer:post(base .. "/pricing/simulate", body)
      assert.equal(403, s)
      assert.equal("forbidden", res.error.code)
      local tenant = env:as(env:new_key("tenant_admin", { tenant_id = w.tenant.id }))
      assert.equal(403, (tenant:post(base .. "/pricing/simulate", body)))
      local manager = env:as(env:new_key("manager"))
      local sim = manager:must(200, "POST", base .. "/pricing/simulate", body)
      assert.equal(20, sim.totals.bookings)
      assert.equal(0.5, sim.bookings[1].candidate.credits)
    end)

    it("stops a looping candidate at the simulation's total budget", function()
      local t0 = os.time()
      local s, res = env:post(base .. "/pricing/simulate",
                              { source = LOOP, from = "2026-02-01", to = "2026-03-01" })
      assert.equal(413, s)
      assert.equal("limit_exceeded", res.error.code)
      -- The instruction total decides; the wall-time total is the backstop
      -- a slow (sanitizer) build may meet first.
      assert.truthy(res.error.details.limit == "simulation_instructions_max" or
                    res.error.details.limit == "simulation_wall_ms_max", res.error.details.limit)
      assert.truthy(os.time() - t0 <= 10)
      -- The server is fine, and the same candidate on few bookings only
      -- reports its per-booking failures.
      local sim = env:must(200, "POST", base .. "/pricing/simulate",
                           { source = LOOP, from = "2026-02-02", to = "2026-02-02T09:00:00Z" })
      assert.equal(2, sim.totals.bookings)
      assert.equal(2, sim.totals.errors)
    end)
  end)

  describe("pricing upload", function()
    local function refused(src, pattern)
      local status, body = env:put(base .. "/pricing", src, LUA)
      assert.equal(422, status, src)
      assert.equal("policy_error", body.error.code)
      assert.truthy(body.error.message:find("pricing check", 1, true), body.error.message)
      if pattern then
        assert.truthy(body.error.message:find(pattern), body.error.message)
      end
      -- The running version (the default) stays: quotes still work.
      local qs, q = quote()
      assert.equal(200, qs)
      assert.equal(2, q.credits.amount)
    end

    it("refuses a policy returning NaN (0/0)", function()
      refused("return { price = function(ctx) return { credits = 0/0, unit = 'hour' } end }",
              "NaN")
    end)

    it("refuses a policy returning 1e308", function()
      refused("return { price = function(ctx) return { credits = 1e308, unit = 'hour' } end }",
              "'credits'")
      refused("return { price = function(ctx) return { money = 1e308 } end }", "'money'")
    end)

    it("refuses a policy returning -5", function()
      refused("return { price = function(ctx) return { credits = -5, unit = 'hour' } end }",
              "%-5")
      refused("return { price = function(ctx) return { money = -5 } end }", "'money'")
    end)

    it("refuses credits without a known unit, and a failure on long bookings", function()
      refused("return { price = function(ctx) return { credits = 1000, unit = 'day' } end }",
              "unit")
      refused([[return { price = function(ctx)
                  if ctx.booking.minutes > 120 then error('too long') end
                  return { credits = 1000, unit = 'hour' } end }]], "240%-minute")
    end)

    it("accepts refusals and sound results, and checks a rollback too", function()
      local ok = env:must(200, "PUT", base .. "/pricing", [[return { price = function(ctx)
          if ctx.booking.minutes > 60 then return { error = 'one hour at most' } end
          return { credits = 1000, unit = 'hour', money = 0 } end }]], LUA)
      assert.equal("one hour at most", select(2, quote()).error.message)
      env:must(200, "DELETE", base .. "/pricing")
      assert.equal(200, (quote()))
      assert.truthy(ok.version >= 1)
    end)

    it("prices an example room when the building has no resources", function()
      local b = env:must(201, "POST", "/v1/buildings", { name = "Empty", timezone = "UTC",
        currency = "EUR", payment = { credits = true, invoice = true, card = true } })
      local s, body = env:put("/v1/buildings/" .. b.id .. "/policies/pricing",
        "return { price = function(ctx) return { money = -5 } end }", LUA)
      assert.equal(422, s)
      assert.truthy(body.error.message:find("example room", 1, true), body.error.message)
    end)
  end)
end)
