-- The running usage counters (store/usage.c) behind ctx.user_usage_month:
-- a pricing policy that shows the value it is given as the money price lets
-- the spec read exactly what a policy sees, and compare it with the sum the
-- engine used to compute from the entries (the same SQL, run here through
-- the sqlite3 shell) across bookings, a refund, a booking whose UTC date is
-- in one month and local date in the next, another user and a per-user lot.
-- `allot verify` catches a corrupted counter, and the migration rebuilds the
-- counters of a database made before they existed.
local F = require "fixture"
local D = require "db_shell"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"

-- Prices 1 credit an hour, and shows ctx.user_usage_month as the money.
local SHOW_USAGE = [[
local M = {}
function M.price(ctx)
  return { credits = allot.ceil_div(1000 * ctx.booking.minutes, 60), unit = "hour",
           money = ctx.user_usage_month }
end
M.examples = { { ctx = { booking = { minutes = 60 }, user_usage_month = 5 },
                 expect = { credits = 1000, unit = "hour", money = 5 } } }
return M
]]

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local PG = (os.getenv("ALLOT_TEST_PG_URI") or "") ~= ""
-- The shell beside the engine: sqlite3 on a file, psql on PostgreSQL
-- (tests/helpers/db_shell.lua).
local has_sqlite3 = sh(("command -v %s >/dev/null 2>&1"):format(PG and "psql" or "sqlite3"))

local function sql(path, text)
  return (D.exec(path, text):gsub("%s+$", ""))
end

-- Unix seconds of a UTC 'YYYY-MM-DD HH:MM:SS' text, in each dialect.
local function epoch(t)
  if PG then return ("extract(epoch FROM timestamp '%s')::bigint"):format(t) end
  return ("strftime('%%s', '%s')"):format(t)
end

local function id_num(id)
  return tonumber(id:match("_(%d+)$"))
end

-- What the engine summed before the counters: the user's shared-lot debits
-- and refunds of the unit on bookings starting in [from, to).
local function scanned(path, user, from, to)
  local text = ("SELECT coalesce(-sum(e.amount), 0) FROM booking b JOIN entry e ON"
    .. " e.booking_id = b.id JOIN lot l ON l.id = e.lot_id WHERE b.user_id = %d AND"
    .. " b.start_at >= %s AND b.start_at < %s AND"
    .. " e.kind IN ('debit', 'refund') AND l.user_id = 0 AND l.unit = 'hour'")
    :format(id_num(user.id), epoch(from), epoch(to))
  return tonumber(sql(path, text))
end

