/* reports.c - the reports' queries (see reports.h).  The arithmetic that
 * turns these rows into figures lives in ops/reports.c; here are only the
 * selections, each stepped and checked. */
#include "reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

#include "internal.h"

/* A text column, or NULL for SQL NULL. */
static const char *
col_text_or_null(sqlite3_stmt *st, int col)
{
    return sq_col_null(st, col) ? NULL : sq_col_text(st, col);
}

/* Steps `st` to its end, calling `row` per row; a non-zero answer of `row`
 * stops (the statement is reset) and is returned. */
static int
each_row(struct store *s, sqlite3_stmt *st, const char *what,
         int (*row)(sqlite3_stmt *st, void *ctx), void *ctx, struct eng_error *err)
{
    int rc;
    while ((rc = sq_step(s, st, what, err)) == 1) {
        int stop = row(st, ctx);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

/* ---------- Data Hub ---------- */

/* Each Data Hub query comes in three shapes, so the planner can use an
 * index for the filter given: [0] the portfolio, [1] one tenant (plus an
 * optional building), [2] one building.  Binds: ?1 unit, ?2 and ?3 the UTC
 * window, ?4 tenant, ?5 building. */
#define HUB_BY_BUILDING                                                                     \
    " l.allocation_id IN (SELECT allocation_id FROM allocation_building WHERE"                \
    " building_id = ?5)"
/* Only lots whose allocation has no building outside the scope text ?n
 * (",1,4,"; NULL: no scope). */
#define LOT_IN_SCOPE(n)                                                                     \
    " (" n " IS NULL OR NOT EXISTS (SELECT 1 FROM allocation_building sc WHERE"               \
    " sc.allocation_id = l.allocation_id AND instr(" n ", ',' || sc.building_id || ',') = 0))"
#define HUB_ALL(head, tail) head " ?4 IS NULL AND ?5 IS NULL AND" tail
#define HUB_TENANT(head, tail)                                                              \
    head " l.tenant_id = ?4 AND (?5 IS NULL OR" HUB_BY_BUILDING ") AND" tail
#define HUB_BUILDING(head, tail) head " ?4 IS NULL AND" HUB_BY_BUILDING " AND" tail

/* Prepares the variant of `q` for the filter and binds it. */
static sqlite3_stmt *
hub_prep(struct store *s, struct store_sql *q[3], const struct hub_filter *f,
         struct eng_error *err)
{
    int v = f->tenant_id != 0 ? 1 : f->building_id != 0 ? 2 : 0;
    sqlite3_stmt *st = sq_prep(s, q[v], err);
    if (st == NULL) {
        return NULL;
    }
    sq_text(s, st, 1, f->unit);
    sq_int(s, st, 2, f->window_lo);
    sq_int(s, st, 3, f->window_hi);
    if (f->tenant_id != 0) {
        sq_int(s, st, 4, f->tenant_id);
    }
    if (f->building_id != 0) {
        sq_int(s, st, 5, f->building_id);
    }
    return st;
}

struct hub_cb {
    void *ud;
    int (*entry)(void *ud, const struct hub_entry_row *row);
    int (*unl)(void *ud, const struct hub_unlimited_row *row);
};

static int
hub_entry(sqlite3_stmt *st, void *ctx)
{
    struct hub_cb *c = ctx;
    struct hub_entry_row row = {
        .tenant_id = sq_col_int(st, 0),
        .lot_user_id = sq_col_int(st, 1),
        .booking_user_id = sq_col_int(st, 2),
        .zone = sq_col_text(st, 3),
        .recurring = sq_col_int(st, 4) != 0,
        .unlimited = sq_col_int(st, 5) != 0,
        .kind = sq_col_text(st, 6),
        .effective_at = sq_col_int(st, 7),
        .amount = sq_col_int(st, 8),
        .valid_from = sq_col_int(st, 9),
    };
    return c->entry(c->ud, &row);
}

/* ---- the portfolio and a building: lots first, then entry_lot ----
 *
 * Reading every entry joined to its lot and allocation costs a lot seek
 * and an allocation seek per entry.  Instead the lots in the filter are
 * read once into memory (with their allocation's zone and recurrence), in
 * id order, and then entry_lot (every entry column read here, in lot id
 * order) is walked alone, each entry matched to its lot by a pointer that
 * only moves forward: the same rows as the join, one snapshot (the read
 * transaction of the operation). */

struct hub_lot {
    int64_t id, tenant_id, user_id, valid_from;
    bool unlimited, recurring;
    int zone; /* index into hub_lots.zones */
};

struct hub_lots {
    struct hub_lot *v;
    size_t n, cap;
    char (*zones)[TIME_ZONE_NAME_MAX];
    int zone_count, zone_cap;
    struct eng_error *err;
};

/* The index of `zone` in L->zones (added when new), or -1 with L->err set. */
static int
hub_lots_zone(struct hub_lots *L, const char *zone)
{
    for (int i = 0; i < L->zone_count; i++) {
        if (strcmp(L->zones[i], zone) == 0) {
            return i;
        }
    }
    if (strlen(zone) >= TIME_ZONE_NAME_MAX) {
        eng_error_code(L->err, ENG_ESTORE, "storage_error", "a stored time zone is too long");
        return -1;
    }
    if (L->zone_count == L->zone_cap) {
        int cap = L->zone_cap ? 2 * L->zone_cap : 4;
        char(*bigger)[TIME_ZONE_NAME_MAX] = realloc(L->zones, (size_t)cap * sizeof *bigger);
        if (bigger == NULL) {
            eng_error_set(L->err, ENG_ENOMEM, "out of memory");
            return -1;
        }
        L->zones = bigger;
        L->zone_cap = cap;
    }
    snprintf(L->zones[L->zone_count], TIME_ZONE_NAME_MAX, "%s", zone);
    return L->zone_count++;
}

static int
hub_lot_row(sqlite3_stmt *st, void *ctx)
{
    struct hub_lots *L = ctx;
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 1024;
        struct hub_lot *bigger = realloc(L->v, cap * sizeof *bigger);
        if (bigger == NULL) {
            return eng_error_set(L->err, ENG_ENOMEM, "out of memory");
        }
        L->v = bigger;
        L->cap = cap;
    }
    int zone = hub_lots_zone(L, sq_col_text(st, 5));
    if (zone < 0) {
        return L->err->status;
    }
    L->v[L->n++] = (struct hub_lot){
        .id = sq_col_int(st, 0),
        .tenant_id = sq_col_int(st, 1),
        .user_id = sq_col_int(st, 2),
        .unlimited = sq_col_int(st, 3) != 0,
        .valid_from = sq_col_int(st, 4),
        .recurring = sq_col_int(st, 6) != 0,
        .zone = zone,
    };
    return 0;
}

struct hub_walk {
    struct hub_lots *lots;
    size_t at; /* the first lot whose id may still match */
    int64_t window_lo;
    void *ud;
    int (*cb)(void *ud, const struct hub_entry_row *row);
};

static int
hub_walk_row(sqlite3_stmt *st, void *ctx)
{
    struct hub_walk *w = ctx;
    int64_t lot_id = sq_col_int(st, 0);
    const struct hub_lots *L = w->lots;
    while (w->at < L->n && L->v[w->at].id < lot_id) {
        w->at++;
    }
    if (w->at == L->n || L->v[w->at].id != lot_id) {
        return 0; /* a lot outside the filter */
    }
    const struct hub_lot *l = &L->v[w->at];
    int64_t effective_at = sq_col_int(st, 2);
    /* A recurring lot's entries only when effective in the window or when
     * the lot becomes valid in it (as the joined query's condition). */
    if (l->recurring && effective_at < w->window_lo && l->valid_from < w->window_lo) {
        return 0;
    }
    struct hub_entry_row row = {
        .tenant_id = l->tenant_id,
        .lot_user_id = l->user_id,
        .booking_user_id = l->user_id == 0 ? sq_col_int(st, 4) : 0,
        .zone = L->zones[l->zone],
        .recurring = l->recurring,
        .unlimited = l->unlimited,
        .kind = sq_col_text(st, 1),
        .effective_at = effective_at,
        .amount = sq_col_int(st, 3),
        .valid_from = l->valid_from,
    };
    return w->cb(w->ud, &row);
}

static int
hub_entries_by_lots(struct store *s, const struct hub_filter *f,
                    int (*cb)(void *ud, const struct hub_entry_row *row), void *ud,
                    struct eng_error *err)
{
    /* Binds: ?1 unit, ?2 building (or NULL), ?3 scope (or NULL). */
#define HUB_LOTS_HEAD                                                                       \
    "SELECT l.id, l.tenant_id, l.user_id, l.unlimited, l.valid_from, a.zone,"                 \
    " a.recurrence != 'none' FROM lot l NOT INDEXED CROSS JOIN allocation a WHERE"            \
    " a.id = l.allocation_id AND l.unit = ?1 AND"
    STORE_SQL(q_lots0, HUB_LOTS_HEAD " ?2 IS NULL AND" LOT_IN_SCOPE("?3") " ORDER BY l.id");
    STORE_SQL(q_lots2, HUB_LOTS_HEAD " l.allocation_id IN (SELECT allocation_id FROM"
                       " allocation_building WHERE building_id = ?2) AND" LOT_IN_SCOPE("?3")
                       " ORDER BY l.id");
    /* Binds: ?1 the window's end, ?2 whether to look up the booking's user
     * (group_by=user; used for a shared lot's usage only). */
    STORE_SQL(q_entries,
              "SELECT e.lot_id, e.kind, e.effective_at, e.amount, CASE WHEN ?2 = 1 AND"
              " e.booking_id IS NOT NULL THEN coalesce((SELECT b.user_id FROM booking b WHERE"
              " b.id = e.booking_id), 0) ELSE 0 END FROM entry e INDEXED BY entry_lot WHERE"
              " e.effective_at < ?1 ORDER BY e.lot_id");
    struct hub_lots L = {.err = err};
    sqlite3_stmt *st = sq_prep(s, f->building_id != 0 ? &q_lots2 : &q_lots0, err);
    int rc = st == NULL ? err->status : 0;
    if (rc == 0) {
        sq_text(s, st, 1, f->unit);
        if (f->building_id != 0) {
            sq_int(s, st, 2, f->building_id);
        }
        if (f->scope != NULL) {
            sq_text(s, st, 3, f->scope);
        }
        rc = each_row(s, st, "data hub lots", hub_lot_row, &L, err);
    }
    /* Few lots (a unit or a building with little in it): each one's entries
     * by a search of entry_lot; else entry_lot from end to end.  Lots are
     * never deleted, so the highest id counts them. */
    STORE_SQL(q_lot_entries,
              "SELECT e.lot_id, e.kind, e.effective_at, e.amount, CASE WHEN ?2 = 1 AND"
              " e.booking_id IS NOT NULL THEN coalesce((SELECT b.user_id FROM booking b WHERE"
              " b.id = e.booking_id), 0) ELSE 0 END FROM entry e INDEXED BY entry_lot WHERE"
              " e.lot_id = ?3 AND e.effective_at < ?1");
    STORE_SQL(q_lots_max, "SELECT max(id) FROM lot");
    int64_t lots_max = 0;
    if (rc == 0 && L.n > 0) {
        rc = sq_scalar(s, &q_lots_max, 0, 0, &lots_max, err);
    }
    bool seek = (int64_t)L.n * 8 < lots_max;
    struct hub_walk w = {.lots = &L, .window_lo = f->window_lo, .ud = ud, .cb = cb};
    for (size_t i = 0; rc == 0 && i < (seek ? L.n : L.n > 0); i++) {
        st = sq_prep(s, seek ? &q_lot_entries : &q_entries, err);
        rc = st == NULL ? err->status : 0;
        if (rc == 0) {
            sq_int(s, st, 1, f->window_hi);
            sq_int(s, st, 2, f->booking_users);
            if (seek) {
                sq_int(s, st, 3, L.v[i].id);
            }
            rc = each_row(s, st, "data hub entries", hub_walk_row, &w, err);
        }
    }
    free(L.v);
    free(L.zones);
    return rc;
}

int
store_hub_entries_each(struct store *s, const struct hub_filter *f,
                       int (*cb)(void *ud, const struct hub_entry_row *row), void *ud,
                       struct eng_error *err)
{
    if (f->tenant_id == 0) {
        return hub_entries_by_lots(s, f, cb, ud, err);
    }
    /* One tenant: its lots (lot_tenant) and their entries (entry_lot).
     * Entry tenant and unit are their lot's (a verified invariant), so the
     * lot's are filtered.  A once lot's entries are read from the
     * beginning (the opening balance needs them); a recurring lot's only
     * when effective in the window or when the lot becomes valid in it
     * (adjusted or voided ahead). */
    STORE_SQL(q1, "SELECT l.tenant_id, l.user_id,"
                  " CASE WHEN ?6 = 1 AND l.user_id = 0 AND e.booking_id IS NOT NULL THEN"
                  " coalesce((SELECT b.user_id FROM booking b WHERE b.id = e.booking_id), 0)"
                  " ELSE 0 END, a.zone, a.recurrence != 'none', l.unlimited, e.kind,"
                  " e.effective_at, e.amount, l.valid_from"
                  " FROM lot l INDEXED BY lot_tenant CROSS JOIN allocation a"
                  " CROSS JOIN entry e INDEXED BY entry_lot WHERE a.id = l.allocation_id AND"
                  " e.lot_id = l.id AND l.tenant_id = ?4 AND l.unit = ?1 AND (?5 IS NULL OR"
                  HUB_BY_BUILDING ") AND e.effective_at < ?3 AND (a.recurrence = 'none' OR"
                  " e.effective_at >= ?2 OR l.valid_from >= ?2) AND" LOT_IN_SCOPE("?7"));
    struct store_sql *q[3] = {&q1, &q1, &q1};
    sqlite3_stmt *st = hub_prep(s, q, f, err);
    if (st == NULL) {
        return err->status;
    }
    /* The booking's user is looked up only when asked for (?6). */
    sq_int(s, st, 6, f->booking_users);
    if (f->scope != NULL) {
        sq_text(s, st, 7, f->scope);
    }
    struct hub_cb c = {.ud = ud, .entry = cb};
    return each_row(s, st, "data hub entries", hub_entry, &c, err);
}

static int
hub_unl(sqlite3_stmt *st, void *ctx)
{
    struct hub_cb *c = ctx;
    struct hub_unlimited_row row = {
        .tenant_id = sq_col_int(st, 0),
        .user_id = sq_col_int(st, 1),
        .zone = sq_col_text(st, 2),
        .recurring = sq_col_int(st, 3) != 0,
        .valid_from = sq_col_int(st, 4),
        .valid_until = sq_col_int(st, 5),
    };
    return c->unl(c->ud, &row);
}

int
store_hub_unlimited_each(struct store *s, const struct hub_filter *f,
                         int (*cb)(void *ud, const struct hub_unlimited_row *row), void *ud,
                         struct eng_error *err)
{
#define HUB_UNL_HEAD                                                                        \
    "SELECT l.tenant_id, l.user_id, a.zone, a.recurrence != 'none', l.valid_from,"            \
    " l.valid_until FROM lot l INDEXED BY lot_unlimited JOIN allocation a ON"                 \
    " a.id = l.allocation_id WHERE"
#define HUB_UNL_TAIL                                                                        \
    " l.unit = ?1 AND l.unlimited = 1 AND l.valid_until > ?2 AND l.valid_from < ?3 AND"      \
    LOT_IN_SCOPE("?6")
    /* lot_unlimited holds only unlimited lots (a partial index). */
    STORE_SQL(q0, HUB_ALL(HUB_UNL_HEAD, HUB_UNL_TAIL));
    STORE_SQL(q1, HUB_TENANT(HUB_UNL_HEAD, HUB_UNL_TAIL));
    STORE_SQL(q2, HUB_BUILDING(HUB_UNL_HEAD, HUB_UNL_TAIL));
    struct store_sql *q[3] = {&q0, &q1, &q2};
    sqlite3_stmt *st = hub_prep(s, q, f, err);
    if (st == NULL) {
        return err->status;
    }
    if (f->scope != NULL) {
        sq_text(s, st, 6, f->scope);
    }
    struct hub_cb c = {.ud = ud, .unl = cb};
    return each_row(s, st, "data hub unlimited lots", hub_unl, &c, err);
}

/* ---------- dashboard ---------- */

/* Binds: ?1 unit, ?2 tenant, ?3 building, ?4 now, ?5 since.  Every query
 * names all five (`?5 = ?5`) so one binder serves them all. */
static sqlite3_stmt *
dash_prep(struct store *s, struct store_sql *q, const struct dash_filter *f,
          struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return NULL;
    }
    sq_text(s, st, 1, f->unit);
    if (f->tenant_id != 0) {
        sq_int(s, st, 2, f->tenant_id);
    }
    if (f->building_id != 0) {
        sq_int(s, st, 3, f->building_id);
    }
    sq_int(s, st, 4, f->now);
    sq_int(s, st, 5, f->since);
    if (f->scope != NULL) {
        sq_text(s, st, 6, f->scope);
    }
    return st;
}

