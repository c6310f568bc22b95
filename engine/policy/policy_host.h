/* policy_host.h - sandboxed Lua 5.4 states that run building policies.
 *
 * A policy set holds every policy kind of one building: the default module
 * of each kind (policies/default/<kind>.lua) with the building's overrides
 * on top.  Its primary lua_State is built whole, checked (every kind
 * resolves to a function, self-check examples pass), and only then handed
 * out; threads that would wait for it get copies built from the same
 * sources (policy_set_call).  A reload builds a new set and swaps the
 * pointer, so calls already in flight finish on the set they hold
 * (reference counted) and every later call, on any thread, runs the new
 * one.
 *
 * Inputs and outputs cross the boundary as jansson values: `ctx` is converted
 * to a fresh Lua table per call (per sequence: policy_set_call_seq), or
 * built from parts (policy_set_call_parts: C values, JSON, and kept parts
 * shared by calls as read-only tables), the result back to JSON with raw
 * accessors inside one protected call.  Lua
 * integers become JSON integers, Lua floats JSON reals; NaN/inf, functions,
 * userdata, cycles, depth > convert_depth_max and strings > string_bytes_max
 * are refused as policy errors.
 *
 * The sandbox: base (without dofile, loadfile, load, collectgarbage, print,
 * warn, require), table, string (without dump; find/match/gmatch/gsub
 * guarded), math (without random/randomseed), utf8; no io, os, package,
 * debug, coroutine.  Text chunks only.  Each chunk gets its own _ENV whose
 * reads fall back to frozen safe globals and whose writes raise.  The string
 * metatable is locked.  A capped allocator bounds memory; a count hook charges
 * an instruction budget per call that stays exhausted (pcall cannot swallow
 * it) and enforces a wall-clock deadline. */
#ifndef ENG_POLICY_HOST_H
#define ENG_POLICY_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

enum policy_kind {
    POLICY_PRICING = 0,  /* function price(ctx) */
    POLICY_ELIGIBILITY,  /* function eligible(ctx) */
    POLICY_ORDER,        /* function order(ctx) */
    POLICY_ROLLOVER,     /* function rollover(ctx) */
    POLICY_REFUND,       /* function refund(ctx) */
    POLICY_VALIDATE,     /* function validate(ctx) */
    POLICY_KIND_COUNT
};

struct policy_limits {
    size_t memory_bytes_max;     /* per state; default 8 MiB */
    int64_t instructions_max;    /* per call; default 1,000,000 */
    int64_t wall_ms_max;         /* per call; default 2,000: a backstop only */
    size_t source_bytes_max;     /* per chunk; default 256 KiB */
    size_t string_bytes_max;     /* strings crossing the boundary; default 4 KiB */
    int convert_depth_max;       /* JSON <-> Lua nesting; default 8 */
    /* One policy simulation (POST .../policies/{kind}/simulate), all its
     * calls together (see policy_set_total_budget).  The instruction total
     * decides (deterministic); the wall time is a backstop that also
     * counts the engine's own work between calls.  0 means the default. */
    int64_t simulation_instructions_max; /* default 100,000,000 */
    int64_t simulation_wall_ms_max;      /* default 2,000 */
    int64_t simulation_bookings_max;     /* bookings replayed; default 10,000 */
};

/* Fills *limits with the defaults above. */
void policy_limits_default(struct policy_limits *limits);

/* "pricing", "eligibility", "order", "rollover", "refund", "validate". */
const char *policy_kind_name(enum policy_kind kind);
/* The function each kind's module must export: "price", "eligible", ... */
const char *policy_kind_function(enum policy_kind kind);
/* Returns 0 and sets *out, or ENG_EINVAL for an unknown name. */
int policy_kind_parse(const char *name, enum policy_kind *out, struct eng_error *err);

/* One source chunk: `name` is the chunk name used in messages
 * ("policies/default/pricing.lua"); `source`/`len` the Lua text.  A kind
 * whose override is NULL uses only the default. */
struct policy_source {
    const char *name;
    const char *source;
    size_t len;
};

struct policy_set;

/* Builds a set: for each kind loads defaults[kind] (required), then
 * overrides[kind] when non-NULL (an override module's table replaces the
 * default module for that kind).  Each module is a chunk that returns a
 * table holding the kind's function and optionally `examples`, a list of
 * { ctx = {...}, expect = <value> } run at load: the function's result must
 * deep-equal `expect` (numbers compared by value and by integer/float
 * subtype), or the load fails.  On failure returns ENG_EREJECTED (bad
 * source, syntax error, failed example: message includes chunk name and line)
 * or ENG_ENOMEM, and *out is untouched.  On success *out holds a set with
 * reference count 1.  Thread-safe (touches no shared state). */
