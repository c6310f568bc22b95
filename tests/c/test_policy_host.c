/* test_policy_host.c - the policy sandbox: calls and conversions, budgets,
 * memory, escape attempts, loading and self-check examples, lifecycle.
 *
 * Policies are inline sources: six trivial default modules, and per test an
 * override of the pricing kind named "policies/t/pricing.lua".  The last
 * test also loads the shipped policies (ALLOT_POLICIES, else ./policies)
 * when they are there. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "policy_host.h"

#define T_CHUNK "policies/t/pricing.lua"

static const char *const default_src[POLICY_KIND_COUNT] = {
    "return { price = function(ctx) return { credits = ctx.n * 2 } end }",
    "return { eligible = function(ctx) return true end }",
    "return { order = function(ctx) return ctx.lots end }",
    "return { rollover = function(ctx) return { carry = 0 } end }",
    "return { refund = function(ctx) return { credits = 0 } end }",
    "return { validate = function(ctx) return { ok = ('ab'):rep(2) } end }",
};
static char default_names[POLICY_KIND_COUNT][64];
/* Default limits but a 10 s deadline, so tests of the instruction budget
 * do not depend on the machine's speed (or valgrind's). */
static struct policy_limits slow;
static struct policy_source defaults[POLICY_KIND_COUNT];

static void
setup_defaults(void)
{
    policy_limits_default(&slow);
    slow.wall_ms_max = 10000;
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        snprintf(default_names[k], sizeof default_names[k], "policies/default/%s.lua",
                 policy_kind_name((enum policy_kind)k));
        defaults[k] = (struct policy_source){default_names[k], default_src[k],
                                             strlen(default_src[k])};
    }
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* True when needle is in msg; prints the message otherwise. */
static bool
has(const char *msg, const char *needle)
{
    if (strstr(msg, needle) != NULL) {
        return true;
    }
    printf("# message: %s\n# wanted:  %s\n", msg, needle);
    return false;
}

/* The defaults with `src` (len bytes) overriding pricing. */
static int
load_pricing_len(const char *src, size_t len, const struct policy_limits *lim,
                 struct policy_set **set, struct eng_error *err)
{
    struct policy_source over[POLICY_KIND_COUNT] = {{0}};
    over[POLICY_PRICING] = (struct policy_source){T_CHUNK, src, len};
    return policy_set_load(set, defaults, over, lim, err);
}

static int
load_pricing(const char *src, const struct policy_limits *lim, struct policy_set **set,
             struct eng_error *err)
{
    return load_pricing_len(src, strlen(src), lim, set, err);
}

/* Calls kind with ctx given as JSON text (NULL: no ctx). */
static int
call_json(struct policy_set *set, enum policy_kind kind, const char *ctx_text, json_t **out,
          struct eng_error *err)
{
    json_t *ctx = ctx_text != NULL ? json_loads(ctx_text, 0, NULL) : NULL;
    int rc = policy_set_call(set, kind, ctx, out, err);
    json_decref(ctx);
    return rc;
}

/* Loads src as pricing, calls price(ctx) once, releases the set. */
static int
run_pricing(const char *src, const char *ctx_text, const struct policy_limits *lim,
            json_t **out, struct eng_error *err)
{
    struct policy_set *set = NULL;
    *out = NULL;
    int rc = load_pricing(src, lim, &set, err);
    if (rc != 0) {
        printf("# load failed: %s\n", err->msg);
        return rc;
    }
    rc = call_json(set, POLICY_PRICING, ctx_text, out, err);
    policy_set_release(set);
    return rc;
}

static json_int_t
int_at(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

static void
test_kinds_and_limits(void)
{
    struct policy_limits lim;
    policy_limits_default(&lim);
    CHECK_INT(lim.memory_bytes_max, 8 * 1024 * 1024);
    CHECK_INT(lim.instructions_max, 1000000);
    CHECK_INT(lim.wall_ms_max, 2000);
    CHECK_INT(lim.source_bytes_max, 256 * 1024);
    CHECK_INT(lim.string_bytes_max, 4096);
    CHECK_INT(lim.convert_depth_max, 8);
    CHECK_STR(policy_kind_name(POLICY_ELIGIBILITY), "eligibility");
    CHECK_STR(policy_kind_function(POLICY_PRICING), "price");
    CHECK_STR(policy_kind_function(POLICY_VALIDATE), "validate");
    enum policy_kind kind = POLICY_PRICING;
    struct eng_error err = {0};
    CHECK_INT(policy_kind_parse("refund", &kind, &err), 0);
    CHECK_INT(kind, POLICY_REFUND);
    CHECK_INT(policy_kind_parse("nope", &kind, &err), ENG_EINVAL);

    struct policy_set *set = NULL;
    lim.convert_depth_max = 0;
    CHECK_INT(policy_set_load(&set, defaults, NULL, &lim, &err), ENG_EINVAL);
    CHECK(set == NULL);
}

static void
test_normal_call(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    json_t *out = NULL;
    CHECK_INT(policy_set_load(&set, defaults, NULL, NULL, &err), 0);
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"n\": 21}", &out, &err), 0);
    CHECK(json_is_integer(json_object_get(out, "credits")));
    CHECK_INT(int_at(out, "credits"), 42);
    json_decref(out);
    CHECK_INT(call_json(set, POLICY_VALIDATE, "{}", &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "ok")), "abab");
    json_decref(out);
    CHECK_INT(call_json(set, POLICY_ELIGIBILITY, NULL, &out, &err), 0);
    CHECK(json_is_true(out));
    json_decref(out);
    /* order returns ctx.lots, which is absent: nil becomes JSON null. */
    CHECK_INT(call_json(set, POLICY_ORDER, "{}", &out, &err), 0);
    CHECK(json_is_null(out));
    json_decref(out);
    CHECK(policy_set_memory_bytes(set) > 0);
    CHECK(policy_set_memory_bytes(set) < 8 * 1024 * 1024);
    policy_set_release(set);

    const char *rich = "return { price = function(ctx) return {\n"
                       "  i = 7, f = 1.5, whole = 2.0, s = 'x', yes = true, no = false,\n"
                       "  list = { 1, 2, 3 }, empty = {}, nested = { a = { b = { 'deep' } } },\n"
                       "  echo = ctx } end }";
    CHECK_INT(run_pricing(rich, "{\"k\": [1, 2.5, \"s\", {\"x\": null}], \"z\": null}",
                          NULL, &out, &err),
              0);
    CHECK(json_is_integer(json_object_get(out, "i")));
    CHECK(json_is_real(json_object_get(out, "f")));
    CHECK(json_real_value(json_object_get(out, "f")) == 1.5);
    CHECK(json_is_real(json_object_get(out, "whole"))); /* 2.0 stays a float */
    CHECK_STR(json_string_value(json_object_get(out, "s")), "x");
    CHECK(json_is_true(json_object_get(out, "yes")));
    CHECK(json_is_false(json_object_get(out, "no")));
    CHECK_INT(json_array_size(json_object_get(out, "list")), 3);
    CHECK(json_is_array(json_object_get(out, "empty")));
    CHECK_INT(json_array_size(json_object_get(out, "empty")), 0);
    json_t *deep = json_object_get(json_object_get(json_object_get(out, "nested"), "a"), "b");
    CHECK_STR(json_string_value(json_array_get(deep, 0)), "deep");
    json_t *echo = json_object_get(out, "echo");
    CHECK(json_object_get(echo, "z") == NULL); /* null keys are absent */
    json_t *k = json_object_get(echo, "k");
    CHECK(json_is_integer(json_array_get(k, 0)));
    CHECK(json_is_real(json_array_get(k, 1)));
    CHECK_INT(json_object_size(json_array_get(k, 3)), 0);
    json_decref(out);
}

static void
test_number_subtypes(void)
{
    const char *src = "return { price = function(ctx) return {\n"
                      "  i = math.type(ctx.i), f = math.type(ctx.f), n = #ctx.list,\n"
                      "  a = ctx.i + 1, b = ctx.f * 2, c = 7 // 2, d = 7 / 2 } end }";
    json_t *out = NULL;
    struct eng_error err = {0};
    CHECK_INT(run_pricing(src, "{\"i\": 1, \"f\": 1.0, \"list\": [1, 2, 3]}", NULL, &out, &err),
              0);
    CHECK_STR(json_string_value(json_object_get(out, "i")), "integer");
    CHECK_STR(json_string_value(json_object_get(out, "f")), "float");
    CHECK_INT(int_at(out, "n"), 3);
    CHECK(json_is_integer(json_object_get(out, "a")));
    CHECK(json_is_real(json_object_get(out, "b")));
    CHECK(json_is_integer(json_object_get(out, "c")));
    CHECK(json_is_real(json_object_get(out, "d")));
    json_decref(out);
}

static void
test_ctx_limits(void)
{
    const char *src = "return { price = function(ctx) return 1 end }";
    json_t *out = NULL;
    struct eng_error err = {0};
    CHECK_INT(run_pricing(src, "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}",
                          NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "ctx: nested deeper than 8"));
    CHECK(has(err.msg, T_CHUNK));
    CHECK(out == NULL);
    char *big = malloc(5000 + 16);
    memset(big, 'x', 5016);
    memcpy(big, "{\"s\": \"", 7);
    memcpy(big + 5007, "\"}", 3);
    CHECK_INT(run_pricing(src, big, NULL, &out, &err), ENG_EPOLICY);
    CHECK(has(err.msg, "ctx: string longer than 4096 bytes"));
    free(big);
}

