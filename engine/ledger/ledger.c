/* ledger.c - lots, entries, period boundaries (PRODUCT.md §3, §9). */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"

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

static int
alloc_load_lines(struct ledger_ctx *lx, struct alloc *a)
{
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT idx, scope, resource_ids, tags, amount FROM"
                                  " allocation_line WHERE allocation_id = ? ORDER BY idx",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, a->id);
    while (sqlite3_step(st) == SQLITE_ROW && a->line_count < ALLOC_LINES_MAX) {
        struct alloc_line *l = &a->lines[a->line_count++];
        l->idx = sqlite3_column_int(st, 0);
        snprintf(l->scope, sizeof l->scope, "%s", (const char *)sqlite3_column_text(st, 1));
        l->resource_ids = json_from_text((const char *)sqlite3_column_text(st, 2));
        l->tags = json_from_text((const char *)sqlite3_column_text(st, 3));
        l->unlimited = sqlite3_column_type(st, 4) == SQLITE_NULL;
        l->amount = l->unlimited ? 0 : sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    st = store_prep(lx->store,
                    "SELECT building_id FROM allocation_building WHERE allocation_id = ?"
                    " ORDER BY pos",
                    lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, a->id);
    a->building_ids = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t bid = sqlite3_column_int64(st, 0);
        if (a->first_building == 0) {
            a->first_building = bid;
        }
        json_array_append_new(a->building_ids, id_json("bld", bid));
    }
    sqlite3_reset(st);
    return 0;
}

