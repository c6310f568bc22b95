/* ops.h - the engine's operations, shared by HTTP, the Lua module and the
 * REPL.  Internal to the engine: callers use engine_exec().
 *
 * An operation receives a struct op: the engine, the connection it runs on
 * (the writer inside an open transaction for writes, a reader otherwise), the
 * principal, and the instant it runs at.  It validates its JSON arguments
 * strictly (unknown fields refused), checks access, does its work and
 * returns a JSON result or an error.  A failing write op is rolled back by
 * the caller; it never commits on its own. */
#ifndef ENG_OPS_H
#define ENG_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "json_out.h"
#include "ledger.h"
#include "row_sink.h"
#include "sets.h"
#include "store.h"
#include "values.h"

/* What the engine hands every operation. */
struct op_env {
    struct policy_cache *policies;
    struct entity_cache *entities; /* NULL: nothing kept (ledger/entities.h) */
    int list_rows_max;
    size_t policy_source_max;
};

struct op {
    const struct op_env *env;
    struct store *store;
    const struct principal *who;
    int64_t now;
    bool created; /* the op made a new object (HTTP answers 201) */
    struct eng_error *err;
    struct ledger_ctx lx; /* the same store, instant, actor and errors */
    /* A policy set to serve once this op's transaction has committed (set
     * by the policy operations; owned by the op until then). */
    struct policy_set *install_set;
    int64_t install_building;
    char install_versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    /* When set, what an idempotent replay of this op answers instead of
     * its result: the op's result holds a secret shown once (keys.create).
     * Owned by the op; the engine stores it and releases it. */
    json_t *idem_response;
    /* Set by engine_exec_stream (reads only): a report that streams hands
     * its rows here instead of answering them (reports.c). */
    const struct row_sink *sink;
    /* A write op's plan, computed before the writer ran it (op_def.plan);
     * borrowed: the engine frees it.  NULL: none. */
    void *plan;
    /* Set by the engine when nothing in the writer needs the result (no
     * idempotency key): an op applying its plan may then leave building its
     * answer to op_plan_def.finish, run after the commit on the caller's
     * thread. */
    bool plan_answer_later;
    /* Set by engine_exec_text: the caller takes the answer as JSON text.
     * An op that can answer so (quotes.create, bookings.create) writes
     * into it the bytes json_out would render of its tree, sets text_given
     * and leaves *out NULL; any other op answers a tree as always.  A
     * failed text (text->failed) is the op's ENG_ENOMEM.  NULL: a tree is
     * wanted (the Lua module, the REPL, the CLI). */
    struct json_buf *text;
    bool text_given;
};

/* Fills op->lx from the op's own fields (after store/now/who/err are set). */
void op_bind_ledger(struct op *op);

typedef int (*op_fn)(struct op *op, json_t *args, json_t **out);
/* A write op may do its computing outside the writer (ops_plans): plan runs on the
 * caller's thread with op->store a reader inside a read transaction and
 * sets *plan (or fails: then there is none, and its error is dropped); the
 * writer then runs fn with op->plan set.  fn must answer exactly as it
 * would without the plan: it applies the plan only if what the plan read
 * still holds, and computes afresh otherwise. */
typedef int (*op_plan_fn)(struct op *op, json_t *args, void **plan);
typedef void (*op_plan_free_fn)(void *plan);
/* Replaces *out with the answer left for later (op->plan_answer_later), if
 * any; op gives err (and is given the instant); 0 or an error. */
typedef int (*op_plan_finish_fn)(void *plan, struct op *op, json_t **out);

struct op_def {
    const char *name;
    op_fn fn;
    bool write;
};

/* The write ops that plan (by name), NULL-terminated. */
struct op_plan_def {
    const char *name;
    op_plan_fn plan;
    op_plan_free_fn plan_free;
    op_plan_finish_fn finish;
};
extern const struct op_plan_def ops_plans[];
/* Plans made, applied by the writer, and found stale (the op computed
 * afresh), since the process started; repriced: applied after validate and
 * pricing ran again in the writer on a moved usage counter; short: stale
 * because a lot's conditional debit found it no longer held its share
 * (counted in recomputed too). */
