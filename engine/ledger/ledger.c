/* ledger.c - lots, entries, period boundaries (PRODUCT.md §3, §9).
 *
 * Every query goes through the store modules (allocations, lots, entries,
 * portfolio); a storage failure is ENG_ESTORE and stops the whole
 * operation, whose transaction the caller rolls back. */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "entities.h"
#include "entries.h"
#include "generation.h"
#include "lots.h"
#include "portfolio.h"

static int
oom(struct ledger_ctx *lx)
{
    return eng_error_set(lx->err, ENG_ENOMEM, "out of memory");
}

/* ---------- allocations ---------- */

void
alloc_free(struct alloc *a)
{
    json_decref(a->targeting);
    json_decref(a->building_ids);
    for (int i = 0; i < a->line_count; i++) {
        json_decref(a->lines[i].resource_ids);
        json_decref(a->lines[i].tags);
    }
    memset(a, 0, sizeof *a);
}

struct load_ud {
    struct ledger_ctx *lx;
    struct alloc *a;
};

static int
load_line(void *ud, const struct allocation_line_row *row)
{
    struct load_ud *u = ud;
    struct alloc *a = u->a;
    if (a->line_count == ALLOC_LINES_MAX) {
        /* The API never accepts more; a stored allocation with more is
         * refused whole rather than read without its last lines. */
        eng_error_code(u->lx->err, ENG_ELIMIT, "limit_exceeded",
                       "allocation alc_%lld has more than %d lines (limit %d)", (long long)a->id,
                       ALLOC_LINES_MAX, ALLOC_LINES_MAX);
        eng_error_field(u->lx->err, "alloc_lines_max");
        return ENG_ELIMIT;
    }
    struct alloc_line *l = &a->lines[a->line_count++];
    l->idx = row->idx;
    memcpy(l->scope, row->scope, sizeof l->scope);
    l->resource_ids = json_incref(row->resource_ids);
    l->tags = json_incref(row->tags);
    l->unlimited = row->unlimited;
    l->amount = row->amount;
    return 0;
}

static int
load_building(void *ud, int64_t building_id)
{
    struct load_ud *u = ud;
    if (u->a->first_building == 0) {
        u->a->first_building = building_id;
    }
    if (json_array_append_new(u->a->building_ids, id_json("bld", building_id)) != 0) {
        return oom(u->lx);
    }
    return 0;
}

/* Copies a stored row into *a; a stored value that does not parse is a
 * storage error (the API only ever writes valid ones). */
static int
alloc_from_row(struct ledger_ctx *lx, struct allocation_row *row, struct alloc *a)
{
    struct eng_error e = {0};
    a->id = row->id;
    a->tenant_id = row->tenant_id;
    memcpy(a->unit, row->unit, sizeof a->unit);
    memcpy(a->pool, row->pool, sizeof a->pool);
    memcpy(a->zone, row->zone, sizeof a->zone);
    memcpy(a->description, row->description, sizeof a->description);
    a->cross_building = row->cross_building;
    a->rollover = row->rollover;
    a->rollover_cap = row->rollover_cap;
    a->start_at = row->start_at;
    a->end_at = row->end_at;
    a->has_end = row->has_end;
    a->targeting = row->targeting;
    row->targeting = NULL;
    if (period_kind_parse(row->recurrence, &a->recurrence, &e) != 0 ||
        date_parse(row->start_date, &a->start_date, &e) != 0 ||
        (a->has_end && date_parse(row->end_date, &a->end_date, &e) != 0)) {
        return eng_error_code(lx->err, ENG_ESTORE, "storage_error",
                              "allocation alc_%lld has an unreadable schedule", (long long)a->id);
    }
    return 0;
}

int
alloc_load(struct ledger_ctx *lx, int64_t id, struct alloc *a)
{
    memset(a, 0, sizeof *a);
    struct allocation_row row;
    bool found = false;
    if (store_allocation_get(lx->store, id, &row, &found, lx->err) != 0) {
        return lx->err->status;
    }
    if (!found) {
        return eng_error_code(lx->err, ENG_ENOTFOUND, "not_found", "allocation not found");
    }
    int rc = alloc_from_row(lx, &row, a);
    store_allocation_clear(&row);
    a->building_ids = json_array();
    if (rc == 0 && a->building_ids == NULL) {
        rc = oom(lx);
    }
    struct load_ud ud = {lx, a};
    if (rc == 0) {
        rc = store_allocation_lines_each(lx->store, id, load_line, &ud, lx->err);
    }
    if (rc == 0) {
        rc = store_allocation_buildings_each(lx->store, id, load_building, &ud, lx->err);
    }
    if (rc != 0) {
        alloc_free(a);
        return lx->err->status;
    }
    return 0;
}

int64_t
alloc_policy_building(const struct alloc *a)
{
    return a->first_building;
}

int64_t
ledger_eligibility_building(const struct alloc *a, int64_t resource_building_id)
{
    return resource_building_id != 0 ? resource_building_id : alloc_policy_building(a);
}

/* Without a resource (a wallet, a per-user period opening): is line i of
 * `a` for this user in any of the allocation's buildings?  Each building's
 * own eligibility set is asked, through `one` (its verdict for one set),
 * until one admits: the user holds the credit if it may spend it
 * somewhere.  A building whose set cannot be built fails the question. */
static int
eligible_in_any(struct ledger_ctx *lx, const struct alloc *a,
                int (*one)(void *ud, struct policy_set *pol, bool *ok), void *ud, bool *ok)
{
    *ok = false;
    size_t k;
    json_t *b;
    json_array_foreach(a->building_ids, k, b) {
        int64_t bid = 0;
        if (id_parse("bld", json_string_value(b), &bid) != 0) {
            continue;
        }
        struct policy_set *pol = NULL;
        int rc = policy_cache_get(lx->policies, lx->store, bid, &pol, NULL, lx->err);
        if (rc == 0) {
            rc = one(ud, pol, ok);
        }
        policy_set_release(pol);
        if (rc != 0 || *ok) {
            return rc;
        }
    }
    return 0;
}

static int alloc_window_compute(struct ledger_ctx *lx, const struct alloc *a, int64_t n,
                                int64_t *from, int64_t *until, bool *exists);

/* A period's window is arithmetic on the allocation's schedule and zone
 * (both generation-covered): a read snapshot keeps it (entities.h) rather
 * than asking the time zone database again. */
int
alloc_window(struct ledger_ctx *lx, const struct alloc *a, int64_t n, int64_t *from, int64_t *until,
             bool *exists)
{
    bool cached = lx->cache != NULL && lx->cache_gen != 0 && n >= 0;
    const struct entity_key key = {ENTITY_WINDOW, {a->id, n}};
    struct entity_value v;
    if (cached && entity_cache_get(lx->cache, lx->cache_gen, &key, &v)) {
        *from = v.n;
        *until = v.n2;
        *exists = *from < *until;
        return 0;
    }
    int rc = alloc_window_compute(lx, a, n, from, until, exists);
    if (rc == 0 && cached && *exists) {
        v = (struct entity_value){.n = *from, .n2 = *until};
        entity_cache_put(lx->cache, lx->cache_gen, &key, &v);
    }
    return rc;
}

