/* ops_portfolio.c - buildings, resources, tenants and users.
 *
 * Creation and PATCH share one validator per object: a PATCH merges the
 * given fields into the stored object and validates the result as if it
 * were created, so the two can never disagree about what is valid.  Every
 * storage step is checked: a storage error fails the request (503), it
 * never reads as "not found" or "not visible". */
#include <stdlib.h>
#include <string.h>

#include "buildings.h"
#include "ops.h"
#include "portfolio.h"
#include "resources.h"
#include "tenants.h"
#include "timeutil.h"
#include "users.h"

#define NAME_MAX_BYTES STORE_NAME_MAX

static int
oom(struct op *op)
{
    return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* A name-like string: at most NAME_MAX_BYTES bytes of valid UTF-8 (never
 * cut); *out borrowed, NULL when absent and not required. */
static int
args_text(struct op *op, json_t *obj, const char *key, bool required, size_t max_len,
          const char **out)
{
    if (args_string(op, obj, key, required, max_len, out) != 0) {
        return ENG_EINVAL;
    }
    if (*out != NULL && !utf8_valid(*out, strlen(*out))) {
        return op_invalid(op, key, "'%s' is not valid UTF-8", key);
    }
    return 0;
}

/* Copies a validated string into a row's field; one too long for it is an
 * error (never a truncation). */
static int
copy_field(struct op *op, char *dst, size_t size, const char *src, const char *field)
{
    size_t len = src != NULL ? strlen(src) : 0;
    if (len >= size) {
        return op_invalid(op, field, "'%s' is longer than %zu bytes", field, size - 1);
    }
    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
    return 0;
}

static const char *
field_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* May the principal see this building?  Admins by their building scope;
 * tenant roles when their tenant leases space there. */
static int
sees_building(struct op *op, int64_t building_id, bool *sees)
{
    return op_check_reaches(op, OP_OBJ_BUILDING, building_id, sees);
}

static const char *const LIST_KEYS[] = {"limit", "cursor", NULL};

/* A list in progress: the op, its pager. */
struct lister {
    struct op *op;
    struct pager pg;
};

/* Hands one row to the pager: json (may be NULL when out of memory) when
 * visible, else nothing (the cursor still moves). */
static int
list_add(struct lister *l, int64_t id, bool visible, json_t *json)
{
    if (visible && json == NULL) {
        return oom(l->op);
    }
    if (!visible) {
        json_decref(json);
        json = NULL;
    }
    return pager_add(&l->pg, id, json);
}

/* Merges `patch` into the stored object `cur` (both objects): a PATCH may
 * name only fields the object has; "id" and its parents stay fixed. */
static int
merge_patch(struct op *op, json_t *cur, json_t *patch, const char *const fixed[])
{
    if (!json_is_object(patch)) {
        return op_invalid(op, "", "the request body must be a JSON object");
    }
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value) {
        if (strcmp(key, "id") == 0) {
            continue;
        }
        for (int i = 0; fixed[i] != NULL; i++) {
            if (strcmp(fixed[i], key) == 0) {
                return op_invalid(op, key, "'%s' cannot be changed", key);
            }
        }
        if (json_object_set(cur, key, value) != 0) {
            return oom(op);
        }
    }
    return 0;
}

/* ---------- buildings ---------- */

static json_t *
building_json(const struct building_row *b)
{
    return json_pack("{s:o, s:s, s:s, s:s, s:{s:b, s:b, s:b}}", "id", id_json("bld", b->id),
                     "name", b->name, "timezone", b->timezone, "currency", b->currency,
                     "payment", "credits", b->pay_credits, "invoice", b->pay_invoice, "card",
                     b->pay_card);
}

