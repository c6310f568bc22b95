/* ops_credits.c - allocations, lots, wallets, adjustments and the ledger. */
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "ledger.h"
#include "ops.h"

/* ---------- rendering ---------- */

static json_t *
amount_or_unlimited(bool unlimited, int64_t milli)
{
    return unlimited ? json_string("unlimited") : amount_to_json(milli);
}

static const char *
lot_status(int64_t now, int64_t from, int64_t until, bool closed)
{
    if (closed || until <= now) {
        return "expired";
    }
    return from > now ? "upcoming" : "active";
}

/* id, allocation_id, line_idx, period_n, user_id, kind, unit, valid_from,
 * valid_until, granted, unlimited, balance, closed, scope */
#define LOT_COLS                                                                             \
    "l.id, l.allocation_id, l.line_idx, l.period_n, l.user_id, l.kind, l.unit, l.valid_from,"  \
    " l.valid_until, l.granted, l.unlimited, l.balance, l.closed, al.scope"

static json_t *
lot_row(struct op *op, sqlite3_stmt *st)
{
    bool unlimited = sqlite3_column_int(st, 10) != 0;
    int64_t balance = sqlite3_column_int64(st, 11);
    json_t *lot = json_pack(
        "{s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:I}", "id",
        id_json("lot", sqlite3_column_int64(st, 0)), "allocation_id",
        id_json("alc", sqlite3_column_int64(st, 1)), "unit",
        (const char *)sqlite3_column_text(st, 6), "scope",
        (const char *)sqlite3_column_text(st, 13), "kind", (const char *)sqlite3_column_text(st, 5),
        "granted", amount_or_unlimited(unlimited, sqlite3_column_int64(st, 9)), "balance",
        amount_or_unlimited(unlimited, balance), "valid_from",
        json_time(sqlite3_column_int64(st, 7)), "valid_until",
        json_time(sqlite3_column_int64(st, 8)), "status",
        lot_status(op->now, sqlite3_column_int64(st, 7), sqlite3_column_int64(st, 8),
                   sqlite3_column_int(st, 12) != 0),
        "period", (json_int_t)sqlite3_column_int64(st, 3));
    if (unlimited) {
        json_object_set_new(lot, "used", amount_to_json(-balance));
    }
    int64_t owner = sqlite3_column_int64(st, 4);
    json_object_set_new(lot, "user_id", owner != 0 ? id_json("usr", owner) : json_null());
    return lot;
}

static json_t *
alloc_json(struct op *op, const struct alloc *a)
{
    json_t *lines = json_array();
    for (int i = 0; i < a->line_count; i++) {
        const struct alloc_line *l = &a->lines[i];
        json_t *line = json_pack("{s:s, s:o}", "scope", l->scope, "amount",
                                 amount_or_unlimited(l->unlimited, l->amount));
        if (strcmp(l->scope, "resources") == 0) {
            json_object_set(line, "resource_ids", l->resource_ids);
        } else if (strcmp(l->scope, "tags") == 0) {
            json_object_set(line, "tags", l->tags);
        }
        json_array_append_new(lines, line);
    }
    char start[16], end[16];
    date_format(a->start_date, start, sizeof start);
    date_format(a->end_date, end, sizeof end);
    const char *status = a->end_at <= op->now ? "ended"
                         : a->start_at > op->now ? "scheduled"
                                                 : "active";
    json_t *cap = a->rollover_cap >= 0 ? amount_to_json(a->rollover_cap) : json_null();
    return json_pack("{s:o, s:o, s:O, s:b, s:s, s:s, s:o, s:O, s:s, s:{s:s, s:o, s:s, s:{s:b, "
                     "s:o}}, s:s, s:o}",
                     "id", id_json("alc", a->id), "tenant_id", id_json("ten", a->tenant_id),
                     "building_ids", a->building_ids, "cross_building", a->cross_building,
                     "description", a->description, "unit", a->unit, "lines", lines,
                     "targeting", a->targeting, "pool", a->pool, "schedule", "start", start,
                     "end", a->has_end ? json_string(end) : json_null(), "recurrence",
                     period_kind_name(a->recurrence), "rollover", "enabled", a->rollover, "cap",
                     cap, "status", status, "expires_at",
                     json_time(a->end_at));
}

/* ---------- allocation input ---------- */

