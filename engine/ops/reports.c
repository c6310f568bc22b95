/* reports.c - Data Hub, dashboard, credit management and usage (PRODUCT.md
 * §7), computed from the ledger.  The queries are in store/reports.c; here
 * is the arithmetic, the access rules and the JSON.
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
 *   kind is valid at any point of the month.
 *
 * CSV: with format=csv a report answers {"columns": [...], "rows": [...]}
 * (rows are objects keyed by the column names), and the faces render it. */
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "ops.h"
#include "portfolio.h"
#include "reports.h"
#include "timeutil.h"

/* The longest Data Hub range, in months (a longer one is a limit_exceeded
 * error naming datahub_months_max). */
#define MONTHS_MAX 36

/* Report rows page like every list when `limit` is given; without it a
 * report (and its CSV export) has every row, and more than this many is a
 * limit_exceeded error (page with `limit` and `cursor` instead). */
#define REPORT_ROWS_MAX 100000

static int
op_oom(struct op *op)
{
    return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* ---------- shared arguments ---------- */

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

static bool
wants_csv(const struct rargs *r)
{
    return r->format != NULL && strcmp(r->format, "csv") == 0;
}

/* The answer of a report: `result` as is for JSON; for CSV the table
 * {"columns", "rows"} the faces render (`rows` objects keyed by column).
 * Takes ownership of result and rows (either may be NULL: out of memory). */
static int
report_finish(struct op *op, const struct rargs *r, json_t *result, json_t *rows,
              const char *const columns[], json_t **out)
{
    if (!wants_csv(r)) {
        json_decref(rows);
        *out = result;
        return result != NULL ? 0 : op_oom(op);
    }
    json_decref(result);
    json_t *cols = json_array();
    for (int k = 0; cols != NULL && columns[k] != NULL; k++) {
        if (json_array_append_new(cols, json_string(columns[k])) != 0) {
            json_decref(cols);
            cols = NULL;
        }
    }
    if (cols == NULL || rows == NULL) {
        json_decref(cols);
        json_decref(rows);
        return op_oom(op);
    }
    *out = json_pack("{s:o, s:o}", "columns", cols, "rows", rows);
    return *out != NULL ? 0 : op_oom(op);
}

/* Without `limit` a report holds every row (up to REPORT_ROWS_MAX); with
 * it, rows page like every list. */
static int
report_page(struct op *op, json_t *args, struct page *page, bool *paged)
{
    *paged = args != NULL && json_object_get(args, "limit") != NULL;
    if (*paged) {
        return args_page(op, args, page);
    }
    page->limit = REPORT_ROWS_MAX;
    return args_cursor(op, args, &page->after);
}

/* Closes a report's pager: an unpaged report with more rows than
 * REPORT_ROWS_MAX is an error, never a cut. */
static int
report_rows_finish(struct op *op, struct pager *pg, bool paged, int rc, json_t **out)
{
    if ((rc == 0 || rc == PAGER_FULL) && pg->more && !paged) {
        json_decref(pg->rows);
        pg->rows = NULL;
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "a report without 'limit' holds at most %d rows; page it with 'limit'"
                       " and 'cursor'",
                       REPORT_ROWS_MAX);
        eng_error_field(op->err, "report_rows_max");
        return ENG_ELIMIT;
    }
    return pager_finish(pg, op, rc, out);
}

/* The "data" rows of a page result, for its CSV (a new reference). */
static json_t *
page_rows(json_t *result)
{
    return json_incref(json_object_get(result, "data"));
}

/* ---------- Data Hub ---------- */

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

/* One zone's month boundaries over the range. */
struct hub_zone {
    char name[TIME_ZONE_NAME_MAX];
    int64_t bounds[MONTHS_MAX + 1];
};

struct hub {
    struct op *op;
    int months;
    struct civil_date first;
    struct hub_zone *zones; /* growable: one per zone seen */
    size_t zone_count, zone_cap;
    struct customer *cust; /* growable: one per tenant seen */
    size_t cust_count, cust_cap;
};

/* Month boundaries of the range in `zone` (computed once per zone); NULL
 * with op->err set on failure. */
