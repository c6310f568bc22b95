-- What the engine makes of odd validate and pricing results, end to end.
-- price() reads both results straight from the Lua stack when they are
-- flat tables of plain values, and through the JSON conversion otherwise
-- (engine/policy/policy_host.h, policy_set_call_parts_pick); either way a
-- quote or booking must answer exactly as it did when every result was
-- converted: the same status, the same refusal text, the same policy
-- error.  Each case is an override that answers normally on the engine's
-- upload checks (30, 60, 240, 480 minutes) and returns the odd result for
-- a 90-minute booking.
local H = require "http_env"

local LUA = { ["Content-Type"] = "text/x-lua" }
local MAX_MILLI = "1000000000000000"

-- result: the Lua expression returned at 90 minutes; want: 200 with the
-- quote's credits (or nil: no credit price), or {status, message} where
-- message is the whole message or, with `suffix`, its end.
local PRICING = {
  { "{ credits = 1500, unit = 'hour', money = 7000, money_before_discount = 9000 }", 1.5 },
  -- Unknown keys fail closed (policies/README.md §7), flat or converted.
  { "{ credits = 1500, unit = 'hour', money = 7000, money_before_discount = 9000, note = 'x' }",
    { 503, "the pricing policy returned an unknown key 'note'" } },
  { "{ credits = 1500, unit = 'hour', extra = { a = { b = 1 } } }",
    { 503, "the pricing policy returned an unknown key 'extra'" } },
  { "{ credits = 1500, unit = 'hour', tags = ctx.resource.tags }",
    { 503, "the pricing policy returned an unknown key 'tags'" } },
  { "{ credits = 1500, unit = 'hour', money = 9000, money_before_discount = 3000 }",
    { 503, "a discount never raises a price", suffix = true } },
  { "setmetatable({ credits = 1500, unit = 'hour' }, { __index = function() return 1 end })",
    1.5 },
  { "{ credits = 1500, unit = 'hour\\0x' }", 1.5 },
  { "{}", nil },
  { "ctx.resource", { 503, "the pricing policy returned an unknown key '", prefix = true } },
  { "{ credits = 2.0, unit = 'hour' }", { 503, "the pricing policy returned an invalid "
    .. "'credits' (an integer from 0 to " .. MAX_MILLI .. " is required)" } },
  { "{ credits = -1, unit = 'hour' }", { 503, "the pricing policy returned an invalid "
    .. "'credits' (an integer from 0 to " .. MAX_MILLI .. " is required)" } },
  { "{ money = 'x' }", { 503, "the pricing policy returned an invalid 'money' (an integer "
    .. "from 0 to 1125899906842624 is required)" } },
  { "{ money_before_discount = true }", { 503, "the pricing policy returned an invalid "
    .. "'money_before_discount' (an integer from 0 to 1125899906842624 is required)" } },
  { "{ credits = 1500 }", { 503, "the pricing policy must name the unit (hour or coin)" } },
  { "{ credits = 1500, unit = 'euro' }",
    { 503, "the pricing policy must name the unit (hour or coin)" } },
  { "{ 1, 2 }", { 503, "the pricing policy must return a table" } },
  { "true", { 503, "the pricing policy must return a table" } },
  { "nil", { 503, "the pricing policy must return a table" } },
  { "{ error = 'r\\xc3\\xa9serv\\xc3\\xa9' }", { 400, "réservé" } },
  { "{ error = ('e'):rep(700) }", { 400, ("e"):rep(511) } },
  { "{ error = 'a\\0b' }", { 400, "a" } },
  { "{ error = false }", { 400, "refused by policy" } },
  { "{ error = { why = 'x' } }", { 400, "refused by policy" } },
  { "{ credits = 0/0 }",
    { 503, "policy returned NaN or an infinite number at result.credits", suffix = true } },
  { "{ unit = '\\xff', credits = 1 }",
    { 503, "policy returned a string that is not UTF-8 at result.unit", suffix = true } },
  { "{ [('k'):rep(5000)] = 1 }",
    { 503, "policy returned a key longer than 4096 bytes at result", suffix = true } },
}

local VALIDATE = {
  { "{ ok = true, note = 'x', n = 2.5 }",
    { 503, "the validate policy returned an unknown key '", prefix = true } },
  { "setmetatable({}, { __index = function() return 'x' end })", 1.5 },
  { "{ error = 'nope' }", { 400, "nope" } },
  { "{ error = { x = 1 } }", { 400, "refused by policy" } },
  { "{ error = 7 }", { 400, "refused by policy" } },
  { "{ nested = { error = 'not at the top' } }",
    { 503, "the validate policy returned an unknown key 'nested'" } },
  { "{ f = function() end }",
    { 503, "policy returned a function at result.f", suffix = true } },
}

