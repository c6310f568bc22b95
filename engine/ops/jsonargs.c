/* jsonargs.c - strict reading of operation arguments, paging, SQL helpers.
 *
 * Every op validates its whole input before touching the database: a wrong
 * type, an unknown field, an over-long string or an inexact amount is a 400
 * that names the field, and nothing is written. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "buildings.h"
#include "ops.h"
#include "portfolio.h"
#include "timeutil.h"

void
op_bind_ledger(struct op *op)
{
    op->lx.store = op->store;
    op->lx.now = op->now;
    op->lx.actor = op->who != NULL ? op->who->name : "system";
    op->lx.policies = op->env != NULL ? op->env->policies : NULL;
    op->lx.err = op->err;
    /* Kept entities serve read snapshots only (ledger/entities.h). */
    op->lx.cache = op->env != NULL && op->store != NULL && store_readonly(op->store)
                       ? op->env->entities
                       : NULL;
    op->lx.cache_gen = 0;
}

/* An answer may never hide a storage failure met on the way to it (an
 * access check that could not read its rows returns false with the error
 * left in op->err): that failure is the answer. */
static bool
storage_failed(const struct op *op)
{
    return op->err->status == ENG_ESTORE || op->err->status == ENG_ENOMEM;
}

int
op_invalid(struct op *op, const char *field, const char *fmt, ...)
{
    if (storage_failed(op)) {
        return op->err->status;
    }
    va_list ap;
    char msg[ENG_MSG_MAX];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    eng_error_code(op->err, ENG_EINVAL, "invalid_request", "%s", msg);
    eng_error_field(op->err, field);
    return ENG_EINVAL;
}

int
op_not_found(struct op *op, const char *what)
{
    if (storage_failed(op)) {
        return op->err->status;
    }
    return eng_error_code(op->err, ENG_ENOTFOUND, "not_found", "%s not found", what);
}

int
op_forbidden(struct op *op, const char *what)
{
    if (storage_failed(op)) {
        return op->err->status;
    }
    return eng_error_code(op->err, ENG_EFORBIDDEN, "forbidden", "your role may not %s", what);
}

int
text_quote_len(const char *s, int max_bytes)
{
    int n = 0;
    while (n < max_bytes && s[n] != '\0') {
        n++;
    }
    if (s[n] == '\0') {
        return n;
    }
    /* Cut: step back over continuation bytes to a character's start. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
        n--;
    }
    return n;
}

int
args_only(struct op *op, json_t *args, const char *const allowed[])
{
    if (args == NULL) {
        return 0;
    }
    if (!json_is_object(args)) {
        return op_invalid(op, "", "the request body must be a JSON object");
    }
    const char *key;
    json_t *value;
    json_object_foreach(args, key, value) {
        bool known = false;
        for (int i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            return op_invalid(op, key, "unknown field '%.*s'", text_quote_len(key, 60), key);
        }
    }
    return 0;
}

int
args_string(struct op *op, json_t *args, const char *key, bool required, size_t max_len,
            const char **out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return op_invalid(op, key, "'%s' is required", key);
        }
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v)) {
        return op_invalid(op, key, "'%s' must be a string", key);
    }
    if (json_string_length(v) > max_len) {
        return op_invalid(op, key, "'%s' is longer than %zu bytes", key, max_len);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return op_invalid(op, key, "'%s' contains a NUL character", key);
    }
    if (required && json_string_length(v) == 0) {
        return op_invalid(op, key, "'%s' must not be empty", key);
    }
    *out = json_string_value(v);
    return 0;
}

int
args_bool(struct op *op, json_t *args, const char *key, bool dflt, bool *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) {
        return op_invalid(op, key, "'%s' must be true or false", key);
    }
    *out = json_is_true(v);
    return 0;
}

int
args_amount(struct op *op, json_t *args, const char *key, bool required, int64_t *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return op_invalid(op, key, "'%s' is required", key);
        }
        return 0;
    }
    struct eng_error e = {0};
    if (amount_from_json(v, out, &e) != 0) {
        return op_invalid(op, key, "'%s': %s", key, e.msg);
    }
    return 0;
}

int
args_id(struct op *op, json_t *args, const char *key, const char *prefix, bool required,
        int64_t *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return op_invalid(op, key, "'%s' is required", key);
        }
        *out = 0;
        return 0;
    }
    if (!json_is_string(v) || id_parse(prefix, json_string_value(v), out) != 0) {
        return op_invalid(op, key, "'%s' is not a valid id", key);
    }
    return 0;
}

int
args_time(struct op *op, json_t *args, const char *key, bool required, int64_t *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return op_invalid(op, key, "'%s' is required", key);
        }
        return 0;
    }
    struct eng_error e = {0};
    if (!json_is_string(v) || time_parse_rfc3339(json_string_value(v), out, &e) != 0) {
        /* A fraction of a second parses but is refused on its own terms:
         * times are whole seconds (a ".000" fraction is accepted). */
        if (strstr(e.msg, "sub-second") != NULL) {
            return op_invalid(op, key, "'%s' has a fraction of a second; times are whole "
                              "seconds (e.g. 2026-01-15T10:00:00Z)", key);
        }
        return op_invalid(op, key, "'%s' must be an RFC 3339 time such as "
                          "2026-01-15T10:00:00Z", key);
    }
    return 0;
}