struct ops_plan_stats {
    long made, applied, recomputed, repriced, short_lots;
};
void ops_plan_stats(struct ops_plan_stats *st);

/* The table of every operation, NULL-terminated. */
extern const struct op_def ops_table[];

/* ---- argument helpers (jsonargs.c); each returns 0 or ENG_EINVAL with the
 * field named in the error ---- */
/* Refuses any key of `args` not in the NULL-terminated `allowed` list, and
 * a non-object.  NULL args count as {}. */
int args_only(struct op *op, json_t *args, const char *const allowed[]);
/* Required / optional string of at most max_len bytes; *out borrowed. */
int args_string(struct op *op, json_t *args, const char *key, bool required, size_t max_len,
                const char **out);
int args_bool(struct op *op, json_t *args, const char *key, bool dflt, bool *out);
/* A positive/non-negative exact amount in milli. */
int args_amount(struct op *op, json_t *args, const char *key, bool required, int64_t *out);
/* An id of the given prefix; a malformed or missing id is 400 when
 * required is true. */
int args_id(struct op *op, json_t *args, const char *key, const char *prefix, bool required,
            int64_t *out);
int args_time(struct op *op, json_t *args, const char *key, bool required, int64_t *out);
/* A range bound: an RFC 3339 time, or a date YYYY-MM-DD read in `zone`
 * (its midnight; for an upper bound, the midnight after it, so the date is
 * included). */
int args_bound(struct op *op, json_t *args, const char *key, const char *zone, bool upper,
               int64_t *out);
/* 400 on `to` when a range ends before it begins (both bounds given). */
int args_range_check(struct op *op, int64_t from, int64_t to);
/* A `from`/`to` filter: an RFC 3339 time, the same instant for every row,
 * or a date YYYY-MM-DD (its midnight; for `to`, the midnight after it, so
 * the day is included).  A date is read in the building's zone when one is
 * given; else in the one zone of the buildings concerned (the tenant's: a
 * tenant principal's own, or tenant_id's; else the portfolio's), UTC when
 * there are none.  Where those buildings are in several zones, a date is
 * read in each row's own zone: `from`/`to` are then widened to every
 * zone's midnights (for the store's query), and op_zoned_row (or
 * op_zoned_cached/op_zoned_put) gives a row's exact bounds. */
#define ZONED_SEEN_MAX 16
struct zoned_bound {
    int64_t from, to; /* the query's bounds (widened when per_row) */
    bool per_row;
    bool from_date, to_date;     /* a bound given as a date, read per row */
    struct civil_date from_d, to_d; /* to_d: the day after the last date */
    int seen;
    struct {
        int64_t key, from, to; /* a building's, or an allocation's (entries) */
    } cache[ZONED_SEEN_MAX];
};
int op_zoned_bounds(struct op *op, json_t *args, int64_t building_id, int64_t tenant_id,
                    struct zoned_bound *zb);
/* The exact [from, to) of a row of building_id; 0 or a storage error. */
int op_zoned_row(struct op *op, struct zoned_bound *zb, int64_t building_id, int64_t *from,
                 int64_t *to);
/* The same by any key whose zone the caller finds: the bounds kept for
 * `key` (true), else op_zoned_put computes and keeps them from `zone`. */
bool op_zoned_cached(const struct zoned_bound *zb, int64_t key, int64_t *from, int64_t *to);
int op_zoned_put(struct op *op, struct zoned_bound *zb, int64_t key, const char *zone,
                 int64_t *from, int64_t *to);
int args_int(struct op *op, json_t *args, const char *key, int64_t lo, int64_t hi,
             int64_t dflt, int64_t *out);
/* A JSON array of strings (each <= 200 bytes, at most max items); the
 * returned array is a new reference (the caller decrefs it); an empty
 * array when the field is absent. */
int args_string_array(struct op *op, json_t *args, const char *key, size_t max, json_t **out);
/* How many bytes of s to quote in a message: at most max_bytes, never
 * ending inside a UTF-8 character (for "%.*s"). */
