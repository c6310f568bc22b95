-- The reference scenarios of PRODUCT.md §10, driven through the Lua module
-- against a real SQLite file, with `allot verify` after each.
local F = require "fixture"
local D = require "db_shell"

describe("reference scenario", function()
  local db
  after_each(function()
    if db then F.verified(db); db:close(); db = nil end
  end)

  it("S1 use-it-or-lose-it: unused monthly hours expire at the month's end", function()
    db = F.open("2026-01-01T08:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    for day = 5, 7 do
      local s = ("2026-01-%02dT09:00:00Z"):format(day)
      local e = ("2026-01-%02dT10:00:00Z"):format(day)
      F.ok(F.book(db, w, room, s, e))
    end
    assert.equal(7, F.available(db, w.user))
    assert(db:set_clock("2026-02-01T12:00:00Z"))
    assert.equal(10, F.available(db, w.user))
    local expired = F.entries(db, { tenant_id = w.tenant.id, kind = "expire" })
    assert.equal(1, #expired)
    assert.equal(-7, expired[1].amount)
  end)

  it("S2 capped rollover carries at most the cap into the next month", function()
    db = F.open("2026-01-01T08:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 5 } })
    F.ok(F.book(db, w, room, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z"))
    assert(db:set_clock("2026-02-02T00:00:00Z"))
    assert.equal(15, F.available(db, w.user))
    local out = F.entries(db, { tenant_id = w.tenant.id, kind = "rollover_out" })
    local expired = F.entries(db, { tenant_id = w.tenant.id, kind = "expire" })
    assert.equal(-5, out[1].amount)
    assert.equal(-2, expired[1].amount)
  end)

  -- PRODUCT.md §3: "a cap on the carried total: carried = min(unused balance
  -- of the ending period's lots, cap)" -- every line of the allocation
  -- together, taken line by line in the allocation's order; each line's
  -- share lands in a rollover lot of that line (its scope kept).
  it("S2 with several lines: the cap is on the allocation's carried total", function()
    local dir
    db, dir = F.open("2026-01-01T08:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    local other = F.room(db, w.building)
    F.grant(db, w, 6, { start = "2026-01-01", recurrence = "monthly",
                        rollover = { enabled = true, cap = 3 } },
            { lines = { { scope = "all", amount = 6 },
                        { scope = "resources", resource_ids = { other.id }, amount = 4 } } })
    -- 5 of the all-resources line's 6 spent on `room` (the other line does
    -- not cover it): 1 + 4 unused, 3 carried (1 from the first line, 2 from
    -- the second), 2 expire.
    F.ok(F.book(db, w, room, "2026-01-12T09:00:00Z", "2026-01-12T14:00:00Z"))
    assert(db:set_clock("2026-02-02T00:00:00Z"))
    local ins = F.entries(db, { tenant_id = w.tenant.id, kind = "rollover_in" })
    local carried = {}
    for _, e in ipairs(ins) do carried[#carried + 1] = e.amount end
    table.sort(carried)
    assert.same({ 1, 2 }, carried)
    local expired = 0
    for _, e in ipairs(F.entries(db, { tenant_id = w.tenant.id, kind = "expire" })) do
      expired = expired + e.amount
    end
    assert.equal(-2, expired)
    assert.equal(6 + 4 + 3, F.available(db, w.user))
    F.verified(db)
    -- Nothing used in February: 10 + 3 unused, only 3 go on.
    assert(db:set_clock("2026-03-02T00:00:00Z"))
    assert.equal(6 + 4 + 3, F.available(db, w.user))
    F.verified(db)
    -- verify checks the total: one line's rollover lot raised past it.
    D.exec(F.db_file(dir), "UPDATE lot SET granted = granted + 1000 WHERE kind = 'rollover'"
      .. " AND line_idx = 0 AND period_n = (SELECT min(period_n) FROM lot WHERE kind = 'rollover')")
    local ok, problems = db:verify()
    assert.is_false(ok)
    assert.truthy(table.concat(problems, "\n"):find("a rollover never exceeds its cap", 1, true))
    db:close()
    db = nil
  end)

  it("S3 no partial payment: credits are refused, the card pays", function()
    db = F.open("2026-03-01T08:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 3, { start = "2026-03-01" })
    local q = F.ok(db:quote { resource_id = room.id, user_id = w.user.id,
                              start = "2026-03-10T09:00:00Z", ["end"] = "2026-03-10T13:00:00Z" })
    for _, m in ipairs(q.payment_methods) do assert.are_not.equal("credits", m) end
    local r, err = F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z")
    assert.is_nil(r)
    assert.equal(409, err.status)
    assert.equal("insufficient_credits", err.code)
    assert.equal(3, F.available(db, w.user))
    local card = F.ok(F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z", "card"))
    assert.equal("card", card.payment_method)
    assert.equal(28000, card.money.amount)
    assert.equal(3, F.available(db, w.user))
  end)

  it("S4 increments: 90 minutes cost 1.5, 45 minutes are refused, 30 cost 0.5", function()
    db = F.open("2026-03-01T08:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 5, { start = "2026-03-01" })
    local b = F.ok(F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T10:30:00Z"))
    assert.equal(1.5, b.credits.amount)
    assert.equal(3.5, b.credits.balance_after)
    assert.equal(3.5, F.available(db, w.user))
    local r, err = F.book(db, w, room, "2026-03-11T09:00:00Z", "2026-03-11T09:45:00Z")
    assert.is_nil(r)
    assert.equal(400, err.status)
    assert.equal("invalid_request", err.code)
    assert.equal(3.5, F.available(db, w.user))
    F.ok(F.book(db, w, room, "2026-03-12T09:00:00Z", "2026-03-12T09:30:00Z"))
    assert.equal(3, F.available(db, w.user))
  end)

  it("S5 earliest expiry first, and the soonest lot expires on its day", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    local forever = F.grant(db, w, 10, { start = "2026-01-01" })
    local march = F.grant(db, w, 5, { start = "2026-01-01", ["end"] = "2026-03-31" })
    local feb = F.grant(db, w, 3, { start = "2026-01-01", ["end"] = "2026-02-28" })
    assert(db:set_clock("2026-02-10T08:00:00Z"))
    F.ok(F.book(db, w, room, "2026-02-10T09:00:00Z", "2026-02-10T15:00:00Z"))
    local function balance(a)
      return F.ok(db:allocation { id = a.id }).lots[1].balance
    end
    assert.equal(10, balance(forever))
    assert.equal(2, balance(march))
    assert.equal(0, balance(feb))
    -- The wallet lists the used-up lot too, until it expires.
    local lots = F.ok(db:wallet { user_id = w.user.id, unit = "hour" }).lots
    local found = {}
    for _, l in ipairs(lots) do found[#found + 1] = l.balance end
    table.sort(found)
    assert.same({ 0, 2, 10 }, found)
    assert(db:set_clock("2026-04-01T00:00:00Z"))
    assert.equal(10, F.available(db, w.user))
    assert.equal(0, balance(march))
  end)

  it("S6 a booking is paid from the lot of the month it happens in", function()
    db = F.open("2026-06-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-06-01", recurrence = "monthly" })
    assert(db:set_clock("2026-06-10T09:00:00Z"))
    local b = F.ok(F.book(db, w, room, "2026-07-15T09:00:00Z", "2026-07-15T13:00:00Z"))
    assert.equal(4, b.credits.amount)
    assert.equal(10, F.available(db, w.user))
    local june = F.ok(db:wallet { user_id = w.user.id }).lots[1]
    assert.are_not.equal(june.id, b.credits.paid_from[1].lot_id)
    assert(db:set_clock("2026-07-01T00:00:00Z"))
    assert.equal(6, F.available(db, w.user))
  end)

  it("S7 refund windows: 30 h before, 5 h before, after the start, by an admin", function()
    db = F.open("2026-05-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 100, { start = "2026-05-01" })
    local me = db:as { role = "tenant_user", tenant_id = w.tenant.id, user_id = w.user.id }
    local function case(day, cancel_at, who)
      local s, e = ("2026-05-%02dT10:00:00Z"):format(day), ("2026-05-%02dT14:00:00Z"):format(day)
      local b = F.ok(F.book(db, w, room, s, e))
      assert(db:set_clock(cancel_at))
      return F.ok((who or me):cancel { id = b.id }).refund.credits
    end
    assert.equal(4, case(10, "2026-05-09T04:00:00Z"))
    assert.equal(2, case(11, "2026-05-11T05:00:00Z"))
    assert.equal(0, case(12, "2026-05-12T11:00:00Z"))
    assert.equal(4, case(13, "2026-05-13T11:00:00Z", db))
    assert.equal(100 - 16 + 10, F.available(db, w.user))
  end)

  it("S11 a discount lowers the money price, never the credit price", function()
    db = F.open("2026-03-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-03-01" })
    local q = F.ok(db:quote { resource_id = room.id, user_id = w.user.id, discount_percent = 50,
                              start = "2026-03-10T09:00:00Z", ["end"] = "2026-03-10T11:00:00Z" })
    assert.equal(7000, q.money.amount)
    assert.equal(14000, q.money.before_discount)
    assert.equal(2, q.credits.amount)
  end)

  it("S12 a credit-only resource has no money price and needs credits", function()
    db = F.open("2026-03-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building, { credit_only = true })
    local q = F.ok(db:quote { resource_id = room.id, user_id = w.user.id,
                              start = "2026-03-10T09:00:00Z", ["end"] = "2026-03-10T10:00:00Z" })
    assert.is_nil(q.money)
    assert.same({}, q.payment_methods)
    for _, method in ipairs { "credits", "card", "invoice" } do
      local r, err = F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z", method)
      assert.is_nil(r)
      assert.equal(409, err.status)
    end
  end)
  it("S8 Data Hub with the reference numbers", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    -- Two resources: one paid only from the once grant (a specific-resource
    -- line), so the split between once and monthly usage is exact.
    local once_room = F.room(db, w.building, { name = "Once room", tags = { "once" } })
    local room = F.room(db, w.building, { name = "Monthly room" })
    F.ok(db:allocate { tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
      description = "once", lines = { { scope = "tags", tags = { "once" }, amount = 20 } },
      schedule = { start = "2026-01-01" } })
    F.ok(db:allocate { tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
      description = "monthly", lines = { { scope = "resources", resource_ids = { room.id },
      amount = 10 } }, schedule = { start = "2026-01-01", recurrence = "monthly" } })
    F.ok(F.book(db, w, once_room, "2026-01-10T08:00:00Z", "2026-01-10T16:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-11T08:00:00Z", "2026-01-11T14:00:00Z"))
    assert(db:set_clock("2026-02-01T06:00:00Z"))
    F.ok(F.book(db, w, once_room, "2026-02-10T08:00:00Z", "2026-02-10T13:00:00Z"))
    F.ok(F.book(db, w, room, "2026-02-11T08:00:00Z", "2026-02-11T18:00:00Z"))
    local hub = F.ok(db:call("reports.datahub", { unit = "hour", from = "2026-01", to = "2026-02" }))
    local jan, feb = hub.customers[1].months[1], hub.customers[1].months[2]
    assert.same({ 0, 12, 4, 30, 14 }, { jan.once_opening, jan.once_closing, jan.monthly_unused,
                                        jan.total_granted, jan.total_used })
    assert.same({ 12, 7, 0, 10, 15 }, { feb.once_opening, feb.once_closing, feb.monthly_unused,
                                        feb.total_granted, feb.total_used })
    local csv = F.ok(db:call("reports.datahub", { unit = "hour", from = "2026-01", to = "2026-02",
                                                 format = "csv" })).csv
    assert.truthy(csv:find("tenant_id,name,month,once_opening,once_granted,once_used,"
                           .. "once_expired,once_closing,monthly_granted,monthly_used,"
                           .. "monthly_unused,monthly_rolled_over,total_granted,total_used\r\n",
                           1, true))
    assert.truthy(csv:find(",2026-02,12,0,5,0,7,10,10,0,0,10,15\r\n", 1, true))
  end)

  it("S9 dashboard: transactions, active users and the top tenant of 30 days", function()
    db = F.open("2026-04-01T00:00:00Z")
    local w = F.world(db)
    local b = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bob", email = "b@x.io" })
    local t2 = F.ok(db:create_tenant { name = "Beta", building_ids = { w.building.id } })
    local c = F.ok(db:create_user { tenant_id = t2.id, name = "Cy", email = "c@x.io" })
    local room = F.room(db, w.building)
    F.grant(db, w, 100, { start = "2026-04-01" })
    F.grant(db, { tenant = t2, building = w.building }, 100, { start = "2026-04-01" })
    F.ok(F.book(db, w, room, "2026-04-02T09:00:00Z", "2026-04-02T12:00:00Z"))   -- A: 3, 40 days ago
    assert(db:set_clock("2026-05-02T00:00:00Z"))
    F.ok(F.book(db, w, room, "2026-05-03T09:00:00Z", "2026-05-03T12:00:00Z"))       -- A: 3
    F.ok(F.book(db, w, room, "2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", nil, b)) -- A: 1
    F.ok(F.book(db, w, room, "2026-05-05T09:00:00Z", "2026-05-05T11:00:00Z", nil, b)) -- A: 2
    F.ok(F.book(db, { tenant = t2, building = w.building }, room, "2026-05-06T09:00:00Z",
                "2026-05-06T14:00:00Z", nil, c))                                      -- B: 5
    assert(db:set_clock("2026-05-12T00:00:00Z"))
    local d = F.ok(db:call("reports.dashboard", { unit = "hour" }))
    assert.equal(4, d.transactions_30d)
    assert.equal(3, d.active_users_30d)
    assert.equal(w.tenant.id, d.top_tenant.tenant_id)
    assert.equal(6, d.top_tenant.used)
  end)

  it("S10 a limited and an unlimited grant in March: granted is Unlimited", function()
    db = F.open("2026-03-01T00:00:00Z")
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-03-01", recurrence = "monthly" })
    F.grant(db, w, "unlimited", { start = "2026-03-01", ["end"] = "2026-03-31" })
    F.ok(F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T11:00:00Z"))
    local hub = F.ok(db:call("reports.datahub", { unit = "hour", from = "2026-03", to = "2026-03" }))
    assert.equal(1, hub.tiles.unlimited_customers)
    assert.equal("unlimited", hub.tiles.total_granted)
    assert.equal("unlimited", hub.tiles.once_granted)
    assert.equal(10, hub.tiles.monthly_granted)
    assert.equal("unlimited", hub.customers[1].months[1].total_granted)
    assert.equal("unlimited", hub.customers[1].total_granted)
    assert.equal(2, hub.customers[1].total_used)
  end)
end)