static int
building_check(struct op *op, json_t *b)
{
    static const char *const keys[] = {"id", "name", "timezone", "currency", "payment", NULL};
    static const char *const pay_keys[] = {"credits", "invoice", "card", NULL};
    const char *s;
    if (args_only(op, b, keys) != 0 || args_text(op, b, "name", true, NAME_MAX_BYTES, &s) ||
        args_string(op, b, "timezone", true, TIME_ZONE_NAME_MAX, &s)) {
        return ENG_EINVAL;
    }
    if (!tz_valid(s)) {
        return op_invalid(op, "timezone", "'%.64s' is not an IANA time zone", s);
    }
    if (args_string(op, b, "currency", true, 3, &s) != 0) {
        return ENG_EINVAL;
    }
    if (!currency_valid(s)) {
        return op_invalid(op, "currency", "'currency' must be an ISO 4217 code such as USD");
    }
    json_t *pay = json_object_get(b, "payment");
    bool flag;
    if (pay != NULL && !json_is_object(pay)) {
        return op_invalid(op, "payment", "'payment' must be an object {credits, invoice, card} "
                                         "of true or false");
    }
    if (pay != NULL && (args_only(op, pay, pay_keys) != 0 ||
                        args_bool(op, pay, "credits", true, &flag) != 0 ||
                        args_bool(op, pay, "invoice", false, &flag) != 0 ||
                        args_bool(op, pay, "card", true, &flag) != 0)) {
        return ENG_EINVAL;
    }
    return 0;
}

/* Writes a checked building: a new one when id is 0 (*new_id set). */
static int
building_write(struct op *op, int64_t id, json_t *b, int64_t *new_id)
{
    struct building_row row = {.id = id, .created_at = op->now};
    json_t *pay = json_object_get(b, "payment");
    row.pay_credits = true;
    row.pay_card = true;
    if (pay != NULL) {
        if (args_bool(op, pay, "credits", true, &row.pay_credits) ||
            args_bool(op, pay, "invoice", false, &row.pay_invoice) ||
            args_bool(op, pay, "card", true, &row.pay_card)) {
            return ENG_EINVAL;
        }
    }
    if (copy_field(op, row.name, sizeof row.name, field_str(b, "name"), "name") ||
        copy_field(op, row.timezone, sizeof row.timezone, field_str(b, "timezone"),
                   "timezone") ||
        copy_field(op, row.currency, sizeof row.currency, field_str(b, "currency"),
                   "currency")) {
        return op->err->status;
    }
    if (id == 0) {
        return store_building_insert(op->store, &row, new_id, op->err);
    }
    return store_building_update(op->store, &row, op->err);
}

static int
op_building_get_id(struct op *op, int64_t id, json_t **out)
{
    bool sees = false, found = false;
    struct building_row b;
    if (sees_building(op, id, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "building");
    }
    if (store_building_get(op->store, id, &b, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "building");
    }
    *out = building_json(&b);
    return *out != NULL ? 0 : oom(op);
}

static int
op_building_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_super(op) != 0 || building_check(op, args) != 0) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    int64_t id = 0;
    if (building_write(op, 0, args, &id) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_building_get_id(op, id, out);
}

static int
op_building_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bld", true, &id)) {
        return op->err->status;
    }
    return op_building_get_id(op, id, out);
}

static int
building_listed(void *ud, const struct building_row *b)
{
    struct lister *l = ud;
    bool sees = false;
    if (sees_building(l->op, b->id, &sees) != 0) {
        return l->op->err->status;
    }
    return list_add(l, b->id, sees, sees ? building_json(b) : NULL);
}

static int
op_building_list(struct op *op, json_t *args, json_t **out)
{
    struct page page;
    if (args_only(op, args, LIST_KEYS) != 0 || args_page(op, args, &page) != 0) {
        return op->err->status;
    }
    struct lister l = {.op = op};
    pager_init(&l.pg, &page);
    int rc = store_building_each(op->store, page.after, page.limit + 1, building_listed, &l,
                                 op->err);
    return pager_finish(&l.pg, op, rc, out);
}

