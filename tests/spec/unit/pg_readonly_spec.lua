-- A read-only `allot verify` on PostgreSQL needs nothing a writer creates on
-- its way in (the SQL functions and view store_pg.c's prelude adds for the
-- common dialect): on a database whose schema an older build made, without
-- them, it checks every invariant and finds a missing trigger; on an empty
-- database it says that no writer has made the schema yet, and writes
-- nothing.  Runs only against PostgreSQL (ALLOT_TEST_PG_URI, set by
-- tests/helpers/with_pg.sh); on SQLite the same commands are cli_spec's.
local F = require "fixture"
local D = require "db_shell"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local PG = (os.getenv("ALLOT_TEST_PG_URI") or "") ~= ""

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs `allot verify --db uri`: stdout, stderr, exit code.
local function verify(uri)
  local ef = os.tmpname()
  local p = assert(io.popen(("%s/allot verify --db %s 2> %s"):format(BUILD, q(uri), q(ef))))
  local out = p:read("a")
  local _, _, code = p:close()
  local f = assert(io.open(ef))
  local err = f:read("a")
  f:close()
  os.remove(ef)
  return out, err, code
end

describe("allot verify read-only on PostgreSQL", function()
  it("checks a database that lacks the writer's SQL functions", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local db, dir = F.open("2026-01-01T00:00:00Z")
    local uri = F.db_file(dir)
    local w = F.world(db)
    local room = F.room(db, w.building)
    F.grant(db, w, 10, { start = "2026-01-01", recurrence = "monthly" })
    F.ok(F.book(db, w, room, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"))
    db:close()
    -- What this build's writers add, gone (as on a database an older build
    -- migrated): verify must not depend on any of it.
    D.exec(uri, "DROP VIEW sqlite_master; DROP AGGREGATE sum(boolean);"
                .. " DROP AGGREGATE json_group_array(anyelement); DROP FUNCTION instr(text, text)")
    local out, err, code = verify(uri)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("%(read%-only%): %d+ invariants"), out)
    assert.truthy(out:find("ok        0  entries are immutable", 1, true), out)
    assert.truthy(out:find("ok: every invariant holds", 1, true), out)
    -- It says what else a read-only connection will miss, and creates nothing.
    assert.truthy(err:find("lacks the SQL functions a writer of this build adds", 1, true), err)
    assert.equal(0, D.scalar(uri, "SELECT count(*) FROM pg_proc WHERE proname = 'instr'"))
    -- The trigger check still reads the catalogue: a dropped trigger is found.
    D.exec(uri, "DROP TRIGGER entry_no_update ON entry")
    out, _, code = verify(uri)
    assert.equal(1, code, out)
    assert.truthy(out:find("entries are immutable: the trigger entry_no_update is missing", 1,
                           true), out)
    -- A writer opening it again puts the functions (and the trigger's
    -- absence stays a finding: migrations do not re-run).
    local again = assert(require("allot").open { db = uri, policies = os.getenv("ALLOT_POLICIES"),
                                                 now = "2026-01-01T00:00:00Z" })
    again:close()
    assert.equal(1, D.scalar(uri, "SELECT count(*) FROM pg_proc WHERE proname = 'instr'"))
    os.execute("rm -rf " .. q(dir))
  end)

  it("refuses an empty database with the reason, writing nothing", function()
    if not PG then pending("needs ALLOT_TEST_PG_URI (PostgreSQL)") return end
    local uri = F.db_path("/nonexistent")
    local out, err, code = verify(uri)
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("holds no Allot schema yet: a writer creates it", 1, true), err)
    assert.equal(0, D.scalar(uri, "SELECT count(*) FROM pg_class WHERE relnamespace ="
                                  .. " 'public'::regnamespace"))
  end)
end)
