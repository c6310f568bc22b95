/* policy_host.c - sandboxed Lua 5.4 states that run building policies.
 *
 * Layout of one policy state (STYLE 2.8); a set has a primary state and
 * copies of it in pooled holders (see "Sets" below):
 *
 *   struct policy_state  --extra space-->  lua_State (lua_newstate + capped allocator)
 *     registry "allot.policy_env"   metatable of every chunk's _ENV:
 *                                   __index = frozen globals, __newindex raises
 *     frozen globals                base allow-list + read-only proxies of
 *                                   string, table, math, utf8 and allot
 *     fn_ref[kind]                  the function of each kind's module
 *
 * Library tables are rebuilt from explicit allow-lists, so a function a future
 * Lua adds is not exposed by accident.  Every C function whose running time
 * depends on its input is wrapped: the wrapper charges the instruction budget
 * for the work it is about to do and checks the wall-clock deadline first,
 * because hooks never run inside C functions.  The wrapper then calls the
 * stock function directly, in the same stack frame, so error messages still
 * name the function the policy called.
 *
 * Override semantics: when overrides[kind] is given, the default module of
 * that kind is not compiled at all in this set (an override replaces the
 * whole module and cannot call the default); defaults[kind] must still be
 * present.  Start-up compiles the defaults alone, so a broken default is
 * still caught there. */
#include "policy_host.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "blockcache.h"

/* The count hook runs every this many VM instructions. */
#define POLICY_HOOK_INSTRUCTIONS 1000
/* Pattern mode: the backtracking matcher is O(n^(k+1)) for k lazy or greedy
 * repeats and O(2^k) for k '?', all of it inside one C call. */
#define POLICY_PATTERN_SUBJECT_BYTES_MAX 256
#define POLICY_PATTERN_BYTES_MAX 256
#define POLICY_PATTERN_REPEATS_MAX 1   /* '*', '+', '-' */
#define POLICY_PATTERN_OPTIONALS_MAX 4 /* '?': 4 keep the worst case near 3 ms */
/* string.rep may build at most string_bytes_max * this many bytes. */
#define POLICY_REP_FACTOR 16
/* Lua itself refuses widths and precisions of three digits. */
#define POLICY_FORMAT_WIDTH_MAX 99
/* A wrapped C function is charged one instruction per this many bytes. */
#define POLICY_CHARGE_BYTES 256
/* The allocator looks at the clock after this many bytes, so loops of
 * allocating VM instructions (s = s .. s) meet the deadline too. */
#define POLICY_ALLOC_CHECK_BYTES ((size_t)1 << 20)
/* One string object may use at most this share of the memory cap, which
 * bounds the cost of every string operation, hooked or not. */
#define POLICY_STRING_OBJECT_SHARE 8
#define POLICY_MILLI_WHOLE_MAX ((lua_Integer)1000000000000) /* 10^12 */
#define POLICY_CHUNK_NAME_MAX 128
#define POLICY_EXAMPLES_MAX 100
#define POLICY_DEPTH_LIMIT 64 /* largest accepted convert_depth_max (C recursion) */
#define POLICY_MEMORY_BYTES_MIN ((size_t)64 * 1024)
#define POLICY_WALL_MS_LIMIT ((int64_t)3600 * 1000)
#define POLICY_RENDER_BYTES_MAX 200
#define POLICY_TRIP_MSG_MAX 256
#define POLICY_ENV_KEY "allot.policy_env"
#define POLICY_CTX_KEY "allot.policy_ctx"
#define POLICY_TEMPLATE_NAME_MAX 16

enum policy_trip { POLICY_TRIP_NONE = 0, POLICY_TRIP_INSTRUCTIONS, POLICY_TRIP_TIME };

/* A kept ctx part (struct policy_ctx_part with a keep): the read-only
 * tables it was converted to, held in the registry under `ref` (0: an
 * empty slot; luaL_ref never gives 0), with the bytes the conversion
 * allocated and when it was last used (the state's template tick). */
struct policy_template {
    int ref;
    int64_t keep[2];
    uint64_t used;
    size_t bytes;
    char name[POLICY_TEMPLATE_NAME_MAX];
};
/* The kept parts of a state: POLICY_TEMPLATES slots in sets of
 * POLICY_TEMPLATE_WAYS, the least recently used of a set replaced; all of
 * them together hold at most memory_bytes_max / POLICY_TEMPLATE_SHARE
 * bytes (as the conversions allocated them), so kept tables never take
 * more than an eighth of what a policy may use. */
#define POLICY_TEMPLATE_WAYS 8
#define POLICY_TEMPLATE_SHARE 8
_Static_assert(POLICY_TEMPLATES % POLICY_TEMPLATE_WAYS == 0, "whole sets");
_Static_assert(((POLICY_TEMPLATES / POLICY_TEMPLATE_WAYS) &
                (POLICY_TEMPLATES / POLICY_TEMPLATE_WAYS - 1)) == 0,
               "a power of two of sets");

struct policy_call;

/* The budget of the current call (or load step).  Once `trip` is set it stays
 * set until the next policy_budget_begin, and the hook fires on every
 * instruction, so a pcall inside the policy cannot outlive it. */
struct policy_budget {
    int64_t instructions_left;
    int64_t instructions_given; /* at begin: what this call may use */
    uint64_t deadline_ns;
    bool total_bounds_instructions; /* the total, not the call's own budget, is the bound */
    bool total_bounds_time;
    size_t alloc_bytes_unchecked;
    bool active;
    enum policy_trip trip;
    char trip_msg[POLICY_TRIP_MSG_MAX];
};

/* One Lua state holding a whole set's modules.  A set (below) has a
 * primary state, built and checked at load, and lazily made copies of it
 * for threads that would otherwise wait for the primary.  A state is used
 * by one thread at a time: the primary under the set's mutex, a copy only
 * by the thread that made it. */
struct policy_state {
    lua_State *L;
    bool is_copy; /* a copy of a checked primary: its examples already ran */
    struct policy_limits limits;
    /* Allocator accounting, in Lua's view of block sizes. */
    size_t memory_bytes_used;
    size_t string_object_bytes_max;
    bool string_too_long; /* the cap refused a string object this call */
    bool malloc_failed;   /* the system allocator, not the cap, refused */
    struct policy_budget budget;
    /* A total shared by every call (policy_set_total_budget); off when
     * total_on is false. */
    bool total_on;
    int64_t total_instructions_left; /* < 0: no instruction total */
    uint64_t total_deadline_ns;      /* 0: no time total */
    const char *total_instructions_limit, *total_wall_limit;
    int64_t total_instructions_max, total_wall_ms_max;
    int fn_ref[POLICY_KIND_COUNT];
    char chunk[POLICY_KIND_COUNT][POLICY_CHUNK_NAME_MAX];
    /* The call running (NULL between calls): what a lazy ctx field reads. */
    struct policy_call *cur_call;
    /* Kept ctx parts, set-associative by (name, keep): policy_push_part. */
    struct policy_template templates[POLICY_TEMPLATES];
    uint64_t template_tick;
    size_t template_bytes; /* the sum of the kept templates' bytes */
    struct policy_kept_stats kept_stats;
};

/* One call, or a sequence of calls on one context, shared with the
 * protected body through a light userdata. */
struct policy_call {
    struct policy_state *set;
    const enum policy_kind *kinds;
    int count;
    int current; /* the index of the call running (or that failed) */
    const json_t *ctx;
    struct policy_ctx *parts; /* instead of ctx: a ctx built from parts */
    const void *ctx_table;    /* the Lua table of the call's ctx (identity only) */
    bool lazy_done;           /* the lazy field was filled in (or is being) */
    bool lazy_failed;         /* ... and its read failed: lazy_err */
    struct eng_error lazy_err;
    /* Kept parts of ctx (top level, index < 32) not in the state's
     * templates: converted when first read (policy_part_fill), else never.
     * part_failed: a conversion of one raised (part_failed_index). */
    uint32_t parts_pending;
    bool part_failed;
    int part_failed_index;
    policy_next_fn next;
    void *next_ud;
    json_t **results; /* results[i] set once call i's result converted */
    /* Instead of results (policy_set_call_parts_pick): each result read
     * into picks[i], and pick_next instead of next. */
    struct policy_pick *picks;
    policy_pick_next_fn pick_next;
};

static const char *const policy_kind_names[] = {"pricing", "eligibility", "order",
                                                "rollover", "refund", "validate"};
static const char *const policy_kind_functions[] = {"price", "eligible", "order",
                                                    "rollover", "refund", "validate"};
static_assert(sizeof policy_kind_names / sizeof policy_kind_names[0] == POLICY_KIND_COUNT,
              "one name per policy kind");
static_assert(sizeof policy_kind_functions / sizeof policy_kind_functions[0] ==
                  POLICY_KIND_COUNT,
              "one function per policy kind");

static void policy_hook(lua_State *L, lua_Debug *ar);

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static struct policy_state *
policy_from_state(lua_State *L)
{
    /* Set right after lua_newstate; coroutines are off, so L is the main
     * thread and its extra space is ours. */
    struct policy_state *set = *(struct policy_state **)lua_getextraspace(L);
    ENG_ASSERT(set != NULL);
    return set;
}

/* A monotonic clock: deadlines must not move with wall-clock adjustments. */
static uint64_t
policy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A bounded text buffer that never overflows: what does not fit is cut and
 * the text ends in "...". */
struct policy_text {
    char *p;
    size_t cap;
    size_t len;
    bool truncated;
};

static void
policy_text_init(struct policy_text *t, char *buf, size_t cap)
{
    ENG_ASSERT(cap >= 4);
    t->p = buf;
    t->cap = cap;
    t->len = 0;
    t->truncated = false;
    buf[0] = '\0';
}

static void policy_text_add(struct policy_text *t, const char *fmt, ...) ENG_PRINTF(2, 3);

static void
policy_text_add(struct policy_text *t, const char *fmt, ...)
{
    if (t->truncated) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->cap - t->len) {
        t->truncated = true;
        t->len = t->cap - 1;
        memcpy(t->p + t->cap - 4, "...", 4);
        return;
    }
    t->len += (size_t)n;
}

/* Where the innermost Lua function is ("policies/x.lua:12: "), or "". */
static void
policy_where(lua_State *L, char *buf, size_t cap)
{
    lua_Debug ar;
    buf[0] = '\0';
    for (int level = 0; lua_getstack(L, level, &ar) != 0; level++) {
        if (lua_getinfo(L, "Sl", &ar) != 0 && ar.currentline > 0) {
            snprintf(buf, cap, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Memory: the capped allocator                                             */

static void
policy_alloc_watch(struct policy_state *set, size_t grow_bytes)
{
    struct policy_budget *b = &set->budget;
    if (!b->active || b->trip != POLICY_TRIP_NONE) {
        return;
    }
    b->alloc_bytes_unchecked += grow_bytes;
    if (b->alloc_bytes_unchecked < POLICY_ALLOC_CHECK_BYTES) {
        return;
    }
    b->alloc_bytes_unchecked = 0;
    if (policy_now_ns() >= b->deadline_ns) {
        /* An allocator must not raise.  Arm the hook instead: lua_sethook is
         * safe anywhere (lua.c calls it from a signal handler), and the next
         * instruction raises the time-limit error. */
        b->trip = POLICY_TRIP_TIME;
        lua_sethook(set->L, policy_hook, LUA_MASKCOUNT, 1);
    }
}

/* The blocks behind policy_alloc: small ones through this thread's block
 * cache (util/blockcache.h; a state runs on one thread at a time, and a
 * block may come back on another: the cache allows both), larger ones
 * from realloc.  Returns NULL, ptr untouched, when there is no memory.
 * Only the blocks change: the accounting stays in Lua's sizes. */
static void *
policy_block_resize(void *ptr, size_t nsize)
{
    if (!blockcache_on()) {
        return realloc(ptr, nsize);
    }
    if (ptr == NULL) {
        return blockcache_malloc(nsize);
    }
    size_t have = blockcache_size(ptr);
    if (nsize <= BLOCKCACHE_BLOCK_BYTES_MAX && have <= BLOCKCACHE_BLOCK_BYTES_MAX) {
        if (blockcache_class_bytes(nsize) == have) {
            return ptr; /* the same size class: nothing wasted either way */
        }
        void *moved = blockcache_malloc(nsize);
        if (moved != NULL) {
            memcpy(moved, ptr, have < nsize ? have : nsize);
            blockcache_free(ptr);
        }
        return moved;
    }
    return realloc(ptr, nsize);
}

static void *
policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct policy_state *set = ud;
    /* When ptr is NULL, osize is the type of the object being created. */
    size_t old_bytes = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        blockcache_free(ptr);
        set->memory_bytes_used -= old_bytes;
        return NULL;
    }
    if (nsize <= old_bytes) {
        /* Lua assumes a shrink never fails: keep the old block if realloc
         * refuses, and account in Lua's view of the size either way. */
        void *shrunk = policy_block_resize(ptr, nsize);
        set->memory_bytes_used -= old_bytes - nsize;
        return shrunk != NULL ? shrunk : ptr;
    }
    size_t grow_bytes = nsize - old_bytes;
    if (ptr == NULL && osize == LUA_TSTRING && nsize > set->string_object_bytes_max) {
        set->string_too_long = true;
        return NULL; /* Lua collects, retries once, then raises LUA_ERRMEM */
    }
    if (grow_bytes > set->limits.memory_bytes_max - set->memory_bytes_used) {
        return NULL;
    }
    void *grown = policy_block_resize(ptr, nsize);
    if (grown == NULL) {
        set->malloc_failed = true;
        return NULL;
    }
    set->memory_bytes_used += grow_bytes;
    policy_alloc_watch(set, grow_bytes);
    return grown;
}

/* ------------------------------------------------------------------------ */
/* Instructions and time: the budget                                        */

/* Starts a fresh budget for one call or one load step. */
static void
policy_budget_begin(struct policy_state *set)
{
    /* Called outside and inside protected calls alike: nothing here raises.
     * The allocator flags are per call too, so a message never blames an
     * earlier call's refusal. */
    struct policy_budget *b = &set->budget;
    b->instructions_left = set->limits.instructions_max;
    b->deadline_ns = policy_now_ns() + (uint64_t)set->limits.wall_ms_max * 1000000u;
    b->total_bounds_instructions = false;
    b->total_bounds_time = false;
    if (set->total_on && set->total_instructions_left >= 0 &&
        set->total_instructions_left < b->instructions_left) {
        b->instructions_left = set->total_instructions_left;
        b->total_bounds_instructions = true;
    }
    if (set->total_on && set->total_deadline_ns != 0 && set->total_deadline_ns < b->deadline_ns) {
        b->deadline_ns = set->total_deadline_ns;
        b->total_bounds_time = true;
    }
    b->instructions_given = b->instructions_left;
    b->alloc_bytes_unchecked = 0;
    b->trip = POLICY_TRIP_NONE;
    b->trip_msg[0] = '\0';
    b->active = true;
    set->string_too_long = false;
    set->malloc_failed = false;
    /* Also undoes the every-instruction hook of a previous trip. */
    lua_sethook(set->L, policy_hook, LUA_MASKCOUNT, POLICY_HOOK_INSTRUCTIONS);
}

/* After a call the hook treats any further policy code as a trip (see
 * policy_hook); nothing is expected to run until the next begin. */
static void
policy_budget_end(struct policy_state *set)
{
    set->budget.active = false;
}

/* Marks the budget exhausted and makes the hook fire on every instruction. */
static void
policy_trip(lua_State *L, struct policy_state *set, enum policy_trip why)
{
    struct policy_budget *b = &set->budget;
    b->trip = why;
    lua_sethook(L, policy_hook, LUA_MASKCOUNT, 1);
}

/* [-0, +1, v] raises the budget error; formats it on first use, with the
 * position of the policy code that was running. */
static int
policy_raise_trip(lua_State *L, struct policy_state *set)
{
    struct policy_budget *b = &set->budget;
    if (b->trip_msg[0] == '\0') {
        char where[POLICY_CHUNK_NAME_MAX + 16];
        policy_where(L, where, sizeof where);
        if (b->trip == POLICY_TRIP_TIME) {
            snprintf(b->trip_msg, sizeof b->trip_msg,
                     "%spolicy exceeded its time limit (%lld ms)", where,
                     (long long)set->limits.wall_ms_max);
        } else {
            snprintf(b->trip_msg, sizeof b->trip_msg,
                     "%spolicy exceeded its instruction budget (%lld instructions)", where,
                     (long long)set->limits.instructions_max);
        }
    }
    lua_pushstring(L, b->trip_msg);
    return lua_error(L);
}

/* [-0, +0, v] charges `units` instructions for work a C function is about
 * to do, and checks the deadline, since no hook runs inside C. */
static void
policy_charge(lua_State *L, uint64_t units)
{
    struct policy_state *set = policy_from_state(L);
    struct policy_budget *b = &set->budget;
    if (b->trip == POLICY_TRIP_NONE) {
        /* Saturate: callers pass worst-case estimates that may be huge, and
         * a huge estimate simply means "refuse before starting". */
        int64_t cost = units > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)units;
        b->instructions_left = cost >= b->instructions_left ? 0 : b->instructions_left - cost;
        bool in_time = policy_now_ns() < b->deadline_ns;
        if (b->active && b->instructions_left > 0 && in_time) {
            return;
        }
        policy_trip(L, set, in_time ? POLICY_TRIP_INSTRUCTIONS : POLICY_TRIP_TIME);
    }
    policy_raise_trip(L, set);
}

/* The count hook: charges the instructions run since the last call (the
 * clock is read here too, about once per microsecond of Lua), and once the
 * budget or the deadline is exhausted raises on every instruction until the
 * call ends. */
static void
policy_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    policy_charge(L, POLICY_HOOK_INSTRUCTIONS);
}