static int
op_building_patch(struct op *op, json_t *args, json_t **out)
{
    int64_t id;
    json_t *cur = NULL;
    static const char *const fixed[] = {NULL};
    if (op_require_super(op) || args_id(op, args, "id", "bld", true, &id) ||
        op_building_get_id(op, id, &cur)) {
        return op->err->status;
    }
    /* Payment settings merge key by key; the patch itself is left as given. */
    json_t *given = json_object_get(args, "payment");
    if (given != NULL && !json_is_object(given)) {
        json_decref(cur);
        return op_invalid(op, "payment", "'payment' must be an object {credits, invoice, "
                                         "card} of true or false");
    }
    json_t *old_pay = json_deep_copy(json_object_get(cur, "payment"));
    int rc = old_pay != NULL ? merge_patch(op, cur, args, fixed) : oom(op);
    json_t *pay = json_object_get(args, "payment");
    if (rc == 0 && json_is_object(pay) && json_is_object(old_pay)) {
        if (json_object_update(old_pay, pay) != 0 || json_object_set(cur, "payment", old_pay)) {
            rc = oom(op);
        }
    }
    json_decref(old_pay);
    if (rc == 0) {
        rc = building_check(op, cur);
    }
    if (rc == 0) {
        rc = building_write(op, id, cur, NULL);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_building_get_id(op, id, out);
}

/* ---------- resources ---------- */

static json_t *
resource_json(const struct resource_row *r)
{
    return json_pack("{s:o, s:o, s:s, s:s, s:O, s:O, s:b, s:b, s:o}", "id",
                     id_json("res", r->id), "building_id", id_json("bld", r->building_id),
                     "name", r->name, "kind", r->kind, "tags", r->tags, "pricing", r->pricing,
                     "credit_only", r->credit_only, "archived", r->archived, "archived_at",
                     r->archived ? json_time(r->archived_at) : json_null());
}

static int
json_depth(const json_t *v)
{
    int deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int d = json_depth(x);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            int d = json_depth(x);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

/* The minutes of one increment of a pricing object as the default policy
 * reads it (credits.increment_minutes, else increment_minutes, else 15);
 * 60 when the value given is not one (the policy then refuses it). */
static int64_t
pricing_increment(json_t *pricing)
{
    json_t *v = json_object_get(json_object_get(pricing, "credits"), "increment_minutes");
    if (v == NULL || json_is_null(v)) {
        v = json_object_get(pricing, "increment_minutes");
    }
    if (v == NULL || json_is_null(v)) {
        return 15;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 1440) {
        return (int64_t)json_integer_value(v);
    }
    return 60;
}

/* Runs the building's own pricing policy on a representative booking of
 * the resource (one increment, starting now) and refuses the save when the
 * policy refuses its configuration, so a resource is never saved with a
 * pricing its building cannot price (tenants would only find out when
 * booking).  Only a refusal ({error = ...}) counts: a policy failing at run
 * time on this made-up booking is reported when a real one is priced.  A
 * storage failure fails the request. */
static int
pricing_check(struct op *op, json_t *r, int64_t building_id)
{
    if (op->env == NULL || op->env->policies == NULL) {
        return 0;
    }
    struct building_row b;
    bool found = false;
    if (store_building_get(op->store, building_id, &b, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_invalid(op, "building_id", "unknown building");
    }
    struct civil_time lt;
    struct eng_error perr = {0};
    if (tz_local_time(b.timezone, op->now, &lt, &perr) != 0) {
        return 0; /* the zone is checked where the building is saved */
    }
    json_t *pricing = json_object_get(r, "pricing");
    int64_t minutes = pricing_increment(pricing);
    json_t *ctx = json_pack(
        "{s:{s:I, s:I, s:I, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:i}, s:O, s:o, s:I, s:b}",
        "booking",
        "start", (json_int_t)op->now, "end", (json_int_t)(op->now + minutes * 60), "minutes",
        (json_int_t)minutes, "local_start", "year", lt.year, "month", lt.month, "day", lt.day,
        "hour", lt.hour, "minute", lt.minute, "wday", lt.wday, "discount_pm", 0, "resource", r,
        "building", building_json(&b), "now", (json_int_t)op->now, "check", 1);
    if (ctx == NULL) {
        return oom(op);
    }
    struct policy_set *set = NULL;
    int rc = policy_cache_get(op->env->policies, op->store, building_id, &set, NULL, &perr);
    json_t *res = NULL;
    if (rc == 0) {
        rc = policy_set_call(set, POLICY_PRICING, ctx, &res, &perr);
        policy_set_release(set);
    }
    json_decref(ctx);
    if (rc != 0) {
        if (rc == ENG_ESTORE || rc == ENG_ENOMEM) {
            *op->err = perr;
            return rc;
        }
        return 0; /* a policy that cannot run: refused where bookings are priced */
    }
    json_t *msg = json_is_object(res) ? json_object_get(res, "error") : NULL;
    if (msg != NULL) {
        const char *text = json_is_string(msg) ? json_string_value(msg) : "invalid configuration";
        /* The default policy's messages start with the path of the field
         * at fault ("pricing.credits.per_hour must be ..."): name it. */
        char field[64] = "pricing";
        size_t n = 0;
        while (n + 1 < sizeof field && text[n] != '\0' && text[n] != ' ' && text[n] != ':') {
            n++;
        }
        if (n > 8 && n + 1 < sizeof field && strncmp(text, "pricing.", 8) == 0) {
            memcpy(field, text, n);
            field[n] = '\0';
        }
        rc = op_invalid(op, field,
                        "'pricing' is refused by the building's pricing policy: %.*s",
                        text_quote_len(text, 160), text);
    }
    json_decref(res);
    return rc;
}

static int
resource_check(struct op *op, json_t *r)
{
    /* archived and archived_at are the resource's own (PATCH handles
     * archived; resources.create refuses both). */
    static const char *const keys[] = {"id", "building_id", "name", "kind", "tags",
                                       "pricing", "credit_only", "archived", "archived_at",
                                       NULL};
    const char *s;
    int64_t bid;
    bool b;
    json_t *tags = NULL;
    if (args_only(op, r, keys) || args_id(op, r, "building_id", "bld", true, &bid) ||
        args_text(op, r, "name", true, NAME_MAX_BYTES, &s) ||
        args_text(op, r, "kind", false, 60, &s) ||
        args_string_array(op, r, "tags", 50, &tags) || args_bool(op, r, "credit_only", false, &b)) {
        return op->err->status;
    }
    json_decref(tags);
    bool sees = false, found = false;
    if (sees_building(op, bid, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_invalid(op, "building_id", "unknown building");
    }
    if (store_exists(op->store, STORE_BUILDING, bid, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_invalid(op, "building_id", "unknown building");
    }
    json_t *pricing = json_object_get(r, "pricing");
    if (pricing != NULL && !json_is_null(pricing)) {
        char *text = json_to_text(pricing);
        if (text == NULL) {
            return oom(op);
        }
        size_t len = strlen(text);
        free(text);
        if (!json_is_object(pricing) || json_depth(pricing) > 5 || len > 16384) {
            return op_invalid(op, "pricing", "'pricing' must be an object (at most 16 KiB, "
                                             "5 levels deep)");
        }
    }
    return pricing_check(op, r, bid);
}

/* Writes a checked resource: a new one when id is 0 (*new_id set). */
static int
resource_write(struct op *op, int64_t id, json_t *r, int64_t *new_id)
{
    struct resource_row row = {.id = id, .created_at = op->now};
    if (id_parse("bld", field_str(r, "building_id"), &row.building_id) != 0) {
        return op_invalid(op, "building_id", "'building_id' is not a valid id");
    }
    const char *kind = field_str(r, "kind");
    if (copy_field(op, row.name, sizeof row.name, field_str(r, "name"), "name") ||
        copy_field(op, row.kind, sizeof row.kind, kind != NULL ? kind : "room", "kind")) {
        return op->err->status;
    }
    json_t *tags = json_object_get(r, "tags");
    json_t *pricing = json_object_get(r, "pricing");
    row.tags = json_is_array(tags) ? tags : NULL;          /* borrowed; NULL stores [] */
    row.pricing = json_is_object(pricing) ? pricing : NULL; /* NULL stores {} */
    row.credit_only = json_is_true(json_object_get(r, "credit_only"));
    if (id == 0) {
        return store_resource_insert(op->store, &row, new_id, op->err);
    }
    return store_resource_update(op->store, &row, op->err);
}

static int
op_resource_get_id(struct op *op, int64_t id, json_t **out)
{
    struct resource_row r;
    bool found = false, sees = false;
    if (store_resource_get(op->store, id, &r, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "resource");
    }
    int rc = sees_building(op, r.building_id, &sees);
    if (rc == 0 && !sees) {
        rc = op_not_found(op, "resource");
    }
    if (rc == 0) {
        *out = resource_json(&r);
        rc = *out != NULL ? 0 : oom(op);
    }
    store_resource_clear(&r);
    return rc;
}

static int
op_resource_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_assigner(op) || resource_check(op, args)) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    if (json_object_get(args, "archived") != NULL ||
        json_object_get(args, "archived_at") != NULL) {
        return op_invalid(op, "archived", "a new resource is not archived; archive it with "
                                          "PATCH {\"archived\": true}");
    }
    int64_t id = 0;
    if (resource_write(op, 0, args, &id) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_resource_get_id(op, id, out);
}

static int
op_resource_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "res", true, &id)) {
        return op->err->status;
    }
    return op_resource_get_id(op, id, out);
}

struct resource_lister {
    struct lister l; /* first: list_add takes it */
    bool archived;   /* list archived resources instead of the others */
};

static int
resource_listed(void *ud, const struct resource_row *r)
{
    struct resource_lister *rl = ud;
    struct lister *l = &rl->l;
    bool sees = false;
    if (sees_building(l->op, r->building_id, &sees) != 0) {
        return l->op->err->status;
    }
    /* A row of the other kind, like one out of scope, moves the cursor. */
    sees = sees && r->archived == rl->archived;
    return list_add(l, r->id, sees, sees ? resource_json(r) : NULL);
}

static int
op_resource_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "building_id", "archived", NULL};
    int64_t bid;
    const char *archived = NULL;
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "building_id", "bld", false, &bid) ||
        args_string(op, args, "archived", false, 5, &archived) || args_page(op, args, &page)) {
        return op->err->status;
    }
    if (archived != NULL && strcmp(archived, "true") != 0 && strcmp(archived, "false") != 0) {
        return op_invalid(op, "archived", "'archived' must be true or false");
    }
    struct resource_lister rl = {.l = {.op = op},
                                 .archived = archived != NULL && strcmp(archived, "true") == 0};
    pager_init(&rl.l.pg, &page);
    int rc = store_resource_each(op->store, bid, page.after, page.limit + 1, resource_listed,
                                 &rl, op->err);
    return pager_finish(&rl.l.pg, op, rc, out);
}