int
args_range_check(struct op *op, int64_t from, int64_t to)
{
    if (from != INT64_MIN && to != INT64_MAX && to < from) {
        return op_invalid(op, "to", "'to' is before 'from'");
    }
    return 0;
}

int
args_bound(struct op *op, json_t *args, const char *key, const char *zone, bool upper,
           int64_t *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    struct civil_date d;
    if (json_is_string(v) && date_parse(json_string_value(v), &d, NULL) == 0) {
        if (upper && d.year == 9999 && d.month == 12 && d.day == 31) {
            *out = INT64_MAX; /* to the last day there is: no upper bound */
            return 0;
        }
        if (tz_local_midnight(zone, upper ? date_add_days(d, 1) : d, out, op->err) != 0) {
            eng_error_field(op->err, key);
            return op->err->status;
        }
        return 0;
    }
    if (args_time(op, args, key, false, out) != 0) {
        return op_invalid(op, key, "'%s' must be a date YYYY-MM-DD or an RFC 3339 time", key);
    }
    return 0;
}

/* A building's zone into zone (TIME_ZONE_NAME_MAX bytes); UTC for an
 * unknown building. */
static int
building_zone(struct op *op, int64_t building_id, char *zone)
{
    snprintf(zone, TIME_ZONE_NAME_MAX, "UTC");
    struct building_row b;
    bool found = false;
    if (store_building_get(op->store, building_id, &b, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return 0;
    }
    size_t len = strlen(b.timezone);
    if (len >= TIME_ZONE_NAME_MAX) {
        return eng_error_set(op->err, ENG_ESTORE, "building %lld: time zone too long",
                             (long long)building_id);
    }
    memcpy(zone, b.timezone, len + 1);
    return 0;
}

/* A bound given as a date (an upper 9999-12-31 excepted: no bound). */
static bool
bound_date(json_t *args, const char *key, bool upper, struct civil_date *d)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (!json_is_string(v) || date_parse(json_string_value(v), d, NULL) != 0) {
        return false;
    }
    return !(upper && d->year == 9999 && d->month == 12 && d->day == 31);
}

/* Local midnights lie between UTC-12 and UTC+14 of the same date's UTC
 * midnight; an hour more each way. */
#define ZONE_EARLIEST_S (15 * 3600)
#define ZONE_LATEST_S (13 * 3600)

int
op_zoned_bounds(struct op *op, json_t *args, int64_t building_id, int64_t tenant_id,
                struct zoned_bound *zb)
{
    memset(zb, 0, sizeof *zb);
    zb->from = INT64_MIN; /* no bound unless given */
    zb->to = INT64_MAX;
    char zone[TIME_ZONE_NAME_MAX] = "UTC";
    int count = 0;
    if (building_id != 0) {
        if (building_zone(op, building_id, zone) != 0) {
            return op->err->status;
        }
        count = 1;
    } else {
        /* The zones of the buildings concerned: the tenant's (a tenant
         * principal's own, or tenant_id's), or the portfolio's. */
        int64_t tid = op->who->tenant_id != 0 ? op->who->tenant_id : tenant_id;
        if (store_buildings_zone(op->store, tid, zone, &count, op->err) != 0) {
            return op->err->status;
        }
        if (count == 0) {
            snprintf(zone, sizeof zone, "UTC");
        }
    }
    if (count <= 1) {
        if (args_bound(op, args, "from", zone, false, &zb->from) ||
            args_bound(op, args, "to", zone, true, &zb->to)) {
            return op->err->status;
        }
        return args_range_check(op, zb->from, zb->to);
    }
    zb->from_date = bound_date(args, "from", false, &zb->from_d);
    zb->to_date = bound_date(args, "to", true, &zb->to_d);
    zb->to_d = date_add_days(zb->to_d, 1);
    zb->per_row = zb->from_date || zb->to_date;
    /* Read in UTC first: the instants given, and the dates' UTC midnights. */
    if (args_bound(op, args, "from", "UTC", false, &zb->from) ||
        args_bound(op, args, "to", "UTC", true, &zb->to) ||
        args_range_check(op, zb->from, zb->to)) {
        return op->err->status;
    }
    if (zb->from_date) {
        zb->from -= ZONE_EARLIEST_S;
    }
    if (zb->to_date) {
        zb->to += ZONE_LATEST_S;
    }
    return 0;
}

