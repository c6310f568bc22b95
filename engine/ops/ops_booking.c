/* ops_booking.c - quotes, bookings and cancellations (PRODUCT.md §4, §5).
 *
 * A quote and a booking share one preparation: load the resource, building
 * and user, run the validate and pricing policies, decide which payment
 * methods are on offer, and find the lots that could pay.  The quote stops
 * there (read-only: lots that do not exist yet are virtual); the booking
 * creates them, checks the slot, pays greedily in the order policy's order,
 * and writes the booking and its debits in the caller's transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "ledger.h"
#include "ops.h"

#define BOOKING_MINUTES_MAX (366 * 24 * 60)

struct bk {
    int64_t resource_id, building_id, user_id, tenant_id;
    int64_t start, end, discount_pm;
    const char *method;
    json_t *resource, *building, *user, *tenant, *booking;
    struct policy_set *pol;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    bool has_money, has_credits;
    int64_t money, money_before, credits;
    char unit[8], currency[8];
    bool pay_credits, pay_invoice, pay_card;
    struct cand_list cands;
    int64_t available;
    bool unlimited;
};

static void
bk_free(struct bk *b)
{
    json_decref(b->resource);
    json_decref(b->building);
    json_decref(b->user);
    json_decref(b->tenant);
    json_decref(b->booking);
    if (b->pol != NULL) {
        policy_set_release(b->pol);
    }
    cand_list_free(&b->cands);
}

static int
load_resource(struct op *op, struct bk *b)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT r.building_id, r.name, r.kind, r.tags, r.pricing,"
                                  " r.credit_only, b.timezone, b.currency, b.pay_credits,"
                                  " b.pay_invoice, b.pay_card FROM resource r JOIN building b"
                                  " ON b.id = r.building_id WHERE r.id = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, b->resource_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return op_not_found(op, "resource");
    }
    b->building_id = sqlite3_column_int64(st, 0);
    b->resource = json_pack("{s:o, s:o, s:s, s:s, s:o, s:o, s:b}", "id",
                            id_json("res", b->resource_id), "building_id",
                            id_json("bld", b->building_id), "name",
                            (const char *)sqlite3_column_text(st, 1), "kind",
                            (const char *)sqlite3_column_text(st, 2), "tags",
                            json_from_text((const char *)sqlite3_column_text(st, 3)), "pricing",
                            json_from_text((const char *)sqlite3_column_text(st, 4)),
                            "credit_only", sqlite3_column_int(st, 5));
    b->building = json_pack("{s:o, s:s, s:s}", "id", id_json("bld", b->building_id), "timezone",
                            (const char *)sqlite3_column_text(st, 6), "currency",
                            (const char *)sqlite3_column_text(st, 7));
    snprintf(b->currency, sizeof b->currency, "%s", (const char *)sqlite3_column_text(st, 7));
    b->pay_credits = sqlite3_column_int(st, 8) != 0;
    b->pay_invoice = sqlite3_column_int(st, 9) != 0;
    b->pay_card = sqlite3_column_int(st, 10) != 0;
    sqlite3_reset(st);
    return 0;
}

/* Calls a policy that may refuse with {error = "..."}: a refusal is a 400. */
static int
call_checked(struct op *op, struct bk *b, enum policy_kind kind, json_t *ctx, json_t **res)
{
    if (policy_set_call(b->pol, kind, ctx, res, op->err) != 0) {
        return op->err->status;
    }
    json_t *msg = json_is_object(*res) ? json_object_get(*res, "error") : NULL;
    if (msg != NULL) {
        int rc = op_invalid(op, "", "%s",
                            json_is_string(msg) ? json_string_value(msg) : "refused by policy");
        json_decref(*res);
        *res = NULL;
        return rc;
    }
    return 0;
}