describe("usage counters", function()
  local db, dir, w, room, path
  -- Europe/Paris: January is [2025-12-31T23:00Z, 2026-01-31T23:00Z).
  local JAN = { "2025-12-31 23:00:00", "2026-01-31 23:00:00" }
  local FEB = { "2026-01-31 23:00:00", "2026-02-28 23:00:00" }

  -- The usage a policy sees for a one-hour quote on `day` at `hour` (UTC).
  local function seen(day, hour, user)
    local quote = F.ok(db:quote { resource_id = room.id, user_id = (user or w.user).id,
                                  start = ("%sT%02d:00:00Z"):format(day, hour),
                                  ["end"] = ("%sT%02d:59:00Z"):format(day, hour) })
    return quote.money.amount
  end

  before_each(function()
    db, dir = F.open("2026-01-01T00:00:00Z")
    path = F.db_file(dir)
    w = F.world(db)
    room = F.room(db, w.building)
    F.grant(db, w, 100, { start = "2026-01-01", recurrence = "monthly" })
    F.ok(db:call("policies.put", { building_id = w.building.id, kind = "pricing",
                                   source = SHOW_USAGE }))
  end)
  after_each(function() db:close(); sh("rm -rf " .. q(dir)) end)

  it("shows policies the same value as the sum over the history", function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    local ada = w.user
    local bob = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bob",
                                      email = "bob@example.com", roles = {} })
    assert.equal(0, seen("2026-01-10", 9))
    F.ok(F.book(db, w, room, "2026-01-10T09:00:00Z", "2026-01-10T11:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-11T09:00:00Z", "2026-01-11T10:00:00Z"))
    local third = F.ok(F.book(db, w, room, "2026-01-12T09:00:00Z", "2026-01-12T12:00:00Z"))
    -- 23:30 UTC on 31 January is 00:30 on 1 February in Paris.
    F.ok(F.book(db, w, room, "2026-01-31T23:30:00Z", "2026-02-01T00:30:00Z"))
    F.ok(F.book(db, w, room, "2026-01-20T09:00:00Z", "2026-01-20T13:00:00Z", "credits", bob))
    F.ok(F.book(db, w, room, "2026-01-21T09:00:00Z", "2026-01-21T10:00:00Z", "card"))
    assert.equal(6000, seen("2026-01-15", 9))
    assert.equal(6000, scanned(path, ada, JAN[1], JAN[2]))
    assert.equal(1000, seen("2026-02-03", 9))
    assert.equal(1000, scanned(path, ada, FEB[1], FEB[2]))
    assert.equal(4000, seen("2026-01-15", 9, bob))
    -- An admin's cancellation refunds in full: the month's usage drops.
    F.ok(db:cancel { id = third.id })
    assert.equal(3000, seen("2026-01-15", 9))
    assert.equal(3000, scanned(path, ada, JAN[1], JAN[2]))
    -- Late January in UTC terms but February in Paris.
    assert.equal(1000, seen("2026-01-31", 23))
    F.verified(db)
  end)

  it("is caught by verify when corrupted, and rebuilt by the migration", function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    F.ok(F.book(db, w, room, "2026-01-10T09:00:00Z", "2026-01-10T11:00:00Z"))
    F.ok(F.book(db, w, room, "2026-01-31T23:30:00Z", "2026-02-01T00:30:00Z"))
    F.verified(db)
    db:close()
    sql(path, "UPDATE usage_month SET used = used + 1 WHERE month = 202601")
    local p = assert(io.popen(("%s/allot verify --db %s 2>&1"):format(BUILD, q(path))))
    local out = p:read("a")
    local ok = p:close()
    assert.is_falsy(ok)
    assert.truthy(out:find("usage counters equal the sum of their entries: usr_%d+ hour"
                           .. " 2026%-01 in Europe/Paris: counter 2001 but entries sum to 2000"),
                  out)
    assert.truthy(out:find("FAIL      1  usage counters equal the sum of their entries", 1, true),
                  out)
    -- A database from before the counters: the migration builds them.
    if PG then
      -- the same on PostgreSQL: its triggers name their table, and the
      -- schema version lives in allot_schema
      local drops = sql(path, "SELECT string_agg('DROP TRIGGER ' || tgname || ' ON '"
                              .. " || tgrelid::regclass, '; ') FROM pg_trigger WHERE"
                              .. " tgname LIKE 'gen_%' AND NOT tgisinternal")
      sql(path, drops .. "; DROP TABLE portfolio_generation; DROP TABLE usage_month;"
                .. " DROP TABLE usage_zone; UPDATE allot_schema SET version = 2")
    else
      local drops = sql(path, "SELECT group_concat('DROP TRIGGER ' || name, '; ') FROM"
                              .. " sqlite_master WHERE type = 'trigger' AND name LIKE 'gen_%'")
      sql(path, drops .. "; DROP TABLE portfolio_generation; DROP TABLE usage_month;"
                .. " DROP TABLE usage_zone; PRAGMA user_version = 2")
    end
    db = assert(require("allot").open { db = path, policies = os.getenv("ALLOT_POLICIES"),
                                        now = "2026-01-01T00:00:00Z" })
    assert.equal("2000", sql(path, "SELECT used FROM usage_month WHERE month = 202601"))
    assert.equal("1000", sql(path, "SELECT used FROM usage_month WHERE month = 202602"))
    assert.equal(2000, seen("2026-01-15", 9))
    F.verified(db)
  end)

  it("keeps a building's zone's counters, built when the building comes", function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    F.ok(F.book(db, w, room, "2026-01-31T23:30:00Z", "2026-02-01T00:30:00Z"))
    -- A building in New York: the same booking is in its January.
    local ny = F.ok(db:create_building { name = "NY", timezone = "America/New_York",
                                         currency = "USD",
                                         payment = { credits = true, invoice = true,
                                                     card = true } })
    assert.equal("1000", sql(path, "SELECT used FROM usage_month WHERE zone ="
                                   .. " 'America/New_York' AND month = 202601"))
    assert.equal("", sql(path, "SELECT used FROM usage_month WHERE zone ="
                               .. " 'America/New_York' AND month = 202602"))
    assert.truthy(ny.id)
    F.verified(db)
  end)
end)