int text_quote_len(const char *s, int max_bytes);
/* Fails with invalid_request naming the field. */
int op_invalid(struct op *op, const char *field, const char *fmt, ...) ENG_PRINTF(3, 4);
int op_not_found(struct op *op, const char *what);
int op_forbidden(struct op *op, const char *what);

/* ---- access (access.c) ---- */
bool op_is_admin(const struct op *op);
bool op_can_assign(const struct op *op); /* super_admin, manager */
/* Whether a building is inside an admin key's building scope (always true
 * for tenant principals).  Not a visibility test: objects are reached through
 * op_check_reaches; this is for the lease rule of PRODUCT.md §8 (a scoped key
 * adds or removes only leases inside its scope). */
bool op_sees_building(const struct op *op, int64_t building_id);
/* True when the tenant leases space in the building. */
bool op_tenant_leases(struct op *op, int64_t tenant_id, int64_t building_id);
int op_check_tenant_leases(const struct op *op, int64_t tenant_id, int64_t building_id,
                           bool *leases);
/* Scope decided in one place from an object's owners (PRODUCT.md §8): a
 * lot, an entry and an allocation belong to a tenant (a per-user lot also to
 * its user) and to the allocation's buildings; a booking to its user's
 * tenant and its resource's building; a resource to its building; a tenant
 * and a user to the tenant as a whole.  A manager or viewer key limited to
 * some buildings reaches an object only when all of its buildings are in
 * scope, and a tenant (or its user) when the tenant leases any building in
 * scope; a tenant principal reaches its tenant's objects (a tenant user not
 * another user's) and the buildings and resources its tenant leases.  0
 * with *reaches (false for an unknown id), or a storage error in op->err
 * that must fail the request: an error never reads as "not visible".  The
 * authorization matrix (tests/spec/http/authz_matrix_spec.lua) checks this
 * rule on every route. */
enum op_object {
    OP_OBJ_ALLOCATION,
    OP_OBJ_LOT,
    OP_OBJ_ENTRY,
    OP_OBJ_BOOKING,
    OP_OBJ_RESOURCE,
    OP_OBJ_BUILDING,
    OP_OBJ_TENANT,
    OP_OBJ_USER
};
int op_check_reaches(struct op *op, enum op_object kind, int64_t id, bool *reaches);
/* The same decision when the owners are already known: a tenant, and a
 * tenant's user. */
int op_check_sees_tenant(const struct op *op, int64_t tenant_id, bool *sees);
int op_check_sees_user(const struct op *op, int64_t tenant_id, int64_t user_id, bool *sees);
/* True when the principal reaches every object (an admin key without a
 * building scope): lists and reports may skip the per-row decision. */
bool op_reaches_all(const struct op *op);
/* 403 unless the principal is an admin (read) / may assign (write). */
int op_require_admin(struct op *op);
int op_require_assigner(struct op *op);
int op_require_super(struct op *op);

/* ---- list paging ---- */
struct page {
    int64_t after; /* id cursor: rows with id > after */
    int limit;
};
int args_page(struct op *op, json_t *args, struct page *page);
/* Just the cursor: the id after which a page starts (0 for the first). */
int args_cursor(struct op *op, json_t *args, int64_t *after);
/* Wraps rows into {"data": rows, "next_cursor": ...}; takes ownership. */
json_t *page_result(json_t *rows, int64_t last_id, bool more);
/* Collects one page of a list from a store iteration that selects rows in
 * id order with LIMIT page->limit + 1: the store callback hands each row to
 * pager_add, which answers non-zero once the page is full (return it from
 * the callback to stop).  A NULL row (not visible to the principal) still
 * moves the cursor.  pager_finish turns the store's return code into the
 * {"data", "next_cursor"} result, or frees what was collected. */
struct pager {
    const struct page *page;
    json_t *rows;
    int64_t last;
    int fetched;
    bool more;
};
#define PAGER_FULL 1
void pager_init(struct pager *pg, const struct page *page);
int pager_add(struct pager *pg, int64_t id, json_t *row); /* steals row */
int pager_finish(struct pager *pg, struct op *op, int rc, json_t **out);


#endif
