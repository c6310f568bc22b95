-- The `allot` command line on database files: `allot verify` reads a file
-- read-only and leaves it byte for byte as it was (even a fake-clock
-- database whose periods the real clock would end), prints one line per
-- invariant with its count of problems, and exits 0 only when clean; a
-- missing --db is refused by verify, repl and keys create unless --create
-- is given.
local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."
local ALLOT = BUILD .. "/allot"
local POLICIES = SOURCE .. "/policies"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs a command; returns stdout, stderr and the exit code.
local function run(dir, cmd, stdin)
  local input = "/dev/null"
  if stdin then
    input = dir .. "/stdin"
    local f = assert(io.open(input, "wb"))
    f:write(stdin)
    f:close()
  end
  local p = assert(io.popen(("%s < %s 2> %s"):format(cmd, q(input), q(dir .. "/stderr"))))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, read_file(dir .. "/stderr") or "", code
end

local function allot(dir, args, stdin)
  return run(dir, q(ALLOT) .. " " .. args, stdin)
end

-- One value of a read-only SQL query (the sqlite3 shell, read-only).
local function scalar(db, sql)
  local p = assert(io.popen(("sqlite3 -readonly %s %s"):format(q(db), q(sql))))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("%-?%d+"))
end

local function fingerprint(db)
  local p = assert(io.popen("sha256sum " .. q(db)))
  local sum = p:read("a"):match("^(%x+)")
  p:close()
  return { sha256 = sum, size = #read_file(db) }
end

local tmpdir = require("tmpdir").new

-- A building, a tenant, a user, a room and 10 monthly hours from January
-- 2026: one grant entry.  Every month the real clock has passed since would
-- expire a period and open the next one.
local SEED = [[
b = db:create_building{name = "HQ", timezone = "Europe/Paris", currency = "USD",
                       payment = {credits = true, invoice = true, card = true}}
t = db:create_tenant{name = "Acme", building_ids = {b.id}, cross_building = false}
u = db:create_user{tenant_id = t.id, name = "Ada", email = "ada@example.com", roles = {}}
r = db:create_resource{building_id = b.id, name = "Room", kind = "meeting_room", tags = {},
  credit_only = false, pricing = {money = {per_hour = 7000},
  credits = {unit = "hour", model = "fixed", per_hour = 1, increment_minutes = 30}}}
a = db:allocate{tenant_id = t.id, building_ids = {b.id}, description = "monthly hours",
  unit = "hour", lines = {{scope = "all", amount = 10}}, targeting = {type = "all"},
  pool = "shared", schedule = {start = "2026-01-01", recurrence = "monthly"}}
]]

local has_sqlite3 = sh("command -v sqlite3 > /dev/null 2>&1")

describe("allot verify", function()
  local dir, db
  before_each(function()
    dir = tmpdir()
    db = dir .. "/a.db"
    local _, err, code = allot(dir, ("repl --db %s --create --policies %s --now %s")
      :format(q(db), q(POLICIES), "2026-01-01T00:00:00Z"), SEED)
    assert.equal(0, code, err)
  end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("checks a fake-clock database read-only, leaving it byte-identical", function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    local entries = scalar(db, "SELECT count(*) FROM entry")
    assert.equal(1, entries)
    local lots = scalar(db, "SELECT count(*) FROM lot")
    local before = fingerprint(db)
    for _ = 1, 2 do
      local out, err, code = allot(dir, "verify --db " .. q(db))
      assert.equal(0, code, out .. err)
      assert.equal("", err)
      assert.truthy(out:find("ok: every invariant holds\n", 1, true), out)
      -- One line per invariant with its count.
      local lines = 0
      for _ in out:gmatch("\nok%s+0  [^\n]+") do lines = lines + 1 end
      assert.equal(17, lines, out)
      assert.truthy(out:find("\nok%s+0  lot balance equals the sum of its entries\n"), out)
    end
    assert.same(before, fingerprint(db))
    assert.equal(entries, scalar(db, "SELECT count(*) FROM entry"))
    assert.equal(lots, scalar(db, "SELECT count(*) FROM lot"))
  end)

  it("prints each problem and its invariant's count, and exits 1", function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    assert(sh(("sqlite3 %s %s"):format(q(db), q("UPDATE lot SET balance = balance + 5"))))
    local out, err, code = allot(dir, "verify --db " .. q(db))
    assert.equal(1, code, out .. err)
    assert.truthy(out:find("problem: lot balance equals the sum of its entries: lot_1: "
                           .. "balance 10005 but entries sum to 10000\n", 1, true), out)
    assert.truthy(out:find("\nFAIL%s+1  lot balance equals the sum of its entries\n"), out)
    assert.truthy(out:find("\nok%s+0  no limited lot below zero\n"), out)
    assert.truthy(out:find("\n1 problem%(s%) in 1 of 17 invariants\n$"), out)
  end)

  it("finds a booking that overlaps any earlier one on its resource, not only its neighbour",
     function()
    if not has_sqlite3 then pending("no sqlite3 shell") return end
    -- A long booking, then two short ones inside its hours but after each
    -- other: only the long one's end reveals the overlap of the third.
    local _, err, code = allot(dir, ("repl --db %s --policies %s --now %s"):format(q(db),
      q(POLICIES), "2026-01-01T00:00:00Z"), [[
for _, s in ipairs{{"09:00", "10:00"}, {"10:00", "11:00"}, {"11:00", "12:00"}} do
  assert(db:book{resource_id = "res_1", user_id = "usr_1", payment_method = "invoice",
                 start = "2026-01-05T" .. s[1] .. ":00Z", ["end"] = "2026-01-05T" .. s[2] .. ":00Z"})
end
]])
    assert.equal(0, code, err)
    local out = allot(dir, "verify --db " .. q(db))
    assert.truthy(out:find("\nok%s+0  no resource is double%-booked\n"), out)
    -- The first booking now runs to 12:00; the 11:00 one starts before it ends.
    assert(sh(("sqlite3 %s %s"):format(q(db), q("UPDATE booking SET end_at = end_at + 7200 "
      .. "WHERE id = (SELECT min(id) FROM booking)"))))
    local code2
    out, _, code2 = allot(dir, "verify --db " .. q(db))
    assert.equal(1, code2, out)
    assert.truthy(out:find("\nFAIL%s+2  no resource is double%-booked\n"), out)
  end)

  it("refuses a missing file, --create, and a file that is not a database", function()
    local out, err, code = allot(dir, "verify --db " .. q(dir .. "/missing.db"))
    assert.are_not.equal(0, code)
    assert.equal("", out)
    assert.truthy(err:find("no database at '" .. dir .. "/missing.db'", 1, true), err)
    assert.is_false(exists(dir .. "/missing.db"))
    _, err, code = allot(dir, "verify --create --db " .. q(dir .. "/missing.db"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("verify never writes", 1, true), err)
    assert.is_false(exists(dir .. "/missing.db"))
    local f = assert(io.open(dir .. "/notes.txt", "wb"))
    f:write(("not a database\n"):rep(100))
    f:close()
    local text = read_file(dir .. "/notes.txt")
    _, err, code = allot(dir, "verify --db " .. q(dir .. "/notes.txt"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("allot verify: ", 1, true), err)
    assert.equal(text, read_file(dir .. "/notes.txt"))
  end)
end)

describe("a missing --db", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("is refused by allot repl unless --create is given", function()
    local typo = dir .. "/typo.db"
    local out, err, code = allot(dir, ("repl --db %s --policies %s"):format(q(typo), q(POLICIES)),
                                 "return 1 + 1\n")
    assert.are_not.equal(0, code)
    assert.equal("", out)
    assert.truthy(err:find("no database at '" .. typo .. "'", 1, true), err)
    assert.truthy(err:find("--create", 1, true), err)
    assert.is_false(exists(typo))
    out, err, code = allot(dir, ("repl --db %s --create --policies %s"):format(q(typo),
                                                                            q(POLICIES)),
                           "return 1 + 1\n")
    assert.equal(0, code, err)
    assert.equal("2\n", out)
    assert.is_true(exists(typo))
    -- It exists now: no --create needed.
    out, err, code = allot(dir, ("repl --db %s --policies %s"):format(q(typo), q(POLICIES)),
                           "return 2 + 2\n")
    assert.equal(0, code, err)
    assert.equal("4\n", out)
  end)

  it("is refused by allot keys create unless --create is given", function()
    local missing = dir .. "/missing.db"
    local out, err, code = allot(dir, ("keys create --db %s --role super_admin --policies %s")
      :format(q(missing), q(POLICIES)))
    assert.are_not.equal(0, code)
    assert.falsy(out:find("allot_", 1, true))
    assert.truthy(err:find("no database at '" .. missing .. "'", 1, true), err)
    assert.is_false(exists(missing))
    out, err, code = allot(dir, ("keys create --db %s --create --role super_admin --policies %s")
      :format(q(missing), q(POLICIES)))
    assert.equal(0, code, err)
    assert.truthy(out:find("\nallot_%x+\n$"), out)
    assert.is_true(exists(missing))
  end)
end)

-- Mistakes are named in the words the user typed, before the usage, and
-- exit 2; a value the engine refuses names the flag it came from.
describe("a mistake on the command line", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  local function refused(args, message, status)
    local out, err, code = allot(dir, args)
    assert.equal(status or 2, code, err)
    assert.equal("", out)
    assert.truthy(err:find(message, 1, true), err)
    if (status or 2) == 2 then
      -- The specific message comes first, then the usage.
      assert.truthy(err:find("^allot[^\n]*\nusage:\n"), err)
    end
    return err
  end

  it("names an unknown command, a missing --db and an unknown option", function()
    refused("", "allot: no command given")
    refused("frobnicate --db x.db", "allot: unknown command 'frobnicate'")
    refused("keys make --db x.db", "allot: unknown command 'keys make'")
    refused("policies", "allot: 'policies' needs a command: policies reload")
    refused("verify", "allot: verify: --db FILE is required")
    refused("keys create --role viewer", "allot: keys create: --db FILE is required")
    refused("keys create --db x.db", "allot: keys create: --role ROLE is required")
    refused("policies reload", "allot: policies reload: --db FILE is required")
    refused("verify --db", "allot: verify: --db needs a value")
    refused("verify --db x.db --force", "allot: verify: unknown option '--force'")
    refused("keys create --db x.db --role viewer --tenant-id ten_1",
            "allot: keys create: unknown option '--tenant-id'")
    refused("repl", "allot repl: --db FILE or --url URL is required")
    -- Help is not a mistake.
    local out, err, code = allot(dir, "--help")
    assert.equal(0, code)
    assert.equal("", out)
    assert.truthy(err:find("^usage:\n"), err)
  end)

  it("names the flag of a value the engine refuses", function()
    local db = q(dir .. "/k.db")
    local p = ("--policies %s"):format(q(POLICIES))
    refused(("keys create --db %s --create %s --role tenant_user"):format(db, p),
            "allot keys create: a tenant_user key needs --user\n", 1)
    refused(("keys create --db %s %s --role tenant_admin"):format(db, p),
            "allot keys create: a tenant_admin key needs --tenant\n", 1)
    refused(("keys create --db %s %s --role tenant_user --user usr_9"):format(db, p),
            "allot keys create: --user usr_9: unknown user\n", 1)
    local err = refused(("keys create --db %s %s --role owner"):format(db, p),
                        "allot keys create: --role must be super_admin", 1)
    assert.falsy(err:find("'", 1, true), err) -- no engine field name is left
    -- Nothing was created by the refusals.
    assert.equal(0, scalar(dir .. "/k.db", "SELECT count(*) FROM api_key"))
  end)
end)