static const int64_t *
hub_bounds(struct hub *h, const char *zone)
{
    for (size_t i = 0; i < h->zone_count; i++) {
        if (strcmp(h->zones[i].name, zone) == 0) {
            return h->zones[i].bounds;
        }
    }
    if (strlen(zone) >= TIME_ZONE_NAME_MAX) {
        eng_error_code(h->op->err, ENG_ESTORE, "storage_error", "a stored time zone is too long");
        return NULL;
    }
    if (h->zone_count == h->zone_cap) {
        size_t cap = h->zone_cap ? 2 * h->zone_cap : 4;
        struct hub_zone *bigger = realloc(h->zones, cap * sizeof *bigger);
        if (bigger == NULL) {
            op_oom(h->op);
            return NULL;
        }
        h->zones = bigger;
        h->zone_cap = cap;
    }
    struct hub_zone *z = &h->zones[h->zone_count];
    snprintf(z->name, sizeof z->name, "%s", zone);
    for (int m = 0; m <= h->months; m++) {
        if (tz_local_midnight(zone, date_add_months(h->first, m), &z->bounds[m], h->op->err) !=
            0) {
            return NULL;
        }
    }
    h->zone_count++;
    return z->bounds;
}

/* *m = -1 before the range, months after it, else the month index. */
static int
hub_month(struct hub *h, const char *zone, int64_t t, int *m)
{
    const int64_t *b = hub_bounds(h, zone);
    if (b == NULL) {
        return h->op->err->status;
    }
    if (t < b[0]) {
        *m = -1;
        return 0;
    }
    int lo = 0, hi = h->months; /* b[lo] <= t < b[hi] */
    if (t >= b[hi]) {
        *m = h->months;
        return 0;
    }
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (t >= b[mid]) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    *m = lo;
    return 0;
}