/* [-0, +0, v] after policy code returned: a trip during its last instruction
 * (the allocator can only arm the hook) still fails the call. */
static void
policy_budget_settle(lua_State *L, struct policy_state *set)
{
    if (set->budget.trip != POLICY_TRIP_NONE) {
        policy_raise_trip(L, set);
    }
}

/* ------------------------------------------------------------------------ */
/* Guarded library functions                                                */

/* The stock C function a wrapper stands for (upvalue 1).  Wrappers call it
 * as a plain C function on the same stack frame: the arguments are already
 * where it expects them, and luaL_argerror still names the function the
 * policy called ("bad argument #1 to 'rep'"), with the caller's line. */
static lua_CFunction
policy_original(lua_State *L)
{
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    ENG_ASSERT(f != NULL);
    return f;
}

/* Any string or utf8 function: linear in its first argument at worst. */
static int
l_policy_charged(lua_State *L)
{
    size_t len = 0;
    if (lua_type(L, 1) == LUA_TSTRING) {
        lua_tolstring(L, 1, &len);
    }
    policy_charge(L, 1 + (uint64_t)lua_gettop(L) + len / POLICY_CHARGE_BYTES);
    return policy_original(L)(L);
}

/* Index just past the end of the set starting at p[i] == '[' (Lua's
 * classEnd; a malformed set is left to the matcher to report). */
static size_t
policy_set_end(const char *p, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && p[j] == '^') {
        j++;
    }
    do {
        if (j >= len) {
            return len;
        }
        if (p[j++] == '%' && j < len) {
            j++;
        }
    } while (j < len && p[j] != ']');
    return j;
}

/* Why a pattern may not run on this subject, or NULL when it may. */
static const char *
policy_pattern_refusal(const char *p, size_t len, size_t subject_len)
{
    if (subject_len > POLICY_PATTERN_SUBJECT_BYTES_MAX) {
        return "subject longer than 256 bytes; use a plain find";
    }
    if (len > POLICY_PATTERN_BYTES_MAX) {
        return "pattern longer than 256 bytes";
    }
    int repeats = 0, optionals = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            i += (i + 1 < len && p[i + 1] == 'b') ? 3 : 1; /* %bxy: x, y are literal */
        } else if (p[i] == '[') {
            i = policy_set_end(p, len, i); /* '-' in a set is a range */
        } else if (p[i] == '*' || p[i] == '+' || p[i] == '-') {
            repeats++;
        } else if (p[i] == '?') {
            optionals++;
        }
    }
    if (repeats > POLICY_PATTERN_REPEATS_MAX) {
        return "more than one '*', '+' or '-'";
    }
    if (optionals > POLICY_PATTERN_OPTIONALS_MAX) {
        return "more than 4 '?'";
    }
    return NULL;
}

/* Lua's own test (lstrlib.c nospecials): without these characters every
 * function does a literal search, whose cost is easy to bound. */
static bool
policy_has_specials(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (strchr("^$*+?.([%-", p[i]) != NULL && p[i] != '\0') {
            return true;
        }
    }
    return false;
}

/* [-0, +0, v] the guard of find, match, gmatch and gsub.  A literal search
 * (plain find, or no magic characters) runs on any string, charged for its
 * worst case; pattern mode needs a short subject and a simple pattern. */
static void
policy_pattern_guard(lua_State *L, bool is_find)
{
    size_t subject_len = 0, pattern_len = 0;
    luaL_checklstring(L, 1, &subject_len);
    const char *pattern = luaL_checklstring(L, 2, &pattern_len);
    bool plain = is_find && lua_toboolean(L, 4);
    if (plain || !policy_has_specials(pattern, pattern_len)) {
        uint64_t work = subject_len >= pattern_len
                            ? (uint64_t)(subject_len - pattern_len + 1) * pattern_len
                            : 0;
        policy_charge(L, 1 + work / POLICY_CHARGE_BYTES);
        return;
    }
    /* Pattern mode: bounded by the refusal rules to a few ms at worst (n^2
     * steps per repeat on 256 bytes, times 2^4 for optionals); the charge
     * mostly serves to look at the clock before each match. */
    const char *why = policy_pattern_refusal(pattern, pattern_len, subject_len);
    if (why != NULL) {
        luaL_error(L, "pattern too complex (%s)", why);
    }
    policy_charge(L, 1 + (uint64_t)subject_len * pattern_len / 16);
}

static int
l_policy_str_find(lua_State *L)
{
    policy_pattern_guard(L, true);
    return policy_original(L)(L);
}

static int
l_policy_str_match(lua_State *L)
{
    policy_pattern_guard(L, false);
    return policy_original(L)(L);
}

/* string.rep: C builds the whole result without a hook, so cap it. */
static int
l_policy_str_rep(lua_State *L)
{
    struct policy_state *set = policy_from_state(L);
    size_t len = 0, sep_len = 0;
    luaL_checklstring(L, 1, &len);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &sep_len);
    size_t cap = set->limits.string_bytes_max * POLICY_REP_FACTOR;
    uint64_t unit = (uint64_t)len + sep_len;
    /* The result is n * len + (n - 1) * sep_len = n * unit - sep_len. */
    if (n > 0 && unit > 0 && (uint64_t)n > ((uint64_t)cap + sep_len) / unit) {
        char limit[32];
        snprintf(limit, sizeof limit, "%zu", cap);
        return luaL_error(L, "string.rep result longer than %s bytes", limit);
    }
    uint64_t total = n > 0 ? (uint64_t)n * unit : 0;
    policy_charge(L, 1 + total / POLICY_CHARGE_BYTES);
    return policy_original(L)(L);
}

/* Skips the digits at *i and returns their value (saturating). */
static int
policy_format_number(const char *fmt, size_t len, size_t *i)
{
    int value = 0;
    while (*i < len && fmt[*i] >= '0' && fmt[*i] <= '9') {
        value = value > 1000 ? value : value * 10 + (fmt[*i] - '0');
        (*i)++;
    }
    return value;
}

/* string.format: widths and precisions of at most 99 (Lua's own rule,
 * checked here too so the bound does not depend on the Lua version). */
static int
l_policy_str_format(lua_State *L)
{
    /* Walk the conversions as Lua's checkformat does: '%', flags, width,
     * '.', precision.  The conversion letter itself is left to Lua. */
    size_t len = 0;
    const char *fmt = luaL_checklstring(L, 1, &len);
    for (size_t i = 0; i < len; i++) {
        if (fmt[i] != '%') {
            continue;
        }
        i++;
        if (i < len && fmt[i] == '%') {
            continue;
        }
        while (i < len && strchr("-+ #0", fmt[i]) != NULL && fmt[i] != '\0') {
            i++;
        }
        int width = policy_format_number(fmt, len, &i);
        int precision = 0;
        if (i < len && fmt[i] == '.') {
            i++;
            precision = policy_format_number(fmt, len, &i);
        }
        if (width > POLICY_FORMAT_WIDTH_MAX || precision > POLICY_FORMAT_WIDTH_MAX) {
            return luaL_error(L, "string.format: width or precision above %d",
                              POLICY_FORMAT_WIDTH_MAX);
        }
    }
    policy_charge(L, 1 + (uint64_t)lua_gettop(L) + len / POLICY_CHARGE_BYTES);
    return policy_original(L)(L);
}

/* [-0, +0, v] charges for touching the elements first..last of a table. */
static void
policy_charge_span(lua_State *L, lua_Integer first, lua_Integer last)
{
    uint64_t gap = last >= first ? (uint64_t)(lua_Unsigned)last - (lua_Unsigned)first : 0;
    policy_charge(L, gap >= UINT64_MAX - 2 ? UINT64_MAX : gap + 2); /* n + 1 */
}

/* table.insert / table.remove walk #t elements (which __len may inflate to
 * 2^62 with no allocation), all inside C. */
static int
l_policy_table_len(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        policy_charge_span(L, 1, luaL_len(L, 1));
    }
    return policy_original(L)(L);
}

/* table.sort: n log n comparisons in C (a C comparator such as the default
 * one never meets a hook). */
static int
l_policy_table_sort(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, 1);
        uint64_t log2n = 1;
        while (n > 0 && ((uint64_t)1 << log2n) < (uint64_t)n && log2n < 63) {
            log2n++;
        }
        uint64_t count = n > 0 ? (uint64_t)n : 0;
        policy_charge(L, count >= UINT64_MAX / (log2n + 1) ? UINT64_MAX : 1 + count * log2n);
    }
    return policy_original(L)(L);
}

/* table.concat(t, sep, i, j) and table.unpack(t, i, j): the first index
 * argument is at `at`. */
static void
policy_charge_range(lua_State *L, int at)
{
    lua_Integer first = luaL_optinteger(L, at, 1);
    lua_Integer last = lua_isnoneornil(L, at + 1) ? luaL_len(L, 1)
                                                  : luaL_checkinteger(L, at + 1);
    policy_charge_span(L, first, last);
}

static int
l_policy_table_concat(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        policy_charge_range(L, 3);
    }
    return policy_original(L)(L);
}

/* Unlike concat, unpack accepts any value with a length (strings too). */
static int
l_policy_table_unpack(lua_State *L)
{
    policy_charge_range(L, 2);
    return policy_original(L)(L);
}

/* table.move(a1, f, e, t): e - f + 1 reads and writes, which may be 2^63
 * with no allocation at all. */
static int
l_policy_table_move(lua_State *L)
{
    policy_charge_span(L, luaL_checkinteger(L, 2), luaL_checkinteger(L, 3));
    return policy_original(L)(L);
}

/* setmetatable without __gc: finalizers run with hooks off, at any time,
 * even inside lua_close, so one would escape every budget. */
static int
l_policy_setmetatable(lua_State *L)
{
    /* Lua marks an object for finalization only when its metatable has __gc
     * at setmetatable time, so checking here (raw, no metamethods) is
     * enough: adding __gc later has no effect. */
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL) {
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in policies");
        }
        lua_pop(L, 1);
    }
    return policy_original(L)(L);
}

/* The message handler xpcall installs around the policy's own: once the
 * budget is exhausted the policy's handler is skipped, because Lua calls a
 * handler with hooks off when the error came from the hook. */
static int
l_policy_xpcall_handler(lua_State *L)
{
    if (policy_from_state(L)->budget.trip != POLICY_TRIP_NONE) {
        return 1;
    }
    /* handler(err...) with the error value(s) already on the stack. */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall(f, handler, ...) as luaB_xpcall, with the guarded handler (the
 * stock xpcall, upvalue 1, is not used). */
static int
l_policy_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, l_policy_xpcall_handler, 1);
    lua_replace(L, 2);
    /* Stack: f, handler, args...  ->  f, handler, true, f, args... so that
     * on success the results follow `true`, as in luaB_xpcall. */
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    if (lua_pcall(L, n - 2, LUA_MULTRET, 2) != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - 2;
}

/* ------------------------------------------------------------------------ */
/* The allot helpers                                                        */

/* "-12.345" (as printed by "%.3f") -> -12345; the separator may be any
 * non-digit, so the current locale does not matter. */
static lua_Integer
policy_parse_milli(const char *s)
{
    /* Only called on snprintf's own output for |x| <= 10^12: at most 13
     * integer digits, so the arithmetic cannot overflow. */
    bool negative = *s == '-';
    s += negative ? 1 : 0;
    lua_Integer whole = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        whole = whole * 10 + (*s - '0');
    }
    lua_Integer frac = 0;
    if (*s != '\0') {
        s++;
        for (int d = 0; d < 3; d++, s++) {
            frac = frac * 10 + ((*s >= '0' && *s <= '9') ? *s - '0' : 0);
        }
    }
    lua_Integer milli = whole * 1000 + frac;
    return negative ? -milli : milli;
}

/* allot.milli(x) -> integer thousandths of x; x has at most 3 decimals. */
static int
l_policy_milli(lua_State *L)
{
    if (lua_isinteger(L, 1)) {
        lua_Integer x = lua_tointeger(L, 1);
        if (x > POLICY_MILLI_WHOLE_MAX || x < -POLICY_MILLI_WHOLE_MAX) {
            return luaL_error(L, "allot.milli: amount out of range (more than 10^12)");
        }
        lua_pushinteger(L, x * 1000);
        return 1;
    }
    if (lua_type(L, 1) != LUA_TNUMBER) {
        return luaL_typeerror(L, 1, "number");
    }
    double x = (double)lua_tonumber(L, 1);
    if (!isfinite(x)) {
        return luaL_error(L, "allot.milli: amount is not a finite number");
    }
    if (fabs(x) > (double)POLICY_MILLI_WHOLE_MAX) {
        return luaL_error(L, "allot.milli: amount out of range (more than 10^12)");
    }
    /* Exact when the shortest 3-decimal text reads back as the same double,
     * the rule of amount_from_json. */
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", x);
    if (strtod(buf, NULL) != x) {
        snprintf(buf, sizeof buf, "%.17g", x);
        return luaL_error(L, "allot.milli: amount has more than 3 decimals (%s)", buf);
    }
    lua_pushinteger(L, policy_parse_milli(buf));
    return 1;
}

