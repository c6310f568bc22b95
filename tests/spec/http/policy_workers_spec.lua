-- Worker threads that found a building's policy state busy run copies of
-- their own (policy/policy_host.c).  After a new version is activated, the
-- very next request on every worker must run it: no thread may keep
-- answering from its copy of the old version.  Each round activates a new
-- pricing version, then 8 clients at once (each its own connection, so
-- its own worker) send quotes that must all be priced by that version.
local H = require "http_env"

local ROUNDS = 4
local CLIENTS = 8
local QUOTES = 6 -- per client and round

-- Pricing that charges `hours` hour credits an hour, after some busy work
-- so that concurrent calls overlap and workers make copies.
local function pricing(hours)
  return ([[
local M = {}
function M.price(ctx)
  local x = 0
  for i = 1, 20000 do x = x + i %% 3 end
  local minutes = ctx.booking.minutes
  return { credits = allot.ceil_div(%d * minutes, 60), unit = "hour",
           money = 0, money_before_discount = 0 }
end
return M
]]):format(hours * 1000)
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("policy states per worker", function()
  local env, w, dir
  setup(function()
    env = H.start { threads = 16 }
    w = env:world()
    env:grant(w, 1000000, { start = "2026-01-01" })
    dir = H.tmpdir()
  end)
  teardown(function()
    if env then env:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)

  it("serve a newly activated version from the next request on every worker", function()
    local body = ('{"resource_id":"%s","user_id":"%s","start":"2026-02-02T09:00:00Z",'
      .. '"end":"2026-02-02T10:00:00Z"}'):format(w.room.id, w.user.id)
    write(dir .. "/quote.json", body)
    for round = 1, ROUNDS do
      env:must(200, "PUT", "/v1/buildings/" .. w.building.id .. "/policies/pricing",
               pricing(round), { ["Content-Type"] = "text/x-lua" })
      -- Each client: one curl, one keep-alive connection, QUOTES quotes.
      local script = {}
      for c = 1, CLIENTS do
        local urls = {}
        for _ = 1, QUOTES do
          urls[#urls + 1] = ("%s/v1/quotes -H 'Authorization: Bearer %s' "
            .. "-H 'Content-Type: application/json' --data-binary @%s/quote.json "
            .. "-w '\\n%%{http_code}\\n'"):format(env.url, env.key, dir)
        end
        script[#script + 1] = ("curl -s %s > %s/out.%d &\n")
          :format(table.concat(urls, " --next "), dir, c)
      end
      script[#script + 1] = "wait\n"
      write(dir .. "/run.sh", table.concat(script))
      assert(os.execute("sh " .. dir .. "/run.sh"))
      for c = 1, CLIENTS do
        local n = 0
        local text = read(("%s/out.%d"):format(dir, c))
        for json, code in text:gmatch("([^\n]+)\n(%d%d%d)\n") do
          n = n + 1
          assert.equal("200", code, json)
          local q = require("cjson").decode(json)
          assert.equal(round, q.credits.amount, ("round %d client %d"):format(round, c))
        end
        assert.equal(QUOTES, n, text)
      end
    end
  end)
end)
