-- A corpus of hostile policies.  Each is uploaded as a building's pricing
-- policy (or the kind it names): it is either refused at upload with a
-- clear 422, or accepted and then stopped at run time with a 503
-- policy_error within its budget.  Either way the ledger is untouched, the
-- engine keeps serving, and the other buildings never notice.
local F = require "fixture"

local function price_returning(expr)
  return "return { price = function(ctx) return " .. expr .. " end }"
end

local corpus = {
  { "infinite loop", "return { price = function(ctx) while true do end end }" },
  { "loop inside pcall", [[return { price = function(ctx)
      pcall(function() while true do end end)
      while true do end end }]] },
  { "loop inside nested pcalls", [[return { price = function(ctx)
      for i = 1, 10 do pcall(pcall, function() while true do end end) end
      return { credits = 1, unit = "hour" } end }]] },
  { "loop in the message handler of xpcall", [[return { price = function(ctx)
      local function loop() while true do end end
      xpcall(loop, loop) return { credits = 1, unit = "hour" } end }]] },
  { "coroutine loop", [[return { price = function(ctx)
      local co = coroutine.wrap(function() while true do end end) co() end }]] },
  { "memory bomb (table)", [[return { price = function(ctx)
      local t = {} for i = 1, 1e9 do t[i] = i end end }]] },
  { "string bomb (rep)", price_returning("{ credits = #string.rep('x', 1e9), unit = 'hour' }") },
  { "string doubling", [[return { price = function(ctx)
      local s = "x" while true do s = s .. s end end }]] },
  { "catastrophic pattern", [[return { price = function(ctx)
      local s = string.rep("a", 4096)
      return { credits = s:find(".-.-.-.-b") and 1 or 0, unit = "hour" } end }]] },
  { "os.execute", price_returning("{ credits = os.execute('touch /tmp/allot-pwned'), unit = 'hour' }") },
  { "io.open", price_returning("{ credits = io.open('/etc/passwd'):read('a'), unit = 'hour' }") },
  { "require", price_returning("{ credits = require('os'), unit = 'hour' }") },
  { "load", price_returning("{ credits = load('return 1')(), unit = 'hour' }") },
  { "dofile", price_returning("{ credits = dofile('/etc/passwd'), unit = 'hour' }") },
  { "debug", price_returning("{ credits = debug.getregistry(), unit = 'hour' }") },
  { "string.dump", price_returning("{ credits = #string.dump(function() end), unit = 'hour' }") },
  { "package.loadlib", price_returning("{ credits = package.loadlib('libc.so.6', 'system'), unit = 'hour' }") },
  { "global pollution at load", "price_everywhere = 1 return { price = function() end }" },
  { "global write at call", "return { price = function(ctx) leaked = ctx return {} end }" },
  { "string metatable tampering", [[return { price = function(ctx)
      getmetatable("").__index = function() return 1 end
      return { credits = 1, unit = "hour" } end }]] },
  { "library tampering", [[return { price = function(ctx)
      string.rep = function() return "" end
      return { credits = 1, unit = "hour" } end }]] },
  { "binary chunk", "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86" },
  { "fractional credits beyond 3 decimals", price_returning("{ credits = 1.2345, unit = 'hour' }") },
  { "NaN credits", price_returning("{ credits = 0/0, unit = 'hour' }") },
  { "negative credits", price_returning("{ credits = -1000, unit = 'hour' }") },
  { "huge credits", price_returning("{ credits = math.maxinteger, unit = 'hour' }") },
  { "credits of the wrong type", price_returning("{ credits = 'free', unit = 'hour' }") },
  { "a function as result", price_returning("function() end") },
  { "unknown unit", price_returning("{ credits = 1000, unit = 'gold' }") },
  { "no table returned", "return 42" },
  { "error thrown", "return { price = function(ctx) error('boom') end }" },
  { "order policy drops a lot", "return { order = function(ctx) return {} end }", "order" },
  { "refund above what was paid", [[return { refund = function(ctx)
      return { credits = ctx.booking.credits * 2, money = 0 } end }]], "refund" },
  { "eligibility returns a number", "return { eligible = function(ctx) return 1 end }", "eligibility" },
  -- Not pure: state kept between calls (PRODUCT.md §6 "writes nothing").
  { "pricing that counts its calls", [[local n = 0
    return { price = function(ctx) n = n + 1 return { credits = n * 1000, unit = "hour" } end }]] },
  { "refund that remembers the last booking, with an example", [[local last = 0
    return { refund = function(ctx)
      local r = last last = ctx.booking.credits return { credits = r, money = 0 } end,
      examples = { { ctx = { booking = { credits = 2000, money = 0 } },
                     expect = { credits = 0, money = 0 } } } }]], "refund" },
  -- Last: it moves the clock past the month's end.
  { "rollover creates credits", [[return { rollover = function(ctx)
      return { carry = ctx.unused + 1000 } end }]], "rollover" },
}

