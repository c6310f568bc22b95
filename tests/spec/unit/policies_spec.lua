-- tests/spec/unit/policies_spec.lua - the default policies and the worked
-- examples, run in a pure-Lua stand-in for the engine's sandbox.
--
-- Run from the repository root:  lua5.4 /usr/bin/busted tests/spec/unit/policies_spec.lua
-- (ALLOT_SOURCE_DIR points elsewhere when set).

local ROOT = os.getenv("ALLOT_SOURCE_DIR") or "."
local policy_env = dofile(ROOT .. "/tests/helpers/policy_env.lua")

local function load_default(kind)
    return policy_env.load(ROOT .. "/policies/default/" .. kind .. ".lua")
end

local function load_example(name)
    return policy_env.load(ROOT .. "/policies/examples/" .. name .. ".lua")
end

local function read(path)
    local f = assert(io.open(ROOT .. "/" .. path, "rb"))
    local text = f:read("a")
    f:close()
    return text
end

local DEFAULTS = {
    pricing = "price", eligibility = "eligible", order = "order",
    rollover = "rollover", refund = "refund", validate = "validate",
}

local EXAMPLES = {
    peak_surcharge = "price", free_weekend = "price",
    user_quota = "validate", auditorium_refund = "refund",
}

local HOUR = 3600
local WED_0800 = 1768377600 -- 2026-01-14T08:00:00Z, a Wednesday

-- local_start helpers: wday 1 = Monday .. 7 = Sunday.
local function at(wday, hour, minute)
    return { year = 2026, month = 1, day = 11 + wday, hour = hour, minute = minute or 0,
             wday = wday }
end

