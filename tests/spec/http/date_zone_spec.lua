-- Dates in filters (YYYY-MM-DD) are read in the building's zone (API.md
-- conventions), also without a building_id when the buildings concerned
-- share one zone: a meeting at 09:00 on 1 February in Auckland (20:00Z on
-- 31 January) is February's in the usage report, the bookings list and the
-- entries.  When the zones differ and no building is named, each booking's
-- dates are read in its own building's zone, an entry's in its allocation's.
local H = require "http_env"
local cjson_null = require("cjson.safe").null

describe("date filters without a building", function()
  local env, w, booking

  setup(function()
    env = H.start()
    w = env:world({ timezone = "Pacific/Auckland", building_name = "Auckland" })
    env:grant(w, 10, { start = "2027-01-01", recurrence = "monthly" })
    env:clock("2027-01-20T00:00:00Z")
    local status
    status, booking = env:book(w, "2027-01-31T20:00:00Z", "2027-01-31T21:00:00Z")
    assert.equal(201, status, H.encode(booking))
  end)
  teardown(function() if env then env:stop() end end)

  local function ids(path)
    local out = {}
    for _, row in ipairs(env:must(200, "GET", path).data) do
      out[row.booking_id or row.id] = true
    end
    return out
  end

  it("reads them in the one zone of the portfolio's buildings", function()
    local feb = "from=2027-02-01&to=2027-02-28"
    local jan = "from=2027-01-01&to=2027-01-31"
    assert.truthy(ids("/v1/reports/usage?" .. feb)[booking.id])
    assert.is_nil(ids("/v1/reports/usage?" .. jan)[booking.id])
    assert.truthy(ids("/v1/bookings?" .. feb)[booking.id])
    assert.is_nil(ids("/v1/bookings?" .. jan)[booking.id])
    -- The debit of the booking is dated at its creation (20 January here),
    -- the grant at local midnight on 1 January: 11:00Z on 31 December.
    local grants = env:must(200, "GET", "/v1/entries?kind=grant&from=2027-01-01&to=2027-01-01")
    assert.equal(1, #grants.data)
    assert.equal("2026-12-31T11:00:00Z", grants.data[1].effective_at)
  end)

  it("prices peak windows by each minute's local time across a DST change", function()
    local l = env:world({ timezone = "Europe/London", building_name = "Night",
                          tenant_name = "Night owls", pricing = {
      money = { per_hour = 1000 },
      credits = { unit = "hour", per_hour = 1, increment_minutes = 60,
                  peak = { { from = "00:00", to = "03:00", per_hour = 5 } } } } })
    env:grant(l, 100, { start = "2027-01-01", recurrence = "monthly" })
    local function credits(start, stop)
      local q = env:must(200, "POST", "/v1/quotes", { resource_id = l.room.id,
        user_id = l.user.id, start = start, ["end"] = stop })
      return q.credits.amount, q.money.amount
    end
    -- 28 March 2027: 00:00-01:00 GMT, then 02:00-04:00 BST; 2 peak hours.
    assert.same({ 11, 3000 }, { credits("2027-03-28T00:00:00Z", "2027-03-28T03:00:00Z") })
    -- 31 October 2027: 00:00-02:00 BST, then 01:00-04:00 GMT; 4 peak hours.
    assert.same({ 21, 5000 }, { credits("2027-10-30T23:00:00Z", "2027-10-31T04:00:00Z") })
    -- An ordinary night: 3 peak hours and one more.
    assert.same({ 16, 4000 }, { credits("2027-04-04T23:00:00Z", "2027-04-05T03:00:00Z") })
  end)

  it("reads them in each row's own building's zone when the buildings' zones differ", function()
    local o = env:world({ timezone = "America/Los_Angeles", building_name = "LA",
                          tenant_name = "Other" })
    env:grant(o, 10, { start = "2027-01-01", recurrence = "monthly" })
    -- 21:00 on 31 January in Los Angeles: 05:00Z on 1 February.
    local status, la = env:book(o, "2027-02-01T05:00:00Z", "2027-02-01T06:00:00Z")
    assert.equal(201, status, H.encode(la))
    local jan, feb = "from=2027-01-31&to=2027-01-31", "from=2027-02-01&to=2027-02-01"
    for _, path in ipairs { "/v1/reports/usage?", "/v1/bookings?" } do
      local j, f = ids(path .. jan), ids(path .. feb)
      assert.truthy(j[la.id], path)
      assert.is_nil(j[booking.id], path)
      assert.truthy(f[booking.id], path)
      assert.is_nil(f[la.id], path)
      -- Paged a row at a time: the same rows, none twice.
      local seen, cursor, pages = {}, nil, 0
      repeat
        local page = env:must(200, "GET", path .. feb .. "&limit=1"
                              .. (cursor and ("&cursor=" .. cursor) or ""))
        for _, row in ipairs(page.data) do
          local id = row.booking_id or row.id
          assert.is_nil(seen[id], id)
          seen[id] = true
        end
        cursor, pages = page.next_cursor, pages + 1
      until cursor == nil or cursor == cjson_null or pages > 20
      assert.same(f, seen, path)
    end
    -- The CSV export streams the same rows.
    local status2, _, _, csv = env:request("GET", "/v1/reports/usage?format=csv&" .. feb)
    assert.equal(200, status2)
    assert.truthy(csv:find(booking.id, 1, true))
    assert.is_nil(csv:find(la.id, 1, true))
    -- Entries: in their allocation's zone.  Each grant is at its own local
    -- midnight on 1 January: 11:00Z on 31 December in Auckland, 00:00Z in
    -- London (the test above), 08:00Z in Los Angeles; all are 1 January's.
    local grants = env:must(200, "GET", "/v1/entries?kind=grant&from=2027-01-01&to=2027-01-01")
    local at = {}
    for _, e in ipairs(grants.data) do at[#at + 1] = e.effective_at end
    table.sort(at)
    assert.same({ "2026-12-31T11:00:00Z", "2027-01-01T00:00:00Z", "2027-01-01T08:00:00Z" }, at)
    assert.equal(0, #env:must(200, "GET", "/v1/entries?kind=grant&from=2026-12-31&to=2026-12-31").data)
    -- Without dates, no bound at all (in one zone and in several).
    for _, path in ipairs { "/v1/reports/usage", "/v1/bookings" } do
      local all = ids(path)
      assert.truthy(all[booking.id] and all[la.id], path)
      assert.truthy(ids(path .. "?tenant_id=" .. w.tenant.id)[booking.id], path)
    end
    -- January's three grants, and February's in Auckland (made for the booking).
    assert.equal(4, #env:must(200, "GET", "/v1/entries?kind=grant").data)
    assert.equal(2, #env:must(200, "GET", "/v1/entries?kind=grant&tenant_id=" .. w.tenant.id).data)
    -- An instant is the same instant for every row.
    assert.truthy(ids("/v1/bookings?from=2027-02-01T00:00:00Z&to=2027-02-01T23:59:59Z")[la.id])
    -- A tenant's own buildings still share one zone.
    assert.truthy(ids("/v1/reports/usage?tenant_id=" .. w.tenant.id .. "&" .. feb)[booking.id])
  end)
end)