/* The first row's integer columns into out[0..n); a query without a row
 * leaves them 0. */
static int
dash_ints(struct store *s, struct store_sql *q, const struct dash_filter *f, const char *what,
          int64_t *out, int n, struct eng_error *err)
{
    sqlite3_stmt *st = dash_prep(s, q, f, err);
    if (st == NULL) {
        return err->status;
    }
    int rc = sq_step(s, st, what, err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        for (int k = 0; k < n; k++) {
            out[k] = sq_col_int(st, k);
        }
        sq_reset(st);
    }
    return 0;
}

/* The lots' sums: allocated (grants and adjustments of lots whose validity
 * has begun) and whether an unlimited one is among them, over every lot;
 * apart, over the lots open now only (lot_open_end), remaining (what
 * limited lots valid now hold) and how many unlimited lots are valid now;
 * three shapes as for the Data Hub. */
#define DASH_LOT_SUMS                                                                        \
    "SELECT coalesce(sum(CASE WHEN l.kind = 'period' AND l.unlimited = 0 THEN l.granted"      \
    " ELSE 0 END + l.adjusted), 0), coalesce(max(l.unlimited), 0) FROM lot l"
#define DASH_LOT_NOW                                                                         \
    "SELECT coalesce(sum(CASE WHEN l.unlimited = 0 THEN l.balance ELSE 0 END), 0),"           \
    " coalesce(sum(l.unlimited = 1), 0) FROM lot l"
