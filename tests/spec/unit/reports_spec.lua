-- Reports (PRODUCT.md §7): specific cases in JSON and CSV, then a seeded
-- random workload whose every report figure must equal a plain query over
-- the raw ledger, run by the sqlite3 command line on the same file.
local F = require "fixture"
local D = require "db_shell"
local cjson = require "cjson"

-- A query's rows as records, run beside the engine (sqlite3 -json, or psql
-- on PostgreSQL: tests/helpers/db_shell.lua); month(x) and later(a, b) are
-- what each dialect says for strftime('%Y-%m', x, 'unixepoch') and max(a, b).
local function sql(dbfile, query)
  return D.json(dbfile, query)
end

local function month(x, dbfile)
  if D.is_pg(dbfile) then
    return ("to_char(to_timestamp(%s) AT TIME ZONE 'UTC', 'YYYY-MM')"):format(x)
  end
  return ("strftime('%%Y-%%m', %s, 'unixepoch')"):format(x)
end

local function later(a, b, dbfile)
  return (D.is_pg(dbfile) and "greatest(%s, %s)" or "max(%s, %s)"):format(a, b)
end

-- Parses RFC 4180 text into rows of fields.
local function parse_csv(text)
  local rows, row, field, i, quoted = {}, {}, {}, 1, false
  while i <= #text do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' and text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
      elseif c == '"' then quoted = false
      else field[#field + 1] = c end
    elseif c == '"' then quoted = true
    elseif c == "," then row[#row + 1] = table.concat(field); field = {}
    elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" then
      row[#row + 1] = table.concat(field); rows[#rows + 1] = row; row, field = {}, {}; i = i + 1
    else field[#field + 1] = c end
    i = i + 1
  end
  return rows
end

-- CSV rows as records keyed by the header.
local function csv_records(text)
  local rows = parse_csv(text)
  local out = {}
  for r = 2, #rows do
    local rec = {}
    for k, name in ipairs(rows[1]) do rec[name] = rows[r][k] end
    out[#out + 1] = rec
  end
  return rows[1], out
end

local function num(v)
  if v == "unlimited" then return v end
  return tonumber(v)
end

local function month_of(hub, tenant_id, month)
  for _, c in ipairs(hub.customers) do
    if c.tenant_id == tenant_id then
      if not month then return c end
      for _, m in ipairs(c.months) do if m.month == month then return m end end
    end
  end
end

describe("reports", function()
  local db, dir
  after_each(function() if db then F.verified(db); db:close(); db = nil end end)

  it("show rollover, weekly and quarterly grants inside a month view", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 5 } })
    F.grant(db, w, 2, { start = "2026-01-05", recurrence = "weekly" })
    F.grant(db, w, 30, { start = "2026-01-01", recurrence = "quarterly" })
    F.ok(F.book(db, w, room, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z"))
    assert(db:set_clock("2026-02-10T00:00:00Z"))
    local hub = F.ok(db:call("reports.datahub", { from = "2026-01", to = "2026-02" }))
    local jan, feb = month_of(hub, w.tenant.id, "2026-01"), month_of(hub, w.tenant.id, "2026-02")
    -- January: monthly 10, four weeks starting 5, 12, 19, 26 Jan (2 each), quarterly 30.
    -- The 3 hours on 12 Jan take that week's 2, then 1 of the month's.
    assert.equal(10 + 8 + 30, jan.monthly_granted)
    assert.equal(3, jan.monthly_used)
    -- Unused is what expired in January: the weeks of 5 and 19 Jan (2 each)
    -- and the month's 9 beyond the 5 rolled over; the week of 26 Jan
    -- expires on 2 Feb, in February.
    assert.equal(2 + 2 + 4, jan.monthly_unused)
    assert.equal(5, jan.monthly_rolled_over)
    -- February so far (10 Feb): monthly 10 (+5 carried, not a grant), the
    -- weeks of 2 and 9 Feb; expired: the weeks of 26 Jan and 2 Feb.
    assert.equal(10 + 4, feb.monthly_granted)
    assert.equal(2 + 2, feb.monthly_unused)
    assert.equal(0, feb.monthly_rolled_over)
    local csv = F.ok(db:call("reports.datahub", { from = "2026-01", to = "2026-02",
                                                 format = "csv" })).csv
    local header, recs = csv_records(csv)
    assert.equal("tenant_id", header[1])
    assert.equal(3, #recs)
    assert.equal("2026-01", recs[1].month)
    assert.equal(48, num(recs[1].monthly_granted))
    assert.equal(8, num(recs[1].monthly_unused))
    assert.equal(5, num(recs[1].monthly_rolled_over))
    assert.equal("total", recs[3].month)
    assert.equal(62, num(recs[3].monthly_granted))
  end)

  it("expire a once lot at its end date and show it in the closing balance", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 20, { start = "2026-01-01", ["end"] = "2026-02-15" })
    F.ok(F.book(db, w, room, "2026-01-20T09:00:00Z", "2026-01-20T14:00:00Z"))
    assert(db:set_clock("2026-03-01T00:00:00Z"))
    local hub = F.ok(db:call("reports.datahub", { from = "2026-01", to = "2026-03" }))
    local jan = month_of(hub, w.tenant.id, "2026-01")
    local feb = month_of(hub, w.tenant.id, "2026-02")
    local mar = month_of(hub, w.tenant.id, "2026-03")
    assert.same({ 0, 20, 5, 15 }, { jan.once_opening, jan.once_granted, jan.once_used,
                                    jan.once_closing })
    assert.same({ 15, 0, 0, 0 }, { feb.once_opening, feb.once_granted, feb.once_used,
                                   feb.once_closing })
    assert.equal(0, mar.once_opening)
    local c = month_of(hub, w.tenant.id)
    assert.same({ 0, 20, 5, 0 }, { c.once_opening, c.once_granted, c.once_used, c.once_closing })
  end)

  it("count a refund across a month end in the month of the meeting", function()
    db = F.open("2026-01-20T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 20, { start = "2026-01-01" })
    local b = F.ok(F.book(db, w, room, "2026-02-03T09:00:00Z", "2026-02-03T13:00:00Z"))
    assert(db:set_clock("2026-02-01T12:00:00Z"))
    F.ok(db:cancel { id = b.id })
    local hub = F.ok(db:call("reports.datahub", { from = "2026-01", to = "2026-02" }))
    assert.equal(0, month_of(hub, w.tenant.id, "2026-01").once_used)
    assert.equal(0, month_of(hub, w.tenant.id, "2026-02").once_used)
    assert.equal(20, month_of(hub, w.tenant.id, "2026-02").once_closing)
    local usage = F.ok(db:call("reports.usage", {})).data
    assert.equal(1, #usage)
    assert.equal(0, usage[1].credits)
    assert.equal(4, usage[1].credits_refunded)
    assert.equal("cancelled", usage[1].status)
  end)

  it("attribute cross-building usage to the building booked, and filter by building", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { cross_building = true, timezone = "UTC" })
    local b2 = F.ok(db:create_building { name = "Annex", timezone = "UTC", currency = "USD" })
    F.ok(db:update_tenant { id = w.tenant.id, building_ids = { w.building.id, b2.id } })
    local far = F.room(db, b2)
    F.grant(db, w, 10, { start = "2026-01-01" }, { cross_building = true })
    F.ok(F.book(db, w, far, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"))
    local here = F.ok(db:call("reports.usage", { building_id = w.building.id })).data
    local there = F.ok(db:call("reports.usage", { building_id = b2.id })).data
    assert.equal(0, #here)
    assert.equal(1, #there)
    assert.equal(2, there[1].credits)
    assert.equal("Annex", there[1].building_name)
    -- The dashboard's credits allocated and remaining follow the
    -- allocation's building; credits used follow the building booked.
    local d = F.ok(db:call("reports.dashboard", { building_id = w.building.id }))
    assert.same({ 10, 0, 8 }, { d.allocated, d.used, d.remaining })
    local d2 = F.ok(db:call("reports.dashboard", { building_id = b2.id }))
    assert.same({ 0, 2, 0, 1 }, { d2.allocated, d2.used, d2.remaining, d2.transactions_30d })
    -- Reports page like every list, and take dates as well as times.
    F.ok(F.book(db, w, far, "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z"))
    local p1 = F.ok(db:call("reports.usage", { limit = 1 }))
    assert.equal(1, #p1.data)
    local p2 = F.ok(db:call("reports.usage", { limit = 1, cursor = p1.next_cursor }))
    assert.equal(1, #p2.data)
    assert.are_not.equal(p1.data[1].booking_id, p2.data[1].booking_id)
    assert.is_nil(p2.next_cursor)
    assert.equal(1, #F.ok(db:call("reports.usage", { from = "2026-01-06", to = "2026-01-06" })).data)
    assert.equal(1, #F.ok(db:bookings { from = "2026-01-05", to = "2026-01-05" }).data)
    assert.equal(1, #F.ok(db:call("reports.credits", { limit = 5 })).data)
    local csv = F.ok(db:call("reports.usage", { building_id = b2.id, format = "csv",
                                               to = "2026-01-05" })).csv
    local _, recs = csv_records(csv)
    assert.equal(1, #recs)
    assert.equal("2", recs[1].credits)
  end)

  it("show Unlimited granted and remaining where an unlimited grant touches them", function()
    -- PRODUCT.md §3 "Unlimited" and §7: the credit report and the dashboard
    -- follow the Data Hub; used stays a number, and figures no unlimited
    -- grant touches stay exact.
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    local unl = F.grant(db, w, "unlimited", { start = "2026-01-01", ["end"] = "2026-01-31" })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"))
    -- Granted after that booking, so that the unlimited lot paid for it.
    local lim = F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    local ahead = F.grant(db, w, "unlimited", { start = "2026-03-01" })
    F.ok(F.book(db, w, room, "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z"))
    local other = F.world(db, { timezone = "UTC", building_name = "Annex", tenant_name = "Beta" })
    F.grant(db, other, 5, { start = "2026-01-01" })
    assert(db:set_clock("2026-01-10T00:00:00Z"))

    local function credit_rows(args)
      local rows = {}
      for _, r in ipairs(F.ok(db:call("reports.credits", args)).data) do rows[r.allocation_id] = r end
      return rows
    end
    local function figures(r) return { r.granted, r.used, r.remaining } end
    local rows = credit_rows({ tenant_id = w.tenant.id })
    assert.same({ "unlimited", 2, "unlimited" }, figures(rows[unl.id]))
    assert.same({ 10, 1, 9 }, figures(rows[lim.id]))
    -- Not begun yet: nothing granted, nothing left, whatever its amount.
    assert.equal("unlimited", rows[ahead.id].amount)
    assert.same({ 0, 0, 0 }, figures(rows[ahead.id]))
    -- The CSV says the same, as the Data Hub's CSV does.
    local _, recs = csv_records(F.ok(db:call("reports.credits", { tenant_id = w.tenant.id,
                                                                  format = "csv" })).csv)
    local by_id = {}
    for _, r in ipairs(recs) do by_id[r.allocation_id] = r end
    assert.same({ "unlimited", "2", "unlimited" }, figures(by_id[unl.id]))
    assert.same({ "10", "1", "9" }, figures(by_id[lim.id]))
    assert.same({ "0", "0", "0" }, figures(by_id[ahead.id]))
    -- A paged report reads the same rows.
    local page = F.ok(db:call("reports.credits", { tenant_id = w.tenant.id, limit = 1 })).data
    assert.same({ "unlimited", 2, "unlimited" }, figures(page[1]))

    -- The dashboard: the tenant's and the portfolio's totals are touched
    -- by the unlimited grant; the other tenant's stay exact.
    local function dash(args)
      local d = F.ok(db:call("reports.dashboard", args))
      return { d.allocated, d.used, d.remaining }
    end
    assert.same({ "unlimited", 3, "unlimited" }, dash({ tenant_id = w.tenant.id }))
    assert.same({ "unlimited", 3, "unlimited" }, dash({}))
    assert.same({ 5, 0, 5 }, dash({ tenant_id = other.tenant.id }))
    assert.same({ 0, 0, 0 }, dash({ unit = "coin" }))
    _, recs = csv_records(F.ok(db:call("reports.dashboard", { format = "csv" })).csv)
    assert.same({ "unlimited", "3", "unlimited" }, { recs[1].allocated, recs[1].used,
                                                     recs[1].remaining })
    _, recs = csv_records(F.ok(db:call("reports.dashboard", { tenant_id = other.tenant.id,
                                                              format = "csv" })).csv)
    assert.same({ "5", "0", "5" }, { recs[1].allocated, recs[1].used, recs[1].remaining })

    -- Once the unlimited lot's validity is over, it was still granted, but
    -- nothing unlimited remains: January's 10 expired, February's 10 are left.
    assert(db:set_clock("2026-02-10T00:00:00Z"))
    rows = credit_rows({ tenant_id = w.tenant.id })
    assert.same({ "unlimited", 2, 0 }, figures(rows[unl.id]))
    assert.same({ 20, 1, 10 }, figures(rows[lim.id]))
    assert.same({ "unlimited", 3, 10 }, dash({ tenant_id = w.tenant.id }))
    assert.is_false(F.ok(db:call("reports.dashboard", { tenant_id = w.tenant.id })).unlimited)
  end)

  it("lets a tenant admin see only their company, and a tenant user only their usage", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db)
    local t2 = F.ok(db:create_tenant { name = "Other", building_ids = { w.building.id } })
    local u2 = F.ok(db:create_user { tenant_id = t2.id, name = "Zed", email = "z@x.io" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01" })
    F.grant(db, { tenant = t2, building = w.building }, 10, { start = "2026-01-01" })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z", nil, u2))
    local admin2 = db:as { role = "tenant_admin", tenant_id = t2.id }
    local hub = F.ok(admin2:call("reports.datahub", { from = "2026-01", to = "2026-01" }))
    assert.equal(1, #hub.customers)
    assert.equal(t2.id, hub.customers[1].tenant_id)
    local r, err = admin2:call("reports.datahub", { tenant_id = w.tenant.id })
    assert.is_nil(r)
    assert.equal(404, err.status)
    local user = db:as { role = "tenant_user", tenant_id = w.tenant.id, user_id = w.user.id }
    assert.equal(1, #F.ok(user:call("reports.usage", {})).data)
    r, err = user:call("reports.dashboard", {})
    assert.is_nil(r)
    assert.equal(403, err.status)
  end)

  it("refuse an unpaged report past 100,000 rows instead of cutting it", function()
    db, dir = F.open("2026-01-01T00:00:00Z")
    local dbfile = F.db_file(dir)
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", "card"))
    -- 100,000 cancelled copies of that booking, written beside the engine.
    D.exec(dbfile, [[WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
      INSERT INTO booking (resource_id, building_id, tenant_id, user_id, start_at, end_at, status,
        payment_method, unit, credits, money, money_before_discount, currency, discount_pm,
        policy_versions, created_at, created_by, cancelled_at, cancelled_by)
      SELECT resource_id, building_id, tenant_id, user_id, start_at, end_at, 'cancelled',
        payment_method, unit, credits, money, money_before_discount, currency, discount_pm,
        policy_versions, created_at, created_by, created_at, created_by
      FROM booking CROSS JOIN n WHERE booking.id = (SELECT min(id) FROM booking)]])
    assert.equal(100001, sql(dbfile, "SELECT count(*) AS n FROM booking")[1].n)
    for _, args in ipairs { {}, { format = "csv" } } do
      local r, err = db:call("reports.usage", args)
      assert.is_nil(r)
      assert.equal("limit_exceeded", err.code)
      assert.equal("report_rows_max", err.field)
      assert.truthy(err.message:find("100000", 1, true))
    end
    -- The Data Hub's range is bounded the same way.
    local r, err = db:call("reports.datahub", { from = "2026-01", to = "2029-01" })
    assert.is_nil(r)
    assert.equal("limit_exceeded", err.code)
    assert.equal("datahub_months_max", err.field)
    assert.truthy(F.ok(db:call("reports.datahub", { from = "2026-01", to = "2028-12" })).customers)
    -- Paged, every row is reachable.
    local page = F.ok(db:call("reports.usage", { limit = 500 }))
    assert.equal(500, #page.data)
    assert.truthy(page.next_cursor)
    local csv = F.ok(db:call("reports.usage", { limit = 2, format = "csv" })).csv
    local _, recs = csv_records(csv)
    assert.equal(2, #recs)
  end)

  it("equal plain queries over the raw ledger after a seeded random workload", function()
    math.randomseed(tonumber(os.getenv("ALLOT_REPORT_SEED") or "7"))
    local R = math.random
    db, dir = F.open("2026-01-01T00:00:00Z")
    local dbfile = F.db_file(dir)
    local tenants = {}
    local b = F.ok(db:create_building { name = "HQ", timezone = "UTC", currency = "USD",
                                        payment = { credits = true, invoice = true, card = true } })
    local rooms = {}
    for i = 1, 6 do
      rooms[i] = F.room(db, b, { name = "R" .. i, unit = i > 4 and "coin" or "hour",
                                 per_hour = i > 4 and 50 or 1 })
    end
    for t = 1, 4 do
      local ten = F.ok(db:create_tenant { name = "T" .. t, building_ids = { b.id } })
      local users = {}
      for u = 1, 3 do
        users[u] = F.ok(db:create_user { tenant_id = ten.id, name = "U" .. u, email = "u@x.io" })
      end
      tenants[t] = { tenant = ten, users = users, building = b }
      local recs = { "none", "weekly", "monthly", "quarterly" }
      for _ = 1, 3 do
        local unit = R(3) == 1 and "coin" or "hour"
        local amount = unit == "coin" and R(100, 900) or (R(6) == 1 and "unlimited" or R(2, 30))
        local rec = recs[R(#recs)]
        F.ok(db:allocate { tenant_id = ten.id, building_ids = { b.id }, unit = unit,
          lines = { { scope = "all", amount = amount } }, pool = R(3) == 1 and "per_user" or "shared",
          schedule = { start = ("2026-01-%02d"):format(R(1, 20)), recurrence = rec,
                       ["end"] = R(3) == 1 and ("2026-0%d-%02d"):format(R(2, 4), R(1, 28)) or nil,
                       rollover = rec ~= "none" and R(2) == 1 and { enabled = true, cap = R(0, 8) } or nil } })
      end
    end
    local now = 1767225600
    local booked = {}
    for step = 1, 120 do
      local t = tenants[R(#tenants)]
      local s = now + R(0, 24 * 30) * 3600
      local r = rooms[R(#rooms)]
      local method = R(5) == 1 and "card" or "credits"
      local res = db:book { resource_id = r.id, user_id = t.users[R(3)].id, payment_method = method,
        start = os.date("!%Y-%m-%dT%H:00:00Z", s), ["end"] = os.date("!%Y-%m-%dT%H:00:00Z", s + 3600 * R(1, 3)) }
      if res then booked[#booked + 1] = res.id end
      if R(8) == 1 and #booked > 0 then db:cancel { id = booked[R(#booked)] } end
      if step % 15 == 0 then
        now = now + R(5, 20) * 86400
        db:set_clock(os.date("!%Y-%m-%dT%H:%M:%SZ", now))
      end
    end
    F.verified(db)

    -- Data Hub against the ledger, month by month, for both units.
    local matched = 0
    for _, unit in ipairs { "hour", "coin" } do
      local hub = F.ok(db:call("reports.datahub", { unit = unit, from = "2026-01", to = "2026-05" }))
      local once = sql(dbfile, ([[
        SELECT l.tenant_id AS t, %s AS m,
          sum(CASE WHEN e.kind IN ('grant','adjust') AND l.unlimited = 0 THEN e.amount ELSE 0 END) AS granted,
          -sum(CASE WHEN e.kind IN ('debit','refund') THEN e.amount ELSE 0 END) AS used,
          -sum(CASE WHEN e.kind IN ('expire','void') AND l.unlimited = 0 THEN e.amount ELSE 0 END) AS expired
        FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id
        WHERE a.recurrence = 'none' AND l.unit = '%s' GROUP BY 1, 2]]):format(
        month("e.effective_at", dbfile), unit))
      -- Monthly (PRODUCT.md §7): granted in the month the lot becomes valid,
      -- used in the month the meeting starts (tests/spec/unit/datahub_spec.lua
      -- compares every other figure).
      local monthly = sql(dbfile, ([[
        SELECT l.tenant_id AS t, %s AS m,
          sum(CASE WHEN e.kind IN ('grant','adjust','void') AND l.unlimited = 0 THEN e.amount ELSE 0 END) AS granted,
          -sum(CASE WHEN e.kind IN ('debit','refund') THEN e.amount ELSE 0 END) AS used
        FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id
        WHERE a.recurrence != 'none' AND l.unit = '%s' GROUP BY 1, 2]]):format(
        month(later("e.effective_at", "l.valid_from", dbfile), dbfile), unit))
      local expect = {}
      local function cell(t, m)
        local key = ("ten_%d/%s"):format(t, m)
        expect[key] = expect[key] or { once_granted = 0, once_used = 0, once_expired = 0,
                                       monthly_granted = 0, monthly_used = 0 }
        return expect[key]
      end
      for _, row in ipairs(once) do
        local c = cell(row.t, row.m)
        c.once_granted, c.once_used, c.once_expired = row.granted / 1000, row.used / 1000, row.expired / 1000
      end
      for _, row in ipairs(monthly) do
        local c = cell(row.t, row.m)
        c.monthly_granted, c.monthly_used = row.granted / 1000, row.used / 1000
      end
      for _, cust in ipairs(hub.customers) do
        local opening = cust.once_opening
        for _, m in ipairs(cust.months) do
          local e = expect[cust.tenant_id .. "/" .. m.month]
          if e then matched = matched + 1 else e = cell(0, "none") end
          if m.once_granted ~= "unlimited" then
            assert.near(e.once_granted, m.once_granted, 1e-9, cust.tenant_id .. " " .. m.month .. " " .. cjson.encode(m) .. " vs " .. cjson.encode(e))
          end
          assert.near(e.once_used, m.once_used, 1e-9, cust.tenant_id .. " " .. m.month .. " " .. cjson.encode(m) .. " vs " .. cjson.encode(e))
          if m.monthly_granted ~= "unlimited" then
            assert.near(e.monthly_granted, m.monthly_granted, 1e-9, cust.tenant_id .. " " .. m.month .. " " .. cjson.encode(m) .. " vs " .. cjson.encode(e))
          end
          assert.near(e.monthly_used, m.monthly_used, 1e-9, cust.tenant_id .. " " .. m.month .. " " .. cjson.encode(m) .. " vs " .. cjson.encode(e))
          assert.near(opening, m.once_opening, 1e-9)
          opening = m.once_closing
        end
        assert.near(opening, cust.once_closing, 1e-9)
      end

      -- The CSV carries the same numbers as the JSON.
      local csv = F.ok(db:call("reports.datahub", { unit = unit, from = "2026-01", to = "2026-05",
                                                   format = "csv" })).csv
      local _, recs = csv_records(csv)
      local k = 0
      for _, cust in ipairs(hub.customers) do
        for _, m in ipairs(cust.months) do
          k = k + 1
          for _, col in ipairs { "once_opening", "once_granted", "once_used", "once_closing",
                                 "monthly_granted", "monthly_used", "monthly_unused",
                                 "total_granted", "total_used" } do
            assert.equal(m[col], num(recs[k][col]), col)
          end
        end
        k = k + 1
        assert.equal("total", recs[k].month)
        assert.equal(cust.total_used, num(recs[k].total_used))
      end
      assert.equal(k, #recs)
    end

    assert.truthy(matched >= 8, "the workload left too little to compare")

    -- The dashboard against the ledger.
    local nowt = now
    local d = F.ok(db:call("reports.dashboard", { unit = "hour" }))
    local lots = sql(dbfile, ([[
      SELECT coalesce(sum(CASE WHEN l.kind = 'period' AND l.unlimited = 0 THEN l.granted ELSE 0 END), 0)
        + coalesce((SELECT sum(e.amount) FROM entry e JOIN lot x ON x.id = e.lot_id WHERE e.kind = 'adjust'
                    AND x.unit = 'hour' AND x.valid_from <= %d), 0) AS allocated,
        coalesce((SELECT sum(credits - credits_refunded) FROM booking
                  WHERE payment_method = 'credits' AND unit = 'hour' AND %d = %d), 0) AS used,
        coalesce(sum(CASE WHEN l.unlimited = 0 AND l.closed = 0 AND l.valid_until > %d THEN l.balance END), 0) AS remaining
        , coalesce(max(l.unlimited), 0) AS unl_begun,
        coalesce(max(CASE WHEN l.closed = 0 AND l.valid_until > %d THEN l.unlimited END), 0) AS unl_now
      FROM lot l WHERE l.unit = 'hour' AND l.valid_from <= %d]]):format(nowt, nowt, nowt, nowt,
                                                                         nowt, nowt))[1]
    -- A figure an unlimited lot touches is "unlimited" (as in the Data Hub).
    local function figure(unl, milli, got, what)
      if unl ~= 0 then
        assert.equal("unlimited", got, what)
      else
        assert.near(milli / 1000, got, 1e-9, what)
      end
    end
    figure(lots.unl_begun, lots.allocated, d.allocated, "allocated")
    assert.near(lots.used / 1000, d.used, 1e-9)
    figure(lots.unl_now, lots.remaining, d.remaining, "remaining")
    local tx = sql(dbfile, ([[SELECT count(*) AS n, count(DISTINCT user_id) AS u FROM booking
      WHERE payment_method = 'credits' AND unit = 'hour' AND status = 'confirmed'
      AND created_at > %d AND created_at <= %d]]):format(nowt - 30 * 86400, nowt))[1]
    assert.equal(tx.n, d.transactions_30d)
    assert.equal(tx.u, d.active_users_30d)

    -- Usage rows: one per booking, net credits.
    local usage = F.ok(db:call("reports.usage", {})).data
    local raw = sql(dbfile, "SELECT count(*) AS n, coalesce(sum(credits - credits_refunded), 0) AS c"
                            .. " FROM booking")[1]
    assert.equal(raw.n, #usage)
    local total = 0
    for _, u in ipairs(usage) do total = total + (u.credits or 0) end
    assert.near(raw.c / 1000, total, 1e-6)

    -- Credit management rows: one per allocation; granted (lots begun),
    -- used and remaining (lots valid now) against their entries.
    local credits = F.ok(db:call("reports.credits", {})).data
    for _, row in ipairs(credits) do
      local id = tonumber(row.allocation_id:match("%d+"))
      local raw_row = sql(dbfile, ([[SELECT
        coalesce((SELECT -sum(e.amount) FROM entry e JOIN lot l ON l.id = e.lot_id
                  WHERE l.allocation_id = %d AND e.kind IN ('debit','refund')), 0) AS used,
        coalesce((SELECT sum(e.amount) FROM entry e JOIN lot l ON l.id = e.lot_id
                  WHERE l.allocation_id = %d AND l.unlimited = 0 AND l.valid_from <= %d
                  AND e.kind IN ('grant','adjust','void')), 0) AS granted,
        coalesce((SELECT sum(e.amount) FROM entry e JOIN lot l ON l.id = e.lot_id
                  WHERE l.allocation_id = %d AND l.unlimited = 0 AND l.closed = 0
                  AND l.valid_from <= %d AND l.valid_until > %d), 0) AS remaining,
        (SELECT count(*) FROM lot WHERE allocation_id = %d AND unlimited = 1
         AND valid_from <= %d) AS unl_begun,
        (SELECT count(*) FROM lot WHERE allocation_id = %d AND unlimited = 1 AND closed = 0
         AND valid_from <= %d AND valid_until > %d) AS unl_now]]):format(
        id, id, nowt, id, nowt, nowt, id, nowt, id, nowt, nowt))[1]
      assert.near(raw_row.used / 1000, row.used, 1e-9)
      figure(raw_row.unl_begun, raw_row.granted, row.granted, row.allocation_id .. " granted")
      figure(raw_row.unl_now, raw_row.remaining, row.remaining, row.allocation_id .. " remaining")
    end
  end)
end)
