-- wrk script: every request books a slot of its own (credits), so the load
-- measures durable bookings, not slot_taken refusals.  Needs env ROOMS (a
-- comma-separated list of resource ids), USER_ID (or USER_IDS), KEY, and BASE_DAY (days
-- after 2027-01-01 where this run's slots begin).  Each answer must be 201
-- with a booking body (see check.lua).
--
-- wrk runs on the same two CPUs as allotd, so what this script costs per
-- request is taken from the server: the request is one string.format over
-- a prefix built once, and each slot's date text is formatted once a day
-- (wrk.format, a headers table and two os.date calls per request cost the
-- client ~9 us of CPU a booking).
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
local nrooms, nusers = #rooms, #users

local head -- request line and headers up to Content-Length, built at the first request
local prefix = {} -- per room and user: the body up to the start time
local tod = {}    -- "HH:MM:00Z" of each half hour of a day
for i = 0, 47 do tod[i] = ("%02d:%02d:00Z"):format(math.floor(i / 2), i % 2 * 30) end
local day_of, day_text = nil, nil

-- "YYYY-MM-DDTHH:MM:SSZ" for t on a half-hour boundary: the date part once
-- a day, the time of day from the table.
local function iso(t)
  local day = t - t % 86400
  if day ~= day_of then day_of, day_text = day, os.date("!%Y-%m-%dT", day) end
  return day_text .. tod[(t - day) / 1800]
end

function request()
  if head == nil then
    head = ("POST /v1/bookings HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
      .. "Content-Type: application/json\r\nContent-Length: "):format(wrk.headers["Host"], key)
  end
  counter = counter + 1
  local r, u = counter % nrooms + 1, counter % nusers + 1
  local key_ru = r * 65536 + u
  local pre = prefix[key_ru]
  if pre == nil then
    pre = ('{"resource_id":"%s","user_id":"%s","start":"'):format(rooms[r], users[u])
    prefix[key_ru] = pre
  end
  -- Each thread has its own 400-day stripe of half-hour slots per room.
  local slot = math.floor(counter / nrooms)
  local s = base + (tid or 0) * 400 * 86400 + slot * 1800
  -- The body: pre, 20 + 9 + 20 characters of times, and its tail (29).
  return head .. (#pre + 78) .. "\r\n\r\n" .. pre .. iso(s) .. '","end":"' .. iso(s + 1800)
    .. '","payment_method":"credits"}'
end