static int
check_lines(struct op *op, json_t *lines, bool hours)
{
    static const char *const keys[] = {"scope", "amount", "resource_ids", "tags", NULL};
    if (!json_is_array(lines) || json_array_size(lines) == 0 ||
        json_array_size(lines) > ALLOC_LINES_MAX) {
        return op_invalid(op, "lines", "'lines' must hold 1 to %d lines", ALLOC_LINES_MAX);
    }
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        const char *scope;
        json_t *list = NULL;
        if (args_only(op, line, keys) || args_string(op, line, "scope", true, 12, &scope)) {
            return op->err->status;
        }
        json_t *amount = json_object_get(line, "amount");
        if (json_is_string(amount) && strcmp(json_string_value(amount), "unlimited") == 0) {
            if (!hours) {
                return op_invalid(op, "lines.amount", "coins are never unlimited");
            }
        } else {
            int64_t milli = 0;
            if (args_amount(op, line, "amount", true, &milli) != 0) {
                eng_error_field(op->err, "lines.amount");
                return ENG_EINVAL;
            }
            if (milli <= 0) {
                return op_invalid(op, "lines.amount", "'amount' must be positive");
            }
        }
        bool by_res = strcmp(scope, "resources") == 0, by_tag = strcmp(scope, "tags") == 0;
        if (!by_res && !by_tag && strcmp(scope, "all") != 0) {
            return op_invalid(op, "lines.scope", "'scope' must be all, resources or tags");
        }
        const char *field = by_res ? "resource_ids" : "tags";
        if (args_string_array(op, line, field, 200, &list) != 0) {
            return ENG_EINVAL;
        }
        size_t n = json_array_size(list);
        json_t *item;
        size_t k;
        json_array_foreach(list, k, item) {
            int64_t rid;
            int rc;
            if (by_res && (id_parse("res", json_string_value(item), &rid) != 0 ||
                           sql_scalar_int(op, "SELECT count(*) FROM resource WHERE id = ?", rid,
                                          0, &rc) == 0)) {
                json_decref(list);
                return op_invalid(op, "lines.resource_ids", "unknown resource '%.40s'",
                                  json_string_value(item));
            }
        }
        json_decref(list);
        if ((by_res || by_tag) && n == 0) {
            return op_invalid(op, "lines", "a '%s' line needs a non-empty '%s'", scope, field);
        }
    }
    return 0;
}

static int
check_targeting(struct op *op, json_t *t, int64_t tenant_id)
{
    static const char *const keys[] = {"type", "user_ids", "roles", NULL};
    const char *type;
    json_t *list = NULL;
    if (t == NULL) {
        return 0;
    }
    if (args_only(op, t, keys) || args_string(op, t, "type", true, 10, &type)) {
        eng_error_field(op->err, "targeting");
        return ENG_EINVAL;
    }
    bool users = strcmp(type, "users") == 0, roles = strcmp(type, "roles") == 0;
    if (!users && !roles && strcmp(type, "all") != 0) {
        return op_invalid(op, "targeting.type", "targeting 'type' must be all, users or roles");
    }
    if (!users && !roles) {
        return 0;
    }
    const char *field = users ? "user_ids" : "roles";
    if (args_string_array(op, t, field, 1000, &list) != 0) {
        return ENG_EINVAL;
    }
    int rc = json_array_size(list) == 0
                 ? op_invalid(op, "targeting", "targeting by %s needs a non-empty '%s'", type,
                              field)
                 : 0;
    size_t k;
    json_t *item;
    json_array_foreach(list, k, item) {
        int64_t uid;
        int src;
        if (rc == 0 && users &&
            (id_parse("usr", json_string_value(item), &uid) != 0 ||
             sql_scalar_int(op, "SELECT tenant_id FROM user WHERE id = ?", uid, 0, &src) !=
                 tenant_id)) {
            rc = op_invalid(op, "targeting.user_ids", "'%.40s' is not a user of this tenant",
                            json_string_value(item));
        }
    }
    json_decref(list);
    return rc;
}

struct sched {
    struct civil_date start, end;
    bool has_end, rollover;
    enum period_kind recurrence;
    int64_t cap; /* -1 none */
};

static int
check_schedule(struct op *op, json_t *s, struct sched *out)
{
    static const char *const keys[] = {"start", "end", "recurrence", "rollover", NULL};
    static const char *const rkeys[] = {"enabled", "cap", NULL};
    const char *start, *end, *rec;
    struct eng_error e = {0};
    if (!json_is_object(s)) {
        return op_invalid(op, "schedule", "'schedule' is required");
    }
    if (args_only(op, s, keys) || args_string(op, s, "start", true, 10, &start) ||
        args_string(op, s, "end", false, 10, &end) ||
        args_string(op, s, "recurrence", false, 12, &rec)) {
        return op->err->status;
    }
    if (date_parse(start, &out->start, &e) != 0) {
        return op_invalid(op, "schedule.start", "'start' must be a date YYYY-MM-DD");
    }
    out->has_end = end != NULL;
    if (end != NULL && date_parse(end, &out->end, &e) != 0) {
        return op_invalid(op, "schedule.end", "'end' must be a date YYYY-MM-DD or null");
    }
    if (end != NULL && date_cmp(out->end, out->start) < 0) {
        return op_invalid(op, "schedule.end", "'end' is before 'start'");
    }
    if (period_kind_parse(rec ? rec : "none", &out->recurrence, &e) != 0) {
        return op_invalid(op, "schedule.recurrence",
                          "'recurrence' must be none, weekly, monthly, quarterly or yearly");
    }
    json_t *r = json_object_get(s, "rollover");
    out->rollover = false;
    out->cap = -1;
    if (r != NULL && !json_is_null(r)) {
        if (args_only(op, r, rkeys) || args_bool(op, r, "enabled", false, &out->rollover) ||
            args_amount(op, r, "cap", false, &out->cap)) {
            eng_error_field(op->err, "schedule.rollover");
            return ENG_EINVAL;
        }
        if (json_object_get(r, "cap") == NULL || json_is_null(json_object_get(r, "cap"))) {
            out->cap = -1;
        } else if (out->cap < 0) {
            return op_invalid(op, "schedule.rollover.cap", "the rollover cap cannot be negative");
        }
        if (out->rollover && out->recurrence == PERIOD_NONE) {
            return op_invalid(op, "schedule.rollover", "rollover needs a recurring schedule");
        }
    }
    return 0;
}

