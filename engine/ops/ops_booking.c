/* ops_booking.c - quotes, bookings and cancellations (PRODUCT.md §4, §5).
 *
 * A quote and a booking share one preparation: load the resource, building
 * and user, run the validate and pricing policies, decide which payment
 * methods are on offer, and find the lots that could pay.  The quote stops
 * there (read-only: lots that do not exist yet are virtual); the booking
 * creates them, checks the slot, pays greedily in the order policy's order,
 * and writes the booking and its debits in the caller's transaction. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocations.h"
#include "amount.h"
#include "bookings.h"
#include "ledger.h"
#include "ops.h"
#include "portfolio.h"
#include "quote_info.h"
#include "generation.h"
#include "lots.h"
#include "usage.h"

#define BOOKING_MINUTES_MAX (366 * 24 * 60)

struct bk {
    int64_t resource_id, building_id, user_id, tenant_id;
    int64_t start, end, discount_pm;
    const char *method;
    json_t *resource, *building, *user, *tenant;
    struct policy_set *pol;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    bool has_money, has_credits;
    int64_t money, money_before, credits;
    char unit[8], currency[8];
    bool pay_credits, pay_invoice, pay_card;
    struct cand_list cands;
    int64_t available;
    bool unlimited;
    bool backdate; /* an operator books a start in the past on purpose */
    bool archived; /* the resource is archived: no new bookings */
    int *order; /* cands indexes in the order policy's order (plan_takes) */
    /* What validate and pricing saw as user_usage_month, and its key;
     * usage_read false: no policy looked at it (ctx.user_usage_month is
     * read lazily), so no answer depends on it. */
    int64_t usage;
    int usage_key;
    char usage_unit[8];
    bool usage_read;
    const char *usage_zone; /* the building's zone (b->building holds it) */
    struct civil_time local_start; /* b->start in the building's zone ... */
    bool local_known;              /* ... once computed */
    /* The first change of that zone's offset during the booking (DST):
     * jump_after real minutes after the start, local time moves by
     * jump_minutes; jump_after < 0 when there is none. */
    int64_t jump_after, jump_minutes;
    /* Computed on a read snapshot for the writer (op_book_plan): lots are
     * not created, only seen as they would be. */
    bool planning;
    bool usage_given; /* price with b->usage as it is (plan_reprice) */
    char *versions_text; /* versions_json as stored, made ahead; NULL: not yet */
    int usage_zones; /* zones with usage counters, read by the writer's
                        re-check (0: not read; store/entries.h) */
};

static void
bk_free(struct bk *b)
{
    json_decref(b->resource);
    json_decref(b->building);
    json_decref(b->user);
    json_decref(b->tenant);
    if (b->pol != NULL) {
        policy_set_release(b->pol);
    }
    cand_list_free(&b->cands);
    free(b->order);
    free(b->versions_text);
}

/* Answers are built member by member with our own ASCII keys (no UTF-8
 * check of each key, no format string to parse as json_pack does), in the
 * order API.md shows them.  set() takes v, also when it fails or o is NULL,
 * so a chain of them leaks nothing; any failure makes the sum non-zero. */
static int
set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new_nocheck(o, key, v) != 0;
}

/* Fills b->resource, b->building and the building's payment settings from
 * the resource b->resource_id (kept for the generation on a read snapshot:
 * ledger/entities.h). */
static int
load_resource(struct op *op, struct bk *b)
{
    struct ledger_resource r;
    bool found = false;
    if (ledger_resource_get(&op->lx, b->resource_id, &r, &found) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "resource");
    }
    b->building_id = r.building_id;
    b->archived = r.archived;
    b->resource = r.ctx;
    b->building = r.building;
    _Static_assert(sizeof b->currency == sizeof r.currency, "currency buffers differ");
    memcpy(b->currency, r.currency, sizeof b->currency);
    b->pay_credits = r.pay_credits;
    b->pay_invoice = r.pay_invoice;
    b->pay_card = r.pay_card;
    return 0;
}

/* What price() reads of validate's and pricing's results, picked straight
 * from the Lua stack (policy_set_call_parts_pick): no JSON per quote. */
enum { PICK_ERROR, PICK_MONEY, PICK_BEFORE, PICK_CREDITS, PICK_UNIT, PICK_COUNT };
static const char *const price_picks[PICK_COUNT] = {"error", "money", "money_before_discount",
                                                    "credits", "unit"};

/* A policy result that refuses with {error = "..."}: a 400. */
static int
refused(struct op *op, const struct policy_pick *res)
{
    const struct policy_pick_field *msg = &res->fields[PICK_ERROR];
    if (res->shape == POLICY_PICK_OBJECT && msg->type != POLICY_PICK_ABSENT) {
        return op_invalid(op, "", "%s",
                          msg->type == POLICY_PICK_STRING ? msg->text : "refused by policy");
    }
    return 0;
}

/* Between validate and pricing: a refusal stops the sequence. */
static bool
not_refused(void *ud, enum policy_kind kind, const struct policy_pick *result)
{
    (void)ud;
    (void)kind;
    return !(result->shape == POLICY_PICK_OBJECT &&
             result->fields[PICK_ERROR].type != POLICY_PICK_ABSENT);
}

static int
policy_int(struct op *op, const struct policy_pick *res, int field, int64_t max, bool *has,
           int64_t *out)
{
    const struct policy_pick_field *v = &res->fields[field];
    *has = v->type != POLICY_PICK_ABSENT;
    if (!*has) {
        return 0;
    }
    if (v->type != POLICY_PICK_INTEGER || v->integer < 0 || v->integer > max) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the pricing policy returned an invalid '%s' (an integer from 0 "
                              "to %lld is required)",
                              price_picks[field], (long long)max);
    }
    *out = v->integer;
    return 0;
}

/* Credits (milli, net of refunds) the user has spent from shared lots in
 * the unit the resource is priced in, on meetings in the calendar month of
 * `lt` (the building's zone): what a per-user quota inside a tenant pool
 * needs (validate's ctx.user_usage_month).  Here only its key is set; the
 * counter itself (one row, store/usage.c, whatever the user's history) is
 * read by usage_read, when a policy looks at the field. */
static void
usage_key_set(struct bk *b, const char *zone, const struct civil_time *lt)
{
    json_t *credits = json_object_get(json_object_get(b->resource, "pricing"), "credits");
    const char *unit = json_string_value(json_object_get(credits, "unit"));
    unit = unit != NULL ? unit : "hour";
    /* Kept for the writer's re-check; a plan whose unit does not fit ("")
     * is not applied when its policies read the usage. */
    b->usage_unit[0] = '\0';
    if (strlen(unit) < sizeof b->usage_unit) {
        memcpy(b->usage_unit, unit, strlen(unit) + 1);
    }
    b->usage_key = lt->year * 100 + lt->month;
    b->usage_zone = zone;
}

struct usage_reader {
    struct op *op;
    struct bk *b;
};

/* ctx.user_usage_month on first use (policy_lazy_fn): the counter, or
 * b->usage as given (plan_reprice). */
static int
usage_read(void *ud, int64_t *value, struct eng_error *err)
{
    struct usage_reader *r = ud;
    struct bk *b = r->b;
    if (!b->usage_given) {
        json_t *credits = json_object_get(json_object_get(b->resource, "pricing"), "credits");
        const char *unit = json_string_value(json_object_get(credits, "unit"));
        if (store_usage_get(r->op->store, b->user_id, unit != NULL ? unit : "hour",
                            b->usage_zone, b->usage_key, &b->usage, err) != 0) {
            return err->status;
        }
    }
    *value = b->usage;
    return 0;
}

/* The start in the building's zone (b->local_start), and the usage key. */
static int
booking_local(struct op *op, struct bk *b)
{
    const char *zone = json_string_value(json_object_get(b->building, "timezone"));
    if (tz_local_time(zone, b->start, &b->local_start, op->err) != 0) {
        return op->err->status;
    }
    usage_key_set(b, zone, &b->local_start);
    b->local_known = true;
    b->jump_after = -1;
    b->jump_minutes = 0;
    int64_t before = 0, after = 0, until = 0, next = 0;
    if (tz_offset_until(zone, b->start, &before, &until, op->err) != 0) {
        return op->err->status;
    }
    /* Spans may end where the offset stays (a new abbreviation): a few
     * steps at most within a booking's days. */
    for (int i = 0; i < 16 && until < b->end; i++, until = next) {
        if (tz_offset_until(zone, until, &after, &next, op->err) != 0) {
            return op->err->status;
        }
        if (after != before) {
            b->jump_after = (until - b->start) / 60;
            b->jump_minutes = (after - before) / 60;
            break;
        }
    }
    return 0;
}

/* The booking part of the policies' contexts (validate, pricing, order),
 * from C values: no JSON.  Points into b; valid while b is. */
struct booking_parts {
    struct policy_ctx_part local_start[6];
    struct policy_ctx_part local_jump[2];
    struct policy_ctx_part booking[7];
    int booking_count; /* 7 with local_jump, else 6 */
};

#define BK_INT(key, v) {.name = key, .is_integer = true, .integer = (v)}

static void
booking_parts_make(const struct bk *b, struct booking_parts *bp)
{
    const struct civil_time *lt = &b->local_start;
    const struct booking_parts made = {
        .local_start = {BK_INT("year", lt->year), BK_INT("month", lt->month),
                        BK_INT("day", lt->day), BK_INT("hour", lt->hour),
                        BK_INT("minute", lt->minute), BK_INT("wday", lt->wday)},
        .booking = {BK_INT("start", b->start), BK_INT("end", b->end),
                    BK_INT("minutes", (b->end - b->start) / 60),
                    {.name = "local_start", .count = 6},
                    BK_INT("discount_pm", b->discount_pm),
                    {.name = "payment_method", .string = b->method},
                    {.name = "local_jump", .count = 2}},
        .local_jump = {BK_INT("after", b->jump_after), BK_INT("minutes", b->jump_minutes)},
    };
    *bp = made;
    bp->booking[3].fields = bp->local_start;
    bp->booking[6].fields = bp->local_jump;
    bp->booking_count = b->local_known && b->jump_after >= 0 ? 7 : 6;
}

/* Runs validate and pricing (one entry into the policy state) on the
 * context they see: booking, resource, user, building, now and the lazy
 * user_usage_month.  On a read snapshot that knows its portfolio
 * generation, the resource, building and user are the same JSON for the
 * same (id, generation) (ledger/entities.h), so the policy state keeps
 * them converted, read-only (policy_host.h, policy_ctx_part). */