bool
op_zoned_cached(const struct zoned_bound *zb, int64_t key, int64_t *from, int64_t *to)
{
    *from = zb->from;
    *to = zb->to;
    if (!zb->per_row) {
        return true;
    }
    for (int i = 0; i < zb->seen && i < ZONED_SEEN_MAX; i++) {
        if (zb->cache[i].key == key) {
            *from = zb->cache[i].from;
            *to = zb->cache[i].to;
            return true;
        }
    }
    return false;
}

int
op_zoned_put(struct op *op, struct zoned_bound *zb, int64_t key, const char *zone,
             int64_t *from, int64_t *to)
{
    *from = zb->from;
    *to = zb->to;
    if ((zb->from_date && tz_local_midnight(zone, zb->from_d, from, op->err) != 0) ||
        (zb->to_date && tz_local_midnight(zone, zb->to_d, to, op->err) != 0)) {
        return op->err->status;
    }
    int slot = zb->seen % ZONED_SEEN_MAX;
    zb->cache[slot].key = key;
    zb->cache[slot].from = *from;
    zb->cache[slot].to = *to;
    zb->seen++;
    return 0;
}

int
op_zoned_row(struct op *op, struct zoned_bound *zb, int64_t building_id, int64_t *from,
             int64_t *to)
{
    if (op_zoned_cached(zb, building_id, from, to)) {
        return 0;
    }
    char zone[TIME_ZONE_NAME_MAX];
    if (building_zone(op, building_id, zone) != 0) {
        return op->err->status;
    }
    return op_zoned_put(op, zb, building_id, zone, from, to);
}

int
args_int(struct op *op, json_t *args, const char *key, int64_t lo, int64_t hi, int64_t dflt,
         int64_t *out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return op_invalid(op, key, "'%s' must be an integer from %lld to %lld", key,
                          (long long)lo, (long long)hi);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int
args_string_array(struct op *op, json_t *args, const char *key, size_t max, json_t **out)
{
    json_t *v = args ? json_object_get(args, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = json_array();
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > max) {
        return op_invalid(op, key, "'%s' must be an array of at most %zu strings", key, max);
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item) || json_string_length(item) == 0 ||
            json_string_length(item) > 200) {
            return op_invalid(op, key, "'%s' must hold non-empty strings of at most 200 bytes",
                              key);
        }
    }
    *out = json_incref(v);
    return 0;
}

int
args_page(struct op *op, json_t *args, struct page *page)
{
    int64_t limit = 0;
    int max = op->env->list_rows_max;
    json_t *v = args != NULL ? json_object_get(args, "limit") : NULL;
    /* More rows than a page may hold is the limit list_rows_max reached
     * (PRODUCT.md §9: limit_exceeded, naming it), not a malformed value. */
    if (json_is_integer(v) && json_integer_value(v) > max) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "'limit' asks for more than the limit of %d rows a page; page on with"
                       " next_cursor",
                       max);
        eng_error_field(op->err, "list_rows_max");
        return ENG_ELIMIT;
    }
    if (args_int(op, args, "limit", 1, max, 100, &limit) != 0) {
        return ENG_EINVAL;
    }
    page->limit = (int)limit;
    return args_cursor(op, args, &page->after);
}

int
args_cursor(struct op *op, json_t *args, int64_t *after)
{
    const char *cursor = NULL;
    *after = 0;
    if (args_string(op, args, "cursor", false, 40, &cursor) != 0) {
        return ENG_EINVAL;
    }
    if (cursor != NULL && id_parse("c", cursor, after) != 0) {
        return op_invalid(op, "cursor", "'cursor' is not a cursor this server issued");
    }
    return 0;
}

json_t *
page_result(json_t *rows, int64_t last_id, bool more)
{
    json_t *cursor = json_null();
    if (more) {
        cursor = id_json("c", last_id);
    }
    return json_pack("{s:o, s:o}", "data", rows, "next_cursor", cursor);
}

void
pager_init(struct pager *pg, const struct page *page)
{
    memset(pg, 0, sizeof *pg);
    pg->page = page;
    pg->rows = json_array();
}

int
pager_add(struct pager *pg, int64_t id, json_t *row)
{
    if (++pg->fetched > pg->page->limit) {
        json_decref(row);
        pg->more = true;
        return PAGER_FULL;
    }
    pg->last = id;
    if (row != NULL && pg->rows != NULL && json_array_append_new(pg->rows, row) != 0) {
        json_decref(pg->rows);
        pg->rows = NULL; /* out of memory: reported by pager_finish */
    }
    return 0;
}

int
pager_finish(struct pager *pg, struct op *op, int rc, json_t **out)
{
    if (rc != 0 && rc != PAGER_FULL) {
        json_decref(pg->rows);
        pg->rows = NULL;
        return rc;
    }
    if (pg->rows == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = page_result(pg->rows, pg->last, pg->more);
    pg->rows = NULL;
    if (*out == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

