-- Every error code of API.md, and hostile requests (security notes §3):
-- each answers the documented status and error object, reveals nothing of
-- the server's insides, changes nothing, and leaves the server answering.
local H = require "http_env"

-- Fragments that must never reach a client: SQL, C sources, Lua tracebacks.
local LEAKS = { "SELECT ", "INSERT ", "sqlite", "stack traceback", "%.c:%d", "%.lua:%d" }

describe("HTTP errors", function()
  local env, w

  -- Asserts an error response and returns its error object.
  local function expect(want_status, want_code, status, body, headers)
    assert.equal(want_status, status, type(body) == "table" and H.encode(body) or body)
    assert.is_table(body, "error body is not JSON")
    assert.equal(want_code, body.error.code)
    assert.is_string(body.error.message)
    assert.is_table(body.error.details)
    assert.equal("application/json", headers["content-type"])
    for _, pattern in ipairs(LEAKS) do
      assert.is_nil(body.error.message:find(pattern), "leaks: " .. body.error.message)
    end
    return body.error
  end

  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 2, { start = "2026-01-01" })
  end)
  teardown(function() if env then env:stop() end end)
  after_each(function()
    -- Whatever the request did, the server still answers.
    assert.equal(200, (env:as(false):get("/v1/health")))
  end)

  describe("400 invalid_request", function()
    it("for a building's payment that is not an object, naming it", function()
      for _, bad in ipairs { H.null, H.array(), "card" } do
        local e = expect(400, "invalid_request", env:post("/v1/buildings", {
          name = "P", timezone = "UTC", currency = "EUR", payment = bad }))
        assert.equal("payment", e.details.field)
        e = expect(400, "invalid_request",
                   env:patch("/v1/buildings/" .. w.building.id, { payment = bad }))
        assert.equal("payment", e.details.field)
      end
    end)

    it("for allocation lines that could never pay", function()
      local other = env:world({ tenant_name = "Elsewhere", building_name = "Other" })
      -- The other tenant's allocations: w's credits stay as the tests below expect.
      local base = { tenant_id = other.tenant.id, building_ids = { other.building.id },
                     unit = "hour", schedule = { start = "2026-01-01" } }
      local function try(lines)
        local args = {}
        for k, v in pairs(base) do args[k] = v end
        args.lines = lines
        return env:post("/v1/allocations", args)
      end
      -- A resource of a building the allocation does not cover.
      local e = expect(400, "invalid_request",
                       try({ { scope = "resources", resource_ids = { w.room.id }, amount = 1 } }))
      assert.equal("lines.resource_ids", e.details.field)
      -- A list the line's scope does not read.
      e = expect(400, "invalid_request",
                 try({ { scope = "all", resource_ids = { other.room.id }, amount = 1 } }))
      assert.equal("lines", e.details.field)
      expect(400, "invalid_request",
             try({ { scope = "tags", tags = { "x" }, resource_ids = { other.room.id },
                     amount = 1 } }))
      -- Empty lists, as GET shows a line, are fine.
      assert.equal(201, (try({ { scope = "all", resource_ids = H.array(), tags = H.array(),
                                 amount = 1 } })))
    end)

    it("for a filter value no row can have, or a range that ends before it begins", function()
      local e = expect(400, "invalid_request", env:get("/v1/entries?kind=bogus"))
      assert.equal("kind", e.details.field)
      assert.equal(200, (env:get("/v1/entries?kind=grant")))
      for _, path in ipairs { "/v1/entries", "/v1/bookings", "/v1/reports/usage" } do
        e = expect(400, "invalid_request", env:get(path .. "?from=2026-03-01&to=2026-02-01"))
        assert.equal("to", e.details.field, path)
        -- One day (to inclusive) is a range, not an error.
        assert.equal(200, (env:get(path .. "?from=2026-03-01&to=2026-03-01")), path)
      end
    end)

    it("for an unknown field, naming it", function()
      local e = expect(400, "invalid_request", env:post("/v1/buildings", {
        name = "X", timezone = "UTC", currency = "EUR", colour = "red" }))
      assert.equal("colour", e.details.field)
    end)

    it("for a wrong type", function()
      local e = expect(400, "invalid_request", env:post("/v1/buildings", {
        name = 5, timezone = "UTC", currency = "EUR" }))
      assert.equal("name", e.details.field)
    end)

    it("for an amount with more than 3 decimals, a negative one, and 1e308", function()
      for _, amount in ipairs { "1.2345", "-5", "1e308", "0" } do
        local body = ('{"tenant_id":"%s","building_ids":["%s"],"unit":"hour",'
          .. '"lines":[{"scope":"all","amount":%s}],"schedule":{"start":"2026-01-01"}}')
          :format(w.tenant.id, w.building.id, amount)
        expect(400, "invalid_request", env:post("/v1/allocations", body))
      end
      local s, alloc = env:get("/v1/allocations?tenant_id=" .. w.tenant.id)
      assert.equal(200, s)
      assert.equal(1, #alloc.data)
    end)

    it("for a booking that ends before it starts", function()
      local e = expect(400, "invalid_request",
                       env:book(w, "2026-01-10T10:00:00Z", "2026-01-10T09:00:00Z"))
      assert.equal("end", e.details.field)
    end)

    it("for malformed JSON, NaN, huge integers, and a body that is not an object", function()
      for _, text in ipairs { '{"name": ', '{"name": NaN}', '{"amount": Infinity}',
                              '{"a": 9223372036854775808}', "[1, 2]", '"text"', "{} {}",
                              '{"name": "\\u0000"}', '{"name": "\255\254"}' } do
        expect(400, "invalid_request", env:post("/v1/buildings", text))
      end
    end)

    it("for duplicate keys", function()
      local e = expect(400, "invalid_request", env:post("/v1/buildings",
        '{"name":"A","name":"B","timezone":"UTC","currency":"EUR"}'))
      assert.matches("duplicate", e.message)
    end)

    it("for deep nesting, without exhausting the stack", function()
      local depth = 30000 -- fits the 64 KiB limit; jansson stops at 2048
      expect(400, "invalid_request",
             env:post("/v1/buildings", ("["):rep(depth) .. ("]"):rep(depth)))
      expect(400, "invalid_request",
             env:post("/v1/buildings", '{"a":' .. ("["):rep(depth) .. ("]"):rep(depth) .. "}"))
    end)

    it("refuses mass assignment: fields a client may not set", function()
      local e = expect(400, "invalid_request", env:post("/v1/users", {
        tenant_id = w.tenant.id, name = "Eve", balance = 999999 }))
      assert.equal("balance", e.details.field)
      e = expect(400, "invalid_request", env:post("/v1/users", {
        tenant_id = w.tenant.id, name = "Eve", role = "super_admin" }))
      assert.equal("role", e.details.field)
      e = expect(400, "invalid_request", env:post("/v1/allocations", {
        tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
        lines = { { scope = "all", amount = 5 } }, schedule = { start = "2026-01-01" },
        role = "super_admin" }))
      assert.equal("role", e.details.field)
      expect(400, "invalid_request", env:post("/v1/users", {
        id = "usr_1", tenant_id = w.tenant.id, name = "Eve" }))
      expect(400, "invalid_request", env:patch("/v1/users/" .. w.user.id, {
        id = "usr_999" }))
    end)

    it("for a repeated query parameter and query parameters where none are taken", function()
      expect(400, "invalid_request", env:get("/v1/users?tenant_id=a&tenant_id=b"))
      expect(400, "invalid_request", env:post("/v1/buildings?x=1", {}))
      expect(400, "invalid_request", env:get("/v1/users?unknown=1"))
    end)

    it("for a body on a route that takes none, and an over-long Idempotency-Key", function()
      expect(400, "invalid_request", env:request("GET", "/v1/buildings", "{}"))
      expect(400, "invalid_request",
             env:book(w, "2026-01-10T10:00:00Z", "2026-01-10T11:00:00Z", "card",
                      { ["Idempotency-Key"] = ("k"):rep(201) }))
    end)
  end)

  describe("401 unauthorized", function()
    it("without a key, with a bad key, with another scheme", function()
      expect(401, "unauthorized", env:as(false):get("/v1/me"))
      expect(401, "unauthorized", env:as("allot_" .. ("0"):rep(64)):get("/v1/me"))
      expect(401, "unauthorized", env:as(false):get("/v1/me",
                                                   { Authorization = "Basic YWxsb3Q6eA==" }))
      expect(401, "unauthorized", env:as(("x"):rep(5000)):get("/v1/buildings"))
      local status, body, headers = env:as(false):get("/v1/buildings")
      expect(401, "unauthorized", status, body, headers)
      assert.equal("Bearer", headers["www-authenticate"])
    end)
  end)

  describe("403 forbidden", function()
    it("for a viewer allocating credits", function()
      local viewer = env:as(env:new_key("viewer"))
      expect(403, "forbidden", viewer:post("/v1/allocations", {
        tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "hour",
        lines = { { scope = "all", amount = 5 } }, schedule = { start = "2026-01-01" } }))
    end)

    it("for a tenant_user creating a building", function()
      local user = env:as(env:new_key("tenant_user", { user_id = w.user.id }))
      expect(403, "forbidden", user:post("/v1/buildings", {
        name = "Mine", timezone = "UTC", currency = "EUR" }))
    end)
  end)

  describe("404 not_found", function()
    it("for an unknown id, a malformed id, and an unknown path", function()
      expect(404, "not_found", env:get("/v1/buildings/bld_99999"))
      expect(404, "not_found", env:get("/v1/buildings/99999"))
      expect(404, "not_found", env:get("/v1/bookings/bkg_99999"))
      expect(404, "not_found", env:get("/v1/nothing"))
      expect(404, "not_found", env:get("/v1/buildings/"))
    end)

    it("for another tenant's booking, seen from a tenant key", function()
      local t2 = env:must(201, "POST", "/v1/tenants", { name = "Other",
                                                       building_ids = { w.building.id } })
      local u2 = env:must(201, "POST", "/v1/users", { tenant_id = t2.id, name = "Oz" })
      local w2 = { building = w.building, tenant = t2, user = u2, room = w.room }
      local _, b2 = env:book(w2, "2026-01-12T09:00:00Z", "2026-01-12T10:00:00Z", "card")
      local admin = env:as(env:new_key("tenant_admin", { tenant_id = w.tenant.id }))
      expect(404, "not_found", admin:get("/v1/bookings/" .. b2.id))
      expect(404, "not_found", admin:post("/v1/bookings/" .. b2.id .. "/cancel", {}))
      expect(404, "not_found", admin:get("/v1/users/" .. u2.id .. "/wallet"))
    end)
  end)

  describe("409", function()
    it("insufficient_credits, writing nothing, with the figures in details", function()
      local e = expect(409, "insufficient_credits",
                       env:book(w, "2026-01-15T09:00:00Z", "2026-01-15T13:00:00Z"))
      assert.same({ needed = 4, available = 2, unit = "hour" }, e.details)
      assert.equal(2, env:available(w.user))
      -- A stored refusal replays with them too.
      local key = { ["Idempotency-Key"] = "short-1" }
      e = expect(409, "insufficient_credits",
                 env:book(w, "2026-01-15T09:00:00Z", "2026-01-15T12:30:00Z", nil, key))
      assert.same({ needed = 3.5, available = 2, unit = "hour" }, e.details)
      local status, body, headers = env:book(w, "2026-01-15T09:00:00Z", "2026-01-15T12:30:00Z",
                                             nil, key)
      e = expect(409, "insufficient_credits", status, body, headers)
      assert.equal("true", headers["idempotent-replayed"])
      assert.same({ needed = 3.5, available = 2, unit = "hour" }, e.details)
    end)

    it("insufficient_credits for a free credit-only room and a user without credits (S12)",
       function()
      local z = env:world({ tenant_name = "No credits", building_name = "NC" })
      local free = env:room(z.building, { room_name = "Free pod", credit_only = true,
        pricing = { money = H.null, credits = { unit = "hour", per_hour = 0 } } })
      local zf = { building = z.building, tenant = z.tenant, user = z.user, room = free }
      local q = env:must(200, "POST", "/v1/quotes", { resource_id = free.id, user_id = z.user.id,
        start = "2026-01-20T09:00:00Z", ["end"] = "2026-01-20T10:00:00Z" })
      assert.same({}, q.payment_methods)
      local e = expect(409, "insufficient_credits",
                       env:book(zf, "2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z"))
      assert.same({ needed = 0, available = 0, unit = "hour" }, e.details)
      -- With credits of the unit, the free room books for 0 of them.
      env:grant(z, 1, { start = "2026-01-01" })
      local status, b = env:book(zf, "2026-01-20T09:00:00Z", "2026-01-20T10:00:00Z")
      assert.equal(201, status, H.encode(b))
      assert.equal(0, b.credits.amount)
    end)

    it("slot_taken", function()
      local status = env:book(w, "2026-01-16T09:00:00Z", "2026-01-16T10:00:00Z", "card")
      assert.equal(201, status)
      expect(409, "slot_taken", env:book(w, "2026-01-16T09:30:00Z", "2026-01-16T10:30:00Z",
                                         "card"))
    end)

    it("credits_not_accepted", function()
      local paid = env:room(w.building, { room_name = "Cash only",
                                          pricing = { money = { per_hour = 5000 } } })
      local wc = { building = w.building, tenant = w.tenant, user = w.user, room = paid }
      expect(409, "credits_not_accepted",
             env:book(wc, "2026-01-17T09:00:00Z", "2026-01-17T10:00:00Z"))
    end)

    it("idempotency_conflict", function()
      local key = { ["Idempotency-Key"] = "conflict-1" }
      assert.equal(201, (env:book(w, "2026-01-18T09:00:00Z", "2026-01-18T10:00:00Z", "card",
                                  key)))
      expect(409, "idempotency_conflict",
             env:book(w, "2026-01-18T11:00:00Z", "2026-01-18T12:00:00Z", "card", key))
    end)
  end)

  describe("413 payload_too_large", function()
    local function head(length, extra)
      return ("POST /v1/buildings HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
        .. "Content-Type: application/json\r\n%s%s\r\n"):format(
          env.key, length and ("Content-Length: %d\r\n"):format(length) or "", extra or "")
    end

    it("refuses two Idempotency-Key headers, writing nothing", function()
      local body = H.encode({ name = "Twice", timezone = "UTC", currency = "EUR" })
      local reply = env:raw(head(#body, "Idempotency-Key: a-1\r\nidempotency-key: b-2\r\n"
                                 .. "Connection: close\r\n") .. body, 3)
      assert.matches("^HTTP/1%.1 400 ", reply)
      assert.matches('"field":"Idempotency%-Key"', reply)
      for _, b in ipairs(env:must(200, "GET", "/v1/buildings").data) do
        assert.not_equal("Twice", b.name)
      end
    end)

    it("refuses an announced 10 MB body at once, without reading it", function()
      local t0 = require("socket").gettime()
      local reply, closed = env:raw(head(10 * 1024 * 1024) .. ("x"):rep(1024), 3)
      assert.matches("^HTTP/1%.1 413 ", reply)
      assert.matches('"code":"payload_too_large"', reply)
      assert.matches("Connection: close", reply)
      assert.is_true(closed, "the connection stays open to read 10 MB")
      assert.is_true(require("socket").gettime() - t0 < 2)
    end)

    it("stops reading a chunked body at the limit", function()
      local chunk = ("%x\r\n%s\r\n"):format(16384, (" "):rep(16384))
      local reply = env:raw(head(nil, "Transfer-Encoding: chunked\r\n") .. chunk:rep(6), 3)
      assert.matches("^HTTP/1%.1 413 ", reply)
    end)

    it("refuses a 10 MB body sent in full", function()
      local ok, status = pcall(function()
        return env:post("/v1/buildings", ("x"):rep(10 * 1024 * 1024))
      end)
      -- The server may close before the client has written it all; when
      -- the client does read the answer, it is a 413.
      if ok then assert.equal(413, status) end
    end)
  end)

  describe("415 and 405", function()
    it("415 unsupported_media_type for a body that is not JSON", function()
      expect(415, "unsupported_media_type",
             env:post("/v1/buildings", "name=x", { ["Content-Type"] = "text/plain" }))
      expect(415, "unsupported_media_type",
             env:post("/v1/buildings", "{}", { ["Content-Type"] = "multipart/form-data" }))
      expect(415, "unsupported_media_type",
             env:post("/v1/buildings", "{}", { ["Content-Type"] = false }))
    end)

    it("405 method_not_allowed with the methods the path allows", function()
      local status, body, headers = env:delete("/v1/buildings")
      expect(405, "method_not_allowed", status, body, headers)
      assert.equal("POST, GET", headers["allow"])
      expect(405, "method_not_allowed", env:put("/v1/bookings/bkg_1", {}))
    end)
  end)

  describe("hostile paths", function()
    it("never serves a file outside the web directory", function()
      for _, path in ipairs { "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                              "/..%2f..%2fetc%2fpasswd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                              "/..%5c..%5cetc%5cpasswd", "/v1/../../etc/passwd",
                              "//etc/passwd", "/.%2e/.%2e/etc/passwd", "/./../etc/passwd" } do
        local reply = env:raw(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                              :format(path))
        assert.is_nil(reply:find("root:", 1, true), path)
        local status = tonumber(reply:match("^HTTP/1%.%d (%d+)"))
        assert.is_true(status == 404 or status == 400, path .. ": " .. tostring(status))
      end
    end)

    it("lists no directory and runs no scripts", function()
      for _, path in ipairs { "/x.cgi", "/x.shtml", "/x.php", "/.git/config", "/v1" } do
        local status = env:as(false):get(path)
        assert.equal(404, status, path)
      end
    end)
  end)
end)

describe("a policy that nests C calls deeply", function()
  -- 180 nested pcalls need far more than the 100 KiB of stack civetweb gives
  -- its threads; requests run on a larger stack, so this is just a price.
  it("prices without bringing the server down", function()
    local deep = [[
local M = {}
local function deep(n)
    if n == 0 then return 0 end
    local ok, v = pcall(deep, n - 1)
    return ok and v + 1 or -1
end
function M.price(ctx)
    local d = deep(180)
    return { money = 1000 + d, money_before_discount = 1000 + d }
end
return M
]]
    local dir = H.policies { ["buildings/bld_1/pricing.lua"] = deep }
    local env = H.start { policies = dir }
    local ok, err = pcall(function()
      local w = env:world()
      assert.equal("bld_1", w.building.id)
      local q = env:must(200, "POST", "/v1/quotes", {
        resource_id = w.room.id, user_id = w.user.id, start = "2026-01-10T10:00:00Z",
        ["end"] = "2026-01-10T11:00:00Z" })
      assert.equal(1180, q.money.amount)
      assert.equal(200, (env:get("/v1/health")))
    end)
    env:stop()
    os.execute("rm -rf " .. dir)
    assert(ok, err)
  end)
end)