static void
test_infinite_loops(void)
{
    struct eng_error err = {0};
    json_t *out = NULL;
    double t0 = now_ms();
    CHECK_INT(run_pricing("return { price = function(ctx)\n while true do end\n end }", "{}",
                          &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":2: policy exceeded its instruction budget"));
    CHECK(now_ms() - t0 < 1000);
    CHECK(out == NULL);

    /* pcall catches the first raise, but the budget stays exhausted. */
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " pcall(function() while true do end end)\n"
                          " while true do end end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "instruction budget"));
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " while true do pcall(function() while true do end end) end end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "instruction budget"));
    /* Swallowing the error and returning normally does not work either. */
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " local ok = pcall(function() while true do end end)\n"
                          " return { ok = ok } end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(out == NULL);
    /* xpcall's handler would run with hooks off after a budget error. */
    t0 = now_ms();
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " xpcall(function() while true do end end,\n"
                          "        function(m) while true do end end)\n"
                          " return 1 end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "instruction budget"));
    CHECK(now_ms() - t0 < 1000);
    /* A normal error still reaches the policy's xpcall handler. */
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " local ok, m = xpcall(error, function(m) return 'handled ' .. m end,"
                          " 'oops', 0)\n return { ok = ok, m = m } end }",
                          "{}", &slow, &out, &err),
              0);
    CHECK_STR(json_string_value(json_object_get(out, "m")), "handled oops");
    json_decref(out);
    /* Deep recursion ends in a Lua error, not a crash. */
    CHECK_INT(run_pricing("local function f(n) return f(n + 1) + 1 end\n"
                          "return { price = function(ctx) return f(1) end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
}

static void
test_wall_clock(void)
{
    struct policy_limits lim;
    policy_limits_default(&lim);
    lim.instructions_max = INT64_MAX / 2;
    lim.wall_ms_max = 30;
    struct eng_error err = {0};
    json_t *out = NULL;
    double t0 = now_ms();
    CHECK_INT(run_pricing("return { price = function(ctx) while true do end end }", "{}", &lim,
                          &out, &err),
              ENG_EPOLICY);
    double elapsed = now_ms() - t0;
    CHECK(has(err.msg, "policy exceeded its time limit (30 ms)"));
    CHECK(elapsed >= 29 && elapsed < 1000);
    /* An allocation-heavy loop meets the deadline through the allocator. */
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " local s = ('x'):rep(60000)\n"
                          " while true do local t = s .. s end end }",
                          "{}", &lim, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "time limit"));
}

static void
test_memory_bombs(void)
{
    struct policy_limits lim;
    policy_limits_default(&lim);
    lim.instructions_max = 1000000000;
    lim.wall_ms_max = 10000;
    const char *src =
        "return { price = function(ctx)\n"
        "  if ctx.mode == 'concat' then local s = 'x' while true do s = s .. s end end\n"
        "  if ctx.mode == 'table' then local t = {} for i = 1, 1e9 do t[i] = i end end\n"
        "  if ctx.mode == 'rep' then return #string.rep('x', 2e8) end\n"
        "  if ctx.mode == 'repgrow' then local s = 'x' while true do s = s:rep(2) end end\n"
        "  if ctx.mode == 'pcall' then\n"
        "    for i = 1, 50 do pcall(function() local t = {} for j = 1, 1e9 do t[j] = j end end)"
        " end\n"
        "    return { survived = true } end\n"
        "  return { ok = 1 } end }";
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    json_t *out = NULL;
    CHECK_INT(load_pricing(src, &lim, &set, &err), 0);
    size_t idle_bytes = policy_set_memory_bytes(set);

    CHECK_INT(call_json(set, POLICY_PRICING, "{\"mode\": \"concat\"}", &out, &err), ENG_EPOLICY);
    CHECK(has(err.msg, "memory limit"));
    CHECK_INT(call_json(set, POLICY_PRICING, "{}", &out, &err), 0);
    CHECK_INT(int_at(out, "ok"), 1);
    json_decref(out);

    CHECK_INT(call_json(set, POLICY_PRICING, "{\"mode\": \"table\"}", &out, &err), ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ": policy exceeded its memory limit (8388608 bytes)"));
    CHECK(policy_set_memory_bytes(set) < idle_bytes + 512 * 1024);
    CHECK_INT(call_json(set, POLICY_PRICING, "{}", &out, &err), 0);
    CHECK_INT(int_at(out, "ok"), 1);
    json_decref(out);

    CHECK_INT(call_json(set, POLICY_PRICING, "{\"mode\": \"rep\"}", &out, &err), ENG_EPOLICY);
    CHECK(has(err.msg, "string.rep result longer than 65536 bytes"));
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"mode\": \"repgrow\"}", &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":5: string.rep result longer than 65536 bytes"));

    /* Memory errors caught by the policy itself: the call goes on. */
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"mode\": \"pcall\"}", &out, &err), 0);
    CHECK(json_is_true(json_object_get(out, "survived")));
    json_decref(out);
    CHECK_INT(call_json(set, POLICY_PRICING, "{}", &out, &err), 0);
    json_decref(out);
    CHECK(policy_set_memory_bytes(set) <= lim.memory_bytes_max);
    policy_set_release(set);

    /* With the default budget a fill loop is stopped by either limit. */
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " while true do pcall(function() local t = {}"
                          " for i = 1, 1e9 do t[i] = {} end end) end end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "instruction budget"));
}

static void
test_unavailable(void)
{
    const char *src =
        "return { price = function(ctx) return {\n"
        " os = type(os), io = type(io), require = type(require), load = type(load),\n"
        " dofile = type(dofile), loadfile = type(loadfile), debug = type(debug),\n"
        " collectgarbage = type(collectgarbage), print = type(print), warn = type(warn),\n"
        " package = type(package), coroutine = type(coroutine), rawset = type(rawset),\n"
        " dump = type(string.dump), sdump = type(('').dump), random = type(math.random),\n"
        " randomseed = type(math.randomseed), G = type(_G), setfenv = type(setfenv),\n"
        " pairs = type(pairs), milli = type(allot.milli), sfind = type(string.find)\n"
        "} end }";
    json_t *out = NULL;
    struct eng_error err = {0};
    CHECK_INT(run_pricing(src, "{}", NULL, &out, &err), 0);
    static const char *const absent[] = {
        "os",      "io",      "require", "load",   "dofile", "loadfile", "debug",
        "collectgarbage", "print", "warn", "package", "coroutine", "rawset", "dump",
        "sdump",   "random",  "randomseed", "G",    "setfenv",
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        const char *type = json_string_value(json_object_get(out, absent[i]));
        CHECK(type != NULL && strcmp(type, "nil") == 0);
        if (type == NULL || strcmp(type, "nil") != 0) {
            printf("# %s is %s\n", absent[i], type ? type : "(missing)");
        }
    }
    CHECK_STR(json_string_value(json_object_get(out, "pairs")), "function");
    CHECK_STR(json_string_value(json_object_get(out, "milli")), "function");
    CHECK_STR(json_string_value(json_object_get(out, "sfind")), "function");
    json_decref(out);

    CHECK_INT(run_pricing("return { price = function(ctx) return os.execute('true') end }", "{}",
                          NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "attempt to index a nil value (global 'os')"));
    CHECK_INT(run_pricing("return { price = function(ctx) return require('io') end }", "{}",
                          NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "attempt to call a nil value (global 'require')"));
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " return setmetatable({}, { __gc = function() end }) end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "__gc metamethods are not allowed"));
}

struct dump_buf {
    char data[4096];
    size_t len;
};

static int
dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    struct dump_buf *b = ud;
    if (sz > sizeof b->data - b->len) {
        return 1;
    }
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

static void
test_binary_chunk_refused(void)
{
    /* A real binary chunk, dumped by an ordinary (unsandboxed) state. */
    lua_State *L = luaL_newstate();
    CHECK_INT(luaL_loadstring(L, "return { price = function() return 1 end }"), LUA_OK);
    static struct dump_buf bin;
    CHECK_INT(lua_dump(L, dump_writer, &bin, 0), 0);
    CHECK(bin.len > 4 && bin.data[0] == 0x1b);
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing_len(bin.data, bin.len, NULL, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, "binary chunks are not accepted"));
    CHECK(set == NULL);
    lua_close(L);
    CHECK_INT(load_pricing("\x1bLua\x54", NULL, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, "binary"));
}

static void
test_globals_and_tampering(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    json_t *out = NULL;
    CHECK_INT(load_pricing("x = 1\nreturn { price = function() return 1 end }", NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ":1: assignment to undeclared global 'x'"));
    CHECK_INT(run_pricing("return { price = function(ctx)\n counter = 1 end }", "{}", NULL, &out,
                          &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":2: assignment to undeclared global 'counter'"));

    /* Every tampering attempt fails, and the other kinds in the same state
     * (validate uses string.rep through a method call) are unaffected. */
    const char *src =
        "local function try(f) local ok, m = pcall(f) return ok and 'done' or m end\n"
        "return { price = function(ctx) return {\n"
        " a = try(function() getmetatable('').__index = {} end),\n"
        " b = try(function() string.rep = nil end),\n"
        " c = try(function() math.floor = nil end),\n"
        " d = try(function() table.insert = nil end),\n"
        " e = try(function() allot.milli = nil end),\n"
        " f = try(function() setmetatable('', {}) end),\n"
        " g = try(function() setmetatable(string, {}) end),\n"
        " h = try(function() setmetatable(_ENV, {}) end),\n"
        " i = try(function() rawset(_ENV, 'leak', 1) end),\n"
        " j = getmetatable(''), k = getmetatable(string), l = getmetatable(_ENV),\n"
        " m = try(function() utf8.len = nil end),\n"
        "} end }";
    CHECK_INT(load_pricing(src, NULL, &set, &err), 0);
    CHECK_INT(call_json(set, POLICY_PRICING, "{}", &out, &err), 0);
    const char *keys = "abcdefghim";
    for (const char *k = keys; *k != '\0'; k++) {
        char key[2] = {*k, '\0'};
        const char *v = json_string_value(json_object_get(out, key));
        CHECK(v != NULL && strcmp(v, "done") != 0);
        if (v != NULL) {
            printf("# %s: %s\n", key, v);
        }
    }
    CHECK(has(json_string_value(json_object_get(out, "b")), "read-only table 'string'"));
    CHECK_STR(json_string_value(json_object_get(out, "j")), "locked");
    CHECK_STR(json_string_value(json_object_get(out, "k")), "locked");
    CHECK_STR(json_string_value(json_object_get(out, "l")), "locked");
    json_decref(out);
    CHECK_INT(call_json(set, POLICY_VALIDATE, "{}", &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "ok")), "abab");
    json_decref(out);
    policy_set_release(set);
}

