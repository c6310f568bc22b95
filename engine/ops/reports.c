/* reports.c - Data Hub, dashboard, credit management and usage (PRODUCT.md
 * §7), as JSON and CSV, computed from the ledger.
 *
 * Data Hub attribution (decided here, documented in engine/README.md):
 * - "Once" figures follow entries by effective time: grants (and
 *   adjustments) on their day, usage at the meeting's start (refunds net it),
 *   expiry at the lot's end.  Opening = every once entry before the month;
 *   closing = opening + granted - used - expired, so next month's opening is
 *   this month's closing exactly.
 * - "Monthly" figures follow the lot: a recurring lot (and the rollover lot
 *   of its period) belongs to the month its period starts in; granted is its
 *   grant, used its net usage, unused what of grant + carried-in credit was
 *   not used (expired, rolled on, or still left in the current month).
 * - A month's granted amount is "unlimited" when an unlimited lot of that
 *   kind is valid at any point of the month. */
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "csv.h"
#include "ops.h"
#include "timeutil.h"

#define MONTHS_MAX 36
#define ZONES_MAX 32

struct month_row {
    int64_t opening, once_granted, once_used, once_used_unlimited, once_expired;
    int64_t monthly_granted, monthly_used, monthly_rolled_in;
    bool once_unlimited, monthly_unlimited;
};

struct customer {
    int64_t tenant_id;
    struct month_row m[MONTHS_MAX];
    int64_t pre_opening; /* once entries before the range */
    bool seen;
};

struct hub {
    struct op *op;
    const char *unit;
    int64_t lo, hi;   /* the range's UTC window, widened by a day each side */
    int64_t tid, bid; /* tenant and building filters, 0 = none */
    int months;
    struct civil_date first;
    char zones[ZONES_MAX][TIME_ZONE_NAME_MAX];
    int64_t bounds[ZONES_MAX][MONTHS_MAX + 1];
    int zone_count;
    struct customer *cust;
    size_t cust_count, cust_cap;
};

/* Month boundaries of the range in `zone` (cached per zone). */
static const int64_t *
hub_bounds(struct hub *h, const char *zone)
{
    for (int i = 0; i < h->zone_count; i++) {
        if (strcmp(h->zones[i], zone) == 0) {
            return h->bounds[i];
        }
    }
    int i = h->zone_count < ZONES_MAX ? h->zone_count++ : ZONES_MAX - 1;
    snprintf(h->zones[i], sizeof h->zones[i], "%s", zone);
    for (int m = 0; m <= h->months; m++) {
        if (tz_local_midnight(zone, date_add_months(h->first, m), &h->bounds[i][m], NULL) != 0) {
            h->bounds[i][m] = 0;
        }
    }
    return h->bounds[i];
}

/* -1 before the range, months for after it, else the month index. */
static int
hub_month(struct hub *h, const char *zone, int64_t t)
{
    const int64_t *b = hub_bounds(h, zone);
    if (t < b[0]) {
        return -1;
    }
    int lo = 0, hi = h->months; /* b[lo] <= t < b[hi] */
    if (t >= b[hi]) {
        return h->months;
    }
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (t >= b[mid]) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct customer *
hub_customer(struct hub *h, int64_t tenant_id)
{
    /* Rows come grouped by tenant often, so check the last one first. */
    for (size_t i = h->cust_count; i > 0; i--) {
        if (h->cust[i - 1].tenant_id == tenant_id) {
            return &h->cust[i - 1];
        }
        if (h->cust_count - i > 4) {
            break;
        }
    }
    for (size_t i = 0; i < h->cust_count; i++) {
        if (h->cust[i].tenant_id == tenant_id) {
            return &h->cust[i];
        }
    }
    if (h->cust_count == h->cust_cap) {
        size_t cap = h->cust_cap ? 2 * h->cust_cap : 64;
        struct customer *bigger = realloc(h->cust, cap * sizeof *bigger);
        if (bigger == NULL) {
            return NULL;
        }
        h->cust = bigger;
        h->cust_cap = cap;
    }
    struct customer *c = &h->cust[h->cust_count++];
    memset(c, 0, sizeof *c);
    c->tenant_id = tenant_id;
    return c;
}

/* The same query in three shapes, so the planner can use an index for the
 * filter given: [0] the portfolio, [1] one tenant (plus an optional
 * building), [2] one building.  Binds: ?4 tenant, ?5 building. */
#define HUB_BY_BUILDING                                                                     \
    " l.allocation_id IN (SELECT allocation_id FROM allocation_building WHERE"                \
    " building_id = ?5)"
#define HUB_VARIANTS(head, tail)                                                            \
    {head " ?4 IS NULL AND ?5 IS NULL AND" tail,                                             \
     head " l.tenant_id = ?4 AND (?5 IS NULL OR" HUB_BY_BUILDING ") AND" tail,                 \
     head " ?4 IS NULL AND" HUB_BY_BUILDING " AND" tail}

static const char *
hub_pick(const char *const variants[3], int64_t tid, int64_t bid)
{
    return variants[tid != 0 ? 1 : bid != 0 ? 2 : 0];
}

/* The variant of `variants` for the hub's filter, prepared and bound:
 * ?1 unit, ?2 and ?3 the UTC window, ?4 tenant, ?5 building. */
static sqlite3_stmt *
hub_stmt(struct hub *h, const char *const variants[3])
{
    sqlite3_stmt *st = store_prep(h->op->store, hub_pick(variants, h->tid, h->bid), h->op->err);
    if (st == NULL) {
        return NULL;
    }
    sqlite3_bind_text(st, 1, h->unit, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, h->lo);
    sqlite3_bind_int64(st, 3, h->hi);
    if (h->tid) {
        sqlite3_bind_int64(st, 4, h->tid);
    }
    if (h->bid) {
        sqlite3_bind_int64(st, 5, h->bid);
    }
    return st;
}

/* Recurring lots, each in the month its period starts. */
static int
hub_recurring(struct hub *h)
{
    static const char *const sql[3] = HUB_VARIANTS(
        "SELECT l.tenant_id, a.zone, l.kind = 'rollover', l.valid_from, l.granted, l.unlimited,"
        " l.used, l.adjusted FROM lot l JOIN allocation a ON a.id = l.allocation_id WHERE",
        " l.unit = ?1 AND a.recurrence != 'none' AND l.valid_from >= ?2 AND l.valid_from < ?3");
    sqlite3_stmt *st = hub_stmt(h, sql);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int m = hub_month(h, (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 3));
        if (m < 0 || m >= h->months) {
            continue;
        }
        struct customer *c = hub_customer(h, sqlite3_column_int64(st, 0));
        if (c == NULL) {
            sqlite3_reset(st);
            return eng_error_set(h->op->err, ENG_ENOMEM, "out of memory");
        }
        c->seen = true;
        struct month_row *r = &c->m[m];
        bool rollover = sqlite3_column_int(st, 2) != 0;
        bool unlimited = sqlite3_column_int(st, 5) != 0;
        int64_t granted = sqlite3_column_int64(st, 4), used = sqlite3_column_int64(st, 6);
        int64_t adjusted = sqlite3_column_int64(st, 7);
        r->monthly_used += used;
        if (unlimited) {
            r->monthly_unlimited = true;
        } else if (rollover) {
            r->monthly_rolled_in += granted + adjusted;
        } else {
            r->monthly_granted += granted + adjusted;
        }
    }
    sqlite3_reset(st);
    return 0;
}

