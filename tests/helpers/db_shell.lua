-- SQL run on a test database from beside the engine, whichever backend the
-- database is on: the sqlite3 shell for a file, psql for a postgresql://
-- URI (what tests/helpers/with_pg.sh hands out).  Specs that break the
-- store on purpose, or check a figure with a plain query, go through here
-- so that the same case runs on both backends.
--
--   local D = require "db_shell"
--   D.exec(db, "UPDATE api_key SET revoked_at = 1 WHERE id = 3")  -- asserts success
--   local text = D.text(db, "SELECT count(*) FROM booking")       -- "12\n"
--   local rows = D.json(db, "SELECT id, name FROM building")      -- {{id=1,name=...}}
--
-- Rows come back the same way from both: list mode, fields joined by '|',
-- no header.  The SQL itself must be one both run (the engine's common
-- dialect: see engine/README.md, "PostgreSQL: two drivers").
local cjson = require "cjson"

local M = {}

function M.is_pg(db)
  return type(db) == "string" and db:match("^postgres") ~= nil
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs `sql` (one or more statements) and returns its output, whether the
-- shell succeeded, and what it said on stderr.
function M.run(db, sql)
  local qf = os.tmpname()
  local ef = os.tmpname()
  local f = assert(io.open(qf, "w"))
  local cmd
  if M.is_pg(db) then
    f:write(sql, ";\n")
    cmd = ("psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 %s -f %s 2> %s"):format(q(db), q(qf), q(ef))
  else
    -- the server may hold a lock for a moment: wait for it like psql does
    f:write(".timeout 10000\n.bail on\n", sql, ";\n")
    cmd = ("sqlite3 %s < %s 2> %s"):format(q(db), q(qf), q(ef))
  end
  f:close()
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local ef_h = io.open(ef)
  local stderr = ef_h and ef_h:read("a") or ""
  if ef_h then ef_h:close() end
  os.remove(qf)
  os.remove(ef)
  return out, ok == true, stderr
end

-- Like run, but the statements must succeed; returns the output.
function M.exec(db, sql)
  local out, ok, stderr = M.run(db, sql)
  assert(ok, ("SQL failed on %s: %s\n%s"):format(db, stderr, sql))
  return out
end
M.text = M.exec

-- The rows of one query as a list of records keyed by column name (as
-- `sqlite3 -json` gives them: integers as numbers).
function M.json(db, query)
  local text
  if M.is_pg(db) then
    -- bigint columns must stay numbers, as SQLite's INTEGER do
    text = M.exec(db, ("SELECT coalesce(json_agg(allot_row), '[]') FROM (%s) AS allot_row")
      :format(query))
  else
    local qf = os.tmpname()
    local f = assert(io.open(qf, "w"))
    f:write(".timeout 10000\n", query, ";\n")
    f:close()
    local p = assert(io.popen(("sqlite3 -json %s < %s"):format(q(db), q(qf))))
    text = p:read("a")
    p:close()
    os.remove(qf)
  end
  if text:match("^%s*$") then return {} end
  return cjson.decode(text)
end

-- The first column of the first row, as a number when it reads as one.
function M.scalar(db, query)
  local line = M.exec(db, query):match("^[^\n]*")
  local first = line:match("^[^|]*")
  return tonumber(first) or first
end

return M
