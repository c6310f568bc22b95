-- policies/default/validate.lua - the default booking rules.
--
-- validate(ctx) -> true | { error = "message" }
--
-- Called for quotes (booking.payment_method == nil) and bookings.  Default:
-- the end must be after the start, and a booking lasts at most 7 days.
-- (Durations that do not fit the resource's increment are refused by the
-- pricing policy.)

local M = {}

local DURATION_S_MAX = 7 * 24 * 3600 -- 10080 minutes
local type = type -- a local: one register instead of a lookup through _ENV

function M.validate(ctx)
    local booking = ctx.booking or {}
    local start, stop = booking.start, booking["end"]
    if type(start) ~= "number" or type(stop) ~= "number" then
        return { error = "start and end are required" }
    end
    if stop <= start then
        return { error = "end must be after start" }
    end
    if stop - start > DURATION_S_MAX then
        return { error = "a booking may last at most 7 days" }
    end
    return true
end

-- Self-checks run by the engine at load time.
local START = 1768377600 -- 2026-01-14 08:00 UTC, a Wednesday
local function sample(seconds)
    return {
        booking = { start = START, ["end"] = START + seconds, minutes = seconds // 60,
                    payment_method = "credits",
                    local_start = { year = 2026, month = 1, day = 14, hour = 8, minute = 0,
                                    wday = 3 } },
        resource = { id = "r1", building_id = "b1", kind = "meeting_room", tags = {} },
        user = { id = "u1", tenant_id = "t1", roles = {} },
        now = START - 86400,
    }
end

M.examples = {
    { ctx = sample(3600), expect = true },
    { ctx = sample(0), expect = { error = "end must be after start" } },
    { ctx = sample(-3600), expect = { error = "end must be after start" } },
    { ctx = sample(7 * 86400), expect = true },
    { ctx = sample(7 * 86400 + 60), expect = { error = "a booking may last at most 7 days" } },
}

return M