static int
alloc_window_compute(struct ledger_ctx *lx, const struct alloc *a, int64_t n, int64_t *from,
                     int64_t *until, bool *exists)
{
    *exists = false;
    if (n < 0) {
        return 0;
    }
    if (a->recurrence == PERIOD_NONE) {
        if (n == 0) {
            *from = a->start_at;
            *until = a->end_at;
            *exists = *from < *until;
        }
        return 0;
    }
    struct civil_date p0 = period_start_date(a->recurrence, a->start_date);
    struct civil_date pn = period_add(a->recurrence, p0, n);
    struct civil_date pn1 = period_add(a->recurrence, p0, n + 1);
    int64_t f, u;
    if (tz_local_midnight(a->zone, pn, &f, lx->err) != 0 ||
        tz_local_midnight(a->zone, pn1, &u, lx->err) != 0) {
        return lx->err->status;
    }
    *from = f > a->start_at ? f : a->start_at;
    *until = u < a->end_at ? u : a->end_at;
    *exists = *from < *until;
    return 0;
}

int
alloc_period_at(struct ledger_ctx *lx, const struct alloc *a, int64_t t, int64_t *n, bool *exists)
{
    *exists = false;
    if (t < a->start_at || t >= a->end_at) {
        return 0;
    }
    if (a->recurrence == PERIOD_NONE) {
        *n = 0;
        *exists = true;
        return 0;
    }
    struct civil_time lt;
    if (tz_local_time(a->zone, t, &lt, lx->err) != 0) {
        return lx->err->status;
    }
    struct civil_date d = {lt.year, lt.month, lt.day};
    *n = period_index(a->recurrence, a->start_date, d);
    *exists = *n >= 0;
    return 0;
}

int
alloc_periods_begun(struct ledger_ctx *lx, const struct alloc *a, int64_t now, int64_t *count)
{
    *count = 0;
    if (now < a->start_at) {
        return 0;
    }
    /* The last instant that counts: now, or the allocation's last one. */
    int64_t t = now < a->end_at ? now : a->end_at - 1;
    int64_t n = 0;
    bool exists = false;
    if (alloc_period_at(lx, a, t, &n, &exists) != 0) {
        return lx->err->status;
    }
    *count = exists ? n + 1 : 0;
    return 0;
}

/* ---------- entries and lots ---------- */

int
entry_post_id(struct ledger_ctx *lx, int64_t lot_id, const char *kind, int64_t amount,
              int64_t effective_at, int64_t booking_id, const char *event_key,
              const char *policy_version, const char *memo, int64_t *entry_id)
{
    struct entry_row e = {
        .lot_id = lot_id,
        .kind = kind,
        .amount = amount,
        .effective_at = effective_at,
        .created_at = lx->now,
        .booking_id = booking_id,
        .event_key = event_key,
        .policy_version = policy_version,
        .memo = memo,
        .actor = lx->actor,
    };
    if (store_entry_insert(lx->store, &e, entry_id, lx->err) != 0) {
        return lx->err->status;
    }
    if (amount == 0) {
        return 0;
    }
    return store_lot_move(lx->store, lot_id, kind, amount, lx->err);
}

int
lot_take(struct ledger_ctx *lx, int64_t lot_id, int64_t amount, int64_t expect, bool *taken,
         int64_t *balance)
{
    ENG_ASSERT(amount > 0);
    return store_lot_take(lx->store, lot_id, amount, expect, taken, balance, lx->err) != 0
               ? lx->err->status
               : 0;
}

int
lot_untake(struct ledger_ctx *lx, int64_t lot_id, int64_t amount)
{
    return store_lot_move(lx->store, lot_id, "debit", amount, lx->err);
}

int
debit_post_taken(struct ledger_ctx *lx, int64_t lot_id, int64_t amount, int64_t effective_at,
                 int64_t booking_id, const char *policy_version, const struct entry_usage *usage)
{
    struct entry_row e = {
        .lot_id = lot_id,
        .kind = "debit",
        .amount = -amount,
        .effective_at = effective_at,
        .created_at = lx->now,
        .booking_id = booking_id,
        .policy_version = policy_version,
        .actor = lx->actor,
        .usage = usage,
    };
    int64_t entry_id = 0;
    return store_entry_insert(lx->store, &e, &entry_id, lx->err) != 0 ? lx->err->status : 0;
}

int
entry_post(struct ledger_ctx *lx, int64_t lot_id, const char *kind, int64_t amount,
           int64_t effective_at, int64_t booking_id, const char *event_key,
           const char *policy_version, const char *memo)
{
    int64_t entry_id = 0;
    return entry_post_id(lx, lot_id, kind, amount, effective_at, booking_id, event_key,
                         policy_version, memo, &entry_id);
}

int
lot_ensure(struct ledger_ctx *lx, const struct alloc *a, int line_idx, int64_t n, int64_t owner,
           int64_t *lot_id, bool *created)
{
    const struct alloc_line *l = &a->lines[line_idx];
    int64_t from, until;
    bool exists;
    *created = false;
    if (alloc_window(lx, a, n, &from, &until, &exists) != 0) {
        return lx->err->status;
    }
    ENG_ASSERT(exists);
    struct lot_row lot = {
        .allocation_id = a->id,
        .line_idx = l->idx,
        .period_n = n,
        .user_id = owner,
        .kind = "period",
        .tenant_id = a->tenant_id,
        .valid_from = from,
        .valid_until = until,
        .granted = l->amount,
        .unlimited = l->unlimited,
        .created_at = lx->now,
    };
    memcpy(lot.unit, a->unit, sizeof a->unit);
    if (store_lot_insert(lx->store, &lot, lot_id, created, lx->err) != 0) {
        return lx->err->status;
    }
    if (!*created) {
        return 0;
    }
    char key[64];
    snprintf(key, sizeof key, "grant:%lld", (long long)*lot_id);
    return entry_post(lx, *lot_id, "grant", l->amount, from, 0, key, NULL, a->description);
}

/* ---------- kept entities (entities.h) ----------
 *
 * A read snapshot (lx->cache set: op_bind_ledger, read-only connections
 * only) reads the portfolio generation once and then takes users,
 * tenants, resources with their buildings, allocations and eligibility
 * verdicts from the cache when an earlier request of the same generation
 * loaded them.  The writer never uses it: a write transaction sees its own
 * uncommitted changes, whose generation number a rollback could give back
 * to a different state. */

/* Whether lx may use the cache (reading the generation on first use). */
static int
kept_usable(struct ledger_ctx *lx, bool *usable)
{
    *usable = false;
    if (lx->cache == NULL) {
        return 0;
    }
    if (lx->cache_gen == 0 && store_generation_get(lx->store, &lx->cache_gen, lx->err) != 0) {
        lx->cache_gen = 0;
        return lx->err->status;
    }
    *usable = true;
    return 0;
}

static bool
kept_get(struct ledger_ctx *lx, enum entity_kind kind, int64_t id, struct entity_value *v)
{
    const struct entity_key key = {kind, {id}};
    return entity_cache_get(lx->cache, lx->cache_gen, &key, v);
}

static void
kept_put(struct ledger_ctx *lx, enum entity_kind kind, int64_t id, struct entity_value *v)
{
    const struct entity_key key = {kind, {id}};
    entity_cache_put(lx->cache, lx->cache_gen, &key, v);
}

/* ---------- policy contexts ---------- */

