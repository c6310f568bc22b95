-- Bookings over HTTP: who may discount (PRODUCT.md §8, security note W3),
-- strict list filters (I6), and cancel reasons checked at the edge.
local H = require "http_env"

describe("bookings", function()
  local env, w, as = nil, nil, {}

  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 20, { start = "2026-01-01" })
    as.manager = env:as(env:new_key("manager"))
    as.viewer = env:as(env:new_key("viewer"))
    as.tenant_admin = env:as(env:new_key("tenant_admin", { tenant_id = w.tenant.id }))
    as.tenant_user = env:as(env:new_key("tenant_user", { user_id = w.user.id }))
  end)
  teardown(function() if env then env:stop() end end)

  local function count_bookings()
    return #env:must(200, "GET", "/v1/bookings?limit=500&user_id=" .. w.user.id).data
  end

  local function booking(start, stop, extra)
    local body = { resource_id = w.room.id, user_id = w.user.id, start = start,
                   ["end"] = stop, payment_method = "card" }
    for k, v in pairs(extra or {}) do body[k] = v end
    return body
  end

  describe("discount_percent", function()
    it("is refused with 403 from tenant principals, and nothing is booked", function()
      for _, role in ipairs { "tenant_user", "tenant_admin" } do
        local before = count_bookings()
        local status, res = as[role]:post("/v1/bookings", booking(
          "2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z", { discount_percent = 100 }))
        assert.equal(403, status, role .. ": " .. H.encode(res))
        assert.equal("forbidden", res.error.code)
        assert.equal(before, count_bookings(), role)
      end
      -- The slot stayed free: the same booking without a discount goes through
      -- at the full price.
      local b = as.tenant_user:must(201, "POST", "/v1/bookings",
                                    booking("2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z"))
      assert.equal(7000, b.money.amount)
    end)

    it("is refused from a tenant even when it is zero, and in quotes", function()
      local status, res = as.tenant_user:post("/v1/bookings", booking(
        "2026-01-21T09:00:00Z", "2026-01-21T10:00:00Z", { discount_percent = 0 }))
      assert.equal(403, status, H.encode(res))
      status, res = as.tenant_user:post("/v1/quotes", {
        resource_id = w.room.id, user_id = w.user.id, start = "2026-01-21T09:00:00Z",
        ["end"] = "2026-01-21T10:00:00Z", discount_percent = 100 })
      assert.equal(403, status, H.encode(res))
      assert.equal("forbidden", res.error.code)
    end)

    it("is refused from a viewer quoting", function()
      local status = as.viewer:post("/v1/quotes", {
        resource_id = w.room.id, user_id = w.user.id, start = "2026-01-21T09:00:00Z",
        ["end"] = "2026-01-21T10:00:00Z", discount_percent = 50 })
      assert.equal(403, status)
    end)

    it("is given by super_admin and manager", function()
      local b = as.manager:must(201, "POST", "/v1/bookings", booking(
        "2026-01-22T09:00:00Z", "2026-01-22T10:00:00Z", { discount_percent = 100 }))
      assert.equal(0, b.money.amount)
      assert.equal(7000, b.money.before_discount)
      b = env:must(201, "POST", "/v1/bookings", booking(
        "2026-01-22T10:00:00Z", "2026-01-22T11:00:00Z", { discount_percent = 50 }))
      assert.equal(3500, b.money.amount)
    end)
  end)

  describe("tenant principals", function()
    it("book and quote only in buildings their tenant leases, whatever the method", function()
      local other = env:world { building_name = "Elsewhere", tenant_name = "Other Co",
                                user_name = "Olga" }
      for _, role in ipairs { "tenant_user", "tenant_admin" } do
        local before = #env:must(200, "GET", "/v1/bookings?limit=500&resource_id="
                                 .. other.room.id).data
        for _, method in ipairs { "card", "invoice", "credits" } do
          local status, res = as[role]:post("/v1/bookings", {
            resource_id = other.room.id, user_id = w.user.id, start = "2026-01-25T09:00:00Z",
            ["end"] = "2026-01-25T10:00:00Z", payment_method = method })
          assert.equal(404, status, role .. " " .. method .. ": " .. H.encode(res))
        end
        local status = as[role]:post("/v1/quotes", {
          resource_id = other.room.id, user_id = w.user.id, start = "2026-01-25T09:00:00Z",
          ["end"] = "2026-01-25T10:00:00Z" })
        assert.equal(404, status, role .. " quote")
        assert.equal(before, #env:must(200, "GET", "/v1/bookings?limit=500&resource_id="
                                       .. other.room.id).data)
      end
      -- An admin still books anyone anywhere.
      env:must(201, "POST", "/v1/bookings", {
        resource_id = other.room.id, user_id = w.user.id, start = "2026-01-25T09:00:00Z",
        ["end"] = "2026-01-25T10:00:00Z", payment_method = "card" })
    end)
  end)

  describe("the list's status filter", function()
    it("accepts confirmed and cancelled", function()
      for _, s in ipairs { "confirmed", "cancelled" } do
        local list = env:must(200, "GET", "/v1/bookings?status=" .. s)
        for _, row in ipairs(list.data) do assert.equal(s, row.status) end
      end
    end)

    it("refuses any other value with 400 naming the field", function()
      for _, s in ipairs { "bogus", "CONFIRMED", "active", "" } do
        for _, c in ipairs { env, as.tenant_user } do
          local status, res = c:get("/v1/bookings?status=" .. s)
          if s == "" and status == 200 then
            -- An empty query value may read as "no filter".
          else
            assert.equal(400, status, s .. ": " .. H.encode(res))
            assert.equal("invalid_request", res.error.code)
            assert.equal("status", res.error.details.field)
          end
        end
      end
    end)
  end)

  describe("cancel", function()
    it("keeps a reason of up to 500 bytes whole, multi-byte characters included", function()
      local b = env:must(201, "POST", "/v1/bookings",
                         booking("2026-01-23T09:00:00Z", "2026-01-23T10:00:00Z"))
      local reason = ("é"):rep(250) -- 500 bytes
      local res = env:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel",
                           { reason = reason })
      assert.equal(reason, res.booking.cancel_reason)
      assert.equal("cancelled", res.booking.status)
    end)

    it("refuses a longer reason, changing nothing", function()
      local b = env:must(201, "POST", "/v1/bookings",
                         booking("2026-01-23T11:00:00Z", "2026-01-23T12:00:00Z"))
      local status, res = env:post("/v1/bookings/" .. b.id .. "/cancel",
                                   { reason = ("é"):rep(250) .. "x" })
      assert.equal(400, status, H.encode(res))
      assert.equal("reason", res.error.details.field)
      assert.equal("confirmed", env:must(200, "GET", "/v1/bookings/" .. b.id).status)
    end)

    it("refunds a credit booking to its lots and refuses a second cancel", function()
      local hours = env:available(w.user)
      local status, b = env:book(w, "2026-01-24T09:00:00Z", "2026-01-24T10:00:00Z")
      assert.equal(201, status, H.encode(b))
      assert.equal(1, #b.credits.paid_from)
      assert.equal(hours - 1, env:available(w.user))
      local res = env:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel", {})
      assert.equal(1, res.refund.credits)
      assert.equal(hours, env:available(w.user))
      status, res = env:post("/v1/bookings/" .. b.id .. "/cancel", {})
      assert.equal(409, status)
      assert.equal("already_cancelled", res.error.code)
    end)
  end)
end)