/* Archives (or restores) a resource when `archived` differs from what it
 * is: an archived resource keeps its bookings and history and takes no new
 * booking or quote. */
static int
resource_archive(struct op *op, int64_t id, json_t *cur, bool archived)
{
    if (json_is_true(json_object_get(cur, "archived")) == archived) {
        return 0;
    }
    return store_resource_set_archived(op->store, id, archived ? op->now : 0, op->err);
}

static int
op_resource_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {"building_id", "archived_at", NULL};
    int64_t id;
    bool archived = false;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "res", true, &id) ||
        args_bool(op, args, "archived", false, &archived) || op_resource_get_id(op, id, &cur)) {
        return op->err->status;
    }
    bool was_archived = json_is_true(json_object_get(cur, "archived"));
    int rc = merge_patch(op, cur, args, fixed);
    if (rc == 0) {
        rc = resource_check(op, cur);
    }
    if (rc == 0) {
        rc = resource_write(op, id, cur, NULL);
    }
    if (rc == 0 && json_object_get(args, "archived") != NULL &&
        !json_is_null(json_object_get(args, "archived"))) {
        json_object_set_new(cur, "archived", json_boolean(was_archived));
        rc = resource_archive(op, id, cur, archived);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_resource_get_id(op, id, out);
}

/* DELETE /v1/resources/{id}: a resource with history cannot disappear, so
 * deleting archives it (the same as PATCH {"archived": true}). */