ENG_MUST_CHECK int policy_set_load(struct policy_set **out,
                                   const struct policy_source defaults[POLICY_KIND_COUNT],
                                   const struct policy_source overrides[POLICY_KIND_COUNT],
                                   const struct policy_limits *limits, struct eng_error *err);

/* Reference counting; thread-safe.  The last release closes the states
 * (the primary, and the copies, which each hold a reference). */
void policy_set_retain(struct policy_set *set);
void policy_set_release(struct policy_set *set);

/* Marks the set as no longer served (a newer set replaced it): a holder of
 * copies drops its copy at the next policy call it serves, so retired
 * versions do not hold memory once no request uses them.  Calls on it
 * still work.  Thread-safe. */
void policy_set_retire(struct policy_set *set);

/* Calls the kind's function with `ctx` (borrowed) and returns its result as
 * a new JSON value in *result (owned by the caller; JSON null when the
 * function returned nil).  Any thread may call: a set has a primary state
 * (one thread at a time, under the set's mutex) and, for a thread that
 * finds it busy, a copy built from the same sources, made once and kept in
 * a holder of copies.  A call takes the holder the last call gave back
 * (a process-wide stack), so a few warm states serve every thread (at most
 * 8 sets per holder and 256 copies per process; past those bounds the call
 * waits for the primary).
 * A set with a total budget (policy_set_total_budget) runs every call on
 * its primary.  On a runtime error, exhausted budget, deadline, memory cap or an
 * unconvertible result returns ENG_EPOLICY with a message that names the
 * chunk and line, and *result is NULL; the state stays usable. */
ENG_MUST_CHECK int policy_set_call(struct policy_set *set, enum policy_kind kind,
                                   const json_t *ctx, json_t **result, struct eng_error *err);

/* Decides, between two calls of a sequence, whether the next one runs
 * (after the call of `kind` answered `result`, borrowed).  Must not raise
 * or call policies. */
typedef bool (*policy_next_fn)(void *ud, enum policy_kind kind, const json_t *result);

/* Calls kinds[0..count) in order with one context, converted to Lua once
 * and handed to each of them as the same table (so a later kind sees what
 * an earlier one wrote into it; nothing outlives the sequence), each under
 * its own budget, in one entry into the state.  results[i] gets call i's
 * result (owned by the caller), NULL for calls not made: after each call
 * but the last, next(ud, kind, result) decides whether to go on (NULL:
 * always).  On any failure every result is NULL and the error is that of
 * the call that failed, as with policy_set_call.  Thread-safe. */
ENG_MUST_CHECK int policy_set_call_seq(struct policy_set *set, const enum policy_kind *kinds,
                                       int count, const json_t *ctx, policy_next_fn next,
                                       void *ud, json_t **results, struct eng_error *err);

/* One field of a call's ctx built from parts (policy_set_call_parts):
 * ctx[name] = the integer `integer` when is_integer, else the string
 * `string` (borrowed) when not NULL, else a table of the `count` parts
 * `fields` (borrowed; nested as deep as convert_depth_max) when not NULL,
 * else `value` (JSON, borrowed; NULL or JSON null: absent).  Fields and
 * integers cost no JSON at all.  Fields whose first part has a NULL name
 * make a list: part i is item i + 1 (all names NULL; an absent part is a
 * hole, as a JSON null).  A part whose `keep` is not {0, 0} is
 * one the caller promises is the same JSON whenever (name, keep) is the
 * same (an entity id and the portfolio generation it was read at): each
 * state converts it once into read-only tables and hands the same tables to
 * every later call (at most POLICY_TEMPLATES kept per state, 8-way
 * set-associative, the least recently used of a set replaced, and within
 * an eighth of memory_bytes_max).  A kept part of ctx itself (not nested
 * in fields) that the state does not hold yet is converted only when a
 * policy reads it (indexing, pairs, next, rawget): one no policy reads
 * costs nothing.  Reading them works as on plain tables (indexing, pairs,
 * ipairs, next, #, rawget, rawlen); writing into them raises "attempt to
 * modify a read-only ctx table".  Names of kept parts are at most 15
 * bytes. */