/* Once lots, entry by entry in effective time. */
static int
hub_once(struct hub *h)
{
    /* By tenant the entry index (tenant_id, unit, effective_at) serves. */
    static const char *const sql[3] = {
        "SELECT l.tenant_id, a.zone, l.unlimited, e.kind, e.effective_at, e.amount"
        " FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id"
        " WHERE ?4 IS NULL AND ?5 IS NULL AND e.unit = ?1 AND a.recurrence = 'none' AND"
        " ?2 = ?2 AND e.effective_at < ?3",
        "SELECT l.tenant_id, a.zone, l.unlimited, e.kind, e.effective_at, e.amount"
        " FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id"
        " WHERE e.tenant_id = ?4 AND e.unit = ?1 AND e.effective_at < ?3 AND ?2 = ?2 AND"
        " a.recurrence = 'none' AND (?5 IS NULL OR" HUB_BY_BUILDING ")",
        "SELECT l.tenant_id, a.zone, l.unlimited, e.kind, e.effective_at, e.amount"
        " FROM entry e JOIN lot l ON l.id = e.lot_id JOIN allocation a ON a.id = l.allocation_id"
        " WHERE ?4 IS NULL AND" HUB_BY_BUILDING " AND e.unit = ?1 AND a.recurrence = 'none'"
        " AND ?2 = ?2 AND e.effective_at < ?3",
    };
    sqlite3_stmt *st = hub_stmt(h, sql);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int m = hub_month(h, (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 4));
        if (m >= h->months) {
            continue;
        }
        struct customer *c = hub_customer(h, sqlite3_column_int64(st, 0));
        if (c == NULL) {
            sqlite3_reset(st);
            return eng_error_set(h->op->err, ENG_ENOMEM, "out of memory");
        }
        bool unlimited = sqlite3_column_int(st, 2) != 0;
        const char *kind = (const char *)sqlite3_column_text(st, 3);
        int64_t amount = sqlite3_column_int64(st, 5);
        bool usage = strcmp(kind, "debit") == 0 || strcmp(kind, "refund") == 0;
        if (m < 0) {
            /* Before the range: only the limited balance carries in. */
            c->pre_opening += unlimited ? 0 : amount;
            c->seen = c->seen || !unlimited;
            continue;
        }
        c->seen = true;
        struct month_row *r = &c->m[m];
        if (usage) {
            /* Unlimited usage is shown but never moves a balance. */
            if (unlimited) {
                r->once_used_unlimited -= amount;
            } else {
                r->once_used -= amount;
            }
        } else if (!unlimited && (strcmp(kind, "grant") == 0 || strcmp(kind, "adjust") == 0)) {
            r->once_granted += amount;
        } else if (!unlimited) {
            r->once_expired -= amount;
        }
    }
    sqlite3_reset(st);
    return 0;
}