static int
op_resource_archive(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        args_id(op, args, "id", "res", true, &id) || op_resource_get_id(op, id, &cur)) {
        return op->err->status;
    }
    int rc = resource_archive(op, id, cur, true);
    json_decref(cur);
    return rc != 0 ? rc : op_resource_get_id(op, id, out);
}

/* ---------- tenants ---------- */

/* A growable list of building ids. */
struct ids {
    int64_t *v;
    size_t n, cap;
};

static int
ids_push(struct ids *ids, int64_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap != 0 ? 2 * ids->cap : 8;
        int64_t *v = realloc(ids->v, cap * sizeof *v);
        if (v == NULL) {
            return ENG_ENOMEM;
        }
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

static bool
ids_has(const struct ids *ids, int64_t id)
{
    for (size_t i = 0; i < ids->n; i++) {
        if (ids->v[i] == id) {
            return true;
        }
    }
    return false;
}

static int
lease_collected(void *ud, int64_t building_id)
{
    return ids_push(ud, building_id);
}

/* The tenant's current leases into *ids (the caller frees ids->v). */
static int
tenant_leases(struct op *op, int64_t tenant_id, struct ids *ids)
{
    int rc = store_tenant_buildings_each(op->store, tenant_id, lease_collected, ids, op->err);
    if (rc == ENG_ENOMEM) {
        return oom(op);
    }
    return rc;
}

/* The tenant as JSON, its leases included; *out NULL when out of memory. */
static int
tenant_json(struct op *op, const struct tenant_row *t, json_t **out)
{
    struct ids leases = {0};
    *out = NULL;
    if (tenant_leases(op, t->id, &leases) != 0) {
        free(leases.v);
        return op->err->status;
    }
    json_t *bids = json_array();
    for (size_t i = 0; bids != NULL && i < leases.n; i++) {
        if (json_array_append_new(bids, id_json("bld", leases.v[i])) != 0) {
            json_decref(bids);
            bids = NULL;
        }
    }
    free(leases.v);
    if (bids != NULL) {
        *out = json_pack("{s:o, s:s, s:b, s:o}", "id", id_json("ten", t->id), "name", t->name,
                         "cross_building", t->cross_building, "building_ids", bids);
    }
    return *out != NULL ? 0 : oom(op);
}

/* Validates a tenant object and collects its buildings into *leases.
 * `before` holds the tenant's current leases (empty on create): a scoped
 * admin may add or remove only leases inside its scope (PRODUCT.md §8);
 * leases outside it may only stay as they are (403 otherwise). */
static int
tenant_check(struct op *op, json_t *t, const struct ids *before, struct ids *leases)
{
    static const char *const keys[] = {"id", "name", "building_ids", "cross_building", NULL};
    const char *s;
    bool b;
    json_t *bids = NULL;
    if (args_only(op, t, keys) || args_text(op, t, "name", true, NAME_MAX_BYTES, &s) ||
        args_bool(op, t, "cross_building", false, &b) ||
        args_string_array(op, t, "building_ids", 200, &bids)) {
        return op->err->status;
    }
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(bids, i, item) {
        int64_t bid;
        bool found = false;
        if (id_parse("bld", json_string_value(item), &bid) != 0) {
            rc = op_invalid(op, "building_ids", "unknown building '%.*s'",
                            text_quote_len(json_string_value(item), 40),
                            json_string_value(item));
        } else if (ids_has(leases, bid) || ids_has(before, bid)) {
            /* a duplicate, or a lease kept as it is */
        } else if (!op_sees_building(op, bid)) {
            rc = op_forbidden(op, "add a lease in a building outside your scope");
        } else if (store_exists(op->store, STORE_BUILDING, bid, &found, op->err) != 0) {
            rc = op->err->status;
        } else if (!found) {
            rc = op_invalid(op, "building_ids", "unknown building '%.*s'",
                            text_quote_len(json_string_value(item), 40),
                            json_string_value(item));
        }
        if (rc == 0 && !ids_has(leases, bid) && ids_push(leases, bid) != 0) {
            rc = oom(op);
        }
        if (rc != 0) {
            break;
        }
    }
    json_decref(bids);
    for (size_t k = 0; rc == 0 && k < before->n; k++) {
        if (!ids_has(leases, before->v[k]) && !op_sees_building(op, before->v[k])) {
            rc = op_forbidden(op, "remove a lease in a building outside your scope");
        }
    }
    return rc;
}

/* Writes a checked tenant: a new one when id is 0 (*new_id set).  Its
 * leases are replaced only when the object names building_ids. */
static int
tenant_write(struct op *op, int64_t id, json_t *t, const struct ids *leases, int64_t *new_id)
{
    struct tenant_row row = {.id = id, .created_at = op->now};
    row.cross_building = json_is_true(json_object_get(t, "cross_building"));
    if (copy_field(op, row.name, sizeof row.name, field_str(t, "name"), "name") != 0) {
        return op->err->status;
    }
    int rc;
    if (id == 0) {
        rc = store_tenant_insert(op->store, &row, &id, op->err);
        *new_id = id;
    } else {
        rc = store_tenant_update(op->store, &row, op->err);
    }
    if (rc != 0 || json_object_get(t, "building_ids") == NULL) {
        return rc;
    }
    return store_tenant_buildings_set(op->store, id, leases->v, leases->n, op->err);
}

static int
op_tenant_get_id(struct op *op, int64_t id, json_t **out)
{
    bool sees = false, found = false;
    struct tenant_row t;
    if (op_check_sees_tenant(op, id, &sees) != 0) {
        return op->err->status;
    }
    if (!sees) {
        return op_not_found(op, "tenant");
    }
    if (store_tenant_get(op->store, id, &t, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "tenant");
    }
    return tenant_json(op, &t, out);
}

static int
op_tenant_create(struct op *op, json_t *args, json_t **out)
{
    struct ids none = {0}, leases = {0};
    if (op_require_assigner(op) || tenant_check(op, args, &none, &leases)) {
        free(leases.v);
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        free(leases.v);
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    /* A key limited to buildings reaches a tenant through a lease inside
     * its scope: one leasing none of them would be created out of reach. */
    if (op->who->building_count > 0 && leases.n == 0) {
        free(leases.v);
        return op_invalid(op, "building_ids",
                          "a key limited to buildings creates tenants leasing at least one of "
                          "them");
    }
    int64_t id = 0;
    int rc = tenant_write(op, 0, args, &leases, &id);
    free(leases.v);
    if (rc != 0) {
        return rc;
    }
    op->created = true;
    return op_tenant_get_id(op, id, out);
}

static int
op_tenant_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "ten", true, &id)) {
        return op->err->status;
    }
    return op_tenant_get_id(op, id, out);
}

