-- policies/examples/auditorium_refund.lua - a refund override.
--
-- Auditoriums (resource kind "auditorium") are expensive to leave empty:
-- full refund 7 days or more before the start, 50 % from 72 hours, nothing
-- later.  Every other resource keeps the default windows (24 h / 2 h).  An
-- admin's cancellation refunds in full.  Rounding is always down.

local M = {}

local HOUR = 3600
local FULL_PM = 100000

local DEFAULT_WINDOWS = {
    { before_s = 24 * HOUR, share_pm = 100000 },
    { before_s = 2 * HOUR, share_pm = 50000 },
}
local AUDITORIUM_WINDOWS = {
    { before_s = 7 * 24 * HOUR, share_pm = 100000 },
    { before_s = 72 * HOUR, share_pm = 50000 },
}

local function part(amount, share_pm)
    if math.type(amount) ~= "integer" or amount <= 0 then
        return 0
    end
    return (amount // FULL_PM) * share_pm + ((amount % FULL_PM) * share_pm) // FULL_PM
end

function M.refund(ctx)
    local booking = ctx.booking
    local share = 0
    if ctx.by and ctx.by.admin then
        share = FULL_PM
    else
        local windows = DEFAULT_WINDOWS
        if ctx.resource and ctx.resource.kind == "auditorium" then
            windows = AUDITORIUM_WINDOWS
        end
        local before = booking.start - ctx.now
        for _, w in ipairs(windows) do
            if before >= w.before_s then
                share = w.share_pm
                break
            end
        end
    end
    return { credits = part(booking.credits, share), money = part(booking.money, share) }
end

local START = 1768377600
local function sample(kind, hours_before, admin)
    return {
        booking = { id = "bk1", start = START, ["end"] = START + 4 * HOUR,
                    payment_method = "credits", credits = 40000,
                    created_at = START - 30 * 24 * HOUR },
        resource = { id = "r9", kind = kind, tags = {} },
        now = START - hours_before * HOUR,
        by = { role = admin and "manager" or "tenant_user", admin = admin or false },
    }
end

M.examples = {
    { ctx = sample("auditorium", 7 * 24), expect = { credits = 40000, money = 0 } },
    { ctx = sample("auditorium", 100), expect = { credits = 20000, money = 0 } },
    { ctx = sample("auditorium", 30), expect = { credits = 0, money = 0 } },
    { ctx = sample("auditorium", 30, true), expect = { credits = 40000, money = 0 } },
    -- A meeting room cancelled 30 h before: the default full refund.
    { ctx = sample("meeting_room", 30), expect = { credits = 40000, money = 0 } },
}

return M