static void
test_patterns(void)
{
    struct eng_error err = {0};
    json_t *out = NULL;
    double t0 = now_ms();
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " return ('a'):rep(4096):find('.-.-b') end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":2: pattern too complex"));
    CHECK(now_ms() - t0 < 100);
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " return ('a'):rep(200):find('.-.-b') end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "more than one '*', '+' or '-'"));
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " return string.match(('a'):rep(30), ('a?'):rep(30) .. ('a'):rep(30))"
                          " end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "more than 4 '?'"));

    const char *ok =
        "return { price = function(ctx) return {\n"
        " a = ('x=12;y=7'):match('y=(%d+)'),\n"
        " b = ({ ('a-b-c'):gsub('-', '+') })[1],\n"
        " c = ('a'):rep(5000):find('b', 1, true) == nil,\n"
        " d = ('a'):rep(5000):find('aab') == nil,\n"
        " e = ('2026-01-14'):match('^(%d%d%d%d)%-(%d%d)%-(%d%d)$'),\n"
        " f = ('[x]'):find('[]]'),\n"
        " g = string.format('%5.2f|%-3d|%s', 1.5, 7, 'z'),\n"
        " h = select(2, pcall(string.format, '%100d', 1)),\n"
        " i = ('abc'):upper() .. utf8.char(233) .. #table.concat({ 'a', 'b' }),\n"
        "} end }";
    CHECK_INT(run_pricing(ok, "{}", NULL, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "a")), "7");
    CHECK_STR(json_string_value(json_object_get(out, "b")), "a+b+c");
    CHECK(json_is_true(json_object_get(out, "c")));
    CHECK(json_is_true(json_object_get(out, "d")));
    CHECK_STR(json_string_value(json_object_get(out, "e")), "2026");
    CHECK_INT(int_at(out, "f"), 3);
    CHECK_STR(json_string_value(json_object_get(out, "g")), " 1.50|7  |z");
    CHECK(has(json_string_value(json_object_get(out, "h")), "width or precision above 99"));
    CHECK_STR(json_string_value(json_object_get(out, "i")), "ABC\xc3\xa9" "2");
    json_decref(out);
}

static void
test_table_functions(void)
{
    struct eng_error err = {0};
    json_t *out = NULL;
    double t0 = now_ms();
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " table.move({}, 1, math.maxinteger - 1, 2) end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":2: policy exceeded its instruction budget"));
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " local t = setmetatable({}, { __len = function() return 1 << 62 end })\n"
                          " table.insert(t, 1, 'x') end }",
                          "{}", &slow, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "instruction budget"));
    CHECK(now_ms() - t0 < 500);
    CHECK_INT(run_pricing("return { price = function(ctx)\n"
                          " local t = { 3, 1, 2 } table.sort(t) table.insert(t, 4)\n"
                          " table.remove(t, 1)\n"
                          " return { t = t, u = { table.unpack({ 1, 2 }) },\n"
                          "          m = table.move({ 1, 2 }, 1, 2, 2, { 0 }) } end }",
                          "{}", &slow, &out, &err),
              0);
    json_t *t = json_object_get(out, "t");
    CHECK_INT(json_array_size(t), 3);
    CHECK_INT(json_integer_value(json_array_get(t, 0)), 2);
    CHECK_INT(json_integer_value(json_array_get(t, 2)), 4);
    CHECK_INT(json_array_size(json_object_get(out, "u")), 2);
    CHECK_INT(json_array_size(json_object_get(out, "m")), 3);
    json_decref(out);
}

static void
test_bad_results(void)
{
    static const struct {
        const char *body;
        const char *message;
    } cases[] = {
        {"return 0/0", "NaN or an infinite number at result"},
        {"return { x = math.huge }", "NaN or an infinite number at result.x"},
        {"return { f = function() end }", "policy returned a function at result.f"},
        {"return function() end", "policy returned a function at result"},
        {"local t = {} t.self = t return t", "nested deeper than 8 levels (or a cycle)"},
        {"local t = {} for i = 1, 20 do t = { t } end return t", "nested deeper than 8"},
        {"return { s = ('x'):rep(5000) }", "a string longer than 4096 bytes at result.s"},
        {"return { 1, 2, a = 3 }", "a table mixing keys"},
        {"return { [1] = 1, [3] = 3 }", "a table mixing keys"},
        {"return { [true] = 1 }", "a table mixing keys"},
        {"return { list = { 1, 0/0 } }", "at result.list[2]"},
        {"return { s = '\\xff' }", "not UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "return { price = function(ctx) %s end }", cases[i].body);
        json_t *out = NULL;
        struct eng_error err = {0};
        CHECK_INT(run_pricing(src, "{}", NULL, &out, &err), ENG_EPOLICY);
        CHECK(out == NULL);
        CHECK(has(err.msg, cases[i].message));
    }
}

/* Results read without JSON (policy_set_call_parts_pick).  The pick of a
 * result must be what reading the same names of its JSON conversion with
 * json_object_get gives (a string as "%s" of it into an error message
 * keeps it), and a result that does not convert must fail alike. */
static const char *const pick_names[POLICY_PICK_FIELDS_MAX] = {
    "error", "money", "money_before_discount", "credits", "unit", "ok"};

static bool
pick_matches_json(const struct policy_pick *p, const json_t *j)
{
    enum policy_pick_shape shape = json_is_null(j)     ? POLICY_PICK_NULL
                                   : json_is_object(j) ? POLICY_PICK_OBJECT
                                   : json_is_array(j) && json_array_size(j) == 0
                                       ? POLICY_PICK_EMPTY
                                       : POLICY_PICK_OTHER;
    bool same = p->shape == shape;
    for (int i = 0; i < p->count; i++) {
        const struct policy_pick_field *f = &p->fields[i];
        const json_t *v = json_object_get(j, p->names[i]);
        char want[ENG_MSG_MAX];
        if (v == NULL) {
            same = same && f->type == POLICY_PICK_ABSENT;
        } else if (json_is_integer(v)) {
            same = same && f->type == POLICY_PICK_INTEGER &&
                   f->integer == (int64_t)json_integer_value(v);
        } else if (json_is_string(v)) {
            snprintf(want, sizeof want, "%s", json_string_value(v));
            same = same && f->type == POLICY_PICK_STRING && strcmp(f->text, want) == 0;
        } else {
            same = same && f->type == POLICY_PICK_VALUE;
        }
    }
    return same;
}

/* The results price() meets, ordinary and odd: ctx.mode picks one. */
static const char *const pick_cases[] = {
    "nil",
    "true",
    "false",
    "42",
    "2.5",
    "'text'",
    "'caf\\xc3\\xa9'",
    "{}",
    "{ credits = 1000, unit = 'hour', money = 5000, money_before_discount = 5000 }",
    "{ credits = 2.0, unit = 'hour' }",
    "{ credits = -5, money = math.maxinteger, unit = 7 }",
    "{ credits = 1000, unit = 'hour', extra = { nested = { deep = true } } }",
    "{ credits = 1000, unit = 'hour', note = 'x', flag = false, rate = 0.5 }",
    "{ error = 'no' }",
    "{ error = false }",
    "{ error = { why = 'x' } }",
    "{ error = 'r\\xc3\\xa9serv\\xc3\\xa9' }",
    "{ error = ('e'):rep(600) }",
    "{ error = 'a\\0b' }",
    "{ unit = 'hour\\0x', credits = 1 }",
    "{ ['money\\0'] = 5, ['cr\\xc3\\xa9dits'] = 1 }",
    "setmetatable({ credits = 5 }, { __index = function() return 1 end })",
    "ctx.resource",
    "{ resource = ctx.resource }",
    "{ 1, 2, 3 }",
    "{ tags = { 'a', 'b' } }",
    "{ 1, x = 2 }",
    "{ [1.5] = 1 }",
    "{ credits = function() end }",
    "{ [('k'):rep(5000)] = 1 }",
    "{ unit = ('u'):rep(5000) }",
    "{ credits = 1/0 }",
    "{ money = 0/0 }",
    "{ ['\\xff'] = 1 }",
    "{ unit = '\\xff' }",
    "'\\xff'",
    "0/0",
    "function() end",
};
#define PICK_CASES ((int)(sizeof pick_cases / sizeof pick_cases[0]))

/* Calls pricing on ctx {mode, resource (kept)}: as JSON into *json, or
 * picked into *pick (json NULL). */
static int
call_mode(struct policy_set *set, int mode, json_t **json, struct policy_pick *pick,
          struct eng_error *err)
{
    json_t *res = json_loads("{\"credits\": 7, \"unit\": \"coin\", \"tags\": [\"a\"]}", 0, NULL);
    const struct policy_ctx_part parts[] = {
        {.name = "mode", .is_integer = true, .integer = mode},
        {.name = "resource", .value = res, .keep = {7, 1}},
    };
    struct policy_ctx ctx = {.parts = parts, .count = 2};
    static const enum policy_kind kind = POLICY_PRICING;
    int rc = json != NULL ? policy_set_call_parts(set, &kind, 1, &ctx, NULL, NULL, json, err)
                          : policy_set_call_parts_pick(set, &kind, 1, &ctx, NULL, NULL, pick, err);
    json_decref(res);
    return rc;
}

static void
test_result_picks(void)
{
    char src[4096];
    size_t len = (size_t)snprintf(src, sizeof src, "local C = {\n");
    for (int i = 0; i < PICK_CASES; i++) {
        len += (size_t)snprintf(src + len, sizeof src - len,
                                "  function(ctx) return %s end,\n", pick_cases[i]);
    }
    snprintf(src + len, sizeof src - len,
             "}\nreturn { price = function(ctx) return C[ctx.mode](ctx) end }\n");
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing(src, &slow, &set, &err), 0);
    int converted = 0, failed = 0;
    struct policy_pick pick = {.names = pick_names, .count = POLICY_PICK_FIELDS_MAX};
    for (int mode = 1; mode <= PICK_CASES; mode++) {
        json_t *json = NULL;
        struct eng_error json_err = {0}, pick_err = {0};
        int json_rc = call_mode(set, mode, &json, NULL, &json_err);
        int pick_rc = call_mode(set, mode, NULL, &pick, &pick_err);
        bool alike = json_rc == pick_rc && strcmp(json_err.msg, pick_err.msg) == 0 &&
                     (json_rc != 0 || pick_matches_json(&pick, json));
        if (!alike) {
            printf("# case %s: json %d '%s', pick %d '%s'\n", pick_cases[mode - 1], json_rc,
                   json_err.msg, pick_rc, pick_err.msg);
        }
        CHECK(alike);
        converted += json_rc == 0;
        failed += json_rc != 0;
        json_decref(json);
    }
    /* Both kinds of case are there (the list is not all errors). */
    CHECK(converted >= 20 && failed >= 10);

    /* A few picks spelled out. */
    CHECK_INT(call_mode(set, 10, NULL, &pick, &err), 0); /* credits = 2.0 */
    CHECK_INT(pick.shape, POLICY_PICK_OBJECT);
    CHECK_INT(pick.fields[3].type, POLICY_PICK_VALUE);
    CHECK_STR(pick.fields[4].text, "hour");
    CHECK_INT(call_mode(set, 18, NULL, &pick, &err), 0); /* a 600-byte error */
    CHECK_INT(strlen(pick.fields[0].text), ENG_MSG_MAX - 1);
    CHECK_INT(call_mode(set, 20, NULL, &pick, &err), 0); /* unit 'hour\0x' */
    CHECK_STR(pick.fields[4].text, "hour");
    CHECK_INT(pick.fields[3].integer, 1);
    CHECK_INT(call_mode(set, 21, NULL, &pick, &err), 0); /* 'money\0' is not money */
    CHECK_INT(pick.fields[1].type, POLICY_PICK_ABSENT);
    CHECK_INT(call_mode(set, 23, NULL, &pick, &err), 0); /* the kept proxy, as its table */
    CHECK_INT(pick.shape, POLICY_PICK_OBJECT);
    CHECK_INT(pick.fields[3].integer, 7);
    CHECK_STR(pick.fields[4].text, "coin");
    CHECK_INT(call_mode(set, 8, NULL, &pick, &err), 0);
    CHECK_INT(pick.shape, POLICY_PICK_EMPTY);
    policy_set_release(set);
}