static int
tenant_listed(void *ud, const struct tenant_row *t)
{
    struct lister *l = ud;
    bool sees = false;
    json_t *json = NULL;
    if (op_check_sees_tenant(l->op, t->id, &sees) != 0 ||
        (sees && tenant_json(l->op, t, &json) != 0)) {
        return l->op->err->status;
    }
    return list_add(l, t->id, sees, json);
}

static int
op_tenant_list(struct op *op, json_t *args, json_t **out)
{
    struct page page;
    if (args_only(op, args, LIST_KEYS) || args_page(op, args, &page)) {
        return op->err->status;
    }
    struct lister l = {.op = op};
    pager_init(&l.pg, &page);
    int rc = store_tenant_each(op->store, page.after, page.limit + 1, tenant_listed, &l, op->err);
    return pager_finish(&l.pg, op, rc, out);
}

static int
op_tenant_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "ten", true, &id) ||
        op_tenant_get_id(op, id, &cur)) {
        return op->err->status;
    }
    struct ids before = {0}, leases = {0};
    bool was_cross = json_is_true(json_object_get(cur, "cross_building"));
    int rc = tenant_leases(op, id, &before);
    if (rc == 0) {
        rc = merge_patch(op, cur, args, fixed);
    }
    if (rc == 0) {
        rc = tenant_check(op, cur, &before, &leases);
    }
    /* cross_building decides which lots pay in every building the tenant
     * leases: a key limited to buildings changes it only when it reaches
     * all of them (PRODUCT.md §8). */
    for (size_t k = 0; rc == 0 && k < leases.n; k++) {
        if (json_is_true(json_object_get(cur, "cross_building")) != was_cross &&
            !op_sees_building(op, leases.v[k])) {
            rc = op_forbidden(op, "change cross_building of a tenant leasing a building outside "
                                  "your scope");
        }
    }
    if (rc == 0) {
        rc = tenant_write(op, id, cur, &leases, NULL);
    }
    free(before.v);
    free(leases.v);
    json_decref(cur);
    return rc != 0 ? rc : op_tenant_get_id(op, id, out);
}