/* [-0, +0, v] checks the arguments of ceil_div / floor_div. */
static void
policy_div_args(lua_State *L, const char *name, lua_Integer *a, lua_Integer *b)
{
    if (!lua_isinteger(L, 1) || !lua_isinteger(L, 2)) {
        luaL_error(L, "allot.%s: integer arguments expected", name);
    }
    *a = lua_tointeger(L, 1);
    *b = lua_tointeger(L, 2);
    if (*a < 0 || *b <= 0) {
        luaL_error(L, "allot.%s: non-negative dividend and positive divisor expected", name);
    }
}

static int
l_policy_ceil_div(lua_State *L)
{
    lua_Integer a = 0, b = 0;
    policy_div_args(L, "ceil_div", &a, &b);
    lua_pushinteger(L, a / b + (a % b != 0 ? 1 : 0)); /* (a + b - 1) / b may overflow */
    return 1;
}

static int
l_policy_floor_div(lua_State *L)
{
    lua_Integer a = 0, b = 0;
    policy_div_args(L, "floor_div", &a, &b);
    lua_pushinteger(L, a / b);
    return 1;
}

static const luaL_Reg policy_allot_lib[] = {
    {"milli", l_policy_milli},
    {"ceil_div", l_policy_ceil_div},
    {"floor_div", l_policy_floor_div},
    {NULL, NULL},
};

/* ------------------------------------------------------------------------ */
/* Read-only ctx tables and the lazy ctx field                              */

/* A kept ctx part is converted once per state into read-only tables
 * (policy_push_part), shared by every later call: each JSON container
 * becomes an empty proxy table whose own metatable reads through to the
 * real table (__index), refuses writes (__newindex: a proxy holds no key,
 * so every assignment reaches it), and answers # and pairs from the real
 * table.  Nested containers are stored in the real table as proxies too,
 * so nothing reachable from a proxy is writable.  The metatable is locked
 * (getmetatable gives "locked", setmetatable raises), so no policy ever
 * holds the real table.  next, rawget and rawlen of the sandbox look
 * through a proxy (policy_table_open), and so does the result converter,
 * so a policy cannot tell a proxy from a plain table except by writing to
 * it.  The address of policy_ro_tag keys the real table in a proxy's
 * metatable; that of policy_ctx_tag marks the metatable of a ctx with a
 * lazy field. */
static const char policy_ro_tag = 'r';
static const char policy_ctx_tag = 'c';

static void policy_lazy_fill(lua_State *L, int t);

/* [-0, +(0|1), -] the real table behind the proxy at idx, pushed (true), or
 * nothing pushed (false: idx is no proxy).  Raw reads only; needs 2 slots. */
static bool
policy_ro_real(lua_State *L, int idx)
{
    if (lua_getmetatable(L, idx) == 0) {
        return false;
    }
    if (lua_rawgetp(L, -1, &policy_ro_tag) != LUA_TTABLE) {
        lua_pop(L, 2);
        return false;
    }
    lua_remove(L, -2);
    return true;
}

/* [-0, +0, e] before a raw access to the table at idx (a stack index
 * >= 1): a proxy is replaced by its real table, and a ctx with a lazy
 * field gets the field filled in, so raw accesses see what indexing sees. */
static void
policy_table_open(lua_State *L, int idx)
{
    if (lua_getmetatable(L, idx) == 0) {
        return;
    }
    if (lua_rawgetp(L, -1, &policy_ro_tag) == LUA_TTABLE) {
        lua_replace(L, idx);
        lua_pop(L, 1);
        return;
    }
    bool is_ctx = lua_rawgetp(L, -2, &policy_ctx_tag) != LUA_TNIL;
    lua_pop(L, 3);
    if (is_ctx) {
        policy_lazy_fill(L, idx);
    }
}

/* __newindex of a proxy: luaL_error names the policy's line. */
static int
l_policy_ro_newindex(lua_State *L)
{
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "attempt to modify a read-only ctx table (field '%s')", key);
}

