/* allot_module.c - the Lua module `allot`: the engine's operations for the
 * REPL, scripts and the busted specs, with the same rules as the HTTP API.
 *
 *   local allot = require "allot"
 *   local db = allot.open{ db = "x.db", policies = "policies", now = "2026-01-01T00:00:00Z" }
 *   local b = db:call("buildings.create", { name = "HQ", timezone = "Europe/Paris", ... })
 *   local q, err = db:quote{ resource_id = r.id, user_id = u.id, start = ..., ["end"] = ... }
 *
 * Every operation returns its result as a table, or nil and an error table
 * {status = 409, code = "insufficient_credits", message = "...", field = ...}.
 * Amounts are Lua numbers with at most 3 decimals (1.5), ids and times
 * strings, exactly as in the JSON API.  db:as{role = ..., tenant_id = ...,
 * user_id = ...} gives a handle acting as another principal. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "csv.h"
#include "engine.h"
#include "timeutil.h"

#define DB_META "allot.db"
#define CONVERT_DEPTH_MAX 32

/* One engine shared by every handle derived from it with db:as(). */
struct shared_engine {
    struct engine eng;
    int refs;
    bool closed;
};

struct db_handle {
    struct shared_engine *shared;
    struct principal who;
};

/* ---------- Lua <-> JSON ---------- */

static json_t *lua_to_json(lua_State *L, int idx, int depth);

/* Set by lua_to_json when a string is not valid UTF-8. */
static _Thread_local bool bad_text;

/* [-0, +0, v] */
static json_t *
table_to_json(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    bool has_other = false;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n) {
            has_other = true;
        }
        lua_pop(L, 1);
    }
    if (!has_other) {
        json_t *arr = json_array();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_array_append_new(arr, lua_to_json(L, -1, depth + 1));
            lua_pop(L, 1);
        }
        return arr;
    }
    json_t *obj = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            json_decref(obj);
            luaL_error(L, "tables must be arrays or have string keys");
        }
        json_object_set_new(obj, lua_tostring(L, -2), lua_to_json(L, -1, depth + 1));
        lua_pop(L, 1);
    }
    return obj;
}

/* [-0, +0, v] */
static json_t *
lua_to_json(lua_State *L, int idx, int depth)
{
    if (depth > CONVERT_DEPTH_MAX) {
        luaL_error(L, "value nested too deeply");
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            return json_integer((json_int_t)lua_tointeger(L, idx));
        }
        return json_real((double)lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *str = json_stringn(s, len);
        if (str == NULL) {
            /* Not valid UTF-8 (or a NUL): the call answers invalid_request,
             * as HTTP does for such a body. */
            bad_text = true;
            return json_null();
        }
        return str;
    }
    case LUA_TTABLE:
        return table_to_json(L, idx, depth);
    default:
        return luaL_error(L, "cannot pass a %s to the engine", luaL_typename(L, idx)), NULL;
    }
}

/* [-0, +1, m] */
static void
json_to_lua(lua_State *L, const json_t *v, int depth)
{
    luaL_checkstack(L, 4, "result nested too deeply");
    if (v == NULL || depth > CONVERT_DEPTH_MAX) {
        lua_pushnil(L);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_foreach((json_t *)v, k, x) {
            json_to_lua(L, x, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        lua_createtable(L, (int)json_array_size(v), 0);
        json_array_foreach(v, i, x) {
            json_to_lua(L, x, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
    }
}

static void
push_error(lua_State *L, const struct eng_error *err)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, eng_error_http_status(err));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, eng_error_code_of(err));
    lua_setfield(L, -2, "code");
    lua_pushstring(L, err->msg);
    lua_setfield(L, -2, "message");
    if (err->field[0] != '\0') {
        lua_pushstring(L, err->field);
        lua_setfield(L, -2, "field");
    }
}

/* ---------- handles ---------- */

static struct db_handle *
check_db(lua_State *L)
{
    struct db_handle *h = luaL_checkudata(L, 1, DB_META);
    if (h->shared == NULL || h->shared->closed) {
        luaL_error(L, "the database is closed");
    }
    return h;
}

static struct db_handle *
new_handle(lua_State *L, struct shared_engine *shared, const struct principal *who)
{
    struct db_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->shared = shared;
    h->who = *who;
    shared->refs++;
    luaL_setmetatable(L, DB_META);
    return h;
}

static const char *
opt_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);
    return s;
}