/* ---------- users ---------- */

static json_t *
user_json(const struct user_row *u)
{
    return json_pack("{s:o, s:o, s:s, s:s, s:O}", "id", id_json("usr", u->id), "tenant_id",
                     id_json("ten", u->tenant_id), "name", u->name, "email", u->email, "roles",
                     u->roles);
}

static int
user_check(struct op *op, json_t *u)
{
    static const char *const keys[] = {"id", "tenant_id", "name", "email", "roles", NULL};
    const char *s;
    int64_t tid;
    json_t *roles = NULL;
    if (args_only(op, u, keys) || args_id(op, u, "tenant_id", "ten", true, &tid) ||
        args_text(op, u, "name", true, NAME_MAX_BYTES, &s) ||
        args_text(op, u, "email", false, NAME_MAX_BYTES, &s) ||
        args_string_array(op, u, "roles", 50, &roles)) {
        return op->err->status;
    }
    json_decref(roles);
    if (s != NULL && strchr(s, '@') == NULL) {
        return op_invalid(op, "email", "'email' is not an e-mail address");
    }
    bool sees = false, found = false;
    if (op_check_sees_tenant(op, tid, &sees) != 0 ||
        (sees && store_exists(op->store, STORE_TENANT, tid, &found, op->err) != 0)) {
        return op->err->status;
    }
    if (!found) {
        return op_invalid(op, "tenant_id", "unknown tenant");
    }
    return 0;
}

