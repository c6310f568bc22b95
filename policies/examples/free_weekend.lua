-- policies/examples/free_weekend.lua - a pricing override.
--
-- Hours booked on Saturday and Sunday (local time) cost no credits; weekday
-- hours cost the resource's credits.per_hour (fixed model).  The money price
-- is unchanged.  A booking from Friday evening into Saturday pays credits for
-- the Friday part only.

local M = {}

local FREE_DAYS = { [6] = true, [7] = true } -- 1 = Monday ... 7 = Sunday

-- Minutes of the booking that fall on a paying day, walking local days.
local function paying_minutes(local_start, minutes)
    local at = local_start.hour * 60 + local_start.minute
    local wday = local_start.wday
    local left = minutes
    local paying = 0
    while left > 0 do
        local stop = math.min(1440, at + left)
        if not FREE_DAYS[wday] then
            paying = paying + (stop - at)
        end
        left = left - (stop - at)
        at = 0
        wday = wday % 7 + 1
    end
    return paying
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
    local result = {}
    if credits_cfg then
        local rate = allot.milli(credits_cfg.per_hour)
        result.credits = allot.ceil_div(rate * paying_minutes(booking.local_start, minutes), 60)
        result.unit = credits_cfg.unit or "hour"
    end
    if money_cfg and not resource.credit_only then
        local rate = math.tointeger(money_cfg.per_hour)
        if rate == nil or rate < 0 then
            return { error = "pricing.money.per_hour must be a whole number of minor units" }
        end
        local before = allot.floor_div(rate * minutes + 30, 60)
        result.money_before_discount = before
        result.money = before - allot.floor_div(before * (booking.discount_pm or 0), 100000)
    end
    return result
end

local function sample(hour, wday, minutes)
    return {
        resource = { id = "r1", building_id = "b1", name = "Studio", kind = "meeting_room",
                     tags = {}, credit_only = false,
                     pricing = { money = { per_hour = 5000 }, credits = { per_hour = 1 } } },
        building = { id = "b1", timezone = "Europe/Paris", currency = "EUR" },
        booking = { start = 0, ["end"] = minutes * 60, minutes = minutes, discount_pm = 0,
                    local_start = { year = 2026, month = 1, day = 16, hour = hour,
                                    minute = 0, wday = wday } },
        now = 0,
    }
end

M.examples = {
    -- Tuesday, 2 hours: 2 credits.
    { ctx = sample(10, 2, 120),
      expect = { credits = 2000, unit = "hour", money = 10000, money_before_discount = 10000 } },
    -- Sunday, 3 hours: free in credits, the money price stays.
    { ctx = sample(10, 7, 180),
      expect = { credits = 0, unit = "hour", money = 15000, money_before_discount = 15000 } },
    -- Friday 22:00 to Saturday 02:00: only the 2 Friday hours pay credits.
    { ctx = sample(22, 5, 240),
      expect = { credits = 2000, unit = "hour", money = 20000, money_before_discount = 20000 } },
}

return M