/* allot.open{db = path, policies = dir, now = "RFC 3339" | nil}  [-0, +1|2, v] */
static int
l_allot_open(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct engine_config cfg;
    engine_config_default(&cfg);
    const char *path = opt_field(L, 1, "db");
    const char *dir = opt_field(L, 1, "policies");
    const char *now = opt_field(L, 1, "now");
    if (path == NULL) {
        return luaL_error(L, "allot.open needs db = <path>");
    }
    if (dir == NULL) {
        dir = getenv("ALLOT_POLICIES") ? getenv("ALLOT_POLICIES") : "policies";
    }
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", path);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", dir);
    struct eng_error err = {0};
    if (now != NULL) {
        cfg.fake_clock = true;
        if (time_parse_rfc3339(now, &cfg.fake_now, &err) != 0) {
            return luaL_error(L, "allot.open: now: %s", err.msg);
        }
    }
    struct shared_engine *shared = calloc(1, sizeof *shared);
    if (shared == NULL) {
        return luaL_error(L, "out of memory");
    }
    if (engine_open(&shared->eng, &cfg, &err) != 0) {
        free(shared);
        luaL_pushfail(L);
        lua_pushstring(L, err.msg);
        return 2;
    }
    struct principal console = {.role = ROLE_SUPER_ADMIN};
    snprintf(console.name, sizeof console.name, "console");
    new_handle(L, shared, &console);
    return 1;
}

static void
shared_release(struct shared_engine *shared)
{
    if (--shared->refs == 0) {
        if (!shared->closed) {
            engine_close(&shared->eng);
        }
        free(shared);
    }
}

static int
l_db_gc(lua_State *L)
{
    struct db_handle *h = luaL_checkudata(L, 1, DB_META);
    if (h->shared != NULL) {
        shared_release(h->shared);
        h->shared = NULL;
    }
    return 0;
}

/* db:close(): closes the engine for every handle sharing it. */
static int
l_db_close(lua_State *L)
{
    struct db_handle *h = luaL_checkudata(L, 1, DB_META);
    if (h->shared != NULL && !h->shared->closed) {
        engine_close(&h->shared->eng);
        h->shared->closed = true;
    }
    return 0;
}

/* db:call(op, args, {idempotency_key = k}) -> result, status, replayed
 *                                       | nil, error, replayed   [-0, +3, v]
 * A replayed refusal (a stored 409) gives the same error table as the
 * first answer, and true as its third value. */
static int
l_db_call(lua_State *L)
{
    struct db_handle *h = check_db(L);
    const char *op = luaL_checkstring(L, 2);
    json_t *args = NULL;
    struct eng_error err = {0};
    if (lua_istable(L, 3)) {
        bad_text = false;
        args = lua_to_json(L, 3, 0);
        if (bad_text) {
            json_decref(args);
            eng_error_code(&err, ENG_EINVAL, "invalid_request",
                           "strings must be valid UTF-8 without NUL bytes");
            luaL_pushfail(L);
            push_error(L, &err);
            return 2;
        }
        if (json_is_array(args) && json_array_size(args) == 0) {
            json_decref(args);
            args = json_object();
        }
    } else if (!lua_isnoneornil(L, 3)) {
        return luaL_argerror(L, 3, "a table or nil expected");
    }
    const char *idem = lua_istable(L, 4) ? opt_field(L, 4, "idempotency_key") : NULL;
    json_t *out = NULL;
    bool created = false;
    bool replayed = false;
    /* A report asked for as CSV answers its table; render it here, as
     * HTTP does, into {csv = text}. */
    const char *format = json_string_value(json_object_get(args, "format"));
    bool csv = format != NULL && strcmp(format, "csv") == 0;
    int rc = engine_exec(&h->shared->eng, &h->who, op, args, idem, &out, &created, &replayed, &err);
    json_decref(args);
    if (rc == 0 && csv && json_object_get(out, "columns") != NULL) {
        char *text = csv_report(out);
        json_decref(out);
        out = text != NULL ? json_pack("{s:s}", "csv", text) : NULL;
        free(text);
        if (out == NULL) {
            rc = eng_error_set(&err, ENG_ENOMEM, "out of memory");
        }
    }
    if (rc != 0) {
        luaL_pushfail(L);
        push_error(L, &err);
        lua_pushboolean(L, replayed);
        return 3;
    }
    json_to_lua(L, out, 0);
    json_decref(out);
    lua_pushinteger(L, created ? 201 : 200);
    lua_pushboolean(L, replayed);
    return 3;
}

