-- The README's tour, run as a new user runs it: every command of its "A
-- tour" section, taken from README.md itself (so the README cannot drift
-- from what works), against a real allotd with the demo data on the real
-- clock.  The shell blocks run in order as one script from a directory laid
-- out like the repository's root (build/ holds the programs, policies/ the
-- policies), with the environment scripts/demo.sh documents (ALLOT_LISTEN,
-- ALLOT_DEMO_DB).  Every curl must answer 2xx; the console blocks are typed
-- into `allot repl` (their prompts removed); the Lua module block runs
-- under lua5.4.
local H = require "http_env"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."

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

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local p = assert(io.popen("pwd"))
  local cwd = p:read("l")
  p:close()
  return cwd .. "/" .. path
end

-- The fenced blocks of the README's tour, in order: {lang, text}.
local function tour_blocks()
  local readme = assert(read_file(SOURCE .. "/README.md"))
  local tour = assert(readme:match("\n## A tour\n(.-)\n## Where the docs live"),
                      "README.md has no '## A tour' section")
  local blocks = {}
  for lang, text in tour:gmatch("\n```(%a*)\n(.-)\n```") do
    blocks[#blocks + 1] = { lang = lang, text = text }
  end
  return blocks
end

-- Runs a command; returns its stdout, stderr and exit code.
local function run(dir, cmd)
  local p = assert(io.popen(("%s 2> %s"):format(cmd, q(dir .. "/stderr"))))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, read_file(dir .. "/stderr") or "", code
end

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

describe("the README tour", function()
  local env, dir, blocks
  setup(function()
    -- The demo data on the real clock, as scripts/demo.sh starts it.
    dir = H.tmpdir()
    if H.PG then
      -- On PostgreSQL allotd takes a pid file only when asked: ask for the
      -- one `allot policies reload --db $DB` looks for, "$DB.pid" from the
      -- tour's directory (the URI's "//" reads as one "/").
      local db = H.fresh_db(dir)
      local pidf = dir .. "/" .. db .. ".pid"
      assert(sh("mkdir -p " .. q(pidf:match("^(.*)/"))))
      env = H.start({ db = db, fake_clock = false, args = { "--demo", "--pid-file", pidf } })
    else
      env = H.start({ fake_clock = false, args = { "--demo" } })
    end
    local build = absolute(BUILD)
    assert(sh(("mkdir -p %s/build %s/bin"):format(q(dir), q(dir))))
    for _, f in ipairs({ "allot", "allotd", "allot.so" }) do
      assert(sh(("ln -s %s %s"):format(q(build .. "/" .. f), q(dir .. "/build/" .. f))))
    end
    assert(sh(("ln -s %s %s"):format(q(absolute(SOURCE) .. "/policies"), q(dir .. "/policies"))))
    -- curl as the tour types it, but failing on an error status and
    -- reporting every status on stderr.
    write_file(dir .. "/bin/curl", "#!/bin/sh\n"
      .. "exec /usr/bin/curl --fail-with-body -w '%{stderr}HTTP %{http_code}\\n' \"$@\"\n")
    assert(sh("chmod +x " .. q(dir .. "/bin/curl")))
    blocks = tour_blocks()
    if H.PG then
      -- On PostgreSQL allotd --demo keeps no keys file (nothing is beside a
      -- URI): the keys it printed go where the tour reads them, "$DB.keys"
      -- from the tour's directory (the URI's "//" reads as one "/").
      local lines = {}
      for role, key in env:server_log():gmatch("demo key (%w+_?%w*): (%S+)\n") do
        lines[#lines + 1] = role .. " " .. key .. "\n"
      end
      assert(#lines == 5, env:server_log())
      local keys = dir .. "/" .. env.db .. ".keys"
      assert(sh("mkdir -p " .. q(keys:match("^(.*)/"))))
      write_file(keys, table.concat(lines))
    end
  end)
  teardown(function()
    if env then assert.is_true(env:stop()) end
    if dir then sh("rm -rf " .. q(dir)) end
  end)

  local function env_prefix()
    return ("cd %s && PATH=%s:$PATH ALLOT_LISTEN=127.0.0.1:%d ALLOT_DEMO_DB=%s HOME=%s")
      :format(q(dir), q(dir .. "/bin"), env.port, q(env.db), q(dir))
  end

  -- The shell blocks as one script; each `build/allot repl` line reads the
  -- console blocks (prompts removed) instead of a terminal.
  local function tour_script()
    local sh_parts, repl_input = {}, {}
    for _, b in ipairs(blocks) do
      if b.lang == "sh" then
        sh_parts[#sh_parts + 1] = b.text
      elseif b.lang == "lua" and b.text:find("^allot> ") then
        for line in (b.text .. "\n"):gmatch("(.-)\n") do
          repl_input[#repl_input + 1] = line:gsub("^allot> ", ""):gsub("^%.%.%.> ", "")
        end
      end
    end
    assert(#sh_parts >= 3 and #repl_input > 0, "the tour lost its blocks")
    write_file(dir .. "/repl_input.lua", table.concat(repl_input, "\n") .. "\n")
    local script = table.concat(sh_parts, "\n")
    local repl_lines = 0
    script = script:gsub("\n(build/allot repl [^\n#]-)%s*#[^\n]*", function(cmd)
      repl_lines = repl_lines + 1
      return "\n" .. cmd .. " < repl_input.lua"
    end)
    assert(repl_lines == 2, "the tour opens the console on a server and on a file")
    return "set -eu\n" .. script .. "\n", count(script, "\ncurl ")
  end

  it("runs every shell command, each request answering 2xx", function()
    local script, curls = tour_script()
    write_file(dir .. "/tour.sh", script)
    local out, err, code = run(dir, env_prefix() .. " sh tour.sh")
    assert.equal(0, code, ("the tour failed:\n%s\n%s\n%s"):format(out, err, env:server_log()))
    -- Every curl ran and answered 2xx (curl --fail-with-body stops the
    -- script on any other status).
    assert.equal(curls, count(err, "HTTP 2%d%d\n"), err)
    assert.equal(curls, count(err, "HTTP %d+\n"), err)
    -- /v1/me is the super_admin demo key.
    assert.truthy(out:find('"role":"super_admin"', 1, true), out)
    -- The quote prices tomorrow's slot in credits (not null: the dates are
    -- in the future), and the booking is confirmed and paid with them.
    assert.truthy(out:find('"credits":{"amount":1.5,"unit":"hour"', 1, true), out)
    assert.truthy(out:find('"status":"confirmed"', 1, true), out)
    assert.truthy(out:find('"payment_method":"credits"', 1, true), out)
    -- The Data Hub as CSV, the policy uploaded, its history, both reloads.
    assert.truthy(out:find("tenant_id,name,month,", 1, true), out)
    assert.truthy(out:find('"kind":"pricing","version":1', 1, true), out)
    assert.truthy(out:find('"reloaded":2', 1, true), out)
    assert.truthy(out:find(("sent SIGHUP to allotd %d"):format(env.pid), 1, true), out)
    assert.truthy(out:find("ok: every invariant holds", 1, true), out)
    -- The console, attached and on the file: the wallet, the candidate
    -- quote (peak_surcharge.lua read by readfile) with money in its
    -- currency, the booking just made, and help.
    local _, consoles = out:gsub("Globals\n", "")
    assert.equal(2, consoles, out)
    assert.truthy(out:find("credits%.amount%s+[%d.]+ h\n"), out)
    assert.truthy(out:find("money%.amount%s+GBP %d+%.%d%d\n"), out)
    assert.truthy(out:find("\n  bkg_%d+%s"), out)
    -- SIGHUP reached the server through its pid file (handled apart from
    -- the requests: its line may come a little after the script ends).
    local deadline, said = os.time() + 30, false
    repeat
      said = env:server_log():find("SIGHUP: 2 building policy sets reloaded", 1, true) ~= nil
      if not said then sh("sleep 0.05") end
    until said or os.time() > deadline
    assert.truthy(said, env:server_log())
  end)

  it("can be run again: the booking replays instead of failing", function()
    local script = tour_script()
    write_file(dir .. "/tour.sh", script)
    local out, err, code = run(dir, env_prefix() .. " sh tour.sh")
    assert.equal(0, code, ("the second run failed:\n%s\n%s"):format(out, err))
    assert.truthy(out:find('"status":"confirmed"', 1, true), out)
  end)

  it("runs the Lua module example with the package.cpath it documents", function()
    local code_block
    for _, b in ipairs(blocks) do
      if b.lang == "lua" and b.text:find('require "allot"', 1, true) then code_block = b.text end
    end
    assert.truthy(code_block, "the tour has no Lua module example")
    write_file(dir .. "/module.lua", code_block .. "\n")
    -- In the sanitizer build the module needs the ASan runtime loaded first
    -- (lua5.4 is not instrumented).
    local rt = os.getenv("ALLOT_ASAN_RUNTIME")
    local lua = (rt and rt ~= "") and ("LD_PRELOAD=" .. q(rt) .. " lua5.4") or "lua5.4"
    -- Without the documented cpath line, require fails: the line matters.
    local out, err, code = run(dir, ("cd %s && ALLOT_POLICIES=%s %s module.lua")
      :format(q(dir), q(absolute(SOURCE) .. "/policies"), lua))
    assert.equal(0, code, err)
    assert.equal("1.5\t7500\n", out)
    write_file(dir .. "/module_bare.lua", (code_block:gsub("package%.cpath = [^\n]*\n", "")))
    _, err, code = run(dir, ("cd %s && LUA_CPATH='/nonexistent/?.so' lua5.4 module_bare.lua")
      :format(q(dir)))
    assert.not_equal(0, code)
    assert.truthy(err:find("module 'allot' not found", 1, true), err)
    -- The LUA_CPATH way the README gives works too.
    out, err, code = run(dir, ("cd %s && ALLOT_POLICIES=%s LUA_CPATH='build/?.so;;' "
      .. "%s module_bare.lua"):format(q(dir), q(absolute(SOURCE) .. "/policies"), lua))
    assert.equal(0, code, err)
    assert.equal("1.5\t7500\n", out)
  end)
end)