describe("policy modules", function()
    for kind, fname in pairs(DEFAULTS) do
        it("default/" .. kind .. " loads, exports " .. fname .. " and passes its examples",
            function()
                local mod = load_default(kind)
                assert.is_function(mod[fname])
                local failures, n = policy_env.run_examples(mod, fname)
                assert.are.same({}, failures)
                assert.is_true(n >= 3 and n <= 6, kind .. " has " .. n .. " examples")
                for _, ex in ipairs(mod.examples) do
                    assert.is_true(policy_env.integers_only(mod[fname](ex.ctx)))
                end
            end)
    end

    for name, fname in pairs(EXAMPLES) do
        it("examples/" .. name .. " loads and passes its examples", function()
            local mod = load_example(name)
            assert.is_function(mod[fname])
            local failures, n = policy_env.run_examples(mod, fname)
            assert.are.same({}, failures)
            assert.is_true(n >= 3, name .. " has " .. n .. " examples")
        end)
    end

    it("writes no global and refuses to run with a global write", function()
        local env = policy_env.new()
        local chunk = assert(load("x = 1", "=t", "t", env))
        assert.has_error(chunk)
        for kind in pairs(DEFAULTS) do
            local path = ROOT .. "/policies/default/" .. kind .. ".lua"
            local chunk2 = assert(loadfile(path, "t", env))
            chunk2()
        end
        assert.is_nil(rawget(env, "x"))
        local names = {}
        for k in pairs(env) do
            names[#names + 1] = k
        end
        assert.are.same({ "allot" }, names)
    end)

    it("keeps the allot helpers read-only and exact", function()
        local allot = policy_env.allot
        assert.has_error(function() allot.milli = nil end)
        assert.are.equal(1500, allot.milli(1.5))
        assert.are.equal("integer", math.type(allot.milli(2)))
        assert.are.equal(2000, allot.milli(2.0))
        assert.are.equal(100, allot.milli(0.1))
        assert.has_error(function() allot.milli(0.0001) end)
        assert.are.equal(2, allot.ceil_div(3, 2))
        assert.are.equal(1, allot.floor_div(3, 2))
        assert.has_error(function() allot.ceil_div(1.5, 2) end)
    end)
end)

describe("default pricing", function()
    local price = load_default("pricing").price

    local function ctx_for(pricing, minutes, opts)
        opts = opts or {}
        return {
            resource = { id = "r1", building_id = "b1", name = "Room", kind = "meeting_room",
                         tags = {}, credit_only = opts.credit_only or false, pricing = pricing },
            building = { id = "b1", timezone = "UTC", currency = "EUR" },
            booking = { start = WED_0800, ["end"] = WED_0800 + minutes * 60, minutes = minutes,
                        local_start = opts.local_start or at(3, 8),
                        local_jump = opts.local_jump,
                        discount_pm = opts.discount_pm or 0 },
            now = WED_0800 - 86400,
        }
    end

    local function p(pricing, minutes, opts)
        local result = price(ctx_for(pricing, minutes, opts))
        assert.is_true(policy_env.integers_only(result), "non-integer amount in result")
        return result
    end

    local function credits(pricing, minutes, opts)
        local result = p(pricing, minutes, opts)
        assert.is_nil(result.error, result.error)
        return result.credits
    end

    local function refused(pricing, minutes, opts)
        local result = p(pricing, minutes, opts)
        assert.is_string(result.error)
        local keys = 0
        for _ in pairs(result) do
            keys = keys + 1
        end
        assert.are.equal(1, keys, "a refusal carries only `error`")
        return result.error
    end

    describe("fixed model and increments", function()
        local s4 = { credits = { per_hour = 1, increment_minutes = 30 } }

        it("S4: 90 min costs 1.5, 30 min costs 0.5, 45 min is refused", function()
            assert.are.same({ credits = 1500, unit = "hour" }, p(s4, 90))
            assert.are.same({ credits = 500, unit = "hour" }, p(s4, 30))
            assert.are.equal("duration must be a multiple of 30 minutes", refused(s4, 45))
        end)

        it("refuses zero and negative durations", function()
            assert.are.equal("duration must be positive", refused(s4, 0))
            assert.are.equal("duration must be positive", refused(s4, -30))
        end)

        it("derives minutes from start and end when absent", function()
            local ctx = ctx_for(s4, 90)
            ctx.booking.minutes = nil
            assert.are.same({ credits = 1500, unit = "hour" }, price(ctx))
        end)

        it("rounds credits up to a whole milli", function()
            assert.are.equal(1, credits({ credits = { per_hour = 0.001 } }, 15))
            -- 1.001/h for 15 min = 0.25025 -> 0.251
            assert.are.equal(251, credits({ credits = { per_hour = 1.001 } }, 15))
            assert.are.equal(0, credits({ credits = { per_hour = 0 } }, 60))
        end)

        it("takes the increment from credits, else the top level, else 15", function()
            local both = { increment_minutes = 60,
                           credits = { per_hour = 1, increment_minutes = 30 } }
            assert.are.equal(1500, credits(both, 90))
            local top = { increment_minutes = 60, credits = { per_hour = 1 } }
            assert.are.equal("duration must be a multiple of 60 minutes", refused(top, 90))
            assert.are.equal(2000, credits(top, 120))
            local none = { credits = { per_hour = 1 } }
            assert.are.equal(250, credits(none, 15))
            assert.are.equal("duration must be a multiple of 15 minutes", refused(none, 20))
        end)

        it("applies the increment to the money price too", function()
            local money_only = { money = { per_hour = 7000 }, increment_minutes = 60 }
            assert.are.equal("duration must be a multiple of 60 minutes", refused(money_only, 90))
            assert.are.same({ money = 7000, money_before_discount = 7000 }, p(money_only, 60))
            assert.are.equal("duration must be a multiple of 15 minutes",
                refused({ money = { per_hour = 7000 } }, 10))
        end)

        it("caps the credit price at max", function()
            local cfg = { credits = { unit = "coin", per_hour = 70, max = 300 } }
            assert.are.equal(280000, credits(cfg, 240))
            assert.are.equal(300000, credits(cfg, 360))
            assert.are.equal(2500, credits({ credits = { per_hour = 1, max = 2.5 } }, 600))
        end)

        it("prices in coins when the unit is coin", function()
            assert.are.same({ credits = 105000, unit = "coin" },
                p({ credits = { unit = "coin", per_hour = 70 } }, 90))
        end)

        it("accepts integral floats from JSON", function()
            local cfg = { money = { per_hour = 7000.0 },
                          credits = { per_hour = 1.0, increment_minutes = 30.0 } }
            assert.are.same({ money = 10500, money_before_discount = 10500, credits = 1500,
                              unit = "hour" }, p(cfg, 90))
        end)

        it("treats a light-userdata JSON null like an absent value", function()
            -- io.stdout is a full userdata; enough to stand in for cjson.null.
            local null = io.stdout
            assert.are.same({ credits = 1000, unit = "hour" },
                p({ money = null, credits = { per_hour = 1, unit = null, max = null } }, 60))
        end)
    end)

    describe("money", function()
        it("S11: a 50 % discount halves the money, never the credits", function()
            local cfg = { money = { per_hour = 7000 }, credits = { per_hour = 1 } }
            assert.are.same({ money = 7000, money_before_discount = 14000, credits = 2000,
                              unit = "hour" }, p(cfg, 120, { discount_pm = 50000 }))
        end)

        it("rounds the money price half up", function()
            assert.are.equal(501, p({ money = { per_hour = 1001 } }, 30).money)  -- 500.5
            assert.are.equal(250, p({ money = { per_hour = 1001 } }, 15).money)  -- 250.25
            assert.are.equal(751, p({ money = { per_hour = 1001 } }, 45).money)  -- 750.75
        end)

        it("rounds the discount down (the customer never pays more)", function()
            local r = p({ money = { per_hour = 10001 } }, 60, { discount_pm = 50000 })
            assert.are.same({ money = 5001, money_before_discount = 10001 }, r)
            assert.are.equal(7000, p({ money = { per_hour = 8000 } }, 60,
                { discount_pm = 12500 }).money)
            assert.are.equal(0, p({ money = { per_hour = 8000 } }, 60,
                { discount_pm = 100000 }).money)
        end)

        it("refuses a discount outside 0..100 %", function()
            assert.matches("discount", refused({ money = { per_hour = 8000 } }, 60,
                { discount_pm = 100001 }))
            assert.matches("discount", refused({ money = { per_hour = 8000 } }, 60,
                { discount_pm = -1 }))
        end)

        it("S12: a credit-only resource has no money price", function()
            local cfg = { money = { per_hour = 7000 }, credits = { per_hour = 1 } }
            assert.are.same({ credits = 1000, unit = "hour" }, p(cfg, 60, { credit_only = true }))
        end)

        it("has no credit price without a credits configuration", function()
            local r = p({ money = { per_hour = 7000 } }, 60)
            assert.are.same({ money = 7000, money_before_discount = 7000 }, r)
            assert.is_nil(r.credits)
            assert.is_nil(r.unit)
            assert.are.same({}, p({}, 60))
        end)
    end)

    describe("block model", function()
        local blocks = { credits = { model = "block", increment_minutes = 60,
                                     blocks = { { minutes = 480, price = 5 },
                                                { minutes = 240, price = 3 } } } }

        it("uses the smallest block covering the duration", function()
            assert.are.equal(3000, credits(blocks, 60))
            assert.are.equal(3000, credits(blocks, 240))
            assert.are.equal(5000, credits(blocks, 300))
            assert.are.equal(5000, credits(blocks, 480))
        end)

        it("repeats the longest block and prices the remainder the same way", function()
            assert.are.equal(8000, credits(blocks, 540))   -- 5 + 3
            assert.are.equal(10000, credits(blocks, 960))  -- 5 + 5
            assert.are.equal(13000, credits(blocks, 1200)) -- 5 + 5 + 3
            assert.are.equal(15000, credits(blocks, 1440)) -- 5 + 5 + 5
        end)

        it("takes the cheapest of the covering blocks", function()
            local odd = { credits = { model = "block",
                                      blocks = { { minutes = 240, price = 6 },
                                                 { minutes = 480, price = 5 } } } }
            assert.are.equal(5000, credits(odd, 60))
        end)

        it("is capped by max and ignores the increment of other models", function()
            local capped = { credits = { model = "block", max = 4, increment_minutes = 60,
                                         blocks = blocks.credits.blocks } }
            assert.are.equal(4000, credits(capped, 540))
        end)

        it("refuses bad blocks and peak windows", function()
            assert.matches("at least one block",
                refused({ credits = { model = "block", blocks = {} } }, 60))
            assert.matches("blocks%[1%]%.minutes",
                refused({ credits = { model = "block",
                                      blocks = { { minutes = 0, price = 1 } } } }, 60))
            assert.matches("blocks%[1%]%.price must not be negative",
                refused({ credits = { model = "block",
                                      blocks = { { minutes = 60, price = -1 } } } }, 60))
            assert.matches("must be a list",
                refused({ credits = { model = "block", blocks = { a = 1 } } }, 60))
            assert.are.equal("pricing.credits.peak is only supported with the fixed model",
                refused({ credits = { model = "block", blocks = blocks.credits.blocks,
                                      peak = { { from = "09:00", to = "10:00",
                                                 per_hour = 2 } } } }, 60))
        end)
    end)

    describe("tiered model", function()
        local tiers = { credits = { model = "tiered", increment_minutes = 30,
                                    tiers = { { up_to_minutes = 120, per_hour = 1 },
                                              { up_to_minutes = 240, per_hour = 0.75 },
                                              { per_hour = 0.5 } } } }

        it("charges each tier's minutes at its rate (graduated)", function()
            assert.are.equal(1000, credits(tiers, 60))
            assert.are.equal(2000, credits(tiers, 120))
            assert.are.equal(2750, credits(tiers, 180))
            assert.are.equal(3500, credits(tiers, 240))
            assert.are.equal(4000, credits(tiers, 300))
        end)

        it("rounds up once over the whole booking", function()
            local cfg = { credits = { model = "tiered",
                                      tiers = { { up_to_minutes = 60, per_hour = 1 },
                                                { per_hour = 0.333 } } } }
            -- 60000 + 15 * 333 = 64995 milli-minutes / 60 = 1083.25 -> 1084
            assert.are.equal(1084, credits(cfg, 75))
        end)

        it("is capped by max", function()
            local cfg = { credits = { model = "tiered", max = 2.5, tiers = tiers.credits.tiers } }
            assert.are.equal(2500, credits(cfg, 300))
        end)

        it("refuses bad tiers", function()
            assert.matches("at least one tier",
                refused({ credits = { model = "tiered", tiers = {} } }, 60))
            assert.matches("last tier",
                refused({ credits = { model = "tiered",
                                      tiers = { { up_to_minutes = 60, per_hour = 1 } } } }, 60))
            assert.matches("tiers%[2%]%.up_to_minutes must be greater than the previous",
                refused({ credits = { model = "tiered",
                                      tiers = { { up_to_minutes = 60, per_hour = 1 },
                                                { up_to_minutes = 60, per_hour = 1 },
                                                { per_hour = 1 } } } }, 60))
            assert.matches("tiers%[1%]%.up_to_minutes",
                refused({ credits = { model = "tiered",
                                      tiers = { { per_hour = 1 }, { per_hour = 1 } } } }, 60))
        end)
    end)

    describe("peak windows", function()
        local weekday = { credits = { per_hour = 1,
                                      peak = { { days = { 1, 2, 3, 4, 5 }, from = "09:00",
                                                 to = "17:00", per_hour = 2 } } } }

        it("charges peak minutes at the peak rate", function()
            assert.are.equal(4000, credits(weekday, 120, { local_start = at(3, 10) }))
            assert.are.equal(3000, credits(weekday, 120, { local_start = at(3, 8) }))
            assert.are.equal(3000, credits(weekday, 120, { local_start = at(3, 16) }))
            assert.are.equal(2000, credits(weekday, 120, { local_start = at(3, 18) }))
            -- 08:45-09:15: 15 off-peak + 15 peak = 0.25 + 0.5
            assert.are.equal(750, credits(weekday, 30, { local_start = at(3, 8, 45) }))
        end)

        it("applies windows only on their days", function()
            assert.are.equal(2000, credits(weekday, 120, { local_start = at(6, 10) }))
            assert.are.equal(2000, credits(weekday, 120, { local_start = at(7, 10) }))
        end)

        it("applies a window without days on every day", function()
            local daily = { credits = { per_hour = 1,
                                        peak = { { from = "12:00", to = "14:00",
                                                   per_hour = 3 } } } }
            assert.are.equal(6000, credits(daily, 120, { local_start = at(7, 12) }))
        end)

        it("walks across midnight into the next local day", function()
            local weekend = { credits = { per_hour = 1,
                                          peak = { { days = { 6, 7 }, from = "00:00", to = "24:00",
                                                     per_hour = 3 } } } }
            -- Friday 22:00 - Saturday 02:00: 2 h at 1 + 2 h at 3
            assert.are.equal(8000, credits(weekend, 240, { local_start = at(5, 22) }))
            -- Sunday 23:00 - Monday 01:00 (wday wraps 7 -> 1): 3 + 1
            assert.are.equal(4000, credits(weekend, 120, { local_start = at(7, 23) }))
            -- "24:00" includes the last minute of the day
            assert.are.equal(750, credits(weekend, 15, { local_start = at(6, 23, 45) }))
        end)

        it("prices each real minute at its local time across a DST change", function()
            local night = { credits = { per_hour = 1, increment_minutes = 60,
                                        peak = { { from = "00:00", to = "03:00",
                                                   per_hour = 5 } } } }
            -- Clocks spring forward at 01:00 (London, 28 March 2027): 00:00-01:00
            -- and 02:00-03:00 at 5, 03:00-04:00 at 1, in 3 real hours.
            assert.are.equal(11000, credits(night, 180, { local_start = at(7, 0),
                                                           local_jump = { after = 60, minutes = 60 } }))
            -- Clocks fall back at 02:00 (31 October 2027): 00:00-02:00, then
            -- 01:00-03:00 again at 5, 03:00-04:00 at 1, in 5 real hours.
            assert.are.equal(21000, credits(night, 300, { local_start = at(7, 0),
                                                          local_jump = { after = 120, minutes = -60 } }))
            -- Without the change, local time runs on with the clock.
            assert.are.equal(16000, credits(night, 240, { local_start = at(7, 0) }))
            -- A change across midnight moves the weekday too.
            local sunday = { credits = { per_hour = 1, increment_minutes = 30,
                                         peak = { { days = { 7 }, from = "00:00", to = "24:00",
                                                    per_hour = 4 } } } }
            assert.are.equal(2500, credits(sunday, 60, { local_start = at(6, 23),
                                                         local_jump = { after = 30, minutes = 60 } }))
        end)

        it("gives overlapping windows the rate of the first listed", function()
            local lunch_first = { credits = { per_hour = 1, peak = {
                { from = "12:00", to = "14:00", per_hour = 5 },
                { from = "09:00", to = "17:00", per_hour = 2 } } } }
            local day_first = { credits = { per_hour = 1, peak = {
                { from = "09:00", to = "17:00", per_hour = 2 },
                { from = "12:00", to = "14:00", per_hour = 5 } } } }
            assert.are.equal(7000, credits(lunch_first, 120, { local_start = at(3, 11) }))
            assert.are.equal(4000, credits(day_first, 120, { local_start = at(3, 11) }))
        end)

        it("rounds up once, and is capped by max", function()
            local cfg = { credits = { per_hour = 1, max = 3,
                                      peak = { { from = "00:00", to = "12:00",
                                                 per_hour = 1.001 } } } }
            assert.are.equal(251, credits(cfg, 15, { local_start = at(3, 8) }))
            assert.are.equal(3000, credits(cfg, 240, { local_start = at(3, 8) }))
        end)

        it("prices a 7-day booking well inside the instruction budget", function()
            local busy = { credits = { per_hour = 1, peak = {
                { days = { 1, 2, 3, 4, 5 }, from = "09:00", to = "12:00", per_hour = 2 },
                { days = { 1, 2, 3, 4, 5 }, from = "12:00", to = "14:00", per_hour = 3 },
                { days = { 1, 2, 3, 4, 5 }, from = "14:00", to = "18:00", per_hour = 2 },
                { days = { 6, 7 }, from = "00:00", to = "24:00", per_hour = 0.5 },
                { from = "22:00", to = "24:00", per_hour = 0.25 },
                { from = "00:00", to = "06:00", per_hour = 0.25 } } } }
            local ctx = ctx_for(busy, 10080, { local_start = at(3, 8, 30) })
            local n, result = policy_env.count_instructions(price, ctx)
            assert.is_nil(result.error)
            assert.is_true(n < 100000, "used " .. n .. " instructions")
            -- Same total as a minute-by-minute walk.
            local expect = 0
            local windows = busy.credits.peak
            local wday, minute = 3, 8 * 60 + 30
            for _ = 1, 10080 do
                local rate = 1000
                for _, w in ipairs(windows) do
                    local from = tonumber(w.from:sub(1, 2)) * 60 + tonumber(w.from:sub(4, 5))
                    local to = tonumber(w.to:sub(1, 2)) * 60 + tonumber(w.to:sub(4, 5))
                    local on = w.days == nil
                    for _, d in ipairs(w.days or {}) do
                        on = on or d == wday
                    end
                    if on and minute >= from and minute < to then
                        rate = policy_env.allot.milli(w.per_hour)
                        break
                    end
                end
                expect = expect + rate
                minute = minute + 1
                if minute == 1440 then
                    minute, wday = 0, wday % 7 + 1
                end
            end
            assert.are.equal((expect + 59) // 60, result.credits)
        end)

        it("refuses bad windows with a clear message", function()
            local function win(w)
                return { credits = { per_hour = 1, peak = { w } } }
            end
            assert.are.equal('pricing.credits.peak[1].from must be a time "HH:MM" (got "9am")',
                refused(win({ from = "9am", to = "17:00", per_hour = 2 }), 60))
            local bad_times = {
                { "from", "9:00", "17:00" }, { "to", "09:00", "25:00" },
                { "to", "09:00", "24:30" }, { "to", "09:00", "17:60" },
                { "from", 900, "17:00" }, { "from", "09-00", "17:00" },
            }
            for _, b in ipairs(bad_times) do
                assert.matches("peak%[1%]%." .. b[1] .. " must be a time",
                    refused(win({ from = b[2], to = b[3], per_hour = 2 }), 60))
            end
            assert.matches("from must be before to",
                refused(win({ from = "22:00", to = "06:00", per_hour = 2 }), 60))
            assert.matches("days%[1%]", refused(win({ days = { 8 }, from = "09:00", to = "17:00",
                                                        per_hour = 2 }), 60))
            assert.matches("peak%[1%]%.per_hour must not be negative",
                refused(win({ from = "09:00", to = "17:00", per_hour = -2 }), 60))
            local ctx = ctx_for(win({ from = "09:00", to = "17:00", per_hour = 2 }), 60)
            ctx.booking.local_start = nil
            assert.are.same({ error = "peak pricing needs booking.local_start" }, price(ctx))
        end)

        it("ignores an empty peak list", function()
            assert.are.equal(1000, credits({ credits = { per_hour = 1, peak = {} } }, 60))
        end)
    end)

    describe("configuration errors", function()
        it("refuses a negative per_hour", function()
            assert.are.equal("pricing.credits.per_hour must not be negative",
                refused({ credits = { per_hour = -1 } }, 60))
            assert.are.equal("pricing.money.per_hour must not be negative",
                refused({ money = { per_hour = -1 } }, 60))
        end)

        it("refuses an unknown model or unit", function()
            assert.are.equal(
                'pricing.credits.model must be "fixed", "block" or "tiered" (got "flat")',
                refused({ credits = { model = "flat", per_hour = 1 } }, 60))
            assert.matches('unit must be "hour" or "coin"',
                refused({ credits = { unit = "euro", per_hour = 1 } }, 60))
        end)

        it("refuses amounts with more than 3 decimals or out of range", function()
            assert.matches("at most 3 decimals", refused({ credits = { per_hour = 0.0001 } }, 60))
            assert.matches("at most", refused({ credits = { per_hour = 1e10 } }, 60))
            assert.matches("must be a number", refused({ credits = { per_hour = "1" } }, 60))
            assert.matches("must be a number", refused({ credits = { per_hour = 0 / 0 } }, 60))
            assert.matches("max", refused({ credits = { per_hour = 1, max = -1 } }, 60))
        end)

        it("charges an hour credit an hour of booking when no rate is given (PRODUCT.md §2)",
           function()
            assert.are.equal(1500, credits({ credits = {} }, 90))
            assert.are.equal(2000, credits({ credits = { unit = "hour" } }, 120))
        end)

        it("refuses a missing fixed rate in coins, fractional money, bad increments", function()
            assert.are.equal("pricing.credits.per_hour is required for the fixed model in coins",
                refused({ credits = { unit = "coin" } }, 60))
            assert.matches("pricing.money.per_hour must be a whole number",
                refused({ money = { per_hour = 70.5 } }, 60))
            assert.matches("increment_minutes",
                refused({ credits = { per_hour = 1, increment_minutes = 0 } }, 60))
            assert.matches("increment_minutes",
                refused({ increment_minutes = 7.5, credits = { per_hour = 1 } }, 60))
            assert.matches("pricing.money must be an object",
                refused({ money = 7000 }, 60))
        end)

        it("raises (fails closed) only on programming errors, not on config", function()
            assert.has_no_error(function()
                price(ctx_for({ credits = { model = 42 } }, 60))
            end)
        end)
    end)

    describe("README configurations", function()
        local ok, cjson = pcall(require, "cjson")
        local readme = read("policies/README.md")

        local function config(name)
            local marker = "<!-- pricing-config: " .. name .. " -->\n```json\n"
            local from = assert(readme:find(marker, 1, true), "no " .. name .. " block")
            local body_start = from + #marker
            local body_end = assert(readme:find("\n```", body_start, true))
            return cjson.decode(readme:sub(body_start, body_end))
        end

        it("prices the documented examples as the text says", function()
            if not ok then
                pending("lua-cjson not installed")
                return
            end
            -- cjson decodes every number as a float: a good robustness test.
            local premium = config("premium")
            assert.are.same({ money = 13500, money_before_discount = 13500, credits = 4500,
                              unit = "hour" }, p(premium, 90))
            local block = config("block")
            assert.are.equal(3000, credits(block, 60))
            assert.are.equal(5000, credits(block, 300))
            assert.are.equal(8000, credits(block, 540))
            assert.are.equal(10000, credits(block, 960))
            assert.are.equal(13000, credits(block, 1200))
            local tiered = config("tiered")
            assert.are.equal(4000, credits(tiered, 300))
            local peak = config("peak")
            assert.are.equal(3000, credits(peak, 120, { local_start = at(5, 16) }))
            assert.are.equal(1500, credits(peak, 120, { local_start = at(5, 23) }))
        end)
    end)
end)

describe("default eligibility", function()
    local eligible = load_default("eligibility").eligible

    local function base()
        return {
            user = { id = "u1", tenant_id = "t1", roles = { "reserver", "staff" } },
            tenant = { id = "t1", building_ids = { "b1", "b2" }, cross_building = false },
            allocation = { id = "a1", tenant_id = "t1", building_ids = { "b1" },
                           cross_building = false, targeting = { type = "all" },
                           pool = "shared" },
            line = { scope = "all" },
            resource = { id = "r1", building_id = "b1", tags = { "meeting", "large" } },
        }
    end

    it("admits the tenant's users for every resource of the building", function()
        assert.is_true(eligible(base()))
    end)

    it("refuses another tenant's user", function()
        local ctx = base()
        ctx.user.tenant_id = "t2"
        assert.is_false(eligible(ctx))
        ctx.resource = nil
        assert.is_false(eligible(ctx))
    end)

    it("targets listed users only", function()
        local ctx = base()
        ctx.allocation.targeting = { type = "users", user_ids = { "u7", "u1" } }
        assert.is_true(eligible(ctx))
        ctx.allocation.targeting = { type = "users", user_ids = { "u7" } }
        assert.is_false(eligible(ctx))
        ctx.allocation.targeting = { type = "users" }
        assert.is_false(eligible(ctx))
    end)

    it("targets users holding at least one listed role", function()
        local ctx = base()
        ctx.allocation.targeting = { type = "roles", roles = { "manager", "staff" } }
        assert.is_true(eligible(ctx))
        ctx.allocation.targeting = { type = "roles", roles = { "manager" } }
        assert.is_false(eligible(ctx))
        ctx.user.roles = {}
        ctx.allocation.targeting = { type = "roles", roles = { "staff" } }
        assert.is_false(eligible(ctx))
    end)

    it("fails closed on an unknown targeting type or scope", function()
        local ctx = base()
        ctx.allocation.targeting = { type = "everyone" }
        assert.is_false(eligible(ctx))
        ctx = base()
        ctx.allocation.targeting = nil
        assert.is_false(eligible(ctx))
        ctx = base()
        ctx.line = { scope = "some" }
        assert.is_false(eligible(ctx))
    end)

    it("answers targeting alone when there is no resource", function()
        local ctx = base()
        ctx.resource = nil
        ctx.line = { scope = "resources", resource_ids = {} }
        ctx.allocation.building_ids = {}
        assert.is_true(eligible(ctx))
        ctx.allocation.targeting = { type = "users", user_ids = { "u9" } }
        assert.is_false(eligible(ctx))
    end)

    it("covers listed resources only on a resources line", function()
        local ctx = base()
        ctx.line = { scope = "resources", resource_ids = { "r5", "r1" } }
        assert.is_true(eligible(ctx))
        ctx.line = { scope = "resources", resource_ids = { "r5" } }
        assert.is_false(eligible(ctx))
    end)

    it("covers resources with at least one listed tag on a tags line", function()
        local ctx = base()
        ctx.line = { scope = "tags", tags = { "roof", "large" } }
        assert.is_true(eligible(ctx))
        ctx.line = { scope = "tags", tags = { "roof" } }
        assert.is_false(eligible(ctx))
        ctx.resource.tags = {}
        ctx.line = { scope = "tags", tags = { "large" } }
        assert.is_false(eligible(ctx))
    end)

    describe("buildings", function()
        local function in_b2(tenant_cross, alloc_cross, tenant_buildings)
            local ctx = base()
            ctx.resource.building_id = "b2"
            ctx.tenant.cross_building = tenant_cross
            ctx.allocation.cross_building = alloc_cross
            ctx.tenant.building_ids = tenant_buildings or { "b1", "b2" }
            return eligible(ctx)
        end

        it("covers the allocation's own buildings", function()
            local ctx = base()
            ctx.allocation.building_ids = { "b3", "b1" }
            assert.is_true(eligible(ctx))
        end)

        it("refuses another building without cross-building", function()
            assert.is_false(in_b2(false, false))
        end)

        it("needs both the tenant and the allocation to allow cross-building", function()
            assert.is_true(in_b2(true, true))
            assert.is_false(in_b2(true, false))
            assert.is_false(in_b2(false, true))
        end)

        it("crosses only into the tenant's own buildings", function()
            assert.is_false(in_b2(true, true, { "b1", "b3" }))
        end)

        it("still checks scope in a cross-building", function()
            local ctx = base()
            ctx.resource.building_id = "b2"
            ctx.tenant.cross_building = true
            ctx.allocation.cross_building = true
            ctx.line = { scope = "resources", resource_ids = { "r9" } }
            assert.is_false(eligible(ctx))
        end)
    end)
end)

describe("default order", function()
    local order = load_default("order").order

    local function lot(id, fields)
        local l = { id = id, scope = "all", per_user = false, valid_from = 0,
                    valid_until = 2000000000, recurring = false, rollover = false,
                    allocation_id = "a", allocation_seq = 5, unlimited = false, balance = 1000 }
        for k, v in pairs(fields or {}) do
            l[k] = v
        end
        return l
    end

    local function ids(lots)
        return order({ lots = lots, booking = { start = 0, ["end"] = 3600, minutes = 60 } })
    end

    -- Each criterion: a "first" value and a "later" value, in priority order.
    local criteria = {
        { "unlimited", false, true },
        { "scope", "resources", "all" },
        { "per_user", true, false },
        { "valid_until", 1000, 2000 },
        { "recurring", true, false },
        { "allocation_seq", 1, 2 },
        { "rollover", true, false },
    }

    for i, c in ipairs(criteria) do
        it("criterion " .. i .. " (" .. c[1] .. ") decides over every later one", function()
            -- "z" is first on criterion i and later on every later criterion;
            -- "a" the opposite (and wins on id).
            local first, later = lot("z"), lot("a")
            first[c[1]], later[c[1]] = c[2], c[3]
            for j = i + 1, #criteria do
                local d = criteria[j]
                first[d[1]], later[d[1]] = d[3], d[2]
            end
            assert.are.same({ "z", "a" }, ids({ later, first }))
            assert.are.same({ "z", "a" }, ids({ first, later }))
        end)
    end

    it("breaks full ties by id ascending", function()
        assert.are.same({ "a", "b", "c" }, ids({ lot("c"), lot("a"), lot("b") }))
    end)

    it("puts never-expiring lots after expiring ones", function()
        assert.are.same({ "late", "never" },
            ids({ lot("never", { valid_until = nil }), lot("late", { valid_until = 1900000000 }) }))
    end)

    it("treats tags lines as specific", function()
        assert.are.same({ "tags", "all" },
            ids({ lot("all"), lot("tags", { scope = "tags" }) }))
    end)

    it("S5: earliest expiry first", function()
        assert.are.same({ "feb", "mar", "never" }, ids({
            lot("never", { valid_until = nil }),
            lot("mar", { valid_until = 1774915200 }),
            lot("feb", { valid_until = 1772236800 }) }))
    end)

    it("returns [] for no lots and leaves the input untouched", function()
        assert.are.same({}, ids({}))
        local lots = { lot("b"), lot("a") }
        ids(lots)
        assert.are.equal("b", lots[1].id)
    end)

    it("returns the same permutation whatever the input order", function()
        local lots = {}
        local n = 0
        for _, unlimited in ipairs({ false, true }) do
            for _, scope in ipairs({ "all", "resources" }) do
                for _, per_user in ipairs({ false, true }) do
                    for _, until_ in ipairs({ 1000, 2000, false }) do
                        for _, recurring in ipairs({ false, true }) do
                            n = n + 1
                            lots[#lots + 1] = lot(string.format("l%03d", n), {
                                unlimited = unlimited, scope = scope, per_user = per_user,
                                valid_until = until_ or nil, recurring = recurring,
                                allocation_seq = n % 3, rollover = n % 2 == 0 })
                        end
                    end
                end
            end
        end
        local reference = ids(lots)
        assert.are.equal(#lots, #reference)
        local seen = {}
        for _, id in ipairs(reference) do
            assert.is_nil(seen[id])
            seen[id] = true
        end
        math.randomseed(42)
        for _ = 1, 20 do
            for i = #lots, 2, -1 do
                local j = math.random(i)
                lots[i], lots[j] = lots[j], lots[i]
            end
            assert.are.same(reference, ids(lots))
        end
        -- Unlimited lots all come last.
        local first_unlimited = nil
        local by_id = {}
        for _, l in ipairs(lots) do
            by_id[l.id] = l
        end
        for i, id in ipairs(reference) do
            if by_id[id].unlimited then
                first_unlimited = first_unlimited or i
            else
                assert.is_nil(first_unlimited, "limited lot after an unlimited one")
            end
        end
    end)
end)

describe("default rollover", function()
    local rollover = load_default("rollover").rollover

    local function carry(rule, unused)
        return rollover({ allocation = { id = "a1", recurrence = "monthly", rollover = rule },
                          line = { amount = 10000 }, unused = unused,
                          period_start = 1767225600, period_end = 1769904000 })
    end

    it("S2: carries min(unused, cap)", function()
        assert.are.same({ carry = 5000 }, carry({ enabled = true, cap = 5000 }, 7000))
        assert.are.same({ carry = 1500 }, carry({ enabled = true, cap = 5000 }, 1500))
        assert.are.same({ carry = 5000 }, carry({ enabled = true, cap = 5000 }, 5000))
        assert.are.same({ carry = 0 }, carry({ enabled = true, cap = 0 }, 7000))
    end)

    it("carries everything without a cap", function()
        assert.are.same({ carry = 7000 }, carry({ enabled = true }, 7000))
        assert.are.same({ carry = 1 }, carry({ enabled = true }, 1))
    end)

    it("S1: carries nothing when disabled", function()
        assert.are.same({ carry = 0 }, carry({ enabled = false, cap = 5000 }, 7000))
        assert.are.same({ carry = 0 }, carry(nil, 7000))
    end)

    it("never carries a negative amount", function()
        assert.are.same({ carry = 0 }, carry({ enabled = true }, 0))
        assert.are.same({ carry = 0 }, carry({ enabled = true, cap = 5000 }, -10))
    end)
end)

describe("default refund", function()
    local refund = load_default("refund").refund

    local function r(seconds_before, paid, opts)
        opts = opts or {}
        return refund({
            booking = { id = "bk", start = WED_0800, ["end"] = WED_0800 + HOUR,
                        payment_method = opts.method or "credits",
                        credits = paid, money = opts.money, created_at = WED_0800 - 7 * 86400 },
            resource = { id = "r1", kind = opts.kind or "meeting_room", tags = {} },
            now = WED_0800 - seconds_before,
            by = { role = opts.admin and "manager" or "tenant_user", admin = opts.admin or false },
        })
    end

    it("S7: 30 h, 5 h, after the start, by an admin", function()
        assert.are.same({ credits = 4000, money = 0 }, r(30 * HOUR, 4000))
        assert.are.same({ credits = 2000, money = 0 }, r(5 * HOUR, 4000))
        assert.are.same({ credits = 0, money = 0 }, r(-HOUR, 4000))
        assert.are.same({ credits = 4000, money = 0 }, r(-HOUR, 4000, { admin = true }))
    end)

    it("refunds in full exactly 24 h before, half one second later", function()
        assert.are.same({ credits = 4000, money = 0 }, r(24 * HOUR, 4000))
        assert.are.same({ credits = 2000, money = 0 }, r(24 * HOUR - 1, 4000))
    end)

    it("refunds half exactly 2 h before, nothing one second later", function()
        assert.are.same({ credits = 2000, money = 0 }, r(2 * HOUR, 4000))
        assert.are.same({ credits = 0, money = 0 }, r(2 * HOUR - 1, 4000))
        assert.are.same({ credits = 0, money = 0 }, r(0, 4000))
    end)

    it("rounds half refunds down", function()
        assert.are.same({ credits = 500, money = 0 }, r(5 * HOUR, 1001))
        assert.are.same({ credits = 0, money = 0 }, r(5 * HOUR, 1))
        assert.are.same({ credits = 1001, money = 0 }, r(48 * HOUR, 1001))
    end)

    it("applies the same fraction to money", function()
        assert.are.same({ credits = 0, money = 3500 },
            r(3 * HOUR, nil, { method = "card", money = 7001 }))
        assert.are.same({ credits = 0, money = 7001 },
            r(30 * HOUR, nil, { method = "invoice", money = 7001 }))
        assert.are.same({ credits = 0, money = 0 },
            r(HOUR, nil, { method = "card", money = 7001 }))
    end)

    it("refunds an admin's cancellation in full at any time", function()
        assert.are.same({ credits = 1001, money = 0 }, r(HOUR, 1001, { admin = true }))
    end)

    it("ignores the resource kind", function()
        assert.are.same({ credits = 4000, money = 0 }, r(30 * HOUR, 4000, { kind = "auditorium" }))
    end)

    it("never refunds more than was paid, even for huge amounts", function()
        local big = 1000000000000000 -- 10^12 credits
        assert.are.same({ credits = big // 2, money = 0 }, r(5 * HOUR, big + 1))
    end)
end)

describe("default validate", function()
    local validate = load_default("validate").validate

    local function v(seconds, method)
        return validate({
            booking = { start = WED_0800, ["end"] = WED_0800 + seconds, minutes = seconds // 60,
                        payment_method = method, local_start = at(3, 8) },
            resource = { id = "r1", building_id = "b1", tags = {} },
            user = { id = "u1", tenant_id = "t1", roles = {} },
            now = WED_0800 - 86400,
        })
    end

    it("accepts an ordinary booking and a quote", function()
        assert.is_true(v(HOUR, "credits"))
        assert.is_true(v(HOUR, nil))
    end)

    it("refuses an end at or before the start", function()
        assert.are.same({ error = "end must be after start" }, v(0, "card"))
        assert.are.same({ error = "end must be after start" }, v(-HOUR, "card"))
    end)

    it("allows exactly 7 days and refuses longer", function()
        assert.is_true(v(7 * 86400, "credits"))
        assert.are.same({ error = "a booking may last at most 7 days" },
            v(7 * 86400 + 60, "credits"))
    end)
end)

describe("worked examples", function()
    it("peak_surcharge: walks past midnight and applies the discount to money only", function()
        local price = load_example("peak_surcharge").price
        local ctx = {
            resource = { id = "r1", credit_only = false,
                         pricing = { money = { per_hour = 7000 },
                                     credits = { per_hour = 2, increment_minutes = 30 } } },
            booking = { minutes = 240, discount_pm = 50000, local_start = at(5, 16) },
        }
        -- Friday 16:00-20:00: 2 peak hours (x1.5) and 2 off-peak hours.
        assert.are.same({ credits = 10000, unit = "hour", money_before_discount = 35000,
                          money = 17500 }, price(ctx))
        ctx.resource.credit_only = true
        assert.are.same({ credits = 10000, unit = "hour" }, price(ctx))
    end)

    it("free_weekend: Sunday night into Monday pays for Monday only", function()
        local price = load_example("free_weekend").price
        local ctx = {
            resource = { id = "r1", pricing = { credits = { per_hour = 1.5 } } },
            booking = { minutes = 180, local_start = at(7, 23) },
        }
        assert.are.same({ credits = 3000, unit = "hour" }, price(ctx))
    end)

    it("user_quota: keeps the default rules", function()
        local validate = load_example("user_quota").validate
        local ctx = {
            booking = { start = WED_0800, ["end"] = WED_0800, minutes = 0,
                        payment_method = "credits" },
            resource = { id = "r1" }, user = { id = "u1" }, user_usage_month = 0, now = 0,
        }
        assert.are.same({ error = "end must be after start" }, validate(ctx))
        ctx.booking["end"] = WED_0800 + 8 * 86400
        assert.are.same({ error = "a booking may last at most 7 days" }, validate(ctx))
        ctx.booking["end"] = WED_0800 + HOUR
        assert.is_true(validate(ctx)) -- no credit pricing: costs nothing
    end)

    it("auditorium_refund: exact boundaries", function()
        local refund = load_example("auditorium_refund").refund
        local function r(kind, seconds_before)
            return refund({ booking = { start = WED_0800, credits = 1001 },
                            resource = { kind = kind }, now = WED_0800 - seconds_before,
                            by = { admin = false } })
        end
        assert.are.same({ credits = 1001, money = 0 }, r("auditorium", 7 * 86400))
        assert.are.same({ credits = 500, money = 0 }, r("auditorium", 7 * 86400 - 1))
        assert.are.same({ credits = 500, money = 0 }, r("auditorium", 72 * HOUR))
        assert.are.same({ credits = 0, money = 0 }, r("auditorium", 72 * HOUR - 1))
        assert.are.same({ credits = 500, money = 0 }, r("meeting_room", 5 * HOUR))
    end)

    it("README shows each example module exactly as it is on disk", function()
        local readme = read("policies/README.md")
        for name in pairs(EXAMPLES) do
            local path = "policies/examples/" .. name .. ".lua"
            local marker = "<!-- include: " .. path .. " -->\n```lua\n"
            local from = readme:find(marker, 1, true)
            assert.is_truthy(from, "README does not include " .. path)
            local body_start = from + #marker
            local body_end = assert(readme:find("\n```\n", body_start, true))
            assert.are.equal(read(path), readme:sub(body_start, body_end))
        end
    end)
end)