/* __len of a proxy: the real table's border, as # of a plain table. */
static int
l_policy_ro_len(lua_State *L)
{
    lua_settop(L, 1);
    policy_table_open(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

/* The sandbox's next(t, k): Lua's, looking through proxies (and filling a
 * lazy ctx field in first). */
static int
l_policy_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    policy_table_open(L, 1);
    if (lua_next(L, 1) != 0) {
        return 2;
    }
    lua_pushnil(L);
    return 1;
}

/* __pairs of proxies and of a ctx with a lazy field: the sandbox's next
 * over the table itself, so the real table never reaches the policy. */
static int
l_policy_ro_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushcfunction(L, l_policy_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* rawget and rawlen: the stock functions (upvalue 1) on the real table. */
static int
l_policy_rawget(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    policy_table_open(L, 1);
    return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

static int
l_policy_rawlen(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        policy_table_open(L, 1);
    }
    return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* [-1, +1, m] replaces the real table on top by a new proxy of it. */
static void
policy_freeze(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -3);
    lua_rawsetp(L, -2, &policy_ro_tag);
    lua_pushcfunction(L, l_policy_ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_policy_ro_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_policy_ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, -2);
}

static void policy_push_kept(lua_State *L, struct policy_state *set,
                             const struct policy_ctx_part *p, int depth);
static void policy_usage_fill(lua_State *L, struct policy_call *call, int t);

/* The pending kept part of the call named `name` (-1: none). */
static int
policy_part_pending(const struct policy_call *call, const char *name)
{
    for (uint32_t bits = call->parts_pending; bits != 0; bits &= bits - 1) {
        int i = __builtin_ctz(bits);
        if (strcmp(call->parts->parts[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* [-0, +0, e] converts pending kept part i of the call into the ctx table
 * at t (and keeps it in the state's templates).  A conversion that raises
 * is remembered: the call fails even if the policy catches the error. */
static void
policy_part_fill(lua_State *L, struct policy_call *call, int t, int i)
{
    struct policy_state *set = call->set;
    const struct policy_ctx_part *p = &call->parts->parts[i];
    t = lua_absindex(L, t);
    call->parts_pending &= ~(UINT32_C(1) << i);
    call->part_failed = true;
    call->part_failed_index = i;
    luaL_checkstack(L, 2 * (set->limits.convert_depth_max + 2) + 8, "ctx nested too deeply");
    lua_pushstring(L, p->name);
    policy_push_kept(L, set, p, 1);
    lua_rawset(L, t);
    call->part_failed = false;
}

/* [-0, +0, e] fills in what the call's ctx (the table at t) still lacks:
 * every pending kept part, and the lazy field once (read through the
 * caller's function).  A failed read is kept for the caller (the call
 * fails with it even if the policy catches the error raised here).
 * Another table (a ctx a policy kept from an earlier call) gets nothing. */
static void
policy_lazy_fill(lua_State *L, int t)
{
    struct policy_call *call = policy_from_state(L)->cur_call;
    if (call == NULL || call->parts == NULL || lua_topointer(L, t) != call->ctx_table) {
        return;
    }
    while (call->parts_pending != 0) {
        policy_part_fill(L, call, t, __builtin_ctz(call->parts_pending));
    }
    policy_usage_fill(L, call, t);
}

/* [-0, +0, e] the lazy field of policy_lazy_fill alone. */
static void
policy_usage_fill(lua_State *L, struct policy_call *call, int t)
{
    if (call->lazy_done || call->parts->lazy_name == NULL) {
        return;
    }
    struct policy_ctx *pc = call->parts;
    call->lazy_done = true;
    pc->lazy_read = true;
    int64_t value = 0;
    if (pc->lazy(pc->lazy_ud, &value, &call->lazy_err) != 0) {
        call->lazy_failed = true;
        luaL_error(L, "ctx.%s could not be read", pc->lazy_name);
    }
    lua_pushstring(L, pc->lazy_name);
    lua_pushinteger(L, (lua_Integer)value);
    lua_rawset(L, t < 0 ? t - 2 : t);
}

/* __index of a ctx with a lazy field or pending kept parts: the field,
 * read (or converted) on first use. */
static int
l_policy_ctx_index(lua_State *L)
{
    struct policy_call *call = policy_from_state(L)->cur_call;
    if (call == NULL || call->parts == NULL || lua_type(L, 2) != LUA_TSTRING ||
        lua_topointer(L, 1) != call->ctx_table) {
        return 0;
    }
    lua_settop(L, 2);
    const char *key = lua_tostring(L, 2);
    int i = call->parts_pending != 0 ? policy_part_pending(call, key) : -1;
    if (i >= 0) {
        policy_part_fill(L, call, 1, i);
    } else if (!call->lazy_done && call->parts->lazy_name != NULL &&
               strcmp(key, call->parts->lazy_name) == 0) {
        policy_usage_fill(L, call, 1);
    } else {
        return 0;
    }
    lua_rawget(L, 1);
    return 1;
}

/* __newindex of such a ctx (a key it does not hold): a pending part or
 * the lazy field assigned by the policy is the policy's from then on
 * (nil included), never filled in over it. */
static int
l_policy_ctx_newindex(lua_State *L)
{
    struct policy_call *call = policy_from_state(L)->cur_call;
    lua_settop(L, 3);
    if (call != NULL && call->parts != NULL && lua_type(L, 2) == LUA_TSTRING &&
        lua_topointer(L, 1) == call->ctx_table) {
        const char *key = lua_tostring(L, 2);
        int i = call->parts_pending != 0 ? policy_part_pending(call, key) : -1;
        if (i >= 0) {
            call->parts_pending &= ~(UINT32_C(1) << i);
        } else if (call->parts->lazy_name != NULL && strcmp(key, call->parts->lazy_name) == 0) {
            call->lazy_done = true;
        }
    }
    lua_rawset(L, 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The sandbox                                                              */

/* One allow-listed library member: copied as is when wrapper is NULL, else
 * replaced by a closure of wrapper over the stock function. */
struct policy_member {
    const char *name;
    lua_CFunction wrapper;
};

static const struct policy_member policy_base_members[] = {
    {"assert", NULL},   {"error", NULL},    {"getmetatable", NULL},
    {"ipairs", NULL},   {"next", l_policy_next}, {"pairs", NULL},
    {"pcall", NULL},    {"rawequal", NULL}, {"rawget", l_policy_rawget},
    {"rawlen", l_policy_rawlen},   {"select", NULL},   {"setmetatable", l_policy_setmetatable},
    {"tonumber", NULL}, {"tostring", NULL}, {"type", NULL},
    {"xpcall", l_policy_xpcall}, {"_VERSION", NULL}, {NULL, NULL},
};

static const struct policy_member policy_string_members[] = {
    {"byte", l_policy_charged},  {"char", l_policy_charged},
    {"find", l_policy_str_find}, {"format", l_policy_str_format},
    {"gmatch", l_policy_str_match}, {"gsub", l_policy_str_match},
    {"len", NULL},               {"lower", l_policy_charged},
    {"match", l_policy_str_match}, {"pack", l_policy_charged},
    {"packsize", l_policy_charged}, {"rep", l_policy_str_rep},
    {"reverse", l_policy_charged}, {"sub", l_policy_charged},
    {"unpack", l_policy_charged}, {"upper", l_policy_charged},
    {NULL, NULL},
};

static const struct policy_member policy_table_members[] = {
    {"concat", l_policy_table_concat}, {"insert", l_policy_table_len},
    {"move", l_policy_table_move},     {"pack", l_policy_charged},
    {"remove", l_policy_table_len},    {"sort", l_policy_table_sort},
    {"unpack", l_policy_table_unpack}, {NULL, NULL},
};

static const struct policy_member policy_math_members[] = {
    {"abs", NULL},  {"acos", NULL},  {"asin", NULL},       {"atan", NULL},
    {"ceil", NULL}, {"cos", NULL},   {"deg", NULL},        {"exp", NULL},
    {"floor", NULL}, {"fmod", NULL}, {"huge", NULL},       {"log", NULL},
    {"max", NULL},  {"maxinteger", NULL}, {"min", NULL},   {"mininteger", NULL},
    {"modf", NULL}, {"pi", NULL},    {"rad", NULL},        {"sin", NULL},
    {"sqrt", NULL}, {"tan", NULL},   {"tointeger", NULL},  {"type", NULL},
    {"ult", NULL},  {NULL, NULL},
};

static const struct policy_member policy_utf8_members[] = {
    {"char", l_policy_charged},      {"charpattern", NULL},
    {"codes", l_policy_charged},     {"codepoint", l_policy_charged},
    {"len", l_policy_charged},       {"offset", l_policy_charged},
    {NULL, NULL},
};

/* [-0, +0, m] copies the allow-listed members of the table at src into the
 * table at dst, wrapping where asked. */
static void
policy_copy_members(lua_State *L, int dst, int src, const struct policy_member *list)
{
    /* The stock tables have no metatables, so getfield here is raw. */
    for (const struct policy_member *m = list; m->name != NULL; m++) {
        int type = lua_getfield(L, src, m->name);
        ENG_ASSERT(type != LUA_TNIL); /* the allow-list names a missing member */
        if (m->wrapper != NULL) {
            ENG_ASSERT(lua_iscfunction(L, -1));
            lua_pushcclosure(L, m->wrapper, 1);
        }
        lua_setfield(L, dst, m->name);
    }
}

/* __newindex of the library proxies.  luaL_error names the policy's line
 * (level 1 is the Lua code doing the assignment). */
static int
l_policy_readonly(lua_State *L)
{
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "attempt to modify read-only table '%s' (field '%s')",
                      lua_tostring(L, lua_upvalueindex(1)), key);
}

/* __newindex of every chunk's _ENV: policies write no globals. */
static int
l_policy_env_newindex(lua_State *L)
{
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "assignment to undeclared global '%s'", key);
}

/* [-1, +1, m] replaces the table on top with a read-only proxy of it: an
 * empty table whose locked metatable reads through to the library.  pairs()
 * on a proxy sees nothing, which policies can live with. */
static void
policy_push_proxy(lua_State *L, const char *name)
{
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, l_policy_readonly, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, -2);
}

/* [-0, +0, m] points the string metatable at the sandbox's string table
 * (so ("x"):rep(n) meets the same guards) and locks it. */
static void
policy_lock_string_metatable(lua_State *L, int strings)
{
    lua_pushliteral(L, "");
    int has = lua_getmetatable(L, -1);
    ENG_ASSERT(has != 0);
    lua_pushvalue(L, strings);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* [-0, +0, m] Runs under lua_pcall at creation: opens the five allowed
 * libraries, builds the frozen globals and the _ENV metatable. */
static int
l_policy_sandbox_open(lua_State *L)
{
    static const struct {
        const char *name;
        lua_CFunction open;
        const struct policy_member *members;
    } libs[] = {
        {LUA_STRLIBNAME, luaopen_string, policy_string_members},
        {LUA_TABLIBNAME, luaopen_table, policy_table_members},
        {LUA_MATHLIBNAME, luaopen_math, policy_math_members},
        {LUA_UTF8LIBNAME, luaopen_utf8, policy_utf8_members},
    };
    /* The stock libraries go to package.loaded only (glb = 0); policies see
     * the copies built below, never the stock tables or the real _G. */
    luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
    lua_createtable(L, 0, 24); /* the frozen globals */
    int globals = lua_gettop(L);
    policy_copy_members(L, globals, globals - 1, policy_base_members);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].open, 0);
        lua_newtable(L);
        policy_copy_members(L, lua_gettop(L), lua_gettop(L) - 1, libs[i].members);
        if (libs[i].open == luaopen_string) {
            policy_lock_string_metatable(L, lua_gettop(L));
        }
        policy_push_proxy(L, libs[i].name);
        lua_setfield(L, globals, libs[i].name);
        lua_pop(L, 1); /* the stock library */
    }
    /* No _G: the frozen globals are reachable only as __index of a locked
     * metatable, so no policy can write to what all chunks share. */
    luaL_newlib(L, policy_allot_lib);
    policy_push_proxy(L, "allot");
    lua_setfield(L, globals, "allot");

    lua_createtable(L, 0, 3); /* the metatable of every chunk's _ENV */
    lua_pushvalue(L, globals);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_policy_env_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setfield(L, LUA_REGISTRYINDEX, POLICY_ENV_KEY);

    lua_createtable(L, 0, 5); /* the metatable of a ctx with lazy fields */
    lua_pushcfunction(L, l_policy_ctx_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_policy_ctx_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_policy_ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &policy_ctx_tag);
    lua_setfield(L, LUA_REGISTRYINDEX, POLICY_CTX_KEY);
    return 0;
}

/* [-0, +1, m] a fresh _ENV for one chunk. */
static void
policy_push_env(lua_State *L)
{
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, POLICY_ENV_KEY);
    lua_setmetatable(L, -2);
}

static int
policy_panic(lua_State *L)
{
    /* Every entry into a policy state is protected; reaching this is a bug. */
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    fprintf(stderr, "allot: unprotected error in a policy state: %s\n", msg);
    abort();
}

/* ------------------------------------------------------------------------ */
/* JSON -> Lua (raises: runs inside the protected call)                     */

static void policy_push_json(lua_State *L, const struct policy_limits *lim, const json_t *v,
                             int depth, bool frozen);

/* [-0, +1, m] a JSON object as a table with string keys. */
static void
policy_push_json_object(lua_State *L, const struct policy_limits *lim, const json_t *v,
                        int depth, bool frozen)
{
    size_t n = json_object_size(v);
    lua_createtable(L, 0, n > INT_MAX ? INT_MAX : (int)n);
    /* jansson's iterator API takes a non-const object; it does not modify it. */
    json_t *obj = (json_t *)v;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        json_t *value = json_object_iter_value(it);
        size_t key_len = json_object_iter_key_len(it);
        if (json_is_null(value)) {
            continue; /* null is an absent key */
        }
        if (key_len > lim->string_bytes_max) {
            luaL_error(L, "ctx: key longer than %d bytes", (int)lim->string_bytes_max);
        }
        lua_pushlstring(L, json_object_iter_key(it), key_len);
        policy_push_json(L, lim, value, depth + 1, frozen);
        lua_rawset(L, -3);
    }
}

/* [-0, +1, m] a JSON array as the sequence 1..n; a null item leaves a hole
 * (nil), as Lua has no other way to say it. */
static void
policy_push_json_array(lua_State *L, const struct policy_limits *lim, const json_t *v,
                       int depth, bool frozen)
{
    size_t n = json_array_size(v);
    if (n > (size_t)INT_MAX) {
        luaL_error(L, "ctx: array too long");
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_null(item)) {
            policy_push_json(L, lim, item, depth + 1, frozen);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
}

/* [-0, +1, m] pushes v; containers count one level each from depth 1, and
 * become read-only proxies when frozen (policy_freeze).  The caller made
 * room for the deepest value the depth limit admits (each open container
 * holds its table and a key on the stack, and a proxy 3 more slots at the
 * innermost level), once per call instead of once per value. */
static void
policy_push_json(lua_State *L, const struct policy_limits *lim, const json_t *v, int depth,
                 bool frozen)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth > lim->convert_depth_max) {
            luaL_error(L, "ctx: nested deeper than %d levels", lim->convert_depth_max);
        }
        if (json_is_object(v)) {
            policy_push_json_object(L, lim, v, depth, frozen);
        } else {
            policy_push_json_array(L, lim, v, depth, frozen);
        }
        if (frozen) {
            policy_freeze(L);
        }
        break;
    case JSON_STRING:
        if (json_string_length(v) > lim->string_bytes_max) {
            luaL_error(L, "ctx: string longer than %d bytes", (int)lim->string_bytes_max);
        }
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;
    case JSON_NULL:
    default:
        lua_pushnil(L);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Lua -> JSON (never raises: raw accessors, lua_checkstack, no coercion)   */

/* The converter builds plain C objects and cleans up after itself on every
 * failure path, so no Lua error can strand a half-built json_t. */
struct policy_conv {
    const struct policy_limits *limits;
    char path[128]; /* "result.lots[2].id" of the value being converted */
    size_t path_len;
    char msg[320]; /* "policy returned <what> at <path>" always fits */
};

static json_t *policy_conv_fail(struct policy_conv *cv, const char *fmt, ...) ENG_PRINTF(2, 3);

static json_t *
policy_conv_fail(struct policy_conv *cv, const char *fmt, ...)
{
    char what[ENG_MSG_MAX / 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(cv->msg, sizeof cv->msg, "policy returned %s at %s", what, cv->path);
    return NULL;
}

/* Appends len bytes of text to the path; returns the length to restore
 * afterwards.  A path that no longer fits is cut: it only decorates the
 * message.  Written by hand, not printf: it runs for every value of every
 * result. */
static size_t
policy_path_add(struct policy_conv *cv, const char *text, size_t len)
{
    size_t saved = cv->path_len;
    size_t room = sizeof cv->path - 1 - cv->path_len;
    len = len < room ? len : room;
    memcpy(cv->path + cv->path_len, text, len);
    cv->path_len += len;
    cv->path[cv->path_len] = '\0';
    return saved;
}

/* ".key", the key cut at 40 bytes (or its first NUL). */
static size_t
policy_path_key(struct policy_conv *cv, const char *key)
{
    char seg[41] = ".";
    size_t n = strnlen(key, 40);
    memcpy(seg + 1, key, n);
    return policy_path_add(cv, seg, n + 1);
}

/* "[i]" for a list index i >= 1. */
static size_t
policy_path_index(struct policy_conv *cv, lua_Integer i)
{
    char digits[24], seg[26];
    size_t n = 0, len = 0;
    for (unsigned long long v = (unsigned long long)i; n == 0 || v > 0; v /= 10) {
        digits[n++] = (char)('0' + (int)(v % 10));
    }
    seg[len++] = '[';
    while (n > 0) {
        seg[len++] = digits[--n];
    }
    seg[len++] = ']';
    return policy_path_add(cv, seg, len);
}

static void
policy_path_pop(struct policy_conv *cv, size_t saved)
{
    cv->path_len = saved;
    cv->path[saved] = '\0';
}

static json_t *policy_to_json(lua_State *L, struct policy_conv *cv, int idx, int depth);

enum policy_shape { POLICY_SHAPE_BAD, POLICY_SHAPE_ARRAY, POLICY_SHAPE_OBJECT };

/* A table is an array when its keys are exactly 1..n (or it is empty), an
 * object when every key is a string; anything else is refused. */
static enum policy_shape
policy_table_shape(lua_State *L, int idx, lua_Integer *count)
{
    lua_Integer n = 0, key_max = 0;
    bool all_positive_ints = true, all_strings = true;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        n++;
        if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            lua_Integer k = lua_tointeger(L, -2);
            key_max = k > key_max ? k : key_max;
            all_strings = false;
        } else {
            all_positive_ints = false;
            all_strings = all_strings && lua_type(L, -2) == LUA_TSTRING;
        }
        lua_pop(L, 1);
    }
    *count = n;
    if (n == 0 || (all_positive_ints && key_max == n)) {
        return POLICY_SHAPE_ARRAY;
    }
    return all_strings ? POLICY_SHAPE_OBJECT : POLICY_SHAPE_BAD;
}

static json_t *
policy_array_to_json(lua_State *L, struct policy_conv *cv, int idx, lua_Integer n, int depth)
{
    /* rawgeti on 1..n: no __index can run, and n came from the same keys. */
    json_t *array = json_array();
    if (array == NULL) {
        return policy_conv_fail(cv, "a list (out of memory)");
    }
    for (lua_Integer i = 1; i <= n; i++) {
        size_t saved = policy_path_index(cv, i);
        lua_rawgeti(L, idx, i);
        json_t *item = policy_to_json(L, cv, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        policy_path_pop(cv, saved);
        if (item == NULL || json_array_append_new(array, item) != 0) {
            json_decref(array);
            return item == NULL ? NULL : policy_conv_fail(cv, "a list (out of memory)");
        }
    }
    return array;
}

static json_t *
policy_object_to_json(lua_State *L, struct policy_conv *cv, int idx, int depth)
{
    json_t *object = json_object();
    if (object == NULL) {
        return policy_conv_fail(cv, "a table (out of memory)");
    }
    /* lua_next is raw; the shape check proved every key is a string, so
     * lua_tolstring below reads it without converting anything. */
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t key_len = 0;
        const char *key = lua_tolstring(L, -2, &key_len); /* a string: no coercion */
        if (key_len > cv->limits->string_bytes_max) {
            lua_pop(L, 2);
            json_decref(object);
            return policy_conv_fail(cv, "a key longer than %zu bytes",
                                    cv->limits->string_bytes_max);
        }
        size_t saved = policy_path_key(cv, key);
        json_t *value = policy_to_json(L, cv, lua_gettop(L), depth + 1);
        policy_path_pop(cv, saved);
        lua_pop(L, 1);
        /* setn_new takes the value even when it fails (bad UTF-8 key). */
        if (value == NULL || json_object_setn_new(object, key, key_len, value) != 0) {
            lua_pop(L, 1);
            json_decref(object);
            return value == NULL ? NULL : policy_conv_fail(cv, "a key that is not UTF-8");
        }
    }
    return object;
}

static json_t *
policy_table_to_json(lua_State *L, struct policy_conv *cv, int idx, int depth)
{
    /* The depth bound also ends cycles: a table that contains itself is
     * simply too deep, and no visited-set is needed. */
    if (depth > cv->limits->convert_depth_max) {
        return policy_conv_fail(cv, "tables nested deeper than %d levels (or a cycle)",
                                cv->limits->convert_depth_max);
    }
    if (!lua_checkstack(L, 4)) {
        return policy_conv_fail(cv, "tables nested too deeply");
    }
    lua_Integer n = 0;
    switch (policy_table_shape(L, idx, &n)) {
    case POLICY_SHAPE_ARRAY:
        return policy_array_to_json(L, cv, idx, n, depth);
    case POLICY_SHAPE_OBJECT:
        return policy_object_to_json(L, cv, idx, depth);
    case POLICY_SHAPE_BAD:
    default:
        return policy_conv_fail(cv, "a table mixing keys (want a list 1..n or string keys)");
    }
}

/* The JSON value of the Lua value at idx (absolute), or NULL with cv->msg. */
static json_t *
policy_to_json(lua_State *L, struct policy_conv *cv, int idx, int depth)
{
    /* Integers and floats stay apart (json_integer vs json_real): the
     * engine refuses a float where it wants an amount, even 2.0. */
    json_t *v = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        v = json_null();
        break;
    case LUA_TBOOLEAN:
        v = json_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v = json_integer((json_int_t)lua_tointeger(L, idx));
        } else if (!isfinite((double)lua_tonumber(L, idx))) {
            return policy_conv_fail(cv, "NaN or an infinite number");
        } else {
            v = json_real((double)lua_tonumber(L, idx));
        }
        break;
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > cv->limits->string_bytes_max) {
            return policy_conv_fail(cv, "a string longer than %zu bytes",
                                    cv->limits->string_bytes_max);
        }
        v = json_stringn(s, len);
        if (v == NULL) {
            return policy_conv_fail(cv, "a string that is not UTF-8");
        }
        break;
    }
    case LUA_TTABLE:
        if (!lua_checkstack(L, 3)) {
            return policy_conv_fail(cv, "tables nested too deeply");
        }
        if (policy_ro_real(L, idx)) {
            /* A read-only ctx table converts as the table it shows. */
            v = policy_table_to_json(L, cv, lua_gettop(L), depth);
            lua_pop(L, 1);
            return v;
        }
        return policy_table_to_json(L, cv, idx, depth);
    default:
        return policy_conv_fail(cv, "a %s", luaL_typename(L, idx));
    }
    return v != NULL ? v : policy_conv_fail(cv, "a value (out of memory)");
}

static void
policy_conv_init(struct policy_conv *cv, const struct policy_limits *limits)
{
    cv->limits = limits;
    snprintf(cv->path, sizeof cv->path, "result");
    cv->path_len = strlen(cv->path);
    cv->msg[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Results read without JSON (policy_set_call_parts_pick)                   */

/* A picked result must read exactly as its JSON conversion would, so the
 * direct reader takes only what it can vouch for: nil, a boolean, an
 * integer, a finite float, an ASCII string, or a table without metatable
 * whose keys are ASCII strings and whose values are all of those but
 * tables.  Everything else (nested tables, proxies, lists, non-ASCII text,
 * NaN, functions, anything too long) goes through policy_to_json, which
 * converts it or fails with its usual message, and the fields are then
 * read from the JSON. */

/* Whether text converts unchanged: at most max bytes, all ASCII (NUL
 * included, as jansson takes it), so json_stringn's UTF-8 check passes. */
static bool
policy_pick_ascii(const char *s, size_t len, size_t max)
{
    if (len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            return false;
        }
    }
    return true;
}

/* f->text from a string of len bytes, as policy_pick_field says. */
static void
policy_pick_text(struct policy_pick_field *f, const char *s, size_t len)
{
    size_t n = strnlen(s, len < POLICY_PICK_TEXT_MAX - 1 ? len : POLICY_PICK_TEXT_MAX - 1);
    memcpy(f->text, s, n);
    f->text[n] = '\0';
    f->type = POLICY_PICK_STRING;
}

/* [-0, +0, -] the scalar at idx into f (NULL: a field nobody picked, only
 * checked), or false when only the JSON conversion can tell. */
static bool
policy_pick_scalar(lua_State *L, const struct policy_limits *lim, int idx,
                   struct policy_pick_field *f)
{
    struct policy_pick_field unused;
    f = f != NULL ? f : &unused;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        f->type = POLICY_PICK_VALUE;
        return true;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            f->type = POLICY_PICK_INTEGER;
            f->integer = (int64_t)lua_tointeger(L, idx);
            return true;
        }
        f->type = POLICY_PICK_VALUE;
        return isfinite((double)lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        if (!policy_pick_ascii(s, len, lim->string_bytes_max)) {
            return false;
        }
        if (f != &unused) {
            policy_pick_text(f, s, len);
        }
        return true;
    }
    default:
        return false;
    }
}