/* The customer row of a tenant, added when new; NULL when out of memory. */
static struct customer *
hub_customer(struct hub *h, int64_t tenant_id)
{
    /* Rows come grouped by tenant often, so check the last ones first. */
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

/* Recurring lots, each in the month its period starts. */
static int
hub_recurring_row(void *ud, const struct hub_lot_row *row)
{
    struct hub *h = ud;
    int m = 0;
    if (hub_month(h, row->zone, row->valid_from, &m) != 0) {
        return h->op->err->status;
    }
    if (m < 0 || m >= h->months) {
        return 0;
    }
    struct customer *c = hub_customer(h, row->tenant_id);
    if (c == NULL) {
        return op_oom(h->op);
    }
    c->seen = true;
    struct month_row *r = &c->m[m];
    r->monthly_used += row->used;
    if (row->unlimited) {
        r->monthly_unlimited = true;
    } else if (row->rollover) {
        r->monthly_rolled_in += row->granted + row->adjusted;
    } else {
        r->monthly_granted += row->granted + row->adjusted;
    }
    return 0;
}

/* Once lots, entry by entry in effective time. */
static int
hub_once_row(void *ud, const struct hub_entry_row *row)
{
    struct hub *h = ud;
    int m = 0;
    if (hub_month(h, row->zone, row->effective_at, &m) != 0) {
        return h->op->err->status;
    }
    if (m >= h->months) {
        return 0;
    }
    struct customer *c = hub_customer(h, row->tenant_id);
    if (c == NULL) {
        return op_oom(h->op);
    }
    bool usage = strcmp(row->kind, "debit") == 0 || strcmp(row->kind, "refund") == 0;
    if (m < 0) {
        /* Before the range: only the limited balance carries in. */
        c->pre_opening += row->unlimited ? 0 : row->amount;
        c->seen = c->seen || !row->unlimited;
        return 0;
    }
    c->seen = true;
    struct month_row *r = &c->m[m];
    if (usage) {
        /* Unlimited usage is shown but never moves a balance. */
        if (row->unlimited) {
            r->once_used_unlimited -= row->amount;
        } else {
            r->once_used -= row->amount;
        }
    } else if (!row->unlimited &&
               (strcmp(row->kind, "grant") == 0 || strcmp(row->kind, "adjust") == 0)) {
        r->once_granted += row->amount;
    } else if (!row->unlimited) {
        r->once_expired -= row->amount;
    }
    return 0;
}

/* Marks months touched by an unlimited lot. */
static int
hub_unlimited_row(void *ud, const struct hub_unlimited_row *row)
{
    struct hub *h = ud;
    const int64_t *b = hub_bounds(h, row->zone);
    if (b == NULL) {
        return h->op->err->status;
    }
    struct customer *c = hub_customer(h, row->tenant_id);
    if (c == NULL) {
        return op_oom(h->op);
    }
    for (int m = 0; m < h->months; m++) {
        if (row->valid_from < b[m + 1] && row->valid_until > b[m]) {
            c->seen = true;
            if (row->recurring) {
                c->m[m].monthly_unlimited = true;
            } else {
                c->m[m].once_unlimited = true;
            }
        }
    }
    return 0;
}

static json_t *
granted_json(bool unlimited, int64_t milli)
{
    return unlimited ? json_string("unlimited") : amount_to_json(milli);
}

/* One row of figures (a month, or the whole range); NULL when out of
 * memory. */
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

/* A customer's months; the range's sums go to *sum, *unused_sum, *closing
 * and the unlimited flags.  NULL when out of memory. */
static json_t *
hub_months_json(struct hub *h, const struct customer *c, struct month_row *sum,
                int64_t *unused_sum, int64_t *closing, bool *once_unl, bool *monthly_unl)
{
    json_t *months = json_array();
    int64_t opening = c->pre_opening;
    for (int m = 0; months != NULL && m < h->months; m++) {
        const struct month_row *r = &c->m[m];
        int64_t close = opening + r->once_granted - r->once_used - r->once_expired;
        int64_t unused = r->monthly_granted + r->monthly_rolled_in - r->monthly_used;
        unused = unused < 0 ? 0 : unused;
        char month[16];
        month_format(date_add_months(h->first, m), month, sizeof month);
        json_t *row = hub_figures(opening, close, r, r->once_unlimited, r->monthly_unlimited,
                                  unused);
        if (row != NULL && json_object_set_new(row, "month", json_string(month)) != 0) {
            json_decref(row);
            row = NULL;
        }
        /* json_array_append_new takes the row even when it fails. */
        if (row == NULL || json_array_append_new(months, row) != 0) {
            json_decref(months);
            return NULL;
        }
        sum->once_granted += r->once_granted;
        sum->once_used += r->once_used;
        sum->once_used_unlimited += r->once_used_unlimited;
        sum->monthly_granted += r->monthly_granted;
        sum->monthly_used += r->monthly_used;
        *once_unl |= r->once_unlimited;
        *monthly_unl |= r->monthly_unlimited;
        *unused_sum += unused;
        opening = close;
    }
    *closing = opening;
    return months;
}

/* A customer's row; adds its sums to the tiles.  NULL when out of memory. */
static json_t *
hub_customer_json(struct hub *h, const struct customer *c, const char *name,
                  struct month_row *tiles, bool *once_unl, bool *monthly_unl)
{
    struct month_row sum = {0};
    int64_t unused_sum = 0, closing = 0;
    *once_unl = *monthly_unl = false;
    json_t *months =
        hub_months_json(h, c, &sum, &unused_sum, &closing, once_unl, monthly_unl);
    if (months == NULL) {
        return NULL;
    }
    json_t *row = hub_figures(c->pre_opening, closing, &sum, *once_unl, *monthly_unl,
                              unused_sum);
    if (row == NULL ||
        json_object_set_new(row, "tenant_id", id_json("ten", c->tenant_id)) != 0 ||
        json_object_set_new(row, "name", json_string(name)) != 0 ||
        json_object_set_new(row, "unlimited", json_boolean(*once_unl || *monthly_unl)) != 0) {
        json_decref(row);
        json_decref(months);
        return NULL;
    }
    if (json_object_set_new(row, "months", months) != 0) {
        json_decref(row);
        return NULL;
    }
    tiles->once_granted += sum.once_granted;
    tiles->once_used += sum.once_used + sum.once_used_unlimited;
    tiles->monthly_granted += sum.monthly_granted;
    tiles->monthly_used += sum.monthly_used;
    return row;
}

static const char *const HUB_COLUMNS[] = {
    "tenant_id", "name", "month", "once_opening", "once_granted", "once_used", "once_closing",
    "monthly_granted", "monthly_used", "monthly_unused", "total_granted", "total_used", NULL};

/* The CSV rows: one per customer and month, then one per customer for the
 * whole range (month "total").  NULL when out of memory. */
static json_t *
hub_table(json_t *report)
{
    json_t *rows = json_array();
    size_t i, k;
    json_t *c, *m;
    json_array_foreach(json_object_get(report, "customers"), i, c) {
        json_array_foreach(json_object_get(c, "months"), k, m) {
            json_t *row = json_deep_copy(m);
            if (row != NULL &&
                (json_object_set(row, "tenant_id", json_object_get(c, "tenant_id")) != 0 ||
                 json_object_set(row, "name", json_object_get(c, "name")) != 0)) {
                json_decref(row);
                row = NULL;
            }
            if (row == NULL || json_array_append_new(rows, row) != 0) {
                json_decref(rows);
                return NULL;
            }
        }
        json_t *total = json_deep_copy(c);
        if (total != NULL && (json_object_del(total, "months") != 0 ||
                              json_object_set_new(total, "month", json_string("total")) != 0)) {
            json_decref(total);
            total = NULL;
        }
        if (total == NULL || json_array_append_new(rows, total) != 0) {
            json_decref(rows);
            return NULL;
        }
    }
    return rows;
}

/* The range of a Data Hub request: from/to months (default: this month). */
static int
hub_range(struct op *op, const struct rargs *r, struct civil_date *from, struct civil_date *to,
          int *months)
{
    struct eng_error e = {0};
    struct civil_time now_lt;
    if (tz_local_time("UTC", op->now, &now_lt, op->err) != 0) {
        return op->err->status;
    }
    struct civil_date this_month = {now_lt.year, now_lt.month, 1};
    if (r->to != NULL && month_parse(r->to, to, &e) != 0) {
        return op_invalid(op, "to", "'to' must be a month YYYY-MM");
    }
    if (r->from != NULL && month_parse(r->from, from, &e) != 0) {
        return op_invalid(op, "from", "'from' must be a month YYYY-MM");
    }
    if (r->to == NULL) {
        *to = r->from != NULL ? *from : this_month;
    }
    if (r->from == NULL) {
        *from = *to;
    }
    int64_t span = period_index(PERIOD_MONTH, *from, *to);
    if (span < 0) {
        return op_invalid(op, "to", "'to' is before 'from'");
    }
    if (span >= MONTHS_MAX) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "a Data Hub range covers at most %d months", MONTHS_MAX);
        eng_error_field(op->err, "datahub_months_max");
        return ENG_ELIMIT;
    }
    *months = (int)span + 1;
    return 0;
}