static int
insert_allocation(struct op *op, json_t *args, const struct sched *s, const char *zone,
                  int64_t tenant_id, int64_t *id)
{
    int64_t start_at, end_at = TIME_NEVER;
    if (tz_local_midnight(zone, s->start, &start_at, op->err) != 0 ||
        (s->has_end &&
         tz_local_midnight(zone, date_add_days(s->end, 1), &end_at, op->err) != 0)) {
        return op->err->status;
    }
    json_t *targeting = json_object_get(args, "targeting");
    json_t *all = json_pack("{s:s}", "type", "all");
    char *targeting_text = json_to_text(targeting ? targeting : all);
    json_decref(all);
    const char *pool = json_string_value(json_object_get(args, "pool"));
    const char *desc = json_string_value(json_object_get(args, "description"));
    char start[16], end[16];
    date_format(s->start, start, sizeof start);
    date_format(s->end, end, sizeof end);
    sqlite3_stmt *st = store_prep(
        op->store,
        "INSERT INTO allocation (tenant_id, description, unit, cross_building, targeting, pool,"
        " recurrence, zone, start_date, end_date, start_at, end_at, rollover, rollover_cap,"
        " next_open_n, next_open_at, created_at, created_by)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?)",
        op->err);
    if (st == NULL) {
        free(targeting_text);
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_text(st, 2, desc ? desc : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(args, "unit")), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, json_is_true(json_object_get(args, "cross_building")));
    sqlite3_bind_text(st, 5, targeting_text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, pool ? pool : "shared", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, period_kind_name(s->recurrence), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, zone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, start, -1, SQLITE_TRANSIENT);
    if (s->has_end) {
        sqlite3_bind_text(st, 10, end, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 12, end_at);
    }
    sqlite3_bind_int64(st, 11, start_at);
    sqlite3_bind_int(st, 13, s->rollover);
    if (s->cap >= 0) {
        sqlite3_bind_int64(st, 14, s->cap);
    }
    sqlite3_bind_int64(st, 15, start_at);
    sqlite3_bind_int64(st, 16, op->now);
    sqlite3_bind_text(st, 17, op->who->name, -1, SQLITE_TRANSIENT);
    free(targeting_text);
    if (sql_step_done(op, st, "allocation insert") != 0) {
        return ENG_ESTORE;
    }
    *id = sqlite3_last_insert_rowid(op->store->db);
    return 0;
}

static int
insert_children(struct op *op, int64_t id, json_t *bids, json_t *lines)
{
    size_t i;
    json_t *item;
    json_array_foreach(bids, i, item) {
        int64_t bid = 0;
        (void)id_parse("bld", json_string_value(item), &bid);
        sqlite3_stmt *st = store_prep(op->store,
                                      "INSERT OR IGNORE INTO allocation_building (allocation_id,"
                                      " building_id, pos) VALUES (?, ?, ?)",
                                      op->err);
        if (st == NULL) {
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, bid);
        sqlite3_bind_int64(st, 3, (int64_t)i);
        if (sql_step_done(op, st, "allocation building") != 0) {
            return ENG_ESTORE;
        }
    }
    json_array_foreach(lines, i, item) {
        json_t *amount = json_object_get(item, "amount");
        int64_t milli = 0;
        bool unlimited = json_is_string(amount);
        if (!unlimited) {
            (void)amount_from_json(amount, &milli, NULL);
        }
        json_t *rids = json_object_get(item, "resource_ids");
        json_t *tags = json_object_get(item, "tags");
        char *rtext = json_to_text(rids ? rids : json_array());
        char *ttext = json_to_text(tags ? tags : json_array());
        sqlite3_stmt *st = store_prep(op->store,
                                      "INSERT INTO allocation_line (allocation_id, idx, scope,"
                                      " resource_ids, tags, amount) VALUES (?,?,?,?,?,?)",
                                      op->err);
        if (st == NULL) {
            free(rtext);
            free(ttext);
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, json_string_value(json_object_get(item, "scope")), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rtext, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, ttext, -1, SQLITE_TRANSIENT);
        if (!unlimited) {
            sqlite3_bind_int64(st, 6, milli);
        }
        free(rtext);
        free(ttext);
        if (sql_step_done(op, st, "allocation line") != 0) {
            return ENG_ESTORE;
        }
    }
    return 0;
}

