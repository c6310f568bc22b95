/* reports.c - Data Hub, dashboard, credit management and usage (PRODUCT.md
 * §7), computed from the ledger.  The queries are in store/reports.c; here
 * is the arithmetic, the access rules and the JSON.
 *
 * Data Hub attribution (PRODUCT.md §7, decisions in engine/README.md):
 * every figure comes from ledger entries, each in one month of its lot's
 * zone: a grant in the month the lot becomes valid, usage (debits net of
 * refunds) in the month the meeting starts, an expiry or a roll-on in the
 * month that ends at its instant.  Once: closing = opening + granted -
 * used - expired, so next month's opening is this month's closing exactly.
 * Monthly: unused = what expired, monthly_rolled_over = what moved on by
 * rollover; carried-in credit is neither granted nor unused again.
 * With group_by=user a customer is a member: per-user lots count in full,
 * shared lots give a member only the usage of their bookings.
 *
 * CSV: with format=csv a report answers {"columns": [...], "rows": [...]}
 * (rows are objects keyed by the column names), and the faces render it. */
#include <stdio.h>
#include <stdlib.h>
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
    /* A building-limited operator's scope as ",1,4," (empty: none), and
     * whether building_id is only its first building, not a filter asked
     * for (aggregate reports then use the whole scope instead). */
    char scope[PRINCIPAL_BUILDINGS_MAX * 21 + 2];
    bool building_defaulted;
};

/* The scope text of the store's report filters, or NULL. */
static const char *
rargs_scope(const struct rargs *r)
{
    return r->scope[0] != '\0' ? r->scope : NULL;
}

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
    /* Filters name objects: outside the scope (op_check_reaches) they are
     * not found, like an unknown id. */
    bool reaches = true;
    if (r->tenant_id != 0 && op_check_reaches(op, OP_OBJ_TENANT, r->tenant_id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "tenant");
    }
    if (!op_is_admin(op)) {
        r->tenant_id = op->who->tenant_id;
    }
    if (r->building_id != 0 &&
        op_check_reaches(op, OP_OBJ_BUILDING, r->building_id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "building");
    }
    if (op_is_admin(op) && op->who->building_count > 0) {
        size_t n = 1;
        r->scope[0] = ',';
        for (int k = 0; k < op->who->building_count; k++) {
            n += (size_t)snprintf(r->scope + n, sizeof r->scope - n, "%lld,",
                                  (long long)op->who->building_ids[k]);
        }
        if (r->building_id == 0) {
            r->building_id = op->who->building_ids[0];
            r->building_defaulted = true;
        }
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
    /* A page of a CSV report (`limit`) carries its cursor, which the faces
     * send beside the text (HTTP: the X-Next-Cursor header), so that a
     * page is never taken for the whole report. */
    json_t *cursor = json_incref(json_object_get(result, "next_cursor"));
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
        json_decref(cursor);
        return op_oom(op);
    }
    *out = json_pack("{s:o, s:o}", "columns", cols, "rows", rows);
    if (*out != NULL && cursor != NULL && json_object_set_new(*out, "next_cursor", cursor) != 0) {
        json_decref(*out);
        *out = NULL;
    } else if (*out == NULL) {
        json_decref(cursor);
    }
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

/* One customer's figures for one month (milli).  A figure's month follows
 * PRODUCT.md §7: granted in the month the lot becomes valid, used in the
 * month the meeting starts, expired/unused/rolled over in the month that
 * ends at the expiry instant. */
struct month_row {
    int64_t once_granted, once_used, once_used_limited, once_expired;
    int64_t monthly_granted, monthly_used, monthly_unused, monthly_rolled_over;
    bool once_granted_unl, monthly_granted_unl; /* an unlimited lot becomes valid */
    bool open_unl, close_unl; /* an unlimited once lot is valid at the start / end */
};

/* A customer and its months: h->months rows follow it (the array holds
 * customers of hub_stride(h) bytes, so a short range costs little memory
 * even with thousands of members). */
