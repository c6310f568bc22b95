-- wrk script: every request books a slot of its own (credits), so the load
-- measures durable bookings, not slot_taken refusals.  Needs env ROOMS (a
-- comma-separated list of resource ids), USER_ID (or USER_IDS), KEY, and BASE_DAY (days
-- after 2027-01-01 where this run's slots begin).  Each answer must be 201
-- with a booking body (see check.lua).
package.path = "scripts/bench/?.lua;" .. package.path
require("check").install(201, '"id":"bkg_')
local rooms, counter = {}, 0
local users, key = {}, os.getenv("KEY")
-- USER_IDS (comma-separated; bench_http.sh --tenants) spreads the bookings
-- over several users (and lots), in turn; else USER_ID books them all.
for id in (os.getenv("USER_IDS") or os.getenv("USER_ID") or ""):gmatch("[^,]+") do
  users[#users + 1] = id
end
local base = 1798761600 + 86400 * tonumber(os.getenv("BASE_DAY") or "0")
for id in (os.getenv("ROOMS") or ""):gmatch("[^,]+") do rooms[#rooms + 1] = id end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

function request()
  counter = counter + 1
  local room = rooms[counter % #rooms + 1]
  -- Each thread has its own 400-day stripe of half-hour slots per room.
  local slot = math.floor(counter / #rooms)
  local s = base + (tid or 0) * 400 * 86400 + slot * 1800
  local body = ('{"resource_id":"%s","user_id":"%s","start":"%s","end":"%s",'
    .. '"payment_method":"credits"}'):format(room, users[counter % #users + 1], iso(s), iso(s + 1800))
  return wrk.format("POST", "/v1/bookings", {
    ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