static int
price_call(struct op *op, struct bk *b, struct policy_pick out[2])
{
    /* keep {0, 0} without a generation: nothing would tell one version of
     * an entity from another (the writer's own transaction, say). */
    int64_t gen = op->lx.cache != NULL ? op->lx.cache_gen : 0;
    struct booking_parts bp;
    booking_parts_make(b, &bp);
    const struct policy_ctx_part parts[] = {
        {.name = "booking", .fields = bp.booking, .count = bp.booking_count},
        {.name = "resource", .value = b->resource, .keep = {gen != 0 ? b->resource_id : 0, gen}},
        {.name = "user", .value = b->user, .keep = {gen != 0 ? b->user_id : 0, gen}},
        {.name = "building", .value = b->building, .keep = {gen != 0 ? b->building_id : 0, gen}},
        {.name = "now", .is_integer = true, .integer = op->now},
    };
    struct usage_reader reader = {op, b};
    struct policy_ctx ctx = {.parts = parts, .count = (int)(sizeof parts / sizeof parts[0]),
                             .lazy_name = "user_usage_month", .lazy = usage_read,
                             .lazy_ud = &reader};
    static const enum policy_kind kinds[2] = {POLICY_VALIDATE, POLICY_PRICING};
    for (int i = 0; i < 2; i++) {
        out[i].names = price_picks;
        out[i].count = PICK_COUNT;
        out[i].shape = POLICY_PICK_NULL; /* a call not made */
    }
    int rc = policy_set_call_parts_pick(b->pol, kinds, 2, &ctx, not_refused, NULL, out, op->err);
    b->usage_read = ctx.lazy_read;
    return rc;
}

/* Runs validate and pricing; fills the price fields of b. */
static int
price(struct op *op, struct bk *b)
{
    if (!b->local_known && booking_local(op, b) != 0) {
        return op->err->status;
    }
    struct policy_pick out[2];
    int rc = price_call(op, b, out) != 0 ? op->err->status : refused(op, &out[0]);
    const struct policy_pick *res = &out[1];
    if (rc == 0) {
        rc = refused(op, res);
    }
    if (rc != 0) {
        return rc;
    }
    bool has_before = false;
    /* An empty Lua table (JSON []) is no price of either kind. */
    if ((res->shape != POLICY_PICK_OBJECT && res->shape != POLICY_PICK_EMPTY) ||
        policy_int(op, res, PICK_MONEY, INT64_C(1) << 50, &b->has_money, &b->money) ||
        policy_int(op, res, PICK_BEFORE, INT64_C(1) << 50, &has_before, &b->money_before) ||
        policy_int(op, res, PICK_CREDITS, AMOUNT_MILLI_MAX, &b->has_credits, &b->credits)) {
        return op->err->status != ENG_OK
                   ? op->err->status
                   : eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                                    "the pricing policy must return a table");
    }
    /* policies/README.md §7: unknown keys fail closed, as a wrong type
     * does (a misspelt field must not silently price nothing). */
    for (int i = 0; i < 2; i++) {
        if (out[i].shape == POLICY_PICK_OBJECT && out[i].unknown[0] != '\0' &&
            (i == 1 || strcmp(out[i].unknown, "error") != 0)) {
            return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                                  "the %s policy returned an unknown key '%s'",
                                  i == 0 ? "validate" : "pricing", out[i].unknown);
        }
    }
    if (!has_before) {
        b->money_before = b->money;
    }
    if (b->has_money && b->money_before < b->money) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the pricing policy returned money_before_discount (%lld) below "
                              "money (%lld): a discount never raises a price",
                              (long long)b->money_before, (long long)b->money);
    }
    const struct policy_pick_field *unit = &res->fields[PICK_UNIT];
    if (b->has_credits && (unit->type != POLICY_PICK_STRING ||
                           (strcmp(unit->text, "hour") != 0 && strcmp(unit->text, "coin") != 0))) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the pricing policy must name the unit (hour or coin)");
    }
    /* Checked above to be hour or coin whenever it is used. */
    snprintf(b->unit, sizeof b->unit, "%.*s", (int)sizeof b->unit - 1,
             b->has_credits ? unit->text : "");
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

/* discount_percent (milli-percent), 0 when absent.  PRODUCT.md §8: only
 * super_admin and manager give discounts; from anyone else the field itself
 * is refused with 403 (a pricing policy may still discount). */
static int
args_discount(struct op *op, json_t *args, int64_t *discount_pm)
{
    *discount_pm = 0;
    if (args_amount(op, args, "discount_percent", false, discount_pm) != 0) {
        return op->err->status;
    }
    if (*discount_pm < 0 || *discount_pm > 100000) {
        return op_invalid(op, "discount_percent", "'discount_percent' must be from 0 to 100");
    }
    json_t *v = json_object_get(args, "discount_percent");
    if (v != NULL && !json_is_null(v) && !op_can_assign(op)) {
        return op_forbidden(op, "set discount_percent");
    }
    return 0;
}

/* PRODUCT.md §8: a booking that starts in the past is refused unless a
 * super_admin or manager sends "backdate": true; from anyone else the field
 * set to true is refused with 403, like discount_percent. */
static int
args_backdate(struct op *op, json_t *args, bool *backdate)
{
    if (args_bool(op, args, "backdate", false, backdate) != 0) {
        return op->err->status;
    }
    if (*backdate && !op_can_assign(op)) {
        return op_forbidden(op, "backdate bookings (super_admin or manager)");
    }
    return 0;
}

/* PRODUCT.md §8: tenant principals quote and book only resources in
 * buildings their tenant leases (op_check_reaches), or that its
 * cross-building credits reach (a lot of a cross-building allocation may pay
 * here), whatever the payment method.  Out of reach reads as out of scope:
 * 404. */
static int
tenant_reach(struct op *op, const struct bk *b, bool resource_reached)
{
    if (op_is_admin(op) || resource_reached) {
        return 0;
    }
    /* Not leased: only a lot of a cross-building allocation of a tenant
     * with cross-building booking may bring it within reach (an allocation
     * still listing a building the tenant no longer leases does not). */
    if (!json_is_true(json_object_get(b->tenant, "cross_building"))) {
        return op_not_found(op, "resource");
    }
    for (int i = 0; i < b->cands.count; i++) {
        struct ledger_alloc *e = NULL;
        const struct alloc *a = NULL;
        if (ledger_alloc_get(&op->lx, b->cands.items[i].alloc_id, &e, &a) != 0) {
            return op->err->status;
        }
        bool cross = a->cross_building;
        ledger_alloc_release(e);
        if (cross) {
            return 0;
        }
    }
    return op_not_found(op, "resource");
}

