-- policies/default/refund.lua - the default cancellation refund.
--
-- refund(ctx) -> { credits = <int milli>, money = <int minor units> }
--
-- Default (PRODUCT.md section 5), measured from ctx.now to the booking's start:
--   cancelled by an admin (ctx.by.admin)  -> everything paid;
--   24 h or more before the start         -> everything paid;
--   2 h or more (and less than 24 h)      -> 50 %, rounded down;
--   less than 2 h before, or after start  -> nothing.
-- The same fraction applies to the money of card and invoice bookings (their
-- refund is only recorded).  Rounding never creates credits: always down.
-- ctx.resource ({ id, kind, tags }) is passed too; the default ignores it.

local M = {}

local HOUR = 3600
local PERCENT_PM = 100000 -- 100 % in thousandths of a percent

-- Refund share of what was paid, by how long before the start the booking
-- is cancelled; the first row whose `before_s` is reached applies.
local WINDOWS = {
    { before_s = 24 * HOUR, share_pm = 100000 },
    { before_s = 2 * HOUR, share_pm = 50000 },
}

-- floor(amount * pm / 100000) without overflow; 0 for a missing amount.
local function part(amount, pm)
    if math.type(amount) ~= "integer" or amount <= 0 then
        return 0
    end
    return (amount // PERCENT_PM) * pm + ((amount % PERCENT_PM) * pm) // PERCENT_PM
end

function M.refund(ctx)
    local booking = ctx.booking or {}
    local share = 0
    if type(ctx.by) == "table" and ctx.by.admin == true then
        share = PERCENT_PM
    else
        local before = booking.start - ctx.now
        for _, w in ipairs(WINDOWS) do
            if before >= w.before_s then
                share = w.share_pm
                break
            end
        end
    end
    return { credits = part(booking.credits, share), money = part(booking.money, share) }
end

-- Self-checks run by the engine at load time (S7: 4 credits paid).
local START = 1768377600 -- 2026-01-14 08:00 UTC
local function sample(hours_before, admin)
    return {
        booking = { id = "bk1", start = START, ["end"] = START + HOUR,
                    payment_method = "credits", credits = 4000, money = nil,
                    created_at = START - 7 * 24 * HOUR },
        resource = { id = "r1", kind = "meeting_room", tags = {} },
        now = START - hours_before * HOUR,
        by = admin and { role = "manager", admin = true }
            or { role = "tenant_user", admin = false },
    }
end

M.examples = {
    { ctx = sample(30), expect = { credits = 4000, money = 0 } },
    { ctx = sample(5), expect = { credits = 2000, money = 0 } },
    { ctx = sample(-1), expect = { credits = 0, money = 0 } },
    { ctx = sample(-1, true), expect = { credits = 4000, money = 0 } },
    -- A card booking of 70.01 cancelled 3 h before: half, rounded down.
    { ctx = { booking = { id = "bk2", start = START, ["end"] = START + HOUR,
                          payment_method = "card", money = 7001, created_at = START - HOUR * 48 },
              resource = { id = "r1", kind = "meeting_room", tags = {} },
              now = START - 3 * HOUR, by = { role = "tenant_user", admin = false } },
      expect = { credits = 0, money = 3500 } },
}

return M