int
alloc_load(struct ledger_ctx *lx, int64_t id, struct alloc *a)
{
    memset(a, 0, sizeof *a);
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT tenant_id, unit, pool, zone, cross_building, rollover,"
                                  " rollover_cap, recurrence, start_date, end_date, start_at,"
                                  " end_at, targeting, description FROM allocation WHERE id = ?",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? eng_error_code(lx->err, ENG_ENOTFOUND, "not_found", "allocation not found")
                                 : store_fail(lx->store, "allocation", lx->err);
    }
    a->id = id;
    a->tenant_id = sqlite3_column_int64(st, 0);
    snprintf(a->unit, sizeof a->unit, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(a->pool, sizeof a->pool, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(a->zone, sizeof a->zone, "%s", (const char *)sqlite3_column_text(st, 3));
    a->cross_building = sqlite3_column_int(st, 4) != 0;
    a->rollover = sqlite3_column_int(st, 5) != 0;
    a->rollover_cap = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 6);
    struct eng_error e = {0};
    (void)period_kind_parse((const char *)sqlite3_column_text(st, 7), &a->recurrence, &e);
    (void)date_parse((const char *)sqlite3_column_text(st, 8), &a->start_date, &e);
    a->has_end = sqlite3_column_type(st, 9) != SQLITE_NULL;
    if (a->has_end) {
        (void)date_parse((const char *)sqlite3_column_text(st, 9), &a->end_date, &e);
    }
    a->start_at = sqlite3_column_int64(st, 10);
    a->end_at = sqlite3_column_type(st, 11) == SQLITE_NULL ? TIME_NEVER
                                                            : sqlite3_column_int64(st, 11);
    a->targeting = json_from_text((const char *)sqlite3_column_text(st, 12));
    snprintf(a->description, sizeof a->description, "%s",
             (const char *)sqlite3_column_text(st, 13));
    sqlite3_reset(st);
    if (alloc_load_lines(lx, a) != 0) {
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

int
alloc_window(struct ledger_ctx *lx, const struct alloc *a, int64_t n, int64_t *from, int64_t *until,
             bool *exists)
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

/* ---------- entries and lots ---------- */

int
entry_post(struct ledger_ctx *lx, int64_t lot_id, const char *kind, int64_t amount, int64_t effective_at,
           int64_t booking_id, const char *event_key, const char *policy_version,
           const char *memo)
{
    sqlite3_stmt *st = store_prep(lx->store,
                                  "INSERT INTO entry (lot_id, kind, amount, effective_at,"
                                  " created_at, booking_id, tenant_id, unit, event_key,"
                                  " policy_version, memo, actor)"
                                  " SELECT id, ?2, ?3, ?4, ?5, ?6, tenant_id, unit, ?7, ?8, ?9, ?10"
                                  " FROM lot WHERE id = ?1",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, lot_id);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, amount);
    sqlite3_bind_int64(st, 4, effective_at);
    sqlite3_bind_int64(st, 5, lx->now);
    if (booking_id != 0) {
        sqlite3_bind_int64(st, 6, booking_id);
    }
    if (event_key != NULL) {
        sqlite3_bind_text(st, 7, event_key, -1, SQLITE_TRANSIENT);
    }
    if (policy_version != NULL) {
        sqlite3_bind_text(st, 8, policy_version, -1, SQLITE_TRANSIENT);
    }
    if (memo != NULL) {
        sqlite3_bind_text(st, 9, memo, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_text(st, 10, lx->actor, -1, SQLITE_TRANSIENT);
    if (legacy_step_done(lx->store, lx->err, st, "entry insert") != 0) {
        return ENG_ESTORE;
    }
    ENG_ASSERT(sqlite3_changes(lx->store->db) == 1);
    if (amount == 0) {
        return 0;
    }
    st = store_prep(lx->store,
                    "UPDATE lot SET balance = balance + ?1,"
                    " used = used - CASE WHEN ?3 IN ('debit', 'refund') THEN ?1 ELSE 0 END,"
                    " adjusted = adjusted + CASE WHEN ?3 = 'adjust' THEN ?1 ELSE 0 END"
                    " WHERE id = ?2",
                    lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, amount);
    sqlite3_bind_int64(st, 2, lot_id);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        /* The CHECK (balance >= 0) refusing is a programmer error upstream,
         * but it must never commit: report it as a store failure. */
        return store_fail(lx->store, "lot balance", lx->err);
    }
    return 0;
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
    sqlite3_stmt *st = store_prep(lx->store,
                                  "INSERT INTO lot (allocation_id, line_idx, period_n, user_id,"
                                  " kind, tenant_id, unit, valid_from, valid_until, granted,"
                                  " unlimited, balance, created_at)"
                                  " VALUES (?1, ?2, ?3, ?4, 'period', ?5, ?6, ?7, ?8, ?9, ?10, 0,"
                                  " ?11) ON CONFLICT DO NOTHING",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int(st, 2, l->idx);
    sqlite3_bind_int64(st, 3, n);
    sqlite3_bind_int64(st, 4, owner);
    sqlite3_bind_int64(st, 5, a->tenant_id);
    sqlite3_bind_text(st, 6, a->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, from);
    sqlite3_bind_int64(st, 8, until);
    sqlite3_bind_int64(st, 9, l->amount);
    sqlite3_bind_int(st, 10, l->unlimited);
    sqlite3_bind_int64(st, 11, lx->now);
    if (legacy_step_done(lx->store, lx->err, st, "lot insert") != 0) {
        return ENG_ESTORE;
    }
    if (sqlite3_changes(lx->store->db) == 1) {
        *lot_id = sqlite3_last_insert_rowid(lx->store->db);
        *created = true;
        char key[64];
        snprintf(key, sizeof key, "grant:%lld", (long long)*lot_id);
        return entry_post(lx, *lot_id, "grant", l->amount, from, 0, key, NULL, a->description);
    }
    st = store_prep(lx->store,
                    "SELECT id FROM lot WHERE allocation_id = ? AND line_idx = ? AND"
                    " period_n = ? AND user_id = ? AND kind = 'period'",
                    lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int(st, 2, l->idx);
    sqlite3_bind_int64(st, 3, n);
    sqlite3_bind_int64(st, 4, owner);
    int rc = sqlite3_step(st);
    *lot_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : store_fail(lx->store, "lot lookup", lx->err);
}

/* ---------- policy contexts ---------- */

json_t *
ctx_user(struct ledger_ctx *lx, int64_t user_id, int64_t *tenant_id, int *rc)
{
    sqlite3_stmt *st = legacy_row(lx->store, lx->err, "SELECT tenant_id, roles FROM user WHERE id = ?", user_id,
                               "user", rc);
    if (st == NULL) {
        return NULL;
    }
    *tenant_id = sqlite3_column_int64(st, 0);
    json_t *u = json_pack("{s:o, s:o, s:o}", "id", id_json("usr", user_id), "tenant_id",
                          id_json("ten", *tenant_id), "roles",
                          json_from_text((const char *)sqlite3_column_text(st, 1)));
    sqlite3_reset(st);
    return u;
}

json_t *
ctx_tenant(struct ledger_ctx *lx, int64_t tenant_id, int *rc)
{
    sqlite3_stmt *st = legacy_row(lx->store, lx->err, "SELECT cross_building FROM tenant WHERE id = ?", tenant_id,
                               "tenant", rc);
    if (st == NULL) {
        return NULL;
    }
    bool cross = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    json_t *bids = json_array();
    st = store_prep(lx->store, "SELECT building_id FROM tenant_building WHERE tenant_id = ?",
                    lx->err);
    if (st == NULL) {
        json_decref(bids);
        *rc = ENG_ESTORE;
        return NULL;
    }
    sqlite3_bind_int64(st, 1, tenant_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(bids, id_json("bld", sqlite3_column_int64(st, 0)));
    }
    sqlite3_reset(st);
    return json_pack("{s:o, s:o, s:b}", "id", id_json("ten", tenant_id), "building_ids", bids,
                     "cross_building", cross);
}

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

int
ledger_eligible(struct ledger_ctx *lx, struct policy_set *pol, const struct alloc *a, int line_idx,
                json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, bool *ok)
{
    json_t *ctx = json_pack("{s:O, s:O, s:o, s:o}", "user", user_ctx, "tenant", tenant_ctx,
                            "allocation", ctx_alloc(a), "line", ctx_line(&a->lines[line_idx]));
    if (resource_ctx != NULL) {
        json_object_set(ctx, "resource", resource_ctx);
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

/* ---------- period boundaries ---------- */

struct closing {
    int64_t lot_id, alloc_id, period_n, owner, balance;
    int line_idx;
    bool unlimited, rollover;
};

/* Carries part of a group's unused balance into a rollover lot of the next
 * period (by the rollover policy) and expires the rest, at instant T. */
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
    char version[48] = "";
    if (unused > 0 && a.recurrence != PERIOD_NONE && a.rollover) {
        rc = alloc_window(lx, &a, g[0].period_n + 1, &nfrom, &nuntil, &next_exists);
    }
    if (rc == 0 && next_exists) {
        struct policy_set *pol = NULL;
        char versions[POLICY_KIND_COUNT][48];
        rc = policy_cache_get(lx->policies, lx->store, alloc_policy_building(&a), &pol, versions, lx->err);
        if (rc == 0) {
            snprintf(version, sizeof version, "%s", versions[POLICY_ROLLOVER]);
            json_t *cap = a.rollover_cap >= 0 ? json_integer(a.rollover_cap) : json_null();
            json_t *ctx = json_pack(
                "{s:{s:o, s:s, s:{s:b, s:o}}, s:{s:I}, s:I, s:I, s:I}", "allocation", "id",
                id_json("alc", a.id), "recurrence", period_kind_name(a.recurrence), "rollover",
                "enabled", a.rollover, "cap", cap, "line", "amount",
                (json_int_t)a.lines[g[0].line_idx].amount, "unused", (json_int_t)unused,
                "period_start", (json_int_t)g[0].period_n, "period_end", (json_int_t)T);
            json_t *res = NULL;
            rc = policy_set_call(pol, POLICY_ROLLOVER, ctx, &res, lx->err);
            json_decref(ctx);
            policy_set_release(pol);
            json_t *c = rc == 0 ? json_object_get(res, "carry") : NULL;
            if (rc == 0 && (!json_is_integer(c) || json_integer_value(c) < 0 ||
                            json_integer_value(c) > unused)) {
                rc = eng_error_code(lx->err, ENG_EPOLICY, "policy_error",
                                    "the rollover policy must return {carry = n} with "
                                    "0 <= n <= the unused balance");
            }
            carry = rc == 0 ? (int64_t)json_integer_value(c) : 0;
            json_decref(res);
        }
    }
    if (rc == 0 && carry > 0) {
        /* The carried credit lives in its own lot of the next period, so a
         * refund or report can always tell it from the new grant. */
        sqlite3_stmt *st = store_prep(
            lx->store,
            "INSERT INTO lot (allocation_id, line_idx, period_n, user_id, kind, tenant_id, unit,"
            " valid_from, valid_until, granted, unlimited, balance, created_at)"
            " VALUES (?, ?, ?, ?, 'rollover', ?, ?, ?, ?, ?, 0, 0, ?)",
            lx->err);
        rc = st == NULL ? ENG_ESTORE : 0;
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, a.id);
            sqlite3_bind_int(st, 2, g[0].line_idx);
            sqlite3_bind_int64(st, 3, g[0].period_n + 1);
            sqlite3_bind_int64(st, 4, g[0].owner);
            sqlite3_bind_int64(st, 5, a.tenant_id);
            sqlite3_bind_text(st, 6, a.unit, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, nfrom);
            sqlite3_bind_int64(st, 8, nuntil);
            sqlite3_bind_int64(st, 9, carry);
            sqlite3_bind_int64(st, 10, lx->now);
            rc = legacy_step_done(lx->store, lx->err, st, "rollover lot");
        }
        if (rc == 0) {
            int64_t new_lot = sqlite3_last_insert_rowid(lx->store->db);
            char key[64];
            snprintf(key, sizeof key, "rollover_in:%lld", (long long)new_lot);
            rc = entry_post(lx, new_lot, "rollover_in", carry, T, 0, key, version, NULL);
        }
    }
    /* Take the carry from the group's lots in order (carried credit first),
     * then expire whatever is left: nothing disappears silently. */
    int64_t to_carry = carry;
    for (int i = 0; rc == 0 && i < count; i++) {
        char key[64];
        int64_t bal = g[i].unlimited ? 0 : g[i].balance;
        int64_t out = bal < to_carry ? bal : to_carry;
        if (out > 0) {
            snprintf(key, sizeof key, "rollover_out:%lld", (long long)g[i].lot_id);
            rc = entry_post(lx, g[i].lot_id, "rollover_out", -out, T, 0, key, version, NULL);
            to_carry -= out;
            bal -= out;
        }
        if (rc == 0 && bal > 0) {
            snprintf(key, sizeof key, "expire:%lld", (long long)g[i].lot_id);
            rc = entry_post(lx, g[i].lot_id, "expire", -bal, T, 0, key, NULL, NULL);
        }
        if (rc == 0) {
            sqlite3_stmt *st = store_prep(lx->store, "UPDATE lot SET closed = 1 WHERE id = ?",
                                          lx->err);
            rc = st == NULL ? ENG_ESTORE : 0;
            if (rc == 0) {
                sqlite3_bind_int64(st, 1, g[i].lot_id);
                rc = legacy_step_done(lx->store, lx->err, st, "lot close");
            }
        }
    }
    alloc_free(&a);
    return rc;
}

/* Closes every open lot whose validity ends at T, group by group. */
static int
close_at(struct ledger_ctx *lx, int64_t T)
{
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT id, allocation_id, line_idx, period_n, user_id, balance,"
                                  " unlimited, kind = 'rollover' FROM lot WHERE closed = 0 AND"
                                  " valid_until = ? ORDER BY allocation_id, line_idx, user_id,"
                                  " period_n, kind DESC, id",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, T);
    size_t cap = 64, n = 0;
    struct closing *rows = malloc(cap * sizeof *rows);
    int rc = rows == NULL ? eng_error_set(lx->err, ENG_ENOMEM, "out of memory") : 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            struct closing *bigger = realloc(rows, 2 * cap * sizeof *rows);
            if (bigger == NULL) {
                rc = eng_error_set(lx->err, ENG_ENOMEM, "out of memory");
                break;
            }
            rows = bigger;
            cap *= 2;
        }
        struct closing *c = &rows[n++];
        c->lot_id = sqlite3_column_int64(st, 0);
        c->alloc_id = sqlite3_column_int64(st, 1);
        c->line_idx = sqlite3_column_int(st, 2);
        c->period_n = sqlite3_column_int64(st, 3);
        c->owner = sqlite3_column_int64(st, 4);
        c->balance = sqlite3_column_int64(st, 5);
        c->unlimited = sqlite3_column_int(st, 6) != 0;
        c->rollover = sqlite3_column_int(st, 7) != 0;
    }
    sqlite3_reset(st);
    int policy_rc = 0;
    struct eng_error policy_err = {0};
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t j = i + 1;
        while (j < n && rows[j].alloc_id == rows[i].alloc_id &&
               rows[j].line_idx == rows[i].line_idx && rows[j].owner == rows[i].owner &&
               rows[j].period_n == rows[i].period_n) {
            j++;
        }
        /* Each group in its own savepoint: a failing rollover policy leaves
         * its group untouched (still due, retried on the next advance) and
         * the other groups are processed. */
        rc = store_exec(lx->store, "SAVEPOINT grp", lx->err);
        if (rc == 0) {
            rc = close_group(lx, &rows[i], (int)(j - i), T);
            if (rc == ENG_EPOLICY) {
                fprintf(stderr, "allot: period end of alc_%lld at %lld left open: %s\n",
                        (long long)rows[i].alloc_id, (long long)T, lx->err->msg);
                (void)store_exec(lx->store, "ROLLBACK TO grp", NULL);
                policy_rc = rc;
                policy_err = *lx->err;
                rc = 0;
            }
            (void)store_exec(lx->store, "RELEASE grp", NULL);
        }
        i = j;
    }
    free(rows);
    if (rc == 0 && policy_rc != 0) {
        *lx->err = policy_err;
        return policy_rc;
    }
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
    struct policy_set *pol = NULL;
    if (policy_cache_get(lx->policies, lx->store, alloc_policy_building(a), &pol, NULL, lx->err) != 0) {
        return lx->err->status;
    }
    json_t *tenant = ctx_tenant(lx, a->tenant_id, &rc);
    /* Collect the users first: the statement cannot stay open while lots
     * are inserted through other cached statements that may share it. */
    json_t *uids = json_array();
    sqlite3_stmt *st = store_prep(lx->store, "SELECT id FROM user WHERE tenant_id = ? ORDER BY id",
                                  lx->err);
    if (st == NULL) {
        rc = ENG_ESTORE;
    } else {
        sqlite3_bind_int64(st, 1, a->tenant_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_array_append_new(uids, json_integer(sqlite3_column_int64(st, 0)));
        }
        sqlite3_reset(st);
    }
    size_t k;
    json_t *uid;
    json_array_foreach(uids, k, uid) {
        if (rc != 0) {
            break;
        }
        int64_t tid;
        json_t *user = ctx_user(lx, (int64_t)json_integer_value(uid), &tid, &rc);
        for (int i = 0; rc == 0 && i < a->line_count; i++) {
            bool ok = false;
            rc = ledger_eligible(lx, pol, a, i, user, tenant, NULL, &ok);
            if (rc == 0 && ok) {
                rc = lot_ensure(lx, a, i, n, (int64_t)json_integer_value(uid), &lot_id, &created);
            }
        }
        json_decref(user);
    }
    json_decref(uids);
    json_decref(tenant);
    policy_set_release(pol);
    return rc;
}

