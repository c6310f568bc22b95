-- policies/examples/user_quota.lua - a validate override.
--
-- Each user may spend at most 20 credits a calendar month with credits, on
-- top of the default booking rules.  Typical use: a tenant pool (shared lots)
-- that one person must not drain alone.
--
-- It reads ctx.user_usage_month, which the engine passes to validate: the
-- credits (milli) the user already spent this month from shared lots, net of
-- refunds.  Were it missing, credit bookings would be refused with a clear
-- message (fail closed), while quotes and card or invoice bookings go
-- through.
--
-- The booking's cost is recomputed from the resource's fixed credits.per_hour
-- (rounded up like the default pricing policy); block or tiered prices would
-- need the engine to pass the computed price as well.

local M = {}

local QUOTA = allot.milli(20)             -- per user and calendar month
local DURATION_S_MAX = 7 * 24 * 3600

-- 1500 -> "1.5"
local function credits_text(milli)
    local text = tostring(milli // 1000)
    local frac = milli % 1000
    if frac ~= 0 then
        local digits = string.format("%03d", frac)
        while string.sub(digits, -1) == "0" do
            digits = string.sub(digits, 1, -2)
        end
        text = text .. "." .. digits
    end
    return text
end

local function booking_cost(ctx)
    local pricing = ctx.resource and ctx.resource.pricing
    local credits = pricing and pricing.credits
    if not credits or not credits.per_hour then
        return 0
    end
    return allot.ceil_div(allot.milli(credits.per_hour) * ctx.booking.minutes, 60)
end

function M.validate(ctx)
    local booking = ctx.booking
    -- The default rules first: an override replaces the whole default module.
    if booking["end"] <= booking.start then
        return { error = "end must be after start" }
    end
    if booking["end"] - booking.start > DURATION_S_MAX then
        return { error = "a booking may last at most 7 days" }
    end
    if booking.payment_method ~= "credits" then
        return true
    end
    local used = ctx.user_usage_month
    if math.type(used) ~= "integer" then
        return { error = "the monthly credit quota cannot be checked: "
            .. "the engine does not pass user_usage_month" }
    end
    local cost = booking_cost(ctx)
    if used + cost > QUOTA then
        return { error = "monthly quota of " .. credits_text(QUOTA) .. " credits reached: "
            .. credits_text(used) .. " used, this booking costs " .. credits_text(cost) }
    end
    return true
end

local function sample(method, used, minutes)
    return {
        booking = { start = 1768377600, ["end"] = 1768377600 + minutes * 60, minutes = minutes,
                    payment_method = method,
                    local_start = { year = 2026, month = 1, day = 14, hour = 8, minute = 0,
                                    wday = 3 } },
        resource = { id = "r1", building_id = "b1", kind = "meeting_room", tags = {},
                     pricing = { credits = { per_hour = 1, increment_minutes = 30 } } },
        user = { id = "u1", tenant_id = "t1", roles = {} },
        user_usage_month = used,
        now = 1768300000,
    }
end

M.examples = {
    -- 18 used + 2 = 20: exactly the quota.
    { ctx = sample("credits", 18000, 120), expect = true },
    -- 18.5 used + 2 > 20.
    { ctx = sample("credits", 18500, 120),
      expect = { error = "monthly quota of 20 credits reached: 18.5 used, this booking costs 2" } },
    -- Paying by card is not limited by the credit quota.
    { ctx = sample("card", 25000, 120), expect = true },
    -- Engine without support: fail closed for credit bookings.
    { ctx = sample("credits", nil, 60),
      expect = { error = "the monthly credit quota cannot be checked: "
          .. "the engine does not pass user_usage_month" } },
}

return M
