/* ops_credits.c - allocations, lots, wallets, adjustments and the ledger. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_edit.h"
#include "allocations.h"
#include "amount.h"
#include "entries.h"
#include "ledger.h"
#include "lots.h"
#include "ops.h"
#include "portfolio.h"

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

static json_t *
lot_json(struct op *op, const struct lot_row *l)
{
    json_t *lot = json_pack(
        "{s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:I}", "id", id_json("lot", l->id),
        "allocation_id", id_json("alc", l->allocation_id), "unit", l->unit, "scope", l->scope,
        "kind", l->kind, "granted", amount_or_unlimited(l->unlimited, l->granted), "balance",
        amount_or_unlimited(l->unlimited, l->balance), "valid_from", json_time(l->valid_from),
        "valid_until", json_time(l->valid_until), "status",
        lot_status(op->now, l->valid_from, l->valid_until, l->closed), "period",
        (json_int_t)l->period_n);
    if (lot == NULL) {
        return NULL;
    }
    if (l->unlimited) {
        json_object_set_new(lot, "used", amount_to_json(-l->balance));
    }
    json_object_set_new(lot, "user_id", l->user_id != 0 ? id_json("usr", l->user_id) : json_null());
    return lot;
}

/* Appends each lot to a JSON array (ud). */
static int
lot_append(void *ud, const struct lot_row *l)
{
    struct op *op = ((void **)ud)[0];
    json_t *lots = ((void **)ud)[1];
    json_t *j = lot_json(op, l);
    return j == NULL || json_array_append_new(lots, j) != 0 ? ENG_ENOMEM : 0;
}

/* Appends the lots of filter f to `lots`; 0, ENG_ESTORE or ENG_ENOMEM. */
static int
lots_of(struct op *op, const struct lot_filter *f, json_t *lots)
{
    void *ud[2] = {op, lots};
    int rc = store_lots_each(op->store, f, lot_append, ud, op->err);
    return rc == ENG_ENOMEM ? eng_error_set(op->err, ENG_ENOMEM, "out of memory") : rc;
}

