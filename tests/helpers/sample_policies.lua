-- Policy sources the specs upload: PREMIUM prices 3 credits and 100.00 an
-- hour, and carries its own self-check example.
local M = {}

M.PREMIUM = [[
local M = {}
function M.price(ctx)
  local minutes = ctx.booking.minutes
  return { credits = allot.ceil_div(3000 * minutes, 60), unit = "hour",
           money = 10000 * minutes // 60, money_before_discount = 10000 * minutes // 60 }
end
M.examples = { { ctx = { booking = { minutes = 60 } },
                 expect = { credits = 3000, unit = "hour", money = 10000,
                            money_before_discount = 10000 } } }
return M
]]

return M
