-- The Data Hub (PRODUCT.md §7, "Which month a figure belongs to"): the
-- reference scenarios S13-S15, the defects W1, W2, W4 and W5 of issue 13,
-- group_by=user, each in JSON and CSV; then seeded random workloads whose
-- every figure, for every customer, month and unit and both group_by values,
-- must equal a recomputation in plain Lua from the raw ledger read through
-- the module (allocations with their lots, entries, bookings).
local F = require "fixture"
local D = require "db_shell"

-- RFC 4180 text into records keyed by the header (fields stay text).
local function csv_records(text)
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
  local out = {}
  for r = 2, #rows do
    local rec = {}
    for k, name in ipairs(rows[1]) do rec[name] = rows[r][k] end
    out[#out + 1] = rec
  end
  return rows[1], out
end

local FIGURES = { "once_opening", "once_granted", "once_used", "once_expired", "once_closing",
                  "monthly_granted", "monthly_used", "monthly_unused", "monthly_rolled_over",
                  "total_granted", "total_used" }

local function hub(db, args)
  return F.ok(db:call("reports.datahub", args))
end

-- The CSV of the same request, as records.
local function hub_csv(db, args)
  local a = { format = "csv" }
  for k, v in pairs(args) do a[k] = v end
  return csv_records(F.ok(db:call("reports.datahub", a)).csv)
end

-- A customer's row (month nil) or one of its months.
local function row_of(h, id, month)
  for _, c in ipairs(h.customers) do
    if c.tenant_id == id or c.user_id == id then
      if not month then return c end
      for _, m in ipairs(c.months) do if m.month == month then return m end end
    end
  end
end

-- The CSV record of a customer and month ("total" for the range).
local function rec_of(recs, id, month)
  for _, r in ipairs(recs) do
    if (r.user_id == id or (r.user_id == nil and r.tenant_id == id)) and r.month == month then
      return r
    end
  end
end

-- Asserts that a month (JSON) holds `want` and that its CSV record says the same.
local function check(h, recs, id, month, want)
  local m = assert(row_of(h, id, month ~= "total" and month or nil),
                   "no row for " .. id .. " " .. month)
  local r = assert(rec_of(recs, id, month), "no CSV record for " .. id .. " " .. month)
  for k, v in pairs(want) do
    assert.equal(v, m[k], month .. " " .. k)
    assert.equal(tostring(v), r[k], month .. " " .. k .. " (CSV)")
  end
end

describe("Data Hub", function()
  local db
  after_each(function() if db then F.verified(db); db:close(); db = nil end end)

  it("grants a period's credits once it begins, not when a booking ahead made its lot", function()
    db = F.open("2026-01-05T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    F.ok(F.book(db, w, room, "2026-03-10T09:00:00Z", "2026-03-10T11:00:00Z")) -- makes March's lot
    local args = { from = "2026-01", to = "2026-03" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    check(h, recs, t, "2026-01", { monthly_granted = 10 })
    check(h, recs, t, "2026-03", { monthly_granted = 0, monthly_used = 2 })
    assert(db:set_clock("2026-03-01T00:00:01Z"))
    h = hub(db, args)
    _, recs = hub_csv(db, args)
    check(h, recs, t, "2026-03", { monthly_granted = 10, monthly_used = 2 })
  end)

  it("counts a refund into an expired lot, and its expiry, in the lot's month", function()
    db = F.open("2026-01-05T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 12.5, { start = "2026-01-01", recurrence = "monthly" })
    local b = F.ok(F.book(db, w, room, "2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z"))
    assert(db:set_clock("2026-02-10T00:00:00Z"))
    F.ok(db:call("bookings.cancel", { id = b.id, reason = "room closed" }))
    local args = { from = "2026-01", to = "2026-02" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    -- January adds up again: 12.5 granted, nothing used, 12.5 unused.
    check(h, recs, t, "2026-01", { monthly_granted = 12.5, monthly_used = 0,
                                   monthly_unused = 12.5 })
    -- February's lot has not expired: nothing unused there.
    check(h, recs, t, "2026-02", { monthly_granted = 12.5, monthly_used = 0,
                                   monthly_unused = 0 })
  end)

  it("S13 puts a yearly lot's usage in the month of the meeting", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 100, { start = "2026-01-01", recurrence = "yearly" })
    F.ok(F.book(db, w, room, "2026-06-10T09:00:00Z", "2026-06-10T14:00:00Z"))
    assert(db:set_clock("2027-01-02T00:00:00Z"))
    local args = { from = "2026-01", to = "2026-12" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    check(h, recs, t, "2026-01", { monthly_granted = 100, monthly_used = 0, monthly_unused = 0 })
    check(h, recs, t, "2026-06", { monthly_granted = 0, monthly_used = 5 })
    -- It expires at 1 Jan 2027 00:00: the month that ends then is December.
    check(h, recs, t, "2026-12", { monthly_unused = 95, monthly_rolled_over = 0 })
    check(h, recs, t, "total", { monthly_granted = 100, monthly_used = 5, monthly_unused = 95 })
    -- Without the range's end, nothing has expired yet.
    check(h, recs, t, "2026-11", { monthly_unused = 0 })
  end)

  it("W1 counts a weekly period's usage in each meeting's month, net of refunds", function()
    db = F.open("2026-04-20T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    -- The week of Monday 27 April runs into May.
    F.grant(db, w, 10, { start = "2026-04-27", recurrence = "weekly" })
    F.ok(F.book(db, w, room, "2026-04-28T09:00:00Z", "2026-04-28T11:00:00Z"))
    F.ok(F.book(db, w, room, "2026-05-02T09:00:00Z", "2026-05-02T12:00:00Z"))
    local late = F.ok(F.book(db, w, room, "2026-05-03T09:00:00Z", "2026-05-03T10:00:00Z"))
    -- A refund made in May for a May meeting lowers May's used.
    assert(db:set_clock("2026-05-01T12:00:00Z"))
    F.ok(db:cancel { id = late.id })
    assert(db:set_clock("2026-05-20T00:00:00Z"))
    local args = { from = "2026-04", to = "2026-05" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    check(h, recs, t, "2026-04", { monthly_granted = 10, monthly_used = 2, monthly_unused = 0,
                                   total_used = 2 })
    -- The lot ends on Monday 4 May: its 10 - 2 - 3 = 5 expire in May, beside
    -- the unused weeks of 4 and 11 May; the weeks of 4, 11 and 18 May are
    -- May's grants.
    check(h, recs, t, "2026-05", { monthly_granted = 30, monthly_used = 3,
                                   monthly_unused = 5 + 10 + 10, total_used = 3 })
  end)

  it("W2 and S15 expire an end-dated once lot in the month that ends at its expiry", function()
    for _, zone in ipairs { "UTC", "Europe/Paris" } do
      db = F.open("2026-01-01T00:00:00Z")
      local w = F.world(db, { timezone = zone })
      local room = F.room(db, w.building)
      F.grant(db, w, 5, { start = "2026-01-01", ["end"] = "2026-01-31" })
      F.ok(F.book(db, w, room, "2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z"))
      assert(db:set_clock("2026-02-05T00:00:00Z"))
      local args = { from = "2026-01", to = "2026-02" }
      local h = hub(db, args)
      local _, recs = hub_csv(db, args)
      local t = w.tenant.id
      -- In Paris the lot ends at 1 Feb 00:00 local (31 Jan 23:00 UTC): January still.
      check(h, recs, t, "2026-01", { once_opening = 0, once_granted = 5, once_used = 1,
                                     once_expired = 4, once_closing = 0 })
      check(h, recs, t, "2026-02", { once_opening = 0, once_expired = 0, once_closing = 0 })
      check(h, recs, t, "total", { once_opening = 0, once_granted = 5, once_used = 1,
                                   once_expired = 4, once_closing = 0 })
      F.verified(db)
      db:close()
    end
    db = nil
  end)

  it("S14 and W4 report carried credit as rolled over, neither unused nor granted", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly",
                         rollover = { enabled = true, cap = 5 } })
    F.ok(F.book(db, w, room, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z"))
    F.ok(F.book(db, w, room, "2026-02-12T09:00:00Z", "2026-02-12T12:00:00Z"))
    assert(db:set_clock("2026-04-01T00:00:00Z"))
    local args = { from = "2026-01", to = "2026-03" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    check(h, recs, t, "2026-01", { monthly_granted = 10, monthly_used = 3, monthly_unused = 2,
                                   monthly_rolled_over = 5 })
    -- February: 10 granted (not 15), 15 held, 3 used, 5 carried, 7 expired.
    check(h, recs, t, "2026-02", { monthly_granted = 10, monthly_used = 3, monthly_unused = 7,
                                   monthly_rolled_over = 5, total_granted = 10 })
    check(h, recs, t, "2026-03", { monthly_granted = 10, monthly_used = 0, monthly_unused = 10,
                                   monthly_rolled_over = 5 })
    -- W4's range Feb-Mar: unused stays within granted - used; with every
    -- lot closed, unused + rolled on = granted - used + what was carried in
    -- (rolled over in January and February).
    local fm = hub(db, { from = "2026-02", to = "2026-03" }).customers[1]
    assert.same({ 20, 3, 17, 10 }, { fm.monthly_granted, fm.monthly_used, fm.monthly_unused,
                                     fm.monthly_rolled_over })
    local jf = hub(db, { from = "2026-01", to = "2026-02" }).customers[1]
    assert.equal(fm.monthly_granted - fm.monthly_used + jf.monthly_rolled_over,
                 fm.monthly_unused + fm.monthly_rolled_over)
    assert.equal(10, hub(db, { from = "2026-02", to = "2026-03" }).tiles.monthly_rolled_over)
  end)

  it("W5 shows an unlimited once grant as granted in its first month only", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 4, { start = "2026-01-01" })
    F.grant(db, w, "unlimited", { start = "2026-02-10" })
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    assert(db:set_clock("2026-02-11T00:00:00Z"))
    F.ok(F.book(db, w, room, "2026-03-03T09:00:00Z", "2026-03-03T11:00:00Z"))
    assert(db:set_clock("2026-05-01T00:00:00Z"))
    local args = { from = "2026-01", to = "2026-04" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    local U = "unlimited"
    check(h, recs, t, "2026-01", { once_opening = 0, once_granted = 4, once_closing = 4,
                                   total_granted = 14 })
    check(h, recs, t, "2026-02", { once_opening = 4, once_granted = U, once_closing = U,
                                   monthly_granted = 10, total_granted = U })
    for _, m in ipairs { "2026-03", "2026-04" } do
      check(h, recs, t, m, { once_opening = U, once_granted = 0, once_closing = U,
                             monthly_granted = 10, total_granted = 10 })
    end
    check(h, recs, t, "total", { once_opening = 0, once_granted = U, once_closing = U,
                                 total_granted = U })
    assert.equal(1, h.tiles.unlimited_customers)
    assert.equal(U, h.tiles.once_granted)
    -- A range after the grant's month: no unlimited grant, still valid.
    local later = hub(db, { from = "2026-03", to = "2026-04" })
    assert.equal(20, later.tiles.total_granted)
    assert.equal(0, later.tiles.once_granted)
    assert.equal(1, later.tiles.unlimited_customers)
    assert.equal(U, later.customers[1].once_opening)
  end)

  it("W5 ends an unlimited once grant's balance with its validity", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    F.grant(db, w, "unlimited", { start = "2026-01-15", ["end"] = "2026-02-14" })
    assert(db:set_clock("2026-04-01T00:00:00Z"))
    local args = { from = "2026-01", to = "2026-03" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    local t = w.tenant.id
    check(h, recs, t, "2026-01", { once_opening = 0, once_granted = "unlimited",
                                   once_closing = "unlimited" })
    check(h, recs, t, "2026-02", { once_opening = "unlimited", once_granted = 0,
                                   once_closing = 0 })
    check(h, recs, t, "2026-03", { once_opening = 0, once_closing = 0, total_granted = 0 })
    -- After its validity the customer has nothing in the range.
    assert.equal(0, #hub(db, { from = "2026-03", to = "2026-03" }).customers)
  end)

  it("groups by member with group_by=user: per-user lots in full, shared lots as used", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local bob = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bob", email = "b@x.io" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    F.grant(db, w, 5, { start = "2026-01-01" }, { pool = "per_user" })
    -- Per-user lots pay first: Ada's 7 hours take her 5, then 2 shared.
    F.ok(F.book(db, w, room, "2026-01-10T08:00:00Z", "2026-01-10T15:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-11T08:00:00Z", "2026-01-11T09:00:00Z", nil, bob))
    assert(db:set_clock("2026-02-02T00:00:00Z"))
    local args = { from = "2026-01", to = "2026-01", group_by = "user" }
    local h = hub(db, args)
    assert.equal("user", h.group_by)
    local header, recs = hub_csv(db, args)
    assert.same({ "user_id", "tenant_id", "name", "month" },
                { header[1], header[2], header[3], header[4] })
    assert.equal(2, #h.customers)
    local ada = row_of(h, w.user.id)
    assert.same({ "Ada", w.tenant.id }, { ada.name, ada.tenant_id })
    check(h, recs, w.user.id, "2026-01", { once_granted = 5, once_used = 5, once_closing = 0,
                                           monthly_granted = 0, monthly_used = 2,
                                           monthly_unused = 0, total_used = 7 })
    check(h, recs, bob.id, "2026-01", { once_granted = 5, once_used = 1, once_closing = 4,
                                        monthly_granted = 0, monthly_used = 0, total_used = 1 })
    assert.equal("Bob", rec_of(recs, bob.id, "total").name)
    -- The company: everything, the shared pool's grant and expiry included.
    local th = hub(db, { from = "2026-01", to = "2026-01" })
    assert.equal("tenant", th.group_by)
    local m = row_of(th, w.tenant.id, "2026-01")
    assert.same({ 10, 6, 4, 10, 2, 8 }, { m.once_granted, m.once_used, m.once_closing,
                                          m.monthly_granted, m.monthly_used, m.monthly_unused })
    -- A tenant admin groups their own members only.
    local admin = db:as { role = "tenant_admin", tenant_id = w.tenant.id }
    assert.equal(2, #F.ok(admin:call("reports.datahub", args)).customers)
    -- Anything else is a clear 400.
    local r, err = db:call("reports.datahub", { group_by = "company" })
    assert.is_nil(r)
    assert.same({ 400, "invalid_request", "group_by" }, { err.status, err.code, err.field })
    assert.truthy(err.message:find("tenant or user", 1, true))
  end)

  it("keeps every member's figures apart past the first hundred members", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    local users = { w.user }
    for i = 2, 150 do
      users[i] = F.ok(db:create_user { tenant_id = w.tenant.id, name = "M" .. i,
                                       email = ("m%d@x.io"):format(i) })
    end
    F.grant(db, w, 2, { start = "2026-01-01" }, { pool = "per_user" })
    -- Every third member books half an hour per lot of theirs.
    for i = 3, 150, 3 do
      local start = ("2026-01-%02dT%02d:00:00Z"):format(2 + i // 24, i % 24)
      local stop = start:gsub(":00:00Z", ":30:00Z")
      F.ok(F.book(db, w, room, start, stop, nil, users[i]))
    end
    local h = hub(db, { from = "2026-01", to = "2026-01", group_by = "user" })
    assert.equal(150, #h.customers)
    for i, c in ipairs(h.customers) do
      assert.equal(users[i].id, c.user_id)
      local used = i % 3 == 0 and 0.5 or 0
      assert.same({ 2, used, 2 - used }, { c.once_granted, c.once_used, c.once_closing })
    end
    assert.same({ 300, 25 }, { h.tiles.once_granted, h.tiles.once_used })
  end)

  it("refuses more than 100,000 rows instead of cutting the report", function()
    local dir
    db, dir = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    -- 2,799 more members, written beside the engine; then a per-user grant
    -- gives each a lot.
    D.exec(F.db_file(dir), ([[WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
      WHERE i < 2799)
      INSERT INTO "user" (tenant_id, name, email, roles, created_at)
      SELECT %d, 'M' || i, 'm' || i || '@x.io', '[]', 0 FROM n]]):format(
      tonumber(w.tenant.id:match("%d+"))))
    -- One request opens at most 640 lots (alloc_open_lots_max): five
    -- per-user grants of 560 listed members each.
    local first = tonumber(w.user.id:match("%d+"))
    for g = 0, 4 do
      local ids = {}
      for i = 1, 560 do ids[i] = "usr_" .. (first + g * 560 + i - 1) end
      F.grant(db, w, 1, { start = "2026-01-01" },
              { pool = "per_user", targeting = { type = "users", user_ids = ids } })
    end
    local args = { from = "2026-01", to = "2028-12", group_by = "user" }
    for _, a in ipairs { args, { from = "2026-01", to = "2028-12", group_by = "user",
                                 format = "csv" } } do
      local r, err = db:call("reports.datahub", a)
      assert.is_nil(r)
      assert.same({ 413, "limit_exceeded", "report_rows_max" }, { err.status, err.code, err.field })
      assert.truthy(err.message:find("2800 customers", 1, true))
    end
    -- A year fits: 2,800 members of 13 rows.
    local h = hub(db, { from = "2026-01", to = "2026-12", group_by = "user" })
    assert.equal(2800, #h.customers)
    assert.equal(2800, h.tiles.once_granted)
    -- By company it is one customer.
    assert.equal(1, #hub(db, { from = "2026-01", to = "2028-12" }).customers)
  end)

  it("gives a member a shared once lot's usage as used, moving no balance of theirs", function()
    db = F.open("2026-01-01T00:00:00Z")
    local w = F.world(db, { timezone = "UTC" })
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01" })
    F.ok(F.book(db, w, room, "2026-01-10T08:00:00Z", "2026-01-10T12:00:00Z"))
    local args = { from = "2026-01", to = "2026-02", group_by = "user" }
    local h = hub(db, args)
    local _, recs = hub_csv(db, args)
    check(h, recs, w.user.id, "2026-01", { once_opening = 0, once_granted = 0, once_used = 4,
                                           once_closing = 0, total_used = 4 })
    check(h, recs, w.user.id, "2026-02", { once_opening = 0, once_used = 0, once_closing = 0 })
    local th = hub(db, { from = "2026-01", to = "2026-01" })
    local m = row_of(th, w.tenant.id, "2026-01")
    assert.same({ 10, 4, 6 }, { m.once_granted, m.once_used, m.once_closing })
    -- A later range: the company opens with 6; the member has nothing.
    assert.equal(6, hub(db, { from = "2026-02", to = "2026-02" }).customers[1].once_opening)
    assert.equal(0, #hub(db, { from = "2026-02", to = "2026-02", group_by = "user" }).customers)
  end)
end)

-- ---------- the seeded random workloads ----------

-- Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (nil: never).
local function epoch(s)
  if s == nil then return math.maxinteger end
  local y, mo, d, h, mi, se = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
         + tonumber(se)
end

-- Amounts as integer thousandths, so sums are exact.
local function milli(x)
  local v = x * 1000
  return math.tointeger(v >= 0 and math.floor(v + 0.5) or -math.floor(-v + 0.5))
end

-- Every row of a paged list.
local function all(db, op)
  local out, cursor = {}, nil
  repeat
    local page = F.ok(db:call(op, { limit = 100, cursor = cursor }))
    for _, r in ipairs(page.data) do out[#out + 1] = r end
    cursor = page.next_cursor
  until cursor == nil
  return out
end

-- The raw ledger through the module: lots (with their allocation's
-- customer, kind and zone offset), entries and each booking's user.
local function read_ledger(db, offsets)
  local L = { lots = {}, users = {} }
  for _, a in ipairs(all(db, "allocations.list")) do
    local full = F.ok(db:allocation { id = a.id })
    local alloc = { tenant = full.tenant_id, once = full.schedule.recurrence == "none",
                    off = assert(offsets[full.building_ids[1]]) }
    for _, l in ipairs(full.lots) do
      L.lots[l.id] = { alloc = alloc, unit = l.unit, user = l.user_id,
                       unlimited = l.granted == "unlimited",
                       from = epoch(l.valid_from), to = epoch(l.valid_until) }
    end
  end
  for _, b in ipairs(all(db, "bookings.list")) do L.users[b.id] = b.user_id end
  L.entries = all(db, "entries.list")
  L.now = epoch(F.ok(db:call("me", {})).now)
  return L
end

-- "YYYY-MM" of instant t at a fixed offset from UTC.
local function month_key(t, off) return os.date("!%Y-%m", t + off) end

-- The first instant of month "YYYY-MM" (+k months) at a fixed offset.
local function month_start(key, k, off)
  local y, m = key:match("^(%d+)-(%d+)$")
  local n = tonumber(y) * 12 + tonumber(m) - 1 + k
  return epoch(("%04d-%02d-01T00:00:00Z"):format(n // 12, n % 12 + 1)) - off
end

-- Every figure of the Data Hub from PRODUCT.md §7's plain rules: a grant in
-- the month its lot becomes valid; an adjustment (or void) when made, or
-- when its lot becomes valid if later; usage (debits and refunds) in the
-- month of the meeting; an expiry or roll-on at T in the month that ends at
-- T; carried-in credit nowhere.  Once balances count limited lots only.
-- A lot whose period has not begun (created ahead for a booking) grants
-- nothing yet: its grant, adjustments and unlimited mark wait for it.
local function recompute(L, unit, by_user, months)
  local idx = {}
  for i, m in ipairs(months) do idx[m] = i end
  local C = {}
  local function cust(key, tenant)
    if not C[key] then
      local c = { tenant = tenant, pre = 0, seen = false, unl = false, m = {} }
      for i = 1, #months do
        c.m[i] = { og = 0, ou = 0, oul = 0, oe = 0, mg = 0, mu = 0, mun = 0, mro = 0 }
      end
      C[key] = c
    end
    return C[key]
  end
  for _, e in ipairs(L.entries) do
    local lot = assert(L.lots[e.lot_id])
    local a, kind = lot.alloc, e.kind
    local usage = kind == "debit" or kind == "refund"
    local key = a.tenant
    if by_user then key = lot.user or (usage and L.users[e.booking_id]) or nil end
    local ahead = lot.from > L.now and (kind == "grant" or kind == "adjust" or kind == "void")
    if lot.unit == unit and key and kind ~= "rollover_in" and not ahead then
      local t, amount = epoch(e.effective_at), milli(e.amount)
      if kind == "expire" or kind == "rollover_out" then t = t - 1
      elseif (kind == "adjust" or kind == "void") and lot.from > t then t = lot.from end
      local mk = month_key(t, a.off)
      local r = idx[mk] and cust(key, a.tenant).m[idx[mk]]
      if r then
        C[key].seen = true
        if kind == "grant" and lot.unlimited then
          if a.once then r.ogu = true else r.mgu = true end
        elseif kind == "grant" or kind == "adjust" or kind == "void" then
          if a.once then r.og = r.og + amount else r.mg = r.mg + amount end
        elseif usage then
          if a.once then r.ou = r.ou - amount else r.mu = r.mu - amount end
          -- Usage moves the customer's once balance only from its own
          -- limited lots (a member's shared-pool usage is used, no more).
          if a.once and not lot.unlimited and (not by_user or lot.user) then
            r.oul = r.oul - amount
          end
        elseif kind == "expire" then
          if a.once then r.oe = r.oe - amount else r.mun = r.mun - amount end
        elseif kind == "rollover_out" then
          r.mro = r.mro - amount
        else
          error("unexpected entry kind " .. kind)
        end
      elseif mk < months[1] and a.once and not lot.unlimited and (not by_user or lot.user) then
        local c = cust(key, a.tenant)
        c.pre = c.pre + amount
      end
    end
  end
  -- Unlimited lots: the customer had one valid in the range; a once lot
  -- valid at a month's first (or last) instant makes its opening (closing)
  -- "unlimited".
  for _, lot in pairs(L.lots) do
    local key = by_user and lot.user or (not by_user and lot.alloc.tenant)
    local off = lot.alloc.off
    if lot.unit == unit and lot.unlimited and key and lot.from <= L.now
       and lot.from < month_start(months[1], #months, off)
       and lot.to > month_start(months[1], 0, off) then
      local c = cust(key, lot.alloc.tenant)
      c.seen, c.unl = true, true
      for i = 1, #months do
        local s, e = month_start(months[1], i - 1, off), month_start(months[1], i, off)
        if lot.alloc.once then
          c.m[i].open_unl = c.m[i].open_unl or (lot.from < s and lot.to > s)
          c.m[i].close_unl = c.m[i].close_unl or (lot.from < e and lot.to > e)
        end
      end
    end
  end
  -- The figures as the report shows them (thousandths, or "unlimited").
  local function fig(unl, v) return unl and "unlimited" or v end
  local out = {}
  for key, c in pairs(C) do
    if c.seen or c.pre ~= 0 then
      local open, rows = c.pre, {}
      local sum = { og = 0, ou = 0, oe = 0, mg = 0, mu = 0, mun = 0, mro = 0 }
      for i, r in ipairs(c.m) do
        local close = open + r.og - r.oul - r.oe
        rows[i] = { month = months[i], once_opening = fig(r.open_unl, open),
                    once_granted = fig(r.ogu, r.og), once_used = r.ou, once_expired = r.oe,
                    once_closing = fig(r.close_unl, close), monthly_granted = fig(r.mgu, r.mg),
                    monthly_used = r.mu, monthly_unused = r.mun, monthly_rolled_over = r.mro,
                    total_granted = fig(r.ogu or r.mgu, r.og + r.mg), total_used = r.ou + r.mu,
                    balance_used = r.oul }
        for _, k in ipairs { "og", "ou", "oe", "mg", "mu", "mun", "mro" } do
          sum[k] = sum[k] + r[k]
        end
        sum.ogu, sum.mgu = sum.ogu or r.ogu, sum.mgu or r.mgu
        open = close
      end
      local n = #months
      out[key] = { tenant = c.tenant, unlimited = c.unl, months = rows, total = {
        once_opening = rows[1].once_opening, once_granted = fig(sum.ogu, sum.og),
        once_used = sum.ou, once_expired = sum.oe, once_closing = rows[n].once_closing,
        monthly_granted = fig(sum.mgu, sum.mg), monthly_used = sum.mu, monthly_unused = sum.mun,
        monthly_rolled_over = sum.mro, total_granted = fig(sum.ogu or sum.mgu, sum.og + sum.mg),
        total_used = sum.ou + sum.mu } }
    end
  end
  return out
end

-- A report row's figures in thousandths (`exact`: they are already).
local function as_milli(row, exact)
  local out = {}
  for _, k in ipairs(FIGURES) do
    local v = row[k]
    if v ~= "unlimited" and not exact then v = milli(assert(tonumber(v), k)) end
    out[k] = v
  end
  return out
end

local function months_of(from, to)
  local out, k = {}, 0
  repeat
    local key = os.date("!%Y-%m", month_start(from, k, 0))
    out[#out + 1] = key
    k = k + 1
  until key == to
  return out
end

-- Checks one report (JSON and CSV) against the recomputation; returns
-- what it saw for the coverage check.
local function compare(db, L, unit, group_by, from, to, seen)
  local months = months_of(from, to)
  local want = recompute(L, unit, group_by == "user", months)
  local args = { unit = unit, from = from, to = to, group_by = group_by }
  local h = hub(db, args)
  local _, recs = hub_csv(db, args)
  local count, tiles = 0, { once_granted = 0, monthly_rolled_over = 0, total_used = 0 }
  local unlimited_customers = 0
  for _, c in ipairs(h.customers) do
    local key = group_by == "user" and c.user_id or c.tenant_id
    local e = want[key]
    local where = ("%s %s %s %s"):format(unit, group_by, from, key)
    assert(e, "the report shows a customer with nothing in the range: " .. where)
    assert.equal(e.tenant, c.tenant_id, where)
    assert.equal(e.unlimited, c.unlimited, where)
    unlimited_customers = unlimited_customers + (c.unlimited and 1 or 0)
    count = count + 1
    for i, m in ipairs(c.months) do
      assert.equal(months[i], m.month)
      assert.same(as_milli(e.months[i], true), as_milli(m), where .. " " .. m.month)
      assert.same(as_milli(m), as_milli(assert(rec_of(recs, key, m.month))), where .. " CSV")
      -- The identities of §7, wherever every term is a number.  A member's
      -- used includes shared-pool usage, which moves no balance of theirs.
      local o, g, cl = m.once_opening, m.once_granted, m.once_closing
      local used = group_by == "user" and e.months[i].balance_used or milli(m.once_used)
      if o ~= "unlimited" and g ~= "unlimited" and cl ~= "unlimited" then
        assert.equal(milli(o) + milli(g) - used - milli(m.once_expired),
                     milli(cl), where .. " " .. m.month)
      end
      if i > 1 then assert.equal(c.months[i - 1].once_closing, o) end
      -- No balance is ever below zero at a month's end, a member's included.
      if cl ~= "unlimited" then assert.is_true(cl >= 0, where .. " " .. m.month .. " closing") end
      for _, k in ipairs { "monthly_rolled_over", "once_expired", "monthly_unused" } do
        if m[k] > 0 then seen[k] = true end
      end
      if g == "unlimited" then seen.unlimited_granted = true end
      if o == "unlimited" then seen.unlimited_opening = true end
      if m.month ~= months[1] and o ~= 0 then seen.opening = true end
    end
    assert.same(as_milli(e.total, true), as_milli(c), where .. " total")
    assert.same(as_milli(c), as_milli(assert(rec_of(recs, key, "total"))), where .. " CSV total")
    if c.once_granted ~= "unlimited" then tiles.once_granted = tiles.once_granted + milli(c.once_granted) end
    tiles.monthly_rolled_over = tiles.monthly_rolled_over + milli(c.monthly_rolled_over)
    tiles.total_used = tiles.total_used + milli(c.total_used)
  end
  local expected = 0
  for _ in pairs(want) do expected = expected + 1 end
  assert.equal(expected, count, "customers shown")
  assert.equal(#h.customers * (#months + 1), #recs, "CSV records")
  if h.tiles.once_granted ~= "unlimited" then
    assert.equal(tiles.once_granted, milli(h.tiles.once_granted))
  end
  assert.equal(tiles.monthly_rolled_over, milli(h.tiles.monthly_rolled_over))
  assert.equal(tiles.total_used, milli(h.tiles.total_used))
  assert.equal(unit == "hour" and unlimited_customers or 0, h.tiles.unlimited_customers)
  return count
end

-- A random mix of grants and bookings from November 2025 to April 2026,
-- the clock moving through every month end on the way.
local function workload(seed)
  math.randomseed(seed)
  local R = math.random
  local db = F.open("2025-11-01T00:00:00Z")
  local offsets, rooms = {}, {}
  local buildings = {}
  for i, zone in ipairs { { "UTC", 0 }, { "Etc/GMT-2", 7200 } } do
    local b = F.ok(db:create_building { name = "B" .. i, timezone = zone[1], currency = "USD",
      payment = { credits = true, invoice = true, card = true } })
    offsets[b.id], buildings[i] = zone[2], b
    rooms[#rooms + 1] = { b = b, r = F.room(db, b, { name = "H" .. i }) }
    rooms[#rooms + 1] = { b = b, r = F.room(db, b, { name = "H2" .. i }) }
    rooms[#rooms + 1] = { b = b, r = F.room(db, b, { name = "C" .. i, unit = "coin", per_hour = 50 }) }
  end
  local tenants, allocs = {}, {}
  local recs = { "none", "none", "weekly", "monthly", "monthly", "quarterly", "yearly" }
  for t = 1, 3 do
    local ten = F.ok(db:create_tenant { name = "T" .. t,
                                        building_ids = { buildings[1].id, buildings[2].id } })
    local users = {}
    for u = 1, 3 do
      users[u] = F.ok(db:create_user { tenant_id = ten.id, name = "U" .. t .. u,
                                       email = ("u%d%d@x.io"):format(t, u) })
    end
    tenants[t] = { tenant = ten, users = users }
    for _ = 1, 5 do
      local unit = R(4) == 1 and "coin" or "hour"
      local rec = recs[R(#recs)]
      local amount = unit == "coin" and R(100, 900) or (R(5) == 1 and "unlimited" or R(2, 30))
      local start = os.date("!%Y-%m-%d", epoch("2025-11-01T00:00:00Z") + R(0, 100) * 86400)
      local stop = nil
      if (rec == "none" and R(2) == 1) or R(5) == 1 then
        stop = os.date("!%Y-%m-%d", epoch(start .. "T00:00:00Z") + R(10, 90) * 86400)
      end
      local cap = unit == "coin" and R(0, 300) or R(0, 8)
      local a = F.ok(db:allocate { tenant_id = ten.id, unit = unit, description = "g",
        building_ids = { buildings[R(2)].id }, lines = { { scope = "all", amount = amount } },
        targeting = { type = "all" }, pool = R(3) == 1 and "per_user" or "shared",
        schedule = { start = start, ["end"] = stop, recurrence = rec,
                     rollover = rec ~= "none" and R(2) == 1 and { enabled = true, cap = cap }
                                or nil } })
      allocs[#allocs + 1] = a
    end
  end
  local now = epoch("2025-11-01T00:00:00Z")
  local booked = {}
  for step = 1, 200 do
    local t = tenants[R(#tenants)]
    local s = now + R(1, 24 * 45) * 3600
    local room = rooms[R(#rooms)]
    local res = db:book { resource_id = room.r.id, user_id = t.users[R(3)].id,
      payment_method = R(6) == 1 and "card" or "credits",
      start = os.date("!%Y-%m-%dT%H:00:00Z", s), ["end"] = os.date("!%Y-%m-%dT%H:00:00Z", s + 3600 * R(1, 3)) }
    if res then booked[#booked + 1] = res.id end
    if R(5) == 1 and #booked > 0 then
      -- Cancellations before or after the meeting, across month ends.
      db:cancel { id = booked[R(#booked)] }
    end
    if R(15) == 1 then
      local a = F.ok(db:allocation { id = allocs[R(#allocs)].id })
      local lot = a.lots[#a.lots]
      if lot and lot.status == "active" and lot.granted ~= "unlimited" then
        db:adjust { lot_id = lot.id, amount = R(2) == 1 and R(1, 5) or -math.min(lot.balance, R(1, 3)) }
      end
    end
    if R(20) == 1 then
      -- Ending an allocation voids the lots opened ahead for bookings.
      local a = F.ok(db:allocation { id = allocs[R(#allocs)].id })
      local stop = os.date("!%Y-%m-%d", now + 86400)
      for _, lot in ipairs(a.lots) do
        if lot.status == "upcoming" and lot.granted ~= "unlimited" and a.schedule.start <= stop
           and (a.schedule["end"] == nil or a.schedule["end"] > stop) then
          F.ok(db:end_allocation { id = a.id, ["end"] = stop })
          break
        end
      end
    end
    if step % 12 == 0 then
      now = now + R(4, 16) * 86400
      assert(db:set_clock(os.date("!%Y-%m-%dT%H:%M:%SZ", now)))
    end
  end
  F.verified(db)
  return db, offsets
end

describe("Data Hub against the raw ledger", function()
  -- What the workloads produced, over all seeds: each rule must be exercised.
  local seen = {}
  -- ALLOT_DATAHUB_SEEDS="1,2,3" runs other seeds.
  local seeds = { 11, 23, 101 }
  if os.getenv("ALLOT_DATAHUB_SEEDS") then
    seeds = {}
    for n in os.getenv("ALLOT_DATAHUB_SEEDS"):gmatch("%d+") do seeds[#seeds + 1] = tonumber(n) end
  end
  for _, seed in ipairs(seeds) do
    it("matches a plain recomputation after seeded workload " .. seed, function()
      local db, offsets = workload(seed)
      local L = read_ledger(db, offsets)
      assert.is_true(#L.entries > 100, "the workload left too little to compare")
      for _, e in ipairs(L.entries) do seen["entry " .. e.kind] = true end
      local shown = 0
      for _, unit in ipairs { "hour", "coin" } do
        for _, group_by in ipairs { "tenant", "user" } do
          shown = shown + compare(db, L, unit, group_by, "2025-11", "2026-06", seen)
          -- A range that starts later: openings from the entries before it.
          shown = shown + compare(db, L, unit, group_by, "2026-01", "2026-03", seen)
        end
      end
      assert.is_true(shown >= 12, "too few customers compared")
      db:close()
    end)
  end
  it("exercised every rule in those workloads", function()
    for _, k in ipairs { "monthly_rolled_over", "once_expired", "monthly_unused", "opening",
                         "unlimited_granted", "unlimited_opening", "entry refund",
                         "entry adjust", "entry void", "entry rollover_in" } do
      assert.is_true(seen[k] or false, "the workloads never produced " .. k)
    end
  end)
end)
