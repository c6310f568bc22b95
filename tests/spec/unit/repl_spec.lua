-- `allot repl`, the admin console, driven as a user drives it: piped
-- scripts, a real pseudo-terminal (tmux) for readline, completion, Ctrl-C
-- and Ctrl-D, and attached to a running allotd over HTTP.
local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."
local ALLOT = BUILD .. "/allot"
local POLICIES = SOURCE .. "/policies"
local NOW = "2026-01-01T00:00:00Z"
local WAIT_S = 10

local function sh(cmd)
    local ok = os.execute(cmd)
    return ok == true or ok == 0
end

local function q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local tmpdir = require("tmpdir").new

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

local sleep = require("socket").sleep

local clock = require("socket").gettime

-- Runs `allot repl <flags>` with `script` on stdin.  Returns stdout, stderr
-- and the exit code.
local function piped(dir, flags, script, env)
    write_file(dir .. "/in.lua", script)
    local cmd = ("%s %s repl %s < %s 2> %s"):format(env or "", q(ALLOT), flags,
                                                    q(dir .. "/in.lua"), q(dir .. "/err"))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, read_file(dir .. "/err") or "", code
end

local function db_flags(dir)
    return ("--db %s --create --policies %s --now %s"):format(q(dir .. "/a.db"), q(POLICIES), NOW)
end

-- A building, a tenant, a user, a room at 1 hour credit per hour and 10
-- monthly hours: bld_1, ten_1, usr_1, res_1, alc_1.
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
return b.id, t.id, u.id, r.id, a.id
]]

-- A candidate pricing policy: 3 hour credits per hour.
local CANDIDATE = {
    "src = [[",
    "local M = {}",
    "function M.price(ctx)",
    "  local m = ctx.booking.minutes",
    "  return {credits = 3000 * m // 60, unit = \"hour\", money = 7000 * m // 60,",
    "          money_before_discount = 7000 * m // 60}",
    "end",
    "return M",
    "]]",
}

local QUOTE_ARGS = '{resource_id = "res_1", user_id = "usr_1", start = "2026-01-05T09:00:00Z", '
                   .. '["end"] = "2026-01-05T11:00:00Z"}'