json_t *
ctx_user(struct ledger_ctx *lx, int64_t user_id, int64_t *tenant_id, int *rc)
{
    bool cached = false;
    struct entity_value v;
    *rc = kept_usable(lx, &cached);
    if (*rc != 0) {
        return NULL;
    }
    if (cached && kept_get(lx, ENTITY_USER, user_id, &v)) {
        *tenant_id = v.n;
        return v.json[0];
    }
    json_t *ctx = NULL;
    struct user_row u;
    bool found = false;
    *rc = store_user_get(lx->store, user_id, &u, &found, lx->err);
    if (*rc != 0) {
        return NULL;
    }
    if (!found) {
        *rc = eng_error_code(lx->err, ENG_ENOTFOUND, "not_found", "user not found");
        return NULL;
    }
    *tenant_id = u.tenant_id;
    ctx = json_pack("{s:o, s:o, s:O}", "id", id_json("usr", user_id), "tenant_id",
                    id_json("ten", u.tenant_id), "roles", u.roles);
    store_user_clear(&u);
    if (ctx == NULL) {
        *rc = oom(lx);
    } else if (cached) {
        v = (struct entity_value){.n = *tenant_id, .json = {json_incref(ctx)}};
        kept_put(lx, ENTITY_USER, user_id, &v);
    }
    return ctx;
}

static int
tenant_building(void *ud, int64_t building_id)
{
    return json_array_append_new(ud, id_json("bld", building_id)) != 0 ? ENG_ENOMEM : 0;
}

json_t *
ctx_tenant(struct ledger_ctx *lx, int64_t tenant_id, int *rc)
{
    bool cached = false;
    struct entity_value v;
    *rc = kept_usable(lx, &cached);
    if (*rc != 0) {
        return NULL;
    }
    if (cached && kept_get(lx, ENTITY_TENANT, tenant_id, &v)) {
        return v.json[0];
    }
    struct tenant_row t;
    bool found = false;
    *rc = store_tenant_get(lx->store, tenant_id, &t, &found, lx->err);
    if (*rc != 0) {
        return NULL;
    }
    if (!found) {
        *rc = eng_error_code(lx->err, ENG_ENOTFOUND, "not_found", "tenant not found");
        return NULL;
    }
    json_t *bids = json_array();
    *rc = bids == NULL ? ENG_ENOMEM
                       : store_tenant_buildings_each(lx->store, tenant_id, tenant_building, bids,
                                                     lx->err);
    if (*rc == ENG_ENOMEM) {
        *rc = oom(lx);
    }
    if (*rc != 0) {
        json_decref(bids);
        return NULL;
    }
    json_t *ctx = json_pack("{s:o, s:o, s:b}", "id", id_json("ten", tenant_id), "building_ids",
                            bids, "cross_building", t.cross_building);
    if (ctx == NULL) {
        *rc = oom(lx);
    } else if (cached) {
        v = (struct entity_value){.json = {json_incref(ctx)}};
        kept_put(lx, ENTITY_TENANT, tenant_id, &v);
    }
    return ctx;
}

/* ---------- policy contexts (allocation side) ---------- */

json_t *
ctx_alloc(const struct alloc *a)
{
    return json_pack("{s:o, s:o, s:O, s:b, s:O, s:s}", "id", id_json("alc", a->id), "tenant_id",
                     id_json("ten", a->tenant_id), "building_ids", a->building_ids,
                     "cross_building", a->cross_building, "targeting", a->targeting, "pool",
                     a->pool);
}

json_t *
ctx_line(const struct alloc_line *l)
{
    return json_pack("{s:s, s:O, s:O}", "scope", l->scope, "resource_ids", l->resource_ids,
                     "tags", l->tags);
}

/* ---------- resources and allocations, kept ---------- */

/* A resource with its building, shared through the cache. */
struct kept_resource {
    struct entity_obj obj;
    struct ledger_resource r;
};

static void
kept_resource_destroy(struct entity_obj *obj)
{
    struct kept_resource *k = (struct kept_resource *)obj;
    json_decref(k->r.ctx);
    json_decref(k->r.building);
    free(k);
}

static int
resource_load(struct ledger_ctx *lx, int64_t id, struct ledger_resource *out, bool *found)
{
    struct resource_row r;
    struct building_row bl;
    if (store_resource_get(lx->store, id, &r, found, lx->err) != 0) {
        return lx->err->status;
    }
    if (!*found) {
        return 0;
    }
    int rc = store_building_get(lx->store, r.building_id, &bl, found, lx->err);
    if (rc == 0 && *found) {
        out->building_id = r.building_id;
        out->archived = r.archived;
        out->pay_credits = bl.pay_credits;
        out->pay_invoice = bl.pay_invoice;
        out->pay_card = bl.pay_card;
        _Static_assert(sizeof out->currency == sizeof bl.currency, "currency buffers differ");
        memcpy(out->currency, bl.currency, sizeof out->currency);
        out->ctx = json_pack("{s:o, s:o, s:s, s:s, s:O, s:O, s:b}", "id", id_json("res", id),
                             "building_id", id_json("bld", r.building_id), "name", r.name,
                             "kind", r.kind, "tags", r.tags, "pricing", r.pricing,
                             "credit_only", r.credit_only);
        out->building = json_pack("{s:o, s:s, s:s}", "id", id_json("bld", r.building_id),
                                  "timezone", bl.timezone, "currency", bl.currency);
        if (out->ctx == NULL || out->building == NULL) {
            json_decref(out->ctx);
            json_decref(out->building);
            out->ctx = out->building = NULL;
            rc = oom(lx);
        }
    }
    store_resource_clear(&r);
    return rc;
}

int
ledger_resource_get(struct ledger_ctx *lx, int64_t id, struct ledger_resource *out, bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    bool cached = false;
    struct entity_value v;
    if (kept_usable(lx, &cached) != 0) {
        return lx->err->status;
    }
    if (cached && kept_get(lx, ENTITY_RESOURCE, id, &v)) {
        *out = ((struct kept_resource *)v.obj)->r;
        json_incref(out->ctx);
        json_incref(out->building);
        entity_value_clear(&v);
        *found = true;
        return 0;
    }
    int rc = resource_load(lx, id, out, found);
    struct kept_resource *k = rc == 0 && *found && cached ? malloc(sizeof *k) : NULL;
    if (k != NULL) {
        entity_obj_init(&k->obj, kept_resource_destroy);
        k->r = *out;
        json_incref(k->r.ctx);
        json_incref(k->r.building);
        v = (struct entity_value){.obj = &k->obj};
        kept_put(lx, ENTITY_RESOURCE, id, &v);
    }
    return rc;
}

/* An allocation as alloc_load gives it, with its policy contexts. */
struct ledger_alloc {
    struct entity_obj obj;
    struct alloc a;
    json_t *ctx;                       /* ctx_alloc(&a) */
    json_t *line_ctx[ALLOC_LINES_MAX]; /* ctx_line(&a.lines[i]) */
};

static void
kept_alloc_destroy(struct entity_obj *obj)
{
    struct ledger_alloc *e = (struct ledger_alloc *)obj;
    json_decref(e->ctx);
    for (int i = 0; i < e->a.line_count; i++) {
        json_decref(e->line_ctx[i]);
    }
    alloc_free(&e->a);
    free(e);
}

/* A fresh ledger_alloc for `id`, with one reference. */
static int
kept_alloc_make(struct ledger_ctx *lx, int64_t id, struct ledger_alloc **out)
{
    struct ledger_alloc *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return oom(lx);
    }
    entity_obj_init(&e->obj, kept_alloc_destroy);
    if (alloc_load(lx, id, &e->a) != 0) {
        free(e);
        return lx->err->status;
    }
    bool ok = (e->ctx = ctx_alloc(&e->a)) != NULL;
    for (int i = 0; ok && i < e->a.line_count; i++) {
        ok = (e->line_ctx[i] = ctx_line(&e->a.lines[i])) != NULL;
    }
    if (!ok) {
        entity_obj_release(&e->obj);
        return oom(lx);
    }
    *out = e;
    return 0;
}