/* validate then pricing, picked: pick_next sees validate's pick and can
 * stop the sequence; also on a set with a total budget (calls apart). */
struct pick_stop {
    int seen;
    bool go_on;
};

static bool
pick_stop_next(void *ud, enum policy_kind kind, const struct policy_pick *result)
{
    struct pick_stop *s = ud;
    s->seen++;
    return kind == POLICY_VALIDATE && result->shape == POLICY_PICK_OBJECT &&
           result->fields[5].type == POLICY_PICK_STRING &&
           strcmp(result->fields[5].text, "abab") == 0 && s->go_on;
}

static void
test_result_picks_seq(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing("return { price = function(ctx) return { credits = ctx.n } end }",
                           &slow, &set, &err),
              0);
    static const enum policy_kind kinds[2] = {POLICY_VALIDATE, POLICY_PRICING};
    const struct policy_ctx_part parts[] = {{.name = "n", .is_integer = true, .integer = 9}};
    for (int pinned = 0; pinned < 2; pinned++) {
        if (pinned) {
            policy_set_total_budget(set, 100000000, "t_instructions", 0, "t_wall");
        }
        for (int go_on = 0; go_on < 2; go_on++) {
            struct policy_pick picks[2] = {{.names = pick_names, .count = 6},
                                           {.names = pick_names, .count = 6}};
            picks[1].shape = POLICY_PICK_OTHER; /* left as it is when not called */
            struct policy_ctx ctx = {.parts = parts, .count = 1};
            struct pick_stop stop = {0, go_on == 1};
            CHECK_INT(policy_set_call_parts_pick(set, kinds, 2, &ctx, pick_stop_next, &stop,
                                                 picks, &err),
                      0);
            CHECK_INT(stop.seen, 1);
            CHECK_INT(picks[0].shape, POLICY_PICK_OBJECT);
            CHECK_INT(picks[1].shape, go_on ? POLICY_PICK_OBJECT : POLICY_PICK_OTHER);
            if (go_on) {
                CHECK_INT(picks[1].fields[3].type, POLICY_PICK_INTEGER);
                CHECK_INT(picks[1].fields[3].integer, 9);
            }
        }
    }
    policy_set_release(set);
}

static void
test_errors(void)
{
    struct eng_error err = {0};
    json_t *out = NULL;
    struct policy_set *set = NULL;
    CHECK_INT(run_pricing("return { price = function(ctx)\n local x = nil\n return x.y end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":3: attempt to index a nil value (local 'x')"));
    CHECK(strstr(err.msg, "[C]") == NULL);
    CHECK_INT(run_pricing("return { price = function(ctx) error('boom', 0) end }", "{}", NULL,
                          &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ": boom"));
    CHECK_INT(run_pricing("return { price = function(ctx) error({ code = 1 }) end }", "{}", NULL,
                          &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "error value of type table"));

    CHECK_INT(load_pricing("return {\n price = function(ctx)\n return { credits = }\n end }",
                           NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ":3:"));
    CHECK(set == NULL);
    CHECK_INT(load_pricing("return 42", NULL, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ": a policy module must return a table (got number)"));
    CHECK_INT(load_pricing("return { prize = function() end }", NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "no function 'price'"));
    CHECK_INT(load_pricing("error('at load')", NULL, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ":1: at load"));
    CHECK_INT(load_pricing("while true do end", &slow, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, "instruction budget"));

    struct policy_limits lim;
    policy_limits_default(&lim);
    lim.source_bytes_max = 16;
    CHECK_INT(load_pricing("return { price = function() end }", &lim, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "more than 16"));

    struct policy_source broken[POLICY_KIND_COUNT];
    memcpy(broken, defaults, sizeof broken);
    broken[POLICY_REFUND].source = NULL;
    CHECK_INT(policy_set_load(&set, broken, NULL, NULL, &err), ENG_EINVAL);
    CHECK(set == NULL);
}

static void
test_examples(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    const char *pass =
        "local M = {}\n"
        "function M.price(ctx) return { credits = ctx.n * 2, unit = 'hour' } end\n"
        "M.examples = {\n"
        "  { ctx = { n = 3 }, expect = { credits = 6, unit = 'hour' } },\n"
        "  { ctx = { n = 0.5 }, expect = { credits = 1.0, unit = 'hour' } },\n"
        "}\n"
        "return M";
    CHECK_INT(load_pricing(pass, NULL, &set, &err), 0);
    policy_set_release(set);
    set = NULL;

    const char *wrong =
        "local M = {}\n"
        "function M.price(ctx) return { credits = ctx.n * 2, unit = 'hour' } end\n"
        "M.examples = {\n"
        "  { ctx = { n = 3 }, expect = { credits = 6, unit = 'hour' } },\n"
        "  { ctx = { n = 750 }, expect = { credits = 1500, unit = 'coin' } },\n"
        "}\n"
        "return M";
    CHECK_INT(load_pricing(wrong, NULL, &set, &err), ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ": example 2: expected {"));
    CHECK(has(err.msg, "unit=\"coin\""));
    CHECK(has(err.msg, "} got {"));
    CHECK(set == NULL);

    /* 2000 is not 2000.0. */
    CHECK_INT(load_pricing("return { price = function(ctx) return { credits = 2000 } end,\n"
                           " examples = { { ctx = {}, expect = { credits = 2000.0 } } } }",
                           NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "example 1: expected {credits=2000.0} got {credits=2000}"));
    /* Extra keys on either side differ. */
    CHECK_INT(load_pricing("return { price = function(ctx) return { a = 1, b = 2 } end,\n"
                           " examples = { { ctx = {}, expect = { a = 1 } } } }",
                           NULL, &set, &err),
              ENG_EREJECTED);
    CHECK_INT(load_pricing("return { price = function(ctx)\n return ctx.x.y end,\n"
                           " examples = { { ctx = {}, expect = 1 } } }",
                           NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, T_CHUNK ": example 1: " T_CHUNK ":2: attempt to index a nil value"));
    CHECK_INT(load_pricing("return { price = function(ctx) while true do end end,\n"
                           " examples = { { ctx = {}, expect = 1 } } }",
                           &slow, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "example 1: " T_CHUNK ":1: policy exceeded its instruction budget"));
    /* An example whose result a real call would refuse. */
    CHECK_INT(load_pricing("local f = function() end\n"
                           "return { price = function(ctx) return { f = f } end,\n"
                           " examples = { { ctx = {}, expect = { f = f } } } }",
                           NULL, &set, &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "example 1: policy returned a function at result.f"));
    CHECK_INT(load_pricing("return { price = function(ctx) end, examples = 3 }", NULL, &set,
                           &err),
              ENG_EREJECTED);
    CHECK(has(err.msg, "examples must be a list"));
}

static void
test_overrides(void)
{
    /* An override replaces the default module; the default of an
     * overridden kind is not even compiled. */
    struct policy_source broken[POLICY_KIND_COUNT];
    memcpy(broken, defaults, sizeof broken);
    broken[POLICY_PRICING].source = "return {";
    broken[POLICY_PRICING].len = strlen("return {");
    struct policy_source over[POLICY_KIND_COUNT] = {{0}};
    const char *src = "return { price = function(ctx) return { credits = 1 } end }";
    over[POLICY_PRICING] = (struct policy_source){T_CHUNK, src, strlen(src)};
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(policy_set_load(&set, broken, over, NULL, &err), 0);
    json_t *out = NULL;
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"n\": 5}", &out, &err), 0);
    CHECK_INT(int_at(out, "credits"), 1);
    json_decref(out);
    CHECK_INT(call_json(set, POLICY_REFUND, "{}", &out, &err), 0); /* a default */
    CHECK_INT(int_at(out, "credits"), 0);
    json_decref(out);
    policy_set_release(set);
    CHECK_INT(policy_set_load(&set, broken, NULL, NULL, &err), ENG_EREJECTED);
    CHECK(has(err.msg, "policies/default/pricing.lua:1:"));
}

