-- Aggregate reports of a building-limited operator key (PRODUCT.md §8): the
-- dashboard and the Data Hub count only what the key reaches — lots of
-- allocations whose buildings are all inside its scope, bookings made in a
-- building inside it — whichever of its buildings comes first, and however
-- many it has.
local H = require "http_env"

describe("a building-limited key's dashboard and Data Hub", function()
  local env, b1, b2, b3, keys

  setup(function()
    env = H.start()
    local function building(name)
      return env:must(201, "POST", "/v1/buildings", { name = name, timezone = "UTC",
        currency = "USD", payment = { credits = true, invoice = true, card = true } })
    end
    b1, b2, b3 = building("One"), building("Two"), building("Three")
    local t = env:must(201, "POST", "/v1/tenants",
                       { name = "Acme", building_ids = { b1.id, b2.id, b3.id } })
    local u = env:must(201, "POST", "/v1/users",
                       { tenant_id = t.id, name = "Ada", email = "ada@example.com" })
    local rooms = { [b1.id] = env:room(b1), [b2.id] = env:room(b2), [b3.id] = env:room(b3) }
    -- Once grants: 10 in One, 5 over One and Two, 7 in Two, 3 in Three.
    local function grant(amount, buildings)
      return env:must(201, "POST", "/v1/allocations", {
        tenant_id = t.id, building_ids = buildings, description = "grant " .. amount,
        unit = "hour", lines = { { scope = "all", amount = amount } },
        targeting = { type = "all" }, pool = "shared", schedule = { start = "2026-01-01" } })
    end
    grant(10, { b1.id })
    grant(5, { b1.id, b2.id })
    grant(7, { b2.id })
    grant(3, { b3.id })
    -- One hour booked in each building (paid from whichever lot pays).
    for _, b in ipairs { b1, b2, b3 } do
      env:must(201, "POST", "/v1/bookings", { resource_id = rooms[b.id].id, user_id = u.id,
        start = "2026-01-05T09:00:00Z", ["end"] = "2026-01-05T10:00:00Z",
        payment_method = "credits" })
    end
    keys = {}
    for name, bids in pairs { one = { b1.id }, two = { b2.id }, two_three = { b2.id, b3.id },
                              three_two = { b3.id, b2.id }, all = { b1.id, b2.id, b3.id } } do
      keys[name] = env:as(env:must(201, "POST", "/v1/keys",
                                   { role = "viewer", building_ids = bids }).key)
    end
    keys.unlimited = env:as(env:must(201, "POST", "/v1/keys", { role = "viewer" }).key)
  end)

  teardown(function() if env then env:stop() end end)

  local function dashboard(c, query)
    return c:must(200, "GET", "/v1/reports/dashboard?unit=hour" .. (query or ""))
  end
  local function hub_granted(c, query)
    local d = c:must(200, "GET", "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-01"
                     .. (query or ""))
    return d.tiles.once_granted, d.tiles.total_used
  end

  it("count the allocations wholly inside the scope, whatever its order", function()
    -- allocated: One 10; Two 7; Two+Three 7 + 3; everything 25.
    assert.equal(10, dashboard(keys.one).allocated)
    assert.equal(7, dashboard(keys.two).allocated)
    assert.equal(10, dashboard(keys.two_three).allocated)
    assert.equal(10, dashboard(keys.three_two).allocated)
    assert.equal(25, dashboard(keys.all).allocated)
    assert.equal(25, dashboard(keys.unlimited).allocated)
    assert.equal(10, (hub_granted(keys.one)))
    assert.equal(10, (hub_granted(keys.three_two)))
    assert.equal(25, (hub_granted(keys.all)))
    assert.equal(25, (hub_granted(keys.unlimited)))
  end)

  it("count the bookings made in the scope's buildings", function()
    assert.equal(1, dashboard(keys.one).transactions_30d)
    assert.equal(2, dashboard(keys.two_three).transactions_30d)
    assert.equal(2, dashboard(keys.three_two).used)
    assert.equal(3, dashboard(keys.all).transactions_30d)
  end)

  it("list usage and credit rows of every building in the scope, in JSON and CSV", function()
    local function usage_buildings(c, csv)
      local seen = {}
      if csv then
        local status, _, _, text = c:request("GET", "/v1/reports/usage?format=csv")
        assert.equal(200, status)
        local n = 0
        for _, id in ipairs { b1.id, b2.id, b3.id } do
          if text:find("," .. id .. ",", 1, true) then seen[#seen + 1] = id end
        end
        for _ in text:gmatch("\n[^\n]") do n = n + 1 end
        return seen, n
      end
      local rows = c:must(200, "GET", "/v1/reports/usage")
      for _, r in ipairs(rows.data) do seen[#seen + 1] = r.building_id end
      table.sort(seen)
      return seen, #seen
    end
    local all = { b1.id, b2.id, b3.id }
    table.sort(all)
    local s23 = { b2.id, b3.id }
    table.sort(s23)
    assert.same(s23, (usage_buildings(keys.three_two)))
    assert.same(s23, (usage_buildings(keys.two_three)))
    assert.same({ b1.id }, (usage_buildings(keys.one)))
    assert.same(all, (usage_buildings(keys.all)))
    local csv_seen, csv_rows = usage_buildings(keys.three_two, true)
    assert.equal(2, #csv_seen)
    assert.equal(2, csv_rows)
    -- Credit rows: the allocations wholly inside (Two 7 and Three 3).
    local credits = keys.three_two:must(200, "GET", "/v1/reports/credits")
    local amounts = {}
    for _, r in ipairs(credits.data) do amounts[#amounts + 1] = r.amount end
    table.sort(amounts)
    assert.same({ 3, 7 }, amounts)
  end)

  it("narrow further with a building filter inside the scope", function()
    -- Two within Two+Three: the allocations touching Two and wholly inside.
    assert.equal(7, dashboard(keys.two_three, "&building_id=" .. b2.id).allocated)
    assert.equal(12, dashboard(keys.unlimited, "&building_id=" .. b2.id).allocated)
    keys.two:must(404, "GET", "/v1/reports/dashboard?unit=hour&building_id=" .. b1.id)
  end)
end)