/* [-0, +0, -] the result at idx (absolute) into *pk, or false when it is
 * not one the direct reader vouches for (above). */
static bool
policy_pick_direct(lua_State *L, const struct policy_limits *lim, int idx, struct policy_pick *pk)
{
    for (int i = 0; i < pk->count; i++) {
        pk->fields[i].type = POLICY_PICK_ABSENT;
    }
    pk->shape = POLICY_PICK_OTHER;
    pk->unknown[0] = '\0';
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        pk->shape = POLICY_PICK_NULL;
        return true;
    case LUA_TTABLE:
        break;
    default:
        return policy_pick_scalar(L, lim, idx, NULL);
    }
    if (lim->convert_depth_max < 1 || !lua_checkstack(L, 3)) {
        return false;
    }
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1); /* a proxy or a ctx: converted as the table it shows */
        return false;
    }
    bool any = false;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t key_len = 0;
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &key_len) : NULL;
        if (key == NULL || !policy_pick_ascii(key, key_len, lim->string_bytes_max)) {
            lua_pop(L, 2);
            return false;
        }
        struct policy_pick_field *f = NULL;
        for (int i = 0; i < pk->count && f == NULL; i++) {
            /* By length: a key with a NUL inside is not the name before it. */
            if (strlen(pk->names[i]) == key_len && memcmp(pk->names[i], key, key_len) == 0) {
                f = &pk->fields[i];
            }
        }
        if (f == NULL && pk->unknown[0] == '\0') {
            snprintf(pk->unknown, sizeof pk->unknown, "%.*s",
                     (int)(key_len < sizeof pk->unknown ? key_len : sizeof pk->unknown - 1), key);
        }
        if (!policy_pick_scalar(L, lim, -1, f)) {
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
        any = true;
    }
    pk->shape = any ? POLICY_PICK_OBJECT : POLICY_PICK_EMPTY;
    return true;
}

/* The picks of a converted result (JSON, borrowed): what the caller would
 * have read of it with json_object_get. */
static void
policy_pick_json(const json_t *v, struct policy_pick *pk)
{
    pk->shape = json_is_null(v)                                ? POLICY_PICK_NULL
                : json_is_object(v)                            ? POLICY_PICK_OBJECT
                : json_is_array(v) && json_array_size(v) == 0 ? POLICY_PICK_EMPTY
                                                               : POLICY_PICK_OTHER;
    pk->unknown[0] = '\0';
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)v, key, value) {
        bool named = false;
        for (int i = 0; i < pk->count && !named; i++) {
            named = strcmp(pk->names[i], key) == 0;
        }
        if (!named) {
            snprintf(pk->unknown, sizeof pk->unknown, "%.40s", key);
            break;
        }
    }
    (void)value;
    for (int i = 0; i < pk->count; i++) {
        struct policy_pick_field *f = &pk->fields[i];
        /* json_object_get gives NULL for a non-object. */
        const json_t *field = json_object_get(v, pk->names[i]);
        f->type = field == NULL ? POLICY_PICK_ABSENT : POLICY_PICK_VALUE;
        if (json_is_integer(field)) {
            f->type = POLICY_PICK_INTEGER;
            f->integer = (int64_t)json_integer_value(field);
        } else if (json_is_string(field)) {
            policy_pick_text(f, json_string_value(field), json_string_length(field));
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Examples: deep equality and rendering (raw accessors only)               */

static bool policy_deep_equal(lua_State *L, int a, int b, int depth, int depth_max);

/* Every a[k] deep-equals b[k]. */
static bool
policy_table_covered(lua_State *L, int a, int b, int depth, int depth_max)
{
    lua_pushnil(L);
    while (lua_next(L, a) != 0) {
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        bool same = policy_deep_equal(L, lua_gettop(L) - 1, lua_gettop(L), depth + 1, depth_max);
        lua_pop(L, 2);
        if (!same) {
            lua_pop(L, 1);
            return false;
        }
    }
    return true;
}

/* Every key of b is a key of a. */
static bool
policy_table_keys_within(lua_State *L, int b, int a)
{
    lua_pushnil(L);
    while (lua_next(L, b) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        bool present = lua_rawget(L, a) != LUA_TNIL;
        lua_pop(L, 1);
        if (!present) {
            lua_pop(L, 1);
            return false;
        }
    }
    return true;
}

/* Tables recursively, numbers by value and subtype, the rest by rawequal. */
static bool
policy_deep_equal(lua_State *L, int a, int b, int depth, int depth_max)
{
    int type = lua_type(L, a);
    if (type != lua_type(L, b)) {
        return false;
    }
    if (type == LUA_TNUMBER) {
        if (lua_isinteger(L, a) != lua_isinteger(L, b)) {
            return false;
        }
        return lua_isinteger(L, a) ? lua_tointeger(L, a) == lua_tointeger(L, b)
                                   : lua_tonumber(L, a) == lua_tonumber(L, b);
    }
    /* Strings, booleans, nil and functions compare by identity; the same
     * table twice is equal without walking it (cycles compared to
     * themselves end here). */
    if (type != LUA_TTABLE || lua_rawequal(L, a, b)) {
        return lua_rawequal(L, a, b) != 0;
    }
    if (depth >= depth_max || !lua_checkstack(L, 6)) {
        return false;
    }
    return policy_table_covered(L, a, b, depth, depth_max) &&
           policy_table_keys_within(L, b, a);
}

static void policy_render(lua_State *L, int idx, struct policy_text *t, int depth);

/* k= for string keys, [n]= for integers, [type]= for anything else. */
static void
policy_render_key(lua_State *L, int idx, struct policy_text *t)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        policy_text_add(t, "%.40s=", lua_tostring(L, idx));
    } else if (lua_isinteger(L, idx)) {
        policy_text_add(t, "[%lld]=", (long long)lua_tointeger(L, idx));
    } else {
        policy_text_add(t, "[%s]=", luaL_typename(L, idx));
    }
}