#define DASH_LOT_OPEN " l.closed = 0 AND l.valid_until > ?4 AND"
#define DASH_LOT_WHERE " l.unit = ?1 AND l.valid_from <= ?4 AND ?5 = ?5 AND" LOT_IN_SCOPE("?6")
#define DASH_BY_BUILDING                                                                     \
    " l.allocation_id IN (SELECT allocation_id FROM allocation_building WHERE"                \
    " building_id = ?3)"
#define BOOKING_IN_SCOPE " (?6 IS NULL OR instr(?6, ',' || b.building_id || ',') > 0)"
#define DASH_BOOKINGS                                                                        \
    " FROM booking b WHERE b.payment_method = 'credits' AND b.unit = ?1 AND"                   \
    " (?2 IS NULL OR b.tenant_id = ?2) AND (?3 IS NULL OR b.building_id = ?3) AND"           \
    " b.created_at <= ?4 AND b.created_at > ?5 AND" BOOKING_IN_SCOPE

static int
dash_top(struct store *s, const struct dash_filter *f, struct dash_figures *out,
         struct eng_error *err)
{
    STORE_SQL(q, "SELECT b.tenant_id, (SELECT name FROM tenant WHERE id = b.tenant_id),"
                 " sum(b.credits - b.credits_refunded) AS used" DASH_BOOKINGS
                 " GROUP BY b.tenant_id HAVING sum(b.credits - b.credits_refunded) > 0"
                 " ORDER BY used DESC, b.tenant_id LIMIT 1");
    sqlite3_stmt *st = dash_prep(s, &q, f, err);
    if (st == NULL) {
        return err->status;
    }
    int rc = sq_step(s, st, "dashboard top tenant", err);
    if (rc <= 0) {
        return rc;
    }
    out->has_top = true;
    out->top_tenant_id = sq_col_int(st, 0);
    out->top_used = sq_col_int(st, 2);
    rc = sq_col_copy(st, 1, out->top_name, sizeof out->top_name, "tenant name", err);
    sq_reset(st);
    return rc;
}