/* The customers' rows (those with anything to show) and the tiles. */
static int
hub_customers_json(struct hub *h, struct month_row *tiles, int *unlimited_customers,
                   json_t **out)
{
    json_t *customers = json_array();
    if (customers == NULL) {
        return op_oom(h->op);
    }
    for (size_t i = 0; i < h->cust_count; i++) {
        const struct customer *c = &h->cust[i];
        if (!c->seen) {
            continue;
        }
        struct tenant_row t;
        bool found = false;
        if (store_tenant_get(h->op->store, c->tenant_id, &t, &found, h->op->err) != 0) {
            json_decref(customers);
            return h->op->err->status;
        }
        bool once_unl = false, monthly_unl = false;
        json_t *row =
            hub_customer_json(h, c, found ? t.name : "", tiles, &once_unl, &monthly_unl);
        if (row == NULL || json_array_append_new(customers, row) != 0) {
            json_decref(customers);
            return op_oom(h->op);
        }
        *unlimited_customers += once_unl || monthly_unl;
        tiles->once_unlimited |= once_unl;
        tiles->monthly_unlimited |= monthly_unl;
    }
    *out = customers;
    return 0;
}

/* Reads the hub's rows and builds its customers (h->cust). */
static int
hub_collect(struct hub *h, const struct rargs *r, const char *unit, struct civil_date from)
{
    struct op *op = h->op;
    /* Widen the UTC window by a day each side; rows are then bucketed by
     * their own zone's month boundaries. */
    int64_t lo, hi;
    if (tz_local_midnight("UTC", from, &lo, op->err) != 0 ||
        tz_local_midnight("UTC", date_add_months(from, h->months), &hi, op->err) != 0) {
        return op->err->status;
    }
    struct hub_filter f = {.unit = unit,
                           .window_lo = lo - 86400,
                           .window_hi = hi + 86400,
                           .tenant_id = r->tenant_id,
                           .building_id = r->building_id};
    int rc = store_hub_recurring_each(op->store, &f, hub_recurring_row, h, op->err);
    if (rc == 0) {
        rc = store_hub_once_each(op->store, &f, hub_once_row, h, op->err);
    }
    if (rc == 0) {
        rc = store_hub_unlimited_each(op->store, &f, hub_unlimited_row, h, op->err);
    }
    return rc;
}