static void
test_allot_helpers(void)
{
    const char *src =
        "local function err(f, ...) local ok, m = pcall(f, ...) return ok and 'no error' or m end\n"
        "return { price = function(ctx) return {\n"
        " a = allot.milli(1.5), b = allot.milli(2), c = allot.milli(0.1),\n"
        " d = allot.milli(-0.25), e = allot.milli(2.0), f = allot.milli(999999999999.999),\n"
        " g = err(allot.milli, 1.2345), h = err(allot.milli, 0/0),\n"
        " i = err(allot.milli, math.huge), j = err(allot.milli, 10^13),\n"
        " k = err(allot.milli, '1.5'), l = math.type(allot.milli(1.5)),\n"
        " m = allot.ceil_div(7, 2), n = allot.floor_div(7, 2), o = allot.ceil_div(6, 3),\n"
        " p = err(allot.ceil_div, -1, 2), q = err(allot.floor_div, 1.0, 2),\n"
        " r = allot.ceil_div(math.maxinteger, 2),\n"
        "} end }";
    json_t *out = NULL;
    struct eng_error err = {0};
    CHECK_INT(run_pricing(src, "{}", NULL, &out, &err), 0);
    CHECK_INT(int_at(out, "a"), 1500);
    CHECK_INT(int_at(out, "b"), 2000);
    CHECK_INT(int_at(out, "c"), 100);
    CHECK_INT(int_at(out, "d"), -250);
    CHECK_INT(int_at(out, "e"), 2000);
    CHECK_INT(int_at(out, "f"), 999999999999999LL);
    CHECK(has(json_string_value(json_object_get(out, "g")), "amount has more than 3 decimals"));
    CHECK(has(json_string_value(json_object_get(out, "h")), "not a finite number"));
    CHECK(has(json_string_value(json_object_get(out, "i")), "not a finite number"));
    CHECK(has(json_string_value(json_object_get(out, "j")), "out of range"));
    CHECK(has(json_string_value(json_object_get(out, "k")), "number expected"));
    CHECK_STR(json_string_value(json_object_get(out, "l")), "integer");
    CHECK_INT(int_at(out, "m"), 4);
    CHECK_INT(int_at(out, "n"), 3);
    CHECK_INT(int_at(out, "o"), 2);
    CHECK(has(json_string_value(json_object_get(out, "p")), "non-negative dividend"));
    CHECK(has(json_string_value(json_object_get(out, "q")), "integer arguments expected"));
    CHECK_INT(int_at(out, "r"), 4611686018427387904LL);
    json_decref(out);
    CHECK_INT(run_pricing("return { price = function(ctx)\n return allot.milli(1.2345) end }",
                          "{}", NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, T_CHUNK ":2: allot.milli: amount has more than 3 decimals"));
}

static void
test_isolation(void)
{
    /* Module state lives in each set's own state: calls to one set never
     * show in the other. */
    const char *src = "local calls = 0\n"
                      "return { price = function(ctx) calls = calls + 1\n"
                      " local leaked = pcall(function() string.shared = calls end)\n"
                      " return { calls = calls, seen = string.shared, leaked = leaked } end }";
    struct policy_set *a = NULL, *b = NULL;
    struct eng_error err = {0};
    json_t *out = NULL;
    CHECK_INT(load_pricing(src, NULL, &a, &err), 0);
    CHECK_INT(load_pricing(src, NULL, &b, &err), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(call_json(a, POLICY_PRICING, "{}", &out, &err), 0);
        json_decref(out);
    }
    CHECK_INT(call_json(a, POLICY_PRICING, "{}", &out, &err), 0);
    CHECK_INT(int_at(out, "calls"), 4);
    json_decref(out);
    CHECK_INT(call_json(b, POLICY_PRICING, "{}", &out, &err), 0);
    CHECK_INT(int_at(out, "calls"), 1);
    CHECK(json_object_get(out, "seen") == NULL);
    CHECK(json_is_false(json_object_get(out, "leaked")));
    json_decref(out);
    policy_set_release(a);
    policy_set_release(b);
}

static void
test_refcount(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(policy_set_load(&set, defaults, NULL, NULL, &err), 0);
    policy_set_retain(set);
    policy_set_release(set);
    json_t *out = NULL;
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"n\": 1}", &out, &err), 0); /* still alive */
    json_decref(out);
    policy_set_release(set);
    policy_set_release(NULL);
    CHECK(1);
}

struct thread_arg {
    struct policy_set *set;
    int base;
    int failures;
};

static void *
thread_main(void *p)
{
    struct thread_arg *arg = p;
    for (int i = 0; i < 300; i++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "{\"n\": %d}", arg->base + i);
        json_t *out = NULL;
        struct eng_error err = {0};
        if (call_json(arg->set, POLICY_PRICING, ctx, &out, &err) != 0 ||
            int_at(out, "credits") != 2 * (arg->base + i)) {
            arg->failures++;
        }
        json_decref(out);
    }
    return NULL;
}

static void
test_threads(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(policy_set_load(&set, defaults, NULL, NULL, &err), 0);
    pthread_t threads[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){set, i * 1000, 0};
        policy_set_retain(set);
        CHECK_INT(pthread_create(&threads[i], NULL, thread_main, &args[i]), 0);
    }
    policy_set_release(set); /* the threads hold the remaining references */
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(args[i].failures, 0);
        policy_set_release(args[i].set);
    }
}

/* Calls that overlap (a price that takes ~50,000 instructions, from 4
 * threads on however many cores) find the primary busy: each such thread
 * builds a copy in a pooled holder and keeps using it, every answer is the
 * same as the primary's, at most one copy per overlapping call, and
 * policy_copies_flush drops them. */
struct copy_arg {
    struct policy_set *set;
    int base, failures, copies_seen;
};

static void *
copy_thread_main(void *p)
{
    struct copy_arg *arg = p;
    for (int i = 0; i < 150; i++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "{\"n\": %d}", arg->base + i);
        json_t *out = NULL;
        struct eng_error err = {0};
        if (call_json(arg->set, POLICY_PRICING, ctx, &out, &err) != 0 ||
            int_at(out, "credits") != 2 * (arg->base + i)) {
            arg->failures++;
        }
        json_decref(out);
        if (policy_copies_live() > arg->copies_seen) {
            arg->copies_seen = policy_copies_live();
        }
    }
    return NULL;
}

static void
test_thread_copies(void)
{
    static const char slow_src[] =
        "local calls = 0\n"
        "return { price = function(ctx)\n"
        "  calls = calls + 1 -- state of its own per copy: never shared\n"
        "  local x = 0\n"
        "  for i = 1, 10000 do x = x + i % 7 end\n"
        "  return { credits = ctx.n * 2, work = x } end }";
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing(slow_src, &slow, &set, &err), 0);
    CHECK_INT(policy_copies_live(), 0);
    pthread_t threads[4];
    struct copy_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct copy_arg){set, i * 1000, 0, 0};
        CHECK_INT(pthread_create(&threads[i], NULL, copy_thread_main, &args[i]), 0);
    }
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(args[i].failures, 0);
        seen = args[i].copies_seen > seen ? args[i].copies_seen : seen;
    }
    CHECK(seen >= 1);
    CHECK(seen <= 4);
    /* The copies outlive their threads, in the idle holders, until flushed
     * (and the references they held with them). */
    CHECK(policy_copies_live() >= 1);
    policy_copies_flush();
    CHECK_INT(policy_copies_live(), 0);
    /* A retired set still answers (a request may hold it). */
    policy_set_retire(set);
    json_t *out = NULL;
    CHECK_INT(call_json(set, POLICY_PRICING, "{\"n\": 4}", &out, &err), 0);
    CHECK_INT(int_at(out, "credits"), 8);
    json_decref(out);
    policy_set_release(set);
}

