/* reports.c - the reports' queries (see reports.h).  The arithmetic that
 * turns these rows into figures lives in ops/reports.c; here are only the
 * selections, each stepped and checked. */
#include "reports.h"

#include <string.h>

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

int
store_hub_entries_each(struct store *s, const struct hub_filter *f,
                       int (*cb)(void *ud, const struct hub_entry_row *row), void *ud,
                       struct eng_error *err)
{
    /* By tenant the entry index (tenant_id, unit, effective_at) serves.  A
     * once lot's entries are read from the beginning (the opening balance
     * needs them); a recurring lot's only when effective in the window or
     * when the lot becomes valid in it (adjusted or voided ahead). */
#define HUB_ENTRY_HEAD                                                                      \
    "SELECT l.tenant_id, l.user_id,"                                                          \
    " CASE WHEN ?6 = 1 AND l.user_id = 0 AND e.booking_id IS NOT NULL THEN coalesce((SELECT"      \
    " b.user_id FROM booking b WHERE b.id = e.booking_id), 0) ELSE 0 END,"                    \
    " a.zone, a.recurrence != 'none', l.unlimited, e.kind, e.effective_at, e.amount,"         \
    " l.valid_from"                                                                           \
    " FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id"
#define HUB_ENTRY_TAIL                                                                      \
    " e.effective_at < ?3 AND (a.recurrence = 'none' OR e.effective_at >= ?2 OR"              \
    " l.valid_from >= ?2) AND" LOT_IN_SCOPE("?7")
    STORE_SQL(q0, HUB_ENTRY_HEAD " WHERE ?4 IS NULL AND ?5 IS NULL AND e.unit = ?1 AND"
                                 HUB_ENTRY_TAIL);
    STORE_SQL(q1, HUB_ENTRY_HEAD " WHERE e.tenant_id = ?4 AND e.unit = ?1 AND"
                                 " (?5 IS NULL OR" HUB_BY_BUILDING ") AND" HUB_ENTRY_TAIL);
    STORE_SQL(q2, HUB_ENTRY_HEAD " WHERE ?4 IS NULL AND" HUB_BY_BUILDING " AND e.unit = ?1 AND"
                                 HUB_ENTRY_TAIL);
    struct store_sql *q[3] = {&q0, &q1, &q2};
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
    " l.valid_until FROM lot l JOIN allocation a ON a.id = l.allocation_id WHERE"
#define HUB_UNL_TAIL                                                                        \
    " l.unit = ?1 AND l.unlimited = 1 AND l.valid_until > ?2 AND l.valid_from < ?3 AND"      \
    LOT_IN_SCOPE("?6")
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
 * has begun), their usage, remaining (what limited lots valid now hold) and
 * how many unlimited lots are valid now; three shapes as for the Data Hub. */
#define DASH_LOT_SUMS                                                                        \
    "SELECT coalesce(sum(CASE WHEN l.kind = 'period' AND l.unlimited = 0 THEN l.granted"      \
    " ELSE 0 END + l.adjusted), 0), coalesce(sum(l.used), 0),"                                \
    " coalesce(sum(CASE WHEN l.unlimited = 0 AND l.closed = 0 AND l.valid_until > ?4"         \
    " THEN l.balance ELSE 0 END), 0),"                                                        \
    " coalesce(sum(l.unlimited = 1 AND l.closed = 0 AND l.valid_until > ?4), 0) FROM lot l"
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
    STORE_SQL(q_lots0, DASH_LOT_SUMS " WHERE ?2 IS NULL AND ?3 IS NULL AND" DASH_LOT_WHERE);
    STORE_SQL(q_lots1, DASH_LOT_SUMS " WHERE l.tenant_id = ?2 AND (?3 IS NULL OR"
                       DASH_BY_BUILDING ") AND" DASH_LOT_WHERE);
    STORE_SQL(q_lots2, DASH_LOT_SUMS " WHERE ?2 IS NULL AND" DASH_BY_BUILDING " AND"
                       DASH_LOT_WHERE);
    /* Used: credits paid for bookings (net of refunds), in the building
     * booked when filtered by building, whichever lot paid. */
    STORE_SQL(q_used, "SELECT coalesce(sum(b.credits - b.credits_refunded), 0)"
                      " FROM booking b WHERE b.payment_method = 'credits' AND"
                      " b.unit = ?1 AND (?2 IS NULL OR b.tenant_id = ?2) AND"
                      " (?3 IS NULL OR b.building_id = ?3) AND ?4 = ?4 AND ?5 = ?5 AND"
                      BOOKING_IN_SCOPE);
    STORE_SQL(q_recent, "SELECT count(*), count(DISTINCT b.user_id)" DASH_BOOKINGS
                        " AND b.status = 'confirmed'");
    memset(out, 0, sizeof *out);
    struct store_sql *q_lots = f->tenant_id != 0     ? &q_lots1
                               : f->building_id != 0 ? &q_lots2
                                                     : &q_lots0;
    int64_t sums[4] = {0}, recent[2] = {0};
    int rc = dash_ints(s, q_lots, f, "dashboard lots", sums, 4, err);
    if (rc == 0) {
        rc = dash_ints(s, &q_used, f, "dashboard usage", &out->used, 1, err);
    }
    if (rc == 0) {
        rc = dash_ints(s, &q_recent, f, "dashboard recent bookings", recent, 2, err);
    }
    if (rc == 0) {
        rc = dash_top(s, f, out, err);
    }
    out->allocated = sums[0];
    out->remaining = sums[2];
    out->unlimited_now = sums[3] > 0;
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
    };
    return c->cb(c->ud, &row);
}

int
store_credit_report_each(struct store *s, const struct credit_filter *f,
                         int (*cb)(void *ud, const struct credit_report_row *row), void *ud,
                         struct eng_error *err)
{
    /* streamed: an unpaged export has no row bound (PostgreSQL: a cursor) */
    STORE_SQL_STREAM(q,
              "SELECT a.id, a.tenant_id, t.name, a.description, a.unit, a.recurrence,"
              " a.start_date, a.end_date, a.end_at, a.rollover, a.rollover_cap, a.pool,"
              " (SELECT json_group_array('bld_' || building_id) FROM allocation_building"
              "  WHERE allocation_id = a.id),"
              " (SELECT CASE WHEN count(amount) < count(*) THEN NULL ELSE sum(amount) END"
              "  FROM allocation_line WHERE allocation_id = a.id),"
              " (SELECT coalesce(sum(e.amount), 0) FROM entry e JOIN lot l ON l.id = e.lot_id"
              "  WHERE l.allocation_id = a.id AND e.kind IN ('grant', 'adjust') AND"
              "  l.valid_from <= ?4),"
              " (SELECT coalesce(-sum(e.amount), 0) FROM entry e JOIN lot l ON l.id = e.lot_id"
              "  WHERE l.allocation_id = a.id AND e.kind IN ('debit', 'refund')),"
              " (SELECT coalesce(sum(balance), 0) FROM lot WHERE allocation_id = a.id AND"
              "  unlimited = 0 AND closed = 0 AND valid_from <= ?4 AND valid_until > ?4),"
              " a.start_at"
              " FROM allocation a JOIN tenant t ON t.id = a.tenant_id"
              " WHERE (?1 IS NULL OR a.tenant_id = ?1) AND (?2 IS NULL OR EXISTS (SELECT 1"
              " FROM allocation_building ab WHERE ab.allocation_id = a.id AND"
              " ab.building_id = ?2)) AND (?3 IS NULL OR a.unit = ?3) AND a.id > ?5"
              " ORDER BY a.id LIMIT ?6");
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