static int
op_datahub(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"unit", "from", "to", "tenant_id", "building_id",
                                       "format", NULL};
    struct rargs r;
    if (report_args(op, args, keys, &r) || args_string(op, args, "from", false, 7, &r.from) ||
        args_string(op, args, "to", false, 7, &r.to)) {
        return op->err->status;
    }
    struct hub h = {.op = op};
    struct civil_date from, to;
    if (hub_range(op, &r, &from, &to, &h.months) != 0) {
        return op->err->status;
    }
    h.first = from;
    const char *unit = r.unit ? r.unit : "hour";
    json_t *customers = NULL;
    struct month_row tiles = {0};
    int unlimited_customers = 0;
    int rc = hub_collect(&h, &r, unit, from);
    if (rc == 0) {
        rc = hub_customers_json(&h, &tiles, &unlimited_customers, &customers);
    }
    free(h.cust);
    free(h.zones);
    if (rc != 0) {
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
        "total_used", amount_to_json(tiles.once_used + tiles.monthly_used),
        "unlimited_customers", strcmp(unit, "coin") == 0 ? 0 : unlimited_customers,
        "customers", customers);
    json_t *rows = result != NULL && wants_csv(&r) ? hub_table(result) : NULL;
    return report_finish(op, &r, result, rows, HUB_COLUMNS, out);
}

/* ---------- dashboard ---------- */

#define DASH_DAYS_S (30 * 86400)

static const char *const DASH_COLUMNS[] = {
    "unit", "allocated", "used", "remaining", "transactions_30d", "active_users_30d",
    "top_tenant_id", "top_tenant_name", "top_tenant_used", NULL};

/* The dashboard's one CSV row.  NULL when out of memory. */
static json_t *
dash_table(json_t *d)
{
    json_t *row = json_deep_copy(d);
    json_t *top = json_object_get(d, "top_tenant");
    if (row != NULL && json_is_object(top) &&
        (json_object_set(row, "top_tenant_id", json_object_get(top, "tenant_id")) != 0 ||
         json_object_set(row, "top_tenant_name", json_object_get(top, "name")) != 0 ||
         json_object_set(row, "top_tenant_used", json_object_get(top, "used")) != 0)) {
        json_decref(row);
        return NULL;
    }
    return row != NULL ? json_pack("[o]", row) : NULL;
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
    struct dash_filter f = {.unit = unit,
                            .tenant_id = r.tenant_id,
                            .building_id = r.building_id,
                            .now = op->now,
                            .since = op->now - DASH_DAYS_S};
    struct dash_figures d;
    if (store_dashboard(op->store, &f, &d, op->err) != 0) {
        return op->err->status;
    }
    json_t *top = d.has_top ? json_pack("{s:o, s:s, s:o}", "tenant_id",
                                        id_json("ten", d.top_tenant_id), "name", d.top_name,
                                        "used", amount_to_json(d.top_used))
                            : json_null();
    if (top == NULL) {
        return op_oom(op);
    }
    json_t *result = json_pack("{s:s, s:o, s:o, s:o, s:b, s:I, s:I, s:o}", "unit", unit,
                               "allocated", amount_to_json(d.allocated), "used",
                               amount_to_json(d.used), "remaining", amount_to_json(d.remaining),
                               "unlimited", d.unlimited_now, "transactions_30d",
                               (json_int_t)d.transactions, "active_users_30d",
                               (json_int_t)d.active_users, "top_tenant", top);
    json_t *rows = result != NULL && wants_csv(&r) ? dash_table(result) : NULL;
    return report_finish(op, &r, result, rows, DASH_COLUMNS, out);
}

/* ---------- credit management ---------- */

static const char *const CREDIT_COLUMNS[] = {
    "allocation_id", "tenant_id", "tenant_name", "building_ids", "description", "unit",
    "amount", "recurrence", "start", "end", "expires_at", "rollover", "rollover_cap", "pool",
    "status", "granted", "used", "remaining", NULL};

/* Where a row report's rows go: a page (the pager) or, when streaming, the
 * face's sink, one row at a time. */
struct report_rows {
    struct op *op;
    struct pager pg;
    const struct row_sink *sink; /* streaming when not NULL */
    int64_t streamed;
};