int
ledger_alloc_get(struct ledger_ctx *lx, int64_t id, struct ledger_alloc **out,
                 const struct alloc **a)
{
    *out = NULL;
    *a = NULL;
    bool cached = false;
    struct entity_value v;
    if (kept_usable(lx, &cached) != 0) {
        return lx->err->status;
    }
    if (cached && kept_get(lx, ENTITY_ALLOC, id, &v)) {
        *out = (struct ledger_alloc *)v.obj; /* v's reference is the caller's */
    } else {
        if (kept_alloc_make(lx, id, out) != 0) {
            return lx->err->status;
        }
        if (cached) {
            entity_obj_retain(&(*out)->obj);
            v = (struct entity_value){.obj = &(*out)->obj};
            kept_put(lx, ENTITY_ALLOC, id, &v);
        }
    }
    *a = &(*out)->a;
    return 0;
}

void
ledger_alloc_release(struct ledger_alloc *e)
{
    if (e != NULL) {
        entity_obj_release(&e->obj);
    }
}

/* The eligibility call on the contexts given (all borrowed). */
static int
eligible_call(struct ledger_ctx *lx, struct policy_set *pol, json_t *alloc_ctx, json_t *line_ctx,
              json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, bool *ok)
{
    *ok = false;
    json_t *ctx = json_pack("{s:O, s:O, s:O, s:O}", "user", user_ctx, "tenant", tenant_ctx,
                            "allocation", alloc_ctx, "line", line_ctx);
    if (ctx == NULL ||
        (resource_ctx != NULL && json_object_set(ctx, "resource", resource_ctx) != 0)) {
        json_decref(ctx);
        return oom(lx);
    }
    json_t *res = NULL;
    int rc = policy_set_call(pol, POLICY_ELIGIBILITY, ctx, &res, lx->err);
    json_decref(ctx);
    if (rc != 0) {
        return rc;
    }
    if (!json_is_boolean(res)) {
        json_decref(res);
        return eng_error_code(lx->err, ENG_EPOLICY, "policy_error",
                              "the eligibility policy must return true or false");
    }
    *ok = json_is_true(res);
    json_decref(res);
    return 0;
}

int
ledger_eligible(struct ledger_ctx *lx, struct policy_set *pol, const struct alloc *a, int line_idx,
                json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, bool *ok)
{
    *ok = false;
    json_t *alloc_ctx = ctx_alloc(a);
    json_t *line_ctx = ctx_line(&a->lines[line_idx]);
    int rc = alloc_ctx == NULL || line_ctx == NULL
                 ? oom(lx)
                 : eligible_call(lx, pol, alloc_ctx, line_ctx, user_ctx, tenant_ctx,
                                 resource_ctx, ok);
    json_decref(alloc_ctx);
    json_decref(line_ctx);
    return rc;
}

/* ---------- period boundaries ---------- */

struct closing {
    int64_t lot_id, alloc_id, period_n, owner, balance;
    int line_idx;
    bool unlimited, rollover;
};

/* Asks the rollover policy of the allocation's building how much of a
 * group's `unused` balance ending at T carries into the next period.  The
 * context follows policies/README.md §5.4: times are Unix seconds, and
 * period_start is the ending period's first instant. */
static int
rollover_carry(struct ledger_ctx *lx, const struct alloc *a, const struct closing *g,
               int64_t unused, int64_t T, int64_t *carry, char *version, size_t version_size)
{
    int64_t pfrom = 0, puntil = 0;
    bool pexists = false;
    if (alloc_window(lx, a, g->period_n, &pfrom, &puntil, &pexists) != 0) {
        return lx->err->status;
    }
    struct policy_set *pol = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    if (policy_cache_get(lx->policies, lx->store, alloc_policy_building(a), &pol, versions,
                         lx->err) != 0) {
        return lx->err->status;
    }
    snprintf(version, version_size, "%s", versions[POLICY_ROLLOVER]);
    /* The cap is on the carried total of the allocation's lots of the
     * ending period (PRODUCT.md §3), every line together: `line` is the
     * allocation's amount per period over its limited lines. */
    int64_t amount = 0;
    for (int i = 0; i < a->line_count; i++) {
        amount += a->lines[i].unlimited ? 0 : a->lines[i].amount;
    }
    json_t *cap = a->rollover_cap >= 0 ? json_integer(a->rollover_cap) : json_null();
    json_t *ctx = json_pack("{s:{s:o, s:s, s:{s:b, s:o}}, s:{s:I}, s:I, s:I, s:I}", "allocation",
                            "id", id_json("alc", a->id), "recurrence",
                            period_kind_name(a->recurrence), "rollover", "enabled", a->rollover,
                            "cap", cap, "line", "amount", (json_int_t)amount,
                            "unused", (json_int_t)unused, "period_start", (json_int_t)pfrom,
                            "period_end", (json_int_t)T);
    json_t *res = NULL;
    int rc = ctx == NULL ? oom(lx) : policy_set_call(pol, POLICY_ROLLOVER, ctx, &res, lx->err);
    json_decref(ctx);
    policy_set_release(pol);
    json_t *c = rc == 0 ? json_object_get(res, "carry") : NULL;
    /* The allocation's cap bounds whatever the policy decides (PRODUCT.md
     * §10: credits are created only by rollovers within their cap). */
    int64_t most = a->rollover_cap >= 0 && a->rollover_cap < unused ? a->rollover_cap : unused;
    if (rc == 0 && (!json_is_integer(c) || json_integer_value(c) < 0 ||
                    json_integer_value(c) > most)) {
        rc = eng_error_code(lx->err, ENG_EPOLICY, "policy_error",
                            "the rollover policy must return {carry = n} with "
                            "0 <= n <= the unused balance and the allocation's cap");
    }
    *carry = rc == 0 ? (int64_t)json_integer_value(c) : 0;
    json_decref(res);
    return rc;
}

/* Moves `carry` into a new rollover lot of period n + 1 ([from, until)). */
static int
carry_in(struct ledger_ctx *lx, const struct alloc *a, const struct closing *g, int64_t carry,
         int64_t from, int64_t until, int64_t T, const char *version)
{
    /* The carried credit lives in its own lot of the next period, so a
     * refund or report can always tell it from the new grant. */
    struct lot_row lot = {
        .allocation_id = a->id,
        .line_idx = g->line_idx,
        .period_n = g->period_n + 1,
        .user_id = g->owner,
        .kind = "rollover",
        .tenant_id = a->tenant_id,
        .valid_from = from,
        .valid_until = until,
        .granted = carry,
        .created_at = lx->now,
    };
    memcpy(lot.unit, a->unit, sizeof a->unit);
    int64_t new_lot = 0;
    bool created = false;
    if (store_lot_insert(lx->store, &lot, &new_lot, &created, lx->err) != 0) {
        return lx->err->status;
    }
    if (!created) {
        /* Each period ends once: a second carry into one lot is a bug. */
        return eng_error_code(lx->err, ENG_ESTORE, "storage_error",
                              "rollover lot of alc_%lld period %lld exists already",
                              (long long)a->id, (long long)(g->period_n + 1));
    }
    char key[64];
    snprintf(key, sizeof key, "rollover_in:%lld", (long long)new_lot);
    return entry_post(lx, new_lot, "rollover_in", carry, T, 0, key, version, NULL);
}