/* db:set_clock("2026-02-01T00:00:00Z") -> true | nil, error */
static int
l_db_set_clock(lua_State *L)
{
    struct db_handle *h = check_db(L);
    int64_t t = 0;
    struct eng_error err = {0};
    if (time_parse_rfc3339(luaL_checkstring(L, 2), &t, &err) != 0 ||
        engine_set_clock(&h->shared->eng, t, &err) != 0) {
        luaL_pushfail(L);
        push_error(L, &err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* db:now() -> "RFC 3339" */
static int
l_db_now(lua_State *L)
{
    struct db_handle *h = check_db(L);
    char buf[32];
    time_format_rfc3339(engine_now(&h->shared->eng), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int64_t
opt_id(lua_State *L, int idx, const char *key, const char *prefix)
{
    const char *s = opt_field(L, idx, key);
    int64_t id = 0;
    if (s != NULL && id_parse(prefix, s, &id) != 0) {
        luaL_error(L, "%s: not a valid id", key);
    }
    return id;
}

/* db:as{role = "tenant_user", tenant_id = ..., user_id = ..., building_ids = {...}} */
static int
l_db_as(lua_State *L)
{
    struct db_handle *h = check_db(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct principal who = {0};
    if (role_parse(opt_field(L, 2, "role"), &who.role) != 0) {
        return luaL_error(L, "db:as: unknown role");
    }
    who.tenant_id = opt_id(L, 2, "tenant_id", "ten");
    who.user_id = opt_id(L, 2, "user_id", "usr");
    lua_getfield(L, 2, "building_ids");
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1) &&
                                i <= PRINCIPAL_BUILDINGS_MAX; i++) {
            lua_rawgeti(L, -1, i);
            int64_t bid = 0;
            if (id_parse("bld", lua_tostring(L, -1), &bid) != 0) {
                return luaL_error(L, "db:as: bad building id");
            }
            who.building_ids[who.building_count++] = bid;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (who.user_id != 0 && who.tenant_id == 0) {
        return luaL_error(L, "db:as: a user principal needs tenant_id too");
    }
    snprintf(who.name, sizeof who.name, "%s", role_name(who.role));
    new_handle(L, h->shared, &who);
    return 1;
}

/* db:verify() -> true | false, {problems} */
static int
l_db_verify(lua_State *L)
{
    struct db_handle *h = check_db(L);
    json_t *problems = json_array();
    struct eng_error err = {0};
    if (engine_verify(&h->shared->eng, problems, &err) != 0) {
        json_decref(problems);
        return luaL_error(L, "verify: %s", err.msg);
    }
    lua_pushboolean(L, json_array_size(problems) == 0);
    json_to_lua(L, problems, 0);
    json_decref(problems);
    return 2;
}

static const luaL_Reg db_methods[] = {
    {"call", l_db_call},   {"set_clock", l_db_set_clock}, {"now", l_db_now},
    {"as", l_db_as},       {"verify", l_db_verify},       {"close", l_db_close},
    {NULL, NULL},
};

static const luaL_Reg allot_lib[] = {
    {"open", l_allot_open},
    {NULL, NULL},
};

/* Friendly names for the operations: db:book{...} is db:call("bookings.create", {...}). */
static const char *const prelude =
    "local methods = ...\n"
    "local names = {\n"
    "  create_building = 'buildings.create', building = 'buildings.get',\n"
    "  buildings = 'buildings.list', update_building = 'buildings.patch',\n"
    "  create_resource = 'resources.create', resource = 'resources.get',\n"
    "  resources = 'resources.list', update_resource = 'resources.patch',\n"
    "  create_tenant = 'tenants.create', tenant = 'tenants.get', tenants = 'tenants.list',\n"
    "  update_tenant = 'tenants.patch', create_user = 'users.create', user = 'users.get',\n"
    "  users = 'users.list', update_user = 'users.patch',\n"
    "  allocate = 'allocations.create', allocation = 'allocations.get',\n"
    "  allocations = 'allocations.list', end_allocation = 'allocations.end',\n"
    "  wallet = 'wallet', adjust = 'adjustments.create', entries = 'entries.list',\n"
    "  quote = 'quotes.create', book = 'bookings.create', cancel = 'bookings.cancel',\n"
    "  booking = 'bookings.get', bookings = 'bookings.list', create_key = 'keys.create',\n"
    "  me = 'me',\n"
    "}\n"
    "for name, op in pairs(names) do\n"
    "  methods[name] = function(self, args, opts)\n"
    "    return self:call(op, args, opts)\n"
    "  end\n"
    "end\n"
    "return names\n";

int luaopen_allot(lua_State *L);

int
luaopen_allot(lua_State *L)
{
    luaL_newmetatable(L, DB_META);
    luaL_newlib(L, db_methods);
    if (luaL_loadbufferx(L, prelude, strlen(prelude), "=allot", "t") != LUA_OK) {
        return lua_error(L);
    }
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_setfield(L, -3, "operations");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_db_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, allot_lib);
    return 1;
}
