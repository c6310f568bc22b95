-- One booking client of scripts/chaos.sh: books distinct 30-minute slots
-- one after another on a fresh connection each, every request with its own
-- Idempotency-Key, and logs before and after each request (unbuffered, so
-- a SIGKILL loses nothing that was written):
--   S <key> <slot>        about to send
--   A <key> <booking id>  answered 201
--   E <key> <status>      answered something else
--   lua5.4 worker.lua URL KEY ROOM USER FIRST_SLOT COUNT LOG PREFIX
local http = require "socket.http"
local ltn12 = require "ltn12"

local url, key, room, user = arg[1], arg[2], arg[3], arg[4]
local first, count, log_path, prefix = tonumber(arg[5]), tonumber(arg[6]), arg[7], arg[8]
local log = assert(io.open(log_path, "a"))
log:setvbuf("no")
http.TIMEOUT = 30

local BASE = os.time { year = 2026, month = 2, day = 1, hour = 0 }

local function body_of(slot)
  local s = BASE + slot * 1800
  return ('{"resource_id":"%s","user_id":"%s","start":"%s","end":"%s",'
    .. '"payment_method":"credits"}'):format(room, user, os.date("!%Y-%m-%dT%H:%M:%SZ", s),
                                             os.date("!%Y-%m-%dT%H:%M:%SZ", s + 1800))
end

for n = 0, count - 1 do
  local slot = first + n
  local idem = prefix .. "-" .. slot
  local body = body_of(slot)
  log:write(("S %s %d\n"):format(idem, slot))
  local out = {}
  local ok, status = http.request {
    url = url .. "/v1/bookings", method = "POST", source = ltn12.source.string(body),
    sink = ltn12.sink.table(out),
    headers = { ["content-type"] = "application/json", ["content-length"] = #body,
                authorization = "Bearer " .. key, ["idempotency-key"] = idem },
  }
  if not ok then os.exit(0) end -- the server is gone: this cycle is over
  local text = table.concat(out)
  if status == 201 then
    log:write(("A %s %s\n"):format(idem, text:match('"id":"(bkg_%d+)"') or "?"))
  else
    log:write(("E %s %s\n"):format(idem, tostring(status)))
  end
end
