-- Idempotency-Key (API.md, PRODUCT.md §9.4): a retried request has exactly
-- one effect; the same key with another body is a conflict; keys belong to
-- the principal that used them.  A business refusal (409) is stored and
-- replayed like a success; validation (400), 403, 404 and 5xx are not.
local H = require "http_env"

describe("Idempotency-Key", function()
  local env, w
  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 20, { start = "2026-01-01" })
  end)
  teardown(function() if env then env:stop() end end)

  local function bookings_of(user)
    return env:must(200, "GET", "/v1/bookings?status=confirmed&user_id=" .. user.id).data
  end

  it("replays the first response, once booked", function()
    local key = { ["Idempotency-Key"] = "book-1" }
    local s1, b1, h1, text1 = env:book(w, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z",
                                       "credits", key)
    assert.equal(201, s1)
    assert.is_nil(h1["idempotent-replayed"])
    local s2, b2, h2, text2 = env:book(w, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z",
                                       "credits", key)
    assert.equal(201, s2)
    assert.equal("true", h2["idempotent-replayed"])
    assert.equal(text1, text2)
    assert.same(b1, b2)
    assert.equal(1, #bookings_of(w.user))
    assert.equal(19, env:available(w.user))
  end)

  it("answers 409 idempotency_conflict to the same key with another body", function()
    local key = { ["Idempotency-Key"] = "book-2" }
    assert.equal(201, (env:book(w, "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z", "credits",
                                key)))
    local status, body = env:book(w, "2026-01-06T11:00:00Z", "2026-01-06T12:00:00Z", "credits",
                                  key)
    assert.equal(409, status)
    assert.equal("idempotency_conflict", body.error.code)
    assert.equal(2, #bookings_of(w.user))
    assert.equal(18, env:available(w.user))
  end)

  it("scopes keys to the principal: another key's request is a new one", function()
    local me = env:as(env:new_key("tenant_user", { user_id = w.user.id }))
    local key = { ["Idempotency-Key"] = "book-1" } -- used by the admin above
    local status, b, headers = me:book(w, "2026-01-07T09:00:00Z", "2026-01-07T10:00:00Z",
                                       "credits", key)
    assert.equal(201, status)
    assert.is_nil(headers["idempotent-replayed"])
    assert.equal("2026-01-07T09:00:00Z", b.start)
    assert.equal(3, #bookings_of(w.user))
  end)

  it("covers cancellations, allocations and PATCH as well", function()
    local _, b = env:book(w, "2026-01-08T09:00:00Z", "2026-01-08T10:00:00Z")
    local key = { ["Idempotency-Key"] = "cancel-1" }
    local c1 = env:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel", {}, key)
    local c2, h2 = env:must(200, "POST", "/v1/bookings/" .. b.id .. "/cancel", {}, key)
    assert.same(c1, c2)
    assert.equal("true", h2["idempotent-replayed"])

    local args = { tenant_id = w.tenant.id, building_ids = { w.building.id }, unit = "coin",
                   lines = { { scope = "all", amount = 100 } },
                   schedule = { start = "2026-01-01" } }
    local a1 = env:must(201, "POST", "/v1/allocations", args, { ["Idempotency-Key"] = "alc-1" })
    local a2 = env:must(201, "POST", "/v1/allocations", args, { ["Idempotency-Key"] = "alc-1" })
    assert.equal(a1.id, a2.id)
    assert.equal(100, env:available(w.user, "coin"))

    local p1 = env:must(200, "PATCH", "/v1/users/" .. w.user.id, { name = "Ada L." },
                        { ["Idempotency-Key"] = "patch-1" })
    local _, h = env:must(200, "PATCH", "/v1/users/" .. w.user.id, { name = "Ada L." },
                          { ["Idempotency-Key"] = "patch-1" })
    assert.equal("Ada L.", p1.name)
    assert.equal("true", h["idempotent-replayed"])
  end)

  it("does not apply to quotes, which change nothing", function()
    local q = { resource_id = w.room.id, user_id = w.user.id, start = "2026-01-09T09:00:00Z",
                ["end"] = "2026-01-09T10:00:00Z" }
    local _, h1 = env:must(200, "POST", "/v1/quotes", q, { ["Idempotency-Key"] = "q-1" })
    q["end"] = "2026-01-09T11:00:00Z"
    local res, h2 = env:must(200, "POST", "/v1/quotes", q, { ["Idempotency-Key"] = "q-1" })
    assert.is_nil(h1["idempotent-replayed"])
    assert.is_nil(h2["idempotent-replayed"])
    assert.equal(2, res.credits.amount)
  end)

  describe("stores business refusals", function()
    local w2
    setup(function()
      w2 = env:world({ building_name = "Annex", tenant_name = "Short", user_name = "Bo" })
      env:grant(w2, 1, { start = "2026-01-01" })
    end)

    local function count(user)
      return #env:must(200, "GET", "/v1/bookings?user_id=" .. user.id).data
    end

    it("replays a 409 insufficient_credits even after the credits arrive", function()
      local key = { ["Idempotency-Key"] = "short-1" }
      local s1, b1, h1, text1 = env:book(w2, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z",
                                         "credits", key)
      assert.equal(409, s1)
      assert.equal("insufficient_credits", b1.error.code)
      assert.is_nil(h1["idempotent-replayed"])
      -- The top-up: now 11 hours would pay for the 3 hours asked.
      env:grant(w2, 10, { start = "2026-01-01" })
      assert.equal(11, env:available(w2.user))
      local s2, b2, h2, text2 = env:book(w2, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z",
                                         "credits", key)
      assert.equal(409, s2)
      assert.equal("true", h2["idempotent-replayed"])
      assert.equal(text1, text2)
      assert.same(b1, b2)
      assert.equal(0, count(w2.user))
      assert.equal(11, env:available(w2.user))
      -- The same key with another body is still a conflict, not a booking.
      local s3, b3 = env:book(w2, "2026-01-12T13:00:00Z", "2026-01-12T14:00:00Z", "credits",
                              key)
      assert.equal(409, s3)
      assert.equal("idempotency_conflict", b3.error.code)
      assert.equal(0, count(w2.user))
      -- A new key is a new request, and it books.
      local s4 = env:book(w2, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z", "credits",
                          { ["Idempotency-Key"] = "short-2" })
      assert.equal(201, s4)
      assert.equal(8, env:available(w2.user))
    end)

    it("replays slot_taken and already_cancelled with their details", function()
      local _, first = env:book(w2, "2026-01-13T09:00:00Z", "2026-01-13T10:00:00Z")
      local key = { ["Idempotency-Key"] = "taken-1" }
      local s1, b1, _, text1 = env:book(w2, "2026-01-13T09:00:00Z", "2026-01-13T10:00:00Z",
                                        "card", key)
      assert.equal(409, s1)
      assert.equal("slot_taken", b1.error.code)
      -- Freed, the slot would now be bookable: the key still answers its refusal.
      env:must(200, "POST", "/v1/bookings/" .. first.id .. "/cancel", {})
      local s2, _, h2, text2 = env:book(w2, "2026-01-13T09:00:00Z", "2026-01-13T10:00:00Z",
                                        "card", key)
      assert.equal(409, s2)
      assert.equal("true", h2["idempotent-replayed"])
      assert.equal(text1, text2)

      local ckey = { ["Idempotency-Key"] = "cancel-again" }
      local c1, cb1, _, ctext1 = env:post("/v1/bookings/" .. first.id .. "/cancel", {}, ckey)
      assert.equal(409, c1)
      assert.equal("already_cancelled", cb1.error.code)
      local c2, _, ch2, ctext2 = env:post("/v1/bookings/" .. first.id .. "/cancel", {}, ckey)
      assert.equal(409, c2)
      assert.equal("true", ch2["idempotent-replayed"])
      assert.equal(ctext1, ctext2)
    end)

    it("does not store a validation refusal (400): the corrected request runs", function()
      local key = { ["Idempotency-Key"] = "bad-1" }
      local s1, b1 = env:book(w2, "2026-01-14T10:00:00Z", "2026-01-14T09:00:00Z", "credits",
                              key)
      assert.equal(400, s1)
      assert.equal("invalid_request", b1.error.code)
      local s2, _, h2 = env:book(w2, "2026-01-14T10:00:00Z", "2026-01-14T09:00:00Z", "credits",
                                 key)
      assert.equal(400, s2)
      assert.is_nil(h2["idempotent-replayed"])
      local s3, _, h3 = env:book(w2, "2026-01-14T09:00:00Z", "2026-01-14T10:00:00Z", "credits",
                                 key)
      assert.equal(201, s3)
      assert.is_nil(h3["idempotent-replayed"])
    end)

    it("does not store a 403 or a 404", function()
      local me = env:as(env:new_key("tenant_user", { user_id = w2.user.id }))
      local body = { resource_id = w2.room.id, user_id = w2.user.id,
                     start = "2026-01-15T09:00:00Z", ["end"] = "2026-01-15T10:00:00Z",
                     payment_method = "credits", discount_percent = 10 }
      local key = { ["Idempotency-Key"] = "deny-1" }
      for _ = 1, 2 do
        local s, b, h = me:post("/v1/bookings", body, key)
        assert.equal(403, s)
        assert.equal("forbidden", b.error.code)
        assert.is_nil(h["idempotent-replayed"])
      end
      body.discount_percent = nil
      assert.equal(201, (me:post("/v1/bookings", body, key)))

      local gone = { ["Idempotency-Key"] = "gone-1" }
      for _ = 1, 2 do
        local s, _, h = env:post("/v1/bookings/bkg_999999/cancel", {}, gone)
        assert.equal(404, s)
        assert.is_nil(h["idempotent-replayed"])
      end
    end)
  end)

  it("has exactly one effect when the same request races on 12 connections", function()
    local body = H.encode { resource_id = w.room.id, user_id = w.user.id,
                            start = "2026-01-20T09:00:00Z", ["end"] = "2026-01-20T10:00:00Z",
                            payment_method = "credits" }
    local dir = env.dir
    local script = {}
    for i = 1, 12 do
      script[#script + 1] = ("curl -s -o %s/race%d.json -w '%%{http_code}' -X POST "
        .. "-H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
        .. "-H 'Idempotency-Key: race-1' --data '%s' %s/v1/bookings > %s/race%d.code &")
        :format(dir, i, env.key, body, env.url, dir, i)
    end
    script[#script + 1] = "wait"
    assert(os.execute(table.concat(script, "\n")))
    local first
    for i = 1, 12 do
      local f = assert(io.open(("%s/race%d.code"):format(dir, i)))
      assert.equal("201", f:read("a"))
      f:close()
      f = assert(io.open(("%s/race%d.json"):format(dir, i)))
      local text = f:read("a")
      f:close()
      first = first or text
      assert.equal(first, text)
    end
    local list = env:must(200, "GET", "/v1/bookings?from=2026-01-20T00:00:00Z" ..
                                      "&to=2026-01-21T00:00:00Z&user_id=" .. w.user.id)
    assert.equal(1, #list.data)
  end)
end)