/* Carries part of a group's unused balance (one owner's lots of one
 * allocation ending at T, every line: PRODUCT.md §3's cap is on the
 * carried total) into rollover lots of the next period, by the rollover
 * policy, and expires the rest.  The carry is taken line by line in the
 * allocation's order, carried credit before the period's own within a
 * line; each line gives what it carries to a rollover lot of that line,
 * so the carried credit keeps its line's scope. */
static int
close_group(struct ledger_ctx *lx, struct closing *g, int count, int64_t T)
{
    struct alloc a;
    int64_t unused = 0, carry = 0;
    for (int i = 0; i < count; i++) {
        unused += g[i].unlimited ? 0 : g[i].balance;
    }
    if (alloc_load(lx, g[0].alloc_id, &a) != 0) {
        return lx->err->status;
    }
    int rc = 0;
    int64_t nfrom = 0, nuntil = 0;
    bool next_exists = false;
    char version[POLICY_LABEL_MAX] = "";
    if (unused > 0 && a.recurrence != PERIOD_NONE && a.rollover) {
        rc = alloc_window(lx, &a, g[0].period_n + 1, &nfrom, &nuntil, &next_exists);
    }
    if (rc == 0 && next_exists) {
        rc = rollover_carry(lx, &a, &g[0], unused, T, &carry, version, sizeof version);
    }
    /* Each lot's share of the carry, then each line's rollover lot. */
    int64_t *outs = calloc((size_t)count, sizeof *outs);
    if (rc == 0 && outs == NULL) {
        rc = oom(lx);
    }
    int64_t to_carry = carry;
    for (int i = 0; rc == 0 && i < count; i++) {
        int64_t bal = g[i].unlimited ? 0 : g[i].balance;
        outs[i] = bal < to_carry ? bal : to_carry;
        to_carry -= outs[i];
    }
    for (int i = 0; rc == 0 && i < count;) {
        int j = i;
        int64_t line_carry = 0;
        for (; j < count && g[j].line_idx == g[i].line_idx; j++) {
            line_carry += outs[j];
        }
        if (line_carry > 0) {
            rc = carry_in(lx, &a, &g[i], line_carry, nfrom, nuntil, T, version);
        }
        i = j;
    }
    /* Then the outs and the expiries: nothing disappears silently.  An
     * expiry the rollover policy decided records its version too. */
    const char *expire_version = version[0] != '\0' ? version : NULL;
    for (int i = 0; rc == 0 && i < count; i++) {
        char key[64];
        int64_t bal = g[i].unlimited ? 0 : g[i].balance;
        if (outs[i] > 0) {
            snprintf(key, sizeof key, "rollover_out:%lld", (long long)g[i].lot_id);
            rc = entry_post(lx, g[i].lot_id, "rollover_out", -outs[i], T, 0, key, version, NULL);
            bal -= outs[i];
        }
        if (rc == 0 && bal > 0) {
            snprintf(key, sizeof key, "expire:%lld", (long long)g[i].lot_id);
            rc = entry_post(lx, g[i].lot_id, "expire", -bal, T, 0, key, expire_version, NULL);
        }
        if (rc == 0) {
            rc = store_lot_close(lx->store, g[i].lot_id, lx->err);
        }
    }
    free(outs);
    alloc_free(&a);
    return rc;
}

/* The lots ending at one instant, collected first: closing them changes
 * the rows the query walks. */
struct closings {
    struct closing *rows;
    size_t count, cap;
};

static int
closing_add(void *ud, const struct lot_row *lot)
{
    struct closings *c = ud;
    if (c->count == c->cap) {
        size_t cap = c->cap != 0 ? 2 * c->cap : 64;
        struct closing *grown = realloc(c->rows, cap * sizeof *grown);
        if (grown == NULL) {
            return ENG_ENOMEM;
        }
        c->rows = grown;
        c->cap = cap;
    }
    c->rows[c->count++] = (struct closing){
        .lot_id = lot->id,
        .alloc_id = lot->allocation_id,
        .period_n = lot->period_n,
        .owner = lot->user_id,
        .balance = lot->balance,
        .line_idx = lot->line_idx,
        .unlimited = lot->unlimited,
        .rollover = strcmp(lot->kind, "rollover") == 0,
    };
    return 0;
}

/* Runs fn in a savepoint: a policy refusal (ENG_EPOLICY) rolls back just
 * what fn wrote and is kept in *policy_rc / *policy_err, any other failure
 * is returned (the caller's transaction rolls back). */
static int
in_savepoint(struct ledger_ctx *lx, int (*fn)(struct ledger_ctx *lx, void *arg), void *arg,
             int *policy_rc, struct eng_error *policy_err, bool *refused)
{
    *refused = false;
    int rc = store_tx(lx->store, STORE_SAVEPOINT, lx->err);
    if (rc != 0) {
        return rc;
    }
    rc = fn(lx, arg);
    if (rc == ENG_EPOLICY) {
        *refused = true;
        *policy_rc = rc;
        *policy_err = *lx->err;
        rc = store_tx(lx->store, STORE_ROLLBACK_TO, lx->err);
    }
    if (rc == 0) {
        rc = store_tx(lx->store, STORE_RELEASE, lx->err);
    } else {
        /* Any other failure: undo and close this savepoint too, so the
         * caller's own savepoint is the one its rollback reaches. */
        (void)store_tx(lx->store, STORE_ROLLBACK_TO, NULL);
        (void)store_tx(lx->store, STORE_RELEASE, NULL);
    }
    return rc;
}

struct group_arg {
    struct closing *g;
    int count;
    int64_t T;
};

static int
group_fn(struct ledger_ctx *lx, void *arg)
{
    struct group_arg *ga = arg;
    return close_group(lx, ga->g, ga->count, ga->T);
}

/* Closes every open lot whose validity ends at T, group by group. */
static int
close_at(struct ledger_ctx *lx, int64_t T)
{
    struct closings c = {0};
    int rc = store_lots_closing_each(lx->store, T, closing_add, &c, lx->err);
    if (rc == ENG_ENOMEM) {
        rc = oom(lx);
    }
    int policy_rc = 0;
    struct eng_error policy_err = {0};
    for (size_t i = 0; rc == 0 && i < c.count;) {
        size_t j = i + 1;
        struct closing *rows = c.rows;
        while (j < c.count && rows[j].alloc_id == rows[i].alloc_id &&
               rows[j].owner == rows[i].owner && rows[j].period_n == rows[i].period_n) {
            j++;
        }
        /* Each group in its own savepoint: a failing rollover policy leaves
         * its group untouched (still due, retried on the next advance) and
         * the other groups are processed. */
        struct group_arg ga = {&rows[i], (int)(j - i), T};
        bool refused = false;
        rc = in_savepoint(lx, group_fn, &ga, &policy_rc, &policy_err, &refused);
        if (refused) {
            fprintf(stderr, "allot: period end of alc_%lld at %lld left open: %s\n",
                    (long long)rows[i].alloc_id, (long long)T, policy_err.msg);
        }
        i = j;
    }
    free(c.rows);
    if (rc == 0 && policy_rc != 0) {
        *lx->err = policy_err;
        return policy_rc;
    }
    return rc;
}

