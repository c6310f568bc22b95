-- Builds small portfolios through the real Lua module against a real SQLite
-- file in a temporary directory.  Every call goes through db:call, so the
-- specs exercise the same operations the HTTP API serves.
local allot = require "allot"

local M = {}

local tmpdir = require("tmpdir").new

-- With ALLOT_TEST_PG_URI set (a throwaway cluster, tests/helpers/with_pg.sh)
-- each database is a fresh PostgreSQL database of it instead of a file.
local PG_URI = os.getenv("ALLOT_TEST_PG_URI")
local pg_serial = 0

function M.db_path(dir)
  if not PG_URI or PG_URI == "" then return dir .. "/allot.db" end
  pg_serial = pg_serial + 1
  local name = ("u%d_%d_%d"):format(os.time(), math.random(1, 1e9), pg_serial)
  assert(os.execute(("psql -q -X '%s' -c 'CREATE DATABASE %s' >/dev/null"):format(PG_URI, name)),
         "cannot create database " .. name)
  return (PG_URI:gsub("/[^/]*$", "/" .. name))
end

-- What each open's database is (a file in its directory, or a URI), by
-- directory: M.db_file(dir), for specs that read it beside the engine
-- (tests/helpers/db_shell.lua).
local opened = {}

function M.db_file(dir)
  return opened[dir] or dir .. "/allot.db"
end

-- Opens a fresh database with the fake clock at `now`.
function M.open(now)
  local dir = tmpdir()
  opened[dir] = M.db_path(dir)
  local db = assert(allot.open {
    db = opened[dir],
    policies = (os.getenv("ALLOT_SOURCE_DIR") or ".") .. "/policies",
    now = now or "2026-01-01T00:00:00Z",
  })
  return db, dir
end

-- Unwraps a call that must succeed.
function M.ok(result, err)
  if result == nil then
    error(("engine error %s %s: %s"):format(err.status, err.code, err.message), 2)
  end
  return result
end

-- A building, a tenant leasing it, and one user.  opts may override
-- timezone, payment, cross_building and the user's roles.
function M.world(db, opts)
  opts = opts or {}
  local b = M.ok(db:create_building {
    name = opts.building_name or "HQ",
    timezone = opts.timezone or "Europe/Paris",
    currency = "USD",
    payment = opts.payment or { credits = true, invoice = true, card = true },
  })
  local t = M.ok(db:create_tenant {
    name = opts.tenant_name or "Acme",
    building_ids = { b.id },
    cross_building = opts.cross_building or false,
  })
  local u = M.ok(db:create_user {
    tenant_id = t.id, name = "Ada", email = "ada@example.com", roles = opts.roles or {},
  })
  return { building = b, tenant = t, user = u }
end

-- A resource paid 1 hour credit per hour (30-minute increments) and 7000/h.
function M.room(db, building, opts)
  opts = opts or {}
  return M.ok(db:create_resource {
    building_id = building.id,
    name = opts.name or "Room",
    kind = opts.kind or "meeting_room",
    tags = opts.tags or {},
    credit_only = opts.credit_only or false,
    pricing = opts.pricing or {
      money = { per_hour = 7000 },
      credits = { unit = opts.unit or "hour", model = "fixed", per_hour = opts.per_hour or 1,
                  increment_minutes = 30 },
    },
  })
end

-- An allocation with one all-resources line.
function M.grant(db, w, amount, schedule, extra)
  local args = {
    tenant_id = w.tenant.id, building_ids = { w.building.id }, description = "test grant",
    unit = "hour", lines = { { scope = "all", amount = amount } },
    targeting = { type = "all" }, pool = "shared", schedule = schedule,
  }
  for k, v in pairs(extra or {}) do args[k] = v end
  return M.ok(db:allocate(args))
end

function M.book(db, w, room, start, stop, method, user)
  return db:book {
    resource_id = room.id, user_id = (user or w.user).id, start = start, ["end"] = stop,
    payment_method = method or "credits",
  }
end

-- The user's available balance of a unit (a number; "unlimited" stays a string).
function M.available(db, user, unit)
  local wallet = M.ok(db:wallet { user_id = user.id, unit = unit or "hour" })
  for _, b in ipairs(wallet.balances) do
    if b.unit == (unit or "hour") then return b.available, wallet end
  end
  return 0, wallet
end

-- Asserts that every invariant holds.
function M.verified(db)
  local ok, problems = db:verify()
  if not ok then
    error("invariants broken:\n" .. table.concat(problems, "\n"), 2)
  end
end

-- Entries of one kind for a lot or a tenant.
function M.entries(db, filter)
  local out = {}
  local page = M.ok(db:entries(filter))
  for _, e in ipairs(page.data) do out[#out + 1] = e end
  return out
end

return M