/* Marks months touched by an unlimited lot. */
static int
hub_unlimited(struct hub *h)
{
    static const char *const sql[3] = HUB_VARIANTS(
        "SELECT l.tenant_id, a.zone, a.recurrence != 'none', l.valid_from, l.valid_until"
        " FROM lot l JOIN allocation a ON a.id = l.allocation_id WHERE",
        " l.unit = ?1 AND l.unlimited = 1 AND l.valid_until > ?2 AND l.valid_from < ?3");
    sqlite3_stmt *st = hub_stmt(h, sql);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *zone = (const char *)sqlite3_column_text(st, 1);
        const int64_t *b = hub_bounds(h, zone);
        int64_t from = sqlite3_column_int64(st, 3), until = sqlite3_column_int64(st, 4);
        struct customer *c = hub_customer(h, sqlite3_column_int64(st, 0));
        if (c == NULL) {
            sqlite3_reset(st);
            return eng_error_set(h->op->err, ENG_ENOMEM, "out of memory");
        }
        for (int m = 0; m < h->months; m++) {
            if (from < b[m + 1] && until > b[m]) {
                c->seen = true;
                if (sqlite3_column_int(st, 2)) {
                    c->m[m].monthly_unlimited = true;
                } else {
                    c->m[m].once_unlimited = true;
                }
            }
        }
    }
    sqlite3_reset(st);
    return 0;
}

static json_t *
granted_json(bool unlimited, int64_t milli)
{
    return unlimited ? json_string("unlimited") : amount_to_json(milli);
}

/* One row of figures (a month, or the whole range). */
static json_t *
hub_figures(int64_t opening, int64_t closing, const struct month_row *sum, bool once_unl,
            bool monthly_unl, int64_t monthly_unused)
{
    int64_t once_used = sum->once_used + sum->once_used_unlimited;
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "once_opening",
                     amount_to_json(opening), "once_granted",
                     granted_json(once_unl, sum->once_granted), "once_used",
                     amount_to_json(once_used), "once_closing", amount_to_json(closing),
                     "monthly_granted", granted_json(monthly_unl, sum->monthly_granted),
                     "monthly_used", amount_to_json(sum->monthly_used), "monthly_unused",
                     amount_to_json(monthly_unused), "total_granted",
                     granted_json(once_unl || monthly_unl,
                                  sum->once_granted + sum->monthly_granted),
                     "total_used", amount_to_json(once_used + sum->monthly_used));
}

static json_t *
hub_customer_json(struct hub *h, struct customer *c, const char *name, struct month_row *tiles,
                  bool *any_once_unlimited, bool *any_monthly_unlimited)
{
    json_t *months = json_array();
    struct month_row sum = {0};
    bool once_unl = false, monthly_unl = false;
    int64_t opening = c->pre_opening, unused_sum = 0;
    for (int m = 0; m < h->months; m++) {
        struct month_row *r = &c->m[m];
        int64_t closing = opening + r->once_granted - r->once_used - r->once_expired;
        int64_t unused = r->monthly_granted + r->monthly_rolled_in - r->monthly_used;
        if (unused < 0 || r->monthly_unlimited) {
            unused = unused < 0 ? 0 : unused;
        }
        char month[16];
        month_format(date_add_months(h->first, m), month, sizeof month);
        json_t *row = hub_figures(opening, closing, r, r->once_unlimited, r->monthly_unlimited,
                                  unused);
        json_object_set_new(row, "month", json_string(month));
        json_array_append_new(months, row);
        sum.once_granted += r->once_granted;
        sum.once_used += r->once_used;
        sum.once_used_unlimited += r->once_used_unlimited;
        sum.monthly_granted += r->monthly_granted;
        sum.monthly_used += r->monthly_used;
        once_unl |= r->once_unlimited;
        monthly_unl |= r->monthly_unlimited;
        unused_sum += unused;
        opening = closing;
    }
    json_t *row = hub_figures(c->pre_opening, opening, &sum, once_unl, monthly_unl, unused_sum);
    json_object_set_new(row, "tenant_id", id_json("ten", c->tenant_id));
    json_object_set_new(row, "name", json_string(name));
    json_object_set_new(row, "unlimited", json_boolean(once_unl || monthly_unl));
    json_object_set_new(row, "months", months);
    tiles->once_granted += sum.once_granted;
    tiles->once_used += sum.once_used + sum.once_used_unlimited;
    tiles->monthly_granted += sum.monthly_granted;
    tiles->monthly_used += sum.monthly_used;
    *any_once_unlimited = once_unl;
    *any_monthly_unlimited = monthly_unl;
    return row;
}

static const char *const HUB_COLUMNS[] = {
    "tenant_id", "name", "month", "once_opening", "once_granted", "once_used", "once_closing",
    "monthly_granted", "monthly_used", "monthly_unused", "total_granted", "total_used", NULL};

/* One CSV row per customer and month, then a row per customer for the
 * whole range (month "total"). */
static char *
hub_csv(json_t *report)
{
    json_t *rows = json_array();
    size_t i, k;
    json_t *c, *m;
    json_array_foreach(json_object_get(report, "customers"), i, c) {
        json_array_foreach(json_object_get(c, "months"), k, m) {
            json_t *row = json_deep_copy(m);
            json_object_set(row, "tenant_id", json_object_get(c, "tenant_id"));
            json_object_set(row, "name", json_object_get(c, "name"));
            json_array_append_new(rows, row);
        }
        json_t *total = json_deep_copy(c);
        json_object_del(total, "months");
        json_object_set_new(total, "month", json_string("total"));
        json_array_append_new(rows, total);
    }
    char *text = csv_table(rows, HUB_COLUMNS);
    json_decref(rows);
    return text;
}