/* Opening one period for the users of a per-user pool, streamed. */
struct open_ud {
    struct ledger_ctx *lx;
    struct alloc *a;
    json_t *tenant;
    int64_t n;
    json_t *user; /* the user being opened for */
    int line;     /* and the line */
};

static int
open_one(void *ud, struct policy_set *pol, bool *ok)
{
    struct open_ud *o = ud;
    return ledger_eligible(o->lx, pol, o->a, o->line, o->user, o->tenant, NULL, ok);
}

static int
open_user(void *ud, int64_t user_id)
{
    struct open_ud *o = ud;
    int64_t tid = 0, lot_id;
    bool created;
    int rc;
    json_t *user = ctx_user(o->lx, user_id, &tid, &rc);
    o->user = user;
    for (int i = 0; rc == 0 && i < o->a->line_count; i++) {
        bool ok = false;
        o->line = i;
        rc = eligible_in_any(o->lx, o->a, open_one, o, &ok);
        if (rc == 0 && ok) {
            rc = lot_ensure(o->lx, o->a, i, o->n, user_id, &lot_id, &created);
        }
    }
    json_decref(user);
    return rc;
}

/* Opens period n of allocation a: its shared lots, or one lot per targeted
 * user for a per-user pool. */
static int
open_period(struct ledger_ctx *lx, struct alloc *a, int64_t n)
{
    bool per_user = strcmp(a->pool, "per_user") == 0;
    int rc = 0;
    int64_t lot_id;
    bool created;
    if (!per_user) {
        for (int i = 0; rc == 0 && i < a->line_count; i++) {
            rc = lot_ensure(lx, a, i, n, 0, &lot_id, &created);
        }
        return rc;
    }
    /* No resource is involved: any of the allocation's buildings admitting
     * the user opens its lot (eligible_in_any). */
    struct open_ud o = {lx, a, NULL, n, NULL, 0};
    o.tenant = ctx_tenant(lx, a->tenant_id, &rc);
    if (rc == 0) {
        rc = store_tenant_users_each(lx->store, a->tenant_id, open_user, &o, lx->err);
    }
    json_decref(o.tenant);
    return rc;
}

struct open_arg {
    struct alloc *a;
    int64_t n;
};

static int
open_fn(struct ledger_ctx *lx, void *arg)
{
    struct open_arg *oa = arg;
    return open_period(lx, oa->a, oa->n);
}

static int
open_at(struct ledger_ctx *lx, int64_t T)
{
    int64_t id = 0, n = 0;
    bool found = false;
    if (store_allocation_opening_at(lx->store, T, &id, &n, &found, lx->err) != 0) {
        return lx->err->status;
    }
    if (!found) {
        return 0;
    }
    struct alloc a;
    if (alloc_load(lx, id, &a) != 0) {
        return lx->err->status;
    }
    /* A policy that fails while opening (per-user targeting) leaves this
     * period's per-user lots to be created on demand, which fails closed
     * until the policy is fixed; the cursor still moves on. */
    int policy_rc = 0;
    struct eng_error policy_err = {0};
    bool refused = false;
    struct open_arg oa = {&a, n};
    int rc = in_savepoint(lx, open_fn, &oa, &policy_rc, &policy_err, &refused);
    if (refused) {
        fprintf(stderr, "allot: opening period %lld of alc_%lld: %s\n", (long long)n,
                (long long)id, policy_err.msg);
    }
    int64_t from = 0, until = 0;
    bool exists = false;
    if (rc == 0 && a.recurrence != PERIOD_NONE) {
        rc = alloc_window(lx, &a, n + 1, &from, &until, &exists);
    }
    if (rc == 0) {
        rc = store_allocation_set_cursor(lx->store, id, n + 1, exists ? from : TIME_NEVER,
                                         lx->err);
    }
    alloc_free(&a);
    if (rc == 0 && policy_rc != 0) {
        *lx->err = policy_err;
        return policy_rc;
    }
    return rc;
}

int
ledger_next_due(struct ledger_ctx *lx, int64_t *due)
{
    int64_t t1, t2;
    if (store_lot_next_end(lx->store, INT64_MIN, &t1, lx->err) != 0 ||
        store_allocation_next_opening(lx->store, &t2, lx->err) != 0) {
        return lx->err->status;
    }
    *due = t1 < t2 ? t1 : t2;
    return 0;
}

int
ledger_advance(struct ledger_ctx *lx)
{
    /* One boundary instant at a time, in order; at an instant, closings
     * (rollover, expiry) come before openings, so a new period never sees
     * the old period's lots as live.  Closings a policy refused stay open;
     * the scan moves past their instant and reports the refusal at the end. */
    int64_t closed_to = INT64_MIN;
    int policy_rc = 0;
    struct eng_error policy_err = {0};
    for (;;) {
        int64_t t1, t2;
        if (store_lot_next_end(lx->store, closed_to, &t1, lx->err) != 0 ||
            store_allocation_next_opening(lx->store, &t2, lx->err) != 0) {
            return lx->err->status;
        }
        if (t1 > lx->now && t2 > lx->now) {
            break;
        }
        int rc;
        if (t1 <= t2) {
            rc = close_at(lx, t1);
            closed_to = t1;
        } else {
            rc = open_at(lx, t2);
        }
        if (rc == ENG_EPOLICY) {
            policy_rc = rc;
            policy_err = *lx->err;
        } else if (rc != 0) {
            return rc;
        }
    }
    if (policy_rc != 0) {
        *lx->err = policy_err;
    }
    return policy_rc;
}

/* ---------- which lots may pay ---------- */

/* A lot as a read snapshot keeps it for its portfolio generation: every
 * column that cannot move without moving the generation (store/db.c's
 * triggers: a lot's creation, closing, validity and limit, and its balance
 * becoming or ceasing to be zero), so not the balance itself. */
struct kept_lot {
    struct entity_obj obj;
    int64_t id, valid_from, valid_until, granted;
    bool unlimited, closed, positive;
};

static void
kept_lot_destroy(struct entity_obj *obj)
{
    free(obj);
}

/* The lot of the key on a read snapshot with the cache: its kept facts when
 * an earlier request of the generation looked (lots are never deleted, and
 * every creation moves the generation, so "no such lot" is kept too), else
 * read and kept; then (*fresh) *balance is the balance just read. */
static int
lot_kept(struct ledger_ctx *lx, const struct entity_key *key, const struct alloc *a,
         int line_idx, int64_t n, int64_t owner, const char *kind, struct kept_lot *out,
         bool *found, int64_t *balance, bool *fresh)
{
    struct entity_value v;
    *found = *fresh = false;
    if (entity_cache_get(lx->cache, lx->cache_gen, key, &v)) {
        if (v.obj != NULL) {
            *out = *(const struct kept_lot *)v.obj;
            *found = true;
        }
        entity_value_clear(&v);
        return 0;
    }
    struct lot_row lot;
    if (store_lot_find(lx->store, a->id, a->lines[line_idx].idx, n, owner, kind, &lot, found,
                       lx->err) != 0) {
        return lx->err->status;
    }
    v = (struct entity_value){.n = !*found};
    if (*found) {
        *out = (struct kept_lot){
            .id = lot.id, .valid_from = lot.valid_from, .valid_until = lot.valid_until,
            .granted = lot.granted, .unlimited = lot.unlimited, .closed = lot.closed,
            .positive = lot.balance > 0,
        };
        *balance = lot.balance;
        *fresh = true;
        struct kept_lot *k = malloc(sizeof *k);
        if (k == NULL) {
            return 0; /* not kept: the next request reads it again */
        }
        *k = *out;
        entity_obj_init(&k->obj, kept_lot_destroy);
        v.obj = &k->obj;
    }
    entity_cache_put(lx->cache, lx->cache_gen, key, &v);
    return 0;
}