static int
prepare(struct op *op, json_t *args, struct bk *b, bool booking)
{
    static const char *const qkeys[] = {"resource_id", "user_id", "start", "end",
                                        "discount_percent", "candidate", NULL};
    static const char *const bkeys[] = {"resource_id", "user_id", "start", "end",
                                        "discount_percent", "payment_method", "backdate", NULL};
    if (args_only(op, args, booking ? bkeys : qkeys) ||
        args_id(op, args, "resource_id", "res", true, &b->resource_id) ||
        args_id(op, args, "user_id", "usr", op->who->role != ROLE_TENANT_USER, &b->user_id) ||
        args_time(op, args, "start", true, &b->start) || args_time(op, args, "end", true, &b->end) ||
        args_discount(op, args, &b->discount_pm) ||
        (booking && args_string(op, args, "payment_method", true, 10, &b->method)) ||
        (booking && args_backdate(op, args, &b->backdate))) {
        return op->err->status;
    }
    if (b->user_id == 0) {
        /* A tenant user books for themself unless they name themself. */
        b->user_id = op->who->user_id;
    }
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
    /* A candidate policy is unreviewed code: manager and above, like a
     * simulation (PRODUCT.md §9); refused before any object is looked at. */
    if (!booking && json_object_get(args, "candidate") != NULL && !op_can_assign(op)) {
        return op_forbidden(op, "quote under a candidate policy (manager or super_admin)");
    }
    int rc;
    b->user = ctx_user(&op->lx, b->user_id, &b->tenant_id, &rc);
    if (b->user == NULL) {
        return rc;
    }
    bool sees = false;
    if (op_check_sees_user(op, b->tenant_id, b->user_id, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "user");
    }
    if (load_resource(op, b) != 0) {
        return op->err->status;
    }
    /* The resource in scope: for an admin key, its building; for a tenant
     * principal, a building the tenant leases, or else one its
     * cross-building credits reach (tenant_reach, once they are known). */
    bool reached = op_reaches_all(op); /* the resource exists: it was just loaded */
    if (!reached && op_check_reaches(op, OP_OBJ_RESOURCE, b->resource_id, &reached) != 0) {
        return op->err->status;
    }
    if (!reached && op_is_admin(op)) {
        return op_not_found(op, "resource");
    }
    b->tenant = ctx_tenant(&op->lx, b->tenant_id, &rc);
    if (b->tenant == NULL) {
        return rc;
    }
    /* Out of reach before any policy runs (a policy's answer must not tell
     * an unreachable resource from an unknown one) unless cross-building
     * credits may yet reach it. */
    if (!reached && !json_is_true(json_object_get(b->tenant, "cross_building"))) {
        return op_not_found(op, "resource");
    }
    if (b->archived) {
        return eng_error_code(op->err, ENG_ECONFLICT, "resource_archived",
                              "this resource is archived: it takes no new bookings");
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
                               b->resource, b->unit, b->start, booking && !b->planning, false,
                               &b->cands);
        for (int i = 0; rc == 0 && i < b->cands.count; i++) {
            b->unlimited |= b->cands.items[i].unlimited;
            b->available += b->cands.items[i].unlimited ? 0 : b->cands.items[i].balance;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return tenant_reach(op, b, reached);
}

static bool
credits_enough(const struct bk *b)
{
    /* Some eligible lot, even for a price of 0: credits are offered to a
     * user who has them (PRODUCT.md §4, S12), never to one who has none. */
    return b->has_credits && b->pay_credits && b->cands.count > 0 &&
           (b->unlimited || b->available >= b->credits);
}

/* {amount, currency, before_discount}; NULL without memory. */
static json_t *
money_object(int64_t amount, const char *currency, int64_t before)
{
    json_t *m = json_object();
    int bad = set(m, "amount", json_integer(amount)) + set(m, "currency", json_string(currency)) +
              set(m, "before_discount", json_integer(before));
    if (bad != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static json_t *
money_json(const struct bk *b)
{
    if (!b->has_money) {
        return json_null();
    }
    return money_object(b->money, b->currency, b->money_before);
}

static json_t *
methods_json(const struct bk *b)
{
    json_t *m = json_array();
    int bad = 0;
    if (credits_enough(b)) {
        bad += json_array_append_new(m, json_string_nocheck("credits")) != 0;
    }
    if (b->has_money && b->pay_invoice) {
        bad += json_array_append_new(m, json_string_nocheck("invoice")) != 0;
    }
    if (b->has_money && b->pay_card) {
        bad += json_array_append_new(m, json_string_nocheck("card")) != 0;
    }
    if (bad != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* ---------- answers as text ----------
 *
 * For a caller that sends the answer on as JSON text (engine_exec_text:
 * the HTTP face), a quote's and a new booking's answers are written
 * straight into op->text, member by member, as the bytes json_out renders
 * of the tree the functions beside them build (same members, same order,
 * amounts as amount_to_json's values render): no tree is built, rendered
 * and freed.  tests/c/test_answers.c runs the same requests through both
 * and compares the bytes. */

/* money_object's text, or null. */
static void
money_text(struct json_buf *t, bool has, int64_t amount, const char *currency, int64_t before)
{
    if (!has) {
        JSON_BUF_LIT(t, "null");
        return;
    }
    JSON_BUF_LIT(t, "{\"amount\":");
    json_buf_int(t, amount);
    JSON_BUF_LIT(t, ",\"currency\":");
    json_buf_string(t, currency);
    JSON_BUF_LIT(t, ",\"before_discount\":");
    json_buf_int(t, before);
    JSON_BUF_LIT(t, "}");
}

/* methods_json's text. */
static void
methods_text(struct json_buf *t, const struct bk *b)
{
    const bool on[3] = {credits_enough(b), b->has_money && b->pay_invoice,
                        b->has_money && b->pay_card};
    static const char *const names[3] = {"\"credits\"", "\"invoice\"", "\"card\""};
    bool first = true;
    JSON_BUF_LIT(t, "[");
    for (int i = 0; i < 3; i++) {
        if (on[i]) {
            if (!first) {
                JSON_BUF_LIT(t, ",");
            }
            first = false;
            json_buf_put(t, names[i], strlen(names[i]));
        }
    }
    JSON_BUF_LIT(t, "]");
}

/* "unlimited", or the amount. */
static void
balance_text(struct json_buf *t, bool unlimited, int64_t milli)
{
    if (unlimited) {
        JSON_BUF_LIT(t, "\"unlimited\"");
    } else {
        json_buf_amount(t, milli);
    }
}

/* What quote_credits_reason is told about the quote b. */
static void
quote_facts(const struct bk *b, struct quote_credit_facts *f)
{
    *f = (struct quote_credit_facts){
        .pol = b->pol, .user_id = b->user_id, .tenant_id = b->tenant_id, .user = b->user,
        .tenant = b->tenant, .resource = b->resource, .building = b->building,
        .priced_in_credits = b->has_credits, .building_accepts = b->pay_credits,
        .unit = b->unit, .start = b->start, .credits = b->credits,
        .candidates = b->cands.count, .available = b->available, .unlimited = b->unlimited,
    };
}

/* The quote b's answer as quote_tree builds it, written into op->text. */
static int
quote_text(struct op *op, struct bk *b)
{
    struct json_buf *t = op->text;
    JSON_BUF_LIT(t, "{\"money\":");
    money_text(t, b->has_money, b->money, b->currency, b->money_before);
    JSON_BUF_LIT(t, ",\"credits\":");
    if (b->has_credits && b->pay_credits && b->cands.count > 0) {
        JSON_BUF_LIT(t, "{\"amount\":");
        json_buf_amount(t, b->credits);
        JSON_BUF_LIT(t, ",\"unit\":");
        json_buf_string(t, b->unit);
        JSON_BUF_LIT(t, ",\"available\":");
        balance_text(t, b->unlimited, b->available);
        JSON_BUF_LIT(t, ",\"balance_after\":");
        if (!credits_enough(b)) {
            JSON_BUF_LIT(t, "null");
        } else {
            balance_text(t, b->unlimited, b->available - b->credits);
        }
        JSON_BUF_LIT(t, "}");
    } else {
        JSON_BUF_LIT(t, "null");
    }
    JSON_BUF_LIT(t, ",\"payment_methods\":");
    methods_text(t, b);
    struct quote_credit_facts facts;
    quote_facts(b, &facts);
    json_t *why = NULL;
    int rc = quote_credits_reason(op, &facts, &why);
    if (rc != 0) {
        return rc;
    }
    JSON_BUF_LIT(t, ",\"credits_unavailable_reason\":");
    if (why != NULL) {
        json_buf_value(t, why);
        json_decref(why);
    } else {
        JSON_BUF_LIT(t, "null");
    }
    JSON_BUF_LIT(t, ",\"slot\":");
    rc = quote_slot_text(op, b->resource_id, b->start, b->end, t);
    if (rc != 0) {
        return rc;
    }
    JSON_BUF_LIT(t, "}");
    if (t->failed) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    op->text_given = true;
    return 0;
}

/* The quote b's answer as a tree. */
static int
quote_tree(struct op *op, struct bk *b, json_t **out)
{
    json_t *credits = json_null();
    /* A user without eligible credits sees only the money price. */
    if (b->has_credits && b->pay_credits && b->cands.count > 0) {
        credits = json_object();
        /* b.unit is "hour" or "coin" (price checks it): ASCII. */
        int bad = set(credits, "amount", amount_to_json(b->credits)) +
                  set(credits, "unit", json_string_nocheck(b->unit)) +
                  set(credits, "available", b->unlimited ? json_string_nocheck("unlimited")
                                                         : amount_to_json(b->available)) +
                  set(credits, "balance_after",
                      !credits_enough(b) ? json_null()
                      : b->unlimited     ? json_string_nocheck("unlimited")
                                         : amount_to_json(b->available - b->credits));
        if (bad != 0) {
            json_decref(credits);
            credits = NULL;
        }
    }
    *out = credits == NULL ? NULL : json_object();
    if (*out != NULL && set(*out, "money", money_json(b)) + set(*out, "credits", credits) +
                                set(*out, "payment_methods", methods_json(b)) !=
                            0) {
        json_decref(*out);
        *out = NULL;
    } else if (*out == NULL) {
        json_decref(credits);
    }
    /* Beside the prices: why credits cannot pay, and whether the slot is
     * free (quote_info.c). */
    struct quote_credit_facts facts;
    quote_facts(b, &facts);
    json_t *why = NULL, *slot = NULL;
    int rc = *out == NULL ? eng_error_set(op->err, ENG_ENOMEM, "out of memory")
                          : quote_credits_reason(op, &facts, &why);
    if (rc == 0) {
        rc = quote_slot(op, b->resource_id, b->start, b->end, &slot);
    }
    if (rc == 0 && json_object_set_new(*out, "credits_unavailable_reason",
                                       why != NULL ? why : json_null()) != 0) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    } else if (rc != 0) {
        json_decref(why);
    }
    /* set_new takes slot, even when it fails. */
    if (rc == 0 && json_object_set_new(*out, "slot", slot) != 0) {
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

static int
op_quote(struct op *op, json_t *args, json_t **out)
{
    struct bk b = {0};
    if (prepare(op, args, &b, false) != 0) {
        bk_free(&b);
        return op->err->status;
    }
    int rc = op->text != NULL ? quote_text(op, &b) : quote_tree(op, &b, out);
    bk_free(&b);
    return rc;
}

/* One lot of the order policy's ctx.lots, from C values. */
#define LOT_PARTS 11
struct lot_parts {
    char id[48], alloc_id[48];
    struct policy_ctx_part f[LOT_PARTS];
};

static void
lot_parts_make(const struct cand *c, struct lot_parts *lp)
{
    id_format("lot", c->lot_id, lp->id, sizeof lp->id);
    id_format("alc", c->alloc_id, lp->alloc_id, sizeof lp->alloc_id);
    const struct policy_ctx_part f[LOT_PARTS] = {
        {.name = "id", .string = lp->id},
        {.name = "scope", .string = c->scope},
        {.name = "per_user", .value = c->per_user ? json_true() : json_false()},
        BK_INT("valid_from", c->valid_from),
        {.name = "recurring", .value = c->recurring ? json_true() : json_false()},
        {.name = "rollover", .value = c->rollover ? json_true() : json_false()},
        {.name = "allocation_id", .string = lp->alloc_id},
        BK_INT("allocation_seq", c->alloc_seq),
        {.name = "unlimited", .value = c->unlimited ? json_true() : json_false()},
        BK_INT("balance", c->unlimited ? 0 : c->balance),
        /* Absent (no is_integer) when the lot never expires. */
        {.name = "valid_until", .is_integer = c->valid_until != TIME_NEVER,
         .integer = c->valid_until},
    };
    memcpy(lp->f, f, sizeof f);
}

/* Orders b->cands by the order policy (validated to be a permutation). */
static int
order_lots(struct op *op, struct bk *b, int *order)
{
    /* The shipped default order policy (policies/default/order.lua, by its
     * hash) is not called: its order is computed in C (ledger_default_order,
     * the same permutation; tests/c/test_lot_order.c compares them).
     * Any other order policy is called. */
    if (strcmp(b->versions[POLICY_ORDER], LEDGER_DEFAULT_ORDER_LABEL) == 0 &&
        ledger_default_order(b->cands.items, b->cands.count, order)) {
        return 0;
    }
    /* The context as parts (policy_host.h): the lots and the booking from C
     * values, the resource kept per Lua state like validate's and
     * pricing's (price_call). */
    if (!b->local_known && booking_local(op, b) != 0) {
        return op->err->status; /* price() made it already, on every path */
    }
    int n = b->cands.count;
    struct lot_parts *lp = calloc((size_t)n + 1, sizeof *lp);
    struct policy_ctx_part *lots = calloc((size_t)n + 1, sizeof *lots);
    if (lp == NULL || lots == NULL) {
        free(lp);
        free(lots);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        lot_parts_make(&b->cands.items[i], &lp[i]);
        lots[i] = (struct policy_ctx_part){.fields = lp[i].f, .count = LOT_PARTS};
    }
    struct booking_parts bp;
    booking_parts_make(b, &bp);
    int64_t gen = op->lx.cache != NULL ? op->lx.cache_gen : 0;
    const struct policy_ctx_part parts[] = {
        {.name = "lots", .fields = lots, .count = n},
        {.name = "booking", .fields = bp.booking, .count = bp.booking_count},
        {.name = "resource", .value = b->resource, .keep = {gen != 0 ? b->resource_id : 0, gen}},
    };
    struct policy_ctx ctx = {.parts = parts, .count = 3};
    json_t *res = NULL;
    static const enum policy_kind kind = POLICY_ORDER;
    int rc = policy_set_call_parts(b->pol, &kind, 1, &ctx, NULL, NULL, &res, op->err);
    free(lots);
    free(lp);
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

/* {kind: version label} of the policies b ran under; NULL without memory. */
static json_t *
versions_json(const struct bk *b)
{
    json_t *versions = json_object();
    for (int k = 0; versions != NULL && k < POLICY_KIND_COUNT; k++) {
        if (json_object_set_new_nocheck(versions, policy_kind_name((enum policy_kind)k),
                                        json_string(b->versions[k])) != 0) {
            json_decref(versions);
            versions = NULL;
        }
    }
    return versions;
}

/* versions_json(b) as compact JSON text (what the booking row stores),
 * malloc'd; NULL without memory.  Written by hand: the labels are our own
 * ("v3:1a2b...", "default:...", "file:...", "candidate:..."), so they need
 * no escaping; one that would goes through jansson instead. */
static char *
versions_text(const struct bk *b)
{
    size_t len = 2;
    bool plain = true;
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        len += strlen(policy_kind_name((enum policy_kind)k)) + strlen(b->versions[k]) + 6;
        for (const char *c = b->versions[k]; *c != '\0'; c++) {
            plain = plain && *c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\';
        }
    }
    if (!plain) {
        json_t *versions = versions_json(b);
        char *text = versions != NULL ? json_to_text(versions) : NULL;
        json_decref(versions);
        return text;
    }
    char *text = malloc(len + 1);
    if (text == NULL) {
        return NULL;
    }
    size_t at = 0;
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        const char *name = policy_kind_name((enum policy_kind)k);
        size_t nl = strlen(name), vl = strlen(b->versions[k]);
        text[at++] = k == 0 ? '{' : ',';
        text[at++] = '"';
        memcpy(text + at, name, nl);
        at += nl;
        memcpy(text + at, "\":\"", 3);
        at += 3;
        memcpy(text + at, b->versions[k], vl);
        at += vl;
        text[at++] = '"';
    }
    text[at++] = '}';
    text[at] = '\0';
    return text;
}

/* The booking row to write for b, with the policy versions it ran under. */
static int
insert_booking(struct op *op, const struct bk *b, bool credits, int64_t *id)
{
    char *vtext = b->versions_text != NULL ? b->versions_text : versions_text(b);
    if (vtext == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    struct booking_new nb = {
        .resource_id = b->resource_id,
        .building_id = b->building_id,
        .tenant_id = b->tenant_id,
        .user_id = b->user_id,
        .start_at = b->start,
        .end_at = b->end,
        .payment_method = b->method,
        .unit = credits ? b->unit : NULL,
        .has_credits = credits,
        .credits = b->credits,
        .has_money = b->has_money,
        .money = b->money,
        .money_before_discount = b->money_before,
        .currency = b->currency,
        .discount_pm = b->discount_pm,
        .policy_versions = vtext,
        .created_at = op->now,
        .created_by = op->who->name,
    };
    int rc = store_booking_insert(op->store, &nb, id, op->err);
    if (vtext != b->versions_text) {
        free(vtext);
    }
    return rc;
}

/* Decides what each lot pays (c->take) of b->credits, in the order
 * policy's order (kept in b->order), all or nothing: the caller has checked
 * there is enough.  Writes nothing. */
static int
plan_takes(struct op *op, struct bk *b)
{
    free(b->order);
    b->order = calloc((size_t)b->cands.count + 1, sizeof *b->order);
    if (b->order == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (order_lots(op, b, b->order) != 0) {
        return op->err->status;
    }
    int64_t left = b->credits;
    for (int k = 0; k < b->cands.count; k++) {
        struct cand *c = &b->cands.items[b->order[k]];
        int64_t take = c->unlimited ? left : (c->balance < left ? c->balance : left);
        c->take = take > 0 ? take : 0;
        left -= c->take;
    }
    ENG_ASSERT(left == 0);
    return 0;
}

/* Posts the debits plan_takes decided; `taken`: the lots were already
 * moved (take_planned), only the entries are left.  Debits are effective
 * at the meeting's start: usage belongs to the period the meeting happens
 * in. */
static int
post_takes(struct op *op, const struct bk *b, int64_t booking_id, bool taken)
{
    for (int k = 0; k < b->cands.count; k++) {
        const struct cand *c = &b->cands.items[b->order[k]];
        if (c->take <= 0) {
            continue;
        }
        /* The usage counters' facts are the booking's and the lot's
         * (owner 0: a shared lot), known here: not read again; so are the
         * lot's tenant and unit (a candidate is a lot of the booking's
         * tenant in the booking's unit), written with the entry. */
        struct entry_usage usage = {b->user_id, b->start, b->unit, c->owner == 0,
                                    b->usage_zones, b->tenant_id};
        int rc = taken ? debit_post_taken(&op->lx, c->lot_id, c->take, b->start, booking_id,
                                          b->versions[POLICY_PRICING], &usage)
                       : entry_post(&op->lx, c->lot_id, "debit", -c->take, b->start,
                                    booking_id, NULL, b->versions[POLICY_PRICING], NULL);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

struct paid_ud {
    struct op *op;
    json_t *paid;
};

/* {lot_id, amount}: one lot's part of a booking's price. */
static json_t *
paid_part(int64_t lot_id, int64_t amount)
{
    json_t *part = json_object();
    if (set(part, "lot_id", id_json("lot", lot_id)) + set(part, "amount", amount_to_json(amount)) !=
        0) {
        json_decref(part);
        return NULL;
    }
    return part;
}

static int
paid_add(void *ud, const struct booking_debit *d)
{
    struct paid_ud *p = ud;
    json_t *part = paid_part(d->lot_id, d->amount);
    if (part == NULL || json_array_append_new(p->paid, part) != 0) {
        return eng_error_set(p->op->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

/* The credits part of a booking paid by credits, with the lots it was paid
 * from: `paid` (taken) when the caller has the list, else read. */
static int
credits_json(struct op *op, const struct booking_row *row, json_t *paid, json_t **out)
{
    struct paid_ud p = {op, paid != NULL ? paid : json_array()};
    *out = NULL;
    if (p.paid == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    int rc = paid != NULL ? 0
                          : store_booking_debits_each(op->store, row->id, op->now, false,
                                                      paid_add, &p, op->err);
    if (rc != 0) {
        json_decref(p.paid);
        return rc;
    }
    *out = json_object();
    if (set(*out, "amount", amount_to_json(row->credits)) + set(*out, "unit", json_string(row->unit)) +
            set(*out, "paid_from", p.paid) !=
        0) {
        json_decref(*out);
        *out = NULL;
    }
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* A stored booking as the API shows it; `paid` as for credits_json (taken
 * either way). */
static int
booking_json_paid(struct op *op, const struct booking_row *row, json_t *paid, json_t **out)
{
    json_t *money = json_null(), *credits = json_null();
    *out = NULL;
    if (row->has_money) {
        money = money_object(row->money, row->currency, row->money_before_discount);
    }
    bool by_credits = strcmp(row->payment_method, "credits") == 0;
    if (!by_credits) {
        json_decref(paid);
    }
    if (by_credits && credits_json(op, row, paid, &credits) != 0) {
        json_decref(money);
        return op->err->status;
    }
    json_t *refund = json_object();
    int bad = set(refund, "credits", amount_to_json(row->credits_refunded)) +
              set(refund, "money", json_integer(row->money_refunded));
    json_t *b = json_object();
    /* status and payment_method are the engine's own words (the schema's
     * CHECKs), so ASCII; the cancel reason is the client's text. */
    bad += set(b, "id", id_json("bkg", row->id)) +
           set(b, "resource_id", id_json("res", row->resource_id)) +
           set(b, "building_id", id_json("bld", row->building_id)) +
           set(b, "tenant_id", id_json("ten", row->tenant_id)) +
           set(b, "user_id", id_json("usr", row->user_id)) +
           set(b, "start", json_time(row->start_at)) + set(b, "end", json_time(row->end_at)) +
           set(b, "status", json_string(row->status)) +
           set(b, "payment_method", json_string(row->payment_method)) +
           set(b, "money", money) + set(b, "credits", credits) +
           set(b, "policy_versions", json_incref(row->policy_versions)) +
           set(b, "created_at", json_time(row->created_at)) + set(b, "refund", refund) +
           set(b, "cancelled_at", row->cancelled ? json_time(row->cancelled_at) : json_null()) +
           set(b, "cancel_reason",
               row->has_reason ? json_string(row->cancel_reason) : json_null());
    if (bad != 0) {
        json_decref(b);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = b;
    return 0;
}

static int
booking_json(struct op *op, const struct booking_row *row, json_t **out)
{
    return booking_json_paid(op, row, NULL, out);
}

/* The booking `id` when the principal may see it (else 404). */
static int
booking_get(struct op *op, int64_t id, struct booking_row *row)
{
    bool found = false, reaches = false;
    memset(row, 0, sizeof *row);
    if (op_check_reaches(op, OP_OBJ_BOOKING, id, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "booking");
    }
    if (store_booking_get(op->store, id, row, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        store_booking_clear(row);
        return op_not_found(op, "booking");
    }
    return 0;
}

static int
booking_load(struct op *op, int64_t id, json_t **out)
{
    struct booking_row row;
    int rc = booking_get(op, id, &row);
    if (rc == 0) {
        rc = booking_json(op, &row, out);
        store_booking_clear(&row);
    }
    return rc;
}

/* Refuses the booking unless b's payment method is on offer, the slot is
 * free and (by credits) there is enough to pay. */
static int
book_check(struct op *op, struct bk *b, bool by_credits)
{
    if (b->start < op->now && !b->backdate) {
        return op_invalid(op, "start", "start is in the past (an operator may book it with "
                                       "\"backdate\": true)");
    }
    if (by_credits && (!b->has_credits || !b->pay_credits)) {
        return eng_error_code(op->err, ENG_ECONFLICT, "credits_not_accepted",
                              "credits are not accepted for this resource");
    }
    if (!by_credits && (!b->has_money || (strcmp(b->method, "invoice") == 0 ? !b->pay_invoice
                                                                            : !b->pay_card))) {
        return eng_error_code(op->err, ENG_ECONFLICT, "payment_method_not_accepted",
                              "payment by %s is not accepted for this resource", b->method);
    }
    /* A failed check is an error, never a free slot.  A plan does not look:
     * the writer re-checks the slot in its own transaction before applying
     * it (plan_holds), and a slot taken by then sends the booking to the
     * full path, which refuses it there as it would have been here. */
    bool taken = !b->planning;
    if (!b->planning && store_booking_slot_taken(op->store, b->resource_id, b->start, b->end,
                                                 &taken, op->err) != 0) {
        return op->err->status;
    }
    if (taken) {
        return eng_error_code(op->err, ENG_ECONFLICT, "slot_taken",
                              "the resource is already booked at that time");
    }
    if (by_credits && !credits_enough(b) && b->cands.count == 0) {
        eng_error_code(op->err, ENG_ECONFLICT, "insufficient_credits",
                       "no %s credits of this user can pay for this resource", b->unit);
        eng_error_details(op->err, "\"needed\":0,\"available\":0,\"unit\":\"%s\"", b->unit);
        if (b->credits > 0) {
            char need[32];
            amount_format(b->credits, need, sizeof need);
            eng_error_details(op->err, "\"needed\":%s,\"available\":0,\"unit\":\"%s\"", need,
                              b->unit);
        }
        return op->err->status;
    }
    if (by_credits && !credits_enough(b)) {
        char need[32], have[32];
        amount_format(b->credits, need, sizeof need);
        amount_format(b->available, have, sizeof have);
        eng_error_code(op->err, ENG_ECONFLICT, "insufficient_credits",
                       "this booking costs %s %s credits; %s are available", need, b->unit,
                       have);
        /* The figures the quote gives too (its details): no client need
         * read them out of the sentence. */
        eng_error_details(op->err, "\"needed\":%s,\"available\":%s,\"unit\":\"%s\"", need,
                          have, b->unit);
        return op->err->status;
    }
    return 0;
}

/* The booking b just written as `id`, as the API shows it: built from
 * what was written, not read back. */
static int
written_json(struct op *op, const struct bk *b, int64_t id, bool by_credits, json_t **out)
{
    struct booking_row row = {
        .id = id,
        .resource_id = b->resource_id,
        .building_id = b->building_id,
        .tenant_id = b->tenant_id,
        .user_id = b->user_id,
        .start_at = b->start,
        .end_at = b->end,
        .status = "confirmed",
        .has_credits = by_credits,
        .credits = b->credits,
        .has_money = b->has_money,
        .money = b->money,
        .money_before_discount = b->money_before,
        .discount_pm = b->discount_pm,
        .created_at = op->now,
    };
    _Static_assert(sizeof row.currency == sizeof b->currency, "currency buffers differ");
    _Static_assert(sizeof row.unit == sizeof b->unit, "unit buffers differ");
    snprintf(row.payment_method, sizeof row.payment_method, "%s", b->method);
    memcpy(row.currency, b->currency, sizeof row.currency);
    if (by_credits) {
        memcpy(row.unit, b->unit, sizeof row.unit);
    }
    json_t *paid = by_credits ? json_array() : NULL;
    for (int k = 0; paid != NULL && k < b->cands.count; k++) {
        const struct cand *c = &b->cands.items[b->order[k]];
        if (c->take > 0 && json_array_append_new(paid, paid_part(c->lot_id, c->take)) != 0) {
            json_decref(paid);
            paid = NULL;
        }
    }
    row.policy_versions = versions_json(b);
    if ((by_credits && paid == NULL) || row.policy_versions == NULL) {
        json_decref(paid);
        json_decref(row.policy_versions);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    int rc = booking_json_paid(op, &row, paid, out);
    json_decref(row.policy_versions);
    if (rc == 0 && by_credits &&
        json_object_set_new(json_object_get(*out, "credits"), "balance_after",
                            b->unlimited ? json_string("unlimited")
                                         : amount_to_json(b->available - b->credits)) != 0) {
        json_decref(*out);
        *out = NULL;
        rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    return rc;
}

/* The booking b just written as `id`, as written_json builds it, written
 * into op->text. */
static int
written_text(struct op *op, const struct bk *b, int64_t id, bool by_credits)
{
    struct json_buf *t = op->text;
    JSON_BUF_LIT(t, "{\"id\":");
    json_buf_id(t, "bkg", id);
    JSON_BUF_LIT(t, ",\"resource_id\":");
    json_buf_id(t, "res", b->resource_id);
    JSON_BUF_LIT(t, ",\"building_id\":");
    json_buf_id(t, "bld", b->building_id);
    JSON_BUF_LIT(t, ",\"tenant_id\":");
    json_buf_id(t, "ten", b->tenant_id);
    JSON_BUF_LIT(t, ",\"user_id\":");
    json_buf_id(t, "usr", b->user_id);
    JSON_BUF_LIT(t, ",\"start\":");
    json_buf_time(t, b->start);
    JSON_BUF_LIT(t, ",\"end\":");
    json_buf_time(t, b->end);
    JSON_BUF_LIT(t, ",\"status\":\"confirmed\",\"payment_method\":");
    json_buf_string(t, b->method);
    JSON_BUF_LIT(t, ",\"money\":");
    money_text(t, b->has_money, b->money, b->currency, b->money_before);
    JSON_BUF_LIT(t, ",\"credits\":");
    if (by_credits) {
        JSON_BUF_LIT(t, "{\"amount\":");
        json_buf_amount(t, b->credits);
        JSON_BUF_LIT(t, ",\"unit\":");
        json_buf_string(t, b->unit);
        JSON_BUF_LIT(t, ",\"paid_from\":[");
        bool first = true;
        for (int k = 0; k < b->cands.count; k++) {
            const struct cand *c = &b->cands.items[b->order[k]];
            if (c->take > 0) {
                if (!first) {
                    JSON_BUF_LIT(t, ",");
                }
                first = false;
                JSON_BUF_LIT(t, "{\"lot_id\":");
                json_buf_id(t, "lot", c->lot_id);
                JSON_BUF_LIT(t, ",\"amount\":");
                json_buf_amount(t, c->take);
                JSON_BUF_LIT(t, "}");
            }
        }
        JSON_BUF_LIT(t, "],\"balance_after\":");
        balance_text(t, b->unlimited, b->available - b->credits);
        JSON_BUF_LIT(t, "}");
    } else {
        JSON_BUF_LIT(t, "null");
    }
    /* versions_json's members in kind order: the row's text when the plan
     * made it (versions_text: the same bytes), else written here. */
    if (b->versions_text != NULL) {
        JSON_BUF_LIT(t, ",\"policy_versions\":");
        json_buf_put(t, b->versions_text, strlen(b->versions_text));
    }
    for (int k = 0; b->versions_text == NULL && k < POLICY_KIND_COUNT; k++) {
        const char *name = policy_kind_name((enum policy_kind)k);
        if (k == 0) {
            JSON_BUF_LIT(t, ",\"policy_versions\":{\"");
        } else {
            JSON_BUF_LIT(t, ",\"");
        }
        json_buf_put(t, name, strlen(name));
        JSON_BUF_LIT(t, "\":");
        json_buf_string(t, b->versions[k]);
    }
    if (b->versions_text == NULL) {
        JSON_BUF_LIT(t, "}");
    }
    JSON_BUF_LIT(t, ",\"created_at\":");
    json_buf_time(t, op->now);
    /* A new booking: nothing refunded, not cancelled. */
    JSON_BUF_LIT(t, ",\"refund\":{\"credits\":0,\"money\":0},\"cancelled_at\":null,"
                    "\"cancel_reason\":null}");
    if (t->failed) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    op->text_given = true;
    return 0;
}

/* The answer of the booking b just written as `id`: as text when the
 * caller takes text (op->text), else as a tree in *out. */
static int
written_answer(struct op *op, const struct bk *b, int64_t id, bool by_credits, json_t **out)
{
    if (op->text != NULL) {
        return written_text(op, b, id, by_credits);
    }
    return written_json(op, b, id, by_credits, out);
}

/* Writes the booking b decided (row, debits; `taken` as for post_takes)
 * and builds its answer. */
static int
book_write(struct op *op, struct bk *b, bool by_credits, bool taken, json_t **out)
{
    int64_t id = 0;
    int rc = insert_booking(op, b, by_credits, &id);
    if (rc == 0 && by_credits) {
        rc = post_takes(op, b, id, taken);
    }
    if (rc == 0) {
        rc = written_answer(op, b, id, by_credits, out);
    }
    if (rc == 0) {
        op->created = true;
    }
    return rc;
}

/* ---------- bookings computed outside the writer ----------
 *
 * op_book_plan runs on the caller's thread against a read snapshot: the
 * whole preparation (entity loads, access, validate and pricing with the
 * month's usage, eligibility, the order policy, what each lot pays) with
 * lots seen but not created.  The writer then applies the plan only when
 * everything it read still holds (book_planned), and otherwise computes the
 * booking afresh exactly as without a plan: the plan can make a booking
 * cheaper for the writer, never different. */
static atomic_long plans_made, plans_applied, plans_recomputed, plans_repriced, plans_short;

void
ops_plan_stats(struct ops_plan_stats *st)
{
    st->made = atomic_load(&plans_made);
    st->applied = atomic_load(&plans_applied);
    st->recomputed = atomic_load(&plans_recomputed);
    st->repriced = atomic_load(&plans_repriced);
    st->short_lots = atomic_load(&plans_short);
}

struct book_plan {
    struct bk b;
    bool by_credits;
    int64_t generation, now;
    int64_t written_id; /* the booking the writer wrote from this plan, whose
                           answer op_book_plan_finish builds; 0: none */
    bool stale; /* repriced to another price: never applied (a batch run
                   again must not find the new price beside the old takes) */
};

static void
op_book_plan_free(void *plan)
{
    struct book_plan *p = plan;
    if (p != NULL) {
        bk_free(&p->b);
        free(p);
    }
}

static int
op_book_plan(struct op *op, json_t *args, void **out)
{
    *out = NULL;
    struct book_plan *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    p->b.planning = true;
    p->now = op->now;
    /* Read first: the snapshot starts here. */
    int rc = store_generation_get(op->store, &p->generation, op->err);
    if (rc == 0) {
        op->lx.cache_gen = op->lx.cache != NULL ? p->generation : 0; /* read once */
        rc = prepare(op, args, &p->b, true);
    }
    p->by_credits = p->b.method != NULL && strcmp(p->b.method, "credits") == 0;
    if (rc == 0) {
        rc = book_check(op, &p->b, p->by_credits);
    }
    if (rc == 0 && p->by_credits) {
        rc = plan_takes(op, &p->b);
    }
    for (int i = 0; rc == 0 && p->by_credits && i < p->b.cands.count; i++) {
        /* A lot the booking would create: left to the writer. */
        rc = p->b.cands.items[i].take > 0 && p->b.cands.items[i].lot_id == 0 ? ENG_ECONFLICT : 0;
    }
    if (rc == 0 && p->b.usage_read && p->b.usage_unit[0] == '\0') {
        rc = ENG_ECONFLICT;
    }
    if (rc == 0) {
        /* The row's text is made here, not in the writer. */
        p->b.versions_text = versions_text(&p->b);
        rc = p->b.versions_text != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        /* A refusal or a failure is the writer's to give: no plan. */
        op_book_plan_free(p);
        return rc;
    }
    *out = p;
    atomic_fetch_add(&plans_made, 1);
    return 0;
}

/* The month's usage moved since the plan (another booking of the user):
 * validate and pricing run again with the usage as it is now.  Nothing else
 * the plan decided depends on it (eligibility and order do not see it), so
 * the plan still holds when validate accepts again and the price is the
 * same; otherwise (*same false) the booking is computed afresh. */
static int
plan_reprice(struct op *op, struct bk *b, int64_t usage, bool *same)
{
    struct bk was = *b;
    struct eng_error saved = *op->err;
    *same = false;
    b->usage = usage;
    b->usage_given = true;
    int rc = price(op, b);
    if (rc != 0) {
        bool fatal = rc == ENG_ESTORE || rc == ENG_ENOMEM;
        if (!fatal) {
            *op->err = saved; /* the full path gives the refusal */
        }
        return fatal ? rc : 0;
    }
    *same = b->has_money == was.has_money && b->money == was.money &&
            b->money_before == was.money_before && b->has_credits == was.has_credits &&
            b->credits == was.credits && strcmp(b->unit, was.unit) == 0;
    if (*same) {
        atomic_fetch_add(&plans_repriced, 1);
    }
    return 0;
}

/* Whether plan p still holds in the writer's transaction: nothing it read
 * has changed but lot balances, and the slot is still free.  Whether each
 * lot still pays its share is take_planned's, after this.  Sets
 * b->available from the lots the plan does not take from, as they are now.
 * *holds false (and nothing written) sends the booking to the full path. */
static int
plan_holds(struct op *op, struct book_plan *p, bool *holds)
{
    struct bk *b = &p->b;
    *holds = false;
    if (op->now != p->now || p->stale) {
        return 0;
    }
    const char *zone = json_string_value(json_object_get(b->building, "timezone"));
    struct booking_recheck now;
    /* Without a policy that read the usage, the plan has no usage
     * condition: the counter is not asked for (unit NULL matches no row)
     * and nothing is priced again. */
    int rc = store_booking_recheck(op->store, b->resource_id, b->start, b->end, b->user_id,
                                   b->usage_read ? b->usage_unit : NULL, zone, b->usage_key,
                                   &now, op->err);
    if (rc != 0 || now.generation != p->generation || now.taken) {
        return rc;
    }
    b->usage_zones = now.zones;
    struct policy_set *pol = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    rc = policy_cache_get(op->env->policies, op->store, b->building_id, &pol, versions,
                          op->err);
    if (rc != 0) {
        return rc;
    }
    policy_set_release(pol);
    if (memcmp(versions, b->versions, sizeof versions) != 0) {
        return 0;
    }
    int64_t usage = now.usage;
    if (b->usage_read && !now.usage_found &&
        (rc = store_usage_get(op->store, b->user_id, b->usage_unit, zone, b->usage_key, &usage,
                              op->err)) != 0) {
        return rc;
    }
    if (b->usage_read && usage != b->usage) {
        bool same = false;
        rc = plan_reprice(op, b, usage, &same);
        if (rc != 0 || !same) {
            p->stale = true;
            return rc;
        }
    }
    int64_t available = 0;
    for (int i = 0; p->by_credits && i < b->cands.count; i++) {
        struct cand *c = &b->cands.items[i];
        if (c->take > 0) {
            continue; /* read by its conditional debit (take_planned) */
        }
        if (c->lot_id == 0) {
            available += c->unlimited ? 0 : c->balance; /* still virtual */
            continue;
        }
        struct lot_row lot;
        bool found = false;
        rc = store_lot_get(op->store, c->lot_id, &lot, &found, op->err);
        if (rc != 0) {
            return rc;
        }
        if (!found || lot.closed) {
            return 0;
        }
        c->balance = lot.balance;
        available += lot.unlimited ? 0 : lot.balance;
    }
    b->available = available;
    *holds = true;
    return 0;
}

/* Takes each lot's share of plan p, each by one conditional debit
 * (lot_take: open and still holding it), in the plan's order: all of them,
 * or, when one lot no longer holds its share, none (those taken are given
 * back) and *held false.  Adds the taken lots' balances as they were to
 * b->available. */
static int
take_planned(struct op *op, struct book_plan *p, bool *held)
{
    struct bk *b = &p->b;
    bool taken = true;
    int rc = 0, k = 0;
    *held = false;
    for (; p->by_credits && k < b->cands.count; k++) {
        struct cand *c = &b->cands.items[b->order[k]];
        if (c->take <= 0) {
            continue;
        }
        int64_t after = 0;
        /* The balance the plan saw: when the lot still holds exactly that
         * (no other booking took from it since), the debit proves the
         * balance after it without a read. */
        rc = lot_take(&op->lx, c->lot_id, c->take, c->unlimited ? -1 : c->balance, &taken,
                      &after);
        if (rc != 0 || !taken) {
            break;
        }
        c->balance = after + c->take;
        b->available += c->unlimited ? 0 : c->balance;
    }
    if (rc == 0 && taken) {
        *held = true;
        return 0;
    }
    if (rc == 0) {
        atomic_fetch_add(&plans_short, 1);
    }
    for (int j = 0; rc == 0 && j < k; j++) {
        const struct cand *c = &b->cands.items[b->order[j]];
        if (c->take > 0) {
            rc = lot_untake(&op->lx, c->lot_id, c->take);
        }
    }
    return rc;
}

/* Applies plan p when it holds (*applied true, the booking answered or
 * failed on a storage error); else leaves everything to the full path. */
static int
book_planned(struct op *op, struct book_plan *p, json_t **out, bool *applied)
{
    bool holds = false;
    /* A batch run again (a conflict on PostgreSQL, a job undone on SQLite)
     * applies the plan afresh: nothing of an earlier attempt was kept. */
    p->written_id = 0;
    int rc = plan_holds(op, p, &holds);
    if (rc == 0 && holds) {
        rc = take_planned(op, p, &holds);
    }
    *applied = rc != 0 || holds;
    atomic_fetch_add(holds ? &plans_applied : &plans_recomputed, 1);
    if (rc != 0 || !holds) {
        return rc;
    }
    if (!op->plan_answer_later) {
        return book_write(op, &p->b, p->by_credits, true, out);
    }
    /* The answer is built after the commit, off the writer thread, from
     * what was written (op_book_plan_finish). */
    rc = insert_booking(op, &p->b, p->by_credits, &p->written_id);
    if (rc == 0 && p->by_credits) {
        rc = post_takes(op, &p->b, p->written_id, true);
    }
    if (op->text != NULL) {
        /* The answer will be there, in the caller's text (the engine
         * counts it given once op_book_plan_finish has written it). */
        op->text_given = rc == 0;
    } else {
        *out = rc == 0 ? json_object() : NULL;
        if (rc == 0 && *out == NULL) {
            rc = eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        }
    }
    if (rc == 0) {
        op->created = true;
    } else {
        p->written_id = 0;
    }
    return rc;
}

/* The answer of a booking written from plan `plan` (left for later by the
 * writer): *out replaced; 0, or ENG_ENOMEM. */
static int
op_book_plan_finish(void *plan, struct op *op, json_t **out)
{
    struct book_plan *p = plan;
    if (p->written_id == 0) {
        return 0; /* not written from the plan: *out is the op's own */
    }
    op->now = p->now; /* the writer's instant too (plan_holds) */
    if (op->text != NULL) {
        json_buf_reset(op->text);
        return written_text(op, &p->b, p->written_id, p->by_credits);
    }
    json_t *answer = NULL;
    int rc = written_json(op, &p->b, p->written_id, p->by_credits, &answer);
    if (rc == 0) {
        json_decref(*out);
        *out = answer;
    }
    return rc;
}
static int
op_book(struct op *op, json_t *args, json_t **out)
{
    if (op->plan != NULL) {
        bool applied = false;
        int rc = book_planned(op, op->plan, out, &applied);
        if (applied) {
            return rc;
        }
    }
    struct bk b = {0};
    int rc = prepare(op, args, &b, true);
    bool by_credits = b.method != NULL && strcmp(b.method, "credits") == 0;
    if (rc == 0) {
        rc = book_check(op, &b, by_credits);
    }
    if (rc == 0 && by_credits) {
        rc = plan_takes(op, &b);
    }
    if (rc == 0) {
        rc = book_write(op, &b, by_credits, false, out);
    }
    bk_free(&b);
    return rc;
}

/* A booking's debits, gathered before any refund is posted (posting writes
 * the tables the debit query reads). */
struct debit_list {
    struct op *op;
    struct booking_debit *items;
    size_t count, cap;
};

static int
debit_push(void *ud, const struct booking_debit *d)
{
    struct debit_list *l = ud;
    if (l->count == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 8;
        struct booking_debit *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            return eng_error_set(l->op->err, ENG_ENOMEM, "out of memory");
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = *d;
    return 0;
}

/* Returns `credits` to one lot a booking was paid from; a lot that has
 * already expired takes the refund and expires it again at once, so the
 * ledger shows both.  The second expiry is dated at the lot's own end (or
 * now, for a lot voided before its end), so that the Data Hub counts it as
 * unused in the month the lot expired, beside the refund that lowered that
 * month's usage: the month adds up again. */
static int
refund_lot(struct op *op, int64_t booking_id, int64_t start, const struct booking_debit *d,
           int64_t r, const char *version)
{
    char key[64];
    snprintf(key, sizeof key, "refund:%lld:%lld", (long long)booking_id, (long long)d->lot_id);
    if (entry_post(&op->lx, d->lot_id, "refund", r, start, booking_id, key, version, NULL) !=
        0) {
        return op->err->status;
    }
    if (d->lot_expired) {
        snprintf(key, sizeof key, "reexpire:%lld:%lld", (long long)booking_id,
                 (long long)d->lot_id);
        int64_t at = d->lot_until < op->now ? d->lot_until : op->now;
        if (entry_post(&op->lx, d->lot_id, "expire", -r, at, booking_id, key, NULL,
                       "refund into an expired lot") != 0) {
            return op->err->status;
        }
    }
    return 0;
}

/* Where `credits` go back: the lots the booking was paid from, last paid
 * first; l->items[i].amount becomes what lot i gets back and l->count the
 * lots that get something.  Shared by the cancel and its preview. */
static int
refund_plan(struct op *op, int64_t booking_id, int64_t credits, struct debit_list *l)
{
    int rc = store_booking_debits_each(op->store, booking_id, op->now, true, debit_push, l,
                                       op->err);
    int64_t left = credits;
    size_t n = 0;
    for (; rc == 0 && n < l->count && left > 0; n++) {
        int64_t r = l->items[n].amount < left ? l->items[n].amount : left;
        l->items[n].amount = r;
        left -= r;
    }
    l->count = n;
    if (rc == 0 && left != 0) {
        /* The policy's refund was checked against what the booking paid. */
        rc = eng_error_code(op->err, ENG_ESTORE, "storage_error",
                            "booking %lld: its debits do not cover the refund",
                            (long long)booking_id);
    }
    return rc;
}

/* Returns `credits` to the lots the booking was paid from, last paid first. */
static int
refund_lots(struct op *op, int64_t booking_id, int64_t start, int64_t credits,
            const char *version)
{
    struct debit_list l = {.op = op};
    int rc = refund_plan(op, booking_id, credits, &l);
    for (size_t i = 0; rc == 0 && i < l.count; i++) {
        rc = refund_lot(op, booking_id, start, &l.items[i], l.items[i].amount, version);
    }
    free(l.items);
    return rc;
}

/* Runs the refund policy for a booking: what goes back, in credits (milli)
 * and money; versions[] tells which refund policy decided. */
static int
refund_decide(struct op *op, const struct booking_row *row, int64_t *r_credits,
              int64_t *r_money, char *version, size_t version_size)
{
    bool by_credits = strcmp(row->payment_method, "credits") == 0;
    int64_t paid_credits = by_credits ? row->credits : 0;
    int64_t paid_money = by_credits ? 0 : row->money;
    struct bk rb = {.resource_id = row->resource_id};
    json_t *ctx = NULL, *res = NULL;
    struct policy_set *pol = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    int rc = load_resource(op, &rb);
    if (rc == 0) {
        ctx = json_pack("{s:{s:o, s:I, s:I, s:s, s:I, s:I, s:I}, s:I, s:{s:s, s:b}, s:O}",
                        "booking", "id", id_json("bkg", row->id), "start",
                        (json_int_t)row->start_at, "end", (json_int_t)row->end_at,
                        "payment_method", row->payment_method, "credits",
                        (json_int_t)paid_credits, "money", (json_int_t)paid_money, "created_at",
                        (json_int_t)row->created_at, "now", (json_int_t)op->now, "by", "role",
                        role_name(op->who->role), "admin", op_can_assign(op), "resource",
                        rb.resource);
        rc = ctx != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    bk_free(&rb);
    if (rc == 0) {
        rc = policy_cache_get(op->env->policies, op->store, row->building_id, &pol, versions,
                              op->err);
    }
    if (rc == 0) {
        rc = policy_set_call(pol, POLICY_REFUND, ctx, &res, op->err);
    }
    json_decref(ctx);
    if (pol != NULL) {
        policy_set_release(pol);
    }
    if (rc != 0) {
        return rc;
    }
    /* Only credits and money (policies/README.md §7: unknown keys fail
     * closed). */
    const char *key;
    json_t *value;
    json_object_foreach(res, key, value) {
        if (strcmp(key, "credits") != 0 && strcmp(key, "money") != 0) {
            rc = eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                                "the refund policy returned an unknown key '%.40s'", key);
            json_decref(res);
            return rc;
        }
    }
    json_t *c = json_object_get(res, "credits"), *m = json_object_get(res, "money");
    *r_credits = json_is_integer(c) ? (int64_t)json_integer_value(c) : -1;
    *r_money = m == NULL || json_is_null(m) ? 0
               : json_is_integer(m)         ? (int64_t)json_integer_value(m)
                                            : -1;
    json_decref(res);
    if (*r_credits < 0 || *r_credits > paid_credits || *r_money < 0 || *r_money > paid_money) {
        return eng_error_code(op->err, ENG_EPOLICY, "policy_error",
                              "the refund policy must return {credits, money} between 0 and "
                              "what was paid");
    }
    snprintf(version, version_size, "%s", versions[POLICY_REFUND]);
    return 0;
}

static int
op_cancel(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", "reason", NULL};
    int64_t id;
    const char *reason;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bkg", true, &id) ||
        args_string(op, args, "reason", false, BOOKING_REASON_MAX, &reason)) {
        return op->err->status;
    }
    if (reason != NULL && !utf8_valid(reason, strlen(reason))) {
        return op_invalid(op, "reason", "'reason' must be UTF-8 text");
    }
    /* A role that may never cancel is refused whatever the booking. */
    if (op->who->role == ROLE_VIEWER) {
        return op_forbidden(op, "cancel bookings");
    }
    struct booking_row row;
    int rc = booking_get(op, id, &row);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(row.status, "confirmed") != 0) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "already_cancelled",
                            "the booking is already cancelled");
    }
    int64_t r_credits = 0, r_money = 0;
    char version[POLICY_LABEL_MAX] = "";
    if (rc == 0) {
        rc = refund_decide(op, &row, &r_credits, &r_money, version, sizeof version);
    }
    if (rc == 0 && r_credits > 0) {
        rc = refund_lots(op, id, row.start_at, r_credits, version);
    }
    store_booking_clear(&row);
    if (rc == 0) {
        struct booking_cancel c = {
            .id = id,
            .credits_refunded = r_credits,
            .money_refunded = r_money,
            .cancelled_at = op->now,
            .cancelled_by = op->who->name,
            .reason = reason,
            .by_admin = op_can_assign(op),
        };
        rc = store_booking_cancel(op->store, &c, op->err);
    }
    json_t *booking = NULL;
    if (rc == 0) {
        rc = booking_load(op, id, &booking);
    }
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:o, s:{s:o, s:I}}", "booking", booking, "refund", "credits",
                     amount_to_json(r_credits), "money", (json_int_t)r_money);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* What cancelling the booking now would give back, by the same refund
 * policy call and split as the cancel, changing nothing (a read). */
static int
op_refund_preview(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bkg", true, &id)) {
        return op->err->status;
    }
    /* A role that may never cancel is refused before the booking is looked
     * up, as cancel does (403 whatever the booking, in scope or not). */
    if (op->who->role == ROLE_VIEWER) {
        return op_forbidden(op, "cancel bookings");
    }
    struct booking_row row;
    int rc = booking_get(op, id, &row);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(row.status, "confirmed") != 0) {
        rc = eng_error_code(op->err, ENG_ECONFLICT, "already_cancelled",
                            "the booking is already cancelled");
    }
    int64_t r_credits = 0, r_money = 0;
    char version[POLICY_LABEL_MAX] = "";
    if (rc == 0) {
        rc = refund_decide(op, &row, &r_credits, &r_money, version, sizeof version);
    }
    struct debit_list l = {.op = op};
    if (rc == 0 && r_credits > 0) {
        rc = refund_plan(op, id, r_credits, &l);
    }
    json_t *lots = rc == 0 ? json_array() : NULL;
    for (size_t i = 0; lots != NULL && i < l.count; i++) {
        json_t *lot = json_pack("{s:o, s:o, s:b}", "lot_id", id_json("lot", l.items[i].lot_id),
                                "amount", amount_to_json(l.items[i].amount), "expires_again",
                                l.items[i].lot_expired);
        if (lot == NULL || json_array_append_new(lots, lot) != 0) {
            json_decref(lots);
            lots = NULL;
        }
    }
    free(l.items);
    bool by_credits = strcmp(row.payment_method, "credits") == 0;
    if (rc == 0) {
        *out = lots == NULL ? NULL
               : json_pack("{s:o, s:s, s:o, s:s, s:o, s:{s:o, s:I}, s:o, s:s}", "booking_id",
                           id_json("bkg", id), "payment_method", row.payment_method, "unit",
                           by_credits && row.unit[0] != '\0' ? json_string(row.unit) : json_null(),
                           "currency", row.currency, "paid", by_credits
                                                               ? amount_to_json(row.credits)
                                                               : json_integer(row.money),
                           "refund", "credits", amount_to_json(r_credits), "money",
                           (json_int_t)r_money, "lots", lots, "policy_version", version);
        rc = *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    } else {
        json_decref(lots);
    }
    store_booking_clear(&row);
    return rc;
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

struct list_ud {
    struct op *op;
    struct pager pg;
    struct zoned_bound *zb;
};

static int
list_row(void *ud, const struct booking_row *row)
{
    struct list_ud *l = ud;
    bool reaches = false;
    if (l->pg.fetched < l->pg.page->limit) {
        /* Dates read in the row's own building's zone (op_zoned_bounds):
         * a row the widened query let through but its zone's day does
         * not overlap is hidden like one out of scope. */
        int64_t from = 0, to = 0;
        int rc = op_zoned_row(l->op, l->zb, row->building_id, &from, &to);
        if (rc == 0 && row->start_at < to && row->end_at > from) {
            rc = op_check_reaches(l->op, OP_OBJ_BOOKING, row->id, &reaches);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (!reaches) {
        /* The row past the page, or one out of scope: moves the cursor only. */
        return pager_add(&l->pg, row->id, NULL);
    }
    json_t *j = NULL;
    int rc = booking_json(l->op, row, &j);
    return rc != 0 ? rc : pager_add(&l->pg, row->id, j);
}

static int
op_booking_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", "user_id", "resource_id",
                                       "building_id", "from", "to", "status", NULL};
    struct booking_filter f = {.from = INT64_MIN, .to = INT64_MAX};
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &f.tenant_id) ||
        args_id(op, args, "user_id", "usr", false, &f.user_id) ||
        args_id(op, args, "resource_id", "res", false, &f.resource_id) ||
        args_id(op, args, "building_id", "bld", false, &f.building_id) ||
        args_string(op, args, "status", false, 20, &f.status) || args_page(op, args, &page)) {
        return op->err->status;
    }
    if (f.status != NULL && strcmp(f.status, "confirmed") != 0 &&
        strcmp(f.status, "cancelled") != 0) {
        return op_invalid(op, "status", "'status' must be confirmed or cancelled");
    }
    struct zoned_bound zb;
    if (op_zoned_bounds(op, args, f.building_id, f.tenant_id, &zb) != 0) {
        return op->err->status;
    }
    f.from = zb.from;
    f.to = zb.to;
    /* A tenant principal's bookings are its tenant's (a tenant_user's, its
     * own): a filter naming another tenant or user matches none of them,
     * as it would match none for an unknown id (an empty page, never the
     * caller's own rows under another's name). */
    bool none = false;
    if (op->who->role == ROLE_TENANT_ADMIN || op->who->role == ROLE_TENANT_USER) {
        none = f.tenant_id != 0 && f.tenant_id != op->who->tenant_id;
        f.tenant_id = op->who->tenant_id;
    }
    if (op->who->role == ROLE_TENANT_USER) {
        none = none || (f.user_id != 0 && f.user_id != op->who->user_id);
        f.user_id = op->who->user_id;
    }
    struct list_ud l = {.op = op, .zb = &zb};
    pager_init(&l.pg, &page);
    int rc = none ? 0
                  : store_bookings_list(op->store, &f, page.after, page.limit + 1, list_row, &l,
                                        op->err);
    return pager_finish(&l.pg, op, rc, out);
}

/* ---------- simulation ---------- */

/* The limits of one simulation (PRODUCT.md §9), from the policy limits;
 * 0 there means the default. */
#define SIM_BOOKINGS_MAX 10000
#define SIM_INSTRUCTIONS_MAX 100000000
#define SIM_WALL_MS_MAX 2000

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

/* Credits in one unit (0 hour, 1 coin): hours and coins never add up. */
struct sim_unit_totals {
    int64_t charged, candidate, refunded, candidate_refund;
};

struct sim_totals {
    int64_t charged, candidate, refunded, candidate_refund; /* every unit (kept as it was) */
    /* Money in the building's minor units: charged and refunded are what
     * card and invoice bookings paid and got back; the candidate's are
     * what it would have charged (pricing, validate) or refunded (refund). */
    int64_t charged_money, candidate_money, refunded_money, candidate_refund_money;
    struct sim_unit_totals unit[2];
    int count, refused, errors;
};

static struct sim_unit_totals *
sim_unit(struct sim_totals *t, const char *unit)
{
    return &t->unit[unit != NULL && strcmp(unit, "coin") == 0 ? 1 : 0];
}

/* A storage or memory failure, or a spent budget, stops the whole
 * simulation; anything else (a refusal, a failing candidate) is a finding
 * about that one booking. */
static bool
sim_fatal(const struct op *op)
{
    return op->err->status == ENG_ESTORE || op->err->status == ENG_ENOMEM ||
           op->err->status == ENG_ELIMIT;
}

/* What the candidate refund policy would have given back for one stored
 * cancelled booking; adds to row. */
static int
sim_refund(struct op *op, const struct booking_row *r, struct bk *b, struct policy_set *pol,
           json_t *row, struct sim_totals *t)
{
    bool by_credits = strcmp(r->payment_method, "credits") == 0;
    json_t *ctx = json_pack(
        "{s:{s:o, s:I, s:I, s:s, s:I, s:I, s:I}, s:I, s:{s:s, s:b}, s:O}", "booking", "id",
        id_json("bkg", r->id), "start", (json_int_t)r->start_at, "end", (json_int_t)r->end_at,
        "payment_method", r->payment_method, "credits", (json_int_t)(by_credits ? r->credits : 0),
        "money", (json_int_t)(by_credits ? 0 : r->money), "created_at", (json_int_t)r->created_at,
        "now", (json_int_t)r->cancelled_at, "by", "role", "recorded", "admin",
        r->cancelled_by_admin, "resource", b->resource);
    if (ctx == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    json_t *res = NULL;
    int rc = policy_set_call(pol, POLICY_REFUND, ctx, &res, op->err);
    json_decref(ctx);
    if (rc == 0) {
        json_t *c = json_object_get(res, "credits");
        json_t *m = json_object_get(res, "money");
        int64_t would = json_is_integer(c) ? (int64_t)json_integer_value(c) : 0;
        int64_t would_money = json_is_integer(m) ? (int64_t)json_integer_value(m) : 0;
        json_object_set_new(row, "refunded", amount_to_json(r->credits_refunded));
        json_object_set_new(row, "candidate_refund", amount_to_json(would));
        json_object_set_new(row, "refunded_money", json_integer(r->money_refunded));
        json_object_set_new(row, "candidate_refund_money", json_integer(would_money));
        t->candidate_refund += would;
        t->candidate_refund_money += would_money;
        sim_unit(t, r->unit)->candidate_refund += would;
    } else if (!sim_fatal(op)) {
        json_object_set_new(row, "error", json_string(op->err->msg));
        t->errors++;
        rc = 0;
    }
    json_decref(res);
    return rc;
}

/* What the candidate pricing (or validate) policy would have charged for
 * one stored booking; adds to row. */
static int
sim_price(struct op *op, const struct booking_row *r, struct bk *b, json_t *row,
          struct sim_totals *t)
{
    bool by_credits = strcmp(r->payment_method, "credits") == 0;
    if (price(op, b) == 0) {
        json_object_set_new(row, "candidate",
                            json_pack("{s:o, s:o}", "credits",
                                      b->has_credits ? amount_to_json(b->credits) : json_null(),
                                      "money", b->has_money ? json_integer(b->money)
                                                            : json_null()));
        if (by_credits && b->has_credits) {
            t->candidate += b->credits;
            sim_unit(t, b->unit)->candidate += b->credits;
        }
        if (!by_credits && b->has_money) {
            t->candidate_money += b->money;
        }
        return 0;
    }
    if (sim_fatal(op)) {
        return op->err->status;
    }
    bool refused = op->err->status == ENG_EINVAL;
    json_object_set_new(row, refused ? "refused" : "error", json_string(op->err->msg));
    t->refused += refused;
    t->errors += !refused;
    return 0;
}

struct sim_ud {
    struct op *op;
    int64_t bookings_max;
    enum policy_kind kind;
    struct policy_set *pol;
    struct sim_totals t;
    json_t *rows;
};

/* What the candidate would have done for one stored booking. */
static int
sim_booking(void *ud, const struct booking_row *r)
{
    struct sim_ud *s = ud;
    struct op *op = s->op;
    if (s->t.count >= s->bookings_max) {
        eng_error_code(op->err, ENG_ELIMIT, "limit_exceeded",
                       "a simulation replays at most %lld bookings; choose a shorter period",
                       (long long)s->bookings_max);
        eng_error_field(op->err, "simulation_bookings_max");
        return ENG_ELIMIT;
    }
    /* The time budget counts the reads between policy calls too. */
    if (policy_set_total_check(s->pol, op->err) != 0) {
        return op->err->status;
    }
    bool by_credits = strcmp(r->payment_method, "credits") == 0;
    bool cancelled = strcmp(r->status, "cancelled") == 0;
    json_t *row = json_pack("{s:o, s:o, s:s, s:s, s:{s:o, s:I}}", "booking_id",
                            id_json("bkg", r->id), "start", json_time(r->start_at),
                            "payment_method", r->payment_method, "status", r->status, "charged",
                            "credits", by_credits ? amount_to_json(r->credits) : json_null(),
                            "money", (json_int_t)r->money);
    if (row == NULL || json_array_append_new(s->rows, row) != 0) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    struct bk b = {
        .resource_id = r->resource_id,
        .user_id = r->user_id,
        .start = r->start_at,
        .end = r->end_at,
        .method = r->payment_method,
        .discount_pm = r->discount_pm,
    };
    struct eng_error saved = *op->err;
    int rc = 0;
    policy_set_retain(s->pol);
    b.pol = s->pol;
    b.user = ctx_user(&op->lx, b.user_id, &b.tenant_id, &rc);
    if (b.user != NULL) {
        rc = load_resource(op, &b);
    }
    if (rc != 0) {
        /* A booking whose user or resource cannot be read is skipped, as
         * before; only a storage or memory failure stops the run. */
        rc = sim_fatal(op) ? op->err->status : 0;
    } else if (s->kind == POLICY_REFUND) {
        rc = cancelled ? sim_refund(op, r, &b, s->pol, row, &s->t) : 0;
    } else {
        rc = sim_price(op, r, &b, row, &s->t);
    }
    bk_free(&b);
    if (rc == 0) {
        *op->err = saved;
        s->t.count++;
        /* What was charged and refunded are facts of the ledger, the same
         * in every kind's answer, whatever the candidate does. */
        if (by_credits) {
            s->t.charged += r->credits;
            s->t.refunded += r->credits_refunded;
            sim_unit(&s->t, r->unit)->charged += r->credits;
            sim_unit(&s->t, r->unit)->refunded += r->credits_refunded;
        } else {
            s->t.charged_money += r->money;
        }
        s->t.refunded_money += r->money_refunded;
    }
    return rc;
}

/* A candidate's figure in the totals, or null where its kind decides
 * nothing of the sort (a pricing candidate refunds nothing). */
static json_t *
sim_figure(bool applies, int64_t v, bool money)
{
    return !applies ? json_null() : money ? json_integer(v) : amount_to_json(v);
}

/* Runs a candidate over the building's past bookings; writes nothing. */
static int
op_simulate(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", "source", "from", "to", NULL};
    int64_t bid, from, to;
    const char *kind_s, *source;
    struct policy_candidate pc;
    /* PRODUCT.md §9: simulations are bounded work for manager and above. */
    if (!op_can_assign(op)) {
        return op_forbidden(op, "simulate policies (manager or super_admin)");
    }
    if (args_only(op, args, keys) || args_id(op, args, "building_id", "bld", true, &bid) ||
        args_string(op, args, "kind", true, 20, &kind_s) ||
        args_string(op, args, "source", true, op->env->policy_source_max, &source)) {
        return op->err->status;
    }
    struct building_row bl;
    bool found = false, reaches = false;
    if (op_check_reaches(op, OP_OBJ_BUILDING, bid, &reaches) != 0 ||
        (reaches && store_building_get(op->store, bid, &bl, &found, op->err) != 0)) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "building");
    }
    if (policy_kind_parse(kind_s, &pc.kind, NULL) != 0 ||
        (pc.kind != POLICY_PRICING && pc.kind != POLICY_REFUND && pc.kind != POLICY_VALIDATE)) {
        return op_invalid(op, "kind", "simulation covers the pricing, refund and validate kinds");
    }
    if (sim_instant(op, args, "from", bl.timezone, &from) ||
        sim_instant(op, args, "to", bl.timezone, &to)) {
        return op->err->status;
    }
    pc.source = source;
    pc.len = strlen(source);
    const struct policy_limits *lim = &op->env->policies->limits;
    struct sim_ud s = {.op = op, .kind = pc.kind, .rows = json_array()};
    s.bookings_max = lim->simulation_bookings_max > 0 && lim->simulation_bookings_max < INT32_MAX
                         ? lim->simulation_bookings_max
                         : SIM_BOOKINGS_MAX;
    if (s.rows == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (policy_cache_build(op->env->policies, op->store, bid, &pc, &s.pol, NULL, op->err) != 0) {
        json_decref(s.rows);
        return eng_error_recode(op->err, ENG_EREJECTED, "policy_error");
    }
    /* The set is this request's own: its calls share one total budget. */
    policy_set_total_budget(
        s.pol,
        lim->simulation_instructions_max > 0 ? lim->simulation_instructions_max
                                             : SIM_INSTRUCTIONS_MAX,
        "simulation_instructions_max",
        lim->simulation_wall_ms_max > 0 ? lim->simulation_wall_ms_max : SIM_WALL_MS_MAX,
        "simulation_wall_ms_max");
    /* One more than the cap, so a hit cap is an error and not a short answer. */
    int rc = store_bookings_by_start(op->store, bid, from, to, (int)s.bookings_max + 1, sim_booking,
                                     &s, op->err);
    policy_set_release(s.pol);
    if (rc != 0) {
        json_decref(s.rows);
        return rc;
    }
    const struct sim_totals *t = &s.t;
    bool refunds = pc.kind == POLICY_REFUND;
    json_t *by_unit = json_object();
    static const char *const units[2] = {"hour", "coin"};
    for (int u = 0; by_unit != NULL && u < 2; u++) {
        const struct sim_unit_totals *ut = &t->unit[u];
        json_t *one = json_pack("{s:o, s:o, s:o, s:o}", "charged_credits",
                                amount_to_json(ut->charged), "candidate_credits",
                                sim_figure(!refunds, ut->candidate, false), "refunded_credits",
                                amount_to_json(ut->refunded), "candidate_refund_credits",
                                sim_figure(refunds, ut->candidate_refund, false));
        if (one == NULL || json_object_set_new(by_unit, units[u], one) != 0) {
            json_decref(by_unit);
            by_unit = NULL;
        }
    }
    if (by_unit == NULL) {
        json_decref(s.rows);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = json_pack("{s:o, s:s, s:{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:i, s:o},"
                     " s:o}",
                     "building_id", id_json("bld", bid), "kind", kind_s, "totals", "bookings",
                     t->count, "charged_credits", amount_to_json(t->charged), "candidate_credits",
                     sim_figure(!refunds, t->candidate, false), "refunded_credits",
                     amount_to_json(t->refunded), "candidate_refund_credits",
                     sim_figure(refunds, t->candidate_refund, false), "charged_money",
                     json_integer(t->charged_money), "candidate_money",
                     sim_figure(!refunds, t->candidate_money, true), "refunded_money",
                     json_integer(t->refunded_money), "candidate_refund_money",
                     sim_figure(refunds, t->candidate_refund_money, true), "refused", t->refused,
                     "errors", t->errors, "by_unit", by_unit, "bookings", s.rows);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

const struct op_def ops_booking[] = {
    {"quotes.create", op_quote, false},
    {"bookings.create", op_book, true},
    {"bookings.cancel", op_cancel, true},
    {"bookings.refund_preview", op_refund_preview, false},
    {"bookings.get", op_booking_get, false},
    {"bookings.list", op_booking_list, false},
    {"policies.simulate", op_simulate, false},
    {NULL, NULL, false},
};

const struct op_plan_def ops_plans[] = {
    {"bookings.create", op_book_plan, op_book_plan_free, op_book_plan_finish},
    {NULL, NULL, NULL, NULL},
};
