-- The authorization matrix (PRODUCT.md §8, security notes P8): every role
-- against representative routes, on objects of its own tenant (A) and of
-- another tenant (B, in a building A does not lease).  Admin roles may do
-- everything but a viewer may not write; tenant roles read their own, get
-- 404 for anything of B, and 403 for credit and portfolio writes.
local H = require "http_env"

local ROLES = { "super_admin", "manager", "viewer", "tenant_admin", "tenant_user" }

-- Expected status per role, in ROLES order.
local function S(sa, m, v, ta, tu) return { sa, m, v, ta, tu } end

describe("authorization matrix", function()
  local env, o, as = nil, {}, {}

  setup(function()
    env = H.start()
    local wa = env:world { building_name = "A House", tenant_name = "A Corp" }
    local wb = env:world { building_name = "B House", tenant_name = "B Corp",
                           user_name = "Bea" }
    o.a, o.b = wa, wb
    o.a_user2 = env:must(201, "POST", "/v1/users", { tenant_id = wa.tenant.id, name = "Al" })
    o.a_alloc = env:grant(wa, 50, { start = "2026-01-01" })
    o.b_alloc = env:grant(wb, 50, { start = "2026-01-01" })
    local _, ba = env:book(wa, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")
    local _, bb = env:book(wb, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")
    o.a_booking, o.b_booking = ba, bb
    as.super_admin = env
    as.manager = env:as(env:new_key("manager"))
    as.viewer = env:as(env:new_key("viewer"))
    as.tenant_admin = env:as(env:new_key("tenant_admin", { tenant_id = wa.tenant.id }))
    as.tenant_user = env:as(env:new_key("tenant_user", { user_id = wa.user.id }))
  end)
  teardown(function() if env then env:stop() end end)

  -- A unique slot per booking attempt, so no case fails on slot_taken.
  local slot = 0
  local function next_slot()
    slot = slot + 1
    local day, hour = 10 + slot // 8, 8 + slot % 8
    return ("2026-01-%02dT%02d:00:00Z"):format(day, hour),
           ("2026-01-%02dT%02d:00:00Z"):format(day, hour + 1)
  end

  local n = 0
  local function unique(prefix)
    n = n + 1
    return prefix .. " " .. n
  end

  local cases = {
    { "list buildings", S(200, 200, 200, 200, 200), function() return "GET", "/v1/buildings" end },
    { "get own building", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/buildings/" .. o.a.building.id end },
    { "get other building", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/buildings/" .. o.b.building.id end },
    { "create building", S(201, 403, 403, 403, 403), function()
      return "POST", "/v1/buildings", { name = unique("Tower"), timezone = "UTC",
                                        currency = "EUR" } end },
    { "list resources", S(200, 200, 200, 200, 200), function() return "GET", "/v1/resources" end },
    { "get own resource", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/resources/" .. o.a.room.id end },
    { "get other resource", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/resources/" .. o.b.room.id end },
    { "create resource", S(201, 201, 403, 403, 403), function()
      return "POST", "/v1/resources", { building_id = o.a.building.id, name = unique("Room") }
    end },
    { "patch resource", S(200, 200, 403, 403, 403), function()
      return "PATCH", "/v1/resources/" .. o.a.room.id, { name = unique("Room") } end },
    { "list tenants", S(200, 200, 200, 200, 200), function() return "GET", "/v1/tenants" end },
    { "get own tenant", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/tenants/" .. o.a.tenant.id end },
    { "get other tenant", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/tenants/" .. o.b.tenant.id end },
    { "create tenant", S(201, 201, 403, 403, 403), function()
      return "POST", "/v1/tenants", { name = unique("Co"), building_ids = { o.a.building.id } }
    end },
    { "patch other tenant", S(200, 200, 403, 403, 403), function()
      return "PATCH", "/v1/tenants/" .. o.b.tenant.id, { name = "B Corp" } end },
    { "list users", S(200, 200, 200, 200, 200), function() return "GET", "/v1/users" end },
    { "get own user", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/users/" .. o.a.user.id end },
    { "get colleague", S(200, 200, 200, 200, 404),
      function() return "GET", "/v1/users/" .. o.a_user2.id end },
    { "get other tenant's user", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/users/" .. o.b.user.id end },
    { "create user", S(201, 201, 403, 403, 403), function()
      return "POST", "/v1/users", { tenant_id = o.a.tenant.id, name = unique("Person") } end },
    { "list allocations", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/allocations" end },
    { "get own allocation", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/allocations/" .. o.a_alloc.id end },
    { "get other allocation", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/allocations/" .. o.b_alloc.id end },
    { "create allocation", S(201, 201, 403, 403, 403), function()
      return "POST", "/v1/allocations", {
        tenant_id = o.a.tenant.id, building_ids = { o.a.building.id }, unit = "hour",
        lines = { { scope = "all", amount = 1 } }, schedule = { start = "2026-01-01" } } end },
    { "end allocation", S(200, 200, 403, 403, 403), function()
      return "POST", "/v1/allocations/" .. o.a_alloc.id .. "/end", { ["end"] = "2026-12-31" }
    end },
    { "adjust own lot", S(201, 201, 403, 403, 403), function()
      return "POST", "/v1/adjustments", { lot_id = o.a_alloc.lots[1].id, amount = 1 } end },
    { "own wallet", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/users/" .. o.a.user.id .. "/wallet" end },
    { "other tenant's wallet", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/users/" .. o.b.user.id .. "/wallet" end },
    { "ledger", S(200, 200, 200, 200, 403), function() return "GET", "/v1/entries" end },
    { "list bookings", S(200, 200, 200, 200, 200), function() return "GET", "/v1/bookings" end },
    { "get own booking", S(200, 200, 200, 200, 200),
      function() return "GET", "/v1/bookings/" .. o.a_booking.id end },
    { "get other booking", S(200, 200, 200, 404, 404),
      function() return "GET", "/v1/bookings/" .. o.b_booking.id end },
    { "book for own user", S(201, 201, 403, 201, 201), function()
      local s, e = next_slot()
      return "POST", "/v1/bookings", { resource_id = o.a.room.id, user_id = o.a.user.id,
                                       start = s, ["end"] = e, payment_method = "card" } end },
    { "book for other tenant's user", S(201, 201, 403, 404, 404), function()
      local s, e = next_slot()
      return "POST", "/v1/bookings", { resource_id = o.b.room.id, user_id = o.b.user.id,
                                       start = s, ["end"] = e, payment_method = "card" } end },
    { "quote for other tenant's user", S(200, 200, 200, 404, 404), function()
      local s, e = next_slot()
      return "POST", "/v1/quotes", { resource_id = o.b.room.id, user_id = o.b.user.id,
                                     start = s, ["end"] = e } end },
    -- A viewer may never cancel: 403 whatever the booking.
    { "cancel other tenant's booking", S(404, 404, 403, 404, 404), function()
      return "POST", "/v1/bookings/bkg_999999/cancel", {} end },
    { "create key", S(201, 403, 403, 403, 403),
      function() return "POST", "/v1/keys", { role = "viewer" } end },
    { "me", S(200, 200, 200, 200, 200), function() return "GET", "/v1/me" end },
  }

  for _, case in ipairs(cases) do
    local name, expected, request = case[1], case[2], case[3]
    it(name, function()
      local got = {}
      for i, role in ipairs(ROLES) do
        local method, path, body = request()
        local status, res = as[role]:request(method, path, body)
        got[i] = status
        if status == 404 or status == 403 then
          assert.equal(status == 404 and "not_found" or "forbidden", res.error.code)
        end
      end
      assert.same(expected, got, name .. ": statuses for " .. table.concat(ROLES, ", "))
    end)
  end

  it("a tenant sees only its own rows in lists, whatever the filters say", function()
    for _, role in ipairs { "tenant_admin", "tenant_user" } do
      local c = as[role]
      for _, path in ipairs { "/v1/bookings?tenant_id=" .. o.b.tenant.id, "/v1/bookings",
                              "/v1/allocations?tenant_id=" .. o.b.tenant.id,
                              "/v1/users", "/v1/tenants", "/v1/resources" } do
        local list = c:must(200, "GET", path)
        for _, row in ipairs(list.data) do
          local tid = row.tenant_id or (row.id:match("^ten_") and row.id)
          if tid then assert.are_not.equal(o.b.tenant.id, tid, role .. " " .. path) end
          assert.are_not.equal(o.b.room.id, row.id)
          assert.are_not.equal(o.b.user.id, row.id)
        end
      end
    end
    -- Another tenant named in the ledger's filter: out of scope, 404 (as
    -- for an admin key's), never the caller's own entries under its name.
    assert.equal(404, (as.tenant_admin:get("/v1/entries?tenant_id=" .. o.b.tenant.id)))
    local ledger = as.tenant_admin:must(200, "GET", "/v1/entries?tenant_id=" .. o.a.tenant.id)
    assert.is_true(#ledger.data > 0)
    for _, e in ipairs(ledger.data) do assert.equal(o.a.tenant.id, e.tenant_id) end
    for _, b in ipairs(as.tenant_user:must(200, "GET", "/v1/bookings").data) do
      assert.equal(o.a.user.id, b.user_id)
    end
  end)

  it("a tenant cannot cancel another tenant's booking", function()
    for _, role in ipairs { "tenant_admin", "tenant_user" } do
      local status = as[role]:post("/v1/bookings/" .. o.b_booking.id .. "/cancel", {})
      assert.equal(404, status, role)
    end
    assert.equal("confirmed", env:must(200, "GET", "/v1/bookings/" .. o.b_booking.id).status)
  end)
  -- The same routes through manager and viewer keys limited to building A:
  -- objects of A in scope, objects of B (a building outside it) answer 404;
  -- a role that may never act answers 403 first where the route says so.
  describe("through keys limited to building A", function()
    local m, v
    setup(function()
      m = env:as(env:new_key("manager", { building_ids = { o.a.building.id } }))
      v = env:as(env:new_key("viewer", { building_ids = { o.a.building.id } }))
    end)

    -- { name, {manager, viewer} statuses, request }
    local scoped = {
      { "get own building", { 200, 200 }, function() return "GET", "/v1/buildings/" .. o.a.building.id end },
      { "get other building", { 404, 404 }, function() return "GET", "/v1/buildings/" .. o.b.building.id end },
      { "get own resource", { 200, 200 }, function() return "GET", "/v1/resources/" .. o.a.room.id end },
      { "get other resource", { 404, 404 }, function() return "GET", "/v1/resources/" .. o.b.room.id end },
      { "get own tenant", { 200, 200 }, function() return "GET", "/v1/tenants/" .. o.a.tenant.id end },
      { "get other tenant", { 404, 404 }, function() return "GET", "/v1/tenants/" .. o.b.tenant.id end },
      { "get own user", { 200, 200 }, function() return "GET", "/v1/users/" .. o.a.user.id end },
      { "get other tenant's user", { 404, 404 },
        function() return "GET", "/v1/users/" .. o.b.user.id end },
      { "get own allocation", { 200, 200 },
        function() return "GET", "/v1/allocations/" .. o.a_alloc.id end },
      { "get other allocation", { 404, 404 },
        function() return "GET", "/v1/allocations/" .. o.b_alloc.id end },
      { "end own allocation", { 200, 403 }, function()
        return "POST", "/v1/allocations/" .. o.a_alloc.id .. "/end", { ["end"] = "2026-12-31" }
      end },
      { "end other allocation", { 404, 403 }, function()
        return "POST", "/v1/allocations/" .. o.b_alloc.id .. "/end", { ["end"] = "2026-12-31" }
      end },
      { "adjust own lot", { 201, 403 }, function()
        return "POST", "/v1/adjustments", { lot_id = o.a_alloc.lots[1].id, amount = 1 } end },
      { "adjust other lot", { 404, 403 }, function()
        return "POST", "/v1/adjustments", { lot_id = o.b_alloc.lots[1].id, amount = 1 } end },
      { "own wallet", { 200, 200 },
        function() return "GET", "/v1/users/" .. o.a.user.id .. "/wallet" end },
      { "other tenant's wallet", { 404, 404 },
        function() return "GET", "/v1/users/" .. o.b.user.id .. "/wallet" end },
      { "ledger of own lot", { 200, 200 },
        function() return "GET", "/v1/entries?lot_id=" .. o.a_alloc.lots[1].id end },
      { "ledger of other lot", { 404, 404 },
        function() return "GET", "/v1/entries?lot_id=" .. o.b_alloc.lots[1].id end },
      { "ledger of own booking", { 200, 200 },
        function() return "GET", "/v1/entries?booking_id=" .. o.a_booking.id end },
      { "ledger of other booking", { 404, 404 },
        function() return "GET", "/v1/entries?booking_id=" .. o.b_booking.id end },
      { "ledger of other tenant", { 404, 404 },
        function() return "GET", "/v1/entries?tenant_id=" .. o.b.tenant.id end },
      { "get own booking", { 200, 200 },
        function() return "GET", "/v1/bookings/" .. o.a_booking.id end },
      { "get other booking", { 404, 404 },
        function() return "GET", "/v1/bookings/" .. o.b_booking.id end },
      { "cancel other booking", { 404, 403 },
        function() return "POST", "/v1/bookings/" .. o.b_booking.id .. "/cancel", {} end },
      { "book own resource", { 201, 403 }, function()
        local s, e = next_slot()
        return "POST", "/v1/bookings", { resource_id = o.a.room.id, user_id = o.a.user.id,
                                         start = s, ["end"] = e, payment_method = "card" } end },
      { "book other resource", { 404, 403 }, function()
        local s, e = next_slot()
        return "POST", "/v1/bookings", { resource_id = o.b.room.id, user_id = o.b.user.id,
                                         start = s, ["end"] = e, payment_method = "card" } end },
      { "quote own resource", { 200, 200 }, function()
        local s, e = next_slot()
        return "POST", "/v1/quotes", { resource_id = o.a.room.id, user_id = o.a.user.id,
                                       start = s, ["end"] = e } end },
      { "quote other resource", { 404, 404 }, function()
        local s, e = next_slot()
        return "POST", "/v1/quotes", { resource_id = o.b.room.id, user_id = o.b.user.id,
                                       start = s, ["end"] = e } end },
      { "quote other resource for own user", { 404, 404 }, function()
        local s, e = next_slot()
        return "POST", "/v1/quotes", { resource_id = o.b.room.id, user_id = o.a.user.id,
                                       start = s, ["end"] = e } end },
    }

    for _, case in ipairs(scoped) do
      local name, expected, request = case[1], case[2], case[3]
      it(name, function()
        local got = {}
        for i, c in ipairs { m, v } do
          local method, path, body = request()
          local status, res = c:request(method, path, body)
          got[i] = status
          if status == 404 or status == 403 then
            assert.equal(status == 404 and "not_found" or "forbidden", res.error.code)
          end
        end
        assert.same(expected, got, name .. ": statuses for scoped manager, viewer")
      end)
    end

    it("lists leave out everything of the other building", function()
      for _, c in ipairs { m, v } do
        for _, path in ipairs { "/v1/bookings", "/v1/bookings?tenant_id=" .. o.b.tenant.id,
                                "/v1/allocations", "/v1/allocations?tenant_id=" .. o.b.tenant.id,
                                "/v1/entries", "/v1/users", "/v1/tenants", "/v1/resources" } do
          local status, list = c:get(path)
          if status == 200 then
            for _, row in ipairs(list.data) do
              local tid = row.tenant_id or (row.id:match("^ten_") and row.id)
              if tid then assert.are_not.equal(o.b.tenant.id, tid, path) end
              assert.are_not.equal(o.b.room.id, row.id, path)
              assert.are_not.equal(o.b.user.id, row.id, path)
            end
          else
            assert.equal(404, status, path)
          end
        end
      end
    end)
  end)
end)
