-- Scope of objects through their owners (PRODUCT.md §8): a lot, an entry and
-- an allocation belong to a tenant and to the allocation's buildings; a
-- booking to its user's tenant and its resource's building.  A manager or
-- viewer limited to some buildings reaches an object only when all of its
-- buildings are in scope; anything else answers 404 (and nothing is written),
-- lists and wallets leave it out.  Tenant principals quote and book only in
-- buildings their tenant leases, whatever the payment method.
local H = require "http_env"

describe("scope by owners", function()
  local env, o = nil, {}

  local function ids(rows, field)
    local set = {}
    for _, r in ipairs(rows) do set[r[field]] = true end
    return set
  end

  setup(function()
    env = H.start()
    local function building(name)
      return env:must(201, "POST", "/v1/buildings", {
        name = name, timezone = "UTC", currency = "USD",
        payment = { credits = true, invoice = true, card = true } })
    end
    o.b1, o.b2 = building("One"), building("Two")
    o.r1 = env:room(o.b1, { room_name = "Room One" })
    o.r2 = env:room(o.b2, { room_name = "Room Two" })
    -- A tenant leasing both buildings, with one allocation in each.
    o.t = env:must(201, "POST", "/v1/tenants", { name = "Both", building_ids = { o.b1.id, o.b2.id } })
    o.u = env:must(201, "POST", "/v1/users", { tenant_id = o.t.id, name = "Uma" })
    local w1 = { tenant = o.t, building = o.b1, user = o.u, room = o.r1 }
    local w2 = { tenant = o.t, building = o.b2, user = o.u, room = o.r2 }
    o.a1 = env:grant(w1, 10, { start = "2026-01-01" })
    o.a2 = env:grant(w2, 20, { start = "2026-01-01" })
    o.lot1, o.lot2 = o.a1.lots[1].id, o.a2.lots[1].id
    o.bk1 = env:must(201, "POST", "/v1/bookings", {
      resource_id = o.r1.id, user_id = o.u.id, start = "2026-01-05T09:00:00Z",
      ["end"] = "2026-01-05T10:00:00Z", payment_method = "credits" })
    o.bk2 = env:must(201, "POST", "/v1/bookings", {
      resource_id = o.r2.id, user_id = o.u.id, start = "2026-01-05T09:00:00Z",
      ["end"] = "2026-01-05T10:00:00Z", payment_method = "credits" })
    assert.equal(o.lot2, o.bk2.credits.paid_from[1].lot_id)
    -- An allocation over both buildings: out of a B1-only scope as a whole.
    o.a12 = env:must(201, "POST", "/v1/allocations", {
      tenant_id = o.t.id, building_ids = { o.b1.id, o.b2.id }, description = "both",
      unit = "hour", lines = { { scope = "all", amount = 5 } }, targeting = { type = "all" },
      pool = "shared", schedule = { start = "2026-01-01" } })
    o.lot12 = o.a12.lots[1].id
    o.manager = env:as(env:new_key("manager", { building_ids = { o.b1.id } }))
    o.viewer = env:as(env:new_key("viewer", { building_ids = { o.b1.id } }))
    -- A tenant leasing only B1, with credits there.
    o.t3 = env:must(201, "POST", "/v1/tenants", { name = "One Only", building_ids = { o.b1.id } })
    o.u3 = env:must(201, "POST", "/v1/users", { tenant_id = o.t3.id, name = "Ola" })
    o.a3 = env:grant({ tenant = o.t3, building = o.b1, user = o.u3, room = o.r1 }, 10,
                     { start = "2026-01-01" })
    o.tadmin = env:as(env:new_key("tenant_admin", { tenant_id = o.t3.id }))
    o.tuser = env:as(env:new_key("tenant_user", { user_id = o.u3.id }))
  end)
  teardown(function() if env then env:stop() end end)

  local function balance(lot_id)
    for _, a in ipairs { o.a1, o.a2, o.a12 } do
      local got = env:must(200, "GET", "/v1/allocations/" .. a.id)
      for _, l in ipairs(got.lots) do
        if l.id == lot_id then return l.balance end
      end
    end
    error("no lot " .. lot_id)
  end

  local function entry_count()
    local n, cursor = 0, nil
    repeat
      local page = env:must(200, "GET", "/v1/entries?limit=100" ..
                                        (cursor and ("&cursor=" .. cursor) or ""))
      n = n + #page.data
      cursor = page.next_cursor
    until cursor == nil or cursor == H.null
    return n
  end

  describe("A5: keys, filters and references that reached past the scope (review)", function()
    it("refuses building_ids on any key but a manager's or viewer's", function()
      for _, role in ipairs { "super_admin" } do
        local status, err = env:post("/v1/keys", { role = role, building_ids = { o.b1.id } })
        assert.equal(400, status, role)
        assert.equal("building_ids", err.error.details.field)
      end
      local status = env:post("/v1/keys", { role = "tenant_admin", tenant_id = o.t3.id,
                                             building_ids = { o.b1.id } })
      assert.equal(400, status)
    end)

    it("refuses an empty building_ids rather than mint a portfolio-wide key", function()
      for _, role in ipairs { "manager", "viewer" } do
        local status, err = env:post("/v1/keys", ('{"role":"%s","building_ids":[]}'):format(role))
        assert.equal(400, status, role)
        assert.equal("invalid_request", err.error.code)
        assert.equal("building_ids", err.error.details.field)
        assert.is_nil(err.key)
      end
    end)

    it("refuses a scoped key's tenant that would lease none of its buildings", function()
      local before = #env:must(200, "GET", "/v1/tenants?limit=500").data
      local status, err = o.manager:post("/v1/tenants", { name = "Orphan" })
      assert.equal(400, status)
      assert.equal("building_ids", err.error.details.field)
      assert.equal(before, #env:must(200, "GET", "/v1/tenants?limit=500").data)
      env:must(201, "POST", "/v1/tenants", { name = "Unleased, by an unlimited key" })
      o.manager:must(201, "POST", "/v1/tenants", { name = "Leased", building_ids = { o.b1.id } })
    end)

    it("lets a scoped key change cross_building only of a tenant wholly inside its scope", function()
      local was = env:must(200, "GET", "/v1/tenants/" .. o.t.id).cross_building
      local status, err = o.manager:patch("/v1/tenants/" .. o.t.id, { cross_building = not was })
      assert.equal(403, status)
      assert.equal("forbidden", err.error.code)
      assert.equal(was, env:must(200, "GET", "/v1/tenants/" .. o.t.id).cross_building)
      -- A rename is not a change of what pays where.
      o.manager:must(200, "PATCH", "/v1/tenants/" .. o.t.id, { name = "Both, renamed" })
      local one = env:must(200, "GET", "/v1/tenants/" .. o.t3.id).cross_building
      o.manager:must(200, "PATCH", "/v1/tenants/" .. o.t3.id, { cross_building = not one })
      o.manager:must(200, "PATCH", "/v1/tenants/" .. o.t3.id, { cross_building = one })
    end)

    it("refuses targeting fields its type does not take, and stores nothing", function()
      local before = #env:must(200, "GET", "/v1/allocations?limit=500").data
      local foreign = env:must(201, "POST", "/v1/users", { tenant_id = o.t.id, name = "Elsewhere" })
      for _, t in ipairs {
        { type = "all", user_ids = { foreign.id } },
        { type = "roles", roles = { "x" }, user_ids = { foreign.id } },
        { type = "users", user_ids = { o.u3.id }, roles = { "x" } },
      } do
        local status, err = env:post("/v1/allocations", {
          tenant_id = o.t3.id, building_ids = { o.b1.id }, description = "typed",
          unit = "hour", lines = { { scope = "all", amount = 1 } }, targeting = t,
          pool = "shared", schedule = { start = "2026-01-01" } })
        assert.equal(400, status, t.type)
        assert.equal("invalid_request", err.error.code)
        assert.matches("^targeting", err.error.details.field)
      end
      assert.equal(before, #env:must(200, "GET", "/v1/allocations?limit=500").data)
    end)

    it("shows a tenant user the pool's lots and its own, not a colleague's", function()
      local mate = env:must(201, "POST", "/v1/users", { tenant_id = o.t3.id, name = "Mia" })
      local per = env:must(201, "POST", "/v1/allocations", {
        tenant_id = o.t3.id, building_ids = { o.b1.id }, description = "each",
        unit = "hour", lines = { { scope = "all", amount = 3 } }, targeting = { type = "all" },
        pool = "per_user", schedule = { start = "2026-01-01" } })
      local owners = {}
      for _, l in ipairs(env:must(200, "GET", "/v1/allocations/" .. per.id).lots) do
        owners[l.user_id] = true
      end
      assert.is_true(owners[mate.id] and owners[o.u3.id] and true or false)
      local seen = o.tuser:must(200, "GET", "/v1/allocations/" .. per.id)
      assert.is_true(#seen.lots >= 1)
      for _, l in ipairs(seen.lots) do
        assert.equal(o.u3.id, l.user_id)
      end
    end)

    it("answers a filter naming another tenant or user with none of the caller's rows", function()
      local function rows(c, path)
        local status, body = c:get(path)
        if status == 404 then return {} end
        assert.equal(200, status, path)
        return body.data
      end
      for _, c in ipairs { o.tadmin, o.tuser } do
        assert.equal(0, #rows(c, "/v1/bookings?tenant_id=" .. o.t.id))
        assert.equal(0, #rows(c, "/v1/allocations?tenant_id=" .. o.t.id))
        assert.equal(0, #rows(c, "/v1/reports/usage?user_id=" .. o.u.id))
        assert.equal(0, #rows(c, "/v1/bookings?user_id=" .. o.u.id))
      end
      assert.equal(404, (o.tadmin:get("/v1/entries?tenant_id=" .. o.t.id)))
      assert.equal(404, (o.tuser:get("/v1/reports/usage?user_id=" .. o.u.id)))
      -- Their own filters still work.
      assert.is_true(#rows(o.tadmin, "/v1/allocations?tenant_id=" .. o.t3.id) >= 1)
    end)

    it("shows a tenant user only the grants targeted at it, their lots and entries", function()
      local mate = env:must(201, "POST", "/v1/users", { tenant_id = o.t3.id, name = "Tess",
                                                        roles = { "reserver" } })
      local mate_key = env:as(env:new_key("tenant_user", { user_id = mate.id }))
      local function grant(targeting)
        return env:must(201, "POST", "/v1/allocations", {
          tenant_id = o.t3.id, building_ids = { o.b1.id }, description = "for Tess",
          unit = "coin", lines = { { scope = "all", amount = 77 } }, targeting = targeting,
          pool = "shared", schedule = { start = "2026-01-01" } })
      end
      local by_id, by_role = grant { type = "users", user_ids = { mate.id } },
        grant { type = "roles", roles = { "reserver" } }
      local function listed(c, id)
        for _, a in ipairs(c:must(200, "GET", "/v1/allocations?limit=500").data) do
          if a.id == id then return true end
        end
        return false
      end
      for _, a in ipairs { by_id, by_role } do
        -- Ola is not targeted: none of it is hers to read.
        assert.equal(404, (o.tuser:get("/v1/allocations/" .. a.id)))
        assert.is_false(listed(o.tuser, a.id))
        -- Tess is, and her company's admin reads everything of the tenant.
        local seen = mate_key:must(200, "GET", "/v1/allocations/" .. a.id)
        assert.equal(77, seen.lots[1].balance)
        assert.is_true(listed(mate_key, a.id))
        assert.equal(200, (o.tadmin:get("/v1/allocations/" .. a.id)))
        assert.equal(1, #o.tadmin:must(200, "GET", "/v1/entries?lot_id=" .. a.lots[1].id).data)
      end
      -- A grant for everyone in the company is still everyone's.
      local all = grant { type = "all" }
      assert.equal(200, (o.tuser:get("/v1/allocations/" .. all.id)))
    end)

    it("reads a resource outside the key's scope in an allocation's lines as unknown", function()
      local before = #env:must(200, "GET", "/v1/allocations?tenant_id=" .. o.t.id .. "&limit=500").data
      local status, err = o.manager:post("/v1/allocations", {
        tenant_id = o.t.id, building_ids = { o.b1.id }, description = "reach",
        unit = "hour", lines = { { scope = "resources", resource_ids = { o.r2.id }, amount = 1 } },
        targeting = { type = "all" }, pool = "shared", schedule = { start = "2026-01-01" } })
      assert.equal(400, status)
      assert.equal("lines.resource_ids", err.error.details.field)
      assert.equal(before, #env:must(200, "GET", "/v1/allocations?tenant_id=" .. o.t.id .. "&limit=500").data)
    end)

    it("names the page limit when a list asks for more rows than a page holds", function()
      local status, err = env:get("/v1/bookings?limit=501")
      assert.equal(413, status) -- as every limit_exceeded here (API.md: 400 or 413)
      assert.equal("limit_exceeded", err.error.code)
      assert.equal("list_rows_max", err.error.details.limit)
      status, err = env:get("/v1/bookings?limit=0")
      assert.equal(400, status)
      assert.equal("invalid_request", err.error.code)
    end)

    it("takes the last date there is as an upper bound, and names a bad bound", function()
      local all = env:must(200, "GET", "/v1/bookings?limit=500").data
      assert.equal(#all, #env:must(200, "GET", "/v1/bookings?limit=500&to=9999-12-31").data)
      env:must(200, "GET", "/v1/reports/usage?to=9999-12-31")
      local status, err = env:get("/v1/bookings?from=2026-02-30")
      assert.equal(400, status)
      assert.equal("from", err.error.details.field)
      -- Times are whole seconds: a zero fraction passes, another is named.
      local q = { resource_id = o.r1.id, user_id = o.u.id, start = "2026-03-02T09:00:00.000Z",
                  ["end"] = "2026-03-02T10:00:00Z" }
      env:must(200, "POST", "/v1/quotes", q)
      q.start = "2026-03-02T09:00:00.500Z"
      status, err = env:post("/v1/quotes", q)
      assert.equal(400, status)
      assert.equal("start", err.error.details.field)
      assert.truthy(err.error.message:find("fraction of a second", 1, true))
    end)
  end)

  describe("A1: adjustments through a building-scoped manager", function()
    it("answer 404 for a lot of an allocation outside the scope, writing nothing", function()
      for _, lot in ipairs { o.lot2, o.lot12 } do
        local before, entries = balance(lot), entry_count()
        local status, res = o.manager:post("/v1/adjustments", { lot_id = lot, amount = 9 })
        assert.equal(404, status, lot)
        assert.equal("not_found", res.error.code)
        assert.equal(before, balance(lot))
        assert.equal(entries, entry_count())
      end
    end)

    it("still adjust a lot inside the scope", function()
      local before = balance(o.lot1)
      local got = o.manager:must(201, "POST", "/v1/adjustments", { lot_id = o.lot1, amount = 1 })
      assert.equal(o.lot1, got.lot_id)
      assert.equal(before + 1, balance(o.lot1))
    end)

    it("cannot end an allocation outside the scope", function()
      for _, a in ipairs { o.a2, o.a12 } do
        local status = o.manager:post("/v1/allocations/" .. a.id .. "/end",
                                      { ["end"] = "2026-06-30" })
        assert.equal(404, status)
        assert.equal(H.null, env:must(200, "GET", "/v1/allocations/" .. a.id).schedule["end"])
      end
    end)
  end)

  describe("A4: reads through building-scoped managers and viewers", function()
    for _, role in ipairs { "manager", "viewer" } do
      it(role .. ": allocations outside the scope are 404 and left out of lists", function()
        local c = o[role]
        c:must(200, "GET", "/v1/allocations/" .. o.a1.id)
        for _, a in ipairs { o.a2, o.a12 } do
          assert.equal(404, (c:get("/v1/allocations/" .. a.id)))
        end
        for _, path in ipairs { "/v1/allocations", "/v1/allocations?tenant_id=" .. o.t.id } do
          local seen = ids(c:must(200, "GET", path).data, "id")
          assert.is_true(seen[o.a1.id], path)
          assert.is_nil(seen[o.a2.id], path)
          assert.is_nil(seen[o.a12.id], path)
        end
      end)

      it(role .. ": a ledger filter on an out-of-scope lot or booking is 404", function()
        local c = o[role]
        for _, q in ipairs { "lot_id=" .. o.lot2, "lot_id=" .. o.lot12,
                             "booking_id=" .. o.bk2.id } do
          local status, res = c:get("/v1/entries?" .. q)
          assert.equal(404, status, q)
          assert.equal("not_found", res.error.code)
        end
        local own = c:must(200, "GET", "/v1/entries?lot_id=" .. o.lot1)
        assert.is_true(#own.data > 0)
        own = c:must(200, "GET", "/v1/entries?booking_id=" .. o.bk1.id)
        assert.is_true(#own.data > 0)
      end)

      it(role .. ": ledger lists leave out-of-scope entries out", function()
        local c = o[role]
        for _, path in ipairs { "/v1/entries?limit=200", "/v1/entries?limit=200&tenant_id=" .. o.t.id,
                                "/v1/entries?limit=1" } do
          local seen, cursor, any = {}, nil, false
          repeat
            local page = c:must(200, "GET", path .. (cursor and ("&cursor=" .. cursor) or ""))
            for _, e in ipairs(page.data) do seen[e.lot_id] = true end
            any = any or #page.data > 0
            cursor = page.next_cursor
          until cursor == nil or cursor == H.null
          assert.is_true(any, path)
          assert.is_true(seen[o.lot1], path)
          assert.is_nil(seen[o.lot2], path)
          assert.is_nil(seen[o.lot12], path)
        end
      end)

      it(role .. ": a wallet lists only the lots inside the scope", function()
        local w = o[role]:must(200, "GET", "/v1/users/" .. o.u.id .. "/wallet")
        local allocs = ids(w.lots, "allocation_id")
        assert.is_true(allocs[o.a1.id])
        assert.is_nil(allocs[o.a2.id])
        assert.is_nil(allocs[o.a12.id])
        for _, l in ipairs(w.expiring_soon) do
          assert.equal(o.a1.id, l.allocation_id)
        end
        local sum = 0
        for _, l in ipairs(w.lots) do
          if l.unit == "hour" and l.status == "active" then sum = sum + l.balance end
        end
        for _, b in ipairs(w.balances) do
          if b.unit == "hour" then assert.equal(sum, b.available) end
        end
      end)

      it(role .. ": bookings outside the scope are 404 and left out of lists", function()
        local c = o[role]
        c:must(200, "GET", "/v1/bookings/" .. o.bk1.id)
        assert.equal(404, (c:get("/v1/bookings/" .. o.bk2.id)))
        local seen = ids(c:must(200, "GET", "/v1/bookings?tenant_id=" .. o.t.id).data, "id")
        assert.is_true(seen[o.bk1.id])
        assert.is_nil(seen[o.bk2.id])
      end)
    end

    it("an unscoped viewer still sees everything", function()
      local v = env:as(env:new_key("viewer"))
      v:must(200, "GET", "/v1/entries?lot_id=" .. o.lot2)
      v:must(200, "GET", "/v1/allocations/" .. o.a12.id)
      local allocs = ids(v:must(200, "GET", "/v1/users/" .. o.u.id .. "/wallet").lots,
                         "allocation_id")
      assert.is_true(allocs[o.a2.id])
    end)

    it("a scoped manager cannot cancel a booking outside the scope", function()
      assert.equal(404, (o.manager:post("/v1/bookings/" .. o.bk2.id .. "/cancel", {})))
      assert.equal("confirmed", env:must(200, "GET", "/v1/bookings/" .. o.bk2.id).status)
    end)
  end)

  describe("A3: tenant principals and buildings their tenant does not lease", function()
    local slot = 0
    local function next_slot()
      slot = slot + 1
      return ("2026-02-%02dT09:00:00Z"):format(slot), ("2026-02-%02dT10:00:00Z"):format(slot)
    end

    local function r2_bookings()
      return #env:must(200, "GET", "/v1/bookings?limit=200&resource_id=" .. o.r2.id).data
    end

    for _, role in ipairs { "tadmin", "tuser" } do
      it(role .. ": the resource itself is 404", function()
        assert.equal(404, (o[role]:get("/v1/resources/" .. o.r2.id)))
      end)

      it(role .. ": quotes are 404", function()
        local s, e = next_slot()
        local status, res = o[role]:post("/v1/quotes", { resource_id = o.r2.id,
                                                          user_id = o.u3.id, start = s,
                                                          ["end"] = e })
        assert.equal(404, status)
        assert.equal("not_found", res.error.code)
        s, e = next_slot()
        o[role]:must(200, "POST", "/v1/quotes", { resource_id = o.r1.id, user_id = o.u3.id,
                                                  start = s, ["end"] = e })
      end)

      it(role .. ": a policy's refusal does not tell the resource apart (404, not 400)",
         function()
        -- The default pricing refuses 20 minutes (30-minute increments).
        local status, res = o[role]:post("/v1/quotes", {
          resource_id = o.r2.id, user_id = o.u3.id, start = "2026-03-02T09:00:00Z",
          ["end"] = "2026-03-02T09:20:00Z" })
        assert.equal(404, status)
        assert.equal("not_found", res.error.code)
        status = o[role]:post("/v1/quotes", {
          resource_id = o.r1.id, user_id = o.u3.id, start = "2026-03-02T09:00:00Z",
          ["end"] = "2026-03-02T09:20:00Z" })
        assert.equal(400, status)
      end)

      for _, method in ipairs { "card", "invoice", "credits" } do
        it(role .. ": booking by " .. method .. " is 404 and writes nothing", function()
          local before = r2_bookings()
          local s, e = next_slot()
          local status, res = o[role]:post("/v1/bookings", {
            resource_id = o.r2.id, user_id = o.u3.id, start = s, ["end"] = e,
            payment_method = method })
          assert.equal(404, status)
          assert.equal("not_found", res.error.code)
          assert.equal(before, r2_bookings())
        end)
      end
    end

    -- A tenant that left B2 keeps an allocation listing B2 (its lots still
    -- pay there for the bookings it has): B2 is no longer in its scope, so
    -- neither a quote nor a booking by any method reaches B2's resources.
    describe("after the lease of the building ends", function()
      local left, lu, la, lt
      setup(function()
        left = env:must(201, "POST", "/v1/tenants", { name = "Leaver",
                                                      building_ids = { o.b1.id, o.b2.id } })
        lu = env:must(201, "POST", "/v1/users", { tenant_id = left.id, name = "Lev" })
        env:grant({ tenant = left, building = o.b2, user = lu, room = o.r2 }, 10,
                  { start = "2026-01-01" })
        env:must(200, "PATCH", "/v1/tenants/" .. left.id, { building_ids = { o.b1.id } })
        la = env:as(env:new_key("tenant_admin", { tenant_id = left.id }))
        lt = env:as(env:new_key("tenant_user", { user_id = lu.id }))
      end)

      for _, role in ipairs { "admin", "user" } do
        it("tenant " .. role .. ": resource, quote and every payment method are 404", function()
          local c = role == "admin" and la or lt
          assert.equal(404, (c:get("/v1/resources/" .. o.r2.id)))
          local s, e = next_slot()
          local status = c:post("/v1/quotes", { resource_id = o.r2.id, user_id = lu.id,
                                                start = s, ["end"] = e })
          assert.equal(404, status, "quote")
          for _, method in ipairs { "card", "invoice", "credits" } do
            local before = r2_bookings()
            s, e = next_slot()
            status = c:post("/v1/bookings", { resource_id = o.r2.id, user_id = lu.id,
                                              start = s, ["end"] = e, payment_method = method })
            assert.equal(404, status, method)
            assert.equal(before, r2_bookings(), method)
          end
        end)
      end
    end)

    it("still book in their own building", function()
      local s, e = next_slot()
      o.tuser:must(201, "POST", "/v1/bookings", { resource_id = o.r1.id, user_id = o.u3.id,
                                                  start = s, ["end"] = e,
                                                  payment_method = "card" })
    end)
  end)
end)