/* {v1,v2,k=v,...}: the sequence part first, then other keys in next order. */
static void
policy_render_table(lua_State *L, int idx, struct policy_text *t, int depth)
{
    if (depth >= 3 || !lua_checkstack(L, 4)) {
        policy_text_add(t, "{...}");
        return;
    }
    lua_Unsigned n = lua_rawlen(L, idx);
    bool first = true;
    policy_text_add(t, "{");
    for (lua_Unsigned i = 1; i <= n && !t->truncated; i++) {
        policy_text_add(t, first ? "" : ",");
        first = false;
        lua_rawgeti(L, idx, (lua_Integer)i);
        policy_render(L, lua_gettop(L), t, depth + 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        bool in_sequence = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                           (lua_Unsigned)lua_tointeger(L, -2) <= n;
        if (!in_sequence) {
            policy_text_add(t, first ? "" : ",");
            first = false;
            policy_render_key(L, lua_gettop(L) - 1, t);
            policy_render(L, lua_gettop(L), t, depth + 1);
        }
        lua_pop(L, 1);
        if (t->truncated) {
            lua_pop(L, 1);
            return;
        }
    }
    policy_text_add(t, "}");
}

/* A short, readable rendering of a Lua value for example mismatches;
 * floats always show a fraction or exponent so 2 and 2.0 differ. */
static void
policy_render(lua_State *L, int idx, struct policy_text *t, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            policy_text_add(t, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            char num[48];
            snprintf(num, sizeof num, "%.14g", (double)lua_tonumber(L, idx));
            bool plain = strspn(num, "-0123456789") == strlen(num);
            policy_text_add(t, "%s%s", num, plain ? ".0" : "");
        }
        break;
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        policy_text_add(t, "\"%.*s%s\"", len > 40 ? 40 : (int)len, s, len > 40 ? "..." : "");
        break;
    }
    case LUA_TBOOLEAN:
        policy_text_add(t, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TTABLE:
        policy_render_table(L, idx, t, depth);
        break;
    default:
        policy_text_add(t, "%s", luaL_typename(L, idx));
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Error messages                                                           */

/* Message handler of every protected call: a string error gets a traceback
 * (the debug library stays closed); other values pass unchanged. */
static int
l_policy_msgh(lua_State *L)
{
    if (lua_isstring(L, 1)) {
        luaL_traceback(L, L, lua_tostring(L, 1), 1);
    }
    return 1;
}

/* The message alone, prefixed with the chunk name when Lua did not put the
 * place there: it already names "chunk:line:", and clients never get a
 * traceback (the frames describe the engine's internals as much as the
 * policy's). */
static void
policy_format_traceback(const char *text, const char *chunk, char *out, size_t cap)
{
    const char *tb = strstr(text, "\nstack traceback:");
    size_t msg_len = tb != NULL ? (size_t)(tb - text) : strlen(text);
    size_t chunk_len = strlen(chunk);
    const char *prefix = strncmp(text, chunk, chunk_len) == 0 ? "" : chunk;
    const char *sep = prefix[0] != '\0' ? ": " : "";
    snprintf(out, cap, "%s%s%.*s", prefix, sep, (int)msg_len, text);
}

/* Describes the failure of a protected call (error value on top of L). */
static void
policy_describe_failure(struct policy_state *set, int status, const char *chunk, char *out,
                        size_t cap)
{
    lua_State *L = set->L;
    /* A trip wins over whatever error value reached the top: after a trip
     * the policy may have caught, rethrown or replaced the budget error. */
    if (set->budget.trip != POLICY_TRIP_NONE && set->budget.trip_msg[0] != '\0') {
        policy_format_traceback(set->budget.trip_msg, chunk, out, cap);
    } else if (status == LUA_ERRMEM && set->string_too_long) {
        snprintf(out, cap, "%s: policy exceeded its memory limit (a string longer than %zu bytes)",
                 chunk, set->string_object_bytes_max);
    } else if (status == LUA_ERRMEM) {
        snprintf(out, cap, "%s: policy exceeded its memory limit (%zu bytes)", chunk,
                 set->limits.memory_bytes_max);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        /* Only real strings: converting a number here could allocate. */
        policy_format_traceback(lua_tostring(L, -1), chunk, out, cap);
    } else {
        snprintf(out, cap, "%s: policy raised an error value of type %s", chunk,
                 luaL_typename(L, -1));
    }
}

/* ------------------------------------------------------------------------ */
/* Loading one module                                                       */

/* One module load, shared with the protected body through a light userdata.
 * Refusals that are not Lua errors (wrong shape, failed example) travel in
 * msg, so they need no error object and no allocation. */
struct policy_load {
    struct policy_state *set;
    enum policy_kind kind;
    const struct policy_source *src;
    int example;      /* 1-based example being run, 0 outside examples */
    bool compile_failed;
    bool compile_nomem;
    char msg[ENG_MSG_MAX]; /* a refusal that is not a Lua error */
};

static int policy_load_refuse(struct policy_load *ld, const char *fmt, ...) ENG_PRINTF(2, 3);

static int
policy_load_refuse(struct policy_load *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->msg, sizeof ld->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* [-0, +1, e] calls the function at fn with the ctx of the example at ex,
 * under the budget; pushes its result. */
static void
policy_call_example(lua_State *L, struct policy_state *set, int ex, int fn)
{
    lua_pushvalue(L, fn);
    lua_pushliteral(L, "ctx");
    lua_rawget(L, ex);
    policy_budget_begin(set);
    lua_call(L, 1, 1);
    policy_budget_settle(L, set);
}

/* [-0, +0, e] runs example `i` (table at ex) and compares with expect. */
static int
policy_run_example(lua_State *L, struct policy_load *ld, int ex, int fn)
{
    struct policy_state *set = ld->set;
    policy_call_example(L, set, ex, fn);
    int got = lua_gettop(L);
    /* Pure (PRODUCT.md §6): the same ctx twice gives the same answer; a
     * module counting its calls in an upvalue would price one booking
     * differently on each worker and at each recomputation. */
    policy_call_example(L, set, ex, fn);
    if (!policy_deep_equal(L, got, lua_gettop(L), 0, set->limits.convert_depth_max + 1)) {
        return policy_load_refuse(ld, "gave another answer when run again: a policy must be "
                                      "pure, keeping no state between calls");
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "expect");
    lua_rawget(L, ex);
    int expect = lua_gettop(L);
    if (!policy_deep_equal(L, expect, got, 0, set->limits.convert_depth_max + 1)) {
        char want_buf[POLICY_RENDER_BYTES_MAX], got_buf[POLICY_RENDER_BYTES_MAX];
        struct policy_text want_text, got_text;
        policy_text_init(&want_text, want_buf, sizeof want_buf);
        policy_text_init(&got_text, got_buf, sizeof got_buf);
        policy_render(L, expect, &want_text, 0);
        policy_render(L, got, &got_text, 0);
        return policy_load_refuse(ld, "expected %s got %s", want_buf, got_buf);
    }
    /* An example must also pass the checks a real call's result meets. */
    struct policy_conv cv;
    policy_conv_init(&cv, &set->limits);
    json_t *json = policy_to_json(L, &cv, got, 1);
    if (json == NULL) {
        return policy_load_refuse(ld, "%s", cv.msg);
    }
    json_decref(json);
    return 0;
}

/* [-0, +0, e] runs module.examples, a list of { ctx = ..., expect = ... }. */
static int
policy_run_examples(lua_State *L, struct policy_load *ld, int module, int fn)
{
    lua_pushliteral(L, "examples");
    int type = lua_rawget(L, module);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE) {
        return policy_load_refuse(ld, "examples must be a list (got %s)", lua_typename(L, type));
    }
    int examples = lua_gettop(L);
    lua_Unsigned n = lua_rawlen(L, examples);
    if (n > POLICY_EXAMPLES_MAX) {
        return policy_load_refuse(ld, "more than %d examples", POLICY_EXAMPLES_MAX);
    }
    for (lua_Unsigned i = 1; i <= n; i++) {
        ld->example = (int)i;
        if (lua_rawgeti(L, examples, (lua_Integer)i) != LUA_TTABLE) {
            return policy_load_refuse(ld, "must be a table { ctx = ..., expect = ... }");
        }
        if (policy_run_example(L, ld, lua_gettop(L), fn) != 0) {
            return -1;
        }
        lua_settop(L, examples);
    }
    ld->example = 0;
    lua_pop(L, 1);
    return 0;
}

/* [-1, +0, e] the protected body of a module load: compile (text only),
 * give the chunk its own _ENV, run it under a budget, check the table it
 * returns, run its examples and keep a reference to its function. */
static int
l_policy_load_module(lua_State *L)
{
    struct policy_load *ld = lua_touserdata(L, 1);
    struct policy_state *set = ld->set;
    char chunkname[POLICY_CHUNK_NAME_MAX + 1];
    snprintf(chunkname, sizeof chunkname, "@%s", set->chunk[ld->kind]);
    luaL_checkstack(L, 8, NULL);
    /* Mode "t": text only.  Lua does not verify bytecode, and crafted
     * bytecode can crash the interpreter (checklist #14). */
    int status = luaL_loadbufferx(L, ld->src->source, ld->src->len, chunkname, "t");
    if (status != LUA_OK) {
        /* Lua's message already names the chunk and line. */
        ld->compile_failed = true;
        ld->compile_nomem = status == LUA_ERRMEM;
        snprintf(ld->msg, sizeof ld->msg, "%s", lua_tostring(L, -1));
        return 0;
    }
    /* A fresh, empty _ENV per chunk: reads fall through to the frozen
     * globals, writes raise, so two kinds never share a global. */
    policy_push_env(L);
    const char *upvalue = lua_setupvalue(L, -2, 1); /* a main chunk's only upvalue: _ENV */
    ENG_ASSERT(upvalue != NULL);
    policy_budget_begin(set);
    lua_call(L, 0, 1);
    policy_budget_settle(L, set);
    int module = lua_gettop(L);
    if (lua_type(L, module) != LUA_TTABLE) {
        policy_load_refuse(ld, "a policy module must return a table (got %s)",
                           luaL_typename(L, module));
        return 0;
    }
    const char *fname = policy_kind_function(ld->kind);
    lua_pushstring(L, fname);
    if (lua_rawget(L, module) != LUA_TFUNCTION) {
        policy_load_refuse(ld, "the module has no function '%s'", fname);
        return 0;
    }
    int fn = lua_gettop(L);
    if (!set->is_copy && policy_run_examples(L, ld, module, fn) != 0) {
        return 0;
    }
    /* Only the function is kept; the module table (and its examples) can be
     * collected.  Upvalues keep whatever the function still uses. */
    lua_pushvalue(L, fn);
    set->fn_ref[ld->kind] = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Writes the final message of a failed load. */
static int
policy_load_error(struct policy_state *set, struct policy_load *ld, int status,
                  struct eng_error *err)
{
    const char *chunk = set->chunk[ld->kind];
    char text[ENG_MSG_MAX];
    enum eng_status code = ENG_EREJECTED;
    if (status != LUA_OK) {
        policy_describe_failure(set, status, chunk, text, sizeof text);
        code = status == LUA_ERRMEM && set->malloc_failed ? ENG_ENOMEM : ENG_EREJECTED;
    } else if (ld->compile_failed) {
        if (ld->compile_nomem) {
            snprintf(text, sizeof text, "%s: policy exceeded its memory limit while compiling",
                     chunk);
        } else {
            snprintf(text, sizeof text, "%s", ld->msg);
        }
    } else {
        struct policy_text t;
        policy_text_init(&t, text, sizeof text);
        policy_text_add(&t, "%s: %s", chunk, ld->msg);
    }
    if (ld->example == 0) {
        return eng_error_set(err, code, "%s", text);
    }
    /* "chunk: example 2: rest", without repeating a bare "chunk: ". */
    size_t chunk_len = strlen(chunk);
    const char *rest = text;
    if (strncmp(text, chunk, chunk_len) == 0 && strncmp(text + chunk_len, ": ", 2) == 0) {
        rest = text + chunk_len + 2;
    }
    return eng_error_set(err, code, "%s: example %d: %s", chunk, ld->example, rest);
}

static int
policy_module_load(struct policy_state *set, enum policy_kind kind,
                   const struct policy_source *src, struct eng_error *err)
{
    /* Stack: handler, body, &ld.  ld lives on this C stack for the duration
     * of the protected call only; the body never stores the pointer. */
    struct policy_load ld = {.set = set, .kind = kind, .src = src};
    lua_State *L = set->L;
    snprintf(set->chunk[kind], sizeof set->chunk[kind], "%s", src->name);
    int base = lua_gettop(L);
    lua_pushcfunction(L, l_policy_msgh);
    lua_pushcfunction(L, l_policy_load_module);
    lua_pushlightuserdata(L, &ld);
    policy_budget_begin(set);
    int status = lua_pcall(L, 1, 0, base + 1);
    policy_budget_end(set);
    int rc = 0;
    if (status != LUA_OK || ld.compile_failed || ld.msg[0] != '\0') {
        rc = policy_load_error(set, &ld, status, err);
    }
    lua_settop(L, base);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

void
policy_limits_default(struct policy_limits *limits)
{
    limits->memory_bytes_max = (size_t)8 * 1024 * 1024;
    limits->instructions_max = 1000000;
    /* The instruction budget is the limit that decides (deterministic, the
     * same on any machine); the wall clock is a backstop for time spent
     * where no hook runs.  At 50 ms, a busy machine's preemptions failed 2
     * of ~35,000 correct bookings; 2 s never trips for a policy inside its
     * budget, and still bounds one that is stuck in C. */
    limits->wall_ms_max = 2000;
    limits->source_bytes_max = (size_t)256 * 1024;
    limits->string_bytes_max = 4096;
    limits->convert_depth_max = 8;
    /* 100 full per-call budgets: a looping candidate stops after about 100
     * bookings (~1 s of Lua), while the default policies, charged under
     * 1,000 instructions a call, replay the whole booking cap well inside it. */
    limits->simulation_instructions_max = 100000000;
    limits->simulation_wall_ms_max = 2000;
    limits->simulation_bookings_max = 10000;
}

const char *
policy_kind_name(enum policy_kind kind)
{
    return (unsigned)kind < POLICY_KIND_COUNT ? policy_kind_names[kind] : "unknown";
}

const char *
policy_kind_function(enum policy_kind kind)
{
    return (unsigned)kind < POLICY_KIND_COUNT ? policy_kind_functions[kind] : "unknown";
}

int
policy_kind_parse(const char *name, enum policy_kind *out, struct eng_error *err)
{
    for (int k = 0; name != NULL && k < POLICY_KIND_COUNT; k++) {
        if (strcmp(name, policy_kind_names[k]) == 0) {
            *out = (enum policy_kind)k;
            return 0;
        }
    }
    return eng_error_set(err, ENG_EINVAL, "unknown policy kind '%.64s'",
                         name != NULL ? name : "(null)");
}

/* Limits come from configuration; refuse values that would make a bound
 * meaningless (a state too small to open, a depth that risks the C stack,
 * a deadline whose nanoseconds overflow). */
static int
policy_limits_check(const struct policy_limits *lim, struct eng_error *err)
{
    if (lim->memory_bytes_max < POLICY_MEMORY_BYTES_MIN || lim->memory_bytes_max > SIZE_MAX / 2) {
        return eng_error_set(err, ENG_EINVAL, "policy memory_bytes_max must be at least %zu",
                             POLICY_MEMORY_BYTES_MIN);
    }
    if (lim->instructions_max <= 0 || lim->wall_ms_max <= 0 ||
        lim->wall_ms_max > POLICY_WALL_MS_LIMIT) {
        return eng_error_set(err, ENG_EINVAL,
                             "policy instructions_max and wall_ms_max (<= 1 h) must be positive");
    }
    if (lim->source_bytes_max == 0 || lim->string_bytes_max == 0 ||
        lim->string_bytes_max > lim->memory_bytes_max / POLICY_REP_FACTOR) {
        return eng_error_set(err, ENG_EINVAL,
                             "policy source_bytes_max and string_bytes_max out of range");
    }
    if (lim->convert_depth_max < 1 || lim->convert_depth_max > POLICY_DEPTH_LIMIT) {
        return eng_error_set(err, ENG_EINVAL, "policy convert_depth_max must be 1..%d",
                             POLICY_DEPTH_LIMIT);
    }
    return 0;
}

/* The module a kind runs: the override when present, else the default. */
static int
policy_source_pick(const struct policy_source defaults[POLICY_KIND_COUNT],
                   const struct policy_source overrides[POLICY_KIND_COUNT], int k,
                   const struct policy_limits *lim, const struct policy_source **out,
                   struct eng_error *err)
{
    if (defaults[k].source == NULL || defaults[k].name == NULL) {
        return eng_error_set(err, ENG_EINVAL, "no default policy for kind '%s'",
                             policy_kind_names[k]);
    }
    const struct policy_source *src = &defaults[k];
    if (overrides != NULL && overrides[k].source != NULL) {
        src = &overrides[k];
    }
    if (src->name == NULL || strlen(src->name) >= POLICY_CHUNK_NAME_MAX - 1) {
        return eng_error_set(err, ENG_EINVAL, "policy chunk name missing or too long");
    }
    if (src->len > lim->source_bytes_max) {
        return eng_error_set(err, ENG_EREJECTED, "%s: source is %zu bytes, more than %zu",
                             src->name, src->len, lim->source_bytes_max);
    }
    if (src->len > 0 && src->source[0] == LUA_SIGNATURE[0]) {
        /* Mode "t" refuses it too; say so plainly before Lua sees it. */
        return eng_error_set(err, ENG_EREJECTED,
                             "%s: binary chunks are not accepted (text only)", src->name);
    }
    *out = src;
    return 0;
}

/* Closes the state and frees it.  Only the set's last reference (or a
 * load that failed before handing the set out) or the thread that owns a
 * copy gets here, so no thread can be inside L.  Policies cannot register
 * finalizers, so lua_close runs none of their code. */
static void
policy_state_destroy(struct policy_state *set)
{
    if (set->L != NULL) {
        lua_close(set->L);
    }
    free(set);
}

/* Creates the state and its sandbox. */
static int
policy_state_new(struct policy_state **out, const struct policy_limits *lim, struct eng_error *err)
{
    struct policy_state *set = calloc(1, sizeof *set);
    if (set == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory creating a policy set");
    }
    /* The set owns the allocator's state, so it must exist (and hold the
     * limits) before lua_newstate makes its first allocation. */
    set->limits = *lim;
    set->string_object_bytes_max = lim->memory_bytes_max / POLICY_STRING_OBJECT_SHARE;
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        set->fn_ref[k] = LUA_NOREF;
    }
    set->L = lua_newstate(policy_alloc, set);
    if (set->L == NULL) {
        policy_state_destroy(set);
        return eng_error_set(err, ENG_ENOMEM, "cannot create a Lua state");
    }
    *(struct policy_state **)lua_getextraspace(set->L) = set;
    lua_atpanic(set->L, policy_panic);
    /* Each call makes short-lived tables (ctx, result): generational
     * collection reclaims them cheaply as allocation proceeds. */
    lua_gc(set->L, LUA_GCGEN, 0, 0);
    /* Before any code runs, so every later thread would inherit it. */
    lua_sethook(set->L, policy_hook, LUA_MASKCOUNT, POLICY_HOOK_INSTRUCTIONS);
    /* Opening libraries allocates and may fail: protected, like all else. */
    lua_pushcfunction(set->L, l_policy_sandbox_open);
    if (lua_pcall(set->L, 0, 0, 0) != LUA_OK) {
        policy_state_destroy(set);
        return eng_error_set(err, ENG_ENOMEM, "cannot open the policy sandbox (memory)");
    }
    *out = set;
    return 0;
}

/* Builds a state from the chosen module of each kind; examples run unless
 * the state is a copy.  On failure nothing is left. */
static int
policy_state_load(struct policy_state **out, const struct policy_source *chosen[POLICY_KIND_COUNT],
                  const struct policy_limits *lim, bool is_copy, struct eng_error *err)
{
    struct policy_state *st = NULL;
    int rc = policy_state_new(&st, lim, err);
    if (rc == 0) {
        st->is_copy = is_copy;
    }
    for (int k = 0; rc == 0 && k < POLICY_KIND_COUNT; k++) {
        rc = policy_module_load(st, (enum policy_kind)k, chosen[k], err);
    }
    if (rc != 0) {
        if (st != NULL) {
            policy_state_destroy(st);
        }
        return rc;
    }
    /* Drop the garbage of compiling and of the examples before serving. */
    lua_gc(st->L, LUA_GCCOLLECT);
    *out = st;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Sets: a checked primary state, and copies in pooled holders              */

/* A holder keeps copies of at most this many sets (LRU), and the process
 * at most POLICY_COPIES_MAX copies in all: past either bound a call waits
 * for the primary state instead, so memory stays bounded whatever the
 * number of worker threads (each copy is capped at memory_bytes_max). */
#define POLICY_THREAD_COPIES 8
#define POLICY_COPIES_MAX 256

struct policy_set {
    atomic_int refs;
    uint64_t serial; /* policy_set_serial: never reused in the process */
    atomic_bool retired; /* no longer served: holders drop their copies */
    atomic_bool pinned;  /* a total budget: every call runs on the primary */
    pthread_mutex_t mutex; /* held by every call while it is inside primary */
    struct policy_state *primary;
    struct policy_limits limits;
    /* The sources the primary was built from (owned), to build copies. */
    struct policy_source src[POLICY_KIND_COUNT];
};

struct policy_thread_copy {
    struct policy_set *set; /* retained while the copy lives */
    struct policy_state *st;
    uint64_t used;          /* LRU tick */
};

/* A holder of copies, taken by one call at a time from a process-wide
 * stack (last in, first out) and given back when the call returns.  The
 * holder a call gets is the one the last call gave back, so its states are
 * the ones still in the CPU's caches: a few holders serve every thread,
 * where a holder per thread (64 workers at 64 connections) made each call
 * start on a cold state.  The stack only grows to the number of calls that
 * ever overlapped. */
struct policy_thread {
    struct policy_thread_copy copy[POLICY_THREAD_COPIES];
    uint64_t tick;
    struct policy_thread *next; /* on the idle stack */
};

static atomic_int policy_copies_count;
static atomic_uint_least64_t policy_set_serials;
static pthread_mutex_t policy_holders_mu = PTHREAD_MUTEX_INITIALIZER;
static struct policy_thread *policy_holders_idle;

static void
policy_copy_drop(struct policy_thread_copy *c)
{
    if (c->st != NULL) {
        policy_state_destroy(c->st);
        atomic_fetch_sub_explicit(&policy_copies_count, 1, memory_order_relaxed);
    }
    policy_set_release(c->set);
    *c = (struct policy_thread_copy){0};
}

/* The holder the last call gave back, or a new one (NULL without memory). */
static struct policy_thread *
policy_thread_get(void)
{
    pthread_mutex_lock(&policy_holders_mu);
    struct policy_thread *t = policy_holders_idle;
    if (t != NULL) {
        policy_holders_idle = t->next;
    }
    pthread_mutex_unlock(&policy_holders_mu);
    return t != NULL ? t : calloc(1, sizeof *t);
}

static void
policy_thread_put(struct policy_thread *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&policy_holders_mu);
    t->next = policy_holders_idle;
    policy_holders_idle = t;
    pthread_mutex_unlock(&policy_holders_mu);
}

void
policy_copies_flush(void)
{
    pthread_mutex_lock(&policy_holders_mu);
    struct policy_thread *t = policy_holders_idle;
    policy_holders_idle = NULL;
    pthread_mutex_unlock(&policy_holders_mu);
    while (t != NULL) {
        struct policy_thread *next = t->next;
        for (int i = 0; i < POLICY_THREAD_COPIES; i++) {
            if (t->copy[i].set != NULL) {
                policy_copy_drop(&t->copy[i]);
            }
        }
        free(t);
        t = next;
    }
}

/* The holder's copy of `set`, dropping on the way the copies of sets no
 * longer served (except `set` itself, which a request may still hold). */
static struct policy_state *
policy_thread_find(struct policy_thread *t, struct policy_set *set)
{
    struct policy_state *found = NULL;
    t->tick++;
    for (int i = 0; i < POLICY_THREAD_COPIES; i++) {
        struct policy_thread_copy *c = &t->copy[i];
        if (c->set == set) {
            c->used = t->tick;
            found = c->st;
        } else if (c->set != NULL &&
                   atomic_load_explicit(&c->set->retired, memory_order_relaxed)) {
            policy_copy_drop(c);
        }
    }
    return found;
}

/* Makes the holder a copy of `set` (NULL when a bound is reached or the
 * copy cannot be built: the caller then waits for the primary). */
static struct policy_state *
policy_thread_copy_make(struct policy_thread *t, struct policy_set *set)
{
    if (atomic_fetch_add_explicit(&policy_copies_count, 1, memory_order_relaxed) >=
        POLICY_COPIES_MAX) {
        atomic_fetch_sub_explicit(&policy_copies_count, 1, memory_order_relaxed);
        return NULL;
    }
    const struct policy_source *chosen[POLICY_KIND_COUNT];
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        chosen[k] = &set->src[k];
    }
    struct policy_state *st = NULL;
    struct eng_error err = {0};
    if (policy_state_load(&st, chosen, &set->limits, true, &err) != 0) {
        atomic_fetch_sub_explicit(&policy_copies_count, 1, memory_order_relaxed);
        return NULL;
    }
    struct policy_thread_copy *slot = &t->copy[0];
    for (int i = 0; i < POLICY_THREAD_COPIES; i++) {
        if (t->copy[i].set == NULL) {
            slot = &t->copy[i];
            break;
        }
        if (t->copy[i].used < slot->used) {
            slot = &t->copy[i];
        }
    }
    if (slot->set != NULL) {
        policy_copy_drop(slot);
    }
    policy_set_retain(set);
    *slot = (struct policy_thread_copy){.set = set, .st = st, .used = t->tick};
    return st;
}

static void
policy_set_free(struct policy_set *set)
{
    if (set->primary != NULL) {
        policy_state_destroy(set->primary);
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free((char *)set->src[k].name);
        free((char *)set->src[k].source);
    }
    pthread_mutex_destroy(&set->mutex);
    free(set);
}

/* Copies the chosen sources into the set, for its later copies. */
static int
policy_set_keep_sources(struct policy_set *set,
                        const struct policy_source *chosen[POLICY_KIND_COUNT],
                        struct eng_error *err)
{
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        size_t name_len = strlen(chosen[k]->name);
        char *name = malloc(name_len + 1);
        char *text = malloc(chosen[k]->len + 1);
        if (name == NULL || text == NULL) {
            free(name);
            free(text);
            return eng_error_set(err, ENG_ENOMEM, "out of memory creating a policy set");
        }
        memcpy(name, chosen[k]->name, name_len + 1);
        if (chosen[k]->len > 0) {
            memcpy(text, chosen[k]->source, chosen[k]->len);
        }
        text[chosen[k]->len] = '\0';
        set->src[k] = (struct policy_source){name, text, chosen[k]->len};
    }
    return 0;
}

int
policy_set_load(struct policy_set **out, const struct policy_source defaults[POLICY_KIND_COUNT],
                const struct policy_source overrides[POLICY_KIND_COUNT],
                const struct policy_limits *limits, struct eng_error *err)
{
    ENG_ASSERT(out != NULL && defaults != NULL);
    struct policy_limits lim;
    if (limits != NULL) {
        lim = *limits;
    } else {
        policy_limits_default(&lim);
    }
    /* Validate everything that needs no Lua first, then build the state and
     * load the modules in kind order; the first failure stops the load and
     * *out stays untouched. */
    int rc = policy_limits_check(&lim, err);
    const struct policy_source *chosen[POLICY_KIND_COUNT] = {0};
    for (int k = 0; rc == 0 && k < POLICY_KIND_COUNT; k++) {
        rc = policy_source_pick(defaults, overrides, k, &lim, &chosen[k], err);
    }
    struct policy_state *st = NULL;
    if (rc == 0) {
        rc = policy_state_load(&st, chosen, &lim, false, err);
    }
    if (rc != 0) {
        return rc;
    }
    struct policy_set *set = calloc(1, sizeof *set);
    if (set == NULL) {
        policy_state_destroy(st);
        return eng_error_set(err, ENG_ENOMEM, "out of memory creating a policy set");
    }
    if (pthread_mutex_init(&set->mutex, NULL) != 0) {
        free(set);
        policy_state_destroy(st);
        return eng_error_set(err, ENG_ENOMEM, "cannot create a policy set mutex");
    }
    atomic_init(&set->refs, 1);
    set->serial = atomic_fetch_add_explicit(&policy_set_serials, 1, memory_order_relaxed) + 1;
    atomic_init(&set->retired, false);
    atomic_init(&set->pinned, false);
    set->primary = st;
    set->limits = lim;
    if (policy_set_keep_sources(set, chosen, err) != 0) {
        policy_set_free(set);
        return err->status;
    }
    *out = set;
    return 0;
}

void
policy_set_retain(struct policy_set *set)
{
    ENG_ASSERT(set != NULL);
    int before = atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    ENG_ASSERT(before > 0);
}

void
policy_set_release(struct policy_set *set)
{
    if (set == NULL) {
        return;
    }
    /* acq_rel: every use by other holders happens before the close. */
    int before = atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel);
    ENG_ASSERT(before > 0);
    if (before == 1) {
        policy_set_free(set);
    }
}