/* Adds the real lot matching the key, if open and valid at t, to cands. */
static int
add_existing(struct ledger_ctx *lx, const struct alloc *a, int line_idx, int64_t n, int64_t owner,
             const char *kind, int64_t t, bool with_empty, struct cand_list *list,
             bool *found)
{
    bool rollover = strcmp(kind, "rollover") == 0;
    struct kept_lot lot;
    int64_t balance = 0;
    *found = false;
    if (lx->cache != NULL && lx->cache_gen != 0) {
        const struct entity_key key = {ENTITY_LOT,
                                       {a->id, a->lines[line_idx].idx, n, owner, rollover}};
        bool fresh = false;
        if (lot_kept(lx, &key, a, line_idx, n, owner, kind, &lot, found, &balance, &fresh) !=
            0) {
            return lx->err->status;
        }
        if (!*found || lot.closed || lot.valid_from > t || t >= lot.valid_until ||
            !(with_empty || lot.unlimited || lot.positive)) {
            return 0;
        }
        /* Only the balance moves within the generation: read from the
         * snapshot (a booking plan's debits are re-checked by the writer). */
        bool there = fresh;
        if (!fresh && store_lot_balance(lx->store, lot.id, &balance, &there, lx->err) != 0) {
            return lx->err->status;
        }
        if (!there) {
            return eng_error_code(lx->err, ENG_ESTORE, "storage_error",
                                  "lot_%lld is kept for this generation but missing",
                                  (long long)lot.id);
        }
    } else {
        struct lot_row row;
        if (store_lot_find(lx->store, a->id, a->lines[line_idx].idx, n, owner, kind, &row, found,
                           lx->err) != 0) {
            return lx->err->status;
        }
        if (!*found) {
            return 0;
        }
        lot = (struct kept_lot){
            .id = row.id, .valid_from = row.valid_from, .valid_until = row.valid_until,
            .granted = row.granted, .unlimited = row.unlimited, .closed = row.closed,
        };
        balance = row.balance;
    }
    if (lot.closed || lot.valid_from > t || t >= lot.valid_until ||
        !(with_empty || lot.unlimited || balance > 0)) {
        return 0;
    }
    struct cand c = {
        .lot_id = lot.id,
        .balance = balance,
        .unlimited = lot.unlimited,
        .valid_from = lot.valid_from,
        .valid_until = lot.valid_until,
        .granted = lot.granted,
        .rollover = rollover,
        .alloc_id = a->id,
        .line_idx = line_idx,
        .period_n = n,
        .owner = owner,
    };
    return cand_list_push(list, &c) != 0 ? oom(lx) : 0;
}

static int
add_line_lots(struct ledger_ctx *lx, const struct alloc *a, int line_idx, int64_t n, int64_t owner,
              int64_t t, bool create, bool with_empty, struct cand_list *list)
{
    int first = list->count;
    bool found;
    if (add_existing(lx, a, line_idx, n, owner, "rollover", t, with_empty, list, &found) ||
        add_existing(lx, a, line_idx, n, owner, "period", t, with_empty, list, &found)) {
        return lx->err->status;
    }
    if (!found) {
        const struct alloc_line *l = &a->lines[line_idx];
        struct cand c = {0};
        bool exists;
        if (alloc_window(lx, a, n, &c.valid_from, &c.valid_until, &exists) != 0) {
            return lx->err->status;
        }
        if (create) {
            bool created;
            if (lot_ensure(lx, a, line_idx, n, owner, &c.lot_id, &created) != 0) {
                return lx->err->status;
            }
        }
        c.balance = l->amount;
        c.granted = l->amount;
        c.unlimited = l->unlimited;
        c.alloc_id = a->id;
        c.line_idx = line_idx;
        c.period_n = n;
        c.owner = owner;
        if (exists && c.valid_from <= t && t < c.valid_until && cand_list_push(list, &c) != 0) {
            return eng_error_set(lx->err, ENG_ENOMEM, "out of memory");
        }
    }
    for (int i = first; i < list->count; i++) {
        struct cand *c = &list->items[i];
        c->alloc_seq = a->id;
        c->per_user = owner != 0;
        c->recurring = a->recurrence != PERIOD_NONE;
        _Static_assert(sizeof c->scope == sizeof a->lines[line_idx].scope, "scope buffers differ");
        memcpy(c->scope, a->lines[line_idx].scope, sizeof c->scope);
    }
    return 0;
}

/* One ledger_candidates call, streamed over the tenant's allocations. */
struct cands_ud {
    struct ledger_ctx *lx;
    struct policy_set *pol; /* the resource building's set (resource case) */
    int64_t user_id, tenant_id, resource_id; /* resource_id 0: none */
    json_t *user_ctx, *tenant_ctx, *resource_ctx;
    int64_t t;
    bool create, with_empty;
    bool memo; /* eligibility verdicts may be kept (entities.h) */
    struct cand_list *list;
};

/* Whether line i of the allocation may pay: the verdict kept for this
 * generation when there is one (entities.h), else the policy's. */
static int
cands_eligible(struct cands_ud *u, struct policy_set *pol, const struct ledger_alloc *e, int i,
               bool *ok)
{
    /* The verdict is a function of the set and of the entities the
     * contexts were made from (policies are pure): its key. */
    const struct entity_key key = {
        ENTITY_ELIG,
        {(int64_t)policy_set_serial(pol), u->user_id, u->tenant_id, u->resource_id,
         e->a.id * ALLOC_LINES_MAX + i},
    };
    struct entity_value v;
    if (u->memo && entity_cache_get(u->lx->cache, u->lx->cache_gen, &key, &v)) {
        *ok = v.n != 0;
        return 0;
    }
    int rc = eligible_call(u->lx, pol, e->ctx, e->line_ctx[i], u->user_ctx, u->tenant_ctx,
                           u->resource_ctx, ok);
    if (rc == 0 && u->memo) {
        v = (struct entity_value){.n = *ok};
        entity_cache_put(u->lx->cache, u->lx->cache_gen, &key, &v);
    }
    return rc;
}

struct cands_line {
    struct cands_ud *u;
    const struct ledger_alloc *e;
    int line;
};

static int
cands_one(void *ud, struct policy_set *pol, bool *ok)
{
    struct cands_line *cl = ud;
    return cands_eligible(cl->u, pol, cl->e, cl->line, ok);
}

static int
cands_alloc(void *ud, int64_t id)
{
    struct cands_ud *u = ud;
    struct ledger_ctx *lx = u->lx;
    struct ledger_alloc *e = NULL;
    const struct alloc *a = NULL;
    if (ledger_alloc_get(lx, id, &e, &a) != 0) {
        return lx->err->status;
    }
    int64_t n = 0;
    bool in_schedule = false;
    int rc = alloc_period_at(lx, a, u->t, &n, &in_schedule);
    /* ledger_eligibility_building: with a resource, the caller's set (its
     * building's) decides; without one, any of the allocation's buildings
     * admitting the user (eligible_in_any). */
    int64_t owner = strcmp(a->pool, "per_user") == 0 ? u->user_id : 0;
    struct cands_line cl = {u, e, 0};
    for (int i = 0; rc == 0 && in_schedule && i < a->line_count; i++) {
        bool ok = false;
        cl.line = i;
        rc = u->resource_ctx != NULL ? cands_eligible(u, u->pol, e, i, &ok)
                                     : eligible_in_any(lx, a, cands_one, &cl, &ok);
        if (rc == 0 && ok) {
            rc = add_line_lots(lx, a, i, n, owner, u->t, u->create, u->with_empty, u->list);
        }
    }
    ledger_alloc_release(e);
    return rc;
}

