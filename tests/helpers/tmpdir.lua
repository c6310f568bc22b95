-- Temporary directories for the specs, each removed with everything in it
-- when the Lua state closes: busted ends with os.exit(code, true), which
-- closes the state and so runs the finalizer below.  ALLOT_KEEP_TMP=1
-- keeps them, for looking at a failed spec's database.
local M = {}

local made = {}
local keep = (os.getenv("ALLOT_KEEP_TMP") or "") ~= ""

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

M._remover = setmetatable({}, {
  __gc = function()
    if keep then return end
    for i = #made, 1, -1 do
      os.execute("rm -rf " .. quote(made[i]))
    end
  end,
})

function M.new()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. quote(p)))
  made[#made + 1] = p
  return p
end

return M