static json_t *
alloc_json(struct op *op, const struct alloc *a)
{
    json_t *lines = json_array();
    for (int i = 0; i < a->line_count; i++) {
        const struct alloc_line *l = &a->lines[i];
        json_t *line = json_pack("{s:s, s:o}", "scope", l->scope, "amount",
                                 amount_or_unlimited(l->unlimited, l->amount));
        int rc = line == NULL ? -1 : 0;
        if (rc == 0 && strcmp(l->scope, "resources") == 0) {
            rc = json_object_set(line, "resource_ids", l->resource_ids);
        } else if (rc == 0 && strcmp(l->scope, "tags") == 0) {
            rc = json_object_set(line, "tags", l->tags);
        }
        if (rc != 0) {
            json_decref(line);
        }
        /* append_new releases line when it fails.  Out of memory: the
         * caller reports it (NULL). */
        if (rc != 0 || json_array_append_new(lines, line) != 0) {
            json_decref(lines);
            return NULL;
        }
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

/* Each resource a line names lies in one of the allocation's buildings
 * (`bids`, "bld_N" ids): a lot of those buildings could never pay for
 * another building's resource (a cross-building allocation excepted). */
static int
check_line_buildings(struct op *op, json_t *lines, json_t *bids)
{
    size_t i, k;
    json_t *line, *item;
    json_array_foreach(lines, i, line) {
        json_array_foreach(json_object_get(line, "resource_ids"), k, item) {
            int64_t rid = 0;
            struct resource_row r = {0};
            bool found = false, covered = false;
            if (id_parse("res", json_string_value(item), &rid) != 0) {
                continue; /* check_lines refused it already */
            }
            if (store_resource_get(op->store, rid, &r, &found, op->err) != 0) {
                return op->err->status;
            }
            size_t b;
            json_t *bid;
            json_array_foreach(bids, b, bid) {
                int64_t id = 0;
                covered |= id_parse("bld", json_string_value(bid), &id) == 0 && id == r.building_id;
            }
            store_resource_clear(&r);
            if (found && !covered) {
                return op_invalid(op, "lines.resource_ids",
                                  "line %zu: %s is in bld_%lld, which the allocation's "
                                  "building_ids do not include",
                                  i + 1, json_string_value(item), (long long)r.building_id);
            }
        }
    }
    return 0;
}

static int
check_lines(struct op *op, json_t *lines, bool hours)
{
    static const char *const keys[] = {"scope", "amount", "resource_ids", "tags", NULL};
    if (!json_is_array(lines) || json_array_size(lines) == 0) {
        return op_invalid(op, "lines", "'lines' must hold 1 to %d lines", ALLOC_LINES_MAX);
    }
    if (json_array_size(lines) > ALLOC_LINES_MAX) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "'lines' holds more than the limit of %d lines", ALLOC_LINES_MAX);
        eng_error_field(op->err, "alloc_lines_max");
        return ENG_ELIMIT;
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
        /* The list of the other scope (both for an 'all' line) would be
         * dropped unread: refused, unless empty (as GET shows a line). */
        const char *const others[2] = {by_res ? NULL : "resource_ids", by_tag ? NULL : "tags"};
        for (int o = 0; o < 2; o++) {
            json_t *other = others[o] != NULL ? json_object_get(line, others[o]) : NULL;
            if (other != NULL && !json_is_null(other) &&
                !(json_is_array(other) && json_array_size(other) == 0)) {
                return op_invalid(op, "lines", "line %zu: a '%s' line takes no '%s'", i + 1,
                                  scope, others[o]);
            }
        }
        if (args_string_array(op, line, field, 200, &list) != 0) {
            return ENG_EINVAL;
        }
        size_t n = json_array_size(list);
        json_t *item;
        size_t k;
        json_array_foreach(list, k, item) {
            int64_t rid;
            bool found = false;
            /* A resource outside the key's scope is an unknown reference
             * (engine/README.md, "Access"), as for an unknown id. */
            if (by_res && id_parse("res", json_string_value(item), &rid) == 0 &&
                op_check_reaches(op, OP_OBJ_RESOURCE, rid, &found) != 0) {
                json_decref(list);
                return op->err->status;
            }
            if (by_res && !found) {
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
    /* Each type takes its own list only: a list it would ignore is a
     * mistake, never stored (its ids would go unchecked). */
    if (!users && json_object_get(t, "user_ids") != NULL) {
        return op_invalid(op, "targeting.user_ids", "targeting by %s takes no 'user_ids'", type);
    }
    if (!roles && json_object_get(t, "roles") != NULL) {
        return op_invalid(op, "targeting.roles", "targeting by %s takes no 'roles'", type);
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
        int64_t uid = 0;
        struct user_row u = {0};
        bool found = false;
        if (rc != 0 || !users) {
            break;
        }
        if (id_parse("usr", json_string_value(item), &uid) == 0) {
            rc = store_user_get(op->store, uid, &u, &found, op->err);
            store_user_clear(&u);
        }
        if (rc == 0 && (!found || u.tenant_id != tenant_id)) {
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
    struct allocation_row a = {0};
    if (tz_local_midnight(zone, s->start, &a.start_at, op->err) != 0) {
        return op->err->status;
    }
    a.end_at = TIME_NEVER;
    if (s->has_end && tz_local_midnight(zone, date_add_days(s->end, 1), &a.end_at, op->err) != 0) {
        return op->err->status;
    }
    json_t *targeting = json_object_get(args, "targeting");
    const char *pool = json_string_value(json_object_get(args, "pool"));
    const char *desc = json_string_value(json_object_get(args, "description"));
    a.tenant_id = tenant_id;
    /* Lengths were checked at the edge (args_string), so these fit. */
    snprintf(a.description, sizeof a.description, "%s", desc ? desc : "");
    snprintf(a.unit, sizeof a.unit, "%s", json_string_value(json_object_get(args, "unit")));
    snprintf(a.pool, sizeof a.pool, "%s", pool ? pool : "shared");
    snprintf(a.recurrence, sizeof a.recurrence, "%s", period_kind_name(s->recurrence));
    snprintf(a.zone, sizeof a.zone, "%s", zone);
    date_format(s->start, a.start_date, sizeof a.start_date);
    a.has_end = s->has_end;
    if (s->has_end) {
        date_format(s->end, a.end_date, sizeof a.end_date);
    }
    a.cross_building = json_is_true(json_object_get(args, "cross_building"));
    a.rollover = s->rollover;
    a.rollover_cap = s->cap;
    a.next_open_n = 0;
    a.next_open_at = a.start_at;
    a.created_at = op->now;
    a.created_by = op->who->name;
    a.targeting = targeting ? json_incref(targeting) : json_pack("{s:s}", "type", "all");
    if (a.targeting == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    int rc = store_allocation_insert(op->store, &a, id, op->err);
    json_decref(a.targeting);
    return rc;
}

static int
insert_children(struct op *op, int64_t id, json_t *bids, json_t *lines)
{
    size_t i;
    json_t *item;
    json_array_foreach(bids, i, item) {
        int64_t bid = 0;
        (void)id_parse("bld", json_string_value(item), &bid);
        if (store_allocation_building_insert(op->store, id, bid, (int64_t)i, op->err) != 0) {
            return op->err->status;
        }
    }
    json_array_foreach(lines, i, item) {
        json_t *amount = json_object_get(item, "amount");
        struct allocation_line_row l = {0};
        l.idx = (int)i;
        l.unlimited = json_is_string(amount);
        if (!l.unlimited) {
            (void)amount_from_json(amount, &l.amount, NULL);
        }
        snprintf(l.scope, sizeof l.scope, "%s", json_string_value(json_object_get(item, "scope")));
        l.resource_ids = json_object_get(item, "resource_ids");
        l.tags = json_object_get(item, "tags");
        if (store_allocation_line_insert(op->store, id, &l, op->err) != 0) {
            return op->err->status;
        }
    }
    return 0;
}

static int
op_allocation_get_id(struct op *op, int64_t id, bool with_lots, json_t **out);

static int
any_building(void *ud, int64_t building_id)
{
    (void)building_id;
    *(bool *)ud = true;
    return 1; /* one is enough */
}

/* A building of a new allocation: known, in the principal's scope, leased
 * by the tenant (when it leases any); the first one's zone goes to zone. */
static int
check_building(struct op *op, int64_t tid, bool leases_any, const char *text, char *zone)
{
    int64_t bid = 0;
    struct building_row b;
    bool found = false;
    if (id_parse("bld", text, &bid) == 0 &&
        store_building_get(op->store, bid, &b, &found, op->err) != 0) {
        return op->err->status;
    }
    /* Outside the scope reads as unknown (PRODUCT.md §8, op_check_reaches). */
    bool reaches = false;
    if (found && op_check_reaches(op, OP_OBJ_BUILDING, bid, &reaches) != 0) {
        return op->err->status;
    }
    if (!found || !reaches) {
        return op_invalid(op, "building_ids", "unknown building '%.40s'", text);
    }
    if (zone[0] == '\0') {
        memcpy(zone, b.timezone, sizeof b.timezone);
    }
    bool leases = true;
    if (leases_any && op_check_tenant_leases(op, tid, bid, &leases) != 0) {
        return op->err->status;
    }
    if (!leases) {
        return op_invalid(op, "building_ids", "the tenant does not lease space in '%.40s'", text);
    }
    return 0;
}

static int
count_user(void *ud, int64_t user_id)
{
    (void)user_id;
    ++*(int64_t *)ud;
    return 0;
}

/* PRODUCT.md §9: one request materialises a bounded number of lots.  The
 * new allocation `id` opens lines x owners lots per period (owners: 1 for
 * a shared pool; for a per-user pool the listed users, or every user of the
 * tenant for targeting by role or all - counted before the eligibility
 * policy, which can only admit fewer): now, for each period already begun,
 * and later at each period opening.  A lot whose period is already over
 * counts twice (it is opened, then expired or rolled over in the same
 * request).  Past ALLOC_OPEN_LOTS_MAX the allocation is refused with
 * limit_exceeded (alloc_open_lots_max) before any lot is written. */
static int
check_open_lots(struct op *op, int64_t id)
{
    struct alloc a;
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    int64_t periods = 0, owners = 1;
    int rc = alloc_periods_begun(&op->lx, &a, op->now, &periods);
    if (rc == 0 && strcmp(a.pool, "per_user") == 0) {
        json_t *listed = json_object_get(a.targeting, "user_ids");
        const char *type = json_string_value(json_object_get(a.targeting, "type"));
        if (type != NULL && strcmp(type, "users") == 0) {
            owners = (int64_t)json_array_size(listed);
        } else {
            owners = 0;
            rc = store_tenant_users_each(op->store, a.tenant_id, count_user, &owners, op->err);
        }
    }
    int lines = a.line_count;
    int64_t per_period = (int64_t)lines * owners;
    /* Periods over by now: all of them once the allocation has ended. */
    int64_t over = a.end_at <= op->now ? periods : periods > 0 ? periods - 1 : 0;
    alloc_free(&a);
    if (rc != 0) {
        return rc;
    }
    /* per_period <= 32 x 1000 users and periods <= 10^8: no overflow. */
    int64_t lots = periods * per_period, cost = lots + over * per_period;
    if (per_period > ALLOC_OPEN_LOTS_MAX) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "each period of this allocation would open %lld lots (%d lines x %lld "
                       "users); one request opens at most %d: use fewer lines or users, or a "
                       "shared pool",
                       (long long)per_period, lines, (long long)owners, ALLOC_OPEN_LOTS_MAX);
    } else if (cost > ALLOC_OPEN_LOTS_MAX) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "this allocation would open %lld lots now (%lld periods already begun "
                       "x %lld lots), %lld counting twice the %lld periods already over (each "
                       "is opened and closed); one request does at most %d, so at most %lld of "
                       "its periods may have begun: start it later",
                       (long long)lots, (long long)periods, (long long)per_period,
                       (long long)cost, (long long)over, ALLOC_OPEN_LOTS_MAX,
                       (long long)((ALLOC_OPEN_LOTS_MAX / per_period + 1) / 2));
    } else {
        return 0;
    }
    eng_error_field(op->err, "alloc_open_lots_max");
    return ENG_ELIMIT;
}

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
        args_string(op, args, "description", false, STORE_ALLOC_DESCRIPTION_MAX, &s) ||
        args_bool(op, args, "cross_building", false, &cross) ||
        args_string(op, args, "unit", true, 10, &unit) ||
        args_string(op, args, "pool", false, 10, &pool)) {
        return op->err->status;
    }
    if (s != NULL && !utf8_valid(s, strlen(s))) {
        return op_invalid(op, "description", "'description' must be valid UTF-8");
    }
    bool found = false;
    struct tenant_row tenant;
    if (store_tenant_get(op->store, tid, &tenant, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_invalid(op, "tenant_id", "unknown tenant");
    }
    /* A cross-building allocation only means something for a tenant with
     * cross-building booking: refused rather than kept without effect. */
    if (cross && !tenant.cross_building) {
        return op_invalid(op, "cross_building",
                          "'cross_building' needs a tenant with cross-building booking; enable "
                          "it on the tenant first, or grant per building");
    }
    int rc;
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
    char zone[TIME_ZONE_NAME_MAX + 1] = "";
    rc = json_array_size(bids) == 0
             ? op_invalid(op, "building_ids", "'building_ids' must name at least one building")
             : 0;
    /* Credits are granted where the tenant leases space (a tenant with no
     * building listed is not limited). */
    bool leases_any = false;
    if (rc == 0) {
        rc = store_tenant_buildings_each(op->store, tid, any_building, &leases_any, op->err);
        rc = rc == 1 ? 0 : rc;
    }
    size_t i;
    json_t *item;
    json_array_foreach(bids, i, item) {
        if (rc != 0) {
            break;
        }
        rc = check_building(op, tid, leases_any, json_string_value(item), zone);
    }
    if (rc == 0 && !cross) {
        rc = check_line_buildings(op, json_object_get(args, "lines"), bids);
    }
    int64_t id = 0;
    if (rc == 0) {
        rc = insert_allocation(op, args, &sch, zone, tid, &id);
    }
    if (rc == 0) {
        rc = insert_children(op, id, bids, json_object_get(args, "lines"));
    }
    json_decref(bids);
    if (rc == 0) {
        rc = check_open_lots(op, id);
    }
    /* Open every period that has already begun (a backdated start is
     * processed period by period, expiring as it goes): bounded by
     * check_open_lots. */
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
version_append(void *ud, const struct allocation_version_row *v)
{
    json_t *row = json_pack("{s:I, s:o, s:o, s:s, s:O}", "version", (json_int_t)v->version,
                            "effective_at", json_time(v->effective_at), "created_at",
                            json_time(v->created_at), "created_by", v->created_by, "changes",
                            v->changes);
    return row == NULL || json_array_append_new(ud, row) != 0 ? ENG_ENOMEM : 0;
}

/* The allocation's versions (PATCH history), oldest first. */
static int
versions_of(struct op *op, int64_t id, json_t **out)
{
    *out = json_array();
    int rc = *out == NULL ? ENG_ENOMEM
                          : store_allocation_versions_each(op->store, id, version_append, *out,
                                                           op->err);
    if (rc == ENG_ENOMEM) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int
op_allocation_get_id(struct op *op, int64_t id, bool with_lots, json_t **out)
{
    struct alloc a;
    bool reaches = false;
    if (op_check_reaches(op, OP_OBJ_ALLOCATION, id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "allocation");
    }
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    json_t *j = alloc_json(op, &a);
    alloc_free(&a);
    if (j == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (with_lots) {
        json_t *lots = json_array();
        /* A tenant_user sees its own balance (PRODUCT.md §8): the shared
         * pool's lots and its own, not its colleagues' per-user lots. */
        struct lot_filter f = {
            .allocation_id = id,
            .user_id = op->who->role == ROLE_TENANT_USER ? op->who->user_id : -1,
            .from_min = INT64_MIN,
        };
        int rc = lots == NULL ? eng_error_set(op->err, ENG_ENOMEM, "out of memory")
                              : lots_of(op, &f, lots);
        if (rc != 0) {
            json_decref(lots);
            json_decref(j);
            return rc;
        }
        json_object_set_new(j, "lots", lots);
        json_t *versions = NULL;
        rc = versions_of(op, id, &versions);
        if (rc != 0) {
            json_decref(j);
            return rc;
        }
        json_object_set_new(j, "versions", versions);
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

struct list_ud {
    struct op *op;
    struct pager *pg;
};

/* One allocation of a page; one out of the principal's scope still moves
 * the cursor. */
static int
allocation_page_row(void *ud, int64_t id)
{
    struct list_ud *u = ud;
    json_t *row = NULL;
    bool reaches = false;
    int rc = op_check_reaches(u->op, OP_OBJ_ALLOCATION, id, &reaches);
    if (rc == 0 && reaches) {
        rc = op_allocation_get_id(u->op, id, false, &row);
    }
    return rc != 0 ? rc : pager_add(u->pg, id, row);
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
    /* A tenant principal's allocations are its tenant's: a filter naming
     * another tenant matches none (an empty page, as for an unknown id). */
    bool none = false;
    if (!op_is_admin(op)) {
        none = tid != 0 && tid != op->who->tenant_id;
        tid = op->who->tenant_id;
    }
    struct allocation_filter f = {
        .after = page.after,
        .tenant_id = tid,
        .building_id = bid,
        .now = op->now,
        .status = status,
        .limit = page.limit + 1,
    };
    struct pager pg;
    pager_init(&pg, &page);
    struct list_ud u = {op, &pg};
    int rc = none ? 0 : store_allocations_list(op->store, &f, allocation_page_row, &u, op->err);
    return pager_finish(&pg, op, rc, out);
}

/* The open, limited lots of an allocation starting at or after `from`,
 * collected first (voiding them changes the rows the query walks). */
struct void_list {
    struct lot_row *rows;
    size_t count, cap;
};

static int
void_add(void *ud, const struct lot_row *lot)
{
    struct void_list *v = ud;
    if (v->count == v->cap) {
        size_t cap = v->cap != 0 ? 2 * v->cap : 16;
        struct lot_row *grown = realloc(v->rows, cap * sizeof *grown);
        if (grown == NULL) {
            return ENG_ENOMEM;
        }
        v->rows = grown;
        v->cap = cap;
    }
    v->rows[v->count++] = *lot;
    return 0;
}

/* Future lots beyond a new end: void their balance, close them. */
static int
void_future_lots(struct op *op, int64_t id, int64_t from)
{
    struct lot_filter f = {.allocation_id = id,
                           .user_id = -1,
                           .from_min = from,
                           .open_only = true,
                           .limited_only = true};
    struct void_list v = {0};
    int rc = store_lots_each(op->store, &f, void_add, &v, op->err);
    if (rc == ENG_ENOMEM) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < v.count; i++) {
        if (v.rows[i].balance > 0) {
            rc = entry_post(&op->lx, v.rows[i].id, "void", -v.rows[i].balance, op->now, 0, NULL,
                            NULL, "allocation ended");
        }
        if (rc == 0) {
            rc = store_lot_close(op->store, v.rows[i].id, op->err);
        }
    }
    free(v.rows);
    return rc;
}

/* Ends allocation `id` (reached by the principal) on date d (`end` as
 * given): periods that have begun keep their credits and validity; lots of
 * later periods (created early for bookings ahead) are voided of what is
 * left, and no further period opens.  Shared by POST .../end and PATCH. */
static int
allocation_end_on(struct op *op, int64_t id, const char *end, struct civil_date d)
{
    struct alloc a;
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    int rc = 0;
    int64_t end_at = 0;
    if (a.end_at <= op->now) {
        /* Ended: its last period closed; an end pushed back would open
         * periods after it and rewrite months already reported. */
        rc = eng_error_code(op->err, ENG_ECONFLICT, "allocation_ended",
                            "the allocation has ended; it can no longer change");
    } else if (a.has_end && date_cmp(d, a.end_date) > 0) {
        rc = op_invalid(op, "end", "the end can be brought forward, not pushed back: create "
                                   "another allocation to grant beyond it");
    } else if (date_cmp(d, a.start_date) < 0) {
        rc = op_invalid(op, "end", "'end' is before the allocation's start");
    } else {
        rc = tz_local_midnight(a.zone, date_add_days(d, 1), &end_at, op->err);
    }
    /* A period that has begun runs to its natural end.  A once allocation
     * has one lot, valid "until its end date (or forever)", and "a once lot
     * with an end date expires at that date" (PRODUCT.md §3): its lot ends
     * with it (an end already past: at once, the next second, which the
     * period-end processing then closes). */
    bool once = a.recurrence == PERIOD_NONE;
    int64_t n = 0;
    bool in = false;
    if (rc == 0 && end_at < op->now) {
        end_at = once ? op->now + 1 : op->now;
    }
    if (rc == 0 && !once) {
        rc = alloc_period_at(&op->lx, &a, end_at - 1, &n, &in);
    }
    if (rc == 0 && in) {
        int64_t from = 0, until = 0;
        bool exists = false;
        rc = alloc_window(&op->lx, &a, n, &from, &until, &exists);
        if (rc == 0 && exists && from <= op->now && until > end_at) {
            end_at = until;
        }
    }
    if (rc == 0) {
        rc = store_allocation_set_end(op->store, id, end, end_at, op->err);
    }
    if (rc == 0 && once) {
        rc = store_lots_end_before(op->store, id, end_at, op->err);
    }
    alloc_free(&a);
    if (rc == 0) {
        rc = alloc_load(&op->lx, id, &a);
    }
    if (rc != 0) {
        return rc;
    }
    rc = void_future_lots(op, id, end_at);
    /* The next opening: none past the end. */
    struct allocation_row row;
    bool found = false;
    int64_t from = 0, until = 0;
    bool exists = false;
    if (rc == 0) {
        rc = store_allocation_get(op->store, id, &row, &found, op->err);
        store_allocation_clear(&row);
    }
    if (rc == 0 && !found) {
        rc = op_not_found(op, "allocation");
    }
    if (rc == 0) {
        rc = alloc_window(&op->lx, &a, row.next_open_n, &from, &until, &exists);
    }
    if (rc == 0) {
        rc = store_allocation_set_cursor(op->store, id, row.next_open_n,
                                         exists ? from : TIME_NEVER, op->err);
    }
    alloc_free(&a);
    return rc;
}

static int
op_allocation_end(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", "end", NULL};
    int64_t id;
    const char *end;
    struct civil_date d;
    struct eng_error e = {0};
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "id", "alc", true, &id) || args_string(op, args, "end", true, 10, &end)) {
        return op->err->status;
    }
    if (date_parse(end, &d, &e) != 0) {
        return op_invalid(op, "end", "'end' must be a date YYYY-MM-DD");
    }
    bool reaches = false;
    if (op_check_reaches(op, OP_OBJ_ALLOCATION, id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "allocation");
    }
    int rc = allocation_end_on(op, id, end, d);
    /* Recorded in `versions` as a PATCH of the end would be (PRODUCT.md
     * §13: the allocation keeps its history). */
    json_t *changes = rc == 0 ? json_pack("{s:{s:s}}", "schedule", "end", end) : NULL;
    int64_t version = 0;
    if (rc == 0 && changes == NULL) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = store_allocation_version_insert(op->store, id, op->now, changes, op->now,
                                             op->who->name, &version, op->err);
    }
    json_decref(changes);
    return rc != 0 ? rc : op_allocation_get_id(op, id, true, out);
}

/* ---------- editing an allocation ---------- */

/* The lines of a PATCH: the same lines (count, scope, resources, tags) as
 * the allocation has, with new amounts.  changed[i] tells which differ. */
static int
patch_lines(struct op *op, const struct alloc *a, json_t *lines, bool changed[])
{
    if (check_lines(op, lines, strcmp(a->unit, "hour") == 0) != 0) {
        return op->err->status;
    }
    if ((int)json_array_size(lines) != a->line_count) {
        return op_invalid(op, "lines",
                          "'lines' must list the allocation's %d lines, with their scopes, in "
                          "order; only amounts can change (end this allocation and create "
                          "another to change its scopes)",
                          a->line_count);
    }
    for (int i = 0; i < a->line_count; i++) {
        const struct alloc_line *l = &a->lines[i];
        json_t *line = json_array_get(lines, (size_t)i);
        const char *scope = json_string_value(json_object_get(line, "scope"));
        json_t *ids = json_object_get(line, "resource_ids"), *tags = json_object_get(line, "tags");
        bool same = scope != NULL && strcmp(scope, l->scope) == 0;
        if (same && strcmp(l->scope, "resources") == 0) {
            same = json_equal(ids, l->resource_ids);
        } else if (same && strcmp(l->scope, "tags") == 0) {
            same = json_equal(tags, l->tags);
        }
        if (!same) {
            return op_invalid(op, "lines",
                              "line %d: only its amount can change, not its scope, resources "
                              "or tags",
                              i + 1);
        }
        json_t *amount = json_object_get(line, "amount");
        bool unlimited = json_is_string(amount);
        int64_t milli = 0;
        if (!unlimited) {
            (void)amount_from_json(amount, &milli, NULL);
        }
        changed[i] = unlimited != l->unlimited || (!unlimited && milli != l->amount);
    }
    return 0;
}

/* When a change of lines and rollover applies: the start of the first
 * period that has not begun (the allocation's start if it has not begun
 * yet).  *none: no such period (an allocation that has begun and has no
 * period left). */
static int
next_period_start(struct op *op, const struct alloc *a, int64_t *at, bool *none)
{
    *none = false;
    *at = a->start_at;
    if (a->start_at > op->now) {
        return 0;
    }
    int64_t n = 0, from = 0, until = 0;
    bool in = false, exists = false;
    if (a->recurrence == PERIOD_NONE) {
        *none = true;
        return 0;
    }
    if (alloc_period_at(&op->lx, a, op->now, &n, &in) != 0 ||
        (in && alloc_window(&op->lx, a, n + 1, &from, &until, &exists) != 0)) {
        return op->err->status;
    }
    *none = !in || !exists;
    *at = from;
    return 0;
}

/* Lots already created for periods from `from` on (early, for bookings
 * ahead) get the new amount of their line: an adjust entry of the
 * difference.  A lot that has paid for more than its new amount, or whose
 * line turns unlimited or limited, refuses the change (409). */
static int
adjust_created_lots(struct op *op, const struct alloc *a, json_t *lines, const bool changed[],
                    int64_t from, int64_t version)
{
    struct lot_filter f = {.allocation_id = a->id, .user_id = -1, .from_min = from,
                           .open_only = true};
    struct void_list v = {0};
    int rc = store_lots_each(op->store, &f, void_add, &v, op->err);
    if (rc == ENG_ENOMEM) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    char memo[64];
    snprintf(memo, sizeof memo, "allocation edited (version %lld)", (long long)version);
    for (size_t i = 0; rc == 0 && i < v.count; i++) {
        const struct lot_row *l = &v.rows[i];
        if (strcmp(l->kind, "period") != 0 || l->line_idx < 0 || l->line_idx >= a->line_count ||
            !changed[l->line_idx]) {
            continue;
        }
        json_t *amount = json_object_get(json_array_get(lines, (size_t)l->line_idx), "amount");
        bool unlimited = json_is_string(amount);
        int64_t milli = 0;
        if (!unlimited) {
            (void)amount_from_json(amount, &milli, NULL);
        }
        /* From what the lot holds for its line now: its grant and what
         * earlier edits added (admin adjustments stay as they are). */
        int64_t edited = 0;
        rc = store_lot_edit_adjusted(op->store, l->id, &edited, op->err);
        if (rc != 0) {
            break;
        }
        int64_t diff = milli - (l->granted + edited);
        if (unlimited != l->unlimited || l->balance + diff < 0) {
            rc = eng_error_code(op->err, ENG_ECONFLICT, "credits_in_use",
                                "line %d: the lot of a period not yet begun (lot_%lld) has "
                                "already paid for bookings beyond the new amount",
                                l->line_idx + 1, (long long)l->id);
        } else if (diff != 0) {
            char key[64];
            snprintf(key, sizeof key, "alloc_edit:%lld:%lld", (long long)l->id,
                     (long long)version);
            rc = entry_post(&op->lx, l->id, "adjust", diff, op->now, 0, key, NULL, memo);
        }
    }
    free(v.rows);
    return rc;
}

/* PATCH /v1/allocations/{id} (PRODUCT.md §13): description at once; line
 * amounts and rollover from the next period (periods that have begun keep
 * what they granted); an end date set or brought forward as POST .../end
 * does.  Each change is a new entry in `versions`. */
static int
op_allocation_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", "description", "lines", "targeting", "pool",
                                       "schedule", "effective", NULL};
    static const char *const skeys[] = {"end", "rollover", "start", "recurrence", NULL};
    int64_t id;
    const char *desc = NULL, *effective = NULL;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "id", "alc", true, &id) ||
        args_string(op, args, "description", false, STORE_ALLOC_DESCRIPTION_MAX, &desc) ||
        args_string(op, args, "effective", false, 20, &effective)) {
        return op->err->status;
    }
    bool reaches = false;
    if (op_check_reaches(op, OP_OBJ_ALLOCATION, id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "allocation");
    }
    if (json_object_size(args) < 2) {
        return op_invalid(op, "", "nothing to change: send description, lines or schedule");
    }
    if (desc != NULL && !utf8_valid(desc, strlen(desc))) {
        return op_invalid(op, "description", "'description' must be valid UTF-8");
    }
    if (effective != NULL && strcmp(effective, "next_period") != 0) {
        return op_invalid(op, "effective", "'effective' must be \"next_period\": a change "
                                           "dated later is not supported yet");
    }
    if (json_object_get(args, "targeting") != NULL || json_object_get(args, "pool") != NULL) {
        return op_invalid(op, json_object_get(args, "targeting") != NULL ? "targeting" : "pool",
                          "targeting and pool cannot be changed yet: end this allocation and "
                          "create another");
    }
    json_t *sched = json_object_get(args, "schedule");
    const char *end = NULL;
    json_t *roll = NULL;
    if (sched != NULL) {
        if (!json_is_object(sched) || args_only(op, sched, skeys) ||
            args_string(op, sched, "end", false, 10, &end)) {
            eng_error_field(op->err, "schedule");
            return op->err->status != ENG_OK ? op->err->status
                                             : op_invalid(op, "schedule",
                                                          "'schedule' must be an object");
        }
        if (json_object_get(sched, "start") != NULL ||
            json_object_get(sched, "recurrence") != NULL) {
            return op_invalid(op, "schedule", "a schedule's start and recurrence cannot change");
        }
        json_t *e = json_object_get(sched, "end");
        if (e != NULL && json_is_null(e)) {
            return op_invalid(op, "schedule.end", "an end cannot be removed: create another "
                                                  "allocation to grant beyond it");
        }
        roll = json_object_get(sched, "rollover");
    }
    struct alloc a;
    if (alloc_load(&op->lx, id, &a) != 0) {
        return op->err->status;
    }
    int rc = 0;
    if (a.end_at <= op->now) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "allocation_ended",
                            "the allocation has ended; it can no longer change");
    }
    /* The new end: set, or brought forward (never pushed back: periods
     * past the old end may have been closed). */
    struct civil_date end_d = {0};
    struct eng_error e = {0};
    if (rc == 0 && end != NULL) {
        if (date_parse(end, &end_d, &e) != 0) {
            rc = op_invalid(op, "schedule.end", "'end' must be a date YYYY-MM-DD");
        } else if (a.has_end && date_cmp(end_d, a.end_date) > 0) {
            rc = op_invalid(op, "schedule.end", "the end can be brought forward, not pushed "
                                                "back: create another allocation to grant "
                                                "beyond it");
        } else if (date_cmp(end_d, a.start_date) < 0) {
            rc = op_invalid(op, "schedule.end", "'end' is before the allocation's start");
        }
    }
    /* Rollover: the rule applied at the ends of periods from now on. */
    bool rollover = a.rollover;
    int64_t cap = a.rollover_cap;
    if (rc == 0 && roll != NULL && !json_is_null(roll)) {
        static const char *const rkeys[] = {"enabled", "cap", NULL};
        if (args_only(op, roll, rkeys) || args_bool(op, roll, "enabled", a.rollover, &rollover) ||
            args_amount(op, roll, "cap", false, &cap)) {
            eng_error_field(op->err, "schedule.rollover");
            rc = ENG_EINVAL;
        } else if (json_object_get(roll, "cap") == NULL) {
            cap = a.rollover_cap;
        } else if (json_is_null(json_object_get(roll, "cap"))) {
            cap = -1;
        } else if (cap < 0) {
            rc = op_invalid(op, "schedule.rollover.cap", "the rollover cap cannot be negative");
        }
        if (rc == 0 && rollover && a.recurrence == PERIOD_NONE) {
            rc = op_invalid(op, "schedule.rollover", "rollover needs a recurring schedule");
        }
    }
    json_t *lines = json_object_get(args, "lines");
    bool changed[ALLOC_LINES_MAX] = {false};
    bool lines_changed = false;
    if (rc == 0 && lines != NULL) {
        rc = patch_lines(op, &a, lines, changed);
        for (int i = 0; rc == 0 && i < a.line_count; i++) {
            lines_changed |= changed[i];
        }
    }
    int64_t from = op->now;
    bool none = false;
    if (rc == 0 && (lines_changed || roll != NULL)) {
        rc = next_period_start(op, &a, &from, &none);
    }
    if (rc == 0 && lines_changed && none) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "allocation_started",
                            "the allocation has no period left that has not begun: a begun "
                            "period keeps what it granted (adjust its lot instead)");
    }
    /* A PATCH that changes nothing (the same description, amounts,
     * rollover and end) is answered as is, with no new version. */
    bool same = rc == 0 && !lines_changed && (desc == NULL || strcmp(desc, a.description) == 0) &&
                (roll == NULL || (rollover == a.rollover && cap == a.rollover_cap)) &&
                (end == NULL || (a.has_end && date_cmp(end_d, a.end_date) == 0));
    if (same) {
        alloc_free(&a);
        return op_allocation_get_id(op, id, true, out);
    }
    json_t *changes = rc == 0 ? json_deep_copy(args) : NULL;
    if (rc == 0 && changes == NULL) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (changes != NULL) {
        json_object_del(changes, "id");
    }
    int64_t version = 0;
    if (rc == 0) {
        rc = store_allocation_version_insert(op->store, id, from, changes, op->now, op->who->name,
                                             &version, op->err);
    }
    json_decref(changes);
    if (rc == 0) {
        rc = store_allocation_edit(op->store, id, desc != NULL ? desc : a.description, rollover,
                                   cap, op->err);
    }
    for (int i = 0; rc == 0 && i < a.line_count; i++) {
        if (!changed[i]) {
            continue;
        }
        json_t *amount = json_object_get(json_array_get(lines, (size_t)i), "amount");
        int64_t milli = 0;
        if (!json_is_string(amount)) {
            (void)amount_from_json(amount, &milli, NULL);
        }
        rc = store_allocation_line_amount(op->store, id, i, json_is_string(amount), milli,
                                          op->err);
    }
    if (rc == 0 && lines_changed) {
        rc = adjust_created_lots(op, &a, lines, changed, from, version);
    }
    alloc_free(&a);
    if (rc == 0 && end != NULL) {
        rc = allocation_end_on(op, id, end, end_d);
    }
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