/* Hands one row (stolen) to the page or the sink. */
static int
report_emit(struct report_rows *rr, int64_t id, json_t *row)
{
    if (rr->sink == NULL) {
        return pager_add(&rr->pg, id, row);
    }
    int rc = rr->sink->row(rr->sink->ud, row);
    json_decref(row);
    if (rc != 0) {
        /* The face could not take it (the client has gone, or memory):
         * the report stops and fails; the face tells its client. */
        return eng_error_code(rr->op->err, ENG_ENOMEM, "overloaded",
                              "the report's rows could not be delivered");
    }
    rr->streamed++;
    return 0;
}

/* A report without `limit` asked through engine_exec_stream streams: every
 * row, whatever their number, never more than one in memory (no
 * report_rows_max then).  With `limit` it pages as usual. */
static bool
report_streams(const struct op *op, bool paged)
{
    return op->sink != NULL && !paged;
}

/* Ends a streamed report (begun, its rows handed over): {"rows": n}. */
static int
report_stream(struct op *op, struct report_rows *rr, int rc, json_t **out)
{
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:I}", "rows", (json_int_t)rr->streamed);
    return *out != NULL ? 0 : op_oom(op);
}

static int
credit_row(void *ud, const struct credit_report_row *c)
{
    struct report_rows *rr = ud;
    int64_t now = rr->op->now;
    int64_t end_at = c->has_end ? c->end_at : TIME_NEVER;
    const char *status = end_at <= now ? "ended" : c->start_at > now ? "scheduled" : "active";
    json_t *row = json_pack(
        "{s:o, s:o, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:b, s:o, s:s, s:s, s:o, s:o,"
        " s:o, s:o}",
        "allocation_id", id_json("alc", c->allocation_id), "tenant_id",
        id_json("ten", c->tenant_id), "tenant_name", c->tenant_name, "description",
        c->description, "unit", c->unit, "amount",
        c->has_amount ? amount_to_json(c->amount) : json_string("unlimited"), "recurrence",
        c->recurrence, "start", c->start_date, "end",
        c->end_date != NULL ? json_string(c->end_date) : json_null(), "expires_at",
        json_time(end_at), "rollover", (int)c->rollover, "rollover_cap",
        c->has_rollover_cap ? amount_to_json(c->rollover_cap) : json_null(), "pool", c->pool,
        "status", status, "granted", amount_to_json(c->granted), "used",
        amount_to_json(c->used), "remaining", amount_to_json(c->remaining), "building_ids",
        json_from_text(c->building_ids_json));
    if (row == NULL) {
        return op_oom(rr->op);
    }
    return report_emit(rr, c->allocation_id, row);
}

static int
op_credits_report(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"tenant_id", "building_id", "unit", "format", "limit",
                                       "cursor", NULL};
    struct rargs r;
    struct page page;
    bool paged = false;
    if (report_args(op, args, keys, &r) != 0 || report_page(op, args, &page, &paged) != 0) {
        return op->err->status;
    }
    struct credit_filter f = {.tenant_id = r.tenant_id,
                              .building_id = r.building_id,
                              .unit = r.unit,
                              .now = op->now,
                              .after = page.after,
                              .limit = (int64_t)page.limit + 1};
    struct report_rows rr = {.op = op};
    if (report_streams(op, paged)) {
        rr.sink = op->sink;
        f.limit = INT64_MAX;
        int rc = op->sink->begin(op->sink->ud, CREDIT_COLUMNS) != 0
                     ? op_oom(op)
                     : store_credit_report_each(op->store, &f, credit_row, &rr, op->err);
        return report_stream(op, &rr, rc, out);
    }
    pager_init(&rr.pg, &page);
    int rc = store_credit_report_each(op->store, &f, credit_row, &rr, op->err);
    json_t *result = NULL;
    if (report_rows_finish(op, &rr.pg, paged, rc, &result) != 0) {
        return op->err->status;
    }
    json_t *rows = wants_csv(&r) ? page_rows(result) : NULL;
    return report_finish(op, &r, result, rows, CREDIT_COLUMNS, out);
}

/* ---------- usage ---------- */

static const char *const USAGE_COLUMNS[] = {
    "booking_id", "created_at", "start", "end", "user_id", "user_name", "resource_id",
    "resource_name", "tenant_id", "tenant_name", "building_id", "building_name",
    "payment_method", "credits", "credits_refunded", "unit", "money", "currency", "status",
    NULL};