describe("a hostile policy", function()
  local db, w, room, lot_before, other
  setup(function()
    db = F.open("2026-01-01T00:00:00Z")
    w = F.world(db)
    room = F.room(db, w.building)
    F.grant(db, w, 50, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 5 } })
    local b2 = F.ok(db:create_building { name = "Other", timezone = "UTC", currency = "USD" })
    F.ok(db:update_tenant { id = w.tenant.id, building_ids = { w.building.id, b2.id } })
    other = F.room(db, b2)
  end)
  teardown(function() F.verified(db); db:close() end)

  local function slot(i)
    local h = 6 + i % 12
    return ("2026-01-%02dT%02d:00:00Z"):format(10 + i // 12, h),
           ("2026-01-%02dT%02d:00:00Z"):format(10 + i // 12, h + 1)
  end

  -- Runs what a policy of this kind decides; returns the refusals seen.
  local function exercise(kind, i, booked)
    local s, e = slot(i)
    local out = {}
    local function note(r, err) if r == nil then out[#out + 1] = err end end
    if kind == "refund" then
      note(db:cancel { id = booked.id })
    else
      note(db:quote { resource_id = room.id, user_id = w.user.id, start = s, ["end"] = e })
      note(F.book(db, w, room, s, e))
    end
    return out
  end

  for i, case in ipairs(corpus) do
    local name, source, kind = case[1], case[2], case[3] or "pricing"
    it(name .. " is refused or stopped, and the ledger is untouched", function()
      local booked
      if kind == "refund" then
        booked = F.ok(F.book(db, w, room, slot(i)))
      end
      local entries = #F.entries(db, { limit = 500 })
      local t0 = os.clock()
      local put, err = db:call("policies.put", { building_id = w.building.id, kind = kind,
                                                 source = source })
      if put == nil then
        -- A binary chunk is not even text: refused as a bad request.
        assert.truthy(err.status == 422 or err.status == 400, err.message)
        assert.truthy(err.code == "policy_error" or err.code == "invalid_request")
        assert.truthy(#err.message > 0)
      elseif kind == "rollover" then
        -- The rollover policy runs at the month's end: it fails closed
        -- there (503), leaving that period end unprocessed — nothing
        -- expires or carries — while the engine keeps serving.
        local ok, e = db:set_clock("2026-02-01T00:00:01Z")
        assert.is_nil(ok)
        assert.equal(503, e.status)
        -- February opens (its grant does not depend on January's end).
        assert.equal(0, #F.entries(db, { kind = "expire" }))
        assert.equal(0, #F.entries(db, { kind = "rollover_out" }))
        F.ok(db:call("policies.delete", { building_id = w.building.id, kind = kind }))
        -- Fixed: the period end is processed at its own instant, with the
        -- capped carry of the default policy.
        local carried = F.entries(db, { kind = "rollover_in" })
        assert.equal(1, #carried)
        assert.equal(5, carried[1].amount)
        assert.equal("2026-01-31T23:00:00Z", carried[1].effective_at)
        return
      else
        local refusals = exercise(kind, i, booked)
        assert.truthy(#refusals > 0, name .. " was neither refused nor stopped")
        for _, o in ipairs(refusals) do
          assert.truthy(o.status == 503 or o.status == 400 or o.status == 409, o.message)
          assert.is_nil(o.message:find("stack traceback", 1, true))
        end
        F.ok(db:call("policies.delete", { building_id = w.building.id, kind = kind }))
      end
      assert.truthy(os.clock() - t0 < 5, "took too long")
      assert.equal(entries, #F.entries(db, { limit = 500 }))
      -- The engine still serves, and the other building was never affected.
      local q = F.ok(db:quote { resource_id = other.id, user_id = w.user.id,
                                start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T10:00:00Z" })
      assert.truthy(q.money)
      local f = io.open("/tmp/allot-pwned")
      assert.is_nil(f)
    end)
  end
end)

describe("a rollover policy carrying past the allocation's cap", function()
  it("fails closed at the period end, and the capped carry follows its fix", function()
    local db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 4 } })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"))
    -- Within unused (8) but past the cap (4): the cap bounds the policy.
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "rollover", source = [[
      return { rollover = function(ctx) return { carry = ctx.unused } end }]] }))
    local ok, e = db:set_clock("2026-02-01T00:00:01Z")
    assert.is_nil(ok)
    assert.equal(503, e.status)
    assert.matches("cap", e.message)
    assert.equal(0, #F.entries(db, { kind = "rollover_in" }))
    assert.equal(0, #F.entries(db, { kind = "expire" }))
    F.ok(db:call("policies.delete", { building_id = w.building.id, kind = "rollover" }))
    local carried = F.entries(db, { kind = "rollover_in" })
    assert.equal(1, #carried)
    assert.equal(4, carried[1].amount)
    F.verified(db)
    db:close()
  end)
end)

describe("an allocation over two buildings whose eligibility policies differ", function()
  -- The first building's policy admits nobody, the second's is the default:
  -- without a resource (the wallet, a per-user period opening) the user
  -- holds the credit, since it may spend it in the second building.
  local function setup_world(pool)
    local db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local b2 = F.ok(db:create_building { name = "Annex", timezone = "Europe/Paris", currency = "USD" })
    F.ok(db:update_tenant { id = w.tenant.id, building_ids = { w.building.id, b2.id } })
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "eligibility",
                                   source = "return { eligible = function(ctx) return false end }" }))
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" },
            { building_ids = { w.building.id, b2.id }, pool = pool })
    return db, w, F.room(db, w.building), F.room(db, b2)
  end

  for _, pool in ipairs { "shared", "per_user" } do
    it("lists the " .. pool .. " lot in the wallet, and it pays only in the admitting building", function()
      local db, w, here, there = setup_world(pool)
      assert.equal(10, (F.available(db, w.user)))
      local refused = F.book(db, w, here, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")
      assert.is_nil(refused and refused.id)
      F.ok(F.book(db, w, there, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"))
      assert.equal(9, (F.available(db, w.user)))
      -- The next period opens for the user too (per-user: one lot each).
      F.ok(db:set_clock("2026-02-02T00:00:00Z"))
      assert.equal(10, (F.available(db, w.user)))
      F.verified(db)
      db:close()
    end)
  end
end)