struct customer {
    int64_t id;          /* the tenant, or the user with group_by=user */
    int64_t tenant_id;   /* the tenant (the user's, with group_by=user) */
    int64_t pre_opening; /* limited once credit before the range */
    bool seen;           /* an entry falls in the range, or an unlimited lot is valid */
    bool unlimited;      /* an unlimited lot is valid at some point of the range */
    struct month_row m[];
};

/* One zone's month boundaries over the range. */
struct hub_zone {
    char name[TIME_ZONE_NAME_MAX];
    int64_t bounds[MONTHS_MAX + 1];
};

struct hub {
    struct op *op;
    int months;
    bool by_user; /* group_by=user: one customer per member */
    struct civil_date first;
    struct hub_zone *zones; /* growable: one per zone seen */
    size_t zone_count, zone_cap;
    char *cust; /* growable: one customer per hub_stride(h) bytes */
    size_t cust_count, cust_cap;
    size_t *slots; /* open addressing over cust: index + 1, 0 = free; 2 * cust_cap */
};

static size_t
hub_stride(const struct hub *h)
{
    return sizeof(struct customer) + (size_t)h->months * sizeof(struct month_row);
}

/* Customer i of h->cust. */
static struct customer *
hub_cust(const struct hub *h, size_t i)
{
    return (struct customer *)(void *)(h->cust + i * hub_stride(h));
}

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

/* *m = -1 before the range, months after it, else the index of the month
 * holding instant t. */
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

/* The slot of customer `id` in h->slots (its own, or the free one where it
 * goes); the table is never more than half full. */
static size_t *
hub_slot(struct hub *h, int64_t id)
{
    size_t mask = 2 * h->cust_cap - 1;
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15u >> 20) & mask;
    while (h->slots[i] != 0 && hub_cust(h, h->slots[i] - 1)->id != id) {
        i = (i + 1) & mask;
    }
    return &h->slots[i];
}

/* Doubles the customers' room and rehashes them; 0 or ENG_ENOMEM. */
static int
hub_grow(struct hub *h)
{
    size_t cap = h->cust_cap ? 2 * h->cust_cap : 64;
    char *bigger = realloc(h->cust, cap * hub_stride(h));
    size_t *slots = calloc(2 * cap, sizeof *slots);
    if (bigger != NULL) {
        h->cust = bigger;
    }
    if (bigger == NULL || slots == NULL) {
        free(slots);
        return ENG_ENOMEM;
    }
    free(h->slots);
    h->slots = slots;
    h->cust_cap = cap;
    for (size_t i = 0; i < h->cust_count; i++) {
        *hub_slot(h, hub_cust(h, i)->id) = i + 1;
    }
    return 0;
}

/* The row of customer `id`, added when new; NULL when out of memory.  A
 * hash keeps this constant-time: group_by=user may have many customers. */
static struct customer *
hub_customer(struct hub *h, int64_t id, int64_t tenant_id)
{
    if (h->cust_count > 0 && hub_cust(h, h->cust_count - 1)->id == id) {
        return hub_cust(h, h->cust_count - 1);
    }
    size_t *slot = h->cust_cap > 0 ? hub_slot(h, id) : NULL;
    if (slot != NULL && *slot != 0) {
        return hub_cust(h, *slot - 1);
    }
    if (h->cust_count == h->cust_cap) {
        if (hub_grow(h) != 0) {
            return NULL;
        }
        slot = hub_slot(h, id);
    }
    struct customer *c = hub_cust(h, h->cust_count++);
    memset(c, 0, hub_stride(h));
    c->id = id;
    c->tenant_id = tenant_id;
    *slot = h->cust_count;
    return c;
}

enum hub_kind { HUB_GRANT, HUB_ADJUST, HUB_USE, HUB_EXPIRE, HUB_ROLL_OUT, HUB_IGNORE };

static enum hub_kind
hub_kind_of(const char *kind)
{
    if (strcmp(kind, "grant") == 0) {
        return HUB_GRANT;
    }
    if (strcmp(kind, "adjust") == 0 || strcmp(kind, "void") == 0) {
        return HUB_ADJUST;
    }
    if (strcmp(kind, "debit") == 0 || strcmp(kind, "refund") == 0) {
        return HUB_USE;
    }
    if (strcmp(kind, "expire") == 0) {
        return HUB_EXPIRE;
    }
    /* rollover_in is carried credit, never a grant: it has no figure of
     * its own (the ending lot's rollover_out is monthly_rolled_over). */
    return strcmp(kind, "rollover_out") == 0 ? HUB_ROLL_OUT : HUB_IGNORE;
}