describe("allot repl with piped input", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() sh("rm -rf " .. q(dir)) end)

    it("runs each line, prints records and tables, and prints no prompt", function()
        local out, err, code = piped(dir, db_flags(dir), SEED .. [[
return db:me()
wallet("usr_1")
verify()
]])
        assert.equal("", err)
        assert.equal(0, code)
        assert.truthy(out:find("bld_1\nten_1\nusr_1\nres_1\nalc_1\n", 1, true))
        assert.truthy(out:find("role%s+super_admin"))
        assert.truthy(out:find("name%s+console"))
        -- The wallet's lots as a table: a header, a rule, a row.
        assert.truthy(out:find("lots:\n  id%s+allocation_id%s+balance"))
        assert.truthy(out:find("\n  lot_1%s+alc_1%s+10 h%s+10 h"))
        assert.truthy(out:find("ok%s+true"))
        assert.falsy(out:find("allot>", 1, true))
        assert.falsy(out:find("help()", 1, true))
    end)

    it("quotes under a candidate policy without activating it", function()
        local out, err, code = piped(dir, db_flags(dir), SEED .. table.concat(CANDIDATE, "\n")
            .. "\nquote(" .. QUOTE_ARGS .. ", {candidate = {kind = \"pricing\", source = src}})"
            .. "\nquote" .. QUOTE_ARGS .. "\npolicies(\"bld_1\")"
            .. "\nreturn 'activate'"
            .. "\ndb:call(\"policies.put\", {building_id = \"bld_1\", kind = \"pricing\","
            .. " source = src})"
            .. "\nquote" .. QUOTE_ARGS .. "\n")
        assert.equal("", err)
        assert.equal(0, code)
        local first = out:find("credits%.amount%s+6 h\n")
        local second = out:find("credits%.amount%s+2 h\n")
        local activated = out:find("\nactivate\n", 1, true)
        assert.truthy(first, out)
        assert.truthy(second and second > first, out)
        assert.truthy(out:sub(1, activated):find("pricing%s+default:"), out)
        -- Once uploaded, the same version prices every quote.
        assert.truthy(out:find("credits%.amount%s+6 h\n", activated), out)
    end)

    it("continues unfinished statements and reports a raised error in the exit code", function()
        local out, err, code = piped(dir, db_flags(dir), [[
function double(x)
  return 2 * x
end
double(21)
error("boom")
1 + 1
]])
        assert.equal("42\n2\n", out)
        assert.equal("error: stdin:1: boom\n", err)
        assert.equal(1, code)
    end)

    it("prints a failed operation as one error line, and exits 1 for it", function()
        local ok_out, _, ok_code = piped(dir, db_flags(dir), SEED .. "db:me()\n")
        assert.truthy(#ok_out > 0)
        assert.equal(0, ok_code)
        local out, _, code = piped(dir, db_flags(dir), SEED .. [[
db:book{resource_id = "res_1", user_id = "usr_1", start = "2026-01-05T09:00:00Z",
        ["end"] = "2026-01-05T20:00:00Z", payment_method = "credits"}
db:call("buildings.get", {id = "bld_99"})
db:call("no.such.op")
]])
        assert.truthy(out:find("\nerror 409 insufficient_credits: [^\n]+\n"), out)
        assert.truthy(out:find("\nerror 404 not_found: [^\n]+\n"), out)
        assert.truthy(out:find("error 404 not_found: no operation 'no.such.op'", 1, true), out)
        assert.equal(1, code)
    end)

    it("refuses a line over 4 KiB and an input ending inside a statement", function()
        local script = ("x"):rep(5000) .. "\n1 + 2\nfor i = 1, 2 do\n"
        local out, err, code = piped(dir, db_flags(dir), script)
        assert.equal("3\n", out)
        assert.truthy(err:find("a line holds at most 4096 bytes", 1, true))
        assert.truthy(err:find("'end' expected near <eof>", 1, true))
        assert.equal(1, code)
    end)

    it("needs exactly one of --db and --url, and says which mistake was made", function()
        local _, err, code = piped(dir, "", "")
        assert.equal(2, code)
        assert.truthy(err:find("allot repl: --db FILE or --url URL is required", 1, true), err)
        assert.truthy(err:find("usage", 1, true))
        _, err, code = piped(dir, db_flags(dir) .. " --url http://127.0.0.1:1 --key k", "")
        assert.equal(2, code)
        assert.truthy(err:find("--db and --url exclude each other", 1, true), err)
        _, err, code = piped(dir, db_flags(dir) .. " --colour", "")
        assert.equal(2, code)
        assert.truthy(err:find("unknown option '--colour'", 1, true), err)
        _, err, code = piped(dir, "--url http://127.0.0.1:1", "", "ALLOT_KEY=")
        assert.equal(2, code)
        assert.truthy(err:find("--url needs --key KEY", 1, true), err)
    end)

    it("shows money in its currency and credits in their unit, values staying numbers",
       function()
        local out, err, code = piped(dir, db_flags(dir), SEED .. [[
c = db:allocate{tenant_id = "ten_1", building_ids = {"bld_1"}, description = "coins",
  unit = "coin", lines = {{scope = "all", amount = 12.5}}, targeting = {type = "all"},
  pool = "shared", schedule = {start = "2026-01-01", recurrence = "none"}}
quote]] .. QUOTE_ARGS .. [[

wallet("usr_1")
q = quote]] .. QUOTE_ARGS .. [[

return q.money.amount, q.credits.amount, math.type(q.money.amount)
]])
        assert.equal("", err)
        assert.equal(0, code)
        -- 2 hours at 7000 cents an hour and 1 hour credit an hour.
        assert.truthy(out:find("money%.amount%s+USD 140%.00\n"), out)
        assert.truthy(out:find("money%.before_discount%s+USD 140%.00\n"), out)
        assert.truthy(out:find("credits%.amount%s+2 h\n"), out)
        assert.truthy(out:find("credits%.balance_after%s+8 h\n"), out)
        -- The wallet's lots in their units, figures aligned right.
        assert.truthy(out:find("\n  lot_1%s+alc_1%s+10 h%s+10 h"), out)
        assert.truthy(out:find("\n  lot_2%s+alc_2%s+12%.500 coins%s+12%.500 coins"), out)
        assert.truthy(out:find("\n%s+10 h  hour"), out)
        assert.truthy(out:find("\n%s*12%.500 coins  coin"), out)
        -- What a command returns is still the engine's plain number.
        assert.truthy(out:find("\n14000\n2\ninteger\n$"), out)
    end)

    it("cuts a wide cell after a whole word, with an ellipsis, and fits $COLUMNS", function()
        local script = [[
return {{id = "a", text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"},
        {id = "b", text = "short"}}
]]
        local out, err, code = piped(dir, db_flags(dir), script)
        assert.equal("", err)
        assert.equal(0, code)
        -- 40 columns at most: cut after "eta", never inside "theta".
        assert.truthy(out:find("\na   alpha beta gamma delta epsilon zeta eta\u{2026}\n", 1,
                               true), out)
        out = piped(dir, db_flags(dir), script, "COLUMNS=30")
        for line in out:gmatch("[^\n]+") do
            assert.truthy(#line <= 30 + 2, out) -- the ellipsis is 3 bytes, 1 column
        end
        assert.truthy(out:find("\na   alpha beta gamma delta\u{2026}\n", 1, true), out)
    end)

    it("suggests the name meant when one is misspelt", function()
        local out, err, code = piped(dir, db_flags(dir), SEED .. [[
db:bookngs{}
walet("usr_1")
dbb:me()
allot.opn{}
db:call("booking.list")
db:xyzzy_qwerty()
]])
        assert.equal(1, code)
        assert.truthy(err:find("(method 'bookngs')\ndid you mean db:bookings?\n", 1, true), err)
        assert.truthy(err:find("(global 'walet')\ndid you mean wallet?\n", 1, true), err)
        assert.truthy(err:find("(global 'dbb')\ndid you mean db?\n", 1, true), err)
        assert.truthy(err:find("(field 'opn')\ndid you mean allot.open?\n", 1, true), err)
        assert.truthy(out:find("no operation 'booking.list'\ndid you mean \"bookings.list\"?\n",
                               1, true), out)
        -- Nothing close: no suggestion.
        local last = "(method 'xyzzy_qwerty')\n"
        assert.equal(last, err:sub(-#last), err)
    end)

    it("takes help, exit and quit without parentheses", function()
        local out, err, code = piped(dir, db_flags(dir), "help\nexit\nprint('not run')\n")
        assert.equal("", err)
        assert.equal(0, code)
        assert.truthy(out:find("\nGlobals\n", 1, true), out)
        assert.falsy(out:find("not run", 1, true), out)
        assert.falsy(out:find("function: ", 1, true), out)
        out, _, code = piped(dir, db_flags(dir), "quit\nprint('not run')\n")
        assert.equal("", out)
        assert.equal(0, code)
        out, _, code = piped(dir, db_flags(dir), "print(1)\nexit(3)\nprint(2)\n")
        assert.equal("1\n", out)
        assert.equal(3, code)
        -- A global of the user's own named help is theirs.
        out = piped(dir, db_flags(dir), "help = 41 + 1\nhelp\n")
        assert.equal("42\n", out)
    end)

    it("lists every operation the server routes in help() (and so for Tab)", function()
        local out = piped(dir, db_flags(dir), "help()\n")
        local routes = io.popen(BUILD .. "/allotd --routes"):read("a")
        local n = 0
        for op in routes:gmatch('"op": "([%w_.]+)"') do
            n = n + 1
            assert.truthy(out:find(op, 1, true), op .. " is missing from help()")
        end
        assert.is_true(n > 30)
    end)

    it("lists in help() only what works in the mode it runs in", function()
        local out = piped(dir, db_flags(dir), "help()\n")
        assert.truthy(out:find('db:set_clock("2026-02-01T00:00:00Z")', 1, true), out)
        assert.truthy(out:find("db:now()", 1, true), out)
        -- Its example file exists, and readfile reads it.
        local example = out:match('readfile%("(policies/[^"]+)"%)')
        assert.equal("policies/examples/peak_surcharge.lua", example)
        local text = piped(dir, db_flags(dir), ("return #readfile(%q) > 0\n")
                           :format(SOURCE .. "/" .. example))
        assert.equal("true\n", text)
        out = piped(dir, ("--db %s --policies %s"):format(q(dir .. "/a.db"), q(POLICIES)),
                    "help()\n")
        assert.falsy(out:find("set_clock", 1, true), out)
        assert.truthy(out:find("db:now()", 1, true), out)
    end)
end)

-- ---------- a real terminal ----------

local function has_tmux()
    return sh("command -v tmux > /dev/null 2>&1")
end

local Term = {}
Term.__index = Term

-- Starts `allot repl` in a detached tmux session on a private server (its
-- own socket, so the user's tmux is never touched), with HOME in `dir` for
-- the history file.
local sessions = 0
local function term_start(dir)
    -- A new socket each time: a server just killed may still hold the old one.
    sessions = sessions + 1
    local self = setmetatable({ sock = ("%s/tmux%d.sock"):format(dir, sessions), dir = dir }, Term)
    local cmd = ("HOME=%s %s repl %s; echo \"[exited $?]\"; sleep 60"):format(
        q(dir), q(ALLOT), db_flags(dir))
    assert(sh(("tmux -S %s -f /dev/null new-session -d -s repl -x 200 -y 50 %s"):format(
        q(self.sock), q(cmd))))
    self:wait("help for a guide")
    -- and the first prompt: Term:run counts prompts before typing, and one
    -- not drawn yet would be taken for the command's own.
    self:wait("allot> ")
    return self
end

function Term:tmux(args)
    return ("tmux -S %s %s"):format(q(self.sock), args)
end

function Term:screen()
    local p = assert(io.popen(self:tmux("capture-pane -p -J -t repl -S -3000")))
    local s = p:read("a")
    p:close()
    return s
end

local function count(s, text)
    local n, at = 0, 1
    while true do
        local i, j = s:find(text, at, true)
        if not i then return n end
        n, at = n + 1, j + 1
    end
end

-- Waits until `text` shows at least `times` times (default 1).
function Term:wait(text, times)
    local deadline = clock() + WAIT_S
    local screen
    repeat
        screen = self:screen()
        if count(screen, text) >= (times or 1) then
            return screen
        end
        sleep(0.05)
    until clock() > deadline
    error(("timed out waiting for %q; the screen:\n%s"):format(text, screen), 2)
end

-- Types text literally (no key names), without Enter.
function Term:type(text)
    assert(sh(self:tmux("send-keys -t repl -l " .. q(text))))
end

function Term:keys(names)
    assert(sh(self:tmux("send-keys -t repl " .. names)))
end

-- Types a line and Enter, then waits for `expect` to show once more.
function Term:run(line, expect)
    local before = expect and count(self:screen(), expect) or 0
    self:type(line)
    self:keys("Enter")
    if expect then
        return self:wait(expect, before + 1)
    end
end

function Term:stop()
    sh(self:tmux("kill-server") .. " 2> /dev/null")
end

local describe_terminal = has_tmux() and describe or function(name)
    pending(name .. ": tmux is not installed (scripts/deps.sh installs it)")
end

describe_terminal("allot repl on a terminal", function()
    local dir, term
    setup(function()
        dir = tmpdir()
        local _, err, code = piped(dir, db_flags(dir), SEED)
        assert(code == 0, err)
    end)
    teardown(function() sh("rm -rf " .. q(dir)) end)
    before_each(function() term = term_start(dir) end)
    after_each(function()
        if term then term:stop() end
        term = nil
    end)

    it("quotes under a candidate pricing policy typed over several lines", function()
        term:run(CANDIDATE[1], "...> ")
        for i = 2, #CANDIDATE - 1 do
            term:run(CANDIDATE[i], "...> " .. CANDIDATE[i])
        end
        term:run(CANDIDATE[#CANDIDATE], "allot> ")
        local screen = term:run("quote(" .. QUOTE_ARGS .. ", {candidate = {kind = \"pricing\", "
                                .. "source = src}})", "allot> ")
        assert.truthy(screen:find("credits%.amount%s+6 h\n"), screen)
        assert.truthy(screen:find("credits%.balance_after%s+4 h\n"), screen)
        assert.truthy(screen:find("money%.amount%s+USD 140%.00\n"), screen)
        -- The active policy is still the default: 1 credit per hour.
        screen = term:run("quote" .. QUOTE_ARGS, "allot> ")
        assert.truthy(screen:find("credits%.amount%s+2 h\n"), screen)
        screen = term:run('policies("bld_1")', "allot> ")
        assert.truthy(screen:find("pricing%s+default:"), screen)
    end)

    it("runs a function defined over several lines", function()
        term:run("function double(x)", "...> ")
        term:run("  return 2 * x", "...>   return 2 * x")
        term:run("end", "...> end")
        local screen = term:run("double(21)", "\n42\n")
        assert.truthy(screen:find("allot> double%(21%)\n42\n"), screen)
    end)

    it("completes db: methods and operation names with Tab", function()
        term:type("db:wal")
        term:keys("Tab")
        term:wait("allot> db:wallet")
        -- Wait for the next prompt: the whole table has been printed then.
        local screen = term:run('{user_id = "usr_1"}', "allot> ")
        assert.truthy(screen:find("allot> db:wallet{user_id = \"usr_1\"}\n", 1, true), screen)
        assert.truthy(screen:find("lot_1%s+alc_1%s+10"), screen)
        term:type('db:call("quo')
        term:keys("Tab")
        term:wait('allot> db:call("quotes.create')
        term:keys("C-c")
        term:type("hel")
        term:keys("Tab")
        term:wait("allot> help")
    end)

    it("fits a wide table to the terminal's 200 columns", function()
        local screen = term:run('t = {} for c = 1, 8 do t[("col%d"):format(c)] = '
                                .. '("word "):rep(12) end return {t, t}', "allot> ")
        local rows = 0
        for line in screen:gmatch("[^\n]+") do
            if line:find("^word") then
                rows = rows + 1
                assert.truthy(utf8.len(line) <= 200, line)
                assert.truthy(line:find("word\u{2026}", 1, true), line)
            end
        end
        assert.equal(2, rows, screen)
    end)

    it("prints help()", function()
        local screen = term:run("help()", "allot> ")
        assert.truthy(screen:find("quote({...}, {candidate = ", 1, true), screen)
        assert.truthy(screen:find("db:call(op, args, opts)", 1, true), screen)
        assert.truthy(screen:find("reports.datahub", 1, true), screen)
    end)

    it("prints a bad request as one error line", function()
        local screen = term:run('book{resource_id = "res_1", user_id = "usr_1", '
                                .. 'start = "2026-01-05T09:00:00Z", ["end"] = '
                                .. '"2026-01-05T20:00:00Z", payment_method = "credits"}',
                                "allot> ")
        assert.truthy(screen:find("\nerror 409 insufficient_credits: [^\n]*available\n"), screen)
        screen = term:run('db:call("buildings.get", {id = "bld_42"})', "error 404 not_found")
    end)

    it("clears the line on Ctrl-C and interrupts a running command", function()
        term:type('error("must not run")')
        term:wait('allot> error("must not run")')
        term:keys("C-c")
        term:wait("^C")
        term:run("1 + 1", "\n2\n")
        -- Ctrl-C once the command is surely running, not while it is typed.
        term:run('print("spinning") while true do end', "\nspinning\n")
        term:keys("C-c")
        term:wait("error: interrupted")
        local screen = term:run("3 * 7", "\n21\n")
        assert.falsy(screen:find("stdin:1: must not run", 1, true), screen)
    end)

    it("leaves on Ctrl-D and keeps the history", function()
        os.remove(dir .. "/.allot_history")
        term:run("x = 6 * 7", "allot> ")
        term:run("x", "\n42\n")
        term:keys("C-d")
        term:wait("[exited 0]")
        local history = read_file(dir .. "/.allot_history") or ""
        assert.truthy(history:find("\nx = 6 %* 7\n#%d+\nx\n"), history:sub(-300))
    end)

    it("leaves on exit typed without parentheses", function()
        term:run("exit", nil)
        term:wait("[exited 0]")
    end)

    it("keeps a statement of several lines as one history entry", function()
        os.remove(dir .. "/.allot_history")
        term:run("function triple(x)", "...> ")
        term:run("  return 3 * x", "...>   return 3 * x")
        term:run("end", "allot> ")
        term:run("triple(5)", "\n15\n")
        -- Up twice brings back the whole function: one Enter defines it again.
        term:run("triple = nil", "allot> ")
        term:keys("Up Up Up")
        term:keys("Enter")
        term:run("triple(7)", "\n21\n")
        term:keys("C-d")
        term:wait("[exited 0]")
        local history = read_file(dir .. "/.allot_history") or ""
        assert.truthy(history:find("\nfunction triple%(x%)\n  return 3 %* x\nend\n#%d+\n"),
                      history)
        -- A new console reads it back whole.
        term:stop()
        term = term_start(dir)
        term:run("triple = nil", "allot> ")
        term:keys("Up Up Up")
        term:keys("Enter")
        term:run("triple(2)", "\n6\n")
    end)
end)

-- ---------- attached to allotd ----------

local has_allotd = io.open(BUILD .. "/allotd", "rb")
if has_allotd then has_allotd:close() end
local describe_attached = has_allotd and describe or function(name)
    pending(name .. ": no allotd in the build")
end

describe_attached("allot repl attached to allotd", function()
    local env, dir
    setup(function()
        env = require("http_env").start()
        dir = tmpdir()
    end)
    teardown(function()
        if env then assert.is_true(env:stop()) end
        if dir then sh("rm -rf " .. q(dir)) end
    end)

    local function remote(script)
        return piped(dir, "--url " .. env.url, script, "ALLOT_KEY=" .. q(env.key))
    end

    it("acts as the key's principal", function()
        local out, err, code = piped(dir, ("--url %s --key %s"):format(env.url, q(env.key)),
                                     "return db:me()\n")
        assert.equal("", err)
        assert.equal(0, code)
        assert.truthy(out:find("role%s+super_admin"), out)
        assert.truthy(out:find("id%s+key_1"), out)
    end)

    it("offers the same methods and answers in the same shapes", function()
        local out, err, code = remote(SEED .. table.concat(CANDIDATE, "\n")
            .. "\nquote(" .. QUOTE_ARGS .. ", {candidate = {kind = \"pricing\", source = src}})"
            .. "\nwallet(\"usr_1\")"
            .. "\nbook{resource_id = \"res_1\", user_id = \"usr_1\", start = "
            .. "\"2026-01-05T09:00:00Z\", [\"end\"] = \"2026-01-05T20:00:00Z\", "
            .. "payment_method = \"credits\"}"
            .. "\nlocal r, e = db:call(\"buildings.get\", {id = \"bld_9\"})"
            .. " return e.status, e.code\n")
        assert.equal("", err)
        assert.equal(1, code) -- the refused book{} printed its error line
        assert.truthy(out:find("bld_1\nten_1\nusr_1\nres_1\nalc_1\n", 1, true), out)
        assert.truthy(out:find("credits%.amount%s+6 h\n"), out)
        assert.truthy(out:find("\n  lot_1%s+alc_1%s+10 h%s+10 h"), out)
        assert.truthy(out:find("\nerror 409 insufficient_credits: [^\n]+\n"), out)
        assert.truthy(out:find("\n404\nnot_found\n$"), out)
    end)

    it("verifies, lists policy history and reloads through the server", function()
        local out, err, code = remote("return verify()\n"
            .. "return #db:call(\"policies.history\", {building_id = \"bld_1\", kind = \"pricing\"}).data\n"
            .. "return db:call(\"policies.reload\").reloaded\n")
        assert.equal("", err)
        assert.equal(0, code)
        assert.truthy(out:find("^ok%s+true\n"), out)
        assert.truthy(out:find("\n0\n1\n$"), out)
    end)

    it("lists in help only what works attached to a server", function()
        local out, err, code = remote("help\n")
        assert.equal("", err)
        assert.equal(0, code)
        assert.truthy(out:find("as{key = <another API key>}", 1, true), out)
        assert.falsy(out:find("set_clock", 1, true), out)
        assert.falsy(out:find("db:now", 1, true), out)
    end)

    it("refuses a key the server does not know", function()
        local _, err, code = piped(dir, "--url " .. env.url .. " --key allot_nope", "db:me()\n")
        assert.equal(1, code)
        assert.truthy(err:find("error 401 unauthorized", 1, true), err)
    end)
end)