/* Shared arguments of every report. */
struct rargs {
    int64_t tenant_id, building_id, user_id, resource_id, from_t, to_t;
    const char *unit, *from, *to, *format;
};

static int
report_args(struct op *op, json_t *args, const char *const keys[], struct rargs *r)
{
    memset(r, 0, sizeof *r);
    r->from_t = INT64_MIN;
    r->to_t = INT64_MAX;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &r->tenant_id) ||
        args_id(op, args, "building_id", "bld", false, &r->building_id) ||
        args_string(op, args, "unit", false, 10, &r->unit) ||
        args_string(op, args, "format", false, 10, &r->format)) {
        return op->err->status;
    }
    if (r->unit != NULL && strcmp(r->unit, "hour") != 0 && strcmp(r->unit, "coin") != 0) {
        return op_invalid(op, "unit", "'unit' must be hour or coin");
    }
    if (r->format != NULL && strcmp(r->format, "csv") != 0 && strcmp(r->format, "json") != 0) {
        return op_invalid(op, "format", "'format' must be json or csv");
    }
    if (op->who->role == ROLE_TENANT_USER) {
        return op_forbidden(op, "read company reports");
    }
    if (!op_is_admin(op)) {
        if (r->tenant_id != 0 && r->tenant_id != op->who->tenant_id) {
            return op_not_found(op, "tenant");
        }
        r->tenant_id = op->who->tenant_id;
    }
    if (r->building_id != 0 && !op_sees_building(op, r->building_id)) {
        return op_not_found(op, "building");
    }
    if (op_is_admin(op) && op->who->building_count > 0 && r->building_id == 0) {
        r->building_id = op->who->building_ids[0];
    }
    return 0;
}

/* Wraps a result as {"csv": text} when CSV was asked for. */
static int
maybe_csv(struct op *op, const struct rargs *r, json_t *result, char *(*to_csv)(json_t *),
          json_t **out)
{
    if (r->format == NULL || strcmp(r->format, "csv") != 0) {
        *out = result;
        return 0;
    }
    char *text = to_csv(result);
    json_decref(result);
    if (text == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = json_pack("{s:s}", "csv", text);
    free(text);
    return 0;
}

/* Report rows page like every list when `limit` is given; without it a
 * report (and its CSV export) has every row, up to REPORT_ROWS_MAX. */
#define REPORT_ROWS_MAX 100000

static int
report_page(struct op *op, json_t *args, struct page *page)
{
    if (args != NULL && json_object_get(args, "limit") != NULL) {
        return args_page(op, args, page);
    }
    page->limit = REPORT_ROWS_MAX;
    return args_cursor(op, args, &page->after);
}

static int
op_datahub(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"unit", "from", "to", "tenant_id", "building_id",
                                       "format", NULL};
    struct rargs r;
    struct eng_error e = {0};
    if (report_args(op, args, keys, &r) || args_string(op, args, "from", false, 7, &r.from) ||
        args_string(op, args, "to", false, 7, &r.to)) {
        return op->err->status;
    }
    struct hub h = {.op = op};
    struct civil_date from, to;
    struct civil_time now_lt;
    (void)tz_local_time("UTC", op->now, &now_lt, &e);
    struct civil_date this_month = {now_lt.year, now_lt.month, 1};
    if (r.to != NULL && month_parse(r.to, &to, &e) != 0) {
        return op_invalid(op, "to", "'to' must be a month YYYY-MM");
    }
    if (r.from != NULL && month_parse(r.from, &from, &e) != 0) {
        return op_invalid(op, "from", "'from' must be a month YYYY-MM");
    }
    if (r.to == NULL) {
        to = r.from != NULL ? from : this_month;
    }
    if (r.from == NULL) {
        from = to;
    }
    int64_t span = period_index(PERIOD_MONTH, from, to);
    if (span < 0) {
        return op_invalid(op, "to", "'to' is before 'from'");
    }
    if (span >= MONTHS_MAX) {
        return op_invalid(op, "to", "a Data Hub range covers at most %d months", MONTHS_MAX);
    }
    h.first = from;
    h.months = (int)span + 1;
    const char *unit = r.unit ? r.unit : "hour";
    /* Widen the UTC window by a day each side; rows are then bucketed by
     * their own zone's month boundaries. */
    int64_t lo, hi;
    (void)tz_local_midnight("UTC", from, &lo, &e);
    (void)tz_local_midnight("UTC", date_add_months(from, h.months), &hi, &e);
    lo -= 86400;
    hi += 86400;
    h.unit = unit;
    h.lo = lo;
    h.hi = hi;
    h.tid = r.tenant_id;
    h.bid = r.building_id;
    int rc = hub_recurring(&h);
    if (rc == 0) {
        rc = hub_once(&h);
    }
    if (rc == 0) {
        rc = hub_unlimited(&h);
    }
    json_t *customers = json_array();
    struct month_row tiles = {0};
    int unlimited_customers = 0;
    for (size_t i = 0; rc == 0 && i < h.cust_count; i++) {
        struct customer *c = &h.cust[i];
        if (!c->seen) {
            continue;
        }
        sqlite3_stmt *st = store_prep(op->store, "SELECT name FROM tenant WHERE id = ?", op->err);
        if (st == NULL) {
            rc = ENG_ESTORE;
            break;
        }
        sqlite3_bind_int64(st, 1, c->tenant_id);
        char name[256] = "";
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_reset(st);
        bool once_unl = false, monthly_unl = false;
        json_array_append_new(customers,
                              hub_customer_json(&h, c, name, &tiles, &once_unl, &monthly_unl));
        unlimited_customers += once_unl || monthly_unl;
        tiles.once_unlimited |= once_unl;
        tiles.monthly_unlimited |= monthly_unl;
    }
    free(h.cust);
    if (rc != 0) {
        json_decref(customers);
        return rc;
    }
    char fm[16], tm[16];
    month_format(from, fm, sizeof fm);
    month_format(to, tm, sizeof tm);
    json_t *result = json_pack(
        "{s:s, s:s, s:s, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:i}, s:o}", "unit", unit, "from", fm,
        "to", tm, "tiles", "once_granted", granted_json(tiles.once_unlimited, tiles.once_granted),
        "once_used", amount_to_json(tiles.once_used), "monthly_granted",
        granted_json(tiles.monthly_unlimited, tiles.monthly_granted), "monthly_used",
        amount_to_json(tiles.monthly_used), "total_granted",
        granted_json(tiles.once_unlimited || tiles.monthly_unlimited,
                     tiles.once_granted + tiles.monthly_granted),
        "total_used",
        amount_to_json(tiles.once_used + tiles.monthly_used), "unlimited_customers",
        strcmp(unit, "coin") == 0 ? 0 : unlimited_customers, "customers", customers);
    return maybe_csv(op, &r, result, hub_csv, out);
}