/* Writes a checked user: a new one when id is 0 (*new_id set). */
static int
user_write(struct op *op, int64_t id, json_t *u, int64_t *new_id)
{
    struct user_row row = {.id = id, .created_at = op->now};
    if (id_parse("ten", field_str(u, "tenant_id"), &row.tenant_id) != 0) {
        return op_invalid(op, "tenant_id", "'tenant_id' is not a valid id");
    }
    const char *email = field_str(u, "email");
    if (copy_field(op, row.name, sizeof row.name, field_str(u, "name"), "name") ||
        copy_field(op, row.email, sizeof row.email, email != NULL ? email : "", "email")) {
        return op->err->status;
    }
    json_t *roles = json_object_get(u, "roles");
    row.roles = json_is_array(roles) ? roles : NULL; /* borrowed; NULL stores [] */
    if (id == 0) {
        return store_user_insert(op->store, &row, new_id, op->err);
    }
    return store_user_update(op->store, &row, op->err);
}

static int
op_user_get_id(struct op *op, int64_t id, json_t **out)
{
    struct user_row u;
    bool found = false, sees = false;
    if (store_user_get(op->store, id, &u, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "user");
    }
    int rc = op_check_sees_user(op, u.tenant_id, id, &sees);
    if (rc == 0 && !sees) {
        rc = op_not_found(op, "user");
    }
    if (rc == 0) {
        *out = user_json(&u);
        rc = *out != NULL ? 0 : oom(op);
    }
    store_user_clear(&u);
    return rc;
}

static int
op_user_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_assigner(op) || user_check(op, args)) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    int64_t id = 0;
    if (user_write(op, 0, args, &id) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_user_get_id(op, id, out);
}

static int
op_user_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "usr", true, &id)) {
        return op->err->status;
    }
    return op_user_get_id(op, id, out);
}

static int
user_listed(void *ud, const struct user_row *u)
{
    struct lister *l = ud;
    bool sees = false;
    if (op_check_sees_user(l->op, u->tenant_id, u->id, &sees) != 0) {
        return l->op->err->status;
    }
    return list_add(l, u->id, sees, sees ? user_json(u) : NULL);
}

static int
op_user_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", NULL};
    int64_t tid;
    struct page page;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &tid) ||
        args_page(op, args, &page)) {
        return op->err->status;
    }
    struct lister l = {.op = op};
    pager_init(&l.pg, &page);
    int rc = store_user_each(op->store, tid, page.after, page.limit + 1, user_listed, &l,
                             op->err);
    return pager_finish(&l.pg, op, rc, out);
}

static int
op_user_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {"tenant_id", NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "usr", true, &id) ||
        op_user_get_id(op, id, &cur)) {
        return op->err->status;
    }
    /* A user created without an e-mail reads back as "": not an address to
     * check again (found by the authorization matrix: such a user could not
     * be patched at all). */
    const char *email = field_str(cur, "email");
    if (email != NULL && email[0] == '\0') {
        json_object_del(cur, "email");
    }
    int rc = merge_patch(op, cur, args, fixed);
    if (rc == 0) {
        rc = user_check(op, cur);
    }
    if (rc == 0) {
        rc = user_write(op, id, cur, NULL);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_user_get_id(op, id, out);
}

const struct op_def ops_portfolio[] = {
    {"buildings.create", op_building_create, true},
    {"buildings.get", op_building_get, false},
    {"buildings.list", op_building_list, false},
    {"buildings.patch", op_building_patch, true},
    {"resources.create", op_resource_create, true},
    {"resources.get", op_resource_get, false},
    {"resources.list", op_resource_list, false},
    {"resources.patch", op_resource_patch, true},
    {"resources.archive", op_resource_archive, true},
    {"tenants.create", op_tenant_create, true},
    {"tenants.get", op_tenant_get, false},
    {"tenants.list", op_tenant_list, false},
    {"tenants.patch", op_tenant_patch, true},
    {"users.create", op_user_create, true},
    {"users.get", op_user_get, false},
    {"users.list", op_user_list, false},
    {"users.patch", op_user_patch, true},
    {NULL, NULL, false},
};