/* Copies number the calls that overlapped, not the threads that called:
 * while one call keeps the primary busy, eight threads calling one after
 * the other all find it busy, and all run on the one copy the first of
 * them built (each takes the holder the last gave back).  A copy per
 * thread, as before the holders, made eight. */
struct spin_arg {
    struct policy_set *set;
    long spin;
    atomic_bool started, done;
    int failures;
};

static void *
spin_thread_main(void *p)
{
    struct spin_arg *arg = p;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "{\"n\": 1, \"spin\": %ld}", arg->spin);
    json_t *out = NULL;
    struct eng_error err = {0};
    atomic_store(&arg->started, true);
    if (call_json(arg->set, POLICY_PRICING, ctx, &out, &err) != 0 ||
        int_at(out, "credits") != 2) {
        printf("# spin: %s\n", err.msg);
        arg->failures++;
    }
    json_decref(out);
    atomic_store(&arg->done, true);
    return NULL;
}

static void *
one_call_main(void *p)
{
    struct copy_arg *arg = p;
    json_t *out = NULL;
    struct eng_error err = {0};
    if (call_json(arg->set, POLICY_PRICING, "{\"n\": 5}", &out, &err) != 0 ||
        int_at(out, "credits") != 10) {
        arg->failures++;
    }
    json_decref(out);
    return NULL;
}

static void
test_copies_follow_overlap(void)
{
    static const char spin_src[] =
        "return { price = function(ctx)\n"
        "  local x = 0\n"
        "  for i = 1, ctx.spin or 0 do x = x + i % 7 end\n"
        "  return { credits = ctx.n * 2, work = x } end }";
    struct policy_limits lim = slow;
    lim.instructions_max = 2000000000;
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing(spin_src, &lim, &set, &err), 0);
    /* The spin must outlast the eight calls: longer on each try, until it
     * does (a fast machine), so the check below always means something. */
    bool held = false;
    for (int attempt = 0; attempt < 5 && !held; attempt++) {
        policy_copies_flush();
        CHECK_INT(policy_copies_live(), 0);
        struct spin_arg spin = {.set = set, .spin = 4000000L << attempt};
        atomic_init(&spin.started, false);
        atomic_init(&spin.done, false);
        pthread_t spinner;
        CHECK_INT(pthread_create(&spinner, NULL, spin_thread_main, &spin), 0);
        struct timespec pause = {0, 1000 * 1000};
        while (!atomic_load(&spin.started)) {
            nanosleep(&pause, NULL);
        }
        pause.tv_nsec = 20 * 1000 * 1000;
        nanosleep(&pause, NULL); /* the spinner is inside the primary by now */
        int live = -1;
        for (int i = 0; i < 8; i++) {
            struct copy_arg arg = {set, 0, 0, 0};
            pthread_t t;
            CHECK_INT(pthread_create(&t, NULL, one_call_main, &arg), 0);
            pthread_join(t, NULL);
            CHECK_INT(arg.failures, 0);
        }
        live = policy_copies_live();
        /* No copy at all: the calls never met the busy primary (the
         * spinner was late to it): try again, as for a spin too short. */
        held = !atomic_load(&spin.done) && live >= 1;
        pthread_join(spinner, NULL);
        CHECK_INT(spin.failures, 0);
        if (held) {
            CHECK_INT(live, 1);
        }
    }
    CHECK(held);
    policy_copies_flush();
    CHECK_INT(policy_copies_live(), 0);
    policy_set_release(set);
}

/* A sequence: one context for validate then pricing, in one entry. */
static bool
stop_on_error(void *ud, enum policy_kind kind, const json_t *result)
{
    (void)kind;
    ++*(int *)ud;
    return json_object_get(result, "error") == NULL;
}

static void
test_call_seq(void)
{
    struct policy_source over[POLICY_KIND_COUNT] = {{0}};
    over[POLICY_VALIDATE] = (struct policy_source){
        "policies/t/validate.lua",
        "return { validate = function(ctx)\n"
        "  if ctx.n < 0 then return { error = 'negative' } end\n"
        "  ctx.seen = true; return {} end }",
        0};
    over[POLICY_PRICING] = (struct policy_source){
        T_CHUNK,
        "return { price = function(ctx)\n"
        "  if ctx.n == 13 then error('unlucky') end\n"
        "  return { credits = ctx.n * 2, seen = ctx.seen } end }",
        0};
    over[POLICY_VALIDATE].len = strlen(over[POLICY_VALIDATE].source);
    over[POLICY_PRICING].len = strlen(over[POLICY_PRICING].source);
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(policy_set_load(&set, defaults, over, &slow, &err), 0);
    static const enum policy_kind kinds[2] = {POLICY_VALIDATE, POLICY_PRICING};
    json_t *out[2];
    int asked = 0;
    json_t *ctx = json_pack("{s:i}", "n", 5);
    CHECK_INT(policy_set_call_seq(set, kinds, 2, ctx, stop_on_error, &asked, out, &err), 0);
    CHECK_INT(asked, 1);
    CHECK(out[0] != NULL && json_object_get(out[0], "error") == NULL);
    CHECK_INT(int_at(out[1], "credits"), 10);
    /* The same table for both: what validate wrote, pricing reads. */
    CHECK(json_is_true(json_object_get(out[1], "seen")));
    json_decref(out[0]);
    json_decref(out[1]);
    json_decref(ctx);
    /* A refusal stops the sequence: pricing never runs. */
    ctx = json_pack("{s:i}", "n", -1);
    CHECK_INT(policy_set_call_seq(set, kinds, 2, ctx, stop_on_error, &asked, out, &err), 0);
    CHECK(json_object_get(out[0], "error") != NULL);
    CHECK(out[1] == NULL);
    json_decref(out[0]);
    json_decref(ctx);
    /* A failing second call: no results, the message names its chunk. */
    ctx = json_pack("{s:i}", "n", 13);
    CHECK_INT(policy_set_call_seq(set, kinds, 2, ctx, NULL, NULL, out, &err), ENG_EPOLICY);
    CHECK(out[0] == NULL && out[1] == NULL);
    CHECK(has(err.msg, T_CHUNK ":2: unlucky"));
    json_decref(ctx);
    /* A fresh context per sequence: nothing is left from the last one. */
    ctx = json_pack("{s:i}", "n", 1);
    json_t *one = NULL;
    CHECK_INT(policy_set_call(set, POLICY_PRICING, ctx, &one, &err), 0);
    CHECK(json_object_get(one, "seen") == NULL);
    json_decref(one);
    json_decref(ctx);
    policy_set_release(set);
}


/* The lazy field of test_call_parts: counts its reads; fails when asked. */
struct lazy_probe {
    int reads;
    int64_t value;
    bool fail;
};

static int
lazy_probe_read(void *ud, int64_t *value, struct eng_error *err)
{
    struct lazy_probe *p = ud;
    p->reads++;
    if (p->fail) {
        return eng_error_set(err, ENG_ESTORE, "probe: disk on fire");
    }
    *value = p->value;
    return 0;
}

/* Calls pricing with a ctx of one kept part `res` (keep {7, gen}), `n`,
 * and the lazy field `usage`. */
static int
call_parts(struct policy_set *set, const json_t *res, int64_t gen, struct lazy_probe *probe,
           json_t **out, bool *lazy_read, struct eng_error *err)
{
    const struct policy_ctx_part parts[] = {
        {.name = "resource", .value = res, .keep = {7, gen}},
        {.name = "n", .is_integer = true, .integer = 4},
    };
    struct policy_ctx ctx = {.parts = parts, .count = 2, .lazy_name = "usage",
                             .lazy = lazy_probe_read, .lazy_ud = probe};
    static const enum policy_kind kind = POLICY_PRICING;
    int rc = policy_set_call_parts(set, &kind, 1, &ctx, NULL, NULL, out, err);
    *lazy_read = ctx.lazy_read;
    return rc;
}

/* Kept ctx parts (read-only, shared by every call of a state) and the lazy
 * field: reading works as on plain tables, writing raises and leaves
 * nothing for the next call, and the lazy field is read only when looked
 * at. */