static int
policy_int(struct op *op, json_t *res, const char *key, int64_t max, bool *has, int64_t *out)
{
    json_t *v = json_object_get(res, key);
    *has = v != NULL && !json_is_null(v);
    if (!*has) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the pricing policy returned an invalid '%s' (an integer from 0 "
                              "to %lld is required)",
                              key, (long long)max);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Credits (milli, net of refunds) the user has spent from shared lots in
 * the unit the resource is priced in, on meetings in the calendar month of
 * `lt` (the building's zone): what a per-user quota inside a tenant pool
 * needs (validate's ctx.user_usage_month). */
static int
user_usage_month(struct op *op, struct bk *b, const char *zone, const struct civil_time *lt,
                 int64_t *out)
{
    struct civil_date first = {lt->year, lt->month, 1};
    int64_t from, to;
    if (tz_local_midnight(zone, first, &from, op->err) != 0 ||
        tz_local_midnight(zone, date_add_months(first, 1), &to, op->err) != 0) {
        return op->err->status;
    }
    json_t *credits = json_object_get(json_object_get(b->resource, "pricing"), "credits");
    const char *unit = json_string_value(json_object_get(credits, "unit"));
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT coalesce(-sum(e.amount), 0) FROM booking b"
                                  " JOIN entry e ON e.booking_id = b.id"
                                  " JOIN lot l ON l.id = e.lot_id WHERE b.user_id = ?1 AND"
                                  " b.start_at >= ?2 AND b.start_at < ?3 AND"
                                  " e.kind IN ('debit', 'refund') AND l.user_id = 0 AND"
                                  " l.unit = ?4",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, b->user_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_text(st, 4, unit != NULL ? unit : "hour", -1, SQLITE_TRANSIENT);
    *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return 0;
}

/* Runs validate and pricing; fills the price fields of b. */
static int
price(struct op *op, struct bk *b)
{
    struct civil_time lt;
    int64_t usage = 0;
    const char *zone = json_string_value(json_object_get(b->building, "timezone"));
    if (tz_local_time(zone, b->start, &lt, op->err) != 0 ||
        user_usage_month(op, b, zone, &lt, &usage) != 0) {
        return op->err->status;
    }
    b->booking = json_pack(
        "{s:I, s:I, s:I, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:I}", "start", (json_int_t)b->start,
        "end", (json_int_t)b->end, "minutes", (json_int_t)((b->end - b->start) / 60),
        "local_start", "year", lt.year, "month", lt.month, "day", lt.day, "hour", lt.hour,
        "minute", lt.minute, "wday", lt.wday, "discount_pm", (json_int_t)b->discount_pm);
    if (b->method != NULL) {
        json_object_set_new(b->booking, "payment_method", json_string(b->method));
    }
    json_t *ctx = json_pack("{s:O, s:O, s:O, s:O, s:I, s:I}", "booking", b->booking, "resource",
                            b->resource, "user", b->user, "building", b->building, "now",
                            (json_int_t)op->now, "user_usage_month", (json_int_t)usage);
    json_t *res = NULL;
    int rc = call_checked(op, b, POLICY_VALIDATE, ctx, &res);
    json_decref(res);
    res = NULL;
    if (rc == 0) {
        rc = call_checked(op, b, POLICY_PRICING, ctx, &res);
    }
    json_decref(ctx);
    if (rc != 0) {
        return rc;
    }
    bool has_before = false;
    if (json_is_array(res) && json_array_size(res) == 0) {
        /* An empty Lua table crosses as []: no price of either kind. */
        json_decref(res);
        res = json_object();
    }
    if (!json_is_object(res) ||
        policy_int(op, res, "money", INT64_C(1) << 50, &b->has_money, &b->money) ||
        policy_int(op, res, "money_before_discount", INT64_C(1) << 50, &has_before,
                   &b->money_before) ||
        policy_int(op, res, "credits", AMOUNT_MILLI_MAX, &b->has_credits, &b->credits)) {
        json_decref(res);
        return op->err->status != ENG_OK
                   ? op->err->status
                   : eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                                    "the pricing policy must return a table");
    }
    if (!has_before) {
        b->money_before = b->money;
    }
    const char *unit = json_string_value(json_object_get(res, "unit"));
    if (b->has_credits && (unit == NULL || (strcmp(unit, "hour") != 0 &&
                                            strcmp(unit, "coin") != 0))) {
        json_decref(res);
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the pricing policy must name the unit (hour or coin)");
    }
    snprintf(b->unit, sizeof b->unit, "%s", unit ? unit : "");
    json_decref(res);
    if (json_is_true(json_object_get(b->resource, "credit_only"))) {
        b->has_money = false;
    }
    return 0;
}

/* Quotes under a candidate policy version ({kind, source}) that is not
 * active: an admin tries a policy before uploading it. */
static int
candidate_set(struct op *op, json_t *cand, struct bk *b)
{
    static const char *const keys[] = {"kind", "source", NULL};
    const char *kind_s, *source;
    struct policy_candidate pc;
    if (!op_is_admin(op)) {
        return op_forbidden(op, "quote under a candidate policy");
    }
    if (args_only(op, cand, keys) || args_string(op, cand, "kind", true, 20, &kind_s) ||
        args_string(op, cand, "source", true, op->env->policy_source_max, &source)) {
        eng_error_field(op->err, "candidate");
        return op->err->status;
    }
    if (policy_kind_parse(kind_s, &pc.kind, NULL) != 0) {
        return op_invalid(op, "candidate.kind", "unknown policy kind '%.20s'", kind_s);
    }
    pc.source = source;
    pc.len = strlen(source);
    if (policy_cache_build(op->env->policies, op->store, b->building_id, &pc, &b->pol, b->versions, op->err) != 0) {
        return eng_error_recode(op->err, ENG_EREJECTED, "policy_error");
    }
    return 0;
}

static int
prepare(struct op *op, json_t *args, struct bk *b, bool booking)
{
    static const char *const qkeys[] = {"resource_id", "user_id", "start", "end",
                                        "discount_percent", "candidate", NULL};
    static const char *const bkeys[] = {"resource_id", "user_id", "start", "end",
                                        "discount_percent", "payment_method", NULL};
    int64_t discount = 0;
    if (args_only(op, args, booking ? bkeys : qkeys) ||
        args_id(op, args, "resource_id", "res", true, &b->resource_id) ||
        args_id(op, args, "user_id", "usr", op->who->role != ROLE_TENANT_USER, &b->user_id) ||
        args_time(op, args, "start", true, &b->start) || args_time(op, args, "end", true, &b->end) ||
        args_amount(op, args, "discount_percent", false, &discount) ||
        (booking && args_string(op, args, "payment_method", true, 10, &b->method))) {
        return op->err->status;
    }
    if (b->user_id == 0) {
        /* A tenant user books for themself unless they name themself. */
        b->user_id = op->who->user_id;
    }
    if (discount < 0 || discount > 100000) {
        return op_invalid(op, "discount_percent", "'discount_percent' must be from 0 to 100");
    }
    b->discount_pm = discount;
    if (b->end <= b->start) {
        return op_invalid(op, "end", "'end' must be after 'start'");
    }
    if ((b->end - b->start) / 60 > BOOKING_MINUTES_MAX || (b->end - b->start) % 60 != 0) {
        return op_invalid(op, "end", "a booking lasts whole minutes, at most a year");
    }
    if (b->method != NULL && strcmp(b->method, "credits") != 0 &&
        strcmp(b->method, "invoice") != 0 && strcmp(b->method, "card") != 0) {
        return op_invalid(op, "payment_method", "'payment_method' must be credits, invoice or card");
    }
    if (op->who->role == ROLE_VIEWER && booking) {
        return op_forbidden(op, "book");
    }
    int rc;
    b->user = ctx_user(&op->lx, b->user_id, &b->tenant_id, &rc);
    if (b->user == NULL) {
        return rc;
    }
    if (!op_sees_user(op, b->tenant_id, b->user_id)) {
        return op_not_found(op, "user");
    }
    if (load_resource(op, b) != 0) {
        return op->err->status;
    }
    if (!op_sees_building(op, b->building_id)) {
        return op_not_found(op, "resource");
    }
    b->tenant = ctx_tenant(&op->lx, b->tenant_id, &rc);
    if (b->tenant == NULL) {
        return rc;
    }
    json_t *cand = booking ? NULL : json_object_get(args, "candidate");
    if (cand != NULL) {
        if (candidate_set(op, cand, b) != 0) {
            return op->err->status;
        }
    } else if (policy_cache_get(op->env->policies, op->store, b->building_id, &b->pol, b->versions, op->err) != 0) {
        return op->err->status;
    }
    if (price(op, b) != 0) {
        return op->err->status;
    }
    if (b->has_credits && b->pay_credits) {
        rc = ledger_candidates(&op->lx, b->pol, b->user_id, b->tenant_id, b->user, b->tenant,
                               b->resource, b->unit, b->start, booking, false, &b->cands);
        for (int i = 0; rc == 0 && i < b->cands.count; i++) {
            b->unlimited |= b->cands.items[i].unlimited;
            b->available += b->cands.items[i].unlimited ? 0 : b->cands.items[i].balance;
        }
        return rc;
    }
    return 0;
}

static bool
credits_enough(const struct bk *b)
{
    return b->has_credits && b->pay_credits && (b->unlimited || b->available >= b->credits);
}

static json_t *
money_json(const struct bk *b)
{
    if (!b->has_money) {
        return json_null();
    }
    return json_pack("{s:I, s:s, s:I}", "amount", (json_int_t)b->money, "currency", b->currency,
                     "before_discount", (json_int_t)b->money_before);
}

static json_t *
methods_json(const struct bk *b)
{
    json_t *m = json_array();
    if (credits_enough(b)) {
        json_array_append_new(m, json_string("credits"));
    }
    if (b->has_money && b->pay_invoice) {
        json_array_append_new(m, json_string("invoice"));
    }
    if (b->has_money && b->pay_card) {
        json_array_append_new(m, json_string("card"));
    }
    return m;
}

static int
op_quote(struct op *op, json_t *args, json_t **out)
{
    struct bk b = {0};
    if (prepare(op, args, &b, false) != 0) {
        bk_free(&b);
        return op->err->status;
    }
    json_t *credits = json_null();
    /* A user without eligible credits sees only the money price. */
    if (b.has_credits && b.pay_credits && b.cands.count > 0) {
        credits = json_pack("{s:o, s:s, s:o, s:o}", "amount", amount_to_json(b.credits), "unit",
                            b.unit, "available",
                            b.unlimited ? json_string("unlimited") : amount_to_json(b.available),
                            "balance_after",
                            !credits_enough(&b) ? json_null()
                            : b.unlimited       ? json_string("unlimited")
                                                : amount_to_json(b.available - b.credits));
    }
    *out = json_pack("{s:o, s:o, s:o}", "money", money_json(&b), "credits", credits,
                     "payment_methods", methods_json(&b));
    bk_free(&b);
    return 0;
}

/* Orders b->cands by the order policy (validated to be a permutation). */
static int
order_lots(struct op *op, struct bk *b, int *order)
{
    json_t *lots = json_array();
    for (int i = 0; i < b->cands.count; i++) {
        const struct cand *c = &b->cands.items[i];
        json_t *lot = json_pack("{s:o, s:s, s:b, s:I, s:b, s:b, s:o, s:I, s:b, s:I}", "id",
                                id_json("lot", c->lot_id), "scope", c->scope, "per_user",
                                c->per_user, "valid_from", (json_int_t)c->valid_from, "recurring",
                                c->recurring, "rollover", c->rollover, "allocation_id",
                                id_json("alc", c->alloc_id), "allocation_seq",
                                (json_int_t)c->alloc_seq, "unlimited", c->unlimited, "balance",
                                (json_int_t)(c->unlimited ? 0 : c->balance));
        if (c->valid_until != TIME_NEVER) {
            json_object_set_new(lot, "valid_until", json_integer(c->valid_until));
        }
        json_array_append_new(lots, lot);
    }
    json_t *ctx = json_pack("{s:o, s:O, s:O}", "lots", lots, "booking", b->booking, "resource",
                            b->resource);
    json_t *res = NULL;
    int rc = policy_set_call(b->pol, POLICY_ORDER, ctx, &res, op->err);
    json_decref(ctx);
    if (rc != 0) {
        return rc;
    }
    bool *used = calloc((size_t)b->cands.count + 1, sizeof *used);
    if (used == NULL) {
        json_decref(res);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    bool ok = json_is_array(res) && json_array_size(res) == (size_t)b->cands.count;
    for (int k = 0; ok && k < b->cands.count; k++) {
        json_t *v = json_array_get(res, (size_t)k);
        int64_t id = 0;
        ok = json_is_string(v) && id_parse("lot", json_string_value(v), &id) == 0;
        int found = -1;
        for (int i = 0; ok && i < b->cands.count; i++) {
            if (b->cands.items[i].lot_id == id && !used[i]) {
                found = i;
            }
        }
        ok = ok && found >= 0;
        if (ok) {
            used[found] = true;
            order[k] = found;
        }
    }
    json_decref(res);
    free(used);
    if (!ok) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the order policy must return every lot id exactly once");
    }
    return 0;
}

static int
slot_free(struct op *op, const struct bk *b, bool *free_slot)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  /* By end time: only bookings ending after this one
                                   * starts are looked at, which stays a handful as the
                                   * history of a resource grows. */
                                  "SELECT 1 FROM booking INDEXED BY booking_slot WHERE"
                                  " resource_id = ?1 AND status = 'confirmed' AND end_at > ?3"
                                  " AND start_at < ?2 LIMIT 1",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, b->resource_id);
    sqlite3_bind_int64(st, 2, b->end);
    sqlite3_bind_int64(st, 3, b->start);
    *free_slot = sqlite3_step(st) != SQLITE_ROW;
    sqlite3_reset(st);
    return 0;
}