#define POLICY_TEMPLATES 2048
struct policy_ctx_part {
    const char *name;
    const json_t *value;
    bool is_integer;
    int64_t integer;
    const char *string;
    const struct policy_ctx_part *fields;
    int count;
    int64_t keep[2];
};

/* Reads the value of a lazy ctx field; 0 and *value, or a negative
 * eng_status with details in *err (the call then fails with that error,
 * whatever the policy did with it).  Runs inside the policy call, on the
 * caller's thread. */
typedef int (*policy_lazy_fn)(void *ud, int64_t *value, struct eng_error *err);

/* The ctx of policy_set_call_parts: the parts, and at most one lazy integer
 * field `lazy_name` whose value lazy(lazy_ud) is read only when a policy
 * looks at it (indexes it, or walks ctx with pairs or next, or rawgets it),
 * at most once per ctx.  lazy_read tells the caller afterwards whether it
 * was read by any call of the sequence (when it was not, no answer depends
 * on it).  ctx itself is a fresh table per sequence with a locked
 * metatable; top-level writes work as on a plain table. */
struct policy_ctx {
    const struct policy_ctx_part *parts;
    int count;
    const char *lazy_name; /* NULL: no lazy field */
    policy_lazy_fn lazy;
    void *lazy_ud;
    bool lazy_read; /* out */
};

/* policy_set_call_seq with a ctx built from parts (above) instead of one
 * JSON object.  Same contract otherwise; a failure of the lazy read is
 * returned as its own error (e.g. ENG_ESTORE), not as a policy error. */
ENG_MUST_CHECK int policy_set_call_parts(struct policy_set *set, const enum policy_kind *kinds,
                                         int count, struct policy_ctx *ctx, policy_next_fn next,
                                         void *ud, json_t **results, struct eng_error *err);

/* A result read without JSON (policy_set_call_parts_pick): its shape, as
 * the JSON conversion would have made it, and a few top-level fields the
 * caller names.  A caller that only looks at some fields of a flat result
 * (validate's verdict, pricing's amounts) gets them straight from the Lua
 * stack: no jansson object is built, filled and freed per call.  Every
 * result that would convert is picked exactly as if it had been converted
 * and the fields then read from the JSON (json_object_get); one that would
 * not fails with the same error. */
#define POLICY_PICK_FIELDS_MAX 6
#define POLICY_PICK_TEXT_MAX ENG_MSG_MAX

enum policy_pick_shape {
    POLICY_PICK_NULL = 0, /* nil (JSON null) */
    POLICY_PICK_OBJECT,   /* a table with string keys (a JSON object) */
    POLICY_PICK_EMPTY,    /* an empty table (JSON [], as the conversion makes it) */
    POLICY_PICK_OTHER,    /* a list, a boolean, a number, a string */
};

enum policy_pick_type {
    POLICY_PICK_ABSENT = 0, /* no such key (or not an object) */
    POLICY_PICK_INTEGER,    /* a Lua integer (a JSON integer): .integer */
    POLICY_PICK_STRING,     /* a string: .text */
    POLICY_PICK_VALUE,      /* anything else: a float (even 2.0), a boolean, a table */
};

struct policy_pick_field {
    enum policy_pick_type type;
    int64_t integer;
    /* A string up to its first NUL, cut to POLICY_PICK_TEXT_MAX - 1 bytes:
     * what "%s" of the JSON string into an eng_error message keeps. */
    char text[POLICY_PICK_TEXT_MAX];
};

struct policy_pick {
    const char *const *names; /* in: top-level keys to read (borrowed) */
    int count;                /* in: at most POLICY_PICK_FIELDS_MAX */
    enum policy_pick_shape shape;                          /* out */
    struct policy_pick_field fields[POLICY_PICK_FIELDS_MAX]; /* out: fields[i] is names[i] */
    char unknown[41]; /* out: a top-level key of an object result not among names ("": none) */
};

/* Decides, between two calls of a picked sequence, whether the next one
 * runs (after the call of `kind` answered `result`, borrowed).  Must not
 * raise or call policies. */
typedef bool (*policy_pick_next_fn)(void *ud, enum policy_kind kind,
                                    const struct policy_pick *result);

/* policy_set_call_parts with each result read into picks[i] (its names and
 * count set by the caller) instead of returned as JSON: picks[i].shape and
 * fields are set for every call made; calls not made leave theirs as they
 * were.  Same contract, same errors otherwise. */