/* The instant whose month a figure of this entry belongs to: an expiry (or
 * a roll-on) at T belongs to the month that ends at T, so the instant just
 * before; an adjustment (or void) made before its lot is valid, to the
 * month the lot becomes valid; everything else to its effective time. */
static int64_t
hub_instant(enum hub_kind k, const struct hub_entry_row *row)
{
    if (k == HUB_EXPIRE || k == HUB_ROLL_OUT) {
        return row->effective_at - 1;
    }
    if (k == HUB_ADJUST && row->valid_from > row->effective_at) {
        return row->valid_from;
    }
    return row->effective_at;
}

/* Adds one in-range entry to its month's figures; `own` when the lot is
 * the customer's in full (with group_by=user, a per-user lot). */
static void
hub_add(struct month_row *r, enum hub_kind k, const struct hub_entry_row *row, bool own)
{
    int64_t a = row->amount;
    bool once = !row->recurring;
    switch (k) {
    case HUB_GRANT:
        if (row->unlimited) {
            *(once ? &r->once_granted_unl : &r->monthly_granted_unl) = true;
        } else {
            *(once ? &r->once_granted : &r->monthly_granted) += a;
        }
        break;
    case HUB_ADJUST:
        *(once ? &r->once_granted : &r->monthly_granted) += a;
        break;
    case HUB_USE:
        /* Usage is stored negative, a refund positive: used is net. */
        *(once ? &r->once_used : &r->monthly_used) -= a;
        /* Only usage of the customer's own limited lots moves its once
         * balance: unlimited usage, and a member's usage of a shared lot,
         * are used without a balance of theirs behind them. */
        r->once_used_limited -= once && !row->unlimited && own ? a : 0;
        break;
    case HUB_EXPIRE:
        *(once ? &r->once_expired : &r->monthly_unused) -= a;
        break;
    case HUB_ROLL_OUT:
        r->monthly_rolled_over -= a;
        break;
    case HUB_IGNORE:
        break;
    }
}

/* Every entry, to its customer's month (PRODUCT.md §7). */
static int
hub_on_entry(void *ud, const struct hub_entry_row *row)
{
    struct hub *h = ud;
    enum hub_kind k = hub_kind_of(row->kind);
    int64_t who = row->tenant_id;
    if (h->by_user) {
        /* A per-user lot counts in full for its user; a shared lot gives a
         * member only the usage of their own bookings. */
        who = row->lot_user_id != 0 ? row->lot_user_id
              : k == HUB_USE       ? row->booking_user_id
                                   : 0;
    }
    int m = 0;
    if (k == HUB_IGNORE || who == 0) {
        return 0;
    }
    /* A lot whose period has not begun (one created ahead for a booking)
     * grants nothing yet: its grant shows once the period begins, as the
     * dashboard and the credit report count it, so that a future month
     * does not depend on which lots some booking happened to create.  Its
     * usage counts in the meeting's month. */
    if ((k == HUB_GRANT || k == HUB_ADJUST) && row->valid_from > h->op->now) {
        return 0;
    }
    if (hub_month(h, row->zone, hub_instant(k, row), &m) != 0) {
        return h->op->err->status;
    }
    /* Before the range only a limited once balance of the customer's own
     * carries in (a member's shared-pool usage moves none of theirs). */
    bool own = !h->by_user || row->lot_user_id != 0;
    if (m >= h->months || (m < 0 && (row->recurring || row->unlimited || !own))) {
        return 0;
    }
    struct customer *c = hub_customer(h, who, row->tenant_id);
    if (c == NULL) {
        return op_oom(h->op);
    }
    if (m < 0) {
        c->pre_opening += row->amount;
        return 0;
    }
    c->seen = true;
    hub_add(&c->m[m], k, row, own);
    return 0;
}