static int
op_allocation_get_id(struct op *op, int64_t id, bool with_lots, json_t **out);

static int
op_allocation_create(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"tenant_id", "building_ids", "cross_building",
                                       "description", "unit", "lines", "targeting", "pool",
                                       "schedule", NULL};
    int64_t tid;
    const char *s, *unit, *pool;
    bool cross;
    json_t *bids = NULL;
    struct sched sch;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "tenant_id", "ten", true, &tid) ||
        args_string(op, args, "description", false, 500, &s) ||
        args_bool(op, args, "cross_building", false, &cross) ||
        args_string(op, args, "unit", true, 10, &unit) ||
        args_string(op, args, "pool", false, 10, &pool)) {
        return op->err->status;
    }
    int rc;
    if (sql_scalar_int(op, "SELECT count(*) FROM tenant WHERE id = ?", tid, 0, &rc) == 0) {
        return rc != 0 ? rc : op_invalid(op, "tenant_id", "unknown tenant");
    }
    bool hours = strcmp(unit, "hour") == 0;
    if (!hours && strcmp(unit, "coin") != 0) {
        return op_invalid(op, "unit", "'unit' must be hour or coin");
    }
    if (pool != NULL && strcmp(pool, "shared") != 0 && strcmp(pool, "per_user") != 0) {
        return op_invalid(op, "pool", "'pool' must be shared or per_user");
    }
    if (check_lines(op, json_object_get(args, "lines"), hours) ||
        check_targeting(op, json_object_get(args, "targeting"), tid) ||
        check_schedule(op, json_object_get(args, "schedule"), &sch) ||
        args_string_array(op, args, "building_ids", 100, &bids)) {
        return op->err->status;
    }
    char zone[TIME_ZONE_NAME_MAX] = "";
    size_t i;
    json_t *item;
    rc = json_array_size(bids) == 0
             ? op_invalid(op, "building_ids", "'building_ids' must name at least one building")
             : 0;
    json_array_foreach(bids, i, item) {
        int64_t bid;
        if (rc != 0) {
            break;
        }
        sqlite3_stmt *st = store_prep(op->store, "SELECT timezone FROM building WHERE id = ?",
                                      op->err);
        if (st == NULL || id_parse("bld", json_string_value(item), &bid) != 0) {
            rc = st == NULL ? ENG_ESTORE
                            : op_invalid(op, "building_ids", "unknown building '%.40s'",
                                         json_string_value(item));
            break;
        }
        sqlite3_bind_int64(st, 1, bid);
        if (sqlite3_step(st) != SQLITE_ROW || !op_sees_building(op, bid)) {
            rc = op_invalid(op, "building_ids", "unknown building '%.40s'",
                            json_string_value(item));
        } else if (zone[0] == '\0') {
            snprintf(zone, sizeof zone, "%s", (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_reset(st);
        /* Credits are granted where the tenant leases space (a tenant with
         * no building listed is not limited). */
        int lrc;
        if (rc == 0 &&
            sql_scalar_int(op, "SELECT count(*) FROM tenant_building WHERE tenant_id = ?", tid, 0,
                           &lrc) > 0 &&
            !op_tenant_leases(op, tid, bid)) {
            rc = op_invalid(op, "building_ids", "the tenant does not lease space in '%.40s'",
                            json_string_value(item));
        }
    }
    int64_t id = 0;
    if (rc == 0) {
        rc = insert_allocation(op, args, &sch, zone, tid, &id);
    }
    if (rc == 0) {
        rc = insert_children(op, id, bids, json_object_get(args, "lines"));
    }
    json_decref(bids);
    /* Open every period that has already begun (a backdated start is
     * processed period by period, expiring as it goes). */
    if (rc == 0) {
        rc = ledger_advance(&op->lx);
    }
    if (rc != 0) {
        return rc;
    }
    op->created = true;
    return op_allocation_get_id(op, id, true, out);
}

static int
lots_of(struct op *op, const char *sql, int64_t key, json_t *lots)
{
    sqlite3_stmt *st = store_prep(op->store, sql, op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, key);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(lots, lot_row(op, st));
    }
    sqlite3_reset(st);
    return 0;
}

static int
op_allocation_get_id(struct op *op, int64_t id, bool with_lots, json_t **out)
{
    struct alloc a;
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    if (!op_sees_tenant(op, a.tenant_id) || !op_sees_building(op, a.first_building)) {
        alloc_free(&a);
        return op_not_found(op, "allocation");
    }
    json_t *j = alloc_json(op, &a);
    alloc_free(&a);
    if (with_lots) {
        json_t *lots = json_array();
        if (lots_of(op,
                    "SELECT " LOT_COLS " FROM lot l JOIN allocation_line al ON"
                    " al.allocation_id = l.allocation_id AND al.idx = l.line_idx"
                    " WHERE l.allocation_id = ? ORDER BY l.valid_from, l.id",
                    id, lots) != 0) {
            json_decref(lots);
            json_decref(j);
            return ENG_ESTORE;
        }
        json_object_set_new(j, "lots", lots);
    }
    *out = j;
    return 0;
}

static int
op_allocation_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "alc", true, &id)) {
        return op->err->status;
    }
    return op_allocation_get_id(op, id, true, out);
}