int
store_dashboard(struct store *s, const struct dash_filter *f, struct dash_figures *out,
                struct eng_error *err)
{
    /* The portfolio and a building read every lot (most of them count):
     * a scan of the table is cheaper than an index and a seek per lot. */
    STORE_SQL(q_lots0, DASH_LOT_SUMS " NOT INDEXED WHERE ?2 IS NULL AND ?3 IS NULL AND"
                       DASH_LOT_WHERE);
    STORE_SQL(q_lots1, DASH_LOT_SUMS " WHERE l.tenant_id = ?2 AND (?3 IS NULL OR"
                       DASH_BY_BUILDING ") AND" DASH_LOT_WHERE);
    STORE_SQL(q_lots2, DASH_LOT_SUMS " NOT INDEXED WHERE ?2 IS NULL AND" DASH_BY_BUILDING
                       " AND" DASH_LOT_WHERE);
    STORE_SQL(q_now0, DASH_LOT_NOW " INDEXED BY lot_open_end WHERE" DASH_LOT_OPEN
                      " ?2 IS NULL AND ?3 IS NULL AND" DASH_LOT_WHERE);
    STORE_SQL(q_now1, DASH_LOT_NOW " INDEXED BY lot_tenant WHERE" DASH_LOT_OPEN
                      " l.tenant_id = ?2 AND (?3 IS NULL OR" DASH_BY_BUILDING ") AND"
                      DASH_LOT_WHERE);
    STORE_SQL(q_now2, DASH_LOT_NOW " INDEXED BY lot_open_end WHERE" DASH_LOT_OPEN
                      " ?2 IS NULL AND" DASH_BY_BUILDING " AND" DASH_LOT_WHERE);
    /* Used: credits paid for bookings (net of refunds), in the building
     * booked when filtered by building, whichever lot paid; one shape per
     * filter, so that a tenant's reads only its bookings (booking_tenant). */
#define DASH_USED                                                                            \
    "SELECT coalesce(sum(b.credits - b.credits_refunded), 0) FROM booking b WHERE"            \
    " b.payment_method = 'credits' AND b.unit = ?1 AND ?4 = ?4 AND ?5 = ?5 AND"                \
    BOOKING_IN_SCOPE " AND"
    STORE_SQL(q_used0, DASH_USED " ?2 IS NULL AND ?3 IS NULL");
    STORE_SQL(q_used1, DASH_USED " b.tenant_id = ?2 AND (?3 IS NULL OR b.building_id = ?3)");
    STORE_SQL(q_used2, DASH_USED " ?2 IS NULL AND b.building_id = ?3");
    STORE_SQL(q_recent, "SELECT count(*), count(DISTINCT b.user_id)" DASH_BOOKINGS
                        " AND b.status = 'confirmed'");
    memset(out, 0, sizeof *out);
    struct store_sql *q_lots = f->tenant_id != 0     ? &q_lots1
                               : f->building_id != 0 ? &q_lots2
                                                     : &q_lots0;
    struct store_sql *q_now = f->tenant_id != 0     ? &q_now1
                              : f->building_id != 0 ? &q_now2
                                                    : &q_now0;
    int64_t sums[2] = {0}, now[2] = {0}, recent[2] = {0};
    int rc = dash_ints(s, q_lots, f, "dashboard lots", sums, 2, err);
    if (rc == 0) {
        rc = dash_ints(s, q_now, f, "dashboard open lots", now, 2, err);
    }
    if (rc == 0) {
        struct store_sql *q_used = f->tenant_id != 0     ? &q_used1
                                   : f->building_id != 0 ? &q_used2
                                                         : &q_used0;
        rc = dash_ints(s, q_used, f, "dashboard usage", &out->used, 1, err);
    }
    if (rc == 0) {
        rc = dash_ints(s, &q_recent, f, "dashboard recent bookings", recent, 2, err);
    }
    if (rc == 0) {
        rc = dash_top(s, f, out, err);
    }
    out->allocated = sums[0];
    out->unlimited_begun = sums[1] != 0;
    out->remaining = now[0];
    out->unlimited_now = now[1] > 0;
    out->transactions = recent[0];
    out->active_users = recent[1];
    return rc;
}