/* Marks the months an unlimited lot is valid in: its customer shows
 * "unlimited" once balances while a once lot is valid at a month's start
 * or end, and counts among the customers with an unlimited grant. */
static int
hub_on_unlimited(void *ud, const struct hub_unlimited_row *row)
{
    struct hub *h = ud;
    int64_t who = h->by_user ? row->user_id : row->tenant_id;
    const int64_t *b = hub_bounds(h, row->zone);
    if (b == NULL) {
        return h->op->err->status;
    }
    if (who == 0 || row->valid_from >= b[h->months] || row->valid_until <= b[0] ||
        row->valid_from > h->op->now) {
        return 0; /* outside the range, or not begun (hub_on_entry) */
    }
    struct customer *c = hub_customer(h, who, row->tenant_id);
    if (c == NULL) {
        return op_oom(h->op);
    }
    c->seen = c->unlimited = true;
    for (int m = 0; !row->recurring && m < h->months; m++) {
        c->m[m].open_unl |= row->valid_from < b[m] && row->valid_until > b[m];
        c->m[m].close_unl |= row->valid_from < b[m + 1] && row->valid_until > b[m + 1];
    }
    return 0;
}

static json_t *
granted_json(bool unlimited, int64_t milli)
{
    return unlimited ? json_string("unlimited") : amount_to_json(milli);
}

/* One row of figures (a month, or the whole range): `sum` holds the flows
 * and the granted flags, opening/closing the once balances with their own
 * flags.  NULL when out of memory. */
static json_t *
hub_figures(int64_t opening, bool open_unl, int64_t closing, bool close_unl,
            const struct month_row *sum)
{
    bool total_unl = sum->once_granted_unl || sum->monthly_granted_unl;
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "once_opening",
        granted_json(open_unl, opening), "once_granted",
        granted_json(sum->once_granted_unl, sum->once_granted), "once_used",
        amount_to_json(sum->once_used), "once_expired", amount_to_json(sum->once_expired),
        "once_closing", granted_json(close_unl, closing), "monthly_granted",
        granted_json(sum->monthly_granted_unl, sum->monthly_granted), "monthly_used",
        amount_to_json(sum->monthly_used), "monthly_unused", amount_to_json(sum->monthly_unused),
        "monthly_rolled_over", amount_to_json(sum->monthly_rolled_over), "total_granted",
        granted_json(total_unl, sum->once_granted + sum->monthly_granted), "total_used",
        amount_to_json(sum->once_used + sum->monthly_used));
}

/* Adds the flows and granted flags of r to *sum. */
static void
hub_sum(struct month_row *sum, const struct month_row *r)
{
    sum->once_granted += r->once_granted;
    sum->once_used += r->once_used;
    sum->once_used_limited += r->once_used_limited;
    sum->once_expired += r->once_expired;
    sum->monthly_granted += r->monthly_granted;
    sum->monthly_used += r->monthly_used;
    sum->monthly_unused += r->monthly_unused;
    sum->monthly_rolled_over += r->monthly_rolled_over;
    sum->once_granted_unl |= r->once_granted_unl;
    sum->monthly_granted_unl |= r->monthly_granted_unl;
}

/* A customer's months; the range's flows go to *sum and its closing
 * balance to *closing.  NULL when out of memory. */
static json_t *
hub_months_json(struct hub *h, const struct customer *c, struct month_row *sum,
                int64_t *closing)
{
    json_t *months = json_array();
    int64_t opening = c->pre_opening;
    for (int m = 0; months != NULL && m < h->months; m++) {
        const struct month_row *r = &c->m[m];
        /* The once identity: closing = opening + granted - used - expired
         * (limited lots; unlimited usage moves no balance). */
        int64_t close = opening + r->once_granted - r->once_used_limited - r->once_expired;
        char month[16];
        month_format(date_add_months(h->first, m), month, sizeof month);
        json_t *row = hub_figures(opening, r->open_unl, close, r->close_unl, r);
        if (row != NULL && json_object_set_new(row, "month", json_string(month)) != 0) {
            json_decref(row);
            row = NULL;
        }
        /* json_array_append_new takes the row even when it fails. */
        if (row == NULL || json_array_append_new(months, row) != 0) {
            json_decref(months);
            return NULL;
        }
        hub_sum(sum, r);
        opening = close;
    }
    *closing = opening;
    return months;
}