/* Appends a lot to the wallet's (ud as lot_append's) when the principal
 * reaches it. */
static int
wallet_lot_append(void *ud, const struct lot_row *l)
{
    struct op *op = ((void **)ud)[0];
    bool reaches = false;
    int rc = op_check_reaches(op, OP_OBJ_LOT, l->id, &reaches);
    return rc != 0 || !reaches ? rc : lot_append(ud, l);
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
    bool sees = false;
    rc = op_check_sees_user(op, tid, uid, &sees);
    if (rc == 0 && sees) {
        rc = op_check_sees_tenant(op, tid, &sees);
    }
    if (rc != 0 || !sees) {
        json_decref(user);
        return rc != 0 ? rc : op_not_found(op, "user");
    }
    json_t *tenant = ctx_tenant(&op->lx, tid, &rc);
    if (tenant == NULL) {
        json_decref(user);
        return rc;
    }
    json_t *balances = json_array(), *lots = json_array(), *soon = json_array();
    static const char *const units[] = {"hour", "coin"};
    /* No resource is involved: a line is the user's when any of its
     * allocation's buildings' eligibility policies admits it
     * (ledger_eligibility_building), so ledger_candidates needs no set
     * from here. */
    rc = balances == NULL || lots == NULL || soon == NULL
             ? eng_error_set(op->err, ENG_ENOMEM, "out of memory")
             : 0;
    for (int u = 0; rc == 0 && u < 2; u++) {
        if (unit_filter != NULL && strcmp(unit_filter, units[u]) != 0) {
            continue;
        }
        struct cand_list list = {0};
        rc = ledger_candidates(&op->lx, NULL, uid, tid, user, tenant, NULL, units[u], op->now,
                               false, true, &list);
        struct cand *cands = list.items;
        int count = list.count;
        int64_t avail = 0;
        bool unlimited = false;
        for (int i = 0; rc == 0 && i < count; i++) {
            /* A scoped key sees only the lots inside its scope, and counts
             * only them. */
            bool reaches = false;
            rc = op_check_reaches(op, OP_OBJ_ALLOCATION, cands[i].alloc_id, &reaches);
            if (rc != 0 || !reaches) {
                continue;
            }
            unlimited |= cands[i].unlimited;
            avail += cands[i].unlimited ? 0 : cands[i].balance;
            if (json_array_append_new(lots, cand_json(op, &cands[i], units[u])) != 0) {
                rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
            }
            if (rc == 0 && !cands[i].unlimited && cands[i].balance > 0 &&
                cands[i].valid_until != TIME_NEVER &&
                cands[i].valid_until - op->now <= EXPIRING_SOON_S &&
                json_array_append_new(soon, cand_json(op, &cands[i], units[u])) != 0) {
                rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
            }
        }
        /* Every unit asked for gets a balance, zero included, so clients
         * need not tell "no credits" from "no answer". */
        if (rc == 0 && json_array_append_new(balances,
                                              json_pack("{s:s, s:o, s:b}", "unit", units[u],
                                                        "available", amount_to_json(avail),
                                                        "unlimited", unlimited)) != 0) {
            rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        }
        cand_list_free(&list);
    }
    /* Lots of periods still to come (created early for bookings ahead),
     * every one of them. */
    struct lot_filter f = {.tenant_id = tid,
                           .user_id = uid,
                           .unit = unit_filter,
                           .from_min = op->now == INT64_MAX ? op->now : op->now + 1,
                           .open_only = true};
    if (rc == 0) {
        void *ud[2] = {op, lots};
        rc = store_lots_each(op->store, &f, wallet_lot_append, ud, op->err);
        if (rc == ENG_ENOMEM) {
            rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        }
    }
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
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
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
    if (memo != NULL && !utf8_valid(memo, strlen(memo))) {
        return op_invalid(op, "memo", "'memo' must be valid UTF-8");
    }
    struct lot_row l;
    bool found = false;
    if (store_lot_get(op->store, lot, &l, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "lot");
    }
    int64_t bal = l.balance;
    bool unlimited = l.unlimited;
    bool closed = l.closed || l.valid_until <= op->now;
    bool reaches = false;
    if (op_check_reaches(op, OP_OBJ_LOT, lot, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
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
    int64_t entry_id = 0;
    if (entry_post_id(&op->lx, lot, "adjust", amount, op->now, 0, NULL, NULL, memo, &entry_id) !=
        0) {
        return op->err->status;
    }
    op->created = true;
    if (store_lot_get(op->store, lot, &l, &found, op->err) != 0) {
        return op->err->status;
    }
    json_t *lot_j = found ? lot_json(op, &l) : NULL;
    *out = lot_j == NULL ? NULL
                         : json_pack("{s:o, s:o, s:o, s:o}", "id", id_json("ent", entry_id),
                                     "lot_id", id_json("lot", lot), "amount",
                                     amount_to_json(amount), "lot", lot_j);
    if (*out == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---------- the ledger ---------- */

static json_t *
entry_json(const struct entry_row *r)
{
    json_t *e = json_pack(
        "{s:o, s:o, s:o, s:o, s:s, s:o, s:s, s:o, s:o}", "id", id_json("ent", r->id), "lot_id",
        id_json("lot", r->lot_id), "allocation_id", id_json("alc", r->allocation_id),
        "tenant_id", id_json("ten", r->tenant_id), "kind", r->kind, "amount",
        amount_to_json(r->amount), "unit", r->unit, "effective_at", json_time(r->effective_at),
        "created_at", json_time(r->created_at));
    if (e == NULL) {
        return NULL;
    }
    json_object_set_new(e, "booking_id",
                        r->booking_id != 0 ? id_json("bkg", r->booking_id) : json_null());
    const char *const names[] = {"policy_version", "memo", "actor"};
    const char *const values[] = {r->policy_version, r->memo, r->actor};
    for (int c = 0; c < 3; c++) {
        json_object_set_new(e, names[c], values[c] ? json_string(values[c]) : json_null());
    }
    return e;
}

struct entries_ud {
    struct op *op;
    struct pager *pg;
    int64_t lot_id; /* the last lot decided, 0: none yet */
    bool lot_reached;
    struct zoned_bound *zb;
};

/* Whether an entry's effective instant is inside the dates asked, read in
 * its allocation's zone (op_zoned_bounds) when the buildings are in
 * several zones. */
static int
entry_in_dates(struct entries_ud *u, const struct entry_row *r, bool *inside)
{
    int64_t from = 0, to = 0;
    if (!op_zoned_cached(u->zb, r->allocation_id, &from, &to)) {
        struct allocation_row a;
        bool found = false;
        if (store_allocation_get(u->op->store, r->allocation_id, &a, &found, u->op->err) != 0) {
            return u->op->err->status;
        }
        int rc = op_zoned_put(u->op, u->zb, r->allocation_id, found ? a.zone : "UTC", &from, &to);
        store_allocation_clear(&a);
        if (rc != 0) {
            return rc;
        }
    }
    *inside = r->effective_at >= from && r->effective_at < to;
    return 0;
}

/* One entry of a page: shown when the principal reaches its lot (an admin
 * limited to some buildings, only lots of allocations wholly inside them;
 * tenant principals are already filtered to their tenant).  A hidden entry
 * still moves the cursor. */
static int
entry_page_row(void *ud, const struct entry_row *r)
{
    struct entries_ud *u = ud;
    json_t *row = NULL;
    bool inside = true;
    if (u->zb->per_row && entry_in_dates(u, r, &inside) != 0) {
        return u->op->err->status;
    }
    if (!inside) {
        return pager_add(u->pg, r->id, NULL);
    }
    if (u->lot_id != r->lot_id) {
        int rc = op_check_reaches(u->op, OP_OBJ_LOT, r->lot_id, &u->lot_reached);
        if (rc != 0) {
            return rc;
        }
        u->lot_id = r->lot_id;
    }
    if (u->lot_reached) {
        row = entry_json(r);
        if (row == NULL) {
            return eng_error_set(u->op->err, ENG_ENOMEM, "out of memory");
        }
    }
    return pager_add(u->pg, r->id, row);
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
        args_string(op, args, "kind", false, 20, &kind) || args_page(op, args, &page)) {
        return op->err->status;
    }
    struct zoned_bound zb;
    if (op_zoned_bounds(op, args, 0, tid, &zb) != 0) {
        return op->err->status;
    }
    from = zb.from;
    to = zb.to;
    static const char *const kinds[] = {"grant",      "debit",  "refund", "expire",
                                        "rollover_out", "rollover_in", "adjust", "void", NULL};
    bool known = kind == NULL;
    for (int k = 0; !known && kinds[k] != NULL; k++) {
        known = strcmp(kind, kinds[k]) == 0;
    }
    if (!known) {
        return op_invalid(op, "kind", "'kind' must be grant, debit, refund, expire, "
                                      "rollover_out, rollover_in, adjust or void");
    }
    if (op->who->role == ROLE_TENANT_USER) {
        return op_forbidden(op, "read the ledger");
    }
    bool sees = true;
    if (!op_is_admin(op)) {
        /* Another tenant named by a tenant_admin: out of scope, 404 like
         * an admin key's (never its own entries under another's name). */
        sees = tid == 0 || tid == op->who->tenant_id;
        tid = op->who->tenant_id;
    } else if (tid != 0 && op_check_sees_tenant(op, tid, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "tenant");
    }
    /* A filter on a lot or a booking out of scope answers 404. */
    if (lot != 0 && op_check_reaches(op, OP_OBJ_LOT, lot, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "lot");
    }
    if (bkg != 0 && op_check_reaches(op, OP_OBJ_BOOKING, bkg, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "booking");
    }
    struct entry_filter f = {
        .after = page.after,
        .tenant_id = tid,
        .lot_id = lot,
        .booking_id = bkg,
        .kind = kind,
        .from = from,
        .to = to,
        .limit = page.limit + 1,
    };
    struct pager pg;
    pager_init(&pg, &page);
    struct entries_ud u = {op, &pg, 0, false, &zb};
    int rc = store_entries_list(op->store, &f, entry_page_row, &u, op->err);
    return pager_finish(&pg, op, rc, out);
}

const struct op_def ops_credits[] = {
    {"allocations.create", op_allocation_create, true},
    {"allocations.get", op_allocation_get, false},
    {"allocations.list", op_allocation_list, false},
    {"allocations.end", op_allocation_end, true},
    {"allocations.patch", op_allocation_patch, true},
    {"wallet", op_wallet, false},
    {"adjustments.create", op_adjust, true},
    {"entries.list", op_entries, false},
    {NULL, NULL, false},
};