/* ---------- dashboard ---------- */

#define DASH_DAYS_S (30 * 86400)

#define DASH_LOT_SUMS                                                                        \
    "SELECT coalesce(sum(CASE WHEN l.kind = 'period' AND l.unlimited = 0 THEN l.granted"      \
    " ELSE 0 END + l.adjusted), 0), coalesce(sum(l.used), 0),"                                \
    " coalesce(sum(CASE WHEN l.unlimited = 0 AND l.closed = 0 AND l.valid_until > ?4"         \
    " THEN l.balance ELSE 0 END), 0),"                                                        \
    " coalesce(sum(l.unlimited = 1 AND l.closed = 0 AND l.valid_until > ?4), 0) FROM lot l"
#define DASH_LOT_WHERE " l.unit = ?1 AND l.valid_from <= ?4 AND ?5 = ?5"
#define DASH_BY_BUILDING                                                                     \
    " l.allocation_id IN (SELECT allocation_id FROM allocation_building WHERE"                \
    " building_id = ?3)"

static void
dash_bind(struct op *op, sqlite3_stmt *st, const char *unit, const struct rargs *r)
{
    sqlite3_bind_text(st, 1, unit, -1, SQLITE_TRANSIENT);
    if (r->tenant_id) {
        sqlite3_bind_int64(st, 2, r->tenant_id);
    }
    if (r->building_id) {
        sqlite3_bind_int64(st, 3, r->building_id);
    }
    sqlite3_bind_int64(st, 4, op->now);
    sqlite3_bind_int64(st, 5, op->now - DASH_DAYS_S);
}

static int64_t
dash_scalar(struct op *op, const char *sql, const char *unit, const struct rargs *r, int *rc)
{
    sqlite3_stmt *st = store_prep(op->store, sql, op->err);
    if (st == NULL) {
        *rc = ENG_ESTORE;
        return 0;
    }
    sqlite3_bind_text(st, 1, unit, -1, SQLITE_TRANSIENT);
    if (r->tenant_id) {
        sqlite3_bind_int64(st, 2, r->tenant_id);
    }
    if (r->building_id) {
        sqlite3_bind_int64(st, 3, r->building_id);
    }
    sqlite3_bind_int64(st, 4, op->now);
    sqlite3_bind_int64(st, 5, op->now - DASH_DAYS_S);
    int64_t v = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    return v;
}

static char *
dash_csv(json_t *d)
{
    static const char *const cols[] = {"unit", "allocated", "used", "remaining",
                                       "transactions_30d", "active_users_30d", "top_tenant_id",
                                       "top_tenant_name", "top_tenant_used", NULL};
    json_t *row = json_deep_copy(d);
    json_t *top = json_object_get(d, "top_tenant");
    if (json_is_object(top)) {
        json_object_set(row, "top_tenant_id", json_object_get(top, "tenant_id"));
        json_object_set(row, "top_tenant_name", json_object_get(top, "name"));
        json_object_set(row, "top_tenant_used", json_object_get(top, "used"));
    }
    json_t *rows = json_pack("[o]", row);
    char *text = csv_table(rows, cols);
    json_decref(rows);
    return text;
}

