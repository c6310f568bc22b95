-- Credit rules beyond the reference scenarios: time zones and period edges,
-- catch-up, pools, targeting, cross-building lots, unlimited lots, refunds
-- into expired lots, idempotent retries and bad input.
local F = require "fixture"

local function lots_of(db, alloc)
  return F.ok(db:allocation { id = alloc.id }).lots
end

describe("the ledger", function()
  local db
  after_each(function()
    if db then F.verified(db); db:close(); db = nil end
  end)

  it("starts monthly periods at local midnight across a DST change", function()
    db = F.open("2026-03-01T00:00:00Z")
    local w = F.world(db, { timezone = "Europe/Paris" })
    local a = F.grant(db, w, 10, { start = "2026-03-01", recurrence = "monthly" })
    assert(db:set_clock("2026-04-02T00:00:00Z"))
    local lots = lots_of(db, a)
    -- March starts at 23:00 UTC the day before (CET), April at 22:00 (CEST).
    assert.equal("2026-02-28T23:00:00Z", lots[1].valid_from)
    assert.equal("2026-03-31T22:00:00Z", lots[1].valid_until)
    assert.equal("2026-03-31T22:00:00Z", lots[2].valid_from)
    assert.equal("2026-04-30T22:00:00Z", lots[2].valid_until)
  end)

  it("starts weekly periods on Monday and a mid-period start runs to the period end", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "America/New_York" })
    -- 2026-01-01 is a Thursday: the first lot runs Thursday to Monday.
    local a = F.grant(db, w, 5, { start = "2026-01-01", recurrence = "weekly" })
    assert(db:set_clock("2026-01-13T00:00:00Z"))
    local lots = lots_of(db, a)
    assert.equal("2026-01-01T05:00:00Z", lots[1].valid_from)
    assert.equal("2026-01-05T05:00:00Z", lots[1].valid_until)
    assert.equal("2026-01-12T05:00:00Z", lots[2].valid_until)
  end)

  it("follows the zone rules of the system's tz database (changed after 2022)", function()
    -- Mexico City has kept -06:00 all year since October 2022; Almaty has
    -- been at +05:00 since March 2024 (+06:00 before).
    db = F.open("2027-06-01T00:00:00Z")
    local w = F.world(db, { timezone = "America/Mexico_City" })
    local a = F.grant(db, w, 5, { start = "2027-06-01", recurrence = "monthly" })
    assert(db:set_clock("2027-07-02T00:00:00Z"))
    local lots = lots_of(db, a)
    assert.equal("2027-06-01T06:00:00Z", lots[1].valid_from)
    assert.equal("2027-07-01T06:00:00Z", lots[1].valid_until)
    F.verified(db)
    db:close()
    db = F.open("2027-02-01T00:00:00Z")
    w = F.world(db, { timezone = "Asia/Almaty" })
    a = F.grant(db, w, 5, { start = "2027-03-01", recurrence = "monthly" })
    assert(db:set_clock("2027-04-02T00:00:00Z"))
    lots = lots_of(db, a)
    assert.equal("2027-02-28T19:00:00Z", lots[1].valid_from)
    assert.equal("2027-03-31T19:00:00Z", lots[1].valid_until)
  end)

  it("handles a 31 January start: February is a whole calendar month", function()
    db = F.open("2026-01-31T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local a = F.grant(db, w, 4, { start = "2026-01-31", recurrence = "monthly" })
    assert(db:set_clock("2026-03-05T00:00:00Z"))
    local lots = lots_of(db, a)
    assert.equal(3, #lots)
    assert.equal("2026-01-31T00:00:00Z", lots[1].valid_from)
    assert.equal("2026-02-01T00:00:00Z", lots[1].valid_until)
    assert.equal("2026-03-01T00:00:00Z", lots[2].valid_until)
    assert.equal("2026-04-01T00:00:00Z", lots[3].valid_until)
  end)

  it("catches up several missed periods in order, exactly once", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 3 } })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"))
    assert(db:set_clock("2026-05-15T00:00:00Z"))       -- four boundaries at once
    assert(db:set_clock("2026-05-15T00:00:01Z"))       -- and nothing twice
    assert.equal(13, F.available(db, w.user))
    local grants = F.entries(db, { tenant_id = w.tenant.id, kind = "grant" })
    local ins = F.entries(db, { tenant_id = w.tenant.id, kind = "rollover_in" })
    local expired = F.entries(db, { tenant_id = w.tenant.id, kind = "expire" })
    assert.equal(5, #grants)
    assert.equal(4, #ins)
    assert.equal(4, #expired)
    assert.equal(-5, expired[1].amount)          -- January: 8 left, 3 carried
    assert.equal(-10, expired[2].amount)         -- February: 13 left, 3 carried
  end)

  it("gives each targeted user their own lot in a per-user pool", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local bo = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bo", email = "b@x.io" })
    local room = F.room(db, w.building)
    F.grant(db, w, 2, { start = "2026-01-01", recurrence = "monthly" }, { pool = "per_user" })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"))
    assert.equal(0, F.available(db, w.user))
    assert.equal(2, F.available(db, bo))
    local r, err = F.book(db, w, room, "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z")
    assert.is_nil(r)
    assert.equal("insufficient_credits", err.code)
  end)

  it("targets users by role and by name", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { roles = { "resource_reservation_reserver" } })
    local bo = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bo", email = "b@x.io" })
    F.grant(db, w, 4, { start = "2026-01-01" },
            { targeting = { type = "roles", roles = { "resource_reservation_reserver" } } })
    F.grant(db, w, 1, { start = "2026-01-01" },
            { targeting = { type = "users", user_ids = { bo.id } } })
    assert.equal(4, F.available(db, w.user))
    assert.equal(1, F.available(db, bo))
  end)

  it("pays in another building only for cross-building lots of a cross-building tenant", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { cross_building = true })
    local b2 = F.ok(db:create_building { name = "Annex", timezone = "Europe/Paris",
                                         currency = "USD" })
    F.ok(db:update_tenant { id = w.tenant.id, building_ids = { w.building.id, b2.id } })
    local far = F.room(db, b2)
    F.grant(db, w, 3, { start = "2026-01-01" })
    local r, err = F.book(db, w, far, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")
    assert.is_nil(r)
    assert.equal(409, err.status)
    F.grant(db, w, 3, { start = "2026-01-01" }, { cross_building = true })
    F.ok(F.book(db, w, far, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"))
  end)

  it("records usage of unlimited lots without a balance, and spends limited lots first", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    local unl = F.grant(db, w, "unlimited", { start = "2026-01-01" })
    local lim = F.grant(db, w, 1, { start = "2026-01-01" })
    local b = F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T12:00:00Z"))
    assert.equal(2, #b.credits.paid_from)
    assert.equal(lots_of(db, lim)[1].id, b.credits.paid_from[1].lot_id)
    assert.equal("unlimited", lots_of(db, unl)[1].balance)
    assert.equal(2, lots_of(db, unl)[1].used)
    local r, err = db:allocate { tenant_id = w.tenant.id, building_ids = { w.building.id },
      unit = "coin", lines = { { scope = "all", amount = "unlimited" } },
      schedule = { start = "2026-01-01" } }
    assert.is_nil(r)
    assert.equal(400, err.status)
  end)

  it("refunds into an expired lot and expires it again at once", function()
    db = F.open("2026-01-20T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    local a = F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    local b = F.ok(F.book(db, w, room, "2026-01-30T09:00:00Z", "2026-01-30T13:00:00Z"))
    assert(db:set_clock("2026-02-02T00:00:00Z"))
    local c = F.ok(db:cancel { id = b.id })             -- an admin: full refund
    assert.equal(4, c.refund.credits)
    local jan = lots_of(db, a)[1]
    assert.equal(0, jan.balance)
    local entries = F.entries(db, { lot_id = jan.id })
    local kinds = {}
    for _, e in ipairs(entries) do kinds[#kinds + 1] = e.kind .. ":" .. tostring(e.amount) end
    assert.same({ "grant:10", "debit:-4", "expire:-6", "refund:4", "expire:-4" }, kinds)
    assert.equal(10, F.available(db, w.user))
  end)

  it("keeps bookings and credits when an allocation ends, without new periods", function()
    db = F.open("2026-01-10T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    local a = F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    local later = F.ok(F.book(db, w, room, "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"))
    local ended = F.ok(db:end_allocation { id = a.id, ["end"] = "2026-01-15" })
    assert.equal("2026-01-15", ended.schedule["end"])
    assert.equal(10, F.available(db, w.user))          -- January keeps its credits
    assert.equal("confirmed", F.ok(db:booking { id = later.id }).status)
    assert(db:set_clock("2026-02-10T00:00:00Z"))
    assert.equal(0, F.available(db, w.user))
  end)

  -- PRODUCT.md §3: "A once lot with an end date expires at that date", also
  -- when the end is given after the lot began (its lot ends with it).
  it("expires a once allocation's lot at the end it is given later", function()
    db = F.open("2026-04-02T00:00:00Z")
    local w = F.world(db, { timezone = "Europe/Warsaw" })
    local room = F.room(db, w.building)
    local a = F.grant(db, w, 5, { start = "2026-03-01" })
    local kept = F.ok(F.book(db, w, room, "2026-07-20T09:00:00Z", "2026-07-20T10:00:00Z"))
    assert.equal(4, F.available(db, w.user))
    local ended = F.ok(db:end_allocation { id = a.id, ["end"] = "2026-06-30" })
    assert.equal("2026-06-30", ended.schedule["end"])
    assert.equal("2026-06-30T22:00:00Z", ended.lots[1].valid_until)
    assert.equal(4, F.available(db, w.user))
    assert(db:set_clock("2026-07-01T00:00:00Z"))
    assert.equal(0, F.available(db, w.user))
    local expired = F.entries(db, { tenant_id = w.tenant.id, kind = "expire" })
    assert.equal(1, #expired)
    assert.equal(-4, expired[1].amount)
    assert.equal("confirmed", F.ok(db:booking { id = kept.id }).status) -- paid, never un-paid
    -- An end already past: the lot ends at once.
    local b = F.grant(db, w, 3, { start = "2026-05-01" })
    assert.equal(3, F.available(db, w.user))
    F.ok(db:end_allocation { id = b.id, ["end"] = "2026-06-15" })
    assert(db:set_clock("2026-07-01T00:00:02Z"))
    assert.equal(0, F.available(db, w.user))
  end)

  it("answers a retried request once, and refuses a key reused for another request", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01" })
    local args = { resource_id = room.id, user_id = w.user.id, payment_method = "credits",
                   start = "2026-01-05T09:00:00Z", ["end"] = "2026-01-05T10:00:00Z" }
    local first, s1, replay1 = db:book(args, { idempotency_key = "k-1" })
    local again, s2, replay2 = db:book(args, { idempotency_key = "k-1" })
    assert.equal(first.id, again.id)
    assert.same({ 201, 201, false, true }, { s1, s2, replay1, replay2 })
    assert.equal(9, F.available(db, w.user))
    args.start, args["end"] = "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z"
    local r, err = db:book(args, { idempotency_key = "k-1" })
    assert.is_nil(r)
    assert.equal("idempotency_conflict", err.code)
  end)

  it("refuses bad input with a clear error and leaves the ledger unchanged", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    local a = F.grant(db, w, 10, { start = "2026-01-01" })
    local lot = lots_of(db, a)[1].id
    local before = #F.entries(db, {})
    local function refused(field_hint, op, args)
      local r, err = db:call(op, args)
      assert.is_nil(r, op)
      assert.equal(400, err.status, err.message)
      assert.equal("invalid_request", err.code)
      assert.truthy(#err.message > 5)
      if field_hint then assert.truthy(err.field:find(field_hint, 1, true), err.field) end
    end
    local base = { tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
                   schedule = { start = "2026-01-01" } }
    local function with(lines, extra)
      local t = {}
      for k, v in pairs(base) do t[k] = v end
      t.lines = lines
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end
    refused("amount", "allocations.create", with { { scope = "all", amount = -5 } })
    refused("amount", "allocations.create", with { { scope = "all", amount = 0 } })
    refused("amount", "allocations.create", with { { scope = "all", amount = 1.2345 } })
    refused("amount", "allocations.create", with { { scope = "all", amount = 2e12 } })
    refused("schedule.end", "allocations.create",
            with({ { scope = "all", amount = 1 } },
                 { schedule = { start = "2026-02-01", ["end"] = "2026-01-01" } }))
    refused("tenant_id", "allocations.create",
            with({ { scope = "all", amount = 1 } }, { tenant_id = "ten_999" }))
    refused("balance", "allocations.create", with({ { scope = "all", amount = 1 } },
                                                 { balance = 100 }))
    local annex = F.ok(db:create_building { name = "Annex", timezone = "UTC", currency = "USD" })
    refused("building_ids", "allocations.create",
            with({ { scope = "all", amount = 1 } }, { building_ids = { annex.id } }))
    refused("amount", "adjustments.create", { lot_id = lot, amount = 0.0001 })
    refused("end", "bookings.create", { resource_id = room.id, user_id = w.user.id,
      start = "2026-01-05T10:00:00Z", ["end"] = "2026-01-05T09:00:00Z",
      payment_method = "credits" })
    refused("start", "bookings.create", { resource_id = room.id, user_id = w.user.id,
      start = "yesterday", ["end"] = "2026-01-05T09:00:00Z", payment_method = "credits" })
    refused("timezone", "buildings.create", { name = "X", timezone = "Mars/Olympus",
                                              currency = "USD" })
    local r, err = db:book { resource_id = "res_999", user_id = w.user.id, payment_method = "card",
      start = "2026-01-05T09:00:00Z", ["end"] = "2026-01-05T10:00:00Z" }
    assert.is_nil(r)
    assert.equal(404, err.status)
    r, err = db:adjust { lot_id = lot, amount = -11 }
    assert.is_nil(r)
    assert.equal(409, err.status)
    assert.equal(before, #F.entries(db, {}))
    assert.equal(10, F.available(db, w.user))
  end)

  it("patches payment settings key by key, leaving the others as they were", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { payment = { credits = false, invoice = false, card = false } })
    local patch = { id = w.building.id, payment = { invoice = true } }
    local b = F.ok(db:update_building(patch))
    assert.same({ credits = false, invoice = true, card = false }, b.payment)
    assert.same({ invoice = true }, patch.payment)
  end)

  it("keeps a tenant's principals out of other tenants' objects", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local t2 = F.ok(db:create_tenant { name = "Other", building_ids = { w.building.id } })
    local u2 = F.ok(db:create_user { tenant_id = t2.id, name = "Zed", email = "z@x.io" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01" })
    local b = F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"))
    local other = db:as { role = "tenant_admin", tenant_id = t2.id }
    local me = db:as { role = "tenant_user", tenant_id = t2.id, user_id = u2.id }
    for _, who in ipairs { other, me } do
      local r, err = who:booking { id = b.id }
      assert.is_nil(r); assert.equal(404, err.status)
      r, err = who:wallet { user_id = w.user.id }
      assert.is_nil(r); assert.equal(404, err.status)
      r, err = who:cancel { id = b.id }
      assert.is_nil(r); assert.equal(404, err.status)
      r, err = who:allocate { tenant_id = t2.id, building_ids = { w.building.id }, unit = "hour",
        lines = { { scope = "all", amount = 5 } }, schedule = { start = "2026-01-01" } }
      assert.is_nil(r); assert.equal(403, err.status)
    end
    assert.equal(0, #F.ok(other:bookings {}).data)
    -- A tenant user's own quote needs no user_id.
    local self_user = db:as { role = "tenant_user", tenant_id = w.tenant.id, user_id = w.user.id }
    local q = F.ok(self_user:quote { resource_id = room.id, start = "2026-01-07T09:00:00Z",
                                     ["end"] = "2026-01-07T10:00:00Z" })
    assert.equal(1, q.credits.amount)
    local viewer = db:as { role = "viewer" }
    local r, err = viewer:adjust { lot_id = F.ok(db:wallet { user_id = w.user.id }).lots[1].id,
                                   amount = 5 }
    assert.is_nil(r); assert.equal(403, err.status)
  end)
end)
