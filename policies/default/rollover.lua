-- policies/default/rollover.lua - the default rollover rule.
--
-- rollover(ctx) -> { carry = <int milli> }
--
-- At the end of a period the engine asks how much of the line's unused
-- balance moves into the next period; the rest expires.  Default (PRODUCT.md
-- section 3): rollover disabled -> 0; enabled -> min(unused, cap), or all of
-- the unused balance when there is no cap.  Never negative.

local M = {}

function M.rollover(ctx)
    local unused = ctx.unused
    if math.type(unused) ~= "integer" or unused < 0 then
        unused = 0
    end
    local allocation = ctx.allocation or {}
    local rule = allocation.rollover
    if type(rule) ~= "table" or rule.enabled ~= true then
        return { carry = 0 }
    end
    local carry = unused
    if math.type(rule.cap) == "integer" then
        carry = math.min(carry, math.max(rule.cap, 0))
    end
    return { carry = carry }
end

-- Self-checks run by the engine at load time.
local function sample(rule, unused)
    return {
        allocation = { id = "a1", recurrence = "monthly", rollover = rule },
        line = { amount = 10000 },
        unused = unused,
        period_start = 1767225600, -- 2026-01-01
        period_end = 1769904000,   -- 2026-02-01
    }
end

M.examples = {
    -- S2: monthly 10, 3 used, cap 5 -> 5 carried (7 unused, 2 expire).
    { ctx = sample({ enabled = true, cap = 5000 }, 7000), expect = { carry = 5000 } },
    -- Under the cap everything carries.
    { ctx = sample({ enabled = true, cap = 5000 }, 1500), expect = { carry = 1500 } },
    -- No cap: all of the unused balance.
    { ctx = sample({ enabled = true }, 7000), expect = { carry = 7000 } },
    -- S1: use-it-or-lose-it.
    { ctx = sample({ enabled = false }, 7000), expect = { carry = 0 } },
}

return M
