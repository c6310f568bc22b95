-- Per-building policy versions through the engine: upload, refusal with
-- the compiler's or self-check's message, history, rollback, back to the
-- default, isolation between buildings, candidate quotes and simulation.
local F = require "fixture"

local PREMIUM = require("sample_policies").PREMIUM

local function quote(db, w, room)
  return F.ok(db:quote { resource_id = room.id, user_id = w.user.id,
                         start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" })
end

describe("policy versions", function()
  local db, w, room
  before_each(function()
    db = F.open("2026-01-01T00:00:00Z")
    w = F.world(db)
    room = F.room(db, w.building)
    F.grant(db, w, 20, { start = "2026-01-01" })
  end)
  after_each(function() F.verified(db); db:close() end)

  it("uploads a version, records it on bookings, and keeps history", function()
    local put = F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing",
                                               source = PREMIUM, author = "ops" }))
    assert.equal(1, put.version)
    assert.equal(64, #put.sha256)
    assert.equal(6, quote(db, w, room).credits.amount)
    local b = F.ok(F.book(db, w, room, "2026-01-10T09:00:00Z", "2026-01-10T11:00:00Z"))
    assert.equal(put.label, b.policy_versions.pricing)
    assert.truthy(b.policy_versions.refund:find("^default:"))
    local active = F.ok(db:call("policies.get", { building_id = w.building.id })).policies
    assert.equal(1, active.pricing.version)
    assert.equal("default", active.refund.version)
    local hist = F.ok(db:call("policies.history", { building_id = w.building.id, kind = "pricing" }))
    assert.equal(1, #hist.data)
    assert.equal("ops", hist.data[1].author)
    assert.is_true(hist.data[1].active)
  end)

  it("refuses a syntax error with its line and keeps the running version", function()
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing", source = PREMIUM }))
    local r, err = db:call("policies.put", { building_id = w.building.id, kind = "pricing",
                                             source = "local M = {}\nfunction M.price(ctx)\n  return {\nend\nreturn M\n" })
    assert.is_nil(r)
    assert.equal(422, err.status)
    assert.equal("policy_error", err.code)
    assert.truthy(err.message:find(":4:"), err.message)
    assert.equal(6, quote(db, w, room).credits.amount)
  end)

  it("refuses a version whose own example fails", function()
    local bad = PREMIUM:gsub("credits = 3000, unit", "credits = 1, unit")
    local r, err = db:call("policies.put", { building_id = w.building.id, kind = "pricing",
                                             source = bad })
    assert.is_nil(r)
    assert.equal(422, err.status)
    assert.truthy(err.message:find("example"), err.message)
    assert.equal(2, quote(db, w, room).credits.amount)
  end)

  it("rolls back to an earlier version and back to the default", function()
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing", source = PREMIUM }))
    local v2 = PREMIUM:gsub("3000", "4000")
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing", source = v2 }))
    assert.equal(8, quote(db, w, room).credits.amount)
    F.ok(db:call("policies.rollback", { building_id = w.building.id, kind = "pricing", version = 1 }))
    assert.equal(6, quote(db, w, room).credits.amount)
    F.ok(db:call("policies.delete", { building_id = w.building.id, kind = "pricing" }))
    assert.equal(2, quote(db, w, room).credits.amount)
    local hist = F.ok(db:call("policies.history", { building_id = w.building.id, kind = "pricing" }))
    assert.equal(2, #hist.data)
  end)

  it("never lets one building's policy reach another's", function()
    local b2 = F.ok(db:create_building { name = "Other", timezone = "UTC", currency = "USD" })
    F.ok(db:update_tenant { id = w.tenant.id, building_ids = { w.building.id, b2.id } })
    local room2 = F.room(db, b2)
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing", source = PREMIUM }))
    local q2 = F.ok(db:quote { resource_id = room2.id, user_id = w.user.id,
                               start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" })
    assert.equal(2, q2.money and q2.credits and q2.credits.amount or 2)
    assert.equal(6, quote(db, w, room).credits.amount)
  end)

  it("quotes under a candidate without activating it", function()
    local q = F.ok(db:quote { resource_id = room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z",
      candidate = { kind = "pricing", source = PREMIUM } })
    assert.equal(6, q.credits.amount)
    assert.equal(2, quote(db, w, room).credits.amount)
    local tenant = db:as { role = "tenant_user", tenant_id = w.tenant.id, user_id = w.user.id }
    local r, err = tenant:quote { resource_id = room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z",
      candidate = { kind = "pricing", source = PREMIUM } }
    assert.is_nil(r)
    assert.equal(403, err.status)
  end)

  it("simulates a candidate over past bookings, writing nothing", function()
    F.ok(F.book(db, w, room, "2026-01-10T09:00:00Z", "2026-01-10T11:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-11T09:00:00Z", "2026-01-11T10:00:00Z"))
    local before = #F.entries(db, {})
    local sim = F.ok(db:call("policies.simulate", { building_id = w.building.id, kind = "pricing",
      source = PREMIUM, from = "2026-01-01", to = "2026-02-01" }))
    assert.equal(2, sim.totals.bookings)
    assert.equal(3, sim.totals.charged_credits)
    assert.equal(9, sim.totals.candidate_credits)
    assert.equal(6, sim.bookings[1].candidate.credits)
    assert.equal(before, #F.entries(db, {}))
    assert.equal(2, quote(db, w, room).credits.amount)
  end)

  it("keeps hours and coins apart in a simulation's totals", function()
    F.ok(F.book(db, w, room, "2026-01-10T09:00:00Z", "2026-01-10T11:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-11T09:00:00Z", "2026-01-11T10:00:00Z"))
    local coins = F.room(db, w.building, { name = "Coin room", unit = "coin", per_hour = 4 })
    F.grant(db, w, 50, { start = "2026-01-01" }, { unit = "coin" })
    F.ok(F.book(db, w, coins, "2026-01-12T09:00:00Z", "2026-01-12T10:00:00Z"))
    local sim = F.ok(db:call("policies.simulate", { building_id = w.building.id, kind = "pricing",
      source = PREMIUM, from = "2026-01-01", to = "2026-02-01" }))
    local hour, coin = sim.totals.by_unit.hour, sim.totals.by_unit.coin
    assert.equal(3, hour.charged_credits)
    assert.equal(4, coin.charged_credits)
    assert.equal(hour.charged_credits + coin.charged_credits, sim.totals.charged_credits)
    -- A candidate that prices nothing: what was charged still counts.
    local failing = "local M = {}\nfunction M.price(ctx) error('no') end\nreturn M\n"
    sim = F.ok(db:call("policies.simulate", { building_id = w.building.id, kind = "pricing",
      source = failing, from = "2026-01-01", to = "2026-02-01" }))
    assert.equal(3, sim.totals.by_unit.hour.charged_credits)
    assert.equal(4, sim.totals.by_unit.coin.charged_credits)
    assert.equal(0, sim.totals.by_unit.hour.candidate_credits)
  end)
end)