static int
usage_row(void *ud, const struct usage_row *u)
{
    struct report_rows *rr = ud;
    bool credits = u->has_credits && strcmp(u->payment_method, "credits") == 0;
    json_t *row = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:o, s:o,"
        " s:o, s:s, s:s}",
        "booking_id", id_json("bkg", u->booking_id), "created_at", json_time(u->created_at),
        "start", json_time(u->start_at), "end", json_time(u->end_at), "user_id",
        id_json("usr", u->user_id), "user_name", u->user_name, "resource_id",
        id_json("res", u->resource_id), "resource_name", u->resource_name, "tenant_id",
        id_json("ten", u->tenant_id), "tenant_name", u->tenant_name, "building_id",
        id_json("bld", u->building_id), "building_name", u->building_name, "payment_method",
        u->payment_method, "credits",
        credits ? amount_to_json(u->credits - u->credits_refunded) : json_null(),
        "credits_refunded", credits ? amount_to_json(u->credits_refunded) : json_null(),
        "unit", u->unit != NULL ? json_string(u->unit) : json_null(), "money",
        u->has_money ? json_integer(u->money) : json_null(), "currency", u->currency,
        "status", u->status);
    if (row == NULL) {
        return op_oom(rr->op);
    }
    return report_emit(rr, u->booking_id, row);
}

/* The usage filters beyond the shared ones; tenant users see their own
 * bookings only. */
static int
usage_args(struct op *op, json_t *args, struct rargs *r, struct page *page, bool *paged)
{
    static const char *const keys[] = {"tenant_id", "building_id", "user_id", "resource_id",
                                       "from", "to", "unit", "format", "limit", "cursor", NULL};
    bool tenant_user = op->who->role == ROLE_TENANT_USER;
    /* Tenant users may read their own usage: relax the company-report rule. */
    struct principal as_admin = *op->who;
    const struct principal *real = op->who;
    if (tenant_user) {
        as_admin.role = ROLE_TENANT_ADMIN;
        op->who = &as_admin;
    }
    int rc = report_args(op, args, keys, r);
    op->who = real;
    if (rc != 0) {
        return rc;
    }
    char zone[TIME_ZONE_NAME_MAX];
    if (op_bound_zone(op, r->building_id, zone) != 0) {
        return op->err->status;
    }
    if (args_id(op, args, "user_id", "usr", false, &r->user_id) ||
        args_id(op, args, "resource_id", "res", false, &r->resource_id) ||
        args_bound(op, args, "from", zone, false, &r->from_t) ||
        args_bound(op, args, "to", zone, true, &r->to_t) ||
        report_page(op, args, page, paged)) {
        return op->err->status;
    }
    if (tenant_user) {
        r->user_id = op->who->user_id;
    }
    return 0;
}

static int
op_usage_report(struct op *op, json_t *args, json_t **out)
{
    struct rargs r;
    struct page page;
    bool paged = false;
    if (usage_args(op, args, &r, &page, &paged) != 0) {
        return op->err->status;
    }
    struct usage_filter f = {.tenant_id = r.tenant_id,
                             .building_id = r.building_id,
                             .user_id = r.user_id,
                             .resource_id = r.resource_id,
                             .from_t = r.from_t,
                             .to_t = r.to_t,
                             .unit = r.unit,
                             .after = page.after,
                             .limit = (int64_t)page.limit + 1};
    struct report_rows rr = {.op = op};
    if (report_streams(op, paged)) {
        rr.sink = op->sink;
        f.limit = INT64_MAX;
        int rc = op->sink->begin(op->sink->ud, USAGE_COLUMNS) != 0
                     ? op_oom(op)
                     : store_usage_each(op->store, &f, usage_row, &rr, op->err);
        return report_stream(op, &rr, rc, out);
    }
    pager_init(&rr.pg, &page);
    int rc = store_usage_each(op->store, &f, usage_row, &rr, op->err);
    json_t *result = NULL;
    if (report_rows_finish(op, &rr.pg, paged, rc, &result) != 0) {
        return op->err->status;
    }
    json_t *rows = wants_csv(&r) ? page_rows(result) : NULL;
    return report_finish(op, &r, result, rows, USAGE_COLUMNS, out);
}

const struct op_def ops_reports[] = {
    {"reports.datahub", op_datahub, false},
    {"reports.dashboard", op_dashboard, false},
    {"reports.credits", op_credits_report, false},
    {"reports.usage", op_usage_report, false},
    {NULL, NULL, false},
};
