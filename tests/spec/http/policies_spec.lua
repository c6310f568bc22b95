-- Per-building policies over HTTP: upload (text/x-lua), refusal with the
-- compiler's or self-check's message, history, rollback, back to default,
-- simulation, reload, and a reload in the middle of a running load of
-- bookings with zero failed requests.
local H = require "http_env"
local cjson_null = require("cjson.safe").null

local PREMIUM = require("sample_policies").PREMIUM

local LUA = { ["Content-Type"] = "text/x-lua" }

describe("policies over HTTP", function()
  local env, w, base
  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 1000, { start = "2026-01-01" })
    base = "/v1/buildings/" .. w.building.id .. "/policies"
  end)
  teardown(function() if env then env:stop() end end)

  local function quote_credits()
    return env:must(200, "POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" }).credits.amount
  end

  it("uploads, lists, refuses, rolls back and deletes versions", function()
    local v1 = env:must(200, "PUT", base .. "/pricing", PREMIUM, LUA)
    assert.equal(1, v1.version)
    assert.equal(6, quote_credits())
    local listed = env:must(200, "GET", base)
    assert.equal(1, listed.policies.pricing.version)
    assert.equal(v1.sha256, listed.policies.pricing.sha256)
    assert.equal("default", listed.policies.refund.version)

    local status, err = env:put(base .. "/pricing", "return {", LUA)
    assert.equal(422, status)
    assert.equal("policy_error", err.error.code)
    assert.truthy(err.error.message:find(":1:"), err.error.message)
    assert.equal(6, quote_credits())

    env:must(200, "PUT", base .. "/pricing", (PREMIUM:gsub("3000", "4000")), LUA)
    assert.equal(8, quote_credits())
    local hist = env:must(200, "GET", base .. "/pricing/history")
    assert.equal(2, #hist.data)
    assert.is_true(hist.data[1].active)
    env:must(200, "POST", base .. "/pricing/rollback", { version = 1 })
    assert.equal(6, quote_credits())
    env:must(200, "DELETE", base .. "/pricing")
    assert.equal(2, quote_credits())
  end)

  it("refuses the wrong content type, an unknown kind, and tenant keys", function()
    assert.equal(415, (env:put(base .. "/pricing", PREMIUM, { ["Content-Type"] = "application/json" })))
    assert.equal(400, (env:put(base .. "/gold", PREMIUM, LUA)))
    -- A binary chunk is a rejected upload (API.md: 422 policy_error).
    local label = env:must(200, "GET", base)
    local status, res = env:put(base .. "/pricing", "\27Lua\84\0\25\147\13\10\26\10", LUA)
    assert.equal(422, status)
    assert.equal("policy_error", res.error.code)
    assert.same(label, env:must(200, "GET", base))
    local tenant_key = env:must(201, "POST", "/v1/keys", { role = "tenant_admin",
                                                          tenant_id = w.tenant.id }).key
    local t = env:as(tenant_key)
    assert.equal(403, (t:put(base .. "/pricing", PREMIUM, LUA)))
    assert.equal(403, (t:get(base)))
    local viewer = env:as(env:must(201, "POST", "/v1/keys", { role = "viewer" }).key)
    assert.equal(403, (viewer:put(base .. "/pricing", PREMIUM, LUA)))
    assert.equal(200, (viewer:get(base)))
  end)

  it("simulates a candidate over past bookings", function()
    assert.equal(201, (env:book(w, "2026-01-12T09:00:00Z", "2026-01-12T11:00:00Z")))
    local sim = env:must(200, "POST", base .. "/pricing/simulate",
                         { source = PREMIUM, from = "2026-01-12", to = "2026-01-13" })
    assert.equal(1, sim.totals.bookings)
    assert.equal(2, sim.totals.charged_credits)
    assert.equal(6, sim.totals.candidate_credits)
  end)

  it("gives what was charged and refunded, money too, in every kind's totals", function()
    local function book(day, method)
      return env:must(201, "POST", "/v1/bookings", { resource_id = w.room.id, user_id = w.user.id,
        start = ("2026-02-%02dT09:00:00Z"):format(day), ["end"] = ("2026-02-%02dT11:00:00Z"):format(day),
        payment_method = method })
    end
    -- February: the reload spec below books January's slots.
    local card, cr = book(10, "card"), book(11, "credits")
    assert.equal(14000, card.money.amount)
    local rc = env:must(200, "POST", "/v1/bookings/" .. card.id .. "/cancel", {}).refund
    local rk = env:must(200, "POST", "/v1/bookings/" .. cr.id .. "/cancel", {}).refund
    assert.equal(14000, rc.money)
    assert.equal(2, rk.credits)
    -- A candidate refund policy giving back half of whatever was paid.
    local HALF = [[return { refund = function(ctx)
      return { credits = ctx.booking.credits // 2, money = ctx.booking.money // 2 } end }]]
    local window = { from = "2026-02-10", to = "2026-02-12" }
    local sims = {}
    for _, kind in ipairs { "pricing", "validate", "refund" } do
      local body = { source = kind == "refund" and HALF or (kind == "pricing" and PREMIUM or
        "return { validate = function(ctx) return true end }"), from = window.from, to = window.to }
      sims[kind] = env:must(200, "POST", base .. "/" .. kind .. "/simulate", body)
      local t = sims[kind].totals
      assert.equal(2, t.bookings, kind)
      assert.equal(2, t.charged_credits, kind)
      assert.equal(2, t.refunded_credits, kind)
      assert.equal(14000, t.charged_money, kind)
      assert.equal(14000, t.refunded_money, kind)
    end
    local t = sims.refund.totals
    assert.equal(1, t.candidate_refund_credits)
    assert.equal(7000, t.candidate_refund_money)
    assert.equal(cjson_null, t.candidate_credits)
    assert.equal(cjson_null, t.candidate_money)
    for _, row in ipairs(sims.refund.bookings) do
      if row.booking_id == card.id then
        assert.equal(14000, row.refunded_money)
        assert.equal(7000, row.candidate_refund_money)
      end
    end
    local p = sims.pricing.totals
    assert.equal(cjson_null, p.candidate_refund_credits)
    assert.equal(cjson_null, p.candidate_refund_money)
    assert.equal(6, p.candidate_credits)
    assert.equal(20000, p.candidate_money)
  end)

  it("survives hostile policies: each refused (422) or stopped (503), the server stays up", function()
    local hostile = {
      "return { price = function(ctx) while true do end end }",
      "return { price = function(ctx) pcall(function() while true do end end) while true do end end }",
      "return { price = function(ctx) local t = {} for i = 1, 1e9 do t[i] = i end end }",
      "return { price = function(ctx) local s = 'x' while true do s = s .. s end end }",
      "return { price = function(ctx) return { credits = os.execute('id'), unit = 'hour' } end }",
      "return { price = function(ctx) return { credits = 0/0, unit = 'hour' } end }",
      "return { price = function(ctx) return { credits = 1.2345, unit = 'hour' } end }",
      "return { price = function(ctx) return { credits = ('a'):rep(4096):find('.-.-.-b'), unit = 'hour' } end }",
      "x = 1 return {}",
      "return {",
    }
    local entries = #env:must(200, "GET", "/v1/entries?limit=500").data
    for _, src in ipairs(hostile) do
      local status, body = env:put(base .. "/pricing", src, LUA)
      if status == 200 then
        local qs, q = env:request("POST", "/v1/quotes", { resource_id = w.room.id,
          user_id = w.user.id, start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" })
        assert.equal(503, qs, src)
        assert.equal("policy_error", q.error.code)
        assert.is_nil(q.error.message:find("traceback", 1, true))
        env:must(200, "DELETE", base .. "/pricing")
      else
        assert.equal(422, status, src)
        assert.equal("policy_error", body.error.code)
      end
      assert.equal(200, (env:get("/v1/health")))
    end
    assert.equal(entries, #env:must(200, "GET", "/v1/entries?limit=500").data)
    assert.equal(2, quote_credits())
  end)

  it("reloads every building on request", function()
    local r = env:must(200, "POST", "/v1/policies/reload")
    assert.truthy(r.reloaded >= 1)
    assert.same({}, r.failed)
  end)

  it("serves every booking of a running load while versions are swapped", function()
    -- Four workers book distinct slots through curl while versions change.
    local dir = H.tmpdir()
    local script = dir .. "/load.sh"
    local f = assert(io.open(script, "w"))
    f:write(([[
for w in 1 2 3 4; do
  (for i in $(seq 1 40); do
     h=$(( (w * 40 + i) ))
     day=$(( 15 + h / 24 )); hour=$(( h %% 24 ))
     s=$(printf '2026-01-%%02dT%%02d:00:00Z' $day $hour)
     e=$(printf '2026-01-%%02dT%%02d:30:00Z' $day $hour)
     curl -s -o /dev/null -w '%%{http_code}\n' -X POST %s/v1/bookings \
       -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
       -d "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"$s\",\"end\":\"$e\",\"payment_method\":\"credits\"}"
   done > %s/codes.$w) &
done
wait
touch %s/done
]]):format(env.url, env.key, w.room.id, w.user.id, dir, dir))
    f:close()
    assert(os.execute("sh " .. script .. " >/dev/null 2>&1 &"))
    local swaps = 0
    repeat
      local src = swaps % 2 == 0 and PREMIUM or PREMIUM:gsub("3000", "2000")
      env:must(200, "PUT", base .. "/pricing", src, LUA)
      swaps = swaps + 1
    until io.open(dir .. "/done") or swaps > 400
    -- On a loaded machine the 400 swaps can end before the load does:
    -- wait for every client before counting answers.
    local deadline = require("socket").gettime() + 120
    while not io.open(dir .. "/done") and require("socket").gettime() < deadline do
      require("socket").sleep(0.1)
    end
    local codes = {}
    for n = 1, 4 do
      for line in io.lines(dir .. "/codes." .. n) do codes[#codes + 1] = line end
    end
    assert.equal(160, #codes)
    for _, c in ipairs(codes) do assert.equal("201", c) end
    assert.truthy(swaps >= 2)
    env:must(200, "DELETE", base .. "/pricing")
  end)
end)

describe("policy files", function()
  -- Buildings created while allotd runs: a reload (HTTP or SIGHUP) serves
  -- the files written for them afterwards, whatever their place in the
  -- reload's walk (it once installed the first building only), and a file
  -- already there when a building is created serves at once, as at
  -- start-up (sets are built on first use, from the files of that moment).
  it("reload files of buildings created after start-up; an existing file serves at once", function()
    local dir = H.policies({})
    local env = H.start { policies = dir }
    finally(function() env:stop() end)
    local first = env:world()
    local w = env:world { building_name = "Annex", tenant_name = "Beta", user_name = "Bo" }
    env:grant(w, 100, { start = "2026-01-01" })
    local function quote(world)
      return env:must(200, "POST", "/v1/quotes", { resource_id = world.room.id,
        user_id = world.user.id, start = "2026-01-10T09:00:00Z",
        ["end"] = "2026-01-10T11:00:00Z" }).credits.amount
    end
    local function label(world)
      return env:must(200, "GET", "/v1/buildings/" .. world.building.id .. "/policies")
               .policies.pricing.label
    end
    local function write(bid, text)
      os.execute(("mkdir -p %s/buildings/%s"):format(dir, bid))
      local f = assert(io.open(("%s/buildings/%s/pricing.lua"):format(dir, bid), "w"))
      f:write(text)
      f:close()
    end
    assert.equal(2, quote(w))
    assert.truthy(label(w):find("^default:"))
    write(w.building.id, PREMIUM)
    local r = env:must(200, "POST", "/v1/policies/reload")
    assert.equal(2, r.reloaded)
    assert.same({}, r.failed)
    assert.truthy(label(w):find("^file:"), label(w))
    assert.equal(6, quote(w))
    assert.truthy(label(first):find("^default:"))
    -- SIGHUP goes through the same reload.
    write(w.building.id, (PREMIUM:gsub("3000", "4000")))
    local build = os.getenv("ALLOT_BUILD_DIR") or "build"
    assert(os.execute(("%s/allot policies reload --pid %d > /dev/null"):format(build, env.pid)))
    for _ = 1, 100 do
      if env:server_log():find("SIGHUP: 2 building", 1, true) then break end
      os.execute("sleep 0.05")
    end
    assert.equal(8, quote(w))
    -- A file written before its building exists.
    local next_id = "bld_" .. (tonumber(w.building.id:match("%d+$")) + 1)
    write(next_id, PREMIUM)
    local late = env:world { building_name = "Late", tenant_name = "Gamma", user_name = "Cy" }
    assert.equal(next_id, late.building.id)
    env:grant(late, 100, { start = "2026-01-01" })
    assert.truthy(label(late):find("^file:"), label(late))
    assert.equal(6, quote(late))
    env:must(200, "POST", "/v1/policies/reload")
    assert.equal(6, quote(late))
    assert.equal(8, quote(w))
    -- An upload over the file, then DELETE: back to the file, and the
    -- answer says so (it said "default" beside a file: label).
    env:must(200, "PUT", "/v1/buildings/" .. w.building.id .. "/policies/pricing",
             (PREMIUM:gsub("3000", "5000")), LUA)
    assert.equal(10, quote(w))
    local back = env:must(200, "DELETE", "/v1/buildings/" .. w.building.id .. "/policies/pricing")
    assert.equal("file", back.version)
    assert.truthy(back.label:find("^file:"), back.label)
    assert.equal(8, quote(w))
    local plain = env:must(200, "DELETE", "/v1/buildings/" .. first.building.id .. "/policies/pricing")
    assert.equal("default", plain.version)
  end)

  it("reload from the policy directory on SIGHUP, keeping the old set when a file is bad", function()
    local dir = H.policies({})
    local env = H.start { policies = dir }
    finally(function() env:stop() end)
    local w = env:world()
    env:grant(w, 100, { start = "2026-01-01" })
    local function credits()
      return env:must(200, "POST", "/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
        start = "2026-01-10T09:00:00Z", ["end"] = "2026-01-10T11:00:00Z" }).credits.amount
    end
    local function write(text)
      os.execute(("mkdir -p %s/buildings/%s"):format(dir, w.building.id))
      local f = assert(io.open(("%s/buildings/%s/pricing.lua"):format(dir, w.building.id), "w"))
      f:write(text)
      f:close()
    end
    local reloads = 0
    local function reload()
      local build = os.getenv("ALLOT_BUILD_DIR") or "build"
      assert(os.execute(("%s/allot policies reload --pid %d > /dev/null"):format(build, env.pid)))
      -- The signal is handled asynchronously: wait for the log line.
      for _ = 1, 100 do
        local n = select(2, env:server_log():gsub("SIGHUP: ", ""))
        if n >= reloads + 1 then reloads = n return end
        os.execute("sleep 0.05")
      end
      error("allotd did not reload")
    end
    assert.equal(2, credits())
    write(PREMIUM)
    reload()
    assert.equal(6, credits())
    assert.truthy(env:must(200, "GET", "/v1/buildings/" .. w.building.id .. "/policies")
                    .policies.pricing.label:find("^file:"))
    write("return {")
    reload()
    assert.equal(6, credits())
    assert.truthy(env:server_log():find("1 refused", 1, true))
  end)
end)
