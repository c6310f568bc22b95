-- GET /v1/reports/datahub through the real allotd (fake clock): S14's
-- rollover as monthly_rolled_over and group_by=user, in JSON and CSV, and a
-- bad group_by as a clear 400.
local H = require "http_env"

local function records(text)
  local lines = {}
  for line in text:gmatch("([^\r\n]*)\r\n") do lines[#lines + 1] = line end
  local header, out = {}, {}
  for name in (lines[1] .. ","):gmatch("([^,]*),") do header[#header + 1] = name end
  for i = 2, #lines do
    local rec, k = {}, 0
    for v in (lines[i] .. ","):gmatch("([^,]*),") do k = k + 1; rec[header[k]] = v end
    out[#out + 1] = rec
  end
  return header, out
end

describe("GET /v1/reports/datahub", function()
  local env
  setup(function() env = H.start() end)
  teardown(function()
    if env then assert.is_true(env:stop(), "allotd did not stop on SIGTERM") end
  end)

  it("reports rollover apart and groups by member, in JSON and CSV", function()
    local w = env:world { timezone = "UTC" }
    local bob = env:must(201, "POST", "/v1/users", { tenant_id = w.tenant.id, name = "Bob",
                                                     email = "bob@example.com" })
    env:must(201, "POST", "/v1/allocations", {
      tenant_id = w.tenant.id, building_ids = { w.building.id }, description = "monthly",
      unit = "hour", lines = { { scope = "all", amount = 10 } }, targeting = { type = "all" },
      pool = "shared", schedule = { start = "2026-01-01", recurrence = "monthly",
                                    rollover = { enabled = true, cap = 5 } } })
    for _, u in ipairs { w.user, bob } do
      env:must(201, "POST", "/v1/bookings", { resource_id = w.room.id, user_id = u.id,
        start = u == bob and "2026-01-13T09:00:00Z" or "2026-01-12T09:00:00Z",
        ["end"] = u == bob and "2026-01-13T10:00:00Z" or "2026-01-12T11:00:00Z",
        payment_method = "credits" })
    end
    env:clock("2026-02-15T00:00:00Z")
    local q = "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-02"
    local hub = env:must(200, "GET", q)
    local jan, feb = hub.customers[1].months[1], hub.customers[1].months[2]
    -- S14: 3 used, 5 carried, 2 expired; February's grant is 10, not 15.
    assert.same({ 10, 3, 2, 5 }, { jan.monthly_granted, jan.monthly_used, jan.monthly_unused,
                                   jan.monthly_rolled_over })
    assert.equal(10, feb.monthly_granted)
    assert.equal(5, hub.tiles.monthly_rolled_over)
    local status, text, headers = env:get(q .. "&format=csv")
    assert.equal(200, status)
    assert.equal("text/csv; charset=utf-8", headers["content-type"])
    local header, recs = records(text)
    assert.equal("monthly_rolled_over", header[12])
    assert.same({ "2026-01", "2", "5" }, { recs[1].month, recs[1].monthly_unused,
                                           recs[1].monthly_rolled_over })

    -- Per member: the shared pool gives each only their own usage.
    local by_user = env:must(200, "GET", q .. "&group_by=user")
    assert.equal("user", by_user.group_by)
    local used = {}
    for _, c in ipairs(by_user.customers) do
      used[c.user_id] = c.months[1].monthly_used
      assert.equal(0, c.months[1].monthly_granted)
      assert.equal(w.tenant.id, c.tenant_id)
    end
    assert.same({ [w.user.id] = 2, [bob.id] = 1 }, used)
    status, text = env:get(q .. "&group_by=user&format=csv")
    assert.equal(200, status)
    header, recs = records(text)
    assert.same({ "user_id", "tenant_id", "name" }, { header[1], header[2], header[3] })
    assert.equal(6, #recs) -- two members, two months and a total each

    local s, body = env:get(q .. "&group_by=building")
    assert.equal(400, s)
    assert.equal("invalid_request", body.error.code)
    assert.truthy(body.error.message:find("group_by", 1, true))
  end)
end)