/* A customer's row (named `name`); adds its flows to the tiles.  NULL when
 * out of memory. */
static json_t *
hub_customer_json(struct hub *h, const struct customer *c, const char *name,
                  struct month_row *tiles)
{
    struct month_row sum = {0};
    int64_t closing = 0;
    json_t *months = hub_months_json(h, c, &sum, &closing);
    if (months == NULL) {
        return NULL;
    }
    json_t *row = hub_figures(c->pre_opening, c->m[0].open_unl, closing,
                              c->m[h->months - 1].close_unl, &sum);
    if (row == NULL ||
        json_object_set_new(row, "tenant_id", id_json("ten", c->tenant_id)) != 0 ||
        (h->by_user && json_object_set_new(row, "user_id", id_json("usr", c->id)) != 0) ||
        json_object_set_new(row, "name", json_string(name)) != 0 ||
        json_object_set_new(row, "unlimited", json_boolean(c->unlimited)) != 0) {
        json_decref(row);
        json_decref(months);
        return NULL;
    }
    if (json_object_set_new(row, "months", months) != 0) {
        json_decref(row);
        return NULL;
    }
    hub_sum(tiles, &sum);
    return row;
}

static const char *const HUB_COLUMNS[] = {
    "tenant_id",       "name",         "month",          "once_opening",
    "once_granted",    "once_used",    "once_expired",   "once_closing",
    "monthly_granted", "monthly_used", "monthly_unused", "monthly_rolled_over",
    "total_granted",   "total_used",   NULL};

