-- Idempotency-Key (API.md, PRODUCT.md §9.4): a retried request has exactly
-- one effect; the same key with another body is a conflict; keys belong to
-- the principal that used them.
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
