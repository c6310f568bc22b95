-- Policy uploads racing each other: many versions of one building's pricing
-- policy uploaded at once (so several land in one group-commit batch), with
-- reloads of every building running meanwhile, and after each round the version the database marks active must be the one
-- that serves quotes and bookings.  Also: an installed version runs under
-- its real chunk name, never a candidate's.
local H = require "http_env"

local ROUNDS = 16
local PARALLEL = 8
local RELOADS = 2

-- A pricing policy charging `hours` hour credits (and 100.00) an hour, with
-- its own example.
local function pricing(hours)
  return ([[
local M = {}
function M.price(ctx)
  local minutes = ctx.booking.minutes
  return { credits = allot.ceil_div(%d * minutes, 60), unit = "hour",
           money = 10000 * minutes // 60, money_before_discount = 10000 * minutes // 60 }
end
M.examples = { { ctx = { booking = { minutes = 60 } },
                 expect = { credits = %d, unit = "hour", money = 10000,
                            money_before_discount = 10000 } } }
return M
]]):format(hours * 1000, hours * 1000)
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("concurrent policy uploads to one building", function()
  local env, w, base, dir
  setup(function()
    env = H.start()
    w = env:world()
    env:grant(w, 1000000, { start = "2026-01-01" })
    base = "/v1/buildings/" .. w.building.id .. "/policies"
    dir = H.tmpdir()
  end)
  teardown(function()
    if env then env:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)

  -- Uploads PARALLEL sources at once with curl; returns the answers.
  local function upload_all(round)
    local script = { }
    for i = 1, PARALLEL do
      local hours = (round - 1) * PARALLEL + i
      write(("%s/src.%d"):format(dir, i), pricing(hours))
      script[#script + 1] = ([[
curl -s -o %s/out.%d -w '%%{http_code}' -X PUT %s%s/pricing \
  -H 'Authorization: Bearer %s' -H 'Content-Type: text/x-lua' \
  --data-binary @%s/src.%d > %s/code.%d &
]]):format(dir, i, env.url, base, env.key, dir, i, dir, i)
    end
    -- Reloads racing the uploads: each builds from a read snapshot that a
    -- later commit makes stale, and must not install over that commit.
    for i = 1, RELOADS do
      script[#script + 1] = ([[
curl -s -o /dev/null -w '%%{http_code}' -X POST %s/v1/policies/reload \
  -H 'Authorization: Bearer %s' > %s/reload.%d &
]]):format(env.url, env.key, dir, i)
    end
    script[#script + 1] = "wait\n"
    write(dir .. "/put.sh", table.concat(script))
    assert(os.execute("sh " .. dir .. "/put.sh"))
    local answers = {}
    for i = 1, PARALLEL do
      local code = read(("%s/code.%d"):format(dir, i))
      local body = require("cjson").decode(read(("%s/out.%d"):format(dir, i)))
      assert.equal("200", code, read(("%s/out.%d"):format(dir, i)))
      answers[i] = { hours = (round - 1) * PARALLEL + i, version = body.version,
                     sha256 = body.sha256, label = body.label }
    end
    for i = 1, RELOADS do
      assert.equal("200", read(("%s/reload.%d"):format(dir, i)))
    end
    return answers
  end

  it("serves the version the database marks active, round after round", function()
    local seen = {}
    for round = 1, ROUNDS do
      local answers = upload_all(round)
      local by_version, newest = {}, 0
      for _, a in ipairs(answers) do
        assert.is_nil(seen[a.version], "version numbers are unique")
        seen[a.version] = true
        by_version[a.version] = a
        newest = math.max(newest, a.version)
        assert.equal(("v%d:%s"):format(a.version, a.sha256:sub(1, 12)), a.label)
      end
      -- The database: the newest version is the active one.
      local listed = env:must(200, "GET", base).policies.pricing
      assert.equal(newest, listed.version, "round " .. round)
      local active = by_version[listed.version]
      assert.equal(active.sha256, listed.sha256)
      -- What serves: the label GET reports comes from the serving set...
      assert.equal(active.label, listed.label, "round " .. round)
      local hist = env:must(200, "GET", base .. "/pricing/history").data
      assert.equal(newest, hist[1].version)
      assert.is_true(hist[1].active)
      -- ... and quotes and bookings are priced and labelled by it.
      local slot_s = ("2026-02-%02dT%02d:00:00Z"):format(1 + round // 24, round % 24)
      local slot_e = ("2026-02-%02dT%02d:00:00Z"):format(1 + round // 24, round % 24 + 1)
      local q = env:must(200, "POST", "/v1/quotes", { resource_id = w.room.id,
        user_id = w.user.id, start = slot_s, ["end"] = slot_e })
      assert.equal(active.hours, q.credits.amount, "round " .. round .. ": quote")
      local status, b = env:book(w, slot_s, slot_e)
      assert.equal(201, status, b)
      assert.equal(active.hours, b.credits.amount, "round " .. round .. ": booking")
      assert.equal(active.label, b.policy_versions.pricing, "round " .. round)
      local stored = env:must(200, "GET", "/v1/bookings/" .. b.id)
      assert.equal(active.label, stored.policy_versions.pricing)
    end
    assert.equal(200, (env:get("/v1/verify")))
  end)

  it("runs an installed version under its real chunk name", function()
    local src = [[
local M = {}
function M.price(ctx)
  if ctx.booking.minutes == 120 then error("two hours are refused") end
  return { credits = ctx.booking.minutes * 1000 // 60, unit = "hour",
           money = 0, money_before_discount = 0 }
end
M.examples = { { ctx = { booking = { minutes = 60 } },
                 expect = { credits = 1000, unit = "hour", money = 0,
                            money_before_discount = 0 } } }
return M
]]
    local v = env:must(200, "PUT", base .. "/pricing", src, { ["Content-Type"] = "text/x-lua" })
    local status, q = env:post("/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-03-02T09:00:00Z", ["end"] = "2026-03-02T11:00:00Z" })
    assert.equal(503, status)
    local chunk = ("policies/%s/pricing.lua@v%d"):format(w.building.id, v.version)
    assert.truthy(q.error.message:find(chunk, 1, true), q.error.message)
    assert.falsy(q.error.message:find("candidate/", 1, true), q.error.message)
    -- A rollback and a return to the default run under real names too.
    env:must(200, "POST", base .. "/pricing/rollback", { version = v.version })
    status, q = env:post("/v1/quotes", { resource_id = w.room.id, user_id = w.user.id,
      start = "2026-03-02T09:00:00Z", ["end"] = "2026-03-02T11:00:00Z" })
    assert.equal(503, status)
    assert.truthy(q.error.message:find(chunk, 1, true), q.error.message)
    local d = env:must(200, "DELETE", base .. "/pricing")
    assert.equal("default", d.version)
    assert.truthy(d.label:find("^default:"), d.label)
    assert.equal(d.label, env:must(200, "GET", base).policies.pricing.label)
  end)
end)