static const char *const HUB_USER_COLUMNS[] = {
    "user_id",         "tenant_id",       "name",         "month",
    "once_opening",    "once_granted",    "once_used",    "once_expired",
    "once_closing",    "monthly_granted", "monthly_used", "monthly_unused",
    "monthly_rolled_over", "total_granted", "total_used",  NULL};

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
            json_t *user = json_object_get(c, "user_id");
            if (row != NULL &&
                (json_object_set(row, "tenant_id", json_object_get(c, "tenant_id")) != 0 ||
                 (user != NULL && json_object_set(row, "user_id", user) != 0) ||
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

static int
hub_customer_cmp(const void *a, const void *b)
{
    const struct customer *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The display name of a customer: its tenant's, or its user's. */
static int
hub_name(struct hub *h, const struct customer *c, char *name, size_t size)
{
    bool found = false;
    name[0] = '\0';
    if (h->by_user) {
        struct user_row u;
        if (store_user_get(h->op->store, c->id, &u, &found, h->op->err) != 0) {
            return h->op->err->status;
        }
        if (found) {
            snprintf(name, size, "%s", u.name);
            store_user_clear(&u);
        }
        return 0;
    }
    struct tenant_row t;
    if (store_tenant_get(h->op->store, c->id, &t, &found, h->op->err) != 0) {
        return h->op->err->status;
    }
    if (found) {
        snprintf(name, size, "%s", t.name);
    }
    return 0;
}

/* The customers' rows (those with anything to show, in id order) and the
 * tiles. */
static int
hub_customers_json(struct hub *h, struct month_row *tiles, int *unlimited_customers,
                   json_t **out)
{
    json_t *customers = json_array();
    if (customers == NULL) {
        return op_oom(h->op);
    }
    /* In id order (h->slots is stale from here on; nothing looks up). */
    if (h->cust_count > 1) {
        qsort(h->cust, h->cust_count, hub_stride(h), hub_customer_cmp);
    }
    /* Like every report, a row (a customer's month or total) per CSV line,
     * and at most REPORT_ROWS_MAX of them: more is an error, not a cut. */
    size_t shown = 0;
    for (size_t i = 0; i < h->cust_count; i++) {
        shown += hub_cust(h, i)->seen || hub_cust(h, i)->pre_opening != 0;
    }
    if (shown * (size_t)(h->months + 1) > REPORT_ROWS_MAX) {
        json_decref(customers);
        eng_error_code(h->op->err, ENG_ELIMIT, "limit_exceeded",
                       "the Data Hub would hold %zu customers of %d rows each, above %d rows;"
                       " narrow it with tenant_id or building_id, or a shorter range",
                       shown, h->months + 1, REPORT_ROWS_MAX);
        eng_error_field(h->op->err, "report_rows_max");
        return ENG_ELIMIT;
    }
    for (size_t i = 0; i < h->cust_count; i++) {
        const struct customer *c = hub_cust(h, i);
        if (!c->seen && c->pre_opening == 0) {
            continue;
        }
        char name[STORE_NAME_MAX + 1];
        if (hub_name(h, c, name, sizeof name) != 0) {
            json_decref(customers);
            return h->op->err->status;
        }
        json_t *row = hub_customer_json(h, c, name, tiles);
        if (row == NULL || json_array_append_new(customers, row) != 0) {
            json_decref(customers);
            return op_oom(h->op);
        }
        *unlimited_customers += c->unlimited;
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
                           .building_id = r->building_defaulted ? 0 : r->building_id,
                           .booking_users = h->by_user,
                           .scope = rargs_scope(r)};
    int rc = store_hub_entries_each(op->store, &f, hub_on_entry, h, op->err);
    if (rc == 0) {
        rc = store_hub_unlimited_each(op->store, &f, hub_on_unlimited, h, op->err);
    }
    return rc;
}

/* The whole answer from the customers' rows and the tiles; NULL when out
 * of memory (customers is taken either way). */
static json_t *
hub_result(const char *unit, struct civil_date from, struct civil_date to, const char *group_by,
           const struct month_row *t, int unlimited_customers, json_t *customers)
{
    char fm[16], tm[16];
    month_format(from, fm, sizeof fm);
    month_format(to, tm, sizeof tm);
    bool total_unl = t->once_granted_unl || t->monthly_granted_unl;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i}, s:o}", "unit",
        unit, "from", fm, "to", tm, "group_by", group_by, "tiles", "once_granted",
        granted_json(t->once_granted_unl, t->once_granted), "once_used",
        amount_to_json(t->once_used), "once_expired", amount_to_json(t->once_expired),
        "monthly_granted", granted_json(t->monthly_granted_unl, t->monthly_granted),
        "monthly_used", amount_to_json(t->monthly_used), "monthly_unused",
        amount_to_json(t->monthly_unused), "monthly_rolled_over",
        amount_to_json(t->monthly_rolled_over), "total_granted",
        granted_json(total_unl, t->once_granted + t->monthly_granted), "total_used",
        amount_to_json(t->once_used + t->monthly_used), "unlimited_customers",
        strcmp(unit, "coin") == 0 ? 0 : unlimited_customers, "customers", customers);
}