static int
op_dashboard(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"unit", "tenant_id", "building_id", "format", NULL};
    struct rargs r;
    if (report_args(op, args, keys, &r) != 0) {
        return op->err->status;
    }
    const char *unit = r.unit ? r.unit : "hour";
    int rc = 0;
    /* Allocated: grants of lots whose validity has begun; used: their net
     * usage; remaining: what lots valid now hold. */
    /* One pass over the lots: allocated (grants and adjustments of lots
     * whose validity has begun), used (their net usage), remaining (what
     * lots valid now hold) and whether an unlimited lot is valid now. */
    static const char *const sql[3] = {
        DASH_LOT_SUMS " WHERE ?2 IS NULL AND ?3 IS NULL AND" DASH_LOT_WHERE,
        DASH_LOT_SUMS " WHERE l.tenant_id = ?2 AND (?3 IS NULL OR" DASH_BY_BUILDING ") AND"
        DASH_LOT_WHERE,
        DASH_LOT_SUMS " WHERE ?2 IS NULL AND" DASH_BY_BUILDING " AND" DASH_LOT_WHERE,
    };
    int64_t sums[4] = {0};
    sqlite3_stmt *lst = store_prep(op->store, sql[r.tenant_id ? 1 : r.building_id ? 2 : 0],
                                   op->err);
    if (lst == NULL) {
        return ENG_ESTORE;
    }
    dash_bind(op, lst, unit, &r);
    if (sqlite3_step(lst) == SQLITE_ROW) {
        for (int k = 0; k < 4; k++) {
            sums[k] = sqlite3_column_int64(lst, k);
        }
    }
    sqlite3_reset(lst);
    int64_t allocated = sums[0], remaining = sums[2], unlimited = sums[3];
    /* Used: credits paid for bookings (net of refunds), in the building
     * booked when filtered by building, whichever lot paid. */
    int64_t used = dash_scalar(op,
                               "SELECT coalesce(sum(b.credits - b.credits_refunded), 0)"
                               " FROM booking b WHERE b.payment_method = 'credits' AND"
                               " b.unit = ?1 AND (?2 IS NULL OR b.tenant_id = ?2) AND"
                               " (?3 IS NULL OR b.building_id = ?3) AND ?4 = ?4 AND ?5 = ?5",
                               unit, &r, &rc);
#define DASH_BOOKINGS                                                                        \
    " FROM booking b WHERE b.payment_method = 'credits' AND b.unit = ?1 AND"                   \
    " (?2 IS NULL OR b.tenant_id = ?2) AND (?3 IS NULL OR b.building_id = ?3) AND"           \
    " b.created_at <= ?4 AND b.created_at > ?5"
    int64_t transactions = dash_scalar(
        op, "SELECT count(*)" DASH_BOOKINGS " AND b.status = 'confirmed'", unit, &r, &rc);
    int64_t active = dash_scalar(
        op, "SELECT count(DISTINCT b.user_id)" DASH_BOOKINGS " AND b.status = 'confirmed'", unit,
        &r, &rc);
    json_t *top = json_null();
    sqlite3_stmt *st = rc == 0 ? store_prep(op->store,
                              "SELECT b.tenant_id, (SELECT name FROM tenant WHERE id = b.tenant_id),"
                              " sum(b.credits - b.credits_refunded) AS used" DASH_BOOKINGS
                              " GROUP BY b.tenant_id HAVING used > 0"
                              " ORDER BY used DESC, b.tenant_id LIMIT 1",
                              op->err)
                 : NULL;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, unit, -1, SQLITE_TRANSIENT);
        if (r.tenant_id) {
            sqlite3_bind_int64(st, 2, r.tenant_id);
        }
        if (r.building_id) {
            sqlite3_bind_int64(st, 3, r.building_id);
        }
        sqlite3_bind_int64(st, 4, op->now);
        sqlite3_bind_int64(st, 5, op->now - DASH_DAYS_S);
        if (sqlite3_step(st) == SQLITE_ROW) {
            top = json_pack("{s:o, s:s, s:o}", "tenant_id",
                            id_json("ten", sqlite3_column_int64(st, 0)), "name",
                            (const char *)sqlite3_column_text(st, 1), "used",
                            amount_to_json(sqlite3_column_int64(st, 2)));
        }
        sqlite3_reset(st);
    } else if (rc == 0) {
        rc = ENG_ESTORE;
    }
    if (rc != 0) {
        json_decref(top);
        return rc;
    }
    json_t *result = json_pack("{s:s, s:o, s:o, s:o, s:b, s:I, s:I, s:o}", "unit", unit,
                               "allocated", amount_to_json(allocated), "used",
                               amount_to_json(used), "remaining", amount_to_json(remaining),
                               "unlimited", unlimited > 0, "transactions_30d",
                               (json_int_t)transactions, "active_users_30d", (json_int_t)active,
                               "top_tenant", top);
    return maybe_csv(op, &r, result, dash_csv, out);
}

/* ---------- credit management ---------- */

static const char *const CREDIT_COLUMNS[] = {
    "allocation_id", "tenant_id", "tenant_name", "building_ids", "description", "unit",
    "amount", "recurrence", "start", "end", "expires_at", "rollover", "rollover_cap", "pool",
    "status", "granted", "used", "remaining", NULL};

static char *
credits_csv(json_t *report)
{
    return csv_table(json_object_get(report, "data"), CREDIT_COLUMNS);
}