static int
allocation_row(struct op *op, int64_t id, json_t **row)
{
    return op_allocation_get_id(op, id, false, row);
}

static int
op_allocation_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", "building_id", "status",
                                       NULL};
    int64_t tid, bid;
    const char *status;
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &tid) ||
        args_id(op, args, "building_id", "bld", false, &bid) ||
        args_string(op, args, "status", false, 20, &status) || args_page(op, args, &page)) {
        return op->err->status;
    }
    if (status != NULL && strcmp(status, "active") != 0 && strcmp(status, "ended") != 0 &&
        strcmp(status, "scheduled") != 0) {
        return op_invalid(op, "status", "'status' must be active, scheduled or ended");
    }
    if (!op_is_admin(op)) {
        tid = op->who->tenant_id;
    }
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT id FROM allocation a WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2) AND"
        " (?3 IS NULL OR EXISTS (SELECT 1 FROM allocation_building ab WHERE"
        " ab.allocation_id = a.id AND ab.building_id = ?3)) AND (?4 IS NULL OR"
        " (?4 = 'ended' AND end_at <= ?5) OR (?4 = 'scheduled' AND start_at > ?5) OR"
        " (?4 = 'active' AND start_at <= ?5 AND (end_at IS NULL OR end_at > ?5)))"
        " ORDER BY id LIMIT ?6",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, page.after);
    if (tid != 0) {
        sqlite3_bind_int64(st, 2, tid);
    }
    if (bid != 0) {
        sqlite3_bind_int64(st, 3, bid);
    }
    if (status != NULL) {
        sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 5, op->now);
    sqlite3_bind_int64(st, 6, page.limit + 1);
    return page_of_ids(op, st, &page, allocation_row, out);
}

/* Ends an allocation prospectively: periods that have begun keep their
 * credits and validity; lots of later periods (created early for bookings
 * ahead) are voided of what is left, and no further period opens. */