static int
insert_booking(struct op *op, const struct bk *b, bool credits, int64_t *id)
{
    sqlite3_stmt *st = store_prep(
        op->store,
        "INSERT INTO booking (resource_id, building_id, tenant_id, user_id, start_at, end_at,"
        " status, payment_method, unit, credits, money, money_before_discount, currency,"
        " discount_pm, policy_versions, created_at, created_by)"
        " VALUES (?,?,?,?,?,?,'confirmed',?,?,?,?,?,?,?,?,?,?)",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    json_t *versions = json_object();
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        json_object_set_new(versions, policy_kind_name((enum policy_kind)k),
                            json_string(b->versions[k]));
    }
    char *vtext = json_to_text(versions);
    json_decref(versions);
    sqlite3_bind_int64(st, 1, b->resource_id);
    sqlite3_bind_int64(st, 2, b->building_id);
    sqlite3_bind_int64(st, 3, b->tenant_id);
    sqlite3_bind_int64(st, 4, b->user_id);
    sqlite3_bind_int64(st, 5, b->start);
    sqlite3_bind_int64(st, 6, b->end);
    sqlite3_bind_text(st, 7, b->method, -1, SQLITE_STATIC);
    if (credits) {
        sqlite3_bind_text(st, 8, b->unit, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, b->credits);
    }
    if (b->has_money) {
        sqlite3_bind_int64(st, 10, b->money);
        sqlite3_bind_int64(st, 11, b->money_before);
    }
    sqlite3_bind_text(st, 12, b->currency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, b->discount_pm);
    sqlite3_bind_text(st, 14, vtext, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 15, op->now);
    sqlite3_bind_text(st, 16, op->who->name, -1, SQLITE_TRANSIENT);
    free(vtext);
    if (sql_step_done(op, st, "booking insert") != 0) {
        return ENG_ESTORE;
    }
    *id = sqlite3_last_insert_rowid(op->store->db);
    return 0;
}