static json_t *
credit_row(struct op *op, sqlite3_stmt *st)
{
    int64_t end_at = sqlite3_column_type(st, 8) == SQLITE_NULL ? TIME_NEVER
                                                                : sqlite3_column_int64(st, 8);
    int64_t start_at = sqlite3_column_int64(st, 17);
    const char *end = (const char *)sqlite3_column_text(st, 7);
    const char *status = end_at <= op->now ? "ended" : start_at > op->now ? "scheduled"
                                                                          : "active";
    json_t *row = json_pack(
        "{s:o, s:o, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:b, s:o, s:s, s:s, s:o, s:o,"
        " s:o}",
        "allocation_id", id_json("alc", sqlite3_column_int64(st, 0)), "tenant_id",
        id_json("ten", sqlite3_column_int64(st, 1)), "tenant_name",
        (const char *)sqlite3_column_text(st, 2), "description",
        (const char *)sqlite3_column_text(st, 3), "unit",
        (const char *)sqlite3_column_text(st, 4), "amount",
        sqlite3_column_type(st, 13) == SQLITE_NULL
            ? json_string("unlimited")
            : amount_to_json(sqlite3_column_int64(st, 13)),
        "recurrence", (const char *)sqlite3_column_text(st, 5), "start",
        (const char *)sqlite3_column_text(st, 6), "end", end ? json_string(end) : json_null(),
        "expires_at", json_time(end_at), "rollover", sqlite3_column_int(st, 9),
        "rollover_cap",
        sqlite3_column_type(st, 10) == SQLITE_NULL
            ? json_null()
            : amount_to_json(sqlite3_column_int64(st, 10)),
        "pool", (const char *)sqlite3_column_text(st, 11), "status", status, "granted",
        amount_to_json(sqlite3_column_int64(st, 14)), "used",
        amount_to_json(sqlite3_column_int64(st, 15)), "remaining",
        amount_to_json(sqlite3_column_int64(st, 16)));
    json_object_set_new(row, "building_ids",
                        json_from_text((const char *)sqlite3_column_text(st, 12)));
    return row;
}

static int
op_credits_report(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"tenant_id", "building_id", "unit", "format", "limit",
                                       "cursor", NULL};
    struct rargs r;
    struct page page;
    if (report_args(op, args, keys, &r) != 0 || report_page(op, args, &page) != 0) {
        return op->err->status;
    }
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT a.id, a.tenant_id, t.name, a.description, a.unit, a.recurrence, a.start_date,"
        " a.end_date, a.end_at, a.rollover, a.rollover_cap, a.pool,"
        " (SELECT json_group_array('bld_' || building_id) FROM allocation_building"
        "  WHERE allocation_id = a.id),"
        " (SELECT CASE WHEN count(amount) < count(*) THEN NULL ELSE sum(amount) END"
        "  FROM allocation_line WHERE allocation_id = a.id),"
        " (SELECT coalesce(sum(e.amount), 0) FROM entry e JOIN lot l ON l.id = e.lot_id"
        "  WHERE l.allocation_id = a.id AND e.kind IN ('grant', 'adjust') AND l.valid_from <= ?4),"
        " (SELECT coalesce(-sum(e.amount), 0) FROM entry e JOIN lot l ON l.id = e.lot_id"
        "  WHERE l.allocation_id = a.id AND e.kind IN ('debit', 'refund')),"
        " (SELECT coalesce(sum(balance), 0) FROM lot WHERE allocation_id = a.id AND"
        "  unlimited = 0 AND closed = 0 AND valid_from <= ?4 AND valid_until > ?4),"
        " a.start_at"
        " FROM allocation a JOIN tenant t ON t.id = a.tenant_id"
        " WHERE (?1 IS NULL OR a.tenant_id = ?1) AND (?2 IS NULL OR EXISTS (SELECT 1 FROM"
        " allocation_building ab WHERE ab.allocation_id = a.id AND ab.building_id = ?2))"
        " AND (?3 IS NULL OR a.unit = ?3) AND a.id > ?5 ORDER BY a.id LIMIT ?6",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    if (r.tenant_id) {
        sqlite3_bind_int64(st, 1, r.tenant_id);
    }
    if (r.building_id) {
        sqlite3_bind_int64(st, 2, r.building_id);
    }
    if (r.unit) {
        sqlite3_bind_text(st, 3, r.unit, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 4, op->now);
    sqlite3_bind_int64(st, 5, page.after);
    sqlite3_bind_int64(st, 6, page.limit + 1);
    json_t *result = NULL;
    if (page_of_rows(op, st, &page, credit_row, NULL, &result) != 0) {
        return op->err->status;
    }
    return maybe_csv(op, &r, result, credits_csv, out);
}

/* ---------- usage ---------- */

static const char *const USAGE_COLUMNS[] = {
    "booking_id", "created_at", "start", "end", "user_id", "user_name", "resource_id",
    "resource_name", "tenant_id", "tenant_name", "building_id", "building_name",
    "payment_method", "credits", "credits_refunded", "unit", "money", "currency", "status",
    NULL};

static char *
usage_csv(json_t *report)
{
    return csv_table(json_object_get(report, "data"), USAGE_COLUMNS);
}