static int
op_datahub(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"unit",        "from",   "to",       "tenant_id",
                                       "building_id", "format", "group_by", NULL};
    struct rargs r;
    const char *group_by = NULL;
    if (report_args(op, args, keys, &r) || args_string(op, args, "from", false, 7, &r.from) ||
        args_string(op, args, "to", false, 7, &r.to) ||
        args_string(op, args, "group_by", false, 10, &group_by)) {
        return op->err->status;
    }
    group_by = group_by != NULL ? group_by : "tenant";
    if (strcmp(group_by, "tenant") != 0 && strcmp(group_by, "user") != 0) {
        return op_invalid(op, "group_by", "'group_by' must be tenant or user");
    }
    struct hub h = {.op = op, .by_user = strcmp(group_by, "user") == 0};
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
    free(h.slots);
    free(h.zones);
    if (rc != 0) {
        return rc;
    }
    json_t *result =
        hub_result(unit, from, to, group_by, &tiles, unlimited_customers, customers);
    json_t *rows = result != NULL && wants_csv(&r) ? hub_table(result) : NULL;
    return report_finish(op, &r, result, rows, h.by_user ? HUB_USER_COLUMNS : HUB_COLUMNS,
                         out);
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
                            .building_id = r.building_defaulted ? 0 : r.building_id,
                            .now = op->now,
                            .since = op->now - DASH_DAYS_S,
                            .scope = rargs_scope(&r)};
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
    /* As in the Data Hub (granted_json): a figure an unlimited lot touches
     * is "unlimited" (allocated once one has begun, remaining while one is
     * valid), others stay exact; used is always a number. */
    json_t *result = json_pack("{s:s, s:o, s:o, s:o, s:b, s:I, s:I, s:o}", "unit", unit,
                               "allocated", granted_json(d.unlimited_begun, d.allocated),
                               "used", amount_to_json(d.used), "remaining",
                               granted_json(d.unlimited_now, d.remaining), "unlimited",
                               d.unlimited_now, "transactions_30d",
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
    struct zoned_bound *zb;      /* the usage report's dates, per row */
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
    /* A row is an allocation: a scoped key reaches it only when all of its
     * buildings are in scope (the building filter alone lets through an
     * allocation that also spans a building outside it). */
    if (!op_reaches_all(rr->op)) {
        bool reaches = false;
        int rc = op_check_reaches(rr->op, OP_OBJ_ALLOCATION, c->allocation_id, &reaches);
        if (rc != 0) {
            return rc;
        }
        if (!reaches) {
            /* Skipped: a page moves its cursor past it; a stream sends nothing. */
            return rr->sink == NULL ? pager_add(&rr->pg, c->allocation_id, NULL) : 0;
        }
    }
    int64_t now = rr->op->now;
    int64_t end_at = c->has_end ? c->end_at : TIME_NEVER;
    const char *status = end_at <= now ? "ended" : c->start_at > now ? "scheduled" : "active";
    /* granted and remaining follow the Data Hub's rule (granted_json):
     * "unlimited" once an unlimited lot has begun / while one is valid. */
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
        "status", status, "granted", granted_json(c->granted_unlimited, c->granted), "used",
        amount_to_json(c->used), "remaining", granted_json(c->remaining_unlimited, c->remaining),
        "building_ids",
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
                              .building_id = r.building_defaulted ? 0 : r.building_id,
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
    if (rr->zb != NULL && rr->zb->per_row) {
        /* Dates read in the row's own building's zone (op_zoned_bounds). */
        int64_t from = 0, to = 0;
        if (op_zoned_row(rr->op, rr->zb, u->building_id, &from, &to) != 0) {
            return rr->op->err->status;
        }
        if (u->start_at < from || u->start_at >= to) {
            return rr->sink != NULL ? 0 : pager_add(&rr->pg, u->booking_id, NULL);
        }
    }
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
usage_args(struct op *op, json_t *args, struct rargs *r, struct zoned_bound *zb,
           struct page *page, bool *paged)
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
    if (op_zoned_bounds(op, args, r->building_defaulted ? 0 : r->building_id, r->tenant_id,
                        zb) != 0 ||
        args_id(op, args, "user_id", "usr", false, &r->user_id) ||
        args_id(op, args, "resource_id", "res", false, &r->resource_id) ||
        report_page(op, args, page, paged)) {
        return op->err->status;
    }
    r->from_t = zb->from;
    r->to_t = zb->to;
    /* Filters name objects: a user or resource outside the scope is not
     * found, like an unknown id (as the tenant and building above). */
    bool reaches = true;
    if (r->user_id != 0 && op_check_reaches(op, OP_OBJ_USER, r->user_id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "user");
    }
    if (r->resource_id != 0 &&
        op_check_reaches(op, OP_OBJ_RESOURCE, r->resource_id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "resource");
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
    struct zoned_bound zb;
    struct page page;
    bool paged = false;
    if (usage_args(op, args, &r, &zb, &page, &paged) != 0) {
        return op->err->status;
    }
    struct usage_filter f = {.tenant_id = r.tenant_id,
                             .building_id = r.building_defaulted ? 0 : r.building_id,
                             .scope = rargs_scope(&r),
                             .user_id = r.user_id,
                             .resource_id = r.resource_id,
                             .from_t = r.from_t,
                             .to_t = r.to_t,
                             .unit = r.unit,
                             .after = page.after,
                             .limit = (int64_t)page.limit + 1};
    struct report_rows rr = {.op = op, .zb = &zb};
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