ENG_MUST_CHECK int policy_set_call_parts_pick(struct policy_set *set,
                                              const enum policy_kind *kinds, int count,
                                              struct policy_ctx *ctx, policy_pick_next_fn next,
                                              void *ud, struct policy_pick *picks,
                                              struct eng_error *err);

/* Gives the set a total budget that all its later calls share, for a
 * caller that owns the set alone and runs many calls on it (a simulation
 * builds a fresh set): each call runs under the smaller of its own budget
 * (instructions_max, wall_ms_max) and what is left of the total.  Once the
 * total is spent, the call that met it and every later call fail with
 * ENG_ELIMIT, code limit_exceeded and field `instructions_limit` or
 * `wall_limit` (names of the caller's configuration, borrowed for the life
 * of the set: pass string literals).  The wall time starts now.  A
 * non-positive value leaves that part without a total.  Thread-safe. */
void policy_set_total_budget(struct policy_set *set, int64_t instructions_max,
                             const char *instructions_limit, int64_t wall_ms_max,
                             const char *wall_limit);
/* 0 while the total budget lasts (or there is none); else ENG_ELIMIT as
 * above, for a caller that checks between calls (its own work counts
 * against the wall time too). */
ENG_MUST_CHECK int policy_set_total_check(struct policy_set *set, struct eng_error *err);

/* A number naming the set among every set this process has loaded (never
 * reused, never 0): what a set answers is a function of this number and
 * the context, so callers may key kept answers by it.  Thread-safe. */
/* What the kept ctx parts of the set's primary state did since it was
 * built (tests, metrics): parts served kept (hits), left out of a ctx
 * until read (deferred), converted (conversions: deferred ones read, and
 * nested ones not kept), converted but not kept for want of room in the
 * templates' share of memory (not_kept), kept in place of another
 * (replaced); and now: templates held (kept) and their bytes. */
struct policy_kept_stats {
    long hits, deferred, conversions, not_kept, replaced;
    long kept;
    size_t bytes;
};
void policy_set_kept_stats(struct policy_set *set, struct policy_kept_stats *st);

uint64_t policy_set_serial(const struct policy_set *set);

/* Copies of sets alive in the process, over all holders (for tests and
 * metrics).  Thread-safe. */
int policy_copies_live(void);

/* Drops every copy in the holders no call is using, and the holders
 * (engine close, tests).  Thread-safe: a call running meanwhile keeps its
 * holder and gives it back afterwards. */
void policy_copies_flush(void);

/* Bytes currently allocated by the set's primary state (for tests and
 * metrics). */
size_t policy_set_memory_bytes(struct policy_set *set);

/* Helpers the sandbox exposes to policies as the global table `allot`
 * (read-only):
 *   allot.milli(x)  -> integer thousandths of a decimal number with at most
 *                      3 fractional digits (1.5 -> 1500); raises otherwise.
 *   allot.ceil_div(a, b), allot.floor_div(a, b) -> integer division with
 *                      explicit rounding for non-negative integers.
 * Policies work in integer thousandths of a credit ("milli") and integer
 * minor units of money. */

/* Details of the implementation (policy_host.c) that callers can observe:
 * - Overrides: when overrides (which may be NULL) has a non-NULL .source for
 *   a kind, that kind's default module is not compiled in the set at all;
 *   defaults[kind] must still be given.  Start-up loads the defaults alone,
 *   which is where a broken default is caught.
 * - limits may be NULL (defaults); limits out of range, a missing default
 *   or a missing/too long chunk name give ENG_EINVAL.  ENG_ENOMEM means the
 *   system allocator failed; a policy over memory_bytes_max is a policy
 *   failure (ENG_EREJECTED at load, ENG_EPOLICY in a call).
 * - A NULL ctx passes nil to the function.  JSON null values are absent keys
 *   (nil), in objects and arrays alike.
 * - Besides the rules above, the sandbox: allows at most 4 '?' and 256 bytes
 *   per pattern; refuses setmetatable with a __gc field; skips an xpcall
 *   message handler once the budget is exhausted; charges string, utf8 and
 *   table functions instructions for the work they do in C (one per 256
 *   bytes or per element) and checks the deadline before each; refuses any
 *   single string larger than memory_bytes_max / 8; accepts at most 100
 *   examples per module.
 * - Error messages name the chunk and line; the policy's own traceback
 *   frames follow when they fit in struct eng_error, C frames never. */

#endif