/* ---------- credit management ---------- */

struct credit_cb {
    void *ud;
    int (*cb)(void *ud, const struct credit_report_row *row);
};

static int
credit_row(sqlite3_stmt *st, void *ctx)
{
    struct credit_cb *c = ctx;
    struct credit_report_row row = {
        .allocation_id = sq_col_int(st, 0),
        .tenant_id = sq_col_int(st, 1),
        .tenant_name = sq_col_text(st, 2),
        .description = sq_col_text(st, 3),
        .unit = sq_col_text(st, 4),
        .recurrence = sq_col_text(st, 5),
        .start_date = sq_col_text(st, 6),
        .end_date = col_text_or_null(st, 7),
        .has_end = !sq_col_null(st, 8),
        .end_at = sq_col_int(st, 8),
        .rollover = sq_col_int(st, 9) != 0,
        .has_rollover_cap = !sq_col_null(st, 10),
        .rollover_cap = sq_col_int(st, 10),
        .pool = sq_col_text(st, 11),
        .building_ids_json = sq_col_text(st, 12),
        .has_amount = !sq_col_null(st, 13),
        .amount = sq_col_int(st, 13),
        .granted = sq_col_int(st, 14),
        .used = sq_col_int(st, 15),
        .remaining = sq_col_int(st, 16),
        .start_at = sq_col_int(st, 17),
        .granted_unlimited = sq_col_int(st, 18) != 0,
        .remaining_unlimited = sq_col_int(st, 19) != 0,
    };
    return c->cb(c->ud, &row);
}

