-- The authentication cache (core/auth.c) must never outlive a change to a
-- key: a key revoked through the API is refused by the very next request,
-- even after many requests filled the cache, and a change made to the
-- database behind the server's back is seen within the cache's lifetime
-- (AUTH_CACHE_TTL_MS, 1 s).
local H = require "http_env"
local D = require "db_shell"

describe("auth cache", function()
  local env
  setup(function() env = H.start { threads = 8 } end)
  teardown(function() if env then env:stop() end end)

  local function new_key(role, extra)
    local args = { role = role }
    for k, v in pairs(extra or {}) do args[k] = v end
    local res = env:must(201, "POST", "/v1/keys", args)
    return res.id, env:as(res.key)
  end

  it("refuses a revoked key on the very next request", function()
    local id, as = new_key("viewer")
    for _ = 1, 20 do as:must(200, "GET", "/v1/me") end
    local res = env:must(200, "POST", "/v1/keys/" .. id .. "/revoke", {})
    assert.are.equal(id, res.id)
    assert.is_true(res.revoked)
    local status, body = as:get("/v1/me")
    assert.are.equal(401, status)
    assert.are.equal("unauthorized", body.error.code)
    assert.truthy(body.error.message:find("revoked", 1, true))
    -- Revoking again answers the same; the key stays refused.
    env:must(200, "POST", "/v1/keys/" .. id .. "/revoke", {})
    assert.are.equal(401, (as:get("/v1/me")))
  end)

  it("refuses a revoked key while other requests use it concurrently", function()
    -- A tenant user's key, used from several connections at once by a
    -- background curl loop while it is revoked: once the revoke answered,
    -- no later request may pass.
    local w = env:world { building_name = "Cache House", tenant_name = "Cache Co" }
    local id, as = new_key("tenant_user", { user_id = w.user.id })
    local loop = ("for i in $(seq 1 80); do curl -s -o /dev/null -H 'Authorization: Bearer %s' "
      .. "%s/v1/me & if [ $((i %% 8)) = 0 ]; then wait; fi; done; wait"):format(as.key, env.url)
    local bg = io.popen(loop, "r")
    as:must(200, "GET", "/v1/me")
    env:must(200, "POST", "/v1/keys/" .. id .. "/revoke", {})
    for _ = 1, 20 do assert.are.equal(401, (as:get("/v1/me"))) end
    bg:close()
    assert.are.equal(401, (as:get("/v1/me")))
  end)

  it("answers 404 for an unknown key and 403 for a non-super_admin", function()
    local st, body = env:post("/v1/keys/key_999999/revoke", {})
    assert.are.equal(404, st)
    assert.are.equal("not_found", body.error.code)
    local id = new_key("viewer")
    local _, manager = new_key("manager")
    assert.are.equal(403, (manager:post("/v1/keys/" .. id .. "/revoke", {})))
  end)

  it("sees a revocation written to the database by another process within 1 s", function()
    local id, as = new_key("viewer")
    for _ = 1, 5 do as:must(200, "GET", "/v1/me") end
    local n = assert(tonumber(id:match("^key_(%d+)$")))
    D.exec(env.db, ("UPDATE api_key SET revoked_at = 1 WHERE id = %d"):format(n))
    require("socket").sleep(1.2)
    assert.are.equal(401, (as:get("/v1/me")))
  end)
end)