static int
op_allocation_end(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", "end", NULL};
    int64_t id;
    const char *end;
    struct civil_date d;
    struct eng_error e = {0};
    struct alloc a;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "id", "alc", true, &id) || args_string(op, args, "end", true, 10, &end)) {
        return op->err->status;
    }
    if (date_parse(end, &d, &e) != 0) {
        return op_invalid(op, "end", "'end' must be a date YYYY-MM-DD");
    }
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    int rc = 0;
    int64_t end_at = 0;
    if (!op_sees_tenant(op, a.tenant_id)) {
        rc = op_not_found(op, "allocation");
    } else if (date_cmp(d, a.start_date) < 0) {
        rc = op_invalid(op, "end", "'end' is before the allocation's start");
    } else {
        rc = tz_local_midnight(a.zone, date_add_days(d, 1), &end_at, op->err);
    }
    /* A period that has begun runs to its natural end. */
    int64_t n;
    bool in;
    if (rc == 0 && end_at < op->now) {
        end_at = op->now;
    }
    if (rc == 0 && alloc_period_at(&op->lx, &a, end_at - 1, &n, &in) == 0 && in) {
        int64_t from, until;
        bool exists;
        if (alloc_window(&op->lx, &a, n, &from, &until, &exists) == 0 && exists && from <= op->now &&
            until > end_at) {
            end_at = until;
        }
    }
    sqlite3_stmt *st = rc == 0 ? store_prep(op->store,
                                            "UPDATE allocation SET end_date = ?, end_at = ?"
                                            " WHERE id = ?",
                                            op->err)
                               : NULL;
    if (rc == 0 && st == NULL) {
        rc = ENG_ESTORE;
    }
    if (rc == 0) {
        sqlite3_bind_text(st, 1, end, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, end_at);
        sqlite3_bind_int64(st, 3, id);
        rc = sql_step_done(op, st, "allocation end");
    }
    alloc_free(&a);
    if (rc == 0) {
        rc = alloc_load(&op->lx, id, &a);
    }
    if (rc != 0) {
        return rc;
    }
    /* Future lots beyond the new end: void their balance, close them. */
    json_t *void_ids = json_array();
    st = store_prep(op->store,
                    "SELECT id, balance FROM lot WHERE allocation_id = ? AND closed = 0 AND"
                    " valid_from >= ? AND unlimited = 0",
                    op->err);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, end_at);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_array_append_new(void_ids, json_pack("[I, I]", sqlite3_column_int64(st, 0),
                                                      sqlite3_column_int64(st, 1)));
        }
        sqlite3_reset(st);
    }
    size_t i;
    json_t *pair;
    json_array_foreach(void_ids, i, pair) {
        int64_t lot = (int64_t)json_integer_value(json_array_get(pair, 0));
        int64_t bal = (int64_t)json_integer_value(json_array_get(pair, 1));
        if (rc == 0 && bal > 0) {
            rc = entry_post(&op->lx, lot, "void", -bal, op->now, 0, NULL, NULL, "allocation ended");
        }
        st = rc == 0 ? store_prep(op->store,
                                  "UPDATE lot SET closed = 1 WHERE id = ?2 AND ?1 = ?1",
                                  op->err)
                     : NULL;
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, op->now);
            sqlite3_bind_int64(st, 2, lot);
            rc = sql_step_done(op, st, "lot void");
        }
    }
    json_decref(void_ids);
    /* The next opening: none past the end. */
    int64_t from = 0, until = 0;
    bool exists = false;
    int64_t next_n = sql_scalar_int(op, "SELECT next_open_n FROM allocation WHERE id = ?", id, 0,
                                    &rc);
    if (rc == 0) {
        rc = alloc_window(&op->lx, &a, next_n, &from, &until, &exists);
    }
    st = rc == 0 ? store_prep(op->store, "UPDATE allocation SET next_open_at = ? WHERE id = ?",
                              op->err)
                 : NULL;
    if (st != NULL) {
        if (exists) {
            sqlite3_bind_int64(st, 1, from);
        }
        sqlite3_bind_int64(st, 2, id);
        rc = sql_step_done(op, st, "allocation cursor");
    }
    alloc_free(&a);
    return rc != 0 ? rc : op_allocation_get_id(op, id, true, out);
}

/* ---------- wallet ---------- */

#define EXPIRING_SOON_S (30 * 86400)

static json_t *
cand_json(struct op *op, const struct cand *c, const char *unit)
{
    json_t *lot = json_pack("{s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s}", "id",
                            c->lot_id ? id_json("lot", c->lot_id) : json_null(), "allocation_id",
                            id_json("alc", c->alloc_id), "unit", unit, "scope", c->scope, "kind",
                            c->rollover ? "rollover" : "period", "granted",
                            amount_or_unlimited(c->unlimited, c->granted), "balance",
                            amount_or_unlimited(c->unlimited, c->balance), "valid_from",
                            json_time(c->valid_from), "valid_until", json_time(c->valid_until),
                            "status", lot_status(op->now, c->valid_from, c->valid_until, false));
    json_object_set_new(lot, "user_id", c->owner ? id_json("usr", c->owner) : json_null());
    return lot;
}

