-- repl.lua - the Lua half of `allot repl` (repl.c owns the terminal, the
-- signals and the read-eval loop; this file is compiled into the program).
--
-- It gives the console its handle `db`: the engine in this process (the
-- module `allot`, as the super_admin principal "console"), or a running
-- allotd reached over its HTTP API with an API key.  Both answer the same
-- methods with the same shapes: db:call(op, args, opts) -> result, status,
-- replayed | nil, {status, code, message, field}, and the friendly names of
-- the module (db:quote{...}, db:wallet{...}, ...).  It also prints results
-- as readable tables, lists completion candidates and holds help().
local M = {}

local LIST_CELL_WIDTH_MAX = 40   -- a wider table cell is cut, so rows stay on one line
local INLINE_DEPTH_MAX = 4       -- nesting shown inside one cell before "{...}"
local FLATTEN_DEPTH_MAX = 3      -- nested records shown as dotted keys up to this depth
local HTTP_TIMEOUT_S = 60

-- Every operation the engine offered when this was written: only Tab
-- completion and help() use the list.  db:call accepts any name, so a new
-- operation works here without a change.
local KNOWN_OPS = {
    "me", "keys.create", "verify",
    "buildings.create", "buildings.get", "buildings.list", "buildings.patch",
    "resources.create", "resources.get", "resources.list", "resources.patch",
    "tenants.create", "tenants.get", "tenants.list", "tenants.patch",
    "users.create", "users.get", "users.list", "users.patch",
    "allocations.create", "allocations.get", "allocations.list", "allocations.end",
    "wallet", "adjustments.create", "entries.list",
    "quotes.create", "bookings.create", "bookings.get", "bookings.list", "bookings.cancel",
    "reports.datahub", "reports.dashboard", "reports.credits", "reports.usage",
    "policies.get", "policies.put", "policies.delete", "policies.history",
    "policies.rollback", "policies.simulate", "policies.reload",
}

local KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

-- ---------------------------------------------------------------------
-- Remote handle: the same methods over the HTTP API
-- ---------------------------------------------------------------------

-- Routes that do not follow the general rule of route_of() below, written
-- as in API.md.  "{name}" takes args.name; `how` says where the other
-- arguments go: "body" (a JSON object), "query", "none" (the server refuses
-- any) or "lua" (args.source is sent as text/x-lua).
local ROUTES = {
    me = { "GET", "/v1/me", "none" },
    verify = { "GET", "/v1/verify", "none" },
    wallet = { "GET", "/v1/users/{user_id}/wallet", "query" },
    ["reports.datahub"] = { "GET", "/v1/reports/datahub", "query" },
    ["reports.dashboard"] = { "GET", "/v1/reports/dashboard", "query" },
    ["reports.credits"] = { "GET", "/v1/reports/credits", "query" },
    ["reports.usage"] = { "GET", "/v1/reports/usage", "query" },
    ["policies.get"] = { "GET", "/v1/buildings/{building_id}/policies", "none" },
    ["policies.put"] = { "PUT", "/v1/buildings/{building_id}/policies/{kind}", "lua" },
    ["policies.delete"] = { "DELETE", "/v1/buildings/{building_id}/policies/{kind}", "none" },
    ["policies.history"] = { "GET", "/v1/buildings/{building_id}/policies/{kind}/history",
                             "none" },
    ["policies.rollback"] = { "POST", "/v1/buildings/{building_id}/policies/{kind}/rollback",
                              "body" },
    ["policies.simulate"] = { "POST", "/v1/buildings/{building_id}/policies/{kind}/simulate",
                              "body" },
    ["policies.reload"] = { "POST", "/v1/policies/reload", "none" },
}

-- The API names its routes after its operations: "things.list" is GET
-- /v1/things, "things.get" GET /v1/things/{id}, "things.create" POST
-- /v1/things, "things.patch" PATCH /v1/things/{id}, any other "things.verb"
-- POST /v1/things/{id}/verb.  So an operation added to the engine and to
-- the API usually needs no entry above.
local function route_of(op)
    if ROUTES[op] then
        return table.unpack(ROUTES[op])
    end
    local things, verb = op:match("^([%w_]+)%.([%w_]+)$")
    if things == nil then
        return nil
    elseif verb == "list" then
        return "GET", "/v1/" .. things, "query"
    elseif verb == "get" then
        return "GET", "/v1/" .. things .. "/{id}", "none"
    elseif verb == "create" then
        return "POST", "/v1/" .. things, "body"
    elseif verb == "patch" then
        return "PATCH", "/v1/" .. things .. "/{id}", "body"
    end
    return "POST", "/v1/" .. things .. "/{id}/" .. verb, "body"
