-- The authorization matrix (PRODUCT.md §8), generated from the route table.
--
-- The routes come from the server itself (`allotd --routes` prints routes.c's
-- table), so a route added without an entry in EXPECT below fails this spec,
-- and so does a route missing from web/openapi.json (or a path there that is
-- not served).  Each entry says only who may call the route (a role set) and
-- which kind of object decides its scope; the expected status of every cell
-- follows from one rule, the one of §8:
--
--   role not in the route's set          -> 403 forbidden (whatever the object)
--   object outside the principal's reach -> 404 not_found (a lease outside a
--                                           scoped key's buildings: 403)
--   otherwise                            -> 2xx
--
-- reach() below is §8 written in Lua: a building or resource by the key's
-- buildings (tenant principals: buildings their tenant leases); a tenant by
-- any leased building in scope; a user by its tenant (a tenant user: itself);
-- an allocation, lot or entry by all of the allocation's buildings; a
-- booking by its resource's building (tenant principals: their tenant, a
-- tenant user its own).  Every route is sent by every principal for every
-- object of its kind (in and out of scope): GETs also as HEAD, reports also
-- as CSV, lists with filters pointing in and out of scope (every row of a
-- list, wallet, report or CSV must be reached by the principal, the owners
-- of each row being read back through the super_admin), and writes once
-- more with the same Idempotency-Key by the same principal (a replay) and by
-- the principals the rule refuses (who must get their own refusal, never the
-- stored answer).
local H = require "http_env"
local socket = require "socket"

local BUILD = os.getenv("ALLOT_BUILD_DIR") or "build"
local SOURCE = os.getenv("ALLOT_SOURCE_DIR") or "."

-- ---------- who may call what ----------

local function set(...)
  local s = {}
  for _, r in ipairs { ... } do s[r] = true end
  return s
end
local ALL = set("super_admin", "manager", "viewer", "tenant_admin", "tenant_user")
local ADMIN = set("super_admin", "manager", "viewer")
local ASSIGN = set("super_admin", "manager")
local SUPER = set("super_admin")
local BOOKERS = set("super_admin", "manager", "tenant_admin", "tenant_user")
local COMPANY = set("super_admin", "manager", "viewer", "tenant_admin")

local ADMIN_ROLES = ADMIN

-- ---------- the fixture and its principals ----------

local env
local o = {}          -- fixture objects by name
local principals = {} -- { name, role, client, buildings (set or nil), tenant, user }
local owners_cache = {}
local requests = 0

local function req(client, method, path, body, headers)
  requests = requests + 1
  return client:request(method, path, body, headers)
end

local function must(status, method, path, body, headers)
  local got, res, _, text = req(env, method, path, body, headers)
  assert(got == status, ("%s %s: expected %d, got %s: %s"):format(method, path, status,
                                                                    tostring(got), text))
  return res
end

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function routes_table()
  local p = assert(io.popen(BUILD .. "/allotd --routes"))
  local text = p:read("a")
  p:close()
  local cjson = require "cjson.safe"
  return assert(cjson.decode(text), "allotd --routes printed no JSON: " .. text)
end

-- ---------- owners: what decides an object's scope ----------
-- An object is { kind = ..., plus its owners }:
--   building/resource {building}; tenant {tenant, leases = {bld...}};
--   user {tenant, user}; allocation (and its lots and entries) {tenant,
--   buildings}; booking {tenant, user, building}; leases {buildings} (the
--   leases a tenant is created with); none {}.

local function tenant_leases(tid)
  local key = "ten:" .. tid
  if not owners_cache[key] then
    local t = must(200, "GET", "/v1/tenants/" .. tid)
    owners_cache[key] = { kind = "tenant", tenant = tid, leases = t.building_ids }
  end
  return owners_cache[key]
end

-- The owners of an id met in a list or report row, read back as the
-- super_admin (cached: owners never change in this spec).
local function owners_of(kind, id)
  local key = kind .. ":" .. id
  local hit = owners_cache[key]
  if hit then return hit end
  local ob
  if kind == "building" then
    ob = { kind = "building", building = id }
  elseif kind == "resource" then
    ob = { kind = "resource", building = must(200, "GET", "/v1/resources/" .. id).building_id }
  elseif kind == "tenant" then
    return tenant_leases(id)
  elseif kind == "user" then
    local u = must(200, "GET", "/v1/users/" .. id)
    ob = { kind = "user", tenant = u.tenant_id, user = id }
  elseif kind == "allocation" then
    local a = must(200, "GET", "/v1/allocations/" .. id)
    ob = { kind = "allocation", tenant = a.tenant_id, buildings = a.building_ids }
  elseif kind == "booking" then
    local b = must(200, "GET", "/v1/bookings/" .. id)
    ob = { kind = "booking", tenant = b.tenant_id, user = b.user_id, building = b.building_id,
           resource = b.resource_id }
  else
    error("no owners for kind " .. kind)
  end
  owners_cache[key] = ob
  return ob
end

