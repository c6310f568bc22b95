-- Limits are errors, not truncations (API.md: limit_exceeded, details.limit
-- names the limit), and text is never cut: what was accepted reads back
-- whole, what is too long is refused with nothing written.
local H = require "http_env"

describe("limits over HTTP", function()
  local env, b, t
  setup(function()
    env = H.start()
    b = env:must(201, "POST", "/v1/buildings", { name = "HQ", timezone = "UTC", currency = "USD" })
    t = env:must(201, "POST", "/v1/tenants", { name = "Acme", building_ids = { b.id } })
  end)
  teardown(function() if env then env:stop() end end)

  local function allocation(lines, description)
    return {
      tenant_id = t.id, building_ids = { b.id }, unit = "hour", description = description,
      lines = lines, targeting = { type = "all" }, pool = "shared",
      schedule = { start = "2026-01-01" },
    }
  end

  local function count_allocations()
    return #env:must(200, "GET", "/v1/allocations?tenant_id=" .. t.id .. "&limit=500").data
  end

  it("refuses more allocation lines than it keeps, naming the limit", function()
    local lines = {}
    for i = 1, 33 do lines[i] = { scope = "all", amount = i } end
    local before = count_allocations()
    local status, res = env:request("POST", "/v1/allocations", allocation(lines, "many"))
    assert.equal(413, status)
    assert.equal("limit_exceeded", res.error.code)
    assert.equal("alloc_lines_max", res.error.details.limit)
    assert.equal(before, count_allocations())
  end)

  it("keeps a 500-byte description of multi-byte characters whole", function()
    local text = string.rep("é", 250) -- 500 bytes
    local a = env:must(201, "POST", "/v1/allocations",
                       allocation({ { scope = "all", amount = 1 } }, text))
    assert.equal(text, env:must(200, "GET", "/v1/allocations/" .. a.id).description)
  end)

  it("refuses a 501-byte description instead of cutting it", function()
    local before = count_allocations()
    local status, res = env:request("POST", "/v1/allocations",
                                    allocation({ { scope = "all", amount = 1 } },
                                               string.rep("é", 250) .. "x"))
    assert.equal(400, status)
    assert.equal("invalid_request", res.error.code)
    assert.equal(before, count_allocations())
  end)
end)