/* Pays b->credits from the ordered lots, all or nothing (the caller has
 * checked there is enough). Debits are effective at the meeting's start:
 * usage belongs to the period the meeting happens in. */
static int
pay(struct op *op, struct bk *b, int64_t booking_id)
{
    int *order = calloc((size_t)b->cands.count + 1, sizeof *order);
    if (order == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (order_lots(op, b, order) != 0) {
        free(order);
        return op->err->status;
    }
    int64_t left = b->credits;
    for (int k = 0; k < b->cands.count && left > 0; k++) {
        struct cand *c = &b->cands.items[order[k]];
        int64_t take = c->unlimited ? left : (c->balance < left ? c->balance : left);
        if (take <= 0) {
            continue;
        }
        if (entry_post(&op->lx, c->lot_id, "debit", -take, b->start, booking_id, NULL,
                       b->versions[POLICY_PRICING], NULL) != 0) {
            free(order);
            return op->err->status;
        }
        c->take = take;
        left -= take;
    }
    free(order);
    ENG_ASSERT(left == 0);
    return 0;
}

/* The stored booking as the API shows it. */
static int
booking_load(struct op *op, int64_t id, json_t **out)
{
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT resource_id, building_id, tenant_id, user_id, start_at, end_at, status,"
        " payment_method, unit, credits, money, money_before_discount, currency, discount_pm,"
        " credits_refunded, money_refunded, policy_versions, created_at, cancelled_at,"
        " cancel_reason FROM booking WHERE id = ?",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return op_not_found(op, "booking");
    }
    int64_t tid = sqlite3_column_int64(st, 2), uid = sqlite3_column_int64(st, 3);
    int64_t bid = sqlite3_column_int64(st, 1);
    if (!op_sees_user(op, tid, uid) || !op_sees_tenant(op, tid) || !op_sees_building(op, bid)) {
        sqlite3_reset(st);
        return op_not_found(op, "booking");
    }
    json_t *money = json_null(), *credits = json_null();
    if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
        money = json_pack("{s:I, s:s, s:I}", "amount", (json_int_t)sqlite3_column_int64(st, 10),
                          "currency", (const char *)sqlite3_column_text(st, 12),
                          "before_discount", (json_int_t)sqlite3_column_int64(st, 11));
    }
    bool by_credits = strcmp((const char *)sqlite3_column_text(st, 7), "credits") == 0;
    if (by_credits) {
        credits = json_pack("{s:o, s:s, s:o}", "amount",
                            amount_to_json(sqlite3_column_int64(st, 9)), "unit",
                            (const char *)sqlite3_column_text(st, 8), "paid_from", json_array());
    }
    const char *reason = (const char *)sqlite3_column_text(st, 19);
    json_t *b = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:{s:o, s:I}}", "id",
        id_json("bkg", id), "resource_id", id_json("res", sqlite3_column_int64(st, 0)),
        "building_id", id_json("bld", bid), "tenant_id", id_json("ten", tid), "user_id",
        id_json("usr", uid), "start", json_time(sqlite3_column_int64(st, 4)), "end",
        json_time(sqlite3_column_int64(st, 5)), "status", (const char *)sqlite3_column_text(st, 6),
        "payment_method", (const char *)sqlite3_column_text(st, 7), "money", money, "credits",
        credits, "policy_versions", json_from_text((const char *)sqlite3_column_text(st, 16)),
        "created_at", json_time(sqlite3_column_int64(st, 17)), "refund", "credits",
        amount_to_json(sqlite3_column_int64(st, 14)), "money",
        (json_int_t)sqlite3_column_int64(st, 15));
    json_object_set_new(b, "cancelled_at", sqlite3_column_type(st, 18) == SQLITE_NULL
                                               ? json_null()
                                               : json_time(sqlite3_column_int64(st, 18)));
    json_object_set_new(b, "cancel_reason", reason ? json_string(reason) : json_null());
    sqlite3_reset(st);
    if (by_credits) {
        st = store_prep(op->store,
                        "SELECT lot_id, -amount FROM entry WHERE booking_id = ? AND kind = 'debit'"
                        " ORDER BY id",
                        op->err);
        if (st == NULL) {
            json_decref(b);
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, id);
        json_t *paid = json_object_get(json_object_get(b, "credits"), "paid_from");
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_array_append_new(paid, json_pack("{s:o, s:o}", "lot_id",
                                                  id_json("lot", sqlite3_column_int64(st, 0)),
                                                  "amount",
                                                  amount_to_json(sqlite3_column_int64(st, 1))));
        }
        sqlite3_reset(st);
    }
    *out = b;
    return 0;
}