int
store_credit_report_each(struct store *s, const struct credit_filter *f,
                         int (*cb)(void *ud, const struct credit_report_row *row), void *ud,
                         struct eng_error *err)
{
    /* Granted, used and remaining from the allocation's lots in one pass
     * (the lots' columns, not their entries): a period lot's one grant is
     * its `granted` (0 when unlimited), the adjustments are `adjusted`, the
     * net usage `used` (verified invariants, and grants only on period
     * lots), so the sums equal those of the grant, adjust, debit and
     * refund entries.  Apart, whether an unlimited lot has begun (granted
     * is then "unlimited") and whether one is valid now (remaining is).
     * Grouped by allocation in id order, no sort: a page reads only its
     * allocations' lots. */
    /* streamed: an unpaged export has no row bound (PostgreSQL: a cursor) */
    STORE_SQL_STREAM(q,
              "SELECT a.id, a.tenant_id, (SELECT name FROM tenant WHERE id = a.tenant_id),"
              " a.description, a.unit, a.recurrence,"
              " a.start_date, a.end_date, a.end_at, a.rollover, a.rollover_cap, a.pool,"
              " (SELECT json_group_array('bld_' || building_id) FROM allocation_building"
              "  WHERE allocation_id = a.id),"
              " (SELECT CASE WHEN count(amount) < count(*) THEN NULL ELSE sum(amount) END"
              "  FROM allocation_line WHERE allocation_id = a.id),"
              " coalesce(sum(CASE WHEN l.valid_from <= ?4 THEN (CASE WHEN l.kind = 'period' AND"
              "  l.unlimited = 0 THEN l.granted ELSE 0 END) + l.adjusted ELSE 0 END), 0),"
              " coalesce(sum(l.used), 0),"
              " coalesce(sum(CASE WHEN l.unlimited = 0 AND l.closed = 0 AND l.valid_from <= ?4"
              "  AND l.valid_until > ?4 THEN l.balance ELSE 0 END), 0),"
              " a.start_at,"
              " coalesce(max(CASE WHEN l.valid_from <= ?4 THEN l.unlimited ELSE 0 END), 0),"
              " coalesce(max(CASE WHEN l.unlimited = 1 AND l.closed = 0 AND l.valid_from <= ?4"
              "  AND l.valid_until > ?4 THEN 1 ELSE 0 END), 0)"
              " FROM allocation a LEFT JOIN lot l ON l.allocation_id = a.id"
              " WHERE (?1 IS NULL OR a.tenant_id = ?1) AND (?2 IS NULL OR EXISTS (SELECT 1"
              " FROM allocation_building ab WHERE ab.allocation_id = a.id AND"
              " ab.building_id = ?2)) AND (?3 IS NULL OR a.unit = ?3) AND a.id > ?5"
              " GROUP BY a.id ORDER BY a.id LIMIT ?6");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (f->tenant_id != 0) {
        sq_int(s, st, 1, f->tenant_id);
    }
    if (f->building_id != 0) {
        sq_int(s, st, 2, f->building_id);
    }
    sq_text(s, st, 3, f->unit);
    sq_int(s, st, 4, f->now);
    sq_int(s, st, 5, f->after);
    sq_int(s, st, 6, f->limit);
    struct credit_cb c = {ud, cb};
    return each_row(s, st, "credit management report", credit_row, &c, err);
}