/* A tenant's allocations with what decides whether each is in force,
 * kept for the generation. */
struct kept_allocs {
    struct entity_obj obj;
    int count, cap;
    struct allocation_span *items;
};

static void
kept_allocs_destroy(struct entity_obj *obj)
{
    struct kept_allocs *k = (struct kept_allocs *)obj;
    free(k->items);
    free(k);
}

static int
kept_allocs_add(void *ud, const struct allocation_span *a)
{
    struct kept_allocs *k = ud;
    if (k->count == k->cap) {
        int cap = k->cap != 0 ? k->cap * 2 : 8;
        struct allocation_span *grown = realloc(k->items, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            return ENG_ENOMEM;
        }
        k->items = grown;
        k->cap = cap;
    }
    k->items[k->count++] = *a;
    return 0;
}

/* The tenant's allocations (lx->cache usable), with a reference for the
 * caller (entity_obj_release). */
static int
kept_allocs_get(struct ledger_ctx *lx, int64_t tenant_id, struct kept_allocs **out)
{
    struct entity_value v;
    if (kept_get(lx, ENTITY_TENANT_ALLOCS, tenant_id, &v)) {
        *out = (struct kept_allocs *)v.obj; /* v's reference is the caller's */
        return 0;
    }
    struct kept_allocs *k = calloc(1, sizeof *k);
    if (k == NULL) {
        return oom(lx);
    }
    entity_obj_init(&k->obj, kept_allocs_destroy);
    int rc = store_allocations_of_tenant_each(lx->store, tenant_id, kept_allocs_add, k, lx->err);
    if (rc != 0) {
        entity_obj_release(&k->obj);
        return rc == ENG_ENOMEM ? oom(lx) : rc;
    }
    entity_obj_retain(&k->obj);
    v = (struct entity_value){.obj = &k->obj};
    kept_put(lx, ENTITY_TENANT_ALLOCS, tenant_id, &v);
    *out = k;
    return 0;
}

int
ledger_candidates(struct ledger_ctx *lx, struct policy_set *pol, int64_t user_id, int64_t tenant_id,
                  json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, const char *unit,
                  int64_t t, bool create, bool with_empty, struct cand_list *list)
{
    list->count = 0;
    /* Every allocation in force is considered, however many: the query is
     * streamed, each allocation loaded (or found in the generation's
     * entities) and judged in turn. */
    struct cands_ud u = {
        .lx = lx, .pol = pol, .user_id = user_id, .tenant_id = tenant_id,
        .user_ctx = user_ctx, .tenant_ctx = tenant_ctx, .resource_ctx = resource_ctx,
        .t = t, .create = create, .with_empty = with_empty, .list = list,
    };
    bool cached = false;
    if (kept_usable(lx, &cached) != 0) {
        return lx->err->status;
    }
    /* Verdicts are kept by the ids the contexts were made from. */
    const char *rid = json_string_value(json_object_get(resource_ctx, "id"));
    u.memo = cached && (resource_ctx == NULL ||
                        (rid != NULL && id_parse("res", rid, &u.resource_id) == 0));
    if (!cached) {
        return store_allocations_in_force_each(lx->store, tenant_id, unit, t, cands_alloc, &u,
                                               lx->err);
    }
    /* On a read snapshot: the tenant's allocations as kept for the
     * generation (every change to an allocation moves it), tested here as
     * store_allocations_in_force_each tests them, in the same (id) order. */
    struct kept_allocs *k = NULL;
    if (kept_allocs_get(lx, tenant_id, &k) != 0) {
        return lx->err->status;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < k->count; i++) {
        const struct allocation_span *sp = &k->items[i];
        if (sp->start_at <= t && (sp->end_at == TIME_NEVER || sp->end_at > t) &&
            strcmp(sp->unit, unit) == 0) {
            rc = cands_alloc(&u, sp->id);
        }
    }
    entity_obj_release(&k->obj);
    return rc;
}

int
cand_list_push(struct cand_list *list, const struct cand *c)
{
    if (list->count == list->cap) {
        int cap = list->cap ? list->cap * 2 : 4; /* most bookings meet one or two */
        struct cand *grown = realloc(list->items, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            return ENG_ENOMEM;
        }
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->count++] = *c;
    return 0;
}

void
cand_list_free(struct cand_list *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* ---------- the default order, in C ----------
 *
 * policies/default/order.lua's keys, most significant first: limited
 * before unlimited, a specific line (scope other than "all") before "all",
 * per-user before shared, earliest valid_until (never last), recurring
 * before once, lowest allocation_seq, rollover before period, and last the
 * lot ids as strings, byte by byte ("lot_12" before "lot_3").  With
 * distinct ids the order is total, so any sort gives the policy's one
 * answer. */

struct order_item {
    const struct cand *c;
    int index;
    char id[32];
};

static int
order_cmp(const void *pa, const void *pb)
{
    const struct order_item *a = pa, *b = pb;
    const struct cand *x = a->c, *y = b->c;
    int64_t kx[7] = {x->unlimited, strcmp(x->scope, "all") == 0, !x->per_user, x->valid_until,
                     !x->recurring, x->alloc_seq, !x->rollover};
    int64_t ky[7] = {y->unlimited, strcmp(y->scope, "all") == 0, !y->per_user, y->valid_until,
                     !y->recurring, y->alloc_seq, !y->rollover};
    for (int i = 0; i < 7; i++) {
        if (kx[i] != ky[i]) {
            return kx[i] < ky[i] ? -1 : 1;
        }
    }
    return strcmp(a->id, b->id);
}

bool
ledger_default_order(const struct cand *items, int count, int *order)
{
    /* Any number of lots (a tenant may hold thousands that pay: the Lua
     * copy ran out of its instruction budget past ~3,000, a 503 on a
     * booking the quote offered).  Real lots have distinct ids; lots still
     * to be made share one ("lot_0"), and for those the Lua policy's order
     * is what counts: two of them, and it is called. */
    enum { ORDER_STACK_MAX = 16 };
    int unmade = 0;
    for (int i = 0; i < count; i++) {
        unmade += items[i].lot_id <= 0;
    }
    if (unmade > 1 || count < 0) {
        return false;
    }
    struct order_item stack[ORDER_STACK_MAX];
    struct order_item *it = count <= ORDER_STACK_MAX ? stack : malloc((size_t)count * sizeof *it);
    if (it == NULL) {
        return false; /* the policy runs instead */
    }
    for (int i = 0; i < count; i++) {
        it[i].c = &items[i];
        it[i].index = i;
        id_format("lot", items[i].lot_id, it[i].id, sizeof it[i].id);
    }
    qsort(it, (size_t)count, sizeof it[0], order_cmp);
    for (int k = 0; k < count; k++) {
        order[k] = it[k].index;
    }
    if (it != stack) {
        free(it);
    }
    return true;
}
