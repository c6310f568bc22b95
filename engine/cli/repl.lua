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
local CELL_WIDTH_MIN = 12        -- ... and cut down to this to fit the terminal
local INLINE_DEPTH_MAX = 4       -- nesting shown inside one cell before "{...}"
local FLATTEN_DEPTH_MAX = 3      -- nested records shown as dotted keys up to this depth
local HTTP_TIMEOUT_S = 60

-- Every operation the engine offered when this was written: only Tab
-- completion and help() use the list.  db:call accepts any name, so a new
-- operation works here without a change.
local KNOWN_OPS = {
    "me", "keys.create", "keys.revoke", "verify",
    "buildings.create", "buildings.get", "buildings.list", "buildings.patch",
    "resources.create", "resources.get", "resources.list", "resources.patch",
    "resources.archive",
    "tenants.create", "tenants.get", "tenants.list", "tenants.patch",
    "users.create", "users.get", "users.list", "users.patch",
    "allocations.create", "allocations.get", "allocations.list", "allocations.end",
    "allocations.patch",
    "wallet", "adjustments.create", "entries.list",
    "quotes.create", "bookings.create", "bookings.get", "bookings.list", "bookings.cancel",
    "bookings.refund_preview",
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

-- A money or credit figure dressed for display ("GBP 75.00", "1.5 h"): it
-- prints as its text and lines up as a number.  Only the display is
-- dressed; the values a command returns stay plain numbers.
local Amount = {}
Amount.__tostring = function(a) return a.text end

local function is_amount(v)
    return getmetatable(v) == Amount
end

-- A table to show as a table (not a dressed figure).
local function is_table(v)
    return type(v) == "table" and getmetatable(v) ~= Amount
end

local function is_array(t)
    local n, count = #t, 0
    for _ in pairs(t) do count = count + 1 end
    return n > 0 and count == n
end

local function is_record(v)
    return is_table(v) and next(v) ~= nil and not is_array(v)
end

local function is_error(v)
    return is_table(v) and math.type(v.status) == "integer" and type(v.code) == "string"
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

-- Money is in minor units of its currency (API.md): two decimals but for
-- the currencies that have none.  Credits are in their unit.
local ZERO_DECIMAL_CURRENCIES = {
    BIF = true, CLP = true, DJF = true, GNF = true, ISK = true, JPY = true, KMF = true,
    KRW = true, PYG = true, RWF = true, UGX = true, VND = true, VUV = true, XAF = true,
    XOF = true, XPF = true,
}
-- Fields that hold credits when their record (or an enclosing one) has a
-- credit unit, and fields that hold money when it has a currency.  A field
-- of a record named "money" or "credits", and a field so named, is one of
-- them whatever its name.
local CREDIT_FIELDS = {
    amount = true, available = true, balance = true, balance_after = true, granted = true,
    used = true, remaining = true, allocated = true, expired = true, rolled_over = true,
    refunded = true, consumed = true, spent = true, left = true, cap = true, expiring = true,
    monthly_rolled_over = true, opening = true, closing = true,
}
local MONEY_FIELDS = {
    amount = true, before_discount = true, price = true, total = true, charged = true,
    invoiced = true, refunded_money = true,
}

local function money_text(minor, currency)
    if math.type(minor) ~= "integer" then
        return nil -- not minor units: shown as it is
    end
    local sign, m = minor < 0 and "-" or "", math.abs(minor)
    if ZERO_DECIMAL_CURRENCIES[currency] then
        return ("%s %s%d"):format(currency, sign, m)
    end
    return ("%s %s%d.%02d"):format(currency, sign, m // 100, m % 100)
end

local function credit_text(n, unit)
    if unit == "coin" then
        return ("%.3f coins"):format(n)
    end
    -- Hours read best without trailing zeros: 1.5 h, 20 h, 0.25 h.
    local s = ("%.3f"):format(n):gsub("0+$", ""):gsub("%.$", "")
    return s .. " h"
end

local function currency_of(t)
    local c = t.currency
    if type(c) ~= "string" and is_table(t.money) then
        c = t.money.currency
    end
    return type(c) == "string" and c:match("^%u%u%u$") and c or nil
end

local function unit_of(t)
    local u = t.unit
    if u == nil and is_table(t.credits) then
        u = t.credits.unit
    end
    return (u == "hour" or u == "coin") and u or nil
end

-- A copy of v for display, with its money and credit figures dressed as
-- Amounts.  `cur` and `unit` come from the enclosing records; `name` is
-- the field that holds v.
local function dress(v, cur, unit, name, depth)
    if not is_table(v) or depth > 32 then
        return v
    end
    cur, unit = currency_of(v) or cur, unit_of(v) or unit
    local out = {}
    for k, x in pairs(v) do
        local field = type(k) == "string" and k or name
        if type(x) == "number" then
            local text
            if (name == "money" or k == "money") and cur then
                text = money_text(x, cur)
            elseif (name == "credits" or k == "credits") and unit then
                text = credit_text(x, unit)
            elseif CREDIT_FIELDS[k] and unit then
                text = credit_text(x, unit)
            elseif MONEY_FIELDS[k] and cur then
                text = money_text(x, cur)
            end
            out[k] = text and setmetatable({ text = text }, Amount) or x
        else
            out[k] = dress(x, cur, unit, field, depth + 1)
        end
    end
    return out
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
    if is_amount(v) then
        return v.text
    elseif math.type(v) == "float" then
        -- Amounts carry at most 3 decimals; 14 digits hide binary noise.
        local s = ("%.14g"):format(v)
        return s:find("[.eEn]") and s or s .. ".0"
    end
    return tostring(v)
end

-- A record of a figure ({amount = 7500, currency = "GBP", ...}) stands for
-- its amount in a table's cell.
local function figure_of(v)
    return is_table(v) and is_amount(v.amount) and v.amount or nil
end

-- One value on one line: [a, b] and {k = v}.
local function inline(v, depth)
    depth = depth or 0
    if not is_table(v) then
        return scalar(v)
    elseif figure_of(v) then
        return figure_of(v).text
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

-- s in at most w columns: cut after the last whole word or item that fits
-- (when that keeps at least half of it), with an ellipsis.
local function cut(s, w)
    if width(s) <= w then
        return s
    end
    local stop = utf8.offset(s, w)
    local head = stop and s:sub(1, stop - 1) or s:sub(1, w - 1)
    local at = head:match("^.*()[%s,;]")
    local whole = s:sub(#head + 1, #head + 1):match("[%s,;]") ~= nil -- head ends a word
    if at and at > #head // 2 and not whole then
        head = head:sub(1, at - 1)
    end
    return (head:gsub("[%s,;=]+$", "")) .. "\u{2026}" -- an ellipsis
end

local function pad(s, w, right)
    local gap = (" "):rep(w - width(s))
    return right and gap .. s or s .. gap
end

local function emit(out, indent, line)
    out[#out + 1] = indent .. (line:gsub("%s+$", ""))
end

-- Narrows the widest text columns until the table fits in `limit` columns
-- (the terminal's width), each to no less than CELL_WIDTH_MIN; figures are
-- never cut.
local function fit_columns(widths, numeric, cells, texts, indent, limit)
    local function total()
        local sum = #indent + 2 * (#widths - 1)
        for _, w in ipairs(widths) do sum = sum + w end
        return sum
    end
    for _ = 1, 4 * #widths do
        local excess = total() - limit
        if excess <= 0 then
            return
        end
        local widest
        for c = 1, #widths do
            if not numeric[c] and (widest == nil or widths[c] > widths[widest]) then
                widest = c
            end
        end
        local target = widest and math.max(CELL_WIDTH_MIN, widths[widest] - excess)
        if widest == nil or target >= widths[widest] then
            return
        end
        widths[widest] = target
        for i = 1, #cells do cells[i][widest] = cut(texts[i][widest], target) end
    end
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
    local cells, texts, widths, numeric = {}, {}, {}, {}
    for c, name in ipairs(columns) do
        widths[c], numeric[c] = width(tostring(name)), true
    end
    for i, row in ipairs(rows) do
        cells[i], texts[i] = {}, {}
        for c, name in ipairs(columns) do
            local v = (keys and c == 1) and keys[i] or row[name]
            local text = v == nil and "" or inline(v):gsub("\n", " ")
            texts[i][c] = text
            cells[i][c] = cut(text, LIST_CELL_WIDTH_MAX)
            widths[c] = math.max(widths[c], width(cells[i][c]))
            numeric[c] = numeric[c] and (v == nil or type(v) == "number" or is_amount(v)
                                         or figure_of(v) ~= nil)
        end
    end
    if M.columns then
        fit_columns(widths, numeric, cells, texts, indent, M.columns)
    end
    local header, rule = {}, {}
    for c, name in ipairs(columns) do
        header[c] = pad(cut(tostring(name), widths[c]), widths[c], numeric[c])
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
            elseif not is_table(x) or next(x) == nil then
                rows[#rows + 1] = { name, is_table(x) and "(empty)" or scalar(x) }
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
        local hint = M.suggest and M.suggest(v.message)
        emit(out, indent, line)
        if hint then
            emit(out, indent, hint)
        end
    elseif type(v) == "string" then
        for line in (v:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do
            emit(out, indent, line)
        end
    elseif not is_table(v) then
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

-- The text shown for a value: tables as tables and records, with money in
-- its currency and credits in their unit.
function M.format(v)
    local out = {}
    format_value(is_error(v) and v or dress(v, nil, nil, nil, 0), "", out)
    return table.concat(out, "\n")
end

-- Prints what a command returned.  An operation's answer (result, status,
-- replayed) shows the result alone; its failure (nil, error) one error line,
-- and returns true: piped input then exits 1, as for a raised error.
function M.show(...)
    local n = select("#", ...)
    local first, second, third = ...
    if n >= 2 and first == nil and is_error(second) then
        print(M.format(second))
        return true
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

-- The message for a raised error: engine error tables read as in show(),
-- and a misspelt name gets the closest one that exists.
function M.format_error(e)
    if is_error(e) then
        return M.format(e)
    elseif type(e) == "string" then
        local hint = M.suggest and M.suggest(e)
        return "error: " .. e .. (hint and "\n" .. hint or "")
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
-- The console's own words: `help`, `exit` and `quit` work without "()",
-- as long as they still name the console's functions.
local BARE_WORDS = { help = true, exit = true, quit = true }

function M.compile(chunk)
    local word = chunk:match("^%s*([%a_]+)%s*;?%s*$")
    if BARE_WORDS[word] and rawget(_G, word) == M.globals[word] then
        return function() return M.globals[word]() end
    end
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
-- Suggestions for misspelt names
-- ---------------------------------------------------------------------

-- Levenshtein distance, given up beyond `limit` (names are short).
local function distance(a, b, limit)
    if math.abs(#a - #b) > limit then
        return limit + 1
    end
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
        local cur, best = { [0] = i }, i
        for j = 1, #b do
            local cost = a:byte(i) == b:byte(j) and 0 or 1
            cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            best = math.min(best, cur[j])
        end
        if best > limit then
            return limit + 1
        end
        prev = cur
    end
    return prev[#b]
end

-- The candidate closest to `name` (at most a third of its letters off),
-- or nil.
local function closest(name, candidates)
    local limit = math.max(1, math.min(3, #name // 3))
    local best, best_d
    for _, c in ipairs(candidates) do
        local d = distance(name:lower(), c:lower(), limit)
        if d <= limit and c ~= name and (best_d == nil or d < best_d or
                                         (d == best_d and c < best)) then
            best, best_d = c, d
        end
    end
    return best, best_d
end

local function all_operations()
    local ops, seen = {}, {}
    for _, op in ipairs(KNOWN_OPS) do ops[#ops + 1], seen[op] = op, true end
    for _, op in pairs(M.operations or {}) do
        if not seen[op] then ops[#ops + 1], seen[op] = op, true end
    end
    return ops
end

-- "did you mean db:bookings?" for an error message about a name that does
-- not exist: a method of db, a global, a field of a global table, or an
-- operation; nil when nothing is close.
function M.suggest(message)
    if type(message) ~= "string" then
        return nil
    end
    local what, name = message:match("a nil value %((%a+) '([%w_]+)'%)")
    local guess
    if what == "method" then
        local db = rawget(_G, "db")
        local m = db ~= nil and closest(name, fields_of(db, true)) or nil
        guess = m and "db:" .. m
    elseif what == "global" or what == "local" or what == "upvalue" then
        local names = fields_of(_G, false)
        for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
        guess = closest(name, names)
    elseif what == "field" then
        local globals, best_d = fields_of(_G, false), nil
        table.sort(globals)
        for _, g in ipairs(globals) do
            local t = rawget(_G, g)
            if (type(t) == "table" or type(t) == "userdata") and g ~= "_G" then
                local f, d = closest(name, fields_of(t, false))
                if f and (best_d == nil or d < best_d) then
                    guess, best_d = g .. (type(t) == "userdata" and ":" or ".") .. f, d
                end
            end
        end
    else
        local op = message:match("no operation '([%w_%.]+)'")
        guess = op and closest(op, all_operations())
        guess = guess and ('"%s"'):format(guess)
    end
    return guess and ("did you mean %s?"):format(guess) or nil
end

-- ---------------------------------------------------------------------
-- Globals and help
-- ---------------------------------------------------------------------

local HELP = [[
allot repl: Lua 5.4 with the engine's operations, under the API's rules and roles.

Globals
  db                        the handle: %s
  quote{...}                quotes.create: {resource_id, user_id, start, ["end"], discount_percent}
  quote({...}, {candidate = {kind = "pricing", source = readfile("...")}})
                            the quote under a policy version that is not active
  book{...}                 bookings.create (payment_method = "credits" | "invoice" | "card")
  wallet(user_id [, unit])  a user's balances and lots
  policies(building_id)     the active policy version of each kind
  verify()                  checks every ledger invariant
  as{%s}
                            a handle acting as another principal
  readfile(path)            a file's text (path from where the console started),
                            e.g. readfile("policies/examples/peak_surcharge.lua")
  allot                     the module: allot.open{db = ..., policies = ..., now = ...}
  help                      this text (help() too)
  exit, quit                leave (so does Ctrl-D)

Methods
  db:call(op, args, opts)   any operation -> result, status, replayed
                            | nil, {status, code, message, field}
                            opts: {idempotency_key = "..."}
  db:create_building{...}  db:create_tenant{...}  db:create_user{...}
  db:create_resource{...}  db:allocate{...}  db:book{...}  db:cancel{id = ...}
  db:wallet{user_id = ...}  db:entries{...}  db:bookings{...}  db:buildings()  db:me()
  db:as{...}  db:verify()%s

Operations (db:call)
%s

Examples
  b = db:create_building{name = "HQ", timezone = "Europe/Paris", currency = "USD",
                         payment = {credits = true, invoice = true, card = true}}
  db:call("reports.dashboard", {unit = "hour"})
  day = os.date("!%%Y-%%m-%%d", os.time() + 86400)      -- tomorrow
  quote({resource_id = "res_1", user_id = "usr_1", start = day .. "T09:00:00Z",
         ["end"] = day .. "T11:00:00Z"},
        {candidate = {kind = "pricing",
                      source = readfile("policies/examples/peak_surcharge.lua")}})
  db:call("policies.put", {building_id = "bld_1", kind = "pricing",
                           source = readfile("policies/examples/peak_surcharge.lua")})
                                                        -- activates it

An expression prints its value, with money in its currency (GBP 75.00) and credits
in their unit (1.5 h, 12.500 coins); the values themselves stay plain numbers.  A
statement runs; an unfinished one goes on on the next line (...>) and is kept in
the history as one entry.  Keep values in globals: `local` ends with its input.
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
        io.write(HELP:format(describe.what, describe.as, describe.clock,
                             wrap(ops, 88, "  ")), "\n")
    end
    -- exit(code) leaves once the current input has run; repl.c reads these.
    function _G.exit(code)
        if code ~= nil and (math.type(code) ~= "integer" or code < 0 or code > 255) then
            error("exit takes an exit status from 0 to 255", 2)
        end
        M.leaving, M.exit_code = true, code
    end
    _G.quit = _G.exit
    M.globals = { help = _G.help, exit = _G.exit, quit = _G.quit }
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
        describe = {
            what = ("%s as %s (%s)"):format(db.url, me.name or "?", me.role or "?"),
            as = "key = <another API key>",
            -- The server's clock moves only on one started with --fake-clock.
            clock = "",
        }
    else
        local allot = require "allot"
        local err
        db, err = allot.open { db = opts.db, policies = opts.policies, now = opts.now }
        if db == nil then
            return nil, err
        end
        describe = {
            what = ("%s in this process as console (super_admin)"):format(opts.db),
            as = 'role = "tenant_user", tenant_id = ..., user_id = ...',
            clock = opts.now and '\n  db:now()  db:set_clock("2026-02-01T00:00:00Z")   the test clock '
                                 .. "(--now)" or "  db:now()",
        }
    end
    _G.db = db
    _G.allot = package.loaded.allot
    install_globals(describe)
    return ("allot repl: %s.  help for a guide, exit or Ctrl-D to leave."):format(describe.what)
end

return M