static int
op_book(struct op *op, json_t *args, json_t **out)
{
    struct bk b = {0};
    int rc = prepare(op, args, &b, true);
    bool by_credits = b.method != NULL && strcmp(b.method, "credits") == 0;
    if (rc == 0 && op->who->role == ROLE_TENANT_USER && b.start < op->now) {
        rc = op_invalid(op, "start", "a booking cannot start in the past");
    }
    if (rc == 0 && by_credits && (!b.has_credits || !b.pay_credits)) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "credits_not_accepted",
                            "credits are not accepted for this resource");
    } else if (rc == 0 && !by_credits &&
               (!b.has_money || (strcmp(b.method, "invoice") == 0 ? !b.pay_invoice
                                                                  : !b.pay_card))) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "payment_method_not_accepted",
                            "payment by %s is not accepted for this resource", b.method);
    }
    bool free_slot = true;
    if (rc == 0 && slot_free(op, &b, &free_slot) == 0 && !free_slot) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "slot_taken",
                            "the resource is already booked at that time");
    }
    if (rc == 0 && by_credits && !credits_enough(&b)) {
        char need[32], have[32];
        amount_format(b.credits, need, sizeof need);
        amount_format(b.available, have, sizeof have);
        rc = eng_error_code(op->err, ENG_ECONFLICT, "insufficient_credits",
                            "this booking costs %s %s credits; %s are available", need, b.unit,
                            have);
    }
    int64_t id = 0;
    if (rc == 0) {
        rc = insert_booking(op, &b, by_credits, &id);
    }
    if (rc == 0 && by_credits) {
        rc = pay(op, &b, id);
    }
    if (rc == 0) {
        rc = booking_load(op, id, out);
    }
    if (rc == 0 && by_credits) {
        json_object_set_new(json_object_get(*out, "credits"), "balance_after",
                            b.unlimited ? json_string("unlimited")
                                        : amount_to_json(b.available - b.credits));
    }
    bk_free(&b);
    if (rc == 0) {
        op->created = true;
    }
    return rc;
}

/* Returns `credits` to the lots the booking was paid from, last paid first;
 * a lot that has already expired takes the refund and expires it again at
 * once, so the ledger shows both. */
