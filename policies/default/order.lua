-- policies/default/order.lua - the default consumption order.
--
-- order(ctx) -> { lot_id, ... }   a permutation of the ids in ctx.lots
--
-- The engine debits the eligible lots in the returned order.  Keys, most
-- significant first (PRODUCT.md section 3, "Which lot pays"):
--   1. limited lots before unlimited lots;
--   2. specific-resource lines (scope ~= "all") before all-resource lines;
--   3. per-user lots before shared lots;
--   4. earliest expiry first (valid_until ascending, never-expiring last);
--   5. recurring lots before once lots;
--   6. oldest allocation first (allocation_seq ascending);
--   7. rollover lots (carried-over credit) before the others;
--   8. id ascending (byte-wise string compare), so the order is total.
-- Missing booleans count as false, a missing allocation_seq as newest.

local M = {}

-- 0 sorts before 1.
local function rank(flag_first)
    return flag_first and 0 or 1
end

local function key(lot)
    return {
        lot.unlimited == true and 1 or 0,
        rank(lot.scope ~= "all"),
        rank(lot.per_user == true),
        math.type(lot.valid_until) and lot.valid_until or math.maxinteger,
        rank(lot.recurring == true),
        math.type(lot.allocation_seq) and lot.allocation_seq or math.maxinteger,
        rank(lot.rollover == true),
    }
end

function M.order(ctx)
    local entries = {}
    for i, lot in ipairs(ctx.lots or {}) do
        entries[i] = { id = tostring(lot.id), key = key(lot) }
    end
    -- Lexicographic on the key, then on the id: a strict weak order.
    table.sort(entries, function(a, b)
        for i = 1, #a.key do
            if a.key[i] ~= b.key[i] then
                return a.key[i] < b.key[i]
            end
        end
        return a.id < b.id
    end)
    local ids = {}
    for i, e in ipairs(entries) do
        ids[i] = e.id
    end
    return ids
end

-- Self-checks run by the engine at load time.
local function lot(id, fields)
    local l = {
        id = id, scope = "all", per_user = false, valid_from = 1767225600,
        valid_until = nil, recurring = false, rollover = false,
        allocation_id = "a1", allocation_seq = 1, unlimited = false, balance = 1000,
    }
    for k, v in pairs(fields) do
        l[k] = v
    end
    return l
end

local booking = { start = 1770710400, ["end"] = 1770714000, minutes = 60 }

M.examples = {
    -- S5: never-expiring 10, 5 expiring 31 Mar, 3 expiring 28 Feb.
    { ctx = { booking = booking, lots = {
          lot("never", { balance = 10000 }),
          lot("mar", { valid_until = 1774915200, balance = 5000, allocation_seq = 2 }),
          lot("feb", { valid_until = 1772236800, balance = 3000, allocation_seq = 3 }) } },
      expect = { "feb", "mar", "never" } },
    -- Unlimited last even when it expires first; roof-deck line before "all".
    { ctx = { booking = booking, lots = {
          lot("unl", { unlimited = true, valid_until = 1772236800, recurring = true }),
          lot("all", { valid_until = 1774915200 }),
          lot("roof", { scope = "resources", valid_until = 1775001600 }) } },
      expect = { "roof", "all", "unl" } },
    -- Per-user before shared; then recurring before once at equal expiry.
    { ctx = { booking = booking, lots = {
          lot("shared_once", { valid_until = 1772236800 }),
          lot("shared_monthly", { valid_until = 1772236800, recurring = true }),
          lot("mine", { per_user = true, valid_until = 1774915200 }) } },
      expect = { "mine", "shared_monthly", "shared_once" } },
    -- Same lot shape: older allocation first, then the rollover lot, then id.
    { ctx = { booking = booking, lots = {
          lot("b", { allocation_seq = 2 }),
          lot("z", { allocation_seq = 1 }),
          lot("y", { allocation_seq = 1, rollover = true }),
          lot("a", { allocation_seq = 2 }) } },
      expect = { "y", "z", "a", "b" } },
}

return M
