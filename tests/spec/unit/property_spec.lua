-- Seeded random sequences of grants, bookings, cancellations, adjustments
-- and clock jumps; every invariant is checked after every step, and a
-- refused operation must leave the ledger exactly as it was.  A failure
-- names its seed: ALLOT_PROPERTY_SEED=<seed> replays just that sequence.
local F = require "fixture"

local SEQUENCES = tonumber(os.getenv("ALLOT_PROPERTY_SEQUENCES") or "1000")
local STEPS = tonumber(os.getenv("ALLOT_PROPERTY_STEPS") or "16")
local ONLY = tonumber(os.getenv("ALLOT_PROPERTY_SEED") or "")

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end
local function day_of(t) return os.date("!%Y-%m-%d", t) end

-- The ledger's size: a refused operation must not change it.
local function ledger_size(db)
  local n, cursor = 0, nil
  repeat
    local page = F.ok(db:entries { limit = 500, cursor = cursor })
    n = n + #page.data
    cursor = page.next_cursor
  until not cursor
  return n
end

local function run(seed)
  math.randomseed(seed)
  local R = math.random
  local start = 1767225600 + R(0, 200) * 86400 -- 2026-01-01 plus up to 200 days
  local now = start
  local db = F.open(iso(now))
  local zones = { "Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC" }
  local w = F.world(db, { timezone = zones[R(#zones)], cross_building = R(2) == 1,
                          roles = { "reserver" } })
  local other = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bo", email = "b@x.io" })
  local users = { w.user, other }
  local rooms = {}
  for i = 1, 3 do
    rooms[i] = F.room(db, w.building, { name = "R" .. i, tags = { i == 1 and "deck" or "room" },
                                        unit = i == 3 and "coin" or "hour",
                                        per_hour = i == 3 and 70 or 1 })
  end
  local bookings = {}
  local recurrences = { "none", "weekly", "monthly", "quarterly", "yearly" }
  local log = {}
  for step = 1, STEPS do
    local action = R(10)
    local before = ledger_size(db)
    local ok, err
    if action <= 2 then
      local rec = recurrences[R(#recurrences)]
      local unit = R(4) == 1 and "coin" or "hour"
      local amount = unit == "hour" and R(1, 40) / 2 or R(50, 500)
      if unit == "hour" and R(8) == 1 then amount = "unlimited" end
      local line = ({ { scope = "all", amount = amount },
                      { scope = "tags", tags = { "deck" }, amount = amount },
                      { scope = "resources", resource_ids = { rooms[R(3)].id }, amount = amount } })[R(3)]
      local sched = { start = day_of(now + R(-40, 20) * 86400), recurrence = rec }
      if R(3) == 1 then sched["end"] = day_of(now + R(0, 120) * 86400) end
      if rec ~= "none" and R(2) == 1 then
        sched.rollover = { enabled = true, cap = R(3) == 1 and nil or R(0, 10) }
      end
      local targeting = ({ { type = "all" }, { type = "users", user_ids = { users[R(2)].id } },
                           { type = "roles", roles = { "reserver" } } })[R(3)]
      ok, err = db:allocate { tenant_id = w.tenant.id, building_ids = { w.building.id },
        unit = unit, lines = { line }, targeting = targeting,
        pool = R(2) == 1 and "per_user" or "shared", schedule = sched }
      log[#log + 1] = "allocate"
    elseif action <= 6 then
      local s = now + R(-2, 24 * 20) * 3600
      local len = R(1, 8) * 30 * 60
      local method = ({ "credits", "credits", "credits", "card", "invoice" })[R(5)]
      local r
      r, err = db:book { resource_id = rooms[R(3)].id, user_id = users[R(2)].id,
                         start = iso(s), ["end"] = iso(s + len), payment_method = method }
      ok = r
      if r then bookings[#bookings + 1] = r.id end
      log[#log + 1] = "book"
    elseif action == 7 and #bookings > 0 then
      local who = R(2) == 1 and db or db:as { role = "tenant_user", tenant_id = w.tenant.id,
                                               user_id = w.user.id }
      ok, err = who:cancel { id = bookings[R(#bookings)] }
      log[#log + 1] = "cancel"
    elseif action == 8 then
      local lots = F.ok(db:wallet { user_id = users[R(2)].id }).lots
      local lot = lots[R(math.max(#lots, 1))]
      if lot and lot.id and lot.balance ~= "unlimited" then
        ok, err = db:adjust { lot_id = lot.id, amount = R(-20, 20) / 4, memo = "fuzz" }
      end
      log[#log + 1] = "adjust"
    else
      now = now + R(1, 24 * 45) * 3600
      assert(db:set_clock(iso(now)))
      log[#log + 1] = "clock"
    end
    if ok then err = nil end
    if err then
      local after = ledger_size(db)
      assert(after == before,
             ("seed %d step %d: a refused %s (%s: %s) changed the ledger from %d to %d entries")
               :format(seed, step, log[#log], err.code, err.message, before, after))
    end
    local fine, problems = db:verify()
    if not fine then
      error(("seed %d step %d (%s): %s"):format(seed, step, table.concat(log, ","),
                                                table.concat(problems, "; ")))
    end
  end
  db:close()
end

describe("random operation sequences", function()
  it(("keep every invariant (%d sequences of %d steps)"):format(ONLY and 1 or SEQUENCES, STEPS),
     function()
    if ONLY then run(ONLY) return end
    local base = tonumber(os.getenv("ALLOT_PROPERTY_BASE") or "1")
    for seed = base, base + SEQUENCES - 1 do
      run(seed)
    end
  end)
end)