static int
refund_lots(struct op *op, int64_t booking_id, int64_t start, int64_t credits,
            const char *version)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT e.lot_id, -e.amount, l.closed OR l.valid_until <= ?,"
                                  " l.unlimited FROM entry e JOIN lot l ON l.id = e.lot_id"
                                  " WHERE e.booking_id = ? AND e.kind = 'debit' ORDER BY e.id DESC",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, op->now);
    sqlite3_bind_int64(st, 2, booking_id);
    enum { PARTS_MAX = 256 }; /* TRANSITIONAL: the store module will stream these */
    int64_t lots[PARTS_MAX], paid[PARTS_MAX];
    bool expired[PARTS_MAX];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < PARTS_MAX) {
        lots[n] = sqlite3_column_int64(st, 0);
        paid[n] = sqlite3_column_int64(st, 1);
        expired[n] = sqlite3_column_int(st, 2) != 0 && sqlite3_column_int(st, 3) == 0;
        n++;
    }
    sqlite3_reset(st);
    int64_t left = credits;
    for (int i = 0; i < n && left > 0; i++) {
        int64_t r = paid[i] < left ? paid[i] : left;
        char key[64];
        snprintf(key, sizeof key, "refund:%lld:%lld", (long long)booking_id, (long long)lots[i]);
        if (entry_post(&op->lx, lots[i], "refund", r, start, booking_id, key, version, NULL) != 0) {
            return op->err->status;
        }
        if (expired[i]) {
            snprintf(key, sizeof key, "reexpire:%lld:%lld", (long long)booking_id,
                     (long long)lots[i]);
            if (entry_post(&op->lx, lots[i], "expire", -r, op->now, booking_id, key, NULL,
                           "refund into an expired lot") != 0) {
                return op->err->status;
            }
        }
        left -= r;
    }
    ENG_ASSERT(left == 0);
    return 0;
}

static int
op_cancel(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", "reason", NULL};
    int64_t id;
    const char *reason;
    json_t *booking = NULL;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bkg", true, &id) ||
        args_string(op, args, "reason", false, 500, &reason) || booking_load(op, id, &booking)) {
        return op->err->status;
    }
    int rc = 0;
    if (op->who->role == ROLE_VIEWER) {
        rc = op_forbidden(op, "cancel bookings");
    } else if (strcmp(json_string_value(json_object_get(booking, "status")), "confirmed") != 0) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "already_cancelled",
                            "the booking is already cancelled");
    }
    sqlite3_stmt *st = rc == 0 ? store_prep(op->store,
                                            "SELECT building_id, start_at, end_at, payment_method,"
                                            " credits, money, created_at, resource_id FROM booking"
                                            " WHERE id = ?",
                                            op->err)
                               : NULL;
    if (rc == 0 && st == NULL) {
        rc = ENG_ESTORE;
    }
    int64_t bid = 0, start = 0, paid_credits = 0, paid_money = 0;
    json_t *ctx = NULL;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        (void)sqlite3_step(st);
        bid = sqlite3_column_int64(st, 0);
        start = sqlite3_column_int64(st, 1);
        bool by_credits = strcmp((const char *)sqlite3_column_text(st, 3), "credits") == 0;
        paid_credits = by_credits ? sqlite3_column_int64(st, 4) : 0;
        paid_money = by_credits ? 0 : sqlite3_column_int64(st, 5);
        ctx = json_pack("{s:{s:o, s:I, s:I, s:s, s:I, s:I, s:I}, s:I, s:{s:s, s:b}}", "booking",
                        "id", id_json("bkg", id), "start", (json_int_t)start, "end",
                        (json_int_t)sqlite3_column_int64(st, 2), "payment_method",
                        (const char *)sqlite3_column_text(st, 3), "credits",
                        (json_int_t)paid_credits, "money", (json_int_t)paid_money, "created_at",
                        (json_int_t)sqlite3_column_int64(st, 6), "now", (json_int_t)op->now,
                        "by", "role", role_name(op->who->role), "admin", op_can_assign(op));
        int64_t rid = sqlite3_column_int64(st, 7);
        sqlite3_reset(st);
        struct bk rb = {.resource_id = rid};
        rc = load_resource(op, &rb);
        if (rc == 0) {
            json_object_set(ctx, "resource", rb.resource);
        }
        bk_free(&rb);
    }
    struct policy_set *pol = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    json_t *res = NULL;
    if (rc == 0) {
        rc = policy_cache_get(op->env->policies, op->store, bid, &pol, versions, op->err);
    }
    if (rc == 0) {
        rc = policy_set_call(pol, POLICY_REFUND, ctx, &res, op->err);
    }
    json_decref(ctx);
    json_t *rc_credits = rc == 0 ? json_object_get(res, "credits") : NULL;
    json_t *rc_money = rc == 0 ? json_object_get(res, "money") : NULL;
    int64_t r_credits = json_is_integer(rc_credits) ? (int64_t)json_integer_value(rc_credits) : -1;
    int64_t r_money = rc_money == NULL || json_is_null(rc_money) ? 0
                      : json_is_integer(rc_money) ? (int64_t)json_integer_value(rc_money)
                                                  : -1;
    if (rc == 0 && (r_credits < 0 || r_credits > paid_credits || r_money < 0 ||
                    r_money > paid_money)) {
        rc = eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                            "the refund policy must return {credits, money} between 0 and what "
                            "was paid");
    }
    json_decref(res);
    if (rc == 0 && r_credits > 0) {
        rc = refund_lots(op, id, start, r_credits, versions[POLICY_REFUND]);
    }
    if (pol != NULL) {
        policy_set_release(pol);
    }
    st = rc == 0 ? store_prep(op->store,
                              "UPDATE booking SET status = 'cancelled', credits_refunded = ?,"
                              " money_refunded = ?, cancelled_at = ?, cancelled_by = ?,"
                              " cancel_reason = ?, cancelled_by_admin = ? WHERE id = ?",
                              op->err)
                 : NULL;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, r_credits);
        sqlite3_bind_int64(st, 2, r_money);
        sqlite3_bind_int64(st, 3, op->now);
        sqlite3_bind_text(st, 4, op->who->name, -1, SQLITE_TRANSIENT);
        if (reason != NULL) {
            sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int(st, 6, op_can_assign(op));
        sqlite3_bind_int64(st, 7, id);
        rc = sql_step_done(op, st, "booking cancel");
    } else if (rc == 0) {
        rc = ENG_ESTORE;
    }
    json_decref(booking);
    booking = NULL;
    if (rc == 0) {
        rc = booking_load(op, id, &booking);
    }
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:o, s:{s:o, s:I}}", "booking", booking, "refund", "credits",
                     amount_to_json(r_credits), "money", (json_int_t)r_money);
    return 0;
}