static void
test_call_parts(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    /* ctx.mode picks what the policy does (a plain part of each call). */
    CHECK_INT(load_pricing(
                  "local M = {}\n"
                  "function M.price(ctx)\n"
                  "  local r = ctx.resource\n"
                  "  local keys, n = {}, 0\n"
                  "  for k in pairs(r) do keys[#keys + 1] = k end\n"
                  "  table.sort(keys)\n"
                  "  for _, t in ipairs(r.tags) do n = n + #t end\n"
                  "  local first = next(r.tags)\n"
                  "  local out = { keys = table.concat(keys, ','), tags = r.tags, len = #r.tags,\n"
                  "    raw = rawget(r, 'name'), rawlen = rawlen(r.tags), chars = n,\n"
                  "    first = first, per_hour = r.pricing.credits.per_hour,\n"
                  "    mt = getmetatable(r), n = ctx.n }\n"
                  "  if r.name == 'write' then r.name = 'changed' end\n"
                  "  if r.name == 'deep' then r.pricing.credits.per_hour = 99 end\n"
                  "  if r.name == 'sort' then table.sort(r.tags) end\n"
                  "  if r.name == 'usage' then out.usage = ctx.usage; out.again = ctx.usage end\n"
                  "  if r.name == 'walk' then for k, v in pairs(ctx) do out[k .. '_seen'] = true end end\n"
                  "  if r.name == 'pcall' then out.ok = pcall(function() return ctx.usage end) end\n"
                  "  return out\n"
                  "end\n"
                  "return M\n",
                  &slow, &set, &err),
              0);
    json_t *res = json_pack("{s:s, s:[s, s], s:{s:{s:i}}}", "name", "room", "tags", "b", "a",
                            "pricing", "credits", "per_hour", 2);
    struct lazy_probe probe = {.value = 1234};
    json_t *out = NULL;
    bool read = true;
    for (int round = 0; round < 2; round++) {
        /* The second round takes the kept tables: the same answer. */
        CHECK_INT(call_parts(set, res, 1, &probe, &out, &read, &err), 0);
        CHECK_STR(json_string_value(json_object_get(out, "keys")), "name,pricing,tags");
        CHECK_INT(int_at(out, "len"), 2);
        CHECK_INT(int_at(out, "rawlen"), 2);
        CHECK_INT(int_at(out, "chars"), 2);
        CHECK_INT(int_at(out, "first"), 1);
        CHECK_INT(int_at(out, "per_hour"), 2);
        CHECK_INT(int_at(out, "n"), 4);
        CHECK_STR(json_string_value(json_object_get(out, "raw")), "room");
        CHECK_STR(json_string_value(json_object_get(out, "mt")), "locked");
        /* A kept table in a result converts as the table it shows. */
        CHECK_STR(json_string_value(json_array_get(json_object_get(out, "tags"), 1)), "a");
        CHECK(!read);
        json_decref(out);
    }
    CHECK_INT(probe.reads, 0);
    /* Writes into kept tables raise, at any depth and through table.*. */
    static const char *const writes[] = {"write", "deep", "sort"};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        json_t *w = json_pack("{s:s, s:[s, s], s:{s:{s:i}}}", "name", writes[i], "tags", "b",
                              "a", "pricing", "credits", "per_hour", 2);
        for (int round = 0; round < 2; round++) {
            CHECK_INT(call_parts(set, w, 1 + (int64_t)i + 1, &probe, &out, &read, &err),
                      ENG_EPOLICY);
            CHECK(has(err.msg, "attempt to modify a read-only ctx table"));
        }
        json_decref(w);
    }
    /* ... and the next call still sees the kept values as they were. */
    CHECK_INT(call_parts(set, res, 1, &probe, &out, &read, &err), 0);
    CHECK_INT(int_at(out, "per_hour"), 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(out, "tags"), 0)), "b");
    json_decref(out);
    /* The lazy field: read once, when indexed, and reported read. */
    json_t *u = json_pack("{s:s, s:[], s:{s:{s:i}}}", "name", "usage", "tags", "pricing",
                          "credits", "per_hour", 1);
    CHECK_INT(call_parts(set, u, 9, &probe, &out, &read, &err), 0);
    CHECK(read);
    CHECK_INT(probe.reads, 1);
    CHECK_INT(int_at(out, "usage"), 1234);
    CHECK_INT(int_at(out, "again"), 1234);
    json_decref(out);
    /* Walking ctx shows it too (pairs reads it first). */
    json_t *walk = json_pack("{s:s, s:[], s:{s:{s:i}}}", "name", "walk", "tags", "pricing",
                             "credits", "per_hour", 1);
    CHECK_INT(call_parts(set, walk, 10, &probe, &out, &read, &err), 0);
    CHECK(read);
    CHECK(json_is_true(json_object_get(out, "usage_seen")));
    CHECK(json_is_true(json_object_get(out, "resource_seen")));
    json_decref(out);
    /* A failed read fails the call with its own error, even when the
     * policy catches it. */
    json_t *pc = json_pack("{s:s, s:[], s:{s:{s:i}}}", "name", "pcall", "tags", "pricing",
                           "credits", "per_hour", 1);
    probe.fail = true;
    CHECK_INT(call_parts(set, pc, 11, &probe, &out, &read, &err), ENG_ESTORE);
    CHECK(has(err.msg, "disk on fire"));
    CHECK(out == NULL);
    probe.fail = false;
    CHECK_INT(call_parts(set, pc, 11, &probe, &out, &read, &err), 0);
    CHECK(json_is_true(json_object_get(out, "ok")));
    json_decref(out);
    json_decref(pc);
    json_decref(walk);
    json_decref(u);
    json_decref(res);
    policy_set_release(set);
}

/* Calls pricing with ctx {mode, resource (keep {1, gen}), user (keep {uid,
 * gen})}. */
static int
call_lazy(struct policy_set *set, const char *mode, const json_t *res, const json_t *user,
          int64_t uid, int64_t gen, json_t **out, struct eng_error *err)
{
    const struct policy_ctx_part parts[] = {
        {.name = "mode", .string = mode},
        {.name = "resource", .value = res, .keep = {1, gen}},
        {.name = "user", .value = user, .keep = {uid, gen}},
    };
    struct policy_ctx ctx = {.parts = parts, .count = 3};
    static const enum policy_kind kind = POLICY_PRICING;
    return policy_set_call_parts(set, &kind, 1, &ctx, NULL, NULL, out, err);
}

/* A kept part of ctx that no policy reads is never converted, one read is
 * converted once (and kept) whichever way it is read, and one the policy
 * assigns stays the policy's. */
static void
test_kept_parts_lazy(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing(
                  "local M = {}\n"
                  "function M.price(ctx)\n"
                  "  local m, out = ctx.mode, { per_hour = ctx.resource.per_hour }\n"
                  "  if m == 'read' then out.email = ctx.user.email; out.again = ctx.user.email end\n"
                  "  if m == 'walk' then for k, v in pairs(ctx) do out[k .. '_seen'] = true end\n"
                  "    out.email = ctx.user.email end\n"
                  "  if m == 'next' then local k = next(ctx); out.email = rawget(ctx, 'user').email end\n"
                  "  if m == 'nil' then ctx.user = nil; out.gone = ctx.user == nil;\n"
                  "    for k in pairs(ctx) do out[k .. '_seen'] = true end end\n"
                  "  if m == 'own' then ctx.user = { email = 'mine' }; out.email = ctx.user.email end\n"
                  "  if m == 'caught' then out.ok = pcall(function() return ctx.user end) end\n"
                  "  if m == 'result' then return ctx.user end\n"
                  "  return out\n"
                  "end\n"
                  "return M\n",
                  &slow, &set, &err),
              0);
    json_t *res = json_pack("{s:i, s:[s]}", "per_hour", 3, "tags", "x");
    struct policy_kept_stats st;
    json_t *out = NULL;
    /* 50 users the policy never looks at: only the resource is converted. */
    for (int u = 1; u <= 50; u++) {
        json_t *user = json_pack("{s:s, s:[s]}", "email", "u@x.io", "roles", "member");
        CHECK_INT(call_lazy(set, "plain", res, user, 100 + u, 1, &out, &err), 0);
        CHECK_INT(int_at(out, "per_hour"), 3);
        json_decref(out);
        json_decref(user);
    }
    policy_set_kept_stats(set, &st);
    CHECK_INT(st.conversions, 1);
    CHECK_INT(st.deferred, 51); /* the 50 users and the resource's first time */
    CHECK_INT(st.hits, 49);
    CHECK_INT(st.kept, 1);
    /* Read twice in a call: converted once, kept, a hit the next time. */
    json_t *user = json_pack("{s:s, s:[s]}", "email", "a@x.io", "roles", "member");
    for (int round = 0; round < 2; round++) {
        CHECK_INT(call_lazy(set, "read", res, user, 7, 1, &out, &err), 0);
        CHECK_STR(json_string_value(json_object_get(out, "email")), "a@x.io");
        CHECK_STR(json_string_value(json_object_get(out, "again")), "a@x.io");
        json_decref(out);
    }
    policy_set_kept_stats(set, &st);
    CHECK_INT(st.conversions, 2);
    CHECK_INT(st.kept, 2);
    /* pairs, next and rawget see a part not read before. */
    static const char *const walks[] = {"walk", "next"};
    for (size_t i = 0; i < 2; i++) {
        CHECK_INT(call_lazy(set, walks[i], res, user, 8 + (int64_t)i, 1, &out, &err), 0);
        CHECK_STR(json_string_value(json_object_get(out, "email")), "a@x.io");
        json_decref(out);
    }
    CHECK_INT(call_lazy(set, "walk", res, user, 20, 1, &out, &err), 0);
    CHECK(json_is_true(json_object_get(out, "user_seen")));
    CHECK(json_is_true(json_object_get(out, "resource_seen")));
    CHECK(json_is_true(json_object_get(out, "mode_seen")));
    json_decref(out);
    /* Assigned by the policy (nil or a table of its own): never filled in
     * over it, not even by pairs. */
    CHECK_INT(call_lazy(set, "nil", res, user, 21, 1, &out, &err), 0);
    CHECK(json_is_true(json_object_get(out, "gone")));
    CHECK(json_object_get(out, "user_seen") == NULL);
    json_decref(out);
    CHECK_INT(call_lazy(set, "own", res, user, 22, 1, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "email")), "mine");
    json_decref(out);
    /* A kept part read last call is there for the next, read-only. */
    CHECK_INT(call_lazy(set, "result", res, user, 7, 1, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "email")), "a@x.io");
    json_decref(out);
    json_decref(user);
    /* A part whose conversion fails (nested too deep) fails the call even
     * when read inside a pcall the policy catches. */
    json_t *deep = json_pack("{s:{s:{s:{s:{s:{s:{s:{s:{s:{s:{s:i}}}}}}}}}}}", "a", "b", "c", "d",
                             "e", "f", "g", "h", "i", "j", "k", 1);
    struct policy_limits shallow = slow;
    shallow.convert_depth_max = 4;
    policy_set_release(set);
    CHECK_INT(load_pricing("return { price = function(ctx)\n"
                           "  return { ok = pcall(function() return ctx.user end) } end }",
                           &shallow, &set, &err),
              0);
    CHECK_INT(call_lazy(set, "caught", res, deep, 30, 1, &out, &err), ENG_EPOLICY);
    CHECK(has(err.msg, "ctx.user could not be converted"));
    CHECK(out == NULL);
    /* ... and unread, it costs nothing and fails nothing. */
    policy_set_release(set);
    CHECK_INT(load_pricing("return { price = function(ctx) return { n = 1 } end }", &shallow,
                           &set, &err),
              0);
    CHECK_INT(call_lazy(set, "plain", res, deep, 30, 1, &out, &err), 0);
    CHECK_INT(int_at(out, "n"), 1);
    json_decref(out);
    json_decref(deep);
    json_decref(res);
    policy_set_release(set);
}