void
policy_set_retire(struct policy_set *set)
{
    ENG_ASSERT(set != NULL);
    atomic_store_explicit(&set->retired, true, memory_order_relaxed);
}

/* Takes what the call just made used off the total.  The caller holds
 * the set's mutex. */
static void
policy_total_charge(struct policy_state *set)
{
    if (!set->total_on || set->total_instructions_left < 0) {
        return;
    }
    const struct policy_budget *b = &set->budget;
    int64_t used = b->instructions_given - (b->instructions_left > 0 ? b->instructions_left : 0);
    set->total_instructions_left -= used < set->total_instructions_left
                                        ? used
                                        : set->total_instructions_left;
}

/* 0 while the total lasts, else ENG_ELIMIT naming the spent part.  With
 * met_instructions or met_time the call that just ran met that part of the
 * total (a trip whose bound was the total): it is spent even if a last
 * step left a few instructions.  The caller holds the set's mutex. */
static int
policy_total_spent(struct policy_state *set, bool met_instructions, bool met_time,
                   struct eng_error *err)
{
    if (!set->total_on) {
        return 0;
    }
    if (met_instructions || set->total_instructions_left == 0) {
        set->total_instructions_left = 0;
        eng_error_code(err, ENG_ELIMIT, "limit_exceeded",
                       "the policy calls of this request used their total budget of %lld "
                       "instructions",
                       (long long)set->total_instructions_max);
        eng_error_field(err, set->total_instructions_limit);
        return ENG_ELIMIT;
    }
    if (met_time || (set->total_deadline_ns != 0 && policy_now_ns() >= set->total_deadline_ns)) {
        set->total_deadline_ns = 1; /* in the past for good */
        eng_error_code(err, ENG_ELIMIT, "limit_exceeded",
                       "this request used its total time of %lld ms for policy work",
                       (long long)set->total_wall_ms_max);
        eng_error_field(err, set->total_wall_limit);
        return ENG_ELIMIT;
    }
    return 0;
}

void
policy_set_total_budget(struct policy_set *pset, int64_t instructions_max,
                        const char *instructions_limit, int64_t wall_ms_max,
                        const char *wall_limit)
{
    ENG_ASSERT(pset != NULL);
    pthread_mutex_lock(&pset->mutex);
    /* A total is shared by every call: they all run on the primary. */
    atomic_store(&pset->pinned, true);
    struct policy_state *set = pset->primary;
    set->total_on = instructions_max > 0 || wall_ms_max > 0;
    set->total_instructions_max = instructions_max;
    set->total_instructions_left = instructions_max > 0 ? instructions_max : -1;
    set->total_instructions_limit = instructions_limit != NULL ? instructions_limit : "";
    set->total_wall_ms_max = wall_ms_max;
    if (wall_ms_max > POLICY_WALL_MS_LIMIT) {
        wall_ms_max = POLICY_WALL_MS_LIMIT; /* keeps the nanoseconds in range */
    }
    set->total_deadline_ns =
        wall_ms_max > 0 ? policy_now_ns() + (uint64_t)wall_ms_max * 1000000u : 0;
    set->total_wall_limit = wall_limit != NULL ? wall_limit : "";
    pthread_mutex_unlock(&pset->mutex);
}

int
policy_set_total_check(struct policy_set *pset, struct eng_error *err)
{
    ENG_ASSERT(pset != NULL);
    pthread_mutex_lock(&pset->mutex);
    int rc = policy_total_spent(pset->primary, false, false, err);
    pthread_mutex_unlock(&pset->mutex);
    return rc;
}

/* The first slot of a kept part's set: FNV-1a of the name, mixed with
 * keep. */
static size_t
policy_template_set(const struct policy_ctx_part *p)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const char *c = p->name; *c != '\0'; c++) {
        h = (h ^ (unsigned char)*c) * UINT64_C(1099511628211);
    }
    h ^= (uint64_t)p->keep[0] * UINT64_C(0x9E3779B97F4A7C15);
    h = (h ^ (h >> 29)) * UINT64_C(0xBF58476D1CE4E5B9);
    h ^= (uint64_t)p->keep[1] * UINT64_C(0xC2B2AE3D27D4EB4F);
    h ^= h >> 32;
    return (size_t)(h & (POLICY_TEMPLATES / POLICY_TEMPLATE_WAYS - 1)) * POLICY_TEMPLATE_WAYS;
}

/* Whether a kept part's value may be kept: a container with a name that
 * fits a template. */
static bool
policy_part_keepable(const struct policy_ctx_part *p)
{
    return !p->is_integer && p->string == NULL && p->fields == NULL && p->value != NULL &&
           (p->keep[0] != 0 || p->keep[1] != 0) && p->name != NULL &&
           (json_is_object(p->value) || json_is_array(p->value)) &&
           strlen(p->name) < POLICY_TEMPLATE_NAME_MAX;
}

/* The template holding a keepable part, or NULL. */
static struct policy_template *
policy_template_find(struct policy_state *set, const struct policy_ctx_part *p)
{
    struct policy_template *t = &set->templates[policy_template_set(p)];
    for (int w = 0; w < POLICY_TEMPLATE_WAYS; w++) {
        if (t[w].ref != 0 && t[w].keep[0] == p->keep[0] && t[w].keep[1] == p->keep[1] &&
            strcmp(t[w].name, p->name) == 0) {
            t[w].used = ++set->template_tick;
            return &t[w];
        }
    }
    return NULL;
}

/* [-0, +1, e] a keepable part's tables: the kept ones, or converted (and
 * kept, replacing the least recently used of its set, when that keeps
 * the templates within their share of memory). */
static void
policy_push_kept(lua_State *L, struct policy_state *set, const struct policy_ctx_part *p,
                 int depth)
{
    struct policy_template *t = policy_template_find(set, p);
    if (t != NULL) {
        set->kept_stats.hits++;
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
        return;
    }
    size_t before = set->memory_bytes_used;
    policy_push_json(L, &set->limits, p->value, depth + 1, true);
    set->kept_stats.conversions++;
    /* What the conversion allocated (a collection step during it may free
     * some: an estimate, never below 0). */
    size_t bytes = set->memory_bytes_used > before ? set->memory_bytes_used - before : 0;
    struct policy_template *victim = &set->templates[policy_template_set(p)];
    for (int w = 1; w < POLICY_TEMPLATE_WAYS && victim->ref != 0; w++) {
        struct policy_template *c = &set->templates[policy_template_set(p) + (size_t)w];
        if (c->ref == 0 || c->used < victim->used) {
            victim = c;
        }
    }
    size_t share = set->limits.memory_bytes_max / POLICY_TEMPLATE_SHARE;
    size_t kept = set->template_bytes - (victim->ref != 0 ? victim->bytes : 0);
    if (bytes > share || kept > share - bytes) {
        set->kept_stats.not_kept++;
        return; /* used by this call only */
    }
    lua_pushvalue(L, -1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise: the slot is left as it was */
    if (victim->ref != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, victim->ref);
        set->kept_stats.replaced++;
    }
    set->template_bytes = kept + bytes;
    victim->ref = ref;
    victim->keep[0] = p->keep[0];
    victim->keep[1] = p->keep[1];
    victim->used = ++set->template_tick;
    victim->bytes = bytes;
    snprintf(victim->name, sizeof victim->name, "%s", p->name);
}

/* [-0, +1, e] the value of one ctx part: a kept container from the state's
 * templates (converted and kept on a miss: policy_push_kept), anything
 * else converted afresh. */
static void policy_push_fields(lua_State *L, struct policy_state *set,
                               const struct policy_ctx_part *fields, int count, int depth);

static void
policy_push_part(lua_State *L, struct policy_state *set, const struct policy_ctx_part *p,
                 int depth)
{
    if (p->is_integer) {
        lua_pushinteger(L, (lua_Integer)p->integer);
        return;
    }
    if (p->string != NULL) {
        size_t len = strlen(p->string);
        if (len > set->limits.string_bytes_max) {
            luaL_error(L, "ctx: string longer than %d bytes", (int)set->limits.string_bytes_max);
        }
        lua_pushlstring(L, p->string, len);
        return;
    }
    if (p->fields != NULL) {
        policy_push_fields(L, set, p->fields, p->count, depth + 1);
        return;
    }
    if (p->value == NULL) {
        lua_pushnil(L);
        return;
    }
    if (!policy_part_keepable(p)) {
        policy_push_json(L, &set->limits, p->value, depth + 1, false);
        return;
    }
    policy_push_kept(L, set, p, depth);
}

/* Drops every kept part (after a memory error, so the policies get their
 * whole memory back). */
static void
policy_templates_drop(struct policy_state *set)
{
    for (int i = 0; i < POLICY_TEMPLATES; i++) {
        if (set->templates[i].ref != 0) {
            luaL_unref(set->L, LUA_REGISTRYINDEX, set->templates[i].ref);
            set->templates[i].ref = 0;
        }
    }
    set->template_bytes = 0;
}

/* [-0, +1, e] a table of parts (at nesting depth `depth`, ctx being 1);
 * `extra` more hash slots are made for fields added later.  With `call`
 * (ctx itself), a kept part not among the state's templates is left out
 * and marked pending in call->parts_pending: converted if a policy reads
 * it (l_policy_ctx_index, policy_lazy_fill), else never. */
