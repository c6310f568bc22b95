-- tests/helpers/policy_env.lua - runs policy modules outside the engine.
--
-- A pure-Lua stand-in for the engine's policy sandbox (engine/policy_host.h):
-- the same allow-listed globals, a read-only `allot` helper table with the
-- engine's semantics, writes to globals raise, and (stricter than the engine)
-- reading an undefined global raises too, so a typo fails the spec at once.
--
--   local policy_env = dofile(root .. "/tests/helpers/policy_env.lua")
--   local mod = policy_env.load(root .. "/policies/default/pricing.lua")
--   local failures = policy_env.run_examples(mod, "price")
--   local ok, where = policy_env.deep_equal(a, b)

local M = {}

local MILLI_MAX = 1000000000000000 -- 10^12 credits, as AMOUNT_MILLI_MAX

local function check_int(v, what)
    if math.type(v) ~= "integer" then
        error("allot." .. what .. ": integer expected, got " .. (math.type(v) or type(v)), 3)
    end
end

-- allot.milli(x): a decimal number with at most 3 fractional digits ->
-- integer thousandths.  A float is accepted only when it is exactly the
-- nearest double of such a decimal (the rule of engine/amount.c).
local function milli(x)
    if math.type(x) == "integer" then
        if x > MILLI_MAX // 1000 or x < -(MILLI_MAX // 1000) then
            error("allot.milli: amount out of range", 2)
        end
        return x * 1000
    end
    if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then
        error("allot.milli: number expected", 2)
    end
    if x > MILLI_MAX / 1000 or x < -MILLI_MAX / 1000 then
        error("allot.milli: amount out of range", 2)
    end
    local r = math.floor(x * 1000 + 0.5)
    if r / 1000 ~= x then
        error("allot.milli: more than 3 decimals in " .. string.format("%.17g", x), 2)
    end
    return math.tointeger(r)
end

local function ceil_div(a, b)
    check_int(a, "ceil_div")
    check_int(b, "ceil_div")
    if a < 0 or b <= 0 then
        error("allot.ceil_div: non-negative dividend and positive divisor expected", 2)
    end
    return (a + b - 1) // b
end

local function floor_div(a, b)
    check_int(a, "floor_div")
    check_int(b, "floor_div")
    if a < 0 or b <= 0 then
        error("allot.floor_div: non-negative dividend and positive divisor expected", 2)
    end
    return a // b
end

local allot_impl = { milli = milli, ceil_div = ceil_div, floor_div = floor_div }

M.allot = setmetatable({}, {
    __index = allot_impl,
    __newindex = function(_, k)
        error("allot is read-only (" .. tostring(k) .. ")", 2)
    end,
    __metatable = "locked",
})

local safe = {
    math = math, string = string, table = table, utf8 = utf8,
    pairs = pairs, ipairs = ipairs, type = type, tostring = tostring,
    tonumber = tonumber, error = error, assert = assert, select = select,
    next = next, rawget = rawget, rawequal = rawequal, rawlen = rawlen,
    setmetatable = setmetatable, getmetatable = getmetatable, pcall = pcall,
}

-- A fresh sandbox-like environment for one chunk.
function M.new()
    return setmetatable({ allot = M.allot }, {
        __index = function(_, k)
            local v = safe[k]
            if v == nil then
                error("read of undefined global '" .. tostring(k) .. "'", 2)
            end
            return v
        end,
        __newindex = function(_, k)
            error("global " .. tostring(k), 2)
        end,
    })
end

-- Loads a policy file (text only) in a fresh environment and returns the
-- table it returns; raises with the file name on any problem.
function M.load(path)
    local chunk, err = loadfile(path, "t", M.new())
    if not chunk then
        error(err, 2)
    end
    local mod = chunk()
    if type(mod) ~= "table" then
        error(path .. ": a policy module must return a table", 2)
    end
    return mod
end

-- Deep equality as the engine checks `expect`: tables recursively (same key
-- sets), numbers by value and by math.type, everything else by ==.
-- Returns true, or false and the path of the first difference.
function M.deep_equal(a, b, path)
    path = path or "result"
    if type(a) ~= type(b) then
        return false, path .. ": " .. type(a) .. " vs " .. type(b)
    end
    if type(a) == "number" then
        if math.type(a) ~= math.type(b) then
            return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b)
        end
        if a ~= b then
            return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
        end
        return true
    end
    if type(a) ~= "table" then
        if a ~= b then
            return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
        end
        return true
    end
    for k, v in pairs(a) do
        local ok, where = M.deep_equal(v, b[k], path .. "." .. tostring(k))
        if not ok then
            return false, where
        end
    end
    for k, v in pairs(b) do
        if a[k] == nil then
            return false, path .. "." .. tostring(k) .. ": nil vs " .. tostring(v)
        end
    end
    return true
end

-- True when every number inside v (recursively) is an integer.
function M.integers_only(v)
    if type(v) == "number" then
        return math.type(v) == "integer"
    end
    if type(v) == "table" then
        for _, x in pairs(v) do
            if not M.integers_only(x) then
                return false
            end
        end
    end
    return true
end

-- Runs a module's `examples` against mod[fname]; returns a list of failure
-- messages (empty when all pass) and the number of examples run.
function M.run_examples(mod, fname)
    local failures = {}
    local list = mod.examples
    if type(list) ~= "table" then
        return { "module has no examples list" }, 0
    end
    for i, ex in ipairs(list) do
        local ok, got = pcall(mod[fname], ex.ctx)
        if not ok then
            failures[#failures + 1] = "example " .. i .. " raised: " .. tostring(got)
        else
            local same, where = M.deep_equal(got, ex.expect)
            if not same then
                failures[#failures + 1] = "example " .. i .. " differs at " .. where
            end
        end
    end
    return failures, #list
end

-- Calls fn(...) and returns the number of Lua VM instructions it executed
-- (the engine charges its 1,000,000 budget in the same unit) and its results.
function M.count_instructions(fn, ...)
    local n = 0
    debug.sethook(function() n = n + 1 end, "", 1)
    local results = table.pack(pcall(fn, ...))
    debug.sethook()
    if not results[1] then
        error(results[2], 2)
    end
    return n, table.unpack(results, 2, results.n)
end

return M