/* ---------- usage ---------- */

struct usage_cb {
    void *ud;
    int (*cb)(void *ud, const struct usage_row *row);
};

static int
usage_row(sqlite3_stmt *st, void *ctx)
{
    struct usage_cb *c = ctx;
    struct usage_row row = {
        .booking_id = sq_col_int(st, 0),
        .created_at = sq_col_int(st, 1),
        .start_at = sq_col_int(st, 2),
        .end_at = sq_col_int(st, 3),
        .user_id = sq_col_int(st, 4),
        .user_name = sq_col_text(st, 5),
        .resource_id = sq_col_int(st, 6),
        .resource_name = sq_col_text(st, 7),
        .tenant_id = sq_col_int(st, 8),
        .tenant_name = sq_col_text(st, 9),
        .building_id = sq_col_int(st, 10),
        .building_name = sq_col_text(st, 11),
        .payment_method = sq_col_text(st, 12),
        .has_credits = !sq_col_null(st, 13),
        .credits = sq_col_int(st, 13),
        .credits_refunded = sq_col_int(st, 14),
        .unit = col_text_or_null(st, 15),
        .has_money = !sq_col_null(st, 16),
        .money = sq_col_int(st, 16),
        .currency = sq_col_text(st, 17),
        .status = sq_col_text(st, 18),
    };
    return c->cb(c->ud, &row);
}

