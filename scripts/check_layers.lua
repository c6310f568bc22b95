-- check_layers.lua - the engine's layering rules, checked on the source tree.
--
--   lua5.4 scripts/check_layers.lua [engine-dir]
--
-- The layers, lowest first (engine/README.md draws them):
--   util  <-  store  <-  policy  <-  ledger  <-  ops  <-  core  <-  faces
-- where the faces are http/, cli/, lua/ and bin/ (bin may use http/).
--
-- Fails (exit 1, one line per finding) on:
--   * an include of a header from a higher layer (an upward include), or from
--     another directory of the same layer;
--   * an include of store/internal.h (SQLite itself) outside engine/store/;
--   * any sqlite3_ identifier or <sqlite3.h> outside engine/store/, and
--     likewise libpq (<libpq-fe.h>, store_pg.h);
--   * an include cycle among the engine's modules (a module is a .c file and
--     its .h: a.c or a.h including b.h makes a depend on b).

local root = arg[1] or "engine"

local rank = {
  util = 0, store = 1, policy = 2, ledger = 3, ops = 4, core = 5,
  http = 6, cli = 6, lua = 6, bin = 7,
}
-- Same-rank directories that may include each other's headers.
local peers = { }

local function sh_lines(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local files = sh_lines("find " .. root .. " -type f \\( -name '*.c' -o -name '*.h' \\) | sort")
if #files == 0 then
  io.stderr:write("check_layers: no sources under " .. root .. "\n")
  os.exit(2)
end

-- header basename -> directory (headers have unique basenames).
local header_dir = {}
local problems = {}
local function problem(fmt, ...) problems[#problems + 1] = fmt:format(...) end

local function dir_of(path)
  return path:match("^" .. root:gsub("%p", "%%%0") .. "/([^/]+)/")
end

for _, f in ipairs(files) do
  local name = f:match("([^/]+)$")
  if name:match("%.h$") then
    if header_dir[name] and header_dir[name] ~= dir_of(f) then
      problem("%s: header name also used in %s/ (names must be unique)", f, header_dir[name])
    end
    header_dir[name] = dir_of(f)
  end
end

local function module_of(path)
  return dir_of(path) .. "/" .. path:match("([^/]+)%.[ch]$")
end

local deps = {} -- module -> set of modules
for _, f in ipairs(files) do
  local dir = dir_of(f)
  local r = rank[dir]
  if r == nil then
    problem("%s: directory %s/ has no layer (add it to scripts/check_layers.lua)", f, tostring(dir))
  else
    local m = module_of(f)
    deps[m] = deps[m] or {}
    local n = 0
    for line in io.lines(f) do
      n = n + 1
      local code = line:gsub("//.*$", "")
      if dir ~= "store" then
        if code:match("sqlite3_") or code:match("<sqlite3%.h>") then
          problem("%s:%d: SQLite used outside engine/store/", f, n)
        end
        if code:match("<libpq%-fe%.h>") or code:match('"store_pg%.h"') then
          problem("%s:%d: PostgreSQL used outside engine/store/", f, n)
        end
      end
      local inc = code:match('^%s*#%s*include%s+"([^"]+)"')
      if inc then
        local base = inc:match("([^/]+)$")
        local tdir = header_dir[base]
        if tdir ~= nil then
          local tr = rank[tdir]
          if (base == "internal.h" or base == "legacy.h") and tdir == "store" and dir ~= "store" then
            problem("%s:%d: includes store/%s (SQLite) outside engine/store/", f, n, base)
          end
          if tr ~= nil and tr > r then
            problem("%s:%d: upward include of %s/%s from layer %s/", f, n, tdir, base, dir)
          elseif tr == r and tdir ~= dir and not (peers[dir] and peers[dir][tdir]) then
            problem("%s:%d: sideways include of %s/%s from %s/", f, n, tdir, base, dir)
          end
          local tm = tdir .. "/" .. base:gsub("%.h$", "")
          if tm ~= m then deps[m][tm] = true end
        end
      end
    end
  end
end

-- Include cycles among modules (depth-first search, each cycle named once).
local state, stack, seen_cycle = {}, {}, {}
local function visit(m)
  state[m] = "open"
  stack[#stack + 1] = m
  for t in pairs(deps[m] or {}) do
    if state[t] == "open" then
      local cycle, start = {}, nil
      for i, s in ipairs(stack) do
        if s == t then start = i end
        if start then cycle[#cycle + 1] = s end
      end
      cycle[#cycle + 1] = t
      local key = table.concat(cycle, " -> ")
      if not seen_cycle[key] then
        seen_cycle[key] = true
        problem("include cycle: %s", key)
      end
    elseif state[t] == nil and deps[t] then
      visit(t)
    end
  end
  stack[#stack] = nil
  state[m] = "done"
end
local mods = {}
for m in pairs(deps) do mods[#mods + 1] = m end
table.sort(mods)
for _, m in ipairs(mods) do
  if state[m] == nil then visit(m) end
end

for _, p in ipairs(problems) do print(p) end
if #problems > 0 then
  print(("check_layers: %d problem(s) in %d files"):format(#problems, #files))
  os.exit(1)
end
print(("check_layers: %d files, layers and includes clean"):format(#files))