static void
policy_push_fields_n(lua_State *L, struct policy_state *set, const struct policy_ctx_part *fields,
                     int count, int depth, int extra, struct policy_call *call)
{
    if (depth > set->limits.convert_depth_max) {
        luaL_error(L, "ctx: nested deeper than %d levels", set->limits.convert_depth_max);
    }
    bool list = count > 0 && fields[0].name == NULL;
    lua_createtable(L, list ? count : 0, list ? 0 : count + extra);
    for (int i = 0; i < count; i++) {
        if (call != NULL && i < 32 && policy_part_keepable(&fields[i])) {
            struct policy_template *t = policy_template_find(set, &fields[i]);
            if (t == NULL) {
                call->parts_pending |= UINT32_C(1) << i;
                set->kept_stats.deferred++;
                continue;
            }
            set->kept_stats.hits++;
            lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
        } else {
            policy_push_part(L, set, &fields[i], depth);
        }
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1); /* absent (a hole in a list, as JSON null) */
        } else if (fields[i].name == NULL) {
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        } else {
            lua_setfield(L, -2, fields[i].name); /* a new table: raw */
        }
    }
}

static void
policy_push_fields(lua_State *L, struct policy_state *set, const struct policy_ctx_part *fields,
                   int count, int depth)
{
    policy_push_fields_n(L, set, fields, count, depth, 0, NULL);
}

/* [-0, +1, e] the ctx table built from the call's parts. */
static void
policy_push_parts(lua_State *L, struct policy_state *set, struct policy_call *call)
{
    const struct policy_ctx *pc = call->parts;
    luaL_checkstack(L, 2 * (set->limits.convert_depth_max + 2) + 8, "ctx nested too deeply");
    call->parts_pending = 0;
    policy_push_fields_n(L, set, pc->parts, pc->count, 1, pc->lazy_name != NULL ? 1 : 0, call);
    if (pc->lazy_name != NULL || call->parts_pending != 0) {
        lua_getfield(L, LUA_REGISTRYINDEX, POLICY_CTX_KEY);
        lua_setmetatable(L, -2);
    }
    call->ctx_table = lua_topointer(L, -1);
}

/* [-0, +0, e] takes call i's result (on top): converted to JSON into
 * call->results[i], or read into call->picks[i] (directly when it can be,
 * else from its conversion); raises when it does not convert.  Returns
 * whether the next call of the sequence runs. */
static bool
policy_take_result(lua_State *L, struct policy_call *call, int i)
{
    struct policy_state *set = call->set;
    struct policy_pick *pick = call->picks != NULL ? &call->picks[i] : NULL;
    json_t *result = NULL;
    if (pick == NULL || !policy_pick_direct(L, &set->limits, lua_gettop(L), pick)) {
        struct policy_conv cv;
        policy_conv_init(&cv, &set->limits);
        /* The converter never raises and frees its partial tree itself, so
         * a failure leaves nothing to clean up; raising happens only after. */
        result = policy_to_json(L, &cv, lua_gettop(L), 1);
        if (result == NULL) {
            lua_pushstring(L, cv.msg);
            lua_error(L);
        }
        if (pick != NULL) {
            policy_pick_json(result, pick);
            json_decref(result);
            result = NULL;
        } else {
            call->results[i] = result;
        }
    }
    if (i + 1 >= call->count) {
        return false;
    }
    if (pick != NULL) {
        return call->pick_next == NULL || call->pick_next(call->next_ud, call->kinds[i], pick);
    }
    return call->next == NULL || call->next(call->next_ud, call->kinds[i], result);
}

/* [-1, +0, e] the protected body: ctx -> Lua once, then each policy under
 * its own budget, its result -> JSON with raw accessors, and the caller's
 * verdict on whether the next call runs. */
static int
l_policy_call(lua_State *L)
{
    struct policy_call *call = lua_touserdata(L, 1);
    struct policy_state *set = call->set;
    luaL_checkstack(L, 4, NULL);
    /* ctx is built fresh for every call (every sequence), so a policy that
     * writes into it cannot leave anything behind for the next request;
     * the kept parts in it are read-only for the same reason. */
    if (call->parts != NULL) {
        policy_push_parts(L, set, call);
    } else if (call->ctx != NULL) {
        luaL_checkstack(L, 2 * (set->limits.convert_depth_max + 2) + 4, "ctx nested too deeply");
        policy_push_json(L, &set->limits, call->ctx, 1, false);
    } else {
        lua_pushnil(L);
    }
    int ctx = lua_gettop(L);
    for (int i = 0; i < call->count; i++) {
        call->current = i;
        if (i > 0) {
            policy_budget_begin(set); /* the first began before the protected call */
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, set->fn_ref[call->kinds[i]]);
        lua_pushvalue(L, ctx);
        lua_call(L, 1, 1);
        policy_budget_settle(L, set);
        bool go_on = policy_take_result(L, call, i);
        lua_settop(L, ctx);
        if (!go_on) {
            break;
        }
    }
    return 0;
}

/* Calls on one state; the caller has it to itself (the primary under the
 * set's mutex, or the thread's own copy). */
static int
policy_state_call(struct policy_state *set, struct policy_call *call, struct eng_error *err)
{
    call->set = set;
    if (policy_total_spent(set, false, false, err) != 0) {
        return ENG_ELIMIT;
    }
    lua_State *L = set->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, l_policy_msgh);
    lua_pushcfunction(L, l_policy_call);
    lua_pushlightuserdata(L, call);
    policy_budget_begin(set);
    set->cur_call = call;
    int status = lua_pcall(L, 1, 0, base + 1);
    set->cur_call = NULL;
    policy_budget_end(set);
    int rc = 0;
    policy_total_charge(set);
    if (call->lazy_failed) {
        /* The engine's own failure (storage): not the policy's, whatever
         * the policy made of the error. */
        *err = call->lazy_err;
        rc = err->status != ENG_OK ? err->status
                                   : eng_error_set(err, ENG_ESTORE, "a lazy ctx field failed");
    } else if (call->part_failed && status == LUA_OK) {
        /* A kept part's conversion raised (too deep, too long, out of
         * memory) and the policy caught it: the call fails as it would
         * have with the part converted up front. */
        rc = eng_error_set(err, set->malloc_failed ? ENG_ENOMEM : ENG_EPOLICY,
                           "%s: ctx.%s could not be converted", set->chunk[call->kinds[call->current]],
                           call->parts->parts[call->part_failed_index].name);
    } else if (status != LUA_OK && set->budget.trip != POLICY_TRIP_NONE &&
        policy_total_spent(set, set->budget.trip == POLICY_TRIP_INSTRUCTIONS &&
                                    set->budget.total_bounds_instructions,
                           set->budget.trip == POLICY_TRIP_TIME && set->budget.total_bounds_time,
                           err) != 0) {
        /* The call met the total, not its own budget: the caller's limit. */
        rc = ENG_ELIMIT;
    } else if (status != LUA_OK) {
        char text[ENG_MSG_MAX];
        policy_describe_failure(set, status, set->chunk[call->kinds[call->current]], text,
                                sizeof text);
        enum eng_status code = status == LUA_ERRMEM && set->malloc_failed ? ENG_ENOMEM
                                                                          : ENG_EPOLICY;
        rc = eng_error_set(err, code, "%s", text);
    }
    if (rc != 0 && call->results != NULL) {
        for (int i = 0; i < call->count; i++) {
            json_decref(call->results[i]);
            call->results[i] = NULL;
        }
    }
    lua_settop(L, base);
    /* The collector keeps pace with allocation by itself; after a memory
     * error a full collection gives the next call its whole budget back. */
    if (status == LUA_ERRMEM || call->part_failed) {
        policy_templates_drop(set);
        lua_gc(L, LUA_GCCOLLECT);
    }
    return rc;
}

/* Runs `call` on a state of the set.  The copy in the holder this call
 * takes when it has one; else the primary when it is free; else a new copy
 * in the holder (no waiting), within the bounds; else wait for the
 * primary.  A copy is built from the very sources the primary was, so
 * every state of a set answers alike.  Locks are taken and released
 * outside the protected call, so no Lua error (longjmp) can ever cross
 * one. */
static int
policy_set_run(struct policy_set *set, struct policy_call *call, struct eng_error *err)
{
    struct policy_state *own = NULL;
    struct policy_thread *t = NULL;
    if (!atomic_load_explicit(&set->pinned, memory_order_relaxed)) {
        t = policy_thread_get();
        own = t != NULL ? policy_thread_find(t, set) : NULL;
    }
    if (own == NULL) {
        if (pthread_mutex_trylock(&set->mutex) == 0) {
            policy_thread_put(t);
            int rc = policy_state_call(set->primary, call, err);
            pthread_mutex_unlock(&set->mutex);
            return rc;
        }
        own = t != NULL ? policy_thread_copy_make(t, set) : NULL;
    }
    if (own != NULL) {
        int rc = policy_state_call(own, call, err);
        policy_thread_put(t);
        return rc;
    }
    policy_thread_put(t);
    pthread_mutex_lock(&set->mutex);
    int rc = policy_state_call(set->primary, call, err);
    pthread_mutex_unlock(&set->mutex);
    return rc;
}

int
policy_set_call(struct policy_set *set, enum policy_kind kind, const json_t *ctx,
                json_t **result, struct eng_error *err)
{
    ENG_ASSERT(set != NULL && result != NULL);
    *result = NULL;
    if ((unsigned)kind >= POLICY_KIND_COUNT) {
        return eng_error_set(err, ENG_EINVAL, "unknown policy kind %d", (int)kind);
    }
    struct policy_call call = {.kinds = &kind, .count = 1, .ctx = ctx, .results = result};
    return policy_set_run(set, &call, err);
}

int
policy_set_call_seq(struct policy_set *set, const enum policy_kind *kinds, int count,
                    const json_t *ctx, policy_next_fn next, void *ud, json_t **results,
                    struct eng_error *err)
{
    ENG_ASSERT(set != NULL && kinds != NULL && results != NULL && count > 0);
    for (int i = 0; i < count; i++) {
        results[i] = NULL;
        if ((unsigned)kinds[i] >= POLICY_KIND_COUNT) {
            return eng_error_set(err, ENG_EINVAL, "unknown policy kind %d", (int)kinds[i]);
        }
    }
    if (atomic_load_explicit(&set->pinned, memory_order_relaxed)) {
        /* A total budget is charged call by call: keep them apart. */
        for (int i = 0; i < count; i++) {
            int rc = policy_set_call(set, kinds[i], ctx, &results[i], err);
            if (rc != 0) {
                for (int j = 0; j < i; j++) {
                    json_decref(results[j]);
                    results[j] = NULL;
                }
                return rc;
            }
            if (i + 1 < count && next != NULL && !next(ud, kinds[i], results[i])) {
                break;
            }
        }
        return 0;
    }
    struct policy_call call = {.kinds = kinds, .count = count, .ctx = ctx, .next = next,
                               .next_ud = ud, .results = results};
    return policy_set_run(set, &call, err);
}

/* policy_set_call_parts and its picked form: `proto` holds next or
 * pick_next, next_ud, and results or picks (for the whole sequence). */
static int
policy_set_call_parts_run(struct policy_set *set, const enum policy_kind *kinds, int count,
                          struct policy_ctx *ctx, const struct policy_call *proto,
                          struct eng_error *err)
{
    ENG_ASSERT(set != NULL && kinds != NULL && count > 0 && ctx != NULL);
    ENG_ASSERT(ctx->lazy_name == NULL || ctx->lazy != NULL);
    ctx->lazy_read = false;
    for (int i = 0; i < count; i++) {
        if (proto->results != NULL) {
            proto->results[i] = NULL;
        }
        if ((unsigned)kinds[i] >= POLICY_KIND_COUNT) {
            return eng_error_set(err, ENG_EINVAL, "unknown policy kind %d", (int)kinds[i]);
        }
    }
    /* A total budget is charged call by call (policy_set_call_seq): each
     * call then gets a ctx of its own. */
    bool apart = atomic_load_explicit(&set->pinned, memory_order_relaxed);
    for (int i = 0; i < count; i++) {
        struct policy_call call = *proto;
        call.kinds = kinds + i;
        call.count = apart ? 1 : count - i;
        call.parts = ctx;
        call.results = proto->results != NULL ? proto->results + i : NULL;
        call.picks = proto->picks != NULL ? proto->picks + i : NULL;
        int rc = policy_set_run(set, &call, err);
        if (rc != 0) {
            for (int j = 0; j < i && proto->results != NULL; j++) {
                json_decref(proto->results[j]);
                proto->results[j] = NULL;
            }
            return rc;
        }
        if (!apart || i + 1 >= count) {
            break;
        }
        bool go_on = proto->picks != NULL
                         ? proto->pick_next == NULL ||
                               proto->pick_next(proto->next_ud, kinds[i], &proto->picks[i])
                         : proto->next == NULL ||
                               proto->next(proto->next_ud, kinds[i], proto->results[i]);
        if (!go_on) {
            break;
        }
    }
    return 0;
}

int
policy_set_call_parts(struct policy_set *set, const enum policy_kind *kinds, int count,
                      struct policy_ctx *ctx, policy_next_fn next, void *ud, json_t **results,
                      struct eng_error *err)
{
    ENG_ASSERT(results != NULL);
    const struct policy_call proto = {.next = next, .next_ud = ud, .results = results};
    return policy_set_call_parts_run(set, kinds, count, ctx, &proto, err);
}

int
policy_set_call_parts_pick(struct policy_set *set, const enum policy_kind *kinds, int count,
                           struct policy_ctx *ctx, policy_pick_next_fn next, void *ud,
                           struct policy_pick *picks, struct eng_error *err)
{
    ENG_ASSERT(picks != NULL);
    for (int i = 0; i < count; i++) {
        ENG_ASSERT(picks[i].count >= 0 && picks[i].count <= POLICY_PICK_FIELDS_MAX);
        ENG_ASSERT(picks[i].count == 0 || picks[i].names != NULL);
    }
    const struct policy_call proto = {.pick_next = next, .next_ud = ud, .picks = picks};
    return policy_set_call_parts_run(set, kinds, count, ctx, &proto, err);
}

void
policy_set_kept_stats(struct policy_set *set, struct policy_kept_stats *st)
{
    ENG_ASSERT(set != NULL && st != NULL);
    pthread_mutex_lock(&set->mutex);
    *st = set->primary->kept_stats;
    st->kept = 0;
    for (int i = 0; i < POLICY_TEMPLATES; i++) {
        st->kept += set->primary->templates[i].ref != 0;
    }
    st->bytes = set->primary->template_bytes;
    pthread_mutex_unlock(&set->mutex);
}

uint64_t
policy_set_serial(const struct policy_set *set)
{
    ENG_ASSERT(set != NULL);
    return set->serial;
}

int
policy_copies_live(void)
{
    return atomic_load_explicit(&policy_copies_count, memory_order_relaxed);
}

size_t
policy_set_memory_bytes(struct policy_set *set)
{
    ENG_ASSERT(set != NULL);
    pthread_mutex_lock(&set->mutex);
    size_t used = set->primary->memory_bytes_used;
    pthread_mutex_unlock(&set->mutex);
    return used;
}