int
store_usage_each(struct store *s, const struct usage_filter *f,
                 int (*cb)(void *ud, const struct usage_row *row), void *ud,
                 struct eng_error *err)
{
    STORE_SQL_STREAM(q,
              "SELECT b.id, b.created_at, b.start_at, b.end_at, b.user_id, u.name,"
              " b.resource_id, r.name, b.tenant_id, t.name, b.building_id, bl.name,"
              " b.payment_method, b.credits, b.credits_refunded, b.unit, b.money, b.currency,"
              " b.status"
              " FROM booking b JOIN user u ON u.id = b.user_id"
              " JOIN resource r ON r.id = b.resource_id JOIN tenant t ON t.id = b.tenant_id"
              " JOIN building bl ON bl.id = b.building_id"
              " WHERE (?1 IS NULL OR b.tenant_id = ?1) AND (?2 IS NULL OR b.building_id = ?2)"
              " AND (?3 IS NULL OR b.user_id = ?3) AND (?4 IS NULL OR b.resource_id = ?4) AND"
              " b.start_at >= ?5 AND b.start_at < ?6 AND (?7 IS NULL OR b.unit = ?7) AND"
              " b.id > ?8 AND (?10 IS NULL OR instr(?10, ',' || b.building_id || ',') > 0)"
              " ORDER BY b.id LIMIT ?9");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    const int64_t ids[4] = {f->tenant_id, f->building_id, f->user_id, f->resource_id};
    for (int i = 0; i < 4; i++) {
        if (ids[i] != 0) {
            sq_int(s, st, i + 1, ids[i]);
        }
    }
    sq_int(s, st, 5, f->from_t);
    sq_int(s, st, 6, f->to_t);
    sq_text(s, st, 7, f->unit);
    sq_int(s, st, 8, f->after);
    sq_int(s, st, 9, f->limit);
    if (f->scope != NULL) {
        sq_text(s, st, 10, f->scope);
    }
    struct usage_cb c = {ud, cb};
    return each_row(s, st, "usage report", usage_row, &c, err);
}