end

-- JSON text of a Lua value, by the module's own rule (allot_module.c): a
-- table whose keys are exactly 1..n is an array (so {} is []), any other
-- table an object with string keys.  The top level is always an object.
local encode

local ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function encode_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return ESCAPES[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
end

local function encode_table(t, depth, top)
    local n, count = #t, 0
    for _ in pairs(t) do count = count + 1 end
    local parts = {}
    if count == n and not (top and n == 0) then
        for i = 1, n do parts[i] = encode(t[i], depth + 1) end
        return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(t) do
        if type(k) ~= "string" then
            error("tables must be arrays or have string keys", 0)
        end
        parts[#parts + 1] = encode_string(k) .. ":" .. encode(v, depth + 1)
    end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
end

function encode(v, depth, top)
    if depth > 32 then
        error("value nested too deeply", 0)
    end
    local t = type(v)
    if v == nil then
        return "null"
    elseif t == "boolean" then
        return tostring(v)
    elseif t == "number" then
        if math.type(v) == "integer" then
            return ("%d"):format(v)
        elseif v ~= v or v == math.huge or v == -math.huge then
            error("cannot pass NaN or infinity to the engine", 0)
        end
        local s = ("%.17g"):format(v)
        return s:find("[.eE]") and s or s .. ".0"
    elseif t == "string" then
        return encode_string(v)
    elseif t == "table" then
        return encode_table(v, depth, top)
    end
    error("cannot pass a " .. t .. " to the engine", 0)
end

-- A decoded answer in the shapes the module gives: JSON null is an absent
-- value and whole numbers are integers (cjson decodes every number as a
-- float; the engine writes whole amounts as JSON integers).
local function plain(v, null)
    if v == null then
        return nil
    elseif type(v) == "number" then
        return math.tointeger(v) or v
    elseif type(v) == "table" then
        local out = {}
        for k, x in pairs(v) do out[k] = plain(x, null) end
        return out
    end
    return v
end

local function url_escape(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function failure(status, code, message, field)
    return nil, { status = status, code = code, message = message, field = field }
end

local Remote = {}
local RemoteMeta = { __index = Remote, __name = "allot.remote" }

function RemoteMeta.__tostring(self)
    return "allot.remote: " .. self.url
end

-- Fills the route's "{name}" segments from args; returns the path and the
-- arguments left for the body or the query, or nil and the missing name.
local function fill_path(pattern, args)
    local rest = {}
    for k, v in pairs(args) do rest[k] = v end
    local missing
    local path = pattern:gsub("{([%w_]+)}", function(name)
        local v = rest[name]
        if v == nil or type(v) == "table" then
            missing = missing or name
            return ""
        end
        rest[name] = nil
        return url_escape(v)
    end)
    return missing == nil and path or nil, missing or rest
end

local function query_of(args)
    local parts = {}
    for k, v in pairs(args) do
        if type(v) == "table" then
            return nil, k
        end
        parts[#parts + 1] = url_escape(k) .. "=" .. url_escape(tostring(v))
    end
    table.sort(parts)
    return #parts > 0 and "?" .. table.concat(parts, "&") or ""
end

-- Sends one request; returns the status, the body text and the headers,
-- or nil and an error table.
function Remote:request(method, path, body, headers)
    local out = {}
    headers = headers or {}
    headers.authorization = "Bearer " .. self.key
    if body ~= nil then
        headers["content-length"] = tostring(#body)
    end
    self.http.TIMEOUT = HTTP_TIMEOUT_S
    local ok, status, rh = self.http.request {
        url = self.url .. path, method = method, headers = headers,
        source = body and self.ltn12.source.string(body) or nil,
        sink = self.ltn12.sink.table(out),
    }
    if not ok or type(status) ~= "number" then
        return failure(503, "unreachable", ("%s: %s"):format(self.url, tostring(status)))
    end
    return status, table.concat(out), rh or {}
end

-- db:call(op, args, opts) over HTTP, answering like the module's db:call.
function Remote:call(op, args, opts)
    if type(op) ~= "string" then
        error("bad argument #1 to 'call' (string expected)", 2)
    elseif args ~= nil and type(args) ~= "table" then
        error("bad argument #2 to 'call' (a table or nil expected)", 2)
    end
    local method, pattern, how = route_of(op)
    if method == nil then
        return failure(404, "not_found", ("no operation '%s' over HTTP"):format(op))
    end
    local path, rest = fill_path(pattern, args or {})
    if path == nil then
        return failure(400, "invalid_request", ("'%s' is required"):format(rest), rest)
    end
    local headers, body = {}, nil
    if how == "body" then
        body = encode(rest, 0, true)
        headers["content-type"] = "application/json"
    elseif how == "lua" then
        body = type(rest.source) == "string" and rest.source or ""
        rest.source = nil
        headers["content-type"] = "text/x-lua"
    end
    if how ~= "body" then
        local query, bad = query_of(rest)
        if query == nil then
            return failure(400, "invalid_request", ("'%s' cannot be a query parameter"):format(bad),
                           bad)
        end
        path = path .. query
    end
    if type(opts) == "table" and opts.idempotency_key ~= nil then
        headers["idempotency-key"] = tostring(opts.idempotency_key)
    end
    local status, text, rh = self:request(method, path, body, headers)
    if status == nil then
        return nil, text
    end
    if (rh["content-type"] or ""):find("text/csv", 1, true) then
        return { csv = text }, status, false
    end
    if text == "" and status < 400 then
        return {}, status, false
    end
    local decoded = self.cjson.decode(text)
    if type(decoded) ~= "table" then
        return failure(status >= 400 and status or 502, "bad_response",
                       ("%s %s answered %d with no JSON"):format(method, path, status))
    end
    decoded = plain(decoded, self.cjson.null)
    if status >= 400 then
        local e = type(decoded.error) == "table" and decoded.error or {}
        local details = type(e.details) == "table" and e.details or {}
        return failure(status, e.code or "http_" .. status, e.message or text, details.field)
    end
    return decoded, status, rh["idempotent-replayed"] == "true"
end

-- The test clock of `allotd --fake-clock`.
function Remote:set_clock(now)
    local status, text = self:request("PUT", "/v1/clock", encode({ now = now }, 0, true),
                                      { ["content-type"] = "application/json" })
    if status == nil then
        return nil, text
    elseif status ~= 200 then
        local decoded = self.cjson.decode(text)
        local e = type(decoded) == "table" and type(decoded.error) == "table" and decoded.error
                  or {}
        return failure(status, e.code or "http_" .. status, e.message or text)
    end
    return true
end

function Remote:now()
    return failure(501, "not_available", "the server's clock is not readable over HTTP")
end

-- Another principal needs its own API key: db:as{key = "allot_..."}.
function Remote:as(who)
    if type(who) ~= "table" or type(who.key) ~= "string" then
        error("attached to a server, db:as needs {key = <another API key>}", 2)
    end
    return M.remote(self.url, who.key, self.operations)
end

-- db:verify() as the module answers it: ok, {problems}.
function Remote:verify()
    local r, err = self:call("verify")
    if r == nil then
        error(("verify: %s"):format(err.message), 2)
    end
    return r.ok, r.problems or {}
end

function Remote:close()
end

-- A handle on the server at `url` with API key `key`; `operations` maps the
-- module's friendly names to operations.
function M.remote(url, key, operations)
    local self = setmetatable({
        url = (url:gsub("/+$", "")), key = key, operations = operations,
        http = require "socket.http", ltn12 = require "ltn12", cjson = require "cjson.safe",
    }, RemoteMeta)
    for name, op in pairs(operations or {}) do
        if Remote[name] == nil then
            Remote[name] = function(h, args, opts) return h:call(op, args, opts) end
        end
    end
    return self
end

-- ---------------------------------------------------------------------
-- Printing results
-- ---------------------------------------------------------------------

local function is_array(t)
    local n, count = #t, 0
    for _ in pairs(t) do count = count + 1 end
    return n > 0 and count == n
end

local function is_record(v)
    return type(v) == "table" and next(v) ~= nil and not is_array(v)
end

local function is_error(v)
    return type(v) == "table" and math.type(v.status) == "integer" and type(v.code) == "string"
        and type(v.message) == "string"
end

local function list_of_records(t)
    if not is_array(t) then
        return false
    end
    for _, v in ipairs(t) do
        if not is_record(v) then return false end
    end
    return true
end

-- A table of records that all have the same keys ({pricing = {...},
-- order = {...}}): shown as a table with the key in its first column.
local function map_of_records(t)
    local shape, count = nil, 0
    for k, v in pairs(t) do
        if type(k) ~= "string" or not is_record(v) then
            return false
        end
        local keys = {}
        for key in pairs(v) do keys[#keys + 1] = tostring(key) end
        table.sort(keys)
        local this = table.concat(keys, "\0")
        if shape ~= nil and this ~= shape then
            return false
        end
        shape, count = this, count + 1
    end
    return count >= 2
end

-- "id" first, then "name", then the rest in order.
local function key_before(a, b)
    local function rank(k)
        return k == "id" and 0 or k == "name" and 1 or type(k) == "number" and 2 or 3
    end
    local ra, rb = rank(a), rank(b)
    if ra ~= rb then
        return ra < rb
    elseif ra == 2 then
        return a < b
    end
    return tostring(a) < tostring(b)
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, key_before)
    return keys
end

local function scalar(v)
    if math.type(v) == "float" then
        -- Amounts carry at most 3 decimals; 14 digits hide binary noise.
        local s = ("%.14g"):format(v)
        return s:find("[.eEn]") and s or s .. ".0"
    end
    return tostring(v)
end

-- One value on one line: [a, b] and {k = v}.
local function inline(v, depth)
    depth = depth or 0
    if type(v) ~= "table" then
        return scalar(v)
    elseif next(v) == nil then
        return "{}"
    elseif depth >= INLINE_DEPTH_MAX then
        return "{...}"
    end
    local parts = {}
    if is_array(v) then
        for i, x in ipairs(v) do parts[i] = inline(x, depth + 1) end
        return "[" .. table.concat(parts, ", ") .. "]"
    end
    for _, k in ipairs(sorted_keys(v)) do
        parts[#parts + 1] = tostring(k) .. " = " .. inline(v[k], depth + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
end

local function width(s)
    return utf8.len(s) or #s
end

local function cut(s, w)
    if width(s) <= w then
        return s
    end
    local stop = utf8.offset(s, w - 2)
    return (stop and s:sub(1, stop - 1) or s:sub(1, w - 3)) .. "..."
end

local function pad(s, w, right)
    local gap = (" "):rep(w - width(s))
    return right and gap .. s or s .. gap
end

local function emit(out, indent, line)
    out[#out + 1] = indent .. (line:gsub("%s+$", ""))
end

-- A list of records as columns: a header, a rule, one row each.
local function format_table(rows, keys, indent, out)
    local columns, seen = {}, {}
    if keys then
        columns[1] = "key"
    end
    for _, row in ipairs(rows) do
        for _, k in ipairs(sorted_keys(row)) do
            if not seen[k] then
                seen[k] = true
                columns[#columns + 1] = k
            end
        end
    end
    -- A map whose records repeat their own key ({pricing = {kind = "pricing"}})
    -- would show it twice.
    if keys then
        for _, c in ipairs(columns) do
            local same = c ~= "key"
            for i, row in ipairs(rows) do same = same and row[c] == keys[i] end
            if same then
                table.remove(columns, 1)
                keys = nil
                break
            end
        end
    end
    local cells, widths, numeric = {}, {}, {}
    for c, name in ipairs(columns) do
        widths[c], numeric[c] = width(tostring(name)), true
    end
    for i, row in ipairs(rows) do
        cells[i] = {}
        for c, name in ipairs(columns) do
            local v = (keys and c == 1) and keys[i] or row[name]
            local text = v == nil and "" or cut(inline(v):gsub("\n", " "), LIST_CELL_WIDTH_MAX)
            cells[i][c] = text
            widths[c] = math.max(widths[c], width(text))
            numeric[c] = numeric[c] and (v == nil or type(v) == "number")
        end
    end
    local header, rule = {}, {}
    for c, name in ipairs(columns) do
        header[c] = pad(tostring(name), widths[c], numeric[c])
        rule[c] = ("-"):rep(widths[c])
    end
    emit(out, indent, table.concat(header, "  "))
    emit(out, indent, table.concat(rule, "  "))
    for i = 1, #rows do
        local line = {}
        for c = 1, #columns do line[c] = pad(cells[i][c], widths[c], numeric[c]) end
        emit(out, indent, table.concat(line, "  "))
    end
end

local format_value

-- A record as aligned "key  value" lines; nested records become dotted
-- keys, lists of records and long texts follow as indented blocks.
local function format_record(t, indent, out)
    local rows, blocks = {}, {}
    local function flatten(v, prefix, depth)
        for _, k in ipairs(sorted_keys(v)) do
            local x, name = v[k], prefix .. tostring(k)
            if type(x) == "string" and x:find("\n") then
                blocks[#blocks + 1] = { name, x }
            elseif type(x) ~= "table" or next(x) == nil then
                rows[#rows + 1] = { name, type(x) == "table" and "(empty)" or scalar(x) }
            elseif list_of_records(x) or map_of_records(x) then
                blocks[#blocks + 1] = { name, x }
            elseif is_array(x) then
                local parts = {}
                for i, e in ipairs(x) do parts[i] = inline(e) end
                rows[#rows + 1] = { name, table.concat(parts, ", ") }
            elseif depth < FLATTEN_DEPTH_MAX then
                flatten(x, name .. ".", depth + 1)
            else
                rows[#rows + 1] = { name, inline(x) }
            end
        end
    end
    flatten(t, "", 1)
    local w = 0
    for _, r in ipairs(rows) do w = math.max(w, width(r[1])) end
    for _, r in ipairs(rows) do
        emit(out, indent, pad(r[1], w) .. "  " .. r[2])
    end
    for _, b in ipairs(blocks) do
        emit(out, indent, b[1] .. ":")
        format_value(b[2], indent .. "  ", out)
    end
end

function format_value(v, indent, out)
    if is_error(v) then
        local line = ("error %d %s: %s"):format(v.status, v.code, v.message)
        if v.field ~= nil and v.field ~= "" then
            line = line .. (" (field %s)"):format(v.field)
        end
        emit(out, indent, line)
    elseif type(v) == "string" then
        for line in (v:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do
            emit(out, indent, line)
        end
    elseif type(v) ~= "table" then
        emit(out, indent, scalar(v))
    elseif next(v) == nil then
        emit(out, indent, "(empty)")
    elseif list_of_records(v) then
        format_table(v, nil, indent, out)
    elseif map_of_records(v) then
        local keys, rows = sorted_keys(v), {}
        for i, k in ipairs(keys) do rows[i] = v[k] end
        format_table(rows, keys, indent, out)
    elseif is_array(v) then
        for _, x in ipairs(v) do emit(out, indent, inline(x)) end
    else
        format_record(v, indent, out)
    end
end

-- The text shown for a value.
function M.format(v)
    local out = {}
    format_value(v, "", out)
    return table.concat(out, "\n")
end

-- Prints what a command returned.  An operation's answer (result, status,
-- replayed) shows the result alone; its failure (nil, error) one error line.
function M.show(...)
    local n = select("#", ...)
    local first, second, third = ...
    if n >= 2 and first == nil and is_error(second) then
        print(M.format(second))
        return
    end
    if n == 3 and type(first) == "table" and math.type(second) == "integer" and
        type(third) == "boolean" then
        print(M.format(first))
        if third then
            print("(replayed: the first answer to this idempotency key)")
        end
        return
    end
    for i = 1, n do
        print(M.format((select(i, ...))))
    end
end

-- The message for a raised error: engine error tables read as in show().
function M.format_error(e)
    if is_error(e) then
        return M.format(e)
    elseif type(e) == "string" then
        return "error: " .. e
    end
    local mt = getmetatable(e)
    if type(mt) == "table" and mt.__tostring then
        return "error: " .. tostring(e)
    end
    return ("error: (an error object of type %s)"):format(type(e))
end

-- ---------------------------------------------------------------------
-- Compiling input
-- ---------------------------------------------------------------------

-- A function for the input, nil and true when it is an unfinished
-- statement (the parser stopped at <eof>: keep reading), or nil and the
-- syntax error.  An expression is tried first so that its value prints.
function M.compile(chunk)
    local fn = load("return " .. chunk, "=stdin", "t")
    if fn then
        return fn
    end
    local err
    fn, err = load(chunk, "=stdin", "t")
    if fn then
        return fn
    elseif err:sub(-5) == "<eof>" then
        return nil, true
    end
    return nil, err
end

-- ---------------------------------------------------------------------
-- Completion
-- ---------------------------------------------------------------------

local function fields_of(v, methods_only)
    local names, seen, guard = {}, {}, 0
    local function add(t)
        for k, x in pairs(t) do
            if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k] and
                (not methods_only or type(x) == "function") then
                seen[k] = true
                names[#names + 1] = k
            end
        end
    end
    -- Own fields, then each __index table up the chain (bounded: a chain
    -- could loop).
    while v ~= nil and guard < 8 do
        guard = guard + 1
        if type(v) == "table" then
            add(v)
        end
        local mt = (type(v) == "table" or type(v) == "userdata") and getmetatable(v) or nil
        v = type(mt) == "table" and type(rawget(mt, "__index")) == "table" and mt.__index or nil
    end
    return names
end

-- Candidates replacing line:sub(start + 1, stop) (readline's offsets are
-- 0-based): operation names inside quotes, fields after "a.b." or "a:",
-- globals and keywords otherwise.
function M.complete(line, start, stop)
    local text = line:sub(start + 1, stop)
    local quote = line:sub(start, start)
    local out = {}
    if quote == '"' or quote == "'" then
        local ops, seen = {}, {}
        for _, op in ipairs(KNOWN_OPS) do ops[#ops + 1], seen[op] = op, true end
        for _, op in pairs(M.operations or {}) do
            if not seen[op] then ops[#ops + 1], seen[op] = op, true end
        end
        for _, op in ipairs(ops) do
            if op:sub(1, #text) == text then out[#out + 1] = op end
        end
        table.sort(out)
        return out
    end
    local path, sep, prefix = text:match("^([%a_][%w_%.:]-)([%.:])([%w_]*)$")
    local names, base = {}, ""
    if path then
        local v = _G
        for part in path:gmatch("[^%.:]+") do
            v = (type(v) == "table" or type(v) == "userdata") and v[part] or nil
        end
        if v == nil then
            return out
        end
        names, base = fields_of(v, sep == ":"), path .. sep
    else
        prefix = text
        names = fields_of(_G, false)
        for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
    end
    for _, k in ipairs(names) do
        if k:sub(1, #prefix) == prefix then out[#out + 1] = base .. k end
    end
    table.sort(out)
    return out
end

-- ---------------------------------------------------------------------
-- Globals and help
-- ---------------------------------------------------------------------

local HELP = [[
allot repl: Lua 5.4 with the engine's operations, under the API's rules and roles.

Globals
  db                        the handle: %s
  quote{...}                quotes.create: {resource_id, user_id, start, ["end"], discount_percent}
  quote({...}, {candidate = {kind = "pricing", source = [==[ ... ]==]}})
                            the quote under a policy version that is not active
  book{...}                 bookings.create (payment_method = "credits" | "invoice" | "card")
  wallet(user_id [, unit])  a user's balances and lots
  policies(building_id)     the active policy version of each kind
  verify()                  checks every ledger invariant
  as{role = "tenant_user", tenant_id = ..., user_id = ...}
                            a handle acting as another principal (attached: as{key = ...})
  readfile(path)            a file's text, e.g. a candidate policy
  allot                     the module: allot.open{db = ..., policies = ..., now = ...}
  help()                    this text

Methods
  db:call(op, args, opts)   any operation -> result, status, replayed
                            | nil, {status, code, message, field}
                            opts: {idempotency_key = "..."}
  db:create_building{...}  db:create_tenant{...}  db:create_user{...}
  db:create_resource{...}  db:allocate{...}  db:book{...}  db:cancel{id = ...}
  db:wallet{user_id = ...}  db:entries{...}  db:buildings()  db:me()
  db:set_clock("2026-02-01T00:00:00Z")  db:now()  db:as{...}  db:verify()

Operations (db:call)
%s

Examples
  b = db:create_building{name = "HQ", timezone = "Europe/Paris", currency = "USD",
                         payment = {credits = true, invoice = true, card = true}}
  db:call("reports.dashboard", {unit = "hour"})
  quote({resource_id = "res_1", user_id = "usr_1", start = "2026-01-05T09:00:00Z",
         ["end"] = "2026-01-05T11:00:00Z"},
        {candidate = {kind = "pricing", source = readfile("pricing.lua")}})
  db:call("policies.put", {building_id = "bld_1", kind = "pricing",
                           source = readfile("pricing.lua")})      -- activates it

An expression prints its value; a statement runs; an unfinished statement goes on
on the next line (...>).  Keep values in globals: `local` ends with its input.
Tab completes globals, db: methods and operation names in quotes.  Ctrl-C stops a
running command or clears the line; Ctrl-D leaves.]]

local function wrap(words, w, indent)
    local lines, line = {}, indent
    for _, word in ipairs(words) do
        if #line + #word + 1 > w and line ~= indent then
            lines[#lines + 1] = line
            line = indent
        end
        line = line .. (line == indent and "" or " ") .. word
    end
    lines[#lines + 1] = line
    return table.concat(lines, "\n")
end

local function copy(t)
    local out = {}
    for k, v in pairs(t or {}) do out[k] = v end
    return out
end

-- The convenience globals call whatever `db` is now, so `db = db:as{...}`
-- switches them all to another principal.
local function handle()
    local db = rawget(_G, "db")
    if db == nil then
        error("no database: set db = allot.open{db = ...}", 3)
    end
    return db
end

local function install_globals(describe)
    function _G.quote(args, opts)
        local a, o = copy(args), copy(opts)
        if o.candidate ~= nil then
            a.candidate, o.candidate = o.candidate, nil
        end
        return handle():call("quotes.create", a, next(o) and o or nil)
    end
    function _G.book(args, opts)
        return handle():call("bookings.create", args, opts)
    end
    function _G.wallet(user_id, unit)
        if type(user_id) == "table" then
            return handle():call("wallet", user_id)
        end
        return handle():call("wallet", { user_id = user_id, unit = unit })
    end
    function _G.policies(building_id)
        return handle():call("policies.get", { building_id = building_id })
    end
    function _G.verify()
        return handle():call("verify", {})
    end
    function _G.as(who)
        return handle():as(who)
    end
    function _G.readfile(path)
        local f, err = io.open(path, "rb")
        if f == nil then
            error(err, 2)
        end
        local text = f:read("a")
        f:close()
        return text
    end
    function _G.help()
        local ops = copy(KNOWN_OPS)
        io.write(HELP:format(describe, wrap(ops, 88, "  ")), "\n")
    end
end

-- Opens the handle and the globals.  opts: {db, policies, now} for the
-- engine in this process or {url, key} for a server; operations: the
-- module's friendly names.  Returns a line describing the handle, or nil
-- and an error message.
function M.start(opts)
    M.operations = opts.operations
    local db, describe
    if opts.url then
        if not opts.url:match("^http://") then
            return nil, "--url must start with http:// (the console speaks plain HTTP)"
        end
        db = M.remote(opts.url, opts.key, opts.operations)
        local me, err = db:call("me")
        if me == nil then
            return nil, ("%s: %s"):format(opts.url, M.format(err))
        end
        describe = ("%s as %s (%s)"):format(db.url, me.name or "?", me.role or "?")
    else
        local allot = require "allot"
        local err
        db, err = allot.open { db = opts.db, policies = opts.policies, now = opts.now }
        if db == nil then
            return nil, err
        end
        describe = ("%s in this process as console (super_admin)"):format(opts.db)
    end
    _G.db = db
    _G.allot = package.loaded.allot
    install_globals(describe)
    return ("allot repl: %s.  help() for a guide, Ctrl-D to leave."):format(describe)
end

return M