static int
op_booking_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bkg", true, &id)) {
        return op->err->status;
    }
    return booking_load(op, id, out);
}

static int
op_booking_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", "user_id", "resource_id",
                                       "building_id", "from", "to", "status", NULL};
    int64_t tid, uid, rid, bid, from = INT64_MIN, to = INT64_MAX;
    const char *status;
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &tid) ||
        args_id(op, args, "user_id", "usr", false, &uid) ||
        args_id(op, args, "resource_id", "res", false, &rid) ||
        args_id(op, args, "building_id", "bld", false, &bid) ||
        args_string(op, args, "status", false, 20, &status) || args_page(op, args, &page)) {
        return op->err->status;
    }
    char zone[TIME_ZONE_NAME_MAX];
    bound_zone(op, bid, zone);
    if (args_bound(op, args, "from", zone, false, &from) ||
        args_bound(op, args, "to", zone, true, &to)) {
        return op->err->status;
    }
    if (op->who->role == ROLE_TENANT_ADMIN) {
        tid = op->who->tenant_id;
    } else if (op->who->role == ROLE_TENANT_USER) {
        tid = op->who->tenant_id;
        uid = op->who->user_id;
    }
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT id FROM booking WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2) AND"
        " (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR resource_id = ?4) AND"
        " (?5 IS NULL OR building_id = ?5) AND start_at < ?7 AND end_at > ?6 AND"
        " (?8 IS NULL OR status = ?8) ORDER BY id LIMIT ?9",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, page.after);
    int64_t filters[] = {tid, uid, rid, bid};
    for (int i = 0; i < 4; i++) {
        if (filters[i] != 0) {
            sqlite3_bind_int64(st, i + 2, filters[i]);
        }
    }
    sqlite3_bind_int64(st, 6, from);
    sqlite3_bind_int64(st, 7, to);
    if (status != NULL) {
        sqlite3_bind_text(st, 8, status, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 9, page.limit + 1);
    return page_of_ids(op, st, &page, booking_load, out);
}

/* ---------- simulation ---------- */

/* A date (midnight in the building's zone) or an RFC 3339 time. */
static int
sim_instant(struct op *op, json_t *args, const char *key, const char *zone, int64_t *out)
{
    const char *s;
    struct civil_date d;
    if (args_string(op, args, key, true, 40, &s) != 0) {
        return op->err->status;
    }
    if (date_parse(s, &d, NULL) == 0) {
        return tz_local_midnight(zone, d, out, op->err);
    }
    return args_time(op, args, key, true, out);
}

struct sim_totals {
    int64_t charged, candidate, refunded, candidate_refund;
    int count, refused, errors;
};

