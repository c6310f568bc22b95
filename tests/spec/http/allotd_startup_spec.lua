-- What allotd leaves beside its database: the pid file (FILE.pid, locked
-- while it runs) through which `allot policies reload --db FILE` signals
-- that server and no other, and, with --demo, the keys file (FILE.keys)
-- that keeps the demo's keys the same from one start to the next.
local H = require "http_env"
local D = require "db_shell"
local socket = require "socket"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."
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

local function run(cmd)
  local err = os.tmpname()
  local p = assert(io.popen(("%s 2> %s"):format(cmd, q(err))))
  local out = p:read("a")
  local _, _, code = p:close()
  local e = read_file(err) or ""
  os.remove(err)
  return out, e, code
end

local function wait_for(what, fn)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    if fn() then return end
    socket.sleep(0.05)
  end
  error("timed out waiting for " .. what)
end

-- On PostgreSQL many allotd serve one database: none takes a pid file unless
-- --pid-file names one, which then works as FILE.pid does beside a file.
describe("allotd's pid file", function()
  local env, pidf, pid_flag, piddir
  setup(function()
    if H.PG then
      piddir = H.tmpdir()
      pidf = piddir .. "/allotd.pid"
      pid_flag = " --pid-file " .. q(pidf)
      env = H.start { args = { "--pid-file", pidf } }
    else
      env = H.start()
      pidf, pid_flag = env.db .. ".pid", ""
    end
  end)
  teardown(function()
    if env then env:stop() end
    if piddir then sh("rm -rf " .. q(piddir)) end
  end)

  it("holds the server's pid while it runs, and refuses a second server", function()
    assert.equal(tostring(env.pid) .. "\n", read_file(pidf))
    local out, err, code = run(("%s/allotd --db %s --listen 127.0.0.1:0 --policies %s%s")
      :format(BUILD, q(env.db), q(POLICIES), pid_flag))
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find(("already serves this database"), 1, true), err)
    assert.truthy(err:find(tostring(env.pid), 1, true), err)
    -- The first server still serves.
    assert.equal(200, (env:get("/v1/health")))
  end)

  it("refuses a second server on the same file even with a pid file of its own", function()
    if H.PG then pending("many nodes share a PostgreSQL database") return end
    local other = H.tmpdir()
    local out, err, code = run(("%s/allotd --db %s --listen 127.0.0.1:0 --policies %s"
      .. " --pid-file %s"):format(BUILD, q(env.db), q(POLICIES), q(other .. "/x.pid")))
    assert.equal(1, code, err)
    assert.equal("", out)
    assert.truthy(err:find("another allotd already serves the database", 1, true), err)
    assert.equal(200, (env:get("/v1/health")))
    assert.equal(tostring(env.pid) .. "\n", read_file(pidf))
    sh("rm -rf " .. q(other))
  end)

  it("lets allot policies reload --db signal that server", function()
    local out, err, code = run(("%s/allot policies reload --db %s%s")
      :format(BUILD, q(env.db), pid_flag))
    assert.equal(0, code, err)
    assert.truthy(out:find(("sent SIGHUP to allotd %d (its pid file %s)")
      :format(env.pid, pidf), 1, true), out)
    wait_for("the reload in the server's log", function()
      return env:server_log():find("SIGHUP: %d+ building policy sets reloaded")
    end)
    -- --pid-file names the file directly.
    out, err, code = run(("%s/allot policies reload --pid-file %s"):format(BUILD, q(pidf)))
    assert.equal(0, code, err)
    assert.truthy(out:find("sent SIGHUP to allotd " .. env.pid, 1, true), out)
  end)

  it("is removed at a clean stop; a stale one is not taken for a server", function()
    local db, dir = env.db, env.dir
    local server = env
    env = nil
    -- stop() removes the server's directory; keep it, with the database.
    server.env.dir = dir .. "/gone"
    assert.is_true(server:stop())
    assert.is_nil(read_file(pidf))
    -- A pid file nobody holds (left by a crash), naming a live process
    -- that is not allotd (init): reload must not signal it.
    local f = assert(io.open(pidf, "w"))
    f:write("1\n")
    f:close()
    local out, err, code = run(("%s/allot policies reload --db %s --policies %s%s")
      :format(BUILD, q(db), q(POLICIES), pid_flag))
    assert.equal(0, code, err)
    assert.truthy(out:find("no allotd serves", 1, true), out)
    assert.truthy(out:find("building policy sets load, 0 refused", 1, true), out)
    out, err, code = run(("%s/allot policies reload --pid-file %s"):format(BUILD, q(pidf)))
    assert.equal(1, code)
    assert.truthy(err:find("no allotd holds", 1, true), err)
    sh("rm -rf " .. q(dir))
  end)