static int
op_wallet(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"user_id", "unit", NULL};
    int64_t uid, tid = 0;
    const char *unit_filter;
    if (args_only(op, args, keys) || args_id(op, args, "user_id", "usr", true, &uid) ||
        args_string(op, args, "unit", false, 10, &unit_filter)) {
        return op->err->status;
    }
    if (unit_filter && strcmp(unit_filter, "hour") != 0 && strcmp(unit_filter, "coin") != 0) {
        return op_invalid(op, "unit", "'unit' must be hour or coin");
    }
    int rc;
    json_t *user = ctx_user(&op->lx, uid, &tid, &rc);
    if (user == NULL) {
        return rc;
    }
    if (!op_sees_user(op, tid, uid) || !op_sees_tenant(op, tid)) {
        json_decref(user);
        return op_not_found(op, "user");
    }
    json_t *tenant = ctx_tenant(&op->lx, tid, &rc);
    json_t *balances = json_array(), *lots = json_array(), *soon = json_array();
    static const char *const units[] = {"hour", "coin"};
    struct policy_set *pol = NULL;
    /* Targeting is decided by the policies of the tenant's first building;
     * the same allocation is judged the same way wherever it is spent. */
    int64_t bid = sql_scalar_int(op, "SELECT min(building_id) FROM tenant_building WHERE"
                                     " tenant_id = ?", tid, 0, &rc);
    if (rc == 0) {
        rc = policy_cache_get(op->env->policies, op->store, bid, &pol, NULL, op->err);
    }
    for (int u = 0; rc == 0 && u < 2; u++) {
        if (unit_filter != NULL && strcmp(unit_filter, units[u]) != 0) {
            continue;
        }
        struct cand_list list = {0};
        rc = ledger_candidates(&op->lx, pol, uid, tid, user, tenant, NULL, units[u], op->now, false,
                               true, &list);
        struct cand *cands = list.items;
        int count = list.count;
        int64_t avail = 0;
        bool unlimited = false;
        for (int i = 0; rc == 0 && i < count; i++) {
            unlimited |= cands[i].unlimited;
            avail += cands[i].unlimited ? 0 : cands[i].balance;
            json_array_append_new(lots, cand_json(op, &cands[i], units[u]));
            if (!cands[i].unlimited && cands[i].balance > 0 && cands[i].valid_until != TIME_NEVER &&
                cands[i].valid_until - op->now <= EXPIRING_SOON_S) {
                json_array_append_new(soon, cand_json(op, &cands[i], units[u]));
            }
        }
        /* Every unit asked for gets a balance, zero included, so clients
         * need not tell "no credits" from "no answer". */
        json_array_append_new(balances, json_pack("{s:s, s:o, s:b}", "unit", units[u],
                                                  "available", amount_to_json(avail),
                                                  "unlimited", unlimited));
        cand_list_free(&list);
    }
    /* Lots of periods still to come (created early for bookings ahead). */
    sqlite3_stmt *st = rc == 0 ? store_prep(op->store,
                                            "SELECT " LOT_COLS " FROM lot l JOIN allocation_line al"
                                            " ON al.allocation_id = l.allocation_id AND"
                                            " al.idx = l.line_idx WHERE l.tenant_id = ?1 AND"
                                            " l.valid_from > ?2 AND l.closed = 0 AND"
                                            " l.user_id IN (0, ?3) AND (?4 IS NULL OR l.unit = ?4)"
                                            " ORDER BY l.valid_from, l.id LIMIT 200",
                                            op->err)
                               : NULL;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_int64(st, 2, op->now);
        sqlite3_bind_int64(st, 3, uid);
        if (unit_filter) {
            sqlite3_bind_text(st, 4, unit_filter, -1, SQLITE_STATIC);
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_array_append_new(lots, lot_row(op, st));
        }
        sqlite3_reset(st);
    }
    policy_set_release(pol);
    json_decref(user);
    json_decref(tenant);
    if (rc != 0) {
        json_decref(balances);
        json_decref(lots);
        json_decref(soon);
        return rc;
    }
    *out = json_pack("{s:o, s:o, s:o, s:o}", "user_id", id_json("usr", uid), "balances",
                     balances, "lots", lots, "expiring_soon", soon);
    return 0;
}

/* ---------- adjustments ---------- */

static int
op_adjust(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"lot_id", "amount", "memo", NULL};
    int64_t lot, amount = 0;
    const char *memo;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "lot_id", "lot", true, &lot) ||
        args_amount(op, args, "amount", true, &amount) ||
        args_string(op, args, "memo", false, 500, &memo)) {
        return op->err->status;
    }
    if (amount == 0) {
        return op_invalid(op, "amount", "'amount' must not be zero");
    }
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT tenant_id, balance, unlimited, closed, valid_until"
                                  " FROM lot WHERE id = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, lot);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return op_not_found(op, "lot");
    }
    int64_t tid = sqlite3_column_int64(st, 0), bal = sqlite3_column_int64(st, 1);
    bool unlimited = sqlite3_column_int(st, 2) != 0;
    bool closed = sqlite3_column_int(st, 3) != 0 || sqlite3_column_int64(st, 4) <= op->now;
    sqlite3_reset(st);
    if (!op_sees_tenant(op, tid)) {
        return op_not_found(op, "lot");
    }
    if (unlimited) {
        return eng_error_code(op->err, ENG_ECONFLICT, "lot_unlimited",
                              "an unlimited lot cannot be adjusted");
    }
    if (closed) {
        return eng_error_code(op->err, ENG_ECONFLICT, "lot_expired",
                              "the lot has expired; adjust a current lot instead");
    }
    if (bal + amount < 0) {
        char b[32];
        amount_format(bal, b, sizeof b);
        return eng_error_code(op->err, ENG_ECONFLICT, "insufficient_credits",
                              "the adjustment would take the lot below zero (balance %s)", b);
    }
    if (entry_post(&op->lx, lot, "adjust", amount, op->now, 0, NULL, NULL, memo) != 0) {
        return op->err->status;
    }
    int64_t entry_id = sqlite3_last_insert_rowid(op->store->db);
    op->created = true;
    json_t *lots = json_array();
    int rc = lots_of(op,
                     "SELECT " LOT_COLS " FROM lot l JOIN allocation_line al ON"
                     " al.allocation_id = l.allocation_id AND al.idx = l.line_idx WHERE l.id = ?",
                     lot, lots);
    if (rc != 0) {
        json_decref(lots);
        return rc;
    }
    *out = json_pack("{s:o, s:o, s:o, s:O}", "id", id_json("ent", entry_id), "lot_id",
                     id_json("lot", lot), "amount", amount_to_json(amount), "lot",
                     json_array_get(lots, 0));
    json_decref(lots);
    return 0;
}

