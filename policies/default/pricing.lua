-- policies/default/pricing.lua - the default pricing policy.
--
-- price(ctx) -> { money, money_before_discount, credits, unit } | { error = msg }
--
-- Reads the resource's `pricing` object (see policies/README.md, "Pricing
-- configuration"):
--
--   { "money":   { "per_hour": 7000 } | null,          -- minor units per hour
--     "credits": { "unit": "hour" | "coin",             -- default "hour"
--                  "model": "fixed" | "block" | "tiered", -- default "fixed"
--                  "per_hour": 1,                       -- fixed model (hours: 1 when absent)
--                  "blocks": [ { "minutes": 240, "price": 3 }, ... ],  -- block
--                  "tiers":  [ { "up_to_minutes": 120, "per_hour": 1 },
--                              { "per_hour": 0.5 } ],   -- tiered
--                  "peak":   [ { "days": [1,2,3,4,5], "from": "09:00",
--                                "to": "17:00", "per_hour": 2 } ], -- fixed only
--                  "increment_minutes": 30,
--                  "max": 300 } | null,
--     "increment_minutes": 15 }                         -- optional
--
-- Rules:
-- * Increment: credits.increment_minutes, else the top-level
--   increment_minutes, else 15.  The duration must be a positive multiple of
--   it or the whole booking is refused (money too).
-- * fixed: per_hour * minutes / 60.  With `peak` windows, minutes inside a
--   window (local time, window's weekdays, 1 = Monday) cost the window's
--   per_hour instead; the first listed window wins where windows overlap.
-- * block: the cheapest block whose minutes cover the duration; a duration
--   longer than the longest block pays that block once per whole multiple of
--   its length and the remainder is priced the same way.
-- * tiered (graduated): minutes up to the first tier's up_to_minutes at its
--   rate, the next minutes up to the second bound at the second rate, ...;
--   the last tier has no bound and takes the rest.
-- * Credits are summed in exact milli-minutes and rounded UP to a whole milli
--   once; `max` caps the result.  A discount never changes credits.
-- * Money: per_hour * minutes / 60 rounded half up; the discount
--   (discount_pm, thousandths of a percent) is floor(before * pm / 100000).
--   A credit_only resource has no money price.
-- All results are integers: credits in milli, money in minor units.

local M = {}

-- Policies run on every quote, under the sandbox's count hook, which makes
-- every VM instruction cost some 25 machine instructions more; so the
-- default keeps its common path short:
-- * A refusal is returned, never raised: each check returns nil and the
--   message, and price() turns it into { error = message }.  No pcall, no
--   error object.
-- * Library functions are locals: a global is two table lookups (the
--   sandbox's _ENV, then the read-only library table), a local one register.
-- * The usual shape of a value (an integer in range, a table) is tested
--   inline; the helper that tells every other case apart, and words the
--   refusal, runs only when that test fails.
local milli_of = allot.milli
local type, pcall, next, ipairs, pairs, tostring = type, pcall, next, ipairs, pairs, tostring
local tointeger, math_type = math.tointeger, math.type
local byte, sub = string.byte, string.sub

local DEFAULT_INCREMENT_MINUTES = 15
local CREDIT_CONFIG_MAX = 1000000000        -- credits per hour / per block / max
local MONEY_PER_HOUR_MAX = 1000000000000    -- minor units per hour
local MINUTES_MAX = 527040                  -- 366 days: nothing longer is priced
local PERCENT_PM = 100000                   -- 100 % in thousandths of a percent
local MINUTES_PER_DAY = 1440
local EMPTY = {} -- stands for an absent object; never written

-- JSON null may reach a policy as nil or as a light userdata sentinel.
local function absent(v)
    return v == nil or type(v) == "userdata"
end

local function show(v)
    if type(v) == "string" then
        return '"' .. sub(v, 1, 40) .. '"'
    elseif type(v) == "number" then
        return tostring(v)
    end
    return type(v)
end

-- v as an integer in [low, high] (2.0 counts as 2), or nil and the refusal.
local function whole(v, what, low, high)
    local i = type(v) == "number" and tointeger(v) or nil
    if i == nil then
        return nil, what .. " must be a whole number (got " .. show(v) .. ")"
    end
    if i < low or i > high then
        return nil, what .. " must be from " .. low .. " to " .. high .. " (got " .. i .. ")"
    end
    return i
end

-- A credit amount from the configuration (decimal, <= 3 decimals) in milli,
-- or nil and the refusal.
local function credit_milli(v, what)
    if type(v) ~= "number" or v ~= v then
        return nil, what .. " must be a number (got " .. show(v) .. ")"
    end
    if v < 0 then
        return nil, what .. " must not be negative"
    end
    if v > CREDIT_CONFIG_MAX then
        return nil, what .. " must be at most " .. CREDIT_CONFIG_MAX
    end
    if math_type(v) == "integer" then
        return v * 1000 -- what allot.milli gives for a whole number
    end
    local ok, m = pcall(milli_of, v)
    if not ok or math_type(m) ~= "integer" then
        return nil, what .. " must have at most 3 decimals (got " .. show(v) .. ")"
    end
    return m
end

-- v as a table, nil when absent, or nil and the refusal.
local function object(v, what)
    if absent(v) then
        return nil
    end
    if type(v) ~= "table" then
        return nil, what .. " must be an object or null"
    end
    return v
end

-- v as a list (keys exactly 1..n), or nil and the refusal.
local function list(v, what)
    if type(v) ~= "table" then
        return nil, what .. " must be a list"
    end
    local n = 0
    for _ in pairs(v) do
        n = n + 1
    end
    if n ~= #v then
        return nil, what .. " must be a list"
    end
    return v
end

-- "HH:MM" -> minute of the day ("24:00" is the end of the day), or nil and
-- the refusal.
local function clock_minutes(v, what)
    local function bad()
        return nil, what .. ' must be a time "HH:MM" (got ' .. show(v) .. ")"
    end
    if type(v) ~= "string" or #v ~= 5 or byte(v, 3) ~= 58 then
        return bad()
    end
    local digits = {}
    for _, pos in ipairs({ 1, 2, 4, 5 }) do
        local d = byte(v, pos) - 48
        if d < 0 or d > 9 then
            return bad()
        end
        digits[#digits + 1] = d
    end
    local hour = digits[1] * 10 + digits[2]
    local minute = digits[3] * 10 + digits[4]
    if minute > 59 or hour > 24 or (hour == 24 and minute ~= 0) then
        return bad()
    end
    return hour * 60 + minute
end

-- The peak windows, checked, or nil and the refusal.
local function parse_peak(peak)
    local entries, why = list(peak, "pricing.credits.peak")
    if why then
        return nil, why
    end
    local windows = {}
    for i, w in ipairs(entries) do
        local where = "pricing.credits.peak[" .. i .. "]"
        if type(w) ~= "table" then
            return nil, where .. " must be an object"
        end
        local days, day_list = {}, nil
        if absent(w.days) then
            for d = 1, 7 do
                days[d] = true
            end
        else
            day_list, why = list(w.days, where .. ".days")
            if why then
                return nil, why
            end
            for j, d in ipairs(day_list) do
                local day
                day, why = whole(d, where .. ".days[" .. j .. "]", 1, 7)
                if why then
                    return nil, why
                end
                days[day] = true
            end
        end
        local from, to, rate
        from, why = clock_minutes(w.from, where .. ".from")
        if why then
            return nil, why
        end
        to, why = clock_minutes(w.to, where .. ".to")
        if why then
            return nil, why
        end
        if from >= to then
            return nil, where .. ": from must be before to "
                .. "(split a window that crosses midnight in two)"
        end
        rate, why = credit_milli(w.per_hour, where .. ".per_hour")
        if why then
            return nil, why
        end
        windows[i] = { days = days, from = from, to = to, rate = rate }
    end
    return windows
end

-- Sum of rate * minute over local minutes [a, b) of one day with weekday
-- `wday`: the day is cut at every window edge, each piece takes the rate of
-- the first window containing it, else `base`.
local function day_cost(windows, wday, a, b, base)
    local points = { a, b }
    for _, w in ipairs(windows) do
        if w.days[wday] then
            if w.from > a and w.from < b then
                points[#points + 1] = w.from
            end
            if w.to > a and w.to < b then
                points[#points + 1] = w.to
            end
        end
    end
    table.sort(points)
    local total = 0
    for i = 1, #points - 1 do
        local p, q = points[i], points[i + 1]
        if q > p then
            local rate = base
            for _, w in ipairs(windows) do
                if w.days[wday] and w.from <= p and p < w.to then
                    rate = w.rate
                    break
                end
            end
            total = total + rate * (q - p)
        end
    end
    return total
end

-- Milli-minutes of `left` real minutes from local weekday `wday`, minute
-- of the day `at`, walking local days.
local function walk_cost(windows, base, wday, at, left)
    local total = 0
    while left > 0 do
        local stop = math.min(MINUTES_PER_DAY, at + left)
        total = total + day_cost(windows, wday, at, stop, base)
        left = left - (stop - at)
        at = 0
        wday = wday % 7 + 1
    end
    return total
end

-- Milli-minutes of a fixed-rate booking with peak windows, walking local
-- days from local_start; where the zone's offset changes during the
-- booking (booking.local_jump: `after` real minutes from the start, local
-- time moves by `minutes`), the walk goes on from the new local time, so
-- each real minute is priced at the local time it has.  Or nil and the
-- refusal.
local function peak_cost(windows, base, booking, minutes)
    local ls = booking.local_start
    if type(ls) ~= "table" then
        return nil, "peak pricing needs booking.local_start"
    end
    local wday, hour, minute, why
    wday, why = whole(ls.wday, "booking.local_start.wday", 1, 7)
    if why then
        return nil, why
    end
    hour, why = whole(ls.hour, "booking.local_start.hour", 0, 23)
    if why then
        return nil, why
    end
    minute, why = whole(ls.minute, "booking.local_start.minute", 0, 59)
    if why then
        return nil, why
    end
    local at = hour * 60 + minute
    local jump = booking.local_jump
    if type(jump) ~= "table" or type(jump.after) ~= "number" or type(jump.minutes) ~= "number"
        or jump.after < 0 or jump.after >= minutes then
        return walk_cost(windows, base, wday, at, minutes)
    end
    local first = walk_cost(windows, base, wday, at, jump.after)
    -- The local time after the change: days forward or back from the start.
    local later = at + jump.after + jump.minutes
    local days = later // MINUTES_PER_DAY
    return first + walk_cost(windows, base, (wday - 1 + days) % 7 + 1,
                             later - days * MINUTES_PER_DAY, minutes - jump.after)
end

-- Milli-credits of the block model, or nil and the refusal.
local function block_price(cfg, minutes)
    local entries, why = list(cfg.blocks, "pricing.credits.blocks")
    if why then
        return nil, why
    end
    local blocks = {}
    for i, b in ipairs(entries) do
        local where = "pricing.credits.blocks[" .. i .. "]"
        if type(b) ~= "table" then
            return nil, where .. " must be an object"
        end
        local length, price
        length, why = whole(b.minutes, where .. ".minutes", 1, MINUTES_MAX)
        if why then
            return nil, why
        end
        price, why = credit_milli(b.price, where .. ".price")
        if why then
            return nil, why
        end
        blocks[i] = { minutes = length, price = price }
    end
    if #blocks == 0 then
        return nil, "pricing.credits.blocks must hold at least one block"
    end
    -- The cheapest block lasting at least d minutes (nil when none does).
    local function cover(d)
        local best = nil
        for _, b in ipairs(blocks) do
            if b.minutes >= d and (best == nil or b.price < best) then
                best = b.price
            end
        end
        return best
    end
    local longest = 0
    for _, b in ipairs(blocks) do
        longest = math.max(longest, b.minutes)
    end
    local repeats = minutes // longest
    local rest = minutes % longest
    local total = repeats * cover(longest)
    if rest > 0 then
        total = total + cover(rest)
    end
    return total
end

-- Milli-minutes of the tiered model, or nil and the refusal.
local function tiered_cost(cfg, minutes)
    local tiers, why = list(cfg.tiers, "pricing.credits.tiers")
    if why then
        return nil, why
    end
    if #tiers == 0 then
        return nil, "pricing.credits.tiers must hold at least one tier"
    end
    local total = 0
    local done = 0
    for i, t in ipairs(tiers) do
        local where = "pricing.credits.tiers[" .. i .. "]"
        if type(t) ~= "table" then
            return nil, where .. " must be an object"
        end
        local rate, upto
        rate, why = credit_milli(t.per_hour, where .. ".per_hour")
        if why then
            return nil, why
        end
        if i < #tiers then
            upto, why = whole(t.up_to_minutes, where .. ".up_to_minutes", 1, MINUTES_MAX)
            if why then
                return nil, why
            end
            if upto <= done then
                return nil, where .. ".up_to_minutes must be greater than the previous tier's ("
                    .. done .. ")"
            end
        elseif not absent(t.up_to_minutes) then
            return nil, where .. " is the last tier: it takes all remaining minutes "
                .. "and must not have up_to_minutes"
        else
            upto = MINUTES_MAX
        end
        local take = math.max(0, math.min(minutes, upto) - done)
        total = total + rate * take
        done = upto
    end
    return total
end

-- ceil(a / b) for a >= 0, b > 0 (allot.ceil_div's result, without the call).
local function ceil_div(a, b)
    return -(-a // b)
end

-- Milli-credits (the resource has a credit price), or nil and the refusal.
local function credit_price(cfg, booking, minutes)
    local model = cfg.model
    if model == nil then -- the common case first: absent() tells the rest
        model = "fixed"
    elseif absent(model) then
        model = "fixed"
    end
    local peak = cfg.peak
    local has_peak = peak ~= nil and not absent(peak)
        and not (type(peak) == "table" and next(peak) == nil)
    if has_peak and model ~= "fixed" then
        return nil, "pricing.credits.peak is only supported with the fixed model"
    end
    local credits, why
    if model == "fixed" then
        local rate = cfg.per_hour
        if math_type(rate) == "integer" and rate >= 0 and rate <= CREDIT_CONFIG_MAX then
            rate = rate * 1000 -- credit_milli's answer, without the call
        elseif absent(rate) then
            -- Hours: one credit an hour of booking unless the room says
            -- otherwise (PRODUCT.md §2); coins have no such default.
            local unit = cfg.unit
            if unit ~= nil and not absent(unit) and unit ~= "hour" then
                return nil, "pricing.credits.per_hour is required for the fixed model in coins"
            end
            rate = 1000
        else
            rate, why = credit_milli(rate, "pricing.credits.per_hour")
            if why then
                return nil, why
            end
        end
        local cost = rate * minutes
        if has_peak then
            local windows
            windows, why = parse_peak(peak)
            if why then
                return nil, why
            end
            cost, why = peak_cost(windows, rate, booking, minutes)
            if why then
                return nil, why
            end
        end
        credits = ceil_div(cost, 60)
    elseif model == "block" then
        credits, why = block_price(cfg, minutes)
    elseif model == "tiered" then
        credits, why = tiered_cost(cfg, minutes)
        credits = credits and ceil_div(credits, 60)
    else
        return nil, 'pricing.credits.model must be "fixed", "block" or "tiered" (got '
            .. show(model) .. ")"
    end
    if why then
        return nil, why
    end
    local cap = cfg.max
    if cap ~= nil and not absent(cap) then
        cap, why = credit_milli(cap, "pricing.credits.max")
        if why then
            return nil, why
        end
        if cap < credits then
            credits = cap
        end
    end
    return credits
end

-- floor(amount * pm / 100000) without overflow (amount, pm >= 0).
local function part(amount, pm)
    return (amount // PERCENT_PM) * pm + (amount % PERCENT_PM) * pm // PERCENT_PM
end

-- The increment in minutes: the credits', else the top level's, else the
-- default; or nil and the refusal.
local function increment_of(pricing, credits_cfg)
    local increment = credits_cfg and credits_cfg.increment_minutes
    local where = "pricing.credits.increment_minutes"
    if absent(increment) then
        increment, where = pricing.increment_minutes, "pricing.increment_minutes"
    end
    if absent(increment) then
        return DEFAULT_INCREMENT_MINUTES
    end
    return whole(increment, where, 1, MINUTES_PER_DAY)
end

-- booking.minutes when it is not an integer: from start and end when
-- absent, 90.0 as 90, else nil.
local function minutes_of(booking)
    local minutes = booking.minutes
    if absent(minutes) and math_type(booking.start) == "integer"
        and math_type(booking["end"]) == "integer" then
        minutes = (booking["end"] - booking.start) // 60
    end
    return type(minutes) == "number" and tointeger(minutes) or nil
end

-- pricing.money.per_hour when it is not an integer in range: as an
-- integer, or nil and the refusal.
local function money_rate(rate)
    if type(rate) == "number" and rate < 0 then
        return nil, "pricing.money.per_hour must not be negative"
    end
    return whole(rate, "pricing.money.per_hour", 0, MONEY_PER_HOUR_MAX)
end

-- booking.discount_pm when it is not an integer in range: 0 when absent,
-- else as an integer, or nil and the refusal.
local function discount_of(pm)
    if absent(pm) then
        return 0
    end
    return whole(pm, "discount (thousandths of a percent)", 0, PERCENT_PM)
end

-- The price of `minutes` (checked) under the credit and money
-- configurations, or nil and the refusal.
local function amounts(credits_cfg, money_cfg, resource, booking, minutes)
    local credits, unit, money, before, why
    if credits_cfg then
        unit = credits_cfg.unit
        if unit ~= "hour" and unit ~= "coin" then
            if not absent(unit) then
                return nil, 'pricing.credits.unit must be "hour" or "coin" (got '
                    .. show(unit) .. ")"
            end
            unit = "hour"
        end
        credits, why = credit_price(credits_cfg, booking, minutes)
        if why then
            return nil, why
        end
    end
    if money_cfg and resource.credit_only ~= true then
        local rate, pm = money_cfg.per_hour, booking.discount_pm
        if math_type(rate) ~= "integer" or rate < 0 or rate > MONEY_PER_HOUR_MAX then
            rate, why = money_rate(rate)
            if why then
                return nil, why
            end
        end
        if math_type(pm) ~= "integer" or pm < 0 or pm > PERCENT_PM then
            pm, why = discount_of(pm)
            if why then
                return nil, why
            end
        end
        before = (rate * minutes + 30) // 60
        money = pm == 0 and before or before - part(before, pm)
    end
    -- Absent (nil) fields are simply not in the result.
    return { credits = credits, unit = unit, money = money, money_before_discount = before }
end

-- The settings this policy reads, for the check when a resource is saved
-- (ctx.check): a key it would ignore ("money.currency", a typo) is refused
-- there rather than kept without effect.
local KNOWN = {
    [""] = { money = true, credits = true, increment_minutes = true },
    money = { per_hour = true },
    credits = { unit = true, model = true, per_hour = true, blocks = true, tiers = true,
                peak = true, increment_minutes = true, max = true },
    blocks = { minutes = true, price = true },
    tiers = { up_to_minutes = true, per_hour = true },
    peak = { days = true, from = true, to = true, per_hour = true },
}

local function unknown_in(t, known, path)
    if type(t) ~= "table" then
        return nil
    end
    for k in pairs(t) do
        if not known[k] then
            return path .. "." .. tostring(k) .. " is not a setting of the default pricing"
        end
    end
    return nil
end

local function unknown_setting(pricing)
    local why = unknown_in(pricing, KNOWN[""], "pricing")
        or unknown_in(pricing.money, KNOWN.money, "pricing.money")
        or unknown_in(pricing.credits, KNOWN.credits, "pricing.credits")
    local credits = pricing.credits
    for _, list in ipairs({ "blocks", "tiers", "peak" }) do
        local items = type(credits) == "table" and credits[list]
        if why == nil and type(items) == "table" then
            for i, item in ipairs(items) do
                why = why or unknown_in(item, KNOWN[list],
                                        "pricing.credits." .. list .. "[" .. i .. "]")
            end
        end
    end
    return why
end

function M.price(ctx)
    local resource = ctx.resource or EMPTY
    local booking = ctx.booking or EMPTY
    local why
    local pricing = resource.pricing
    if ctx.check and type(pricing) == "table" then
        why = unknown_setting(pricing)
        if why then
            return { error = why }
        end
    end
    if type(pricing) ~= "table" then
        pricing, why = object(pricing, "pricing")
        if why then
            return { error = why }
        end
        pricing = EMPTY
    end
    local money_cfg = pricing.money
    if type(money_cfg) ~= "table" then
        money_cfg, why = object(money_cfg, "pricing.money")
        if why then
            return { error = why }
        end
    end
    local credits_cfg = pricing.credits
    if type(credits_cfg) ~= "table" then
        credits_cfg, why = object(credits_cfg, "pricing.credits")
        if why then
            return { error = why }
        end
    end

    local increment = credits_cfg and credits_cfg.increment_minutes
    if math_type(increment) ~= "integer" or increment < 1 or increment > MINUTES_PER_DAY then
        increment, why = increment_of(pricing, credits_cfg)
        if why then
            return { error = why }
        end
    end
    local minutes = booking.minutes
    if math_type(minutes) ~= "integer" then
        minutes = minutes_of(booking)
    end
    if minutes == nil or minutes <= 0 then
        return { error = "duration must be positive" }
    end
    if minutes > MINUTES_MAX then
        return { error = "duration is too long to price" }
    end
    if minutes % increment ~= 0 then
        return { error = "duration must be a multiple of " .. increment .. " minutes" }
    end

    local result
    result, why = amounts(credits_cfg, money_cfg, resource, booking, minutes)
    if why then
        return { error = why }
    end
    return result
end

-- Self-checks run by the engine at load time.  2026-01-14 is a Wednesday.
local function sample(pricing, minutes, opts)
    opts = opts or {}
    local start = 1768377600 + (opts.offset_minutes or 0) * 60 -- 2026-01-14 08:00 UTC
    return {
        resource = {
            id = "r1", building_id = "b1", name = "Room", kind = "meeting_room",
            tags = {}, credit_only = opts.credit_only or false, pricing = pricing,
        },
        building = { id = "b1", timezone = "UTC", currency = "EUR" },
        booking = {
            start = start, ["end"] = start + minutes * 60, minutes = minutes,
            local_start = opts.local_start
                or { year = 2026, month = 1, day = 14, hour = 8, minute = 0, wday = 3 },
            discount_pm = opts.discount_pm or 0,
        },
        now = 1768000000,
    }
end

local room = { money = { per_hour = 7000 }, credits = { per_hour = 1, increment_minutes = 30 } }

M.examples = {
    -- S4: 30-minute increment at 1 credit per hour; 90 minutes cost 1.5.
    { ctx = sample(room, 90),
      expect = { money = 10500, money_before_discount = 10500, credits = 1500, unit = "hour" } },
    -- S4: 45 minutes is not a multiple of the increment.
    { ctx = sample(room, 45),
      expect = { error = "duration must be a multiple of 30 minutes" } },
    -- S11: 50 % discount on 70.00/h for 2 h: money 70.00, credits still 2.
    { ctx = sample(room, 120, { discount_pm = 50000 }),
      expect = { money = 7000, money_before_discount = 14000, credits = 2000, unit = "hour" } },
    -- S12 + block model: credit-only, half day 3, full day 5; 5 h -> full day.
    { ctx = sample({ credits = { model = "block",
                                 blocks = { { minutes = 240, price = 3 },
                                            { minutes = 480, price = 5 } } } },
                   300, { credit_only = true }),
      expect = { credits = 5000, unit = "hour" } },
    -- Peak, in coins: 08:00-10:00 on a Wednesday, 10/h base, 15/h from 09:00.
    { ctx = sample({ credits = { unit = "coin", per_hour = 10,
                                 peak = { { days = { 1, 2, 3, 4, 5 }, from = "09:00",
                                            to = "17:00", per_hour = 15 } } } }, 120),
      expect = { credits = 25000, unit = "coin" } },
    -- Tiered with a cap: 2 h at 1/h then 0.5/h; 5 h would be 3.5, max 2.5.
    { ctx = sample({ credits = { model = "tiered", max = 2.5,
                                 tiers = { { up_to_minutes = 120, per_hour = 1 },
                                           { per_hour = 0.5 } } } }, 300),
      expect = { credits = 2500, unit = "hour" } },
}

return M