static int
open_at(struct ledger_ctx *lx, int64_t T)
{
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT id, next_open_n FROM allocation WHERE next_open_at = ?"
                                  " ORDER BY id LIMIT 1",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, T);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    int64_t id = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    struct alloc a;
    if (alloc_load(lx, id, &a) != 0) {
        return lx->err->status;
    }
    /* A policy that fails while opening (per-user targeting) leaves this
     * period's per-user lots to be created on demand, which fails closed
     * until the policy is fixed; the cursor still moves on. */
    int rc = store_exec(lx->store, "SAVEPOINT opening", lx->err);
    int policy_rc = 0;
    struct eng_error policy_err = {0};
    if (rc == 0) {
        rc = open_period(lx, &a, n);
        if (rc == ENG_EPOLICY) {
            fprintf(stderr, "allot: opening period %lld of alc_%lld: %s\n", (long long)n,
                    (long long)id, lx->err->msg);
            (void)store_exec(lx->store, "ROLLBACK TO opening", NULL);
            policy_rc = rc;
            policy_err = *lx->err;
            rc = 0;
        }
        (void)store_exec(lx->store, "RELEASE opening", NULL);
    }
    int64_t from = 0, until = 0;
    bool exists = false;
    if (rc == 0 && a.recurrence != PERIOD_NONE) {
        rc = alloc_window(lx, &a, n + 1, &from, &until, &exists);
    }
    if (rc == 0) {
        st = store_prep(lx->store,
                        "UPDATE allocation SET next_open_n = ?, next_open_at = ? WHERE id = ?",
                        lx->err);
        rc = st == NULL ? ENG_ESTORE : 0;
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, n + 1);
            if (exists) {
                sqlite3_bind_int64(st, 2, from);
            }
            sqlite3_bind_int64(st, 3, id);
            rc = legacy_step_done(lx->store, lx->err, st, "allocation cursor");
        }
    }
    alloc_free(&a);
    if (rc == 0 && policy_rc != 0) {
        *lx->err = policy_err;
        return policy_rc;
    }
    return rc;
}

