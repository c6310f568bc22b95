-- policies/examples/peak_surcharge.lua - a pricing override.
--
-- Weekday business hours (Monday to Friday, 09:00-18:00 local time) cost 50 %
-- more than the resource's hourly rate, in credits and in money.  The rate
-- comes from the resource's pricing (fixed model: credits.per_hour and
-- money.per_hour); increments, max, discount and credit_only behave as in
-- the default policy.  (For credits alone, the default policy's `peak`
-- windows do this without code.)

local M = {}

local PEAK_DAYS = { [1] = true, [2] = true, [3] = true, [4] = true, [5] = true }
local PEAK_FROM = 9 * 60  -- minute of the local day
local PEAK_TO = 18 * 60
local SURCHARGE_PM = 50000 -- +50 %, in thousandths of a percent
local FULL_PM = 100000

-- Minutes of the booking inside peak hours, walking local days from the
-- start (a booking may run past midnight, into the weekend).
local function peak_minutes(local_start, minutes)
    local at = local_start.hour * 60 + local_start.minute
    local wday = local_start.wday
    local left = minutes
    local peak = 0
    while left > 0 do
        local stop = math.min(1440, at + left)
        if PEAK_DAYS[wday] then
            peak = peak + math.max(0, math.min(stop, PEAK_TO) - math.max(at, PEAK_FROM))
        end
        left = left - (stop - at)
        at = 0
        wday = wday % 7 + 1
    end
    return peak
end

function M.price(ctx)
    local resource, booking = ctx.resource, ctx.booking
    local pricing = resource.pricing or {}
    local credits_cfg, money_cfg = pricing.credits, pricing.money
    local increment = (credits_cfg and credits_cfg.increment_minutes)
        or pricing.increment_minutes or 15
    local minutes = booking.minutes
    if minutes <= 0 or minutes % increment ~= 0 then
        return { error = "duration must be a multiple of " .. increment .. " minutes" }
    end
    local peak = peak_minutes(booking.local_start, minutes)
    -- Minutes weighted in thousandths of a percent: 100 % off-peak, 150 % peak.
    local weighted = (minutes - peak) * FULL_PM + peak * (FULL_PM + SURCHARGE_PM)
    local result = {}
    if credits_cfg then
        local rate = allot.milli(credits_cfg.per_hour)       -- milli per hour
        local credits = allot.ceil_div(rate * weighted, 60 * FULL_PM)
        if credits_cfg.max then
            credits = math.min(credits, allot.milli(credits_cfg.max))
        end
        result.credits = credits
        result.unit = credits_cfg.unit or "hour"
    end
    if money_cfg and not resource.credit_only then
        local rate = math.tointeger(money_cfg.per_hour)
        if rate == nil or rate < 0 then
            return { error = "pricing.money.per_hour must be a whole number of minor units" }
        end
        -- Rounded half up to a whole minor unit.
        local before = allot.floor_div(rate * weighted + 30 * FULL_PM, 60 * FULL_PM)
        local discount_pm = booking.discount_pm or 0
        result.money_before_discount = before
        result.money = before - allot.floor_div(before * discount_pm, FULL_PM)
    end
    return result
end

local function sample(hour, wday, minutes)
    return {
        resource = { id = "r1", building_id = "b1", name = "Board room", kind = "meeting_room",
                     tags = {}, credit_only = false,
                     pricing = { money = { per_hour = 7000 },
                                 credits = { per_hour = 2, increment_minutes = 30 } } },
        building = { id = "b1", timezone = "UTC", currency = "EUR" },
        booking = { start = 0, ["end"] = minutes * 60, minutes = minutes, discount_pm = 0,
                    local_start = { year = 2026, month = 1, day = 14, hour = hour,
                                    minute = 0, wday = wday } },
        now = 0,
    }
end

M.examples = {
    -- Wednesday 10:00-12:00, all peak: 2 h * 2 * 1.5 = 6 credits, 2 * 105.00.
    { ctx = sample(10, 3, 120),
      expect = { credits = 6000, unit = "hour", money = 21000, money_before_discount = 21000 } },
    -- Wednesday 17:00-19:00: one peak hour (3) and one off-peak hour (2).
    { ctx = sample(17, 3, 120),
      expect = { credits = 5000, unit = "hour", money = 17500, money_before_discount = 17500 } },
    -- Saturday 10:00-12:00: no surcharge at the weekend.
    { ctx = sample(10, 6, 120),
      expect = { credits = 4000, unit = "hour", money = 14000, money_before_discount = 14000 } },
    -- 45 minutes does not fit the 30-minute increment.
    { ctx = sample(10, 3, 45), expect = { error = "duration must be a multiple of 30 minutes" } },
}

return M