/* ---------- the ledger ---------- */

static json_t *
entry_row(struct op *op, sqlite3_stmt *st)
{
    (void)op;
    /* id, lot_id, allocation_id, tenant_id, kind, amount, unit, effective_at,
     * created_at, booking_id, policy_version, memo, actor, user_id */
    json_t *e = json_pack(
        "{s:o, s:o, s:o, s:o, s:s, s:o, s:s, s:o, s:o}", "id",
        id_json("ent", sqlite3_column_int64(st, 0)), "lot_id",
        id_json("lot", sqlite3_column_int64(st, 1)), "allocation_id",
        id_json("alc", sqlite3_column_int64(st, 2)), "tenant_id",
        id_json("ten", sqlite3_column_int64(st, 3)), "kind", (const char *)sqlite3_column_text(st, 4),
        "amount", amount_to_json(sqlite3_column_int64(st, 5)), "unit",
        (const char *)sqlite3_column_text(st, 6), "effective_at",
        json_time(sqlite3_column_int64(st, 7)), "created_at", json_time(sqlite3_column_int64(st, 8)));
    json_object_set_new(e, "booking_id", sqlite3_column_type(st, 9) == SQLITE_NULL
                                             ? json_null()
                                             : id_json("bkg", sqlite3_column_int64(st, 9)));
    for (int c = 10; c <= 12; c++) {
        static const char *const names[] = {"policy_version", "memo", "actor"};
        const char *v = (const char *)sqlite3_column_text(st, c);
        json_object_set_new(e, names[c - 10], v ? json_string(v) : json_null());
    }
    return e;
}

/* An admin limited to some buildings reads only their tenants' entries
 * (column 3: the tenant); everyone else is already filtered to theirs. */
static bool
entry_visible(struct op *op, sqlite3_stmt *st)
{
    return op_sees_tenant(op, sqlite3_column_int64(st, 3));
}

static int
op_entries(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", "lot_id", "booking_id",
                                       "kind", "from", "to", NULL};
    int64_t tid, lot, bkg, from = INT64_MIN, to = INT64_MAX;
    const char *kind;
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &tid) ||
        args_id(op, args, "lot_id", "lot", false, &lot) ||
        args_id(op, args, "booking_id", "bkg", false, &bkg) ||
        args_string(op, args, "kind", false, 20, &kind) || args_page(op, args, &page) ||
        args_bound(op, args, "from", "UTC", false, &from) ||
        args_bound(op, args, "to", "UTC", true, &to)) {
        return op->err->status;
    }
    if (op->who->role == ROLE_TENANT_USER) {
        return op_forbidden(op, "read the ledger");
    }
    if (!op_is_admin(op)) {
        tid = op->who->tenant_id;
    } else if (tid != 0 && !op_sees_tenant(op, tid)) {
        return op_not_found(op, "tenant");
    }
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT e.id, e.lot_id, l.allocation_id, e.tenant_id, e.kind, e.amount, e.unit,"
        " e.effective_at, e.created_at, e.booking_id, e.policy_version, e.memo, e.actor"
        " FROM entry e JOIN lot l ON l.id = e.lot_id WHERE e.id > ?1 AND"
        " (?2 IS NULL OR e.tenant_id = ?2) AND (?3 IS NULL OR e.lot_id = ?3) AND"
        " (?4 IS NULL OR e.booking_id = ?4) AND (?5 IS NULL OR e.kind = ?5) AND"
        " e.effective_at >= ?6 AND e.effective_at < ?7 ORDER BY e.id LIMIT ?8",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, page.after);
    if (tid) {
        sqlite3_bind_int64(st, 2, tid);
    }
    if (lot) {
        sqlite3_bind_int64(st, 3, lot);
    }
    if (bkg) {
        sqlite3_bind_int64(st, 4, bkg);
    }
    if (kind) {
        sqlite3_bind_text(st, 5, kind, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 6, from);
    sqlite3_bind_int64(st, 7, to);
    sqlite3_bind_int64(st, 8, page.limit + 1);
    return page_of_rows(op, st, &page, entry_row, entry_visible, out);
}

const struct op_def ops_credits[] = {
    {"allocations.create", op_allocation_create, true},
    {"allocations.get", op_allocation_get, false},
    {"allocations.list", op_allocation_list, false},
    {"allocations.end", op_allocation_end, true},
    {"wallet", op_wallet, false},
    {"adjustments.create", op_adjust, true},
    {"entries.list", op_entries, false},
    {NULL, NULL, false},
};