static json_t *
usage_row(struct op *op, sqlite3_stmt *st)
{
    (void)op;
    bool credits = sqlite3_column_type(st, 13) != SQLITE_NULL &&
                   strcmp((const char *)sqlite3_column_text(st, 12), "credits") == 0;
    const char *unit = (const char *)sqlite3_column_text(st, 15);
    json_t *row = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:o, s:o,"
        " s:o, s:s, s:s}",
        "booking_id", id_json("bkg", sqlite3_column_int64(st, 0)), "created_at",
        json_time(sqlite3_column_int64(st, 1)), "start",
        json_time(sqlite3_column_int64(st, 2)), "end",
        json_time(sqlite3_column_int64(st, 3)), "user_id",
        id_json("usr", sqlite3_column_int64(st, 4)), "user_name",
        (const char *)sqlite3_column_text(st, 5), "resource_id",
        id_json("res", sqlite3_column_int64(st, 6)), "resource_name",
        (const char *)sqlite3_column_text(st, 7), "tenant_id",
        id_json("ten", sqlite3_column_int64(st, 8)), "tenant_name",
        (const char *)sqlite3_column_text(st, 9), "building_id",
        id_json("bld", sqlite3_column_int64(st, 10)), "building_name",
        (const char *)sqlite3_column_text(st, 11), "payment_method",
        (const char *)sqlite3_column_text(st, 12), "credits",
        credits ? amount_to_json(sqlite3_column_int64(st, 13) - sqlite3_column_int64(st, 14))
                : json_null(),
        "credits_refunded",
        credits ? amount_to_json(sqlite3_column_int64(st, 14)) : json_null(), "unit",
        unit ? json_string(unit) : json_null(), "money",
        sqlite3_column_type(st, 16) == SQLITE_NULL
            ? json_null()
            : json_integer(sqlite3_column_int64(st, 16)),
        "currency", (const char *)sqlite3_column_text(st, 17), "status",
        (const char *)sqlite3_column_text(st, 18));
    return row;
}

static int
op_usage_report(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"tenant_id", "building_id", "user_id", "resource_id",
                                       "from", "to", "unit", "format", "limit", "cursor", NULL};
    struct rargs r;
    bool tenant_user = op->who->role == ROLE_TENANT_USER;
    /* Tenant users may read their own usage: relax the company-report rule. */
    struct principal as_admin = *op->who;
    const struct principal *real = op->who;
    if (tenant_user) {
        as_admin.role = ROLE_TENANT_ADMIN;
        op->who = &as_admin;
    }
    int rc = report_args(op, args, keys, &r);
    op->who = real;
    char zone[TIME_ZONE_NAME_MAX];
    struct page page;
    if (rc == 0) {
        bound_zone(op, r.building_id, zone);
    }
    if (rc != 0 || args_id(op, args, "user_id", "usr", false, &r.user_id) ||
        args_id(op, args, "resource_id", "res", false, &r.resource_id) ||
        args_bound(op, args, "from", zone, false, &r.from_t) ||
        args_bound(op, args, "to", zone, true, &r.to_t) || report_page(op, args, &page)) {
        return op->err->status;
    }
    if (tenant_user) {
        r.user_id = op->who->user_id;
    }
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT b.id, b.created_at, b.start_at, b.end_at, b.user_id, u.name, b.resource_id,"
        " r.name, b.tenant_id, t.name, b.building_id, bl.name, b.payment_method, b.credits,"
        " b.credits_refunded, b.unit, b.money, b.currency, b.status"
        " FROM booking b JOIN user u ON u.id = b.user_id JOIN resource r ON r.id = b.resource_id"
        " JOIN tenant t ON t.id = b.tenant_id JOIN building bl ON bl.id = b.building_id"
        " WHERE (?1 IS NULL OR b.tenant_id = ?1) AND (?2 IS NULL OR b.building_id = ?2) AND"
        " (?3 IS NULL OR b.user_id = ?3) AND (?4 IS NULL OR b.resource_id = ?4) AND"
        " b.start_at >= ?5 AND b.start_at < ?6 AND (?7 IS NULL OR b.unit = ?7) AND b.id > ?8"
        " ORDER BY b.id LIMIT ?9",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    int64_t filters[] = {r.tenant_id, r.building_id, r.user_id, r.resource_id};
    for (int i = 0; i < 4; i++) {
        if (filters[i] != 0) {
            sqlite3_bind_int64(st, i + 1, filters[i]);
        }
    }
    sqlite3_bind_int64(st, 5, r.from_t);
    sqlite3_bind_int64(st, 6, r.to_t);
    if (r.unit) {
        sqlite3_bind_text(st, 7, r.unit, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 8, page.after);
    sqlite3_bind_int64(st, 9, page.limit + 1);
    json_t *result = NULL;
    if (page_of_rows(op, st, &page, usage_row, NULL, &result) != 0) {
        return op->err->status;
    }
    return maybe_csv(op, &r, result, usage_csv, out);
}

const struct op_def ops_reports[] = {
    {"reports.datahub", op_datahub, false},
    {"reports.dashboard", op_dashboard, false},
    {"reports.credits", op_credits_report, false},
    {"reports.usage", op_usage_report, false},
    {NULL, NULL, false},
};
