-- Every endpoint of API.md once, through the real allotd: its happy path and
-- the shape of its answer; then PRODUCT.md's scenarios S1, S3, S4 and S7
-- over HTTP with the fake clock.
local H = require "http_env"

local function has(list, value)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

local function ids(list)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = v.id end
  return out
end

describe("HTTP endpoints", function()
  local env, w
  setup(function()
    env = H.start()
    w = env:world()
  end)
  teardown(function()
    if env then assert.is_true(env:stop(), "allotd did not stop on SIGTERM") end
  end)

  it("GET /v1/health answers without a key", function()
    local status, body, headers = env:as(false):get("/v1/health")
    assert.equal(200, status)
    assert.same({ status = "ok" }, body)
    assert.equal("application/json", headers["content-type"])
    local hs, hbody, hh = env:as(false):request("HEAD", "/v1/health")
    assert.equal(200, hs)
    assert.equal("", hbody)
    assert.equal("15", hh["content-length"])
  end)

  it("GET /v1/openapi.json describes every route the server serves", function()
    local doc = env:must(200, "GET", "/v1/openapi.json")
    assert.matches("^3%.0", doc.openapi)
    -- The routes served, read from the route table itself.
    local f = assert(io.open((os.getenv("ALLOT_SOURCE_DIR") or ".") .. "/engine/http/routes.c"))
    local src = f:read("a")
    f:close()
    local served = 0
    for method, path in src:gmatch('{%s*"(%u+)",%s*"(/v1[^"]*)"') do
      -- "{bld:id}" (an id) is "{id}" in the document, "{:kind}" is "{kind}".
      local templ = path:gsub("{(%w*):([%w_]+)}", function(prefix, name)
        return prefix ~= "" and "{id}" or "{" .. name .. "}"
      end)
      served = served + 1
      local item = doc.paths[templ]
      assert(item, "openapi.json lacks the path " .. templ)
      assert(item[method:lower()], "openapi.json lacks " .. method .. " " .. templ)
    end
    assert.is_true(served >= 35)
    -- And every described operation is served (no 404 for the route itself,
    -- no 405), tried with an id of the right kind that does not exist.
    local prefixes = { buildings = "bld", resources = "res", tenants = "ten", users = "usr",
                       allocations = "alc", bookings = "bkg", keys = "key" }
    for templ, item in pairs(doc.paths) do
      for method in pairs(item) do
        if method ~= "parameters" then
          local collection = templ:match("^/v1/(%w+)/{id}")
          local path = templ:gsub("{id}", (prefixes[collection] or "x") .. "_999999")
                            :gsub("{kind}", "pricing"):gsub("{[%w_]+}", "x")
          local status, body = env:request(method:upper(), path, nil)
          assert.are_not.equal(405, status, method .. " " .. templ)
          if status == 404 then
            assert.are_not.equal("there is nothing at this path", body.error.message,
                                 method .. " " .. templ .. " is not served")
          end
        end
      end
    end
  end)

  it("GET /v1/me names the calling principal", function()
    local me = env:must(200, "GET", "/v1/me")
    assert.equal("super_admin", me.role)
    assert.matches("^key_%d+$", me.id)
    assert.equal(H.null, me.tenant_id)
  end)

  it("POST /v1/keys creates a key that is shown once and works", function()
    local k = env:must(201, "POST", "/v1/keys", { role = "tenant_user", user_id = w.user.id })
    assert.equal("tenant_user", k.role)
    assert.matches("^key_%d+$", k.id)
    assert.matches("^allot_%x+$", k.key)
    local me = env:as(k.key):must(200, "GET", "/v1/me")
    assert.equal("tenant_user", me.role)
    assert.equal(w.user.id, me.user_id)
    assert.equal(w.tenant.id, me.tenant_id)
    assert.equal(k.id, me.id)
    assert.equal("tenant_user", me.name)        -- no name given: the role
    local named = env:must(201, "POST", "/v1/keys",
                           { role = "viewer", name = "Front desk, 2nd floor" })
    me = env:as(named.key):must(200, "GET", "/v1/me")
    assert.equal("Front desk, 2nd floor", me.name)
    assert.equal(named.id, me.id)
  end)

  it("buildings: create, get, list, patch", function()
    local b = env:must(201, "POST", "/v1/buildings", {
      name = "Annex", timezone = "America/New_York", currency = "USD",
      payment = { credits = true, invoice = false, card = true },
    })
    assert.matches("^bld_%d+$", b.id)
    assert.same({ credits = true, invoice = false, card = true }, b.payment)
    assert.same(b, env:must(200, "GET", "/v1/buildings/" .. b.id))
    local list = env:must(200, "GET", "/v1/buildings?limit=500")
    assert.is_true(has(ids(list.data), b.id))
    assert.equal(H.null, list.next_cursor)
    local p = env:must(200, "PATCH", "/v1/buildings/" .. b.id, { name = "Annex B",
                                                                payment = { invoice = true } })
    assert.equal("Annex B", p.name)
    assert.same({ credits = true, invoice = true, card = true }, p.payment)
  end)

  it("lists page with limit and cursor", function()
    for i = 1, 3 do
      env:must(201, "POST", "/v1/buildings", { name = "Page " .. i, timezone = "UTC",
                                               currency = "EUR" })
    end
    local first = env:must(200, "GET", "/v1/buildings?limit=2")
    assert.equal(2, #first.data)
    assert.is_string(first.next_cursor)
    local second = env:must(200, "GET", "/v1/buildings?limit=2&cursor=" .. first.next_cursor)
    assert.are_not.equal(first.data[1].id, second.data[1].id)
  end)

  it("resources: create, get, list by building, patch", function()
    local r = env:room(w.building, { room_name = "Studio", tags = { "quiet" } })
    assert.matches("^res_%d+$", r.id)
    assert.equal(w.building.id, r.building_id)
    assert.same({ "quiet" }, r.tags)
    assert.equal(7000, r.pricing.money.per_hour)
    assert.same(r, env:must(200, "GET", "/v1/resources/" .. r.id))
    local list = env:must(200, "GET", "/v1/resources?building_id=" .. w.building.id)
    assert.is_true(has(ids(list.data), r.id))
    for _, x in ipairs(list.data) do assert.equal(w.building.id, x.building_id) end
    local p = env:must(200, "PATCH", "/v1/resources/" .. r.id, { name = "Studio 2" })
    assert.equal("Studio 2", p.name)
  end)

  it("tenants: create, get, list, patch", function()
    local t = env:must(201, "POST", "/v1/tenants", { name = "Globex",
                                                    building_ids = { w.building.id },
                                                    cross_building = false })
    assert.matches("^ten_%d+$", t.id)
    assert.same({ w.building.id }, t.building_ids)
    assert.same(t, env:must(200, "GET", "/v1/tenants/" .. t.id))
    assert.is_true(has(ids(env:must(200, "GET", "/v1/tenants").data), t.id))
    local p = env:must(200, "PATCH", "/v1/tenants/" .. t.id, { cross_building = true })
    assert.is_true(p.cross_building)
  end)

  it("users: create, get, list by tenant, patch", function()
    local u = env:must(201, "POST", "/v1/users", {
      tenant_id = w.tenant.id, name = "Bo", email = "bo@example.com",
      roles = { "resource_reservation_reserver" },
    })
    assert.matches("^usr_%d+$", u.id)
    assert.same({ "resource_reservation_reserver" }, u.roles)
    assert.same(u, env:must(200, "GET", "/v1/users/" .. u.id))
    local list = env:must(200, "GET", "/v1/users?tenant_id=" .. w.tenant.id)
    assert.is_true(has(ids(list.data), u.id))
    local p = env:must(200, "PATCH", "/v1/users/" .. u.id, { roles = H.array() })
    assert.same({}, p.roles)
  end)

  it("allocations: create with lots, get, list, end", function()
    local a = env:grant(w, 10, { start = "2026-01-01", recurrence = "monthly",
                                 rollover = { enabled = true, cap = 5 } })
    assert.matches("^alc_%d+$", a.id)
    assert.equal("hour", a.unit)
    assert.equal("monthly", a.schedule.recurrence)
    assert.equal(1, #a.lots)
    assert.equal(10, a.lots[1].granted)
    assert.equal(10, a.lots[1].balance)
    local got = env:must(200, "GET", "/v1/allocations/" .. a.id)
    assert.equal(a.id, got.id)
    assert.is_table(got.lots)
    local list = env:must(200, "GET", "/v1/allocations?tenant_id=" .. w.tenant.id ..
                                      "&status=active")
    assert.is_true(has(ids(list.data), a.id))
    local ended = env:must(200, "POST", "/v1/allocations/" .. a.id .. "/end",
                           { ["end"] = "2026-06-30" })
    assert.equal("2026-06-30", ended.schedule["end"])
  end)

  it("wallet, quote, booking, list, get, cancel and the ledger", function()
    local u = env:must(201, "POST", "/v1/users", { tenant_id = w.tenant.id, name = "Cy",
                                                  email = "cy@example.com" })
    local wu = { building = w.building, tenant = w.tenant, user = u, room = w.room }
    local available, wallet = env:available(u)
    assert.equal(10, available)
    assert.equal(u.id, wallet.user_id)
    local lot = wallet.lots[1]
    for _, k in ipairs { "id", "allocation_id", "unit", "scope", "granted", "balance",
                         "valid_from", "valid_until", "status" } do
      assert.is_not_nil(lot[k], "wallet lot lacks " .. k)
    end
    assert.is_table(wallet.expiring_soon)

    local q = env:must(200, "POST", "/v1/quotes", {
      resource_id = w.room.id, user_id = u.id, start = "2026-01-20T09:00:00Z",
      ["end"] = "2026-01-20T10:30:00Z",
    })
    assert.same({ amount = 10500, currency = "USD", before_discount = 10500 }, q.money)
    assert.equal(1.5, q.credits.amount)
    assert.equal("hour", q.credits.unit)
    assert.equal(10, q.credits.available)
    assert.equal(8.5, q.credits.balance_after)
    assert.is_true(has(q.payment_methods, "credits"))

    local status, b = env:book(wu, "2026-01-20T09:00:00Z", "2026-01-20T10:30:00Z")
    assert.equal(201, status)
    assert.matches("^bkg_%d+$", b.id)
    assert.equal("confirmed", b.status)
    assert.equal("credits", b.payment_method)
    assert.equal(1.5, b.credits.amount)
    assert.equal(8.5, b.credits.balance_after)
    assert.equal(1, #b.credits.paid_from)
    assert.equal(lot.id, b.credits.paid_from[1].lot_id)
    assert.is_table(b.policy_versions)

    assert.equal(b.id, env:must(200, "GET", "/v1/bookings/" .. b.id).id)
    local list = env:must(200, "GET", "/v1/bookings?user_id=" .. u.id)
    assert.same({ b.id }, ids(list.data))
    assert.equal("credits", list.data[1].payment_method)

    local entries = env:must(200, "GET", "/v1/entries?booking_id=" .. b.id)
    assert.equal(1, #entries.data)
    assert.equal("debit", entries.data[1].kind)
    assert.equal(-1.5, entries.data[1].amount)

    local c = env:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel", { reason = "moved" })
    assert.equal("cancelled", c.booking.status)
    assert.equal(1.5, c.refund.credits)
    assert.equal(0, c.refund.money)
    assert.equal(10, env:available(u))
  end)

  it("adjustments change a lot by a signed amount", function()
    local t = env:must(201, "POST", "/v1/tenants", { name = "Initech",
                                                    building_ids = { w.building.id } })
    local wt = { building = w.building, tenant = t }
    local a = env:grant(wt, 5, { start = "2026-01-01" })
    local adj = env:must(201, "POST", "/v1/adjustments", { lot_id = a.lots[1].id,
                                                          amount = 2.5, memo = "goodwill" })
    assert.matches("^ent_%d+$", adj.id)
    assert.equal(2.5, adj.amount)
    assert.equal(7.5, adj.lot.balance)
    adj = env:must(201, "POST", "/v1/adjustments", { lot_id = a.lots[1].id, amount = -7.5 })
    assert.equal(0, adj.lot.balance)
  end)

  it("reports answer JSON, and CSV on request", function()
    local status, body = env:get("/v1/reports/dashboard?unit=hour")
    if status == 404 and body.error.message:find("no operation") then
      pending("the report operations are not in this build yet")
      return
    end
    assert.equal(200, status)
    for _, k in ipairs { "allocated", "used", "remaining", "transactions_30d",
                         "active_users_30d" } do
      assert.is_not_nil(body[k], "dashboard lacks " .. k)
    end
    local hub = env:must(200, "GET", "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-01")
    assert.is_table(hub.tiles)
    assert.is_table(hub.customers)
    env:must(200, "GET", "/v1/reports/credits")
    env:must(200, "GET", "/v1/reports/usage")
    for _, name in ipairs { "datahub?unit=hour&from=2026-01&to=2026-01", "credits", "usage" } do
      local s, text, headers = env:get("/v1/reports/" .. name ..
                                       (name:find("?", 1, true) and "&" or "?") .. "format=csv")
      assert.equal(200, s, name)
      assert.equal("text/csv; charset=utf-8", headers["content-type"])
      assert.is_string(text)
      local s2, _, h2 = env:get("/v1/reports/" .. name, { Accept = "text/csv" })
      assert.equal(200, s2)
      assert.equal("text/csv; charset=utf-8", h2["content-type"])
    end
  end)

  it("reports show \"unlimited\" where an unlimited grant touches a figure", function()
    -- PRODUCT.md §3 "Unlimited", §7: as in the Data Hub, in JSON and CSV,
    -- streamed or paged; used stays a number (usage is still recorded).
    local x = env:world({ timezone = "UTC", building_name = "Unl", tenant_name = "Unltd" })
    local unl = env:grant(x, "unlimited", { start = "2026-01-01" })
    assert.equal(201, (env:book(x, "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z")))
    local lim = env:grant(x, 4, { start = "2026-01-01" })
    local q = "tenant_id=" .. x.tenant.id
    local function by_id(rows)
      local out = {}
      for _, r in ipairs(rows) do out[r.allocation_id] = r end
      return out
    end
    local function figures(r) return { r.granted, r.used, r.remaining } end
    for _, path in ipairs { "/v1/reports/credits?" .. q, "/v1/reports/credits?limit=5&" .. q } do
      local rows = by_id(env:must(200, "GET", path).data)
      assert.same({ "unlimited", 2, "unlimited" }, figures(rows[unl.id]), path)
      assert.same({ 4, 0, 4 }, figures(rows[lim.id]), path)
    end
    local s, text = env:get("/v1/reports/credits?format=csv&" .. q)
    assert.equal(200, s)
    assert.truthy(text:find("\n" .. unl.id .. ",", 1, true), text)
    assert.truthy(text:find("unlimited,2,unlimited\r\n", 1, true), text)
    -- Accept chooses CSV by its q-values; a tie, or none, is JSON's.
    for accept, want in pairs {
      ["text/csv"] = "text/csv", ["text/csv;q=0"] = "application/json",
      ["application/json, text/csv"] = "application/json",
      ["application/json;q=0.5, text/csv;q=0.8"] = "text/csv",
      ["application/json;q=0.5, text/csv;q=0.1"] = "application/json",
      ["text/csv, */*"] = "text/csv",
    } do
      local _, _, h = env:get("/v1/reports/credits?" .. q, { Accept = accept })
      assert.equal(want, (h["content-type"] or ""):match("^[^;]+"), accept)
    end
    -- A CSV page (`limit`) says there is more in X-Next-Cursor, and the
    -- pages together are the whole report, each row once.
    local seen, cursor, pages = {}, nil, 0
    repeat
      local h
      s, text, h = env:get("/v1/reports/credits?format=csv&limit=1&" .. q
                           .. (cursor and "&cursor=" .. cursor or ""))
      assert.equal(200, s)
      for id in text:gmatch("\n(alc_%d+),") do
        assert.is_nil(seen[id], id)
        seen[id] = true
      end
      cursor = h["x-next-cursor"]
      pages = pages + 1
    until cursor == nil or pages > 10
    assert.is_nil(cursor)
    assert.truthy(seen[unl.id] and seen[lim.id])
    local d = env:must(200, "GET", "/v1/reports/dashboard?unit=hour&" .. q)
    assert.same({ "unlimited", 2, "unlimited" }, { d.allocated, d.used, d.remaining })
    s, text = env:get("/v1/reports/dashboard?unit=hour&format=csv&" .. q)
    assert.equal(200, s)
    assert.truthy(text:find("\r\nhour,unlimited,2,unlimited,", 1, true), text)
    -- A tenant without an unlimited grant keeps exact numbers.
    d = env:must(200, "GET", "/v1/reports/dashboard?unit=hour&tenant_id=" .. w.tenant.id)
    assert.equal("number", type(d.allocated))
    assert.equal("number", type(d.remaining))
  end)

  it("PUT /v1/clock moves the fake clock", function()
    assert.same({ now = "2026-01-02T00:00:00Z" }, env:clock("2026-01-02T00:00:00Z"))
    local status, body = env:put("/v1/clock", { now = "yesterday" })
    assert.equal(400, status)
    assert.equal("invalid_request", body.error.code)
  end)

  it("serves the dashboard's static files and never lists directories", function()
    local status = env:as(false):get("/")
    assert.is_true(status == 200 or status == 404)
    local s2, _, h2 = env:as(false):get("/openapi.json")
    assert.equal(200, s2)
    assert.equal("application/json", h2["content-type"])
    local s3 = env:as(false):request("POST", "/openapi.json", "{}")
    assert.equal(405, s3)
  end)
end)

describe("PUT /v1/clock without --fake-clock", function()
  it("does not exist", function()
    local env = H.start { fake_clock = false }
    local status, body = env:put("/v1/clock", { now = "2026-01-02T00:00:00Z" })
    env:stop()
    assert.equal(404, status)
    assert.equal("not_found", body.error.code)
  end)
end)

describe("reference scenarios over HTTP", function()
  local env
  setup(function() env = H.start { now = "2026-01-01T08:00:00Z" } end)
  teardown(function() if env then env:stop() end end)

  it("S1 use-it-or-lose-it: 10 monthly hours, 3 used, 10 (not 17) on 1 Feb", function()
    local w = env:world { tenant_name = "S1" }
    env:grant(w, 10, { start = "2026-01-01", recurrence = "monthly" })
    for day = 5, 7 do
      local status = env:book(w, ("2026-01-%02dT09:00:00Z"):format(day),
                              ("2026-01-%02dT10:00:00Z"):format(day))
      assert.equal(201, status)
    end
    assert.equal(7, env:available(w.user))
    env:clock("2026-02-01T12:00:00Z")
    assert.equal(10, env:available(w.user))
    local expired = env:must(200, "GET", "/v1/entries?kind=expire&tenant_id=" .. w.tenant.id)
    assert.equal(1, #expired.data)
    assert.equal(-7, expired.data[1].amount)
  end)

  it("S3 no partial payment: 3 hours cannot pay 4; the card can", function()
    env:clock("2026-03-01T08:00:00Z")
    local w = env:world { tenant_name = "S3" }
    env:grant(w, 3, { start = "2026-03-01" })
    local q = env:must(200, "POST", "/v1/quotes", {
      resource_id = w.room.id, user_id = w.user.id, start = "2026-03-10T09:00:00Z",
      ["end"] = "2026-03-10T13:00:00Z",
    })
    assert.is_false(has(q.payment_methods, "credits"))
    local status, body = env:book(w, "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z")
    assert.equal(409, status)
    assert.equal("insufficient_credits", body.error.code)
    assert.equal(3, env:available(w.user))
    local s2, card = env:book(w, "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z", "card")
    assert.equal(201, s2)
    assert.equal("card", card.payment_method)
    assert.equal(28000, card.money.amount)
    assert.equal(3, env:available(w.user))
  end)

  it("S4 increments: 90 min cost 1.5, 45 min are refused, 30 min cost 0.5", function()
    env:clock("2026-03-01T08:00:00Z")
    local w = env:world { tenant_name = "S4" }
    env:grant(w, 5, { start = "2026-03-01" })
    local s1, b = env:book(w, "2026-03-10T09:00:00Z", "2026-03-10T10:30:00Z")
    assert.equal(201, s1)
    assert.equal(1.5, b.credits.amount)
    assert.equal(3.5, b.credits.balance_after)
    local s2, e = env:book(w, "2026-03-11T09:00:00Z", "2026-03-11T09:45:00Z")
    assert.equal(400, s2)
    assert.equal("invalid_request", e.error.code) -- the pricing policy refused it
    assert.equal(3.5, env:available(w.user))
    local s3, b3 = env:book(w, "2026-03-12T09:00:00Z", "2026-03-12T09:30:00Z")
    assert.equal(201, s3)
    assert.equal(0.5, b3.credits.amount)
    assert.equal(3, env:available(w.user))
  end)

  it("S7 refund windows: 30 h before 4, 5 h before 2, after start 0, by an admin 4", function()
    env:clock("2026-05-01T00:00:00Z")
    local w = env:world { tenant_name = "S7" }
    env:grant(w, 100, { start = "2026-05-01" })
    local me = env:as(env:new_key("tenant_user", { user_id = w.user.id }))
    local function case(day, cancel_at, who)
      local status, b = env:book(w, ("2026-05-%02dT10:00:00Z"):format(day),
                                 ("2026-05-%02dT14:00:00Z"):format(day))
      assert.equal(201, status)
      env:clock(cancel_at)
      return who:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel").refund.credits
    end
    assert.equal(4, case(10, "2026-05-09T04:00:00Z", me))
    assert.equal(2, case(11, "2026-05-11T05:00:00Z", me))
    assert.equal(0, case(12, "2026-05-12T11:00:00Z", me))
    assert.equal(4, case(13, "2026-05-13T11:00:00Z", env))
    assert.equal(100 - 16 + 10, env:available(w.user))
  end)
end)