end)

describe("allotd --demo", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() sh("rm -rf " .. q(dir)) end)

  local runs = 0

  -- Starts allotd --demo on dir/demo.db, waits for it to listen, stops it;
  -- returns what it printed.
  local function demo_run()
    local port_sock = assert(socket.bind("127.0.0.1", 0))
    local _, port = port_sock:getsockname()
    port_sock:close()
    -- A new log each run: the last one says "listening" already.
    runs = runs + 1
    local log = ("%s/out%d.log"):format(dir, runs)
    assert(sh(("%s/allotd --db %s/demo.db --demo --policies %s --listen 127.0.0.1:%d "
      .. "--threads 8 > %s 2>&1 & echo $! > %s/pid"):format(BUILD, q(dir), q(POLICIES), port,
                                                          q(log), q(dir))))
    local pid = tonumber(read_file(dir .. "/pid"))
    wait_for("allotd --demo to listen", function()
      return (read_file(log) or ""):find("listening on", 1, true)
    end)
    local printed = read_file(log)
    sh("kill -TERM " .. pid)
    wait_for("allotd to stop", function() return not H.alive(pid) end)
    return printed, port
  end

  local function keys_of(printed)
    local keys = {}
    for role, key, who in printed:gmatch("demo key (%w+_?%w*): (%S+)\n    ([^\n]+)\n") do
      keys[role] = { key = key, who = who }
    end
    return keys
  end

  it("prints one key per role and whom it stands for, the same at every start", function()
    local first = demo_run()
    local keys = keys_of(first)
    assert.truthy(first:find("(5 new)", 1, true) or first:find("; 5 new)", 1, true), first)
    for _, role in ipairs({ "super_admin", "manager", "viewer", "tenant_admin",
                            "tenant_user" }) do
      assert.truthy(keys[role], role .. " missing:\n" .. first)
      assert.truthy(keys[role].key:match("^allot_%x+$"), first)
    end
    assert.equal("every building (an operator key)", keys.super_admin.who)
    assert.equal("an administrator of Acme Analytics (ten_1)", keys.tenant_admin.who)
    assert.equal("Ada Lovelace <ada.lovelace@acme.example> (usr_1) of Acme Analytics (ten_1)",
                 keys.tenant_user.who)
    -- The keys file: readable by its owner only, one "ROLE KEY" line each.
    local file = read_file(dir .. "/demo.db.keys")
    assert.truthy(file:find("\nsuper_admin " .. keys.super_admin.key .. "\n", 1, true), file)
    local p = assert(io.popen("stat -c %a " .. q(dir .. "/demo.db.keys")))
    assert.equal("600", p:read("l"))
    p:close()

    local second = demo_run()
    assert.truthy(second:find("; 0 new)", 1, true), first .. "\n---\n" .. second .. "\n---\n" .. file)
    local again = keys_of(second)
    for role, k in pairs(keys) do
      assert.equal(k.key, again[role].key, role)
      assert.equal(k.who, again[role].who, role)
    end
    -- Five keys in all, however many starts.
    assert.equal(5, D.scalar(dir .. "/demo.db", "SELECT count(*) FROM api_key"))

    -- A key the database no longer knows (a new database, an old file) is
    -- replaced, and only that one.
    local file2 = read_file(dir .. "/demo.db.keys"):gsub("\nviewer %S+", "\nviewer allot_00")
    local f = assert(io.open(dir .. "/demo.db.keys", "w"))
    f:write(file2)
    f:close()
    local third = keys_of(demo_run())
    assert.not_equal(keys.viewer.key, third.viewer.key)
    assert.equal(keys.super_admin.key, third.super_admin.key)
    assert.equal(keys.tenant_user.key, third.tenant_user.key)
  end)
end)