/* What the candidate would have done for one stored booking. */
static json_t *
sim_booking(struct op *op, sqlite3_stmt *st, enum policy_kind kind, struct policy_set *pol,
            struct sim_totals *t)
{
    struct bk b = {0};
    struct eng_error saved = *op->err;
    int64_t id = sqlite3_column_int64(st, 0);
    b.resource_id = sqlite3_column_int64(st, 1);
    b.user_id = sqlite3_column_int64(st, 2);
    b.start = sqlite3_column_int64(st, 3);
    b.end = sqlite3_column_int64(st, 4);
    b.method = (const char *)sqlite3_column_text(st, 5);
    bool by_credits = strcmp(b.method, "credits") == 0;
    int64_t credits = sqlite3_column_int64(st, 6), money = sqlite3_column_int64(st, 7);
    b.discount_pm = sqlite3_column_int64(st, 8);
    bool cancelled = strcmp((const char *)sqlite3_column_text(st, 9), "cancelled") == 0;
    int64_t refunded = sqlite3_column_int64(st, 10);
    json_t *row = json_pack("{s:o, s:o, s:s, s:s, s:{s:o, s:I}}", "booking_id",
                            id_json("bkg", id), "start", json_time(b.start), "payment_method",
                            b.method, "status", cancelled ? "cancelled" : "confirmed", "charged",
                            "credits", by_credits ? amount_to_json(credits) : json_null(),
                            "money", (json_int_t)money);
    int rc;
    policy_set_retain(pol);
    b.pol = pol;
    b.user = ctx_user(&op->lx, b.user_id, &b.tenant_id, &rc);
    if (b.user != NULL && load_resource(op, &b) == 0) {
        if (kind == POLICY_REFUND) {
            json_t *ctx = json_pack(
                "{s:{s:o, s:I, s:I, s:s, s:I, s:I, s:I}, s:I, s:{s:s, s:b}, s:O}", "booking", "id",
                id_json("bkg", id), "start", (json_int_t)b.start, "end", (json_int_t)b.end,
                "payment_method", b.method, "credits", (json_int_t)(by_credits ? credits : 0),
                "money", (json_int_t)(by_credits ? 0 : money), "created_at",
                (json_int_t)sqlite3_column_int64(st, 11), "now",
                (json_int_t)sqlite3_column_int64(st, 12), "by", "role", "recorded", "admin",
                sqlite3_column_int(st, 13) != 0, "resource", b.resource);
            json_t *res = NULL;
            if (cancelled && policy_set_call(pol, POLICY_REFUND, ctx, &res, op->err) == 0) {
                json_t *c = json_object_get(res, "credits");
                int64_t would = json_is_integer(c) ? (int64_t)json_integer_value(c) : 0;
                json_object_set_new(row, "refunded", amount_to_json(refunded));
                json_object_set_new(row, "candidate_refund", amount_to_json(would));
                t->refunded += refunded;
                t->candidate_refund += would;
            } else if (cancelled) {
                json_object_set_new(row, "error", json_string(op->err->msg));
                t->errors++;
            }
            json_decref(ctx);
            json_decref(res);
        } else if (price(op, &b) == 0) {
            json_object_set_new(row, "candidate",
                                json_pack("{s:o, s:o}", "credits",
                                          b.has_credits ? amount_to_json(b.credits) : json_null(),
                                          "money", b.has_money ? json_integer(b.money)
                                                               : json_null()));
            if (by_credits) {
                t->charged += credits;
                t->candidate += b.has_credits ? b.credits : 0;
            }
        } else {
            bool refused = op->err->status == ENG_EINVAL;
            json_object_set_new(row, refused ? "refused" : "error", json_string(op->err->msg));
            t->refused += refused;
            t->errors += !refused;
        }
    }
    bk_free(&b);
    *op->err = saved;
    t->count++;
    return row;
}

/* Runs a candidate over the building's past bookings; writes nothing. */
static int
op_simulate(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", "source", "from", "to", NULL};
    int64_t bid, from, to;
    const char *kind_s, *source;
    struct policy_candidate pc;
    if (op_require_admin(op) || args_only(op, args, keys) ||
        args_id(op, args, "building_id", "bld", true, &bid) ||
        args_string(op, args, "kind", true, 20, &kind_s) ||
        args_string(op, args, "source", true, op->env->policy_source_max, &source)) {
        return op->err->status;
    }
    char zone[TIME_ZONE_NAME_MAX] = "UTC";
    sqlite3_stmt *st = store_prep(op->store, "SELECT timezone FROM building WHERE id = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        snprintf(zone, sizeof zone, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_reset(st);
    if (!found || !op_sees_building(op, bid)) {
        return op_not_found(op, "building");
    }
    if (policy_kind_parse(kind_s, &pc.kind, NULL) != 0 ||
        (pc.kind != POLICY_PRICING && pc.kind != POLICY_REFUND && pc.kind != POLICY_VALIDATE)) {
        return op_invalid(op, "kind", "simulation covers the pricing, refund and validate kinds");
    }
    if (sim_instant(op, args, "from", zone, &from) || sim_instant(op, args, "to", zone, &to)) {
        return op->err->status;
    }
    pc.source = source;
    pc.len = strlen(source);
    struct policy_set *pol = NULL;
    if (policy_cache_build(op->env->policies, op->store, bid, &pc, &pol, NULL, op->err) != 0) {
        return eng_error_recode(op->err, ENG_EREJECTED, "policy_error");
    }
    st = store_prep(op->store,
                    "SELECT id, resource_id, user_id, start_at, end_at, payment_method,"
                    " coalesce(credits, 0), coalesce(money, 0), discount_pm, status,"
                    " credits_refunded, created_at, coalesce(cancelled_at, 0),"
                    " coalesce(cancelled_by_admin, 0) FROM booking WHERE building_id = ? AND"
                    " start_at >= ? AND start_at < ? ORDER BY start_at, id LIMIT 10000",
                    op->err);
    if (st == NULL) {
        policy_set_release(pol);
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    /* The policy calls below use other cached statements, never this one. */
    json_t *rows = json_array();
    struct sim_totals t = {0};
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(rows, sim_booking(op, st, pc.kind, pol, &t));
    }
    sqlite3_reset(st);
    policy_set_release(pol);
    *out = json_pack("{s:o, s:s, s:{s:i, s:o, s:o, s:o, s:o, s:i, s:i}, s:o}", "building_id",
                     id_json("bld", bid), "kind", kind_s, "totals", "bookings", t.count,
                     "charged_credits", amount_to_json(t.charged), "candidate_credits",
                     amount_to_json(t.candidate), "refunded_credits", amount_to_json(t.refunded),
                     "candidate_refund_credits", amount_to_json(t.candidate_refund), "refused",
                     t.refused, "errors", t.errors, "bookings", rows);
    return 0;
}

const struct op_def ops_booking[] = {
    {"quotes.create", op_quote, false},
    {"bookings.create", op_book, true},
    {"bookings.cancel", op_cancel, true},
    {"bookings.get", op_booking_get, false},
    {"bookings.list", op_booking_list, false},
    {"policies.simulate", op_simulate, false},
    {NULL, NULL, false},
};
