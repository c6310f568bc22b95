-- reports_instr.lua - runs one report once through the Lua module (for
-- reports_instr.sh, under callgrind).
--   lua5.4 reports_instr.lua BUILD_DIR DB POLICIES OP JSON_ARGS
package.cpath = arg[1] .. "/?.so;" .. package.cpath
local allot = require "allot"
local cjson = require "cjson"
local db = assert(allot.open { db = arg[2], policies = arg[3], now = "2027-01-15T00:00:00Z" })
local result, err = db:call(arg[4], cjson.decode(arg[5]))
if not result then
  io.stderr:write(("reports_instr: %s failed: %s\n"):format(arg[4], tostring(err and err.message)))
  os.exit(1)
end