local function has(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

-- PRODUCT.md §8, the one rule.
local function in_scope(p, building)
  return p.buildings == nil or p.buildings[building] == true
end

local function reach(p, ob)
  local admin = ADMIN_ROLES[p.role]
  local k = ob.kind
  if k == "none" then return true end
  if k == "building" or k == "resource" then
    if admin then return in_scope(p, ob.building) end
    return has(tenant_leases(p.tenant).leases, ob.building)
  elseif k == "leases" then
    if not admin then return false end
    for _, b in ipairs(ob.buildings) do
      if not in_scope(p, b) then return false end
    end
    return true
  elseif k == "tenant" then
    if not admin then return p.tenant == ob.tenant end
    for _, b in ipairs(tenant_leases(ob.tenant).leases) do
      if in_scope(p, b) then return true end
    end
    return p.buildings == nil
  elseif k == "user" then
    if p.role == "tenant_user" then return p.user == ob.user end
    if p.role == "tenant_admin" then return p.tenant == ob.tenant end
    return reach(p, tenant_leases(ob.tenant))
  elseif k == "allocation" then
    if not admin then return p.tenant == ob.tenant end
    if #ob.buildings == 0 then return p.buildings == nil end
    for _, b in ipairs(ob.buildings) do
      if not in_scope(p, b) then return false end
    end
    return true
  elseif k == "booking" then
    if admin then return in_scope(p, ob.building) end
    if p.role == "tenant_user" and p.user ~= ob.user then return false end
    return p.tenant == ob.tenant
  end
  error("no rule for kind " .. tostring(k))
end

-- What a cell must answer: 403, 404 (or the route's answer for an unknown
-- reference, see `unknown_as`) or "2xx".
local function expected(route, p, ob)
  if not route.roles[p.role] then return 403 end
  if not reach(p, ob) then
    if ob.kind == "leases" then return 403 end
    return route.unknown_as and 400 or 404
  end
  return "2xx"
end

-- ---------- request helpers ----------

local slot = 0
local function next_slot()
  slot = slot + 1
  local day, hour = 1 + (slot // 10) % 28, 8 + slot % 10
  local month = 2 + slot // 280
  return ("2026-%02d-%02dT%02d:00:00Z"):format(month, day, hour),
         ("2026-%02d-%02dT%02d:00:00Z"):format(month, day, hour + 1)
end

local uniq = 0
local function unique(prefix)
  uniq = uniq + 1
  return prefix .. " " .. uniq
end

local PRICING_SOURCE = read_all(SOURCE .. "/policies/default/pricing.lua")

local function booking_body(shape, extra)
  local s, e = next_slot()
  local body = { resource_id = shape.resource, user_id = shape.user, start = s, ["end"] = e }
  for k, v in pairs(extra or {}) do body[k] = v end
  return body
end

local function grant(tenant, buildings, amount)
  return must(201, "POST", "/v1/allocations", {
    tenant_id = tenant, building_ids = buildings, description = "matrix", unit = "hour",
    lines = { { scope = "all", amount = amount or 100 } }, targeting = { type = "all" },
    pool = "shared", schedule = { start = "2026-01-01" } })
end

-- A fresh confirmed booking of a shape (for the routes that consume one).
local function fresh_booking(shape)
  local b = must(201, "POST", "/v1/bookings", booking_body(shape, { payment_method = "card" }))
  return { kind = "booking", id = b.id, tenant = shape.tenant, user = shape.user,
           building = shape.building }
end

local function fresh_allocation(shape)
  local a = grant(shape.tenant, shape.buildings, 1)
  return { kind = "allocation", id = a.id, tenant = shape.tenant, buildings = shape.buildings }
end

local function fresh_resource(shape)
  local r = env:room({ id = shape.building }, { room_name = unique("Room") })
  return { kind = "resource", id = r.id, building = shape.building, name = r.name }
end

local function q(params)
  local parts = {}
  for _, kv in ipairs(params) do parts[#parts + 1] = kv[1] .. "=" .. kv[2] end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

-- ---------- the expectation table ----------
-- Per route ("METHOD /openapi/path"): roles, and either
--   objects = name of a fixture list (each item an object with owners, and
--             the fields the request needs) + send(ob) -> method, path, body,
--             headers;  fresh = true: each cell gets its own object made by
--             the list's factory (a cancellation or end consumes it);
--   list = { rows = function(body) -> {{kind, id}...}, filters = {{param,
--            fixture list}...}, base = extra query } for lists and reports
--            (csv = row kind/column for the CSV export).
-- `variants` adds cases of the same route with their own roles.
-- unknown_as = set of fields: the object is a reference in the body of a
-- creation, and one outside the scope is refused exactly as an unknown id
-- (400 invalid_request naming the field), so that ids cannot be probed.

local ROW = {}
function ROW.data(kind, field)
  return function(body)
    local out = {}
    for _, r in ipairs(body.data or {}) do out[#out + 1] = { kind, r[field or "id"] } end
    return out
  end
end

local EXPECT = {
  ["GET /v1/health"] = { roles = ALL, objects = "none", public = true,
                         send = function() return "GET", "/v1/health" end },
  ["GET /v1/openapi.json"] = { roles = ALL, objects = "none",
                               send = function() return "GET", "/v1/openapi.json" end },
  ["PUT /v1/clock"] = { roles = SUPER, objects = "none",
                        send = function() return "PUT", "/v1/clock", { now = H.NOW } end },
  ["POST /v1/keys"] = { roles = SUPER, objects = "none",
                        send = function() return "POST", "/v1/keys", { role = "viewer" } end },
  -- Each cell revokes a key of its own, made by the super_admin.
  ["POST /v1/keys/{id}/revoke"] = { roles = SUPER, objects = "none", send = function()
    local k = must(201, "POST", "/v1/keys", { role = "viewer" })
    return "POST", "/v1/keys/" .. k.id .. "/revoke", {} end },
  ["GET /v1/me"] = { roles = ALL, objects = "none", send = function() return "GET", "/v1/me" end },
  ["GET /v1/verify"] = { roles = ADMIN, objects = "none",
                         send = function() return "GET", "/v1/verify" end },

  ["POST /v1/buildings"] = { roles = SUPER, objects = "none", send = function()
    return "POST", "/v1/buildings", { name = unique("Tower"), timezone = "UTC", currency = "USD",
                                      payment = { credits = true, invoice = true, card = true } }
  end },
  ["GET /v1/buildings"] = { roles = ALL, list = { rows = ROW.data("building"), all = "buildings" } },
  ["GET /v1/buildings/{id}"] = { roles = ALL, objects = "buildings",
                                 send = function(b) return "GET", "/v1/buildings/" .. b.id end },
  ["PATCH /v1/buildings/{id}"] = { roles = SUPER, objects = "buildings", send = function(b)
    return "PATCH", "/v1/buildings/" .. b.id, { name = b.name } end },
  ["GET /v1/buildings/{id}/policies"] = { roles = ADMIN, objects = "buildings", send = function(b)
    return "GET", "/v1/buildings/" .. b.id .. "/policies" end },
  ["PUT /v1/buildings/{id}/policies/{kind}"] = { roles = ASSIGN, objects = "buildings",
    send = function(b)
      return "PUT", "/v1/buildings/" .. b.id .. "/policies/pricing", PRICING_SOURCE,
             { ["Content-Type"] = "text/x-lua" }
    end },
  ["DELETE /v1/buildings/{id}/policies/{kind}"] = { roles = ASSIGN, objects = "buildings",
    send = function(b) return "DELETE", "/v1/buildings/" .. b.id .. "/policies/pricing" end },
  ["GET /v1/buildings/{id}/policies/{kind}/history"] = { roles = ADMIN, objects = "buildings",
    send = function(b) return "GET", "/v1/buildings/" .. b.id .. "/policies/pricing/history" end },
  ["POST /v1/buildings/{id}/policies/{kind}/rollback"] = { roles = ASSIGN, objects = "buildings",
    send = function(b)
      return "POST", "/v1/buildings/" .. b.id .. "/policies/pricing/rollback", { version = 1 }
    end },
  ["POST /v1/buildings/{id}/policies/{kind}/simulate"] = { roles = ASSIGN, objects = "buildings",
    send = function(b)
      return "POST", "/v1/buildings/" .. b.id .. "/policies/pricing/simulate",
             { kind = "pricing", source = PRICING_SOURCE, from = "2026-01-01", to = "2026-01-31" }
    end },
  ["POST /v1/policies/reload"] = { roles = SUPER, objects = "none",
                                   send = function() return "POST", "/v1/policies/reload" end },

  ["POST /v1/resources"] = { roles = ASSIGN, objects = "buildings",
                             unknown_as = set("building_id"), send = function(b)
    return "POST", "/v1/resources", {
      building_id = b.id, name = unique("Room"), kind = "meeting_room", tags = H.array(),
      credit_only = false,
      pricing = { money = { per_hour = 7000 },
                  credits = { unit = "hour", model = "fixed", per_hour = 1,
                              increment_minutes = 30 } } }
  end },
  ["GET /v1/resources"] = { roles = ALL, list = { rows = ROW.data("resource"), all = "resources",
                                                  filters = { { "building_id", "buildings" } } } },
  ["GET /v1/resources/{id}"] = { roles = ALL, objects = "resources",
                                 send = function(r) return "GET", "/v1/resources/" .. r.id end },
  ["PATCH /v1/resources/{id}"] = { roles = ASSIGN, objects = "resources", send = function(r)
    return "PATCH", "/v1/resources/" .. r.id, { name = r.name } end },
  -- DELETE archives (history kept): each cell archives its own new room.
  ["DELETE /v1/resources/{id}"] = { roles = ASSIGN, objects = "resources", fresh = fresh_resource,
    send = function(r) return "DELETE", "/v1/resources/" .. r.id end },

  ["POST /v1/tenants"] = { roles = ASSIGN, objects = "lease_sets", send = function(l)
    return "POST", "/v1/tenants", { name = unique("Company"), building_ids = l.buildings } end },
  ["GET /v1/tenants"] = { roles = ALL, list = { rows = ROW.data("tenant"), all = "tenants" } },
  ["GET /v1/tenants/{id}"] = { roles = ALL, objects = "tenants",
                               send = function(t) return "GET", "/v1/tenants/" .. t.id end },
  ["PATCH /v1/tenants/{id}"] = { roles = ASSIGN, objects = "tenants", send = function(t)
    return "PATCH", "/v1/tenants/" .. t.id, { name = t.name } end },

  ["POST /v1/users"] = { roles = ASSIGN, objects = "tenants", unknown_as = set("tenant_id"),
                         send = function(t)
    return "POST", "/v1/users", { tenant_id = t.id, name = unique("Person") } end },
  ["GET /v1/users"] = { roles = ALL, list = { rows = ROW.data("user"), all = "users",
                                              filters = { { "tenant_id", "tenants" } } } },
  ["GET /v1/users/{id}"] = { roles = ALL, objects = "users",
                             send = function(u) return "GET", "/v1/users/" .. u.id end },
  ["PATCH /v1/users/{id}"] = { roles = ASSIGN, objects = "users", send = function(u)
    return "PATCH", "/v1/users/" .. u.id, { name = u.name } end },
  ["GET /v1/users/{id}/wallet"] = { roles = ALL, objects = "users",
    -- Every allocation of the user's tenant pays for all its users.
    all = function(u)
      local out = {}
      for _, a in ipairs(o.allocations) do
        if a.tenant == u.tenant then out[#out + 1] = a end
      end
      return out
    end,
    send = function(u) return "GET", "/v1/users/" .. u.id .. "/wallet" end,
    rows = function(body)
      local out = {}
      for _, list in ipairs { body.lots or {}, body.expiring_soon or {} } do
        for _, l in ipairs(list) do out[#out + 1] = { "allocation", l.allocation_id } end
      end
      return out
    end },

  ["POST /v1/allocations"] = { roles = ASSIGN, objects = "allocation_shapes",
                               unknown_as = set("tenant_id", "building_ids"), send = function(a)
    return "POST", "/v1/allocations", {
      tenant_id = a.tenant, building_ids = a.buildings, description = "matrix", unit = "hour",
      lines = { { scope = "all", amount = 1 } }, targeting = { type = "all" }, pool = "shared",
      schedule = { start = "2026-01-01" } }
  end },
  ["GET /v1/allocations"] = { roles = ALL, list = { rows = ROW.data("allocation"), all = "allocations",
    filters = { { "tenant_id", "tenants" }, { "building_id", "buildings" } } } },
  ["GET /v1/allocations/{id}"] = { roles = ALL, objects = "allocations",
                                   send = function(a) return "GET", "/v1/allocations/" .. a.id end },
  ["PATCH /v1/allocations/{id}"] = { roles = ASSIGN, objects = "allocations", send = function(a)
    return "PATCH", "/v1/allocations/" .. a.id, { description = "matrix" } end },
  ["POST /v1/allocations/{id}/end"] = { roles = ASSIGN, objects = "allocation_shapes",
    fresh = fresh_allocation, send = function(a)
      return "POST", "/v1/allocations/" .. a.id .. "/end", { ["end"] = "2026-06-30" } end },
  ["POST /v1/adjustments"] = { roles = ASSIGN, objects = "lots", send = function(l)
    return "POST", "/v1/adjustments", { lot_id = l.id, amount = 1, memo = "matrix" } end },
  ["GET /v1/entries"] = { roles = COMPANY, list = { rows = ROW.data("allocation", "allocation_id"),
    filters = { { "tenant_id", "tenants" }, { "lot_id", "lots" }, { "booking_id", "bookings" } } } },

  ["POST /v1/quotes"] = { roles = ALL, objects = "booking_shapes", send = function(s)
    return "POST", "/v1/quotes", booking_body(s) end,
    variants = {
      -- A quote under a candidate policy runs unreviewed code: manager and
      -- above, like a simulation (PRODUCT.md §9).
      { name = "candidate policy", roles = ASSIGN, send = function(s)
        return "POST", "/v1/quotes", booking_body(s, {
          candidate = { kind = "pricing", source = PRICING_SOURCE } }) end },
    } },
  ["POST /v1/bookings"] = { roles = BOOKERS, objects = "booking_shapes", send = function(s)
    return "POST", "/v1/bookings", booking_body(s, { payment_method = "card" }) end,
    variants = {
      { name = "discount_percent", roles = ASSIGN, send = function(s)
        return "POST", "/v1/bookings", booking_body(s, { payment_method = "card",
                                                         discount_percent = 10 }) end },
    } },
  ["GET /v1/bookings"] = { roles = ALL, list = { rows = ROW.data("booking"), all = "bookings",
    filters = { { "tenant_id", "tenants" }, { "user_id", "users" },
                { "resource_id", "resources" }, { "building_id", "buildings" } } } },
  ["GET /v1/bookings/{id}"] = { roles = ALL, objects = "bookings",
                                send = function(b) return "GET", "/v1/bookings/" .. b.id end },
  ["POST /v1/bookings/{id}/cancel"] = { roles = BOOKERS, objects = "booking_shapes",
    fresh = fresh_booking,
    send = function(b) return "POST", "/v1/bookings/" .. b.id .. "/cancel", {} end },

  -- What a cancel would give back: whoever may cancel the booking.
  ["GET /v1/bookings/{id}/refund"] = { roles = BOOKERS, objects = "bookings",
    send = function(b) return "GET", "/v1/bookings/" .. b.id .. "/refund" end },

  ["GET /v1/reports/datahub"] = { roles = COMPANY, list = {
    base = { { "unit", "hour" }, { "from", "2026-01" }, { "to", "2026-03" } },
    rows = function(body)
      local out = {}
      for _, c in ipairs(body.customers or {}) do out[#out + 1] = { "tenant", c.tenant_id } end
      return out
    end,
    csv = { "tenant", "tenant_id" }, all = "tenants",
    filters = { { "tenant_id", "tenants" }, { "building_id", "buildings" } } } },
  ["GET /v1/reports/dashboard"] = { roles = COMPANY, list = {
    base = { { "unit", "hour" } },
    rows = function(body)
      local t = body.top_tenant
      return (type(t) == "table" and t.tenant_id) and { { "tenant", t.tenant_id } } or {}
    end,
    csv = { "tenant", "top_tenant_id" },
    filters = { { "tenant_id", "tenants" }, { "building_id", "buildings" } } } },
  ["GET /v1/reports/credits"] = { roles = COMPANY, list = {
    rows = ROW.data("allocation", "allocation_id"), csv = { "allocation", "allocation_id" },
    all = "allocations",
    filters = { { "tenant_id", "tenants" }, { "building_id", "buildings" } } } },
  -- Usage is also a tenant user's own bookings (its rows are bookings).
  ["GET /v1/reports/usage"] = { roles = ALL, list = {
    rows = ROW.data("booking", "booking_id"), csv = { "booking", "booking_id" },
    all = "bookings",
    filters = { { "tenant_id", "tenants" }, { "building_id", "buildings" },
                { "user_id", "users" }, { "resource_id", "resources" } } } },
}

-- ---------- CSV ----------

local function csv_parse(text)
  local rows, row, field, i, n = {}, {}, {}, 1, #text
  local quoted = false
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' and text:sub(i + 1, i + 1) == '"' then
        field[#field + 1] = '"'
        i = i + 1
      elseif c == '"' then
        quoted = false
      else
        field[#field + 1] = c
      end
    elseif c == '"' then
      quoted = true
    elseif c == "," then
      row[#row + 1] = table.concat(field)
      field = {}
    elseif c == "\n" or c == "\r" then
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      row[#row + 1] = table.concat(field)
      rows[#rows + 1] = row
      row, field = {}, {}
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if #field > 0 or #row > 0 then
    row[#row + 1] = table.concat(field)
    rows[#rows + 1] = row
  end
  return rows
end

-- ---------- the run ----------

local ROUTES = routes_table()

local function route_key(r) return r.method .. " " .. r.path end

describe("authorization matrix (generated from the route table)", function()
  local started
  local stats = { cells = 0 }

  setup(function()
    started = socket.gettime()
    env = H.start()
    local function building(name)
      local b = must(201, "POST", "/v1/buildings", {
        name = name, timezone = "UTC", currency = "USD",
        payment = { credits = true, invoice = true, card = true } })
      return { kind = "building", id = b.id, building = b.id, name = name }
    end
    o.b1, o.b2 = building("One"), building("Two")
    local function room(b, name)
      local r = env:room({ id = b.id }, { room_name = name })
      return { kind = "resource", id = r.id, building = b.id, name = name }
    end
    o.r1, o.r2 = room(o.b1, "Room One"), room(o.b2, "Room Two")
    local function tenant(name, leases)
      local t = must(201, "POST", "/v1/tenants", { name = name, building_ids = leases })
      return { kind = "tenant", id = t.id, tenant = t.id, leases = leases, name = name }
    end
    o.t1 = tenant("Both", { o.b1.id, o.b2.id })
    o.t2 = tenant("Two Only", { o.b2.id })
    local function user(t, name, email)
      local u = must(201, "POST", "/v1/users", { tenant_id = t.id, name = name, email = email })
      return { kind = "user", id = u.id, tenant = t.id, user = u.id, name = name }
    end
    -- (One without an e-mail: such a user must still be patchable.)
    o.u1, o.u1b = user(o.t1, "Uma", "uma@example.com"), user(o.t1, "Ugo")
    o.u2 = user(o.t2, "Vic", "vic@example.com")
    -- Allocations: T1 in B1, in B2, over both; T2 in B2.
    local shapes = {
      { kind = "allocation", tenant = o.t1.id, buildings = { o.b1.id } },
      { kind = "allocation", tenant = o.t1.id, buildings = { o.b2.id } },
      { kind = "allocation", tenant = o.t1.id, buildings = { o.b1.id, o.b2.id } },
      { kind = "allocation", tenant = o.t2.id, buildings = { o.b2.id } },
    }
    o.allocation_shapes, o.allocations, o.lots = shapes, {}, {}
    for _, s in ipairs(shapes) do
      local a = grant(s.tenant, s.buildings)
      o.allocations[#o.allocations + 1] = { kind = "allocation", id = a.id, tenant = s.tenant,
                                            buildings = s.buildings }
      o.lots[#o.lots + 1] = { kind = "allocation", id = a.lots[1].id, tenant = s.tenant,
                              buildings = s.buildings }
    end
    -- Who books where: each shape is a valid booking for an operator.
    o.booking_shapes = {
      { kind = "booking", tenant = o.t1.id, user = o.u1.id, resource = o.r1.id, building = o.b1.id },
      { kind = "booking", tenant = o.t1.id, user = o.u1.id, resource = o.r2.id, building = o.b2.id },
      { kind = "booking", tenant = o.t1.id, user = o.u1b.id, resource = o.r1.id, building = o.b1.id },
      { kind = "booking", tenant = o.t2.id, user = o.u2.id, resource = o.r2.id, building = o.b2.id },
    }
    -- Bookings paid with credits, so that the ledger has entries of each.
    o.bookings = {}
    for _, s in ipairs(o.booking_shapes) do
      local b = must(201, "POST", "/v1/bookings", booking_body(s, { payment_method = "credits" }))
      o.bookings[#o.bookings + 1] = { kind = "booking", id = b.id, tenant = s.tenant,
                                      user = s.user, building = s.building }
    end
    -- A policy version 1 in each building (rollback needs one).
    for _, b in ipairs { o.b1, o.b2 } do
      must(200, "PUT", "/v1/buildings/" .. b.id .. "/policies/pricing", PRICING_SOURCE,
           { ["Content-Type"] = "text/x-lua" })
    end
    o.buildings = { o.b1, o.b2 }
    o.resources = { o.r1, o.r2 }
    o.tenants = { o.t1, o.t2 }
    o.users = { o.u1, o.u1b, o.u2 }
    o.lease_sets = {
      { kind = "leases", buildings = { o.b1.id } }, { kind = "leases", buildings = { o.b2.id } },
      { kind = "leases", buildings = { o.b1.id, o.b2.id } } }
    o.none = { { kind = "none" } }
    for _, t in ipairs(o.tenants) do owners_cache["ten:" .. t.id] = t end

    local function key(role, extra)
      local args = { role = role }
      for k, v in pairs(extra or {}) do args[k] = v end
      return env:as(must(201, "POST", "/v1/keys", args).key)
    end
    local function p(name, role, client, fields)
      local pr = { name = name, role = role, client = client }
      for k, v in pairs(fields or {}) do pr[k] = v end
      principals[#principals + 1] = pr
    end
    p("super_admin", "super_admin", env)
    p("manager", "manager", key("manager"))
    p("manager_b1", "manager", key("manager", { building_ids = { o.b1.id } }),
      { buildings = { [o.b1.id] = true } })
    p("viewer", "viewer", key("viewer"))
    p("viewer_b1", "viewer", key("viewer", { building_ids = { o.b1.id } }),
      { buildings = { [o.b1.id] = true } })
    p("tenant_admin_t1", "tenant_admin", key("tenant_admin", { tenant_id = o.t1.id }),
      { tenant = o.t1.id })
    p("tenant_user_t1", "tenant_user", key("tenant_user", { user_id = o.u1.id }),
      { tenant = o.t1.id, user = o.u1.id })
    p("tenant_admin_t2", "tenant_admin", key("tenant_admin", { tenant_id = o.t2.id }),
      { tenant = o.t2.id })
    p("tenant_user_t2", "tenant_user", key("tenant_user", { user_id = o.u2.id }),
      { tenant = o.t2.id, user = o.u2.id })
  end)

  teardown(function()
    if env then env:stop() end
    if started then
      print(("\nauthorization matrix: %d routes x %d principals, %d cells, %d requests, %.1f s")
            :format(#ROUTES, #principals, stats.cells, requests, socket.gettime() - started))
    end
  end)

  it("serves exactly the operations web/openapi.json describes", function()
    local doc = require("cjson.safe").decode(read_all(SOURCE .. "/web/openapi.json"))
    local served = {}
    for _, r in ipairs(ROUTES) do
      served[route_key(r)] = true
      local item = doc.paths[r.path]
      assert(item and item[r.method:lower()], "openapi.json lacks " .. route_key(r))
    end
    for path, item in pairs(doc.paths) do
      for method in pairs(item) do
        if method ~= "parameters" then
          local k = method:upper() .. " " .. path
          assert(served[k], "openapi.json describes " .. k .. ", which the server does not serve")
        end
      end
    end
  end)

  -- Rows are checked here; the aggregate figures of building-limited keys
  -- (dashboard, Data Hub) are checked in report_scope_spec.lua.

  it("has an access decision for every route, and no stale one", function()
    local seen = {}
    for _, r in ipairs(ROUTES) do
      local k = route_key(r)
      seen[k] = true
      assert(EXPECT[k], k .. " is served but has no entry in the matrix's EXPECT table: "
                        .. "decide who may call it and which object decides its scope")
    end
    for k in pairs(EXPECT) do assert(seen[k], "EXPECT names " .. k .. ", which is not served") end
  end)

  -- Checks one answer; adds a line to `bad` for each mismatch.  A 400 must
  -- name one of `unknown_fields` (an out-of-scope reference in a body reads
  -- as an unknown id).
  local function check(bad, label, want, status, res, text, unknown_fields)
    stats.cells = stats.cells + 1
    if want == "2xx" then
      if status < 200 or status > 299 then
        bad[#bad + 1] = ("%s: expected 2xx, got %d %s"):format(label, status, text:sub(1, 160))
        return false
      end
      return true
    end
    if status ~= want then
      bad[#bad + 1] = ("%s: expected %d, got %d %s"):format(label, want, status, text:sub(1, 160))
      return false
    end
    local code = want == 403 and "forbidden" or want == 400 and "invalid_request" or "not_found"
    if type(res) ~= "table" or type(res.error) ~= "table" or res.error.code ~= code then
      bad[#bad + 1] = ("%s: expected error code %s: %s"):format(label, code, text:sub(1, 160))
    elseif want == 400 and not (unknown_fields or {})[res.error.details.field] then
      bad[#bad + 1] = ("%s: refused, but not as an unknown reference: %s"):format(label,
                                                                             text:sub(1, 160))
    end
    return false
  end

  -- Whether a row's owners match a filter (nil: the owners cannot tell).
  local function matches(ob, param, id)
    if param == "tenant_id" and ob.tenant then return ob.tenant == id end
    if param == "building_id" and ob.building then return ob.building == id end
    if param == "building_id" and ob.buildings then return has(ob.buildings, id) end
    if param == "user_id" and ob.kind == "booking" then return ob.user == id end
    if param == "resource_id" and ob.kind == "booking" then return ob.resource == id end
    return nil
  end

  local check_complete
  -- Every row must be reached by the principal, and match the filter
  -- (param = id) when one is given within the scope.
  local function check_rows(bad, label, p, rows, param, id)
    for _, row in ipairs(rows) do
      local kind, rid = row[1], row[2]
      if type(rid) == "string" and rid ~= "" then
        local ob = owners_of(kind, rid)
        if not reach(p, ob) then
          bad[#bad + 1] = ("%s: row %s %s is outside %s's scope"):format(label, kind, rid, p.name)
        elseif param and matches(ob, param, id) == false then
          bad[#bad + 1] = ("%s: row %s %s does not match the filter"):format(label, kind, rid)
        end
      end
    end
  end

  -- And nothing reached is hidden: every fixture object of `fixtures` the
  -- principal reaches is among the rows.
  function check_complete(bad, label, p, rows, fixtures)
    local ids = {}
    for _, row in ipairs(rows) do ids[row[2]] = true end
    for _, ob in ipairs(fixtures) do
      if reach(p, ob) and not ids[ob.id] then
        bad[#bad + 1] = ("%s: %s is reached by %s but missing"):format(label, ob.id, p.name)
      end
    end
  end

  local function head_too(bad, label, p, method, path, status)
    if method ~= "GET" then return end
    local hs, _, _, htext = req(p.client, "HEAD", path)
    if hs ~= status or htext ~= "" then
      bad[#bad + 1] = ("%s HEAD: expected %d and no body, got %d (%d bytes)")
                      :format(label, status, hs, #htext)
    end
  end

  local function run_objects(bad, route, case, key)
    local list = o[route.objects]
    local replayed_cross = false
    local ghosted = {}
    for _, p in ipairs(principals) do
      for i, template in ipairs(list) do
        local ob = route.fresh and route.fresh(template) or template
        local want = expected(case, p, ob)
        local method, path, body, headers = case.send(ob)
        local label = ("%s [%s] %s %s#%d"):format(key, case.name or "", p.name,
                                                   route.objects, i)
        local idem = route.idempotent and unique("idem-" .. p.name):gsub(" ", "-")
        local h = {}
        for k, v in pairs(headers or {}) do h[k] = v end
        if idem then h["Idempotency-Key"] = idem end
        local c = route.public and p.client:as(false) or p.client
        local status, res, rh, text = req(c, method, path, body, h)
        local ok = check(bad, label, want, status, res, text, case.unknown_as)
        -- Out of scope must read exactly as an id that does not exist (once
        -- per route and principal): ids cannot be probed.
        if (want == 404 or want == 400) and status == want and ob.id
           and not ghosted[p.name] then
          ghosted[p.name] = true
          local ghost = {}
          for k, v in pairs(ob) do ghost[k] = v end
          ghost.id = ob.id:match("^(%a+)_") .. "_999999"
          local gm, gp, gb, gh = case.send(ghost)
          local gs, gr, _, gt = req(c, gm, gp, gb, gh)
          if gs ~= status or type(gr) ~= "table" or type(res) ~= "table"
             or gr.error.code ~= res.error.code or gr.error.message ~= res.error.message then
            bad[#bad + 1] = ("%s: out of scope answers %s, an unknown id %s"):format(label, text,
                                                                                    gt)
          end
        end
        if ok and case.rows then
          check_rows(bad, label, p, case.rows(res))
          if case.all then check_complete(bad, label, p, case.rows(res), case.all(ob)) end
        end
        head_too(bad, label, p, method, path, status)
        if idem then
          -- The same request again from the same principal: the same answer.
          local s2, r2, h2, t2 = req(c, method, path, body, h)
          if s2 ~= status then
            bad[#bad + 1] = ("%s replay: expected %d, got %d %s"):format(label, status, s2,
                                                                         t2:sub(1, 160))
          elseif ok and h2["idempotent-replayed"] ~= "true" then
            bad[#bad + 1] = label .. " replay: no Idempotent-Replayed header"
          elseif ok and key == "POST /v1/keys" and type(r2) == "table"
                 and type(r2.key) == "string" then
            bad[#bad + 1] = label .. " replay: the new key was shown again"
          end
          -- The same key and body from every other principal: a request of
          -- its own (keys are per principal), never the stored answer; the
          -- principals the rule refuses get their refusal, the others act
          -- (or meet the first one's effect: 409, e.g. the slot is taken).
          if ok and not replayed_cross then
            replayed_cross = true
            for _, q2 in ipairs(principals) do
              if q2 ~= p then
                local w2 = expected(case, q2, ob)
                local s3, r3, h3, t3 = req(q2.client, method, path, body, h)
                local l3 = label .. " replayed by " .. q2.name
                if w2 ~= "2xx" then
                  check(bad, l3, w2, s3, r3, t3, case.unknown_as)
                elseif s3 ~= 409 then
                  check(bad, l3, w2, s3, r3, t3, case.unknown_as)
                end
                if h3["idempotent-replayed"] then
                  bad[#bad + 1] = l3 .. ": got the stored answer"
                end
              end
            end
          end
        end
        local _ = rh
      end
    end
  end

  local function run_list(bad, route, key)
    local L = route.list
    for _, p in ipairs(principals) do
      local filters = { { nil, nil } }
      for _, f in ipairs(L.filters or {}) do
        for _, ob in ipairs(o[f[2]]) do filters[#filters + 1] = { f[1], ob } end
      end
      for _, f in ipairs(filters) do
        local param, ob = f[1], f[2]
        local params = {}
        for _, kv in ipairs(L.base or {}) do params[#params + 1] = kv end
        if param then params[#params + 1] = { param, ob.id } end
        if not L.base then params[#params + 1] = { "limit", 500 } end
        local path = "/v1/" .. key:match("^GET /v1/(.*)$") .. q(params)
        local label = ("%s %s%s"):format(key, p.name, param and (" " .. param .. "=" .. ob.id) or "")
        local in_reach = ob == nil or reach(p, ob)
        local status, res, _, text = req(p.client, "GET", path)
        if not route.roles[p.role] then
          check(bad, label, 403, status, res, text)
        elseif in_reach then
          if check(bad, label, "2xx", status, res, text) then
            check_rows(bad, label, p, L.rows(res), param, ob and ob.id)
            if param == nil and L.all then
              check_complete(bad, label, p, L.rows(res), o[L.all])
            end
          end
        elseif status ~= 404 then
          -- A filter outside the scope: 404, or a list of reached rows
          -- that match it (none of the caller's own under another's name).
          if check(bad, label, "2xx", status, res, text) then
            check_rows(bad, label, p, L.rows(res), param, ob and ob.id)
          end
        else
          stats.cells = stats.cells + 1
        end
        head_too(bad, label, p, "GET", path, status)
        if L.csv then
          local sep = path:find("?", 1, true) and "&" or "?"
          local cs, _, ch, ctext = req(p.client, "GET", path .. sep .. "format=csv")
          stats.cells = stats.cells + 1
          if cs ~= status then
            bad[#bad + 1] = ("%s CSV: expected %d like JSON, got %d"):format(label, status, cs)
          elseif cs == 200 then
            if not (ch["content-type"] or ""):find("text/csv", 1, true) then
              bad[#bad + 1] = label .. " CSV: not text/csv"
            end
            local rows = csv_parse(ctext)
            local col
            for i, name in ipairs(rows[1] or {}) do if name == L.csv[2] then col = i end end
            if not col then
              bad[#bad + 1] = label .. " CSV: no column " .. L.csv[2]
            else
              local ids = {}
              for r = 2, #rows do ids[#ids + 1] = { L.csv[1], rows[r][col] } end
              check_rows(bad, label .. " CSV", p, ids, in_reach and param or nil, ob and ob.id)
            end
          end
        end
      end
    end
  end

  for _, r in ipairs(ROUTES) do
    local key = route_key(r)
    local route = EXPECT[key]
    if route then
      route.idempotent = r.idempotent
      route.public = r.public
      it(key, function()
        local bad = {}
        if route.list then
          run_list(bad, route, key)
        else
          run_objects(bad, route, route, key)
          for _, v in ipairs(route.variants or {}) do
            run_objects(bad, route, { name = v.name, roles = v.roles, send = v.send,
                                      unknown_as = route.unknown_as }, key)
          end
        end
        if #bad > 0 then
          local shown = {}
          for i = 1, math.min(#bad, 30) do shown[i] = bad[i] end
          error(("%d findings on %s disagree with §8:\n  %s"):format(#bad, key,
                                                                  table.concat(shown, "\n  ")), 0)
        end
      end)
    end
  end
end)