static int
min_due(struct ledger_ctx *lx, const char *sql, int64_t *t)
{
    sqlite3_stmt *st = store_prep(lx->store, sql, lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    *t = TIME_NEVER;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *t = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    return 0;
}

int
ledger_next_due(struct ledger_ctx *lx, int64_t *due)
{
    int64_t t1, t2;
    if (min_due(lx, "SELECT min(valid_until) FROM lot WHERE closed = 0", &t1) != 0 ||
        min_due(lx, "SELECT min(next_open_at) FROM allocation", &t2) != 0) {
        return ENG_ESTORE;
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
        sqlite3_stmt *st = store_prep(lx->store,
                                      "SELECT min(valid_until) FROM lot WHERE closed = 0 AND"
                                      " valid_until > ?",
                                      lx->err);
        if (st == NULL) {
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, closed_to);
        t1 = TIME_NEVER;
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            t1 = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        if (min_due(lx, "SELECT min(next_open_at) FROM allocation", &t2) != 0) {
            return ENG_ESTORE;
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

/* Adds the real lot matching the key, if open and valid at t, to cands. */
static int
add_existing(struct ledger_ctx *lx, const struct alloc *a, int line_idx, int64_t n, int64_t owner,
             const char *kind, int64_t t, bool with_empty, struct cand_list *list,
             bool *found)
{
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT id, balance, unlimited, valid_from, valid_until, closed,"
                                  " granted FROM lot WHERE allocation_id = ? AND line_idx = ? AND"
                                  " period_n = ? AND user_id = ? AND kind = ?",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int(st, 2, a->lines[line_idx].idx);
    sqlite3_bind_int64(st, 3, n);
    sqlite3_bind_int64(st, 4, owner);
    sqlite3_bind_text(st, 5, kind, -1, SQLITE_STATIC);
    *found = false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *found = true;
        struct cand c = {0};
        c.lot_id = sqlite3_column_int64(st, 0);
        c.balance = sqlite3_column_int64(st, 1);
        c.unlimited = sqlite3_column_int(st, 2) != 0;
        c.valid_from = sqlite3_column_int64(st, 3);
        c.valid_until = sqlite3_column_int64(st, 4);
        bool closed = sqlite3_column_int(st, 5) != 0;
        c.granted = sqlite3_column_int64(st, 6);
        c.rollover = strcmp(kind, "rollover") == 0;
        if (!closed && c.valid_from <= t && t < c.valid_until &&
            (with_empty || c.unlimited || c.balance > 0)) {
            c.alloc_id = a->id;
            c.line_idx = line_idx;
            c.period_n = n;
            c.owner = owner;
            if (cand_list_push(list, &c) != 0) {
                sqlite3_reset(st);
                return eng_error_set(lx->err, ENG_ENOMEM, "out of memory");
            }
        }
    }
    sqlite3_reset(st);
    return 0;
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
        snprintf(c->scope, sizeof c->scope, "%s", a->lines[line_idx].scope);
    }
    return 0;
}

int
ledger_candidates(struct ledger_ctx *lx, struct policy_set *pol, int64_t user_id, int64_t tenant_id,
                  json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, const char *unit,
                  int64_t t, bool create, bool with_empty, struct cand_list *list)
{
    list->count = 0;
    sqlite3_stmt *st = store_prep(lx->store,
                                  "SELECT id FROM allocation WHERE tenant_id = ? AND unit = ? AND"
                                  " start_at <= ? AND (end_at IS NULL OR end_at > ?) ORDER BY id",
                                  lx->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_text(st, 2, unit, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, t);
    sqlite3_bind_int64(st, 4, t);
    int64_t ids[256];
    int n_ids = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n_ids < 256) {
        ids[n_ids++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    int rc = 0;
    for (int k = 0; rc == 0 && k < n_ids; k++) {
        struct alloc a;
        if (alloc_load(lx, ids[k], &a) != 0) {
            return lx->err->status;
        }
        int64_t n;
        bool in_schedule;
        rc = alloc_period_at(lx, &a, t, &n, &in_schedule);
        int64_t owner = strcmp(a.pool, "per_user") == 0 ? user_id : 0;
        for (int i = 0; rc == 0 && in_schedule && i < a.line_count; i++) {
            bool ok = false;
            rc = ledger_eligible(lx, pol, &a, i, user_ctx, tenant_ctx, resource_ctx, &ok);
            if (rc == 0 && ok) {
                rc = add_line_lots(lx, &a, i, n, owner, t, create, with_empty, list);
            }
        }
        alloc_free(&a);
    }
    return rc;
}

int
cand_list_push(struct cand_list *list, const struct cand *c)
{
    if (list->count == list->cap) {
        int cap = list->cap ? list->cap * 2 : 16;
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