local function source(kind, result)
  if kind == "pricing" then
    return ("local M = {}\nfunction M.price(ctx)\n  local m = ctx.booking.minutes\n"
      .. "  if m == 90 then return %s end\n"
      .. "  return { credits = m * 1000 // 60, unit = 'hour', money = 100 }\nend\nreturn M\n")
      :format(result)
  end
  return ("local M = {}\nfunction M.validate(ctx)\n"
    .. "  if ctx.booking.minutes == 90 then return %s end\n  return true\nend\nreturn M\n")
    :format(result)
end

describe("odd validate and pricing results", function()
  local env, w, base
  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 1000, { start = "2026-01-01" })
    base = "/v1/buildings/" .. w.building.id .. "/policies/"
  end)
  teardown(function() if env then env:stop() end end)

  local function quote()
    return env:request("POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T10:30:00Z" })
  end

  local function check(kind, case)
    env:must(200, "PUT", base .. kind, source(kind, case[1]), LUA)
    local status, body = quote()
    local want = case[2]
    if type(want) ~= "table" then
      assert.equal(200, status, case[1])
      local credits = type(body.credits) == "table" and body.credits.amount or nil
      assert.equal(want, credits, case[1])
    else
      assert.equal(want[1], status, case[1])
      local msg = body.error.message
      if want.suffix then
        assert.equal(want[2], msg:sub(-#want[2]), case[1])
      elseif want.prefix then
        assert.equal(want[2], msg:sub(1, #want[2]), case[1])
      else
        assert.equal(want[2], msg, case[1])
      end
    end
    env:must(200, "DELETE", base .. kind)
  end

  it("prices with what pricing returned, or refuses or fails as before", function()
    for _, case in ipairs(PRICING) do
      check("pricing", case)
    end
  end)

  it("reads validate's verdict, or fails as before", function()
    for _, case in ipairs(VALIDATE) do
      check("validate", case)
    end
  end)

  it("books with a flat result and with one the engine had to convert", function()
    for i, result in ipairs({ "{ credits = 1500, unit = 'hour' }",
                              "setmetatable({ credits = 1500, unit = 'hour' },"
                                .. " { __index = function() return 1 end })" }) do
      env:must(200, "PUT", base .. "pricing", source("pricing", result), LUA)
      local day = ("2026-01-%02d"):format(11 + i)
      local b = env:must(201, "POST", "/v1/bookings", { resource_id = w.room.id,
        user_id = w.user.id, start = day .. "T09:00:00Z", ["end"] = day .. "T10:30:00Z",
        payment_method = "credits" })
      assert.equal(1.5, b.credits.amount)
      env:must(200, "DELETE", base .. "pricing")
    end
  end)

  it("writes nothing when pricing or refund returns an unknown key", function()
    local function count()
      return #env:must(200, "GET", "/v1/bookings?limit=500").data
    end
    env:must(200, "PUT", base .. "pricing",
             source("pricing", "{ credits = 1500, unit = 'hour', bonus = 1 }"), LUA)
    local before = count()
    local status, body = env:request("POST", "/v1/bookings", { resource_id = w.room.id,
      user_id = w.user.id, start = "2026-01-20T09:00:00Z", ["end"] = "2026-01-20T10:30:00Z",
      payment_method = "credits" })
    assert.equal(503, status)
    assert.equal("policy_error", body.error.code)
    assert.equal(before, count())
    env:must(200, "DELETE", base .. "pricing")
    local b = env:must(201, "POST", "/v1/bookings", { resource_id = w.room.id,
      user_id = w.user.id, start = "2026-01-21T09:00:00Z", ["end"] = "2026-01-21T10:00:00Z",
      payment_method = "credits" })
    env:must(200, "PUT", base .. "refund", "local M = {}\nfunction M.refund(ctx)\n"
      .. "  return { credits = ctx.booking.credits, money = 0, extra = true }\nend\nreturn M\n",
      LUA)
    status, body = env:request("POST", "/v1/bookings/" .. b.id .. "/cancel", {})
    assert.equal(503, status)
    assert.equal("the refund policy returned an unknown key 'extra'", body.error.message)
    assert.equal("confirmed", env:must(200, "GET", "/v1/bookings/" .. b.id).status)
    env:must(200, "DELETE", base .. "refund")
  end)
end)