/* The kept parts of a state hold many entities (set-associative, not
 * direct-mapped: 600 users over 256 sets of 8 stay) and never more than
 * their share of memory_bytes_max. */
static void
test_kept_parts_capacity(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing("return { price = function(ctx)\n"
                           "  return { email = ctx.user.email } end }",
                           &slow, &set, &err),
              0);
    json_t *res = json_pack("{s:i}", "per_hour", 3);
    enum { USERS = 600 };
    json_t *users[USERS];
    for (int u = 0; u < USERS; u++) {
        char email[32];
        snprintf(email, sizeof email, "u%d@x.io", u);
        users[u] = json_pack("{s:s}", "email", email);
    }
    json_t *out = NULL;
    struct policy_kept_stats st0, st;
    for (int pass = 0; pass < 2; pass++) {
        policy_set_kept_stats(set, &st0);
        for (int u = 0; u < USERS; u++) {
            CHECK_INT(call_lazy(set, "plain", res, users[u], 1000 + u, 5, &out, &err), 0);
            CHECK_STR(json_string_value(json_object_get(out, "email")),
                      json_string_value(json_object_get(users[u], "email")));
            json_decref(out);
        }
    }
    policy_set_kept_stats(set, &st);
    /* The second pass: at least 90 % of the users found kept (a
     * direct-mapped table of 256 would keep at most 256 of them). */
    printf("# kept parts: second pass %ld conversions, %ld kept, %ld replaced, %zu bytes\n",
           st.conversions - st0.conversions, st.kept, st.replaced, st.bytes);
    CHECK(st.conversions - st0.conversions <= USERS / 10);
    CHECK(st.kept > 500 && st.kept <= POLICY_TEMPLATES);
    CHECK_INT(st.not_kept, 0);
    policy_set_release(set);
    /* A small state (256 KiB): the kept parts stay within an eighth of it,
     * and every answer is still right. */
    struct policy_limits small = slow;
    small.memory_bytes_max = 256 * 1024;
    CHECK_INT(load_pricing("return { price = function(ctx)\n"
                           "  return { email = ctx.user.email } end }",
                           &small, &set, &err),
              0);
    for (int pass = 0; pass < 2; pass++) {
        for (int u = 0; u < USERS; u++) {
            CHECK_INT(call_lazy(set, "plain", res, users[u], 1000 + u, 5, &out, &err), 0);
            CHECK_STR(json_string_value(json_object_get(out, "email")),
                      json_string_value(json_object_get(users[u], "email")));
            json_decref(out);
        }
    }
    policy_set_kept_stats(set, &st);
    CHECK(st.bytes <= small.memory_bytes_max / 8);
    CHECK(st.bytes > 0);
    CHECK(st.not_kept > 0);
    CHECK(st.kept < USERS);
    for (int u = 0; u < USERS; u++) {
        json_decref(users[u]);
    }
    json_decref(res);
    policy_set_release(set);
}

/* Parts built from C values: strings, nested fields, lists (with a hole),
 * and a depth beyond convert_depth_max refused. */
static void
test_call_parts_values(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    CHECK_INT(load_pricing("return { price = function(ctx)\n"
                           "  return { n = #ctx.list, x = ctx.list[2].x, s = ctx.s,\n"
                           "    hole = ctx.list[3] == nil, last = ctx.list[4].x,\n"
                           "    inner = ctx.rec.inner.v } end }",
                           &slow, &set, &err),
              0);
    const struct policy_ctx_part item_a[] = {{.name = "x", .is_integer = true, .integer = 1}};
    const struct policy_ctx_part item_b[] = {{.name = "x", .string = "two"}};
    const struct policy_ctx_part list[] = {
        {.fields = item_a, .count = 1},
        {.fields = item_b, .count = 1},
        {.value = NULL},
        {.fields = item_a, .count = 1},
    };
    const struct policy_ctx_part inner[] = {{.name = "v", .is_integer = true, .integer = 9}};
    const struct policy_ctx_part rec[] = {{.name = "inner", .fields = inner, .count = 1}};
    const struct policy_ctx_part parts[] = {
        {.name = "list", .fields = list, .count = 4},
        {.name = "s", .string = "hello"},
        {.name = "rec", .fields = rec, .count = 1},
    };
    struct policy_ctx ctx = {.parts = parts, .count = 3};
    static const enum policy_kind kind = POLICY_PRICING;
    json_t *out = NULL;
    CHECK_INT(policy_set_call_parts(set, &kind, 1, &ctx, NULL, NULL, &out, &err), 0);
    CHECK_INT(int_at(out, "n"), 4);
    CHECK_STR(json_string_value(json_object_get(out, "x")), "two");
    CHECK_STR(json_string_value(json_object_get(out, "s")), "hello");
    CHECK(json_is_true(json_object_get(out, "hole")));
    CHECK_INT(int_at(out, "last"), 1);
    CHECK_INT(int_at(out, "inner"), 9);
    json_decref(out);
    policy_set_release(set);
    /* Three levels of fields under ctx with a depth limit of 3: refused. */
    struct policy_limits shallow = slow;
    shallow.convert_depth_max = 3;
    CHECK_INT(load_pricing("return { price = function(ctx) return {} end }", &shallow, &set,
                           &err),
              0);
    const struct policy_ctx_part deep[] = {{.name = "rec", .fields = rec, .count = 1}};
    const struct policy_ctx_part top[] = {{.name = "deep", .fields = deep, .count = 1}};
    struct policy_ctx too_deep = {.parts = top, .count = 1};
    CHECK_INT(policy_set_call_parts(set, &kind, 1, &too_deep, NULL, NULL, &out, &err),
              ENG_EPOLICY);
    CHECK(has(err.msg, "nested deeper than 3 levels"));
    policy_set_release(set);
}

static char *
read_policy(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(256 * 1024 + 1);
    *len = fread(buf, 1, 256 * 1024, f);
    fclose(f);
    return buf;
}

static void
test_shipped_policies(void)
{
    const char *dir = getenv("ALLOT_POLICIES") ? getenv("ALLOT_POLICIES") : "policies";
    struct policy_source shipped[POLICY_KIND_COUNT];
    char *text[POLICY_KIND_COUNT] = {0};
    static char names[POLICY_KIND_COUNT][80];
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        char file[64];
        size_t len = 0;
        snprintf(file, sizeof file, "default/%s.lua", policy_kind_name((enum policy_kind)k));
        snprintf(names[k], sizeof names[k], "policies/%s", file);
        text[k] = read_policy(dir, file, &len);
        if (text[k] == NULL) {
            printf("# skip: no shipped policies in %s\n", dir);
            for (int j = 0; j < k; j++) {
                free(text[j]);
            }
            return;
        }
        shipped[k] = (struct policy_source){names[k], text[k], len};
    }
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    int rc = policy_set_load(&set, shipped, NULL, NULL, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        printf("# %s\n", err.msg);
    }
    policy_set_release(set);
    static const struct {
        const char *file;
        enum policy_kind kind;
    } examples[] = {
        {"examples/auditorium_refund.lua", POLICY_REFUND},
        {"examples/free_weekend.lua", POLICY_PRICING},
        {"examples/peak_surcharge.lua", POLICY_PRICING},
        {"examples/user_quota.lua", POLICY_VALIDATE},
    };
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        size_t len = 0;
        char *src = read_policy(dir, examples[i].file, &len);
        if (src == NULL) {
            continue;
        }
        struct policy_source over[POLICY_KIND_COUNT] = {{0}};
        over[examples[i].kind] = (struct policy_source){examples[i].file, src, len};
        set = NULL;
        rc = policy_set_load(&set, shipped, over, NULL, &err);
        CHECK_INT(rc, 0);
        if (rc != 0) {
            printf("# %s\n", err.msg);
        }
        policy_set_release(set);
        free(src);
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free(text[k]);
    }
}

int
main(void)
{
    setup_defaults();
    test_kinds_and_limits();
    test_normal_call();
    test_thread_copies();
    test_copies_follow_overlap();
    test_call_seq();
    test_call_parts();
    test_call_parts_values();
    test_kept_parts_lazy();
    test_kept_parts_capacity();
    test_number_subtypes();
    test_ctx_limits();
    test_infinite_loops();
    test_wall_clock();
    test_memory_bombs();
    test_unavailable();
    test_binary_chunk_refused();
    test_globals_and_tampering();
    test_patterns();
    test_table_functions();
    test_bad_results();
    test_result_picks();
    test_result_picks_seq();
    test_errors();
    test_examples();
    test_overrides();
    test_allot_helpers();
    test_isolation();
    test_refcount();
    test_threads();
    test_shipped_policies();
    return check_exit();
}
