/* ops_policies.c - per-building policy versions: upload, history, rollback,
 * back to default, reload (PRODUCT.md §6).
 *
 * Every change writes its rows first (a new version and its activation, a
 * rollback's activation, a return to the default) and then builds the
 * building's set from that same transaction: the set is compiled in a fresh
 * sandbox from exactly the versions the database now marks active, under
 * their real chunk names (policies/bld_3/pricing.lua@v4), and its examples
 * run.  If that fails the operation fails and its rows roll back, so a
 * refused upload leaves the running version serving.  The engine installs
 * the set once the transaction has committed, in commit order, so the last
 * committed change is the one served and requests in flight finish on the
 * set they started with. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "policies.h"
#include "portfolio.h"
#include "price_check.h"
#include "resources.h"
#include "sha256.h"
#include "timeutil.h"

/* Common arguments: a visible building and (optionally) a kind. */
static int
policy_target(struct op *op, json_t *args, bool need_kind, int64_t *bid, enum policy_kind *kind)
{
    const char *kind_s = NULL;
    if (args_id(op, args, "building_id", "bld", true, bid) ||
        (need_kind && args_string(op, args, "kind", true, 20, &kind_s))) {
        return op->err->status;
    }
    if (!op_is_admin(op)) {
        return op_forbidden(op, "read or change policies");
    }
    bool reaches = false;
    if (op_check_reaches(op, OP_OBJ_BUILDING, *bid, &reaches) != 0) {
        return op->err->status;
    }
    if (!reaches) {
        return op_not_found(op, "building");
    }
    if (need_kind && policy_kind_parse(kind_s, kind, NULL) != 0) {
        return op_invalid(op, "kind", "'kind' must be pricing, eligibility, order, rollover, "
                                      "refund or validate");
    }
    return 0;
}

/* One kind of GET /v1/buildings/{id}/policies: what the building serves
 * (its label) and, when it is an uploaded version, that version's row. */
static json_t *
policy_kind_json(struct op *op, int64_t bid, enum policy_kind kind, const char *label)
{
    const char *name = policy_kind_name(kind);
    struct policy_active_info info;
    bool found = false;
    if (store_policy_active_get(op->store, bid, name, &info, &found, op->err) != 0) {
        return NULL;
    }
    json_t *row;
    if (found) {
        row = json_pack("{s:s, s:s, s:I, s:s, s:o, s:s}", "kind", name, "label", label,
                        "version", (json_int_t)info.version, "sha256", info.sha256,
                        "loaded_at", json_time(info.loaded_at), "author", info.author);
    } else if (strncmp(label, "file:", 5) == 0) {
        row = json_pack("{s:s, s:s, s:s, s:s, s:n, s:n}", "kind", name, "label", label,
                        "version", "file", "sha256", label + 5, "loaded_at", "author");
    } else {
        row = json_pack("{s:s, s:s, s:s, s:s, s:n, s:n}", "kind", name, "label", label,
                        "version", "default", "sha256", op->env->policies->default_sha[kind],
                        "loaded_at", "author");
    }
    if (row == NULL) {
        eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    return row;
}

static int
op_policies_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", NULL};
    int64_t bid;
    enum policy_kind kind;
    if (args_only(op, args, keys) || policy_target(op, args, false, &bid, &kind)) {
        return op->err->status;
    }
    struct policy_set *set = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    if (policy_cache_get(op->env->policies, op->store, bid, &set, versions, op->err) != 0) {
        return op->err->status;
    }
    policy_set_release(set);
    json_t *kinds = json_object();
    if (kinds == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        json_t *row = policy_kind_json(op, bid, (enum policy_kind)k, versions[k]);
        if (row == NULL || json_object_set_new(kinds, policy_kind_name((enum policy_kind)k),
                                               row) != 0) {
            json_decref(kinds);
            return row == NULL ? op->err->status
                               : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        }
    }
    *out = json_pack("{s:o, s:o}", "building_id", id_json("bld", bid), "policies", kinds);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* Builds the building's set from this transaction, which has just written
 * the change (so it reads the versions now active, under their real chunk
 * names), and hands it to the engine to install after commit.  The labels go
 * to `versions`.  A set that does not compile or whose examples fail refuses
 * the change (422 policy_error, with the compiler's or the self-check's
 * words and line); a storage failure stays a storage failure. */
static int
stage_set(struct op *op, int64_t bid, char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX])
{
    struct policy_set *set = NULL;
    if (policy_cache_build(op->env->policies, op->store, bid, NULL, &set, versions, op->err) !=
        0) {
        if (op->err->status == ENG_ESTORE || op->err->status == ENG_ENOMEM) {
            return op->err->status;
        }
        return eng_error_recode(op->err, ENG_EREJECTED, "policy_error");
    }
    if (op->install_set != NULL) {
        policy_set_release(op->install_set); /* one change per op: never reached */
    }
    op->install_set = set;
    op->install_building = bid;
    memcpy(op->install_versions, versions, sizeof op->install_versions);
    return 0;
}

/* ---------- the pricing check of an upload ----------
 *
 * A pricing version whose results the booking path would refuse (NaN, a
 * float, a negative or huge amount, no unit) must not go live: every quote
 * of the building would answer 503.  Its own examples may not show it, so
 * the engine also runs the candidate set on representative bookings (the
 * building's first resources, or an example room when it has none; a few
 * lengths at 09:00 local a week from now) and refuses the version (422
 * policy_error) when a result fails the checks of price_check.h or the call
 * fails.  A refusal ({error = ...}) is a legitimate answer. */

/* Booking lengths tried, in minutes: half an hour, an hour, a morning, a day. */
static const int probe_minutes[] = {30, 60, 240, 480};
/* Resources of the building tried; the calls hold the single writer. */
#define PROBE_RESOURCES_MAX 8

struct probe {
    struct op *op;
    json_t *resources;
};

static int
probe_resource(void *ud, const struct resource_row *r)
{
    struct probe *p = ud;
    json_t *j = json_pack("{s:o, s:o, s:s, s:s, s:O, s:O, s:b}", "id", id_json("res", r->id),
                          "building_id", id_json("bld", r->building_id), "name", r->name, "kind",
                          r->kind, "tags", r->tags, "pricing", r->pricing, "credit_only",
                          r->credit_only);
    if (j == NULL || json_array_append_new(p->resources, j) != 0) {
        return eng_error_set(p->op->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

/* The resources the check prices: the building's first ones, else an
 * example room priced like the shipped defaults' documentation. */
static int
probe_resources(struct op *op, int64_t bid, json_t **out)
{
    struct probe p = {op, json_array()};
    if (p.resources == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (store_resource_each(op->store, bid, 0, PROBE_RESOURCES_MAX, probe_resource, &p,
                            op->err) != 0) {
        json_decref(p.resources);
        return op->err->status;
    }
    if (json_array_size(p.resources) == 0 &&
        json_array_append_new(
            p.resources,
            json_pack("{s:s, s:o, s:s, s:s, s:[], s:{s:{s:i}, s:{s:s, s:s, s:i, s:i}}, s:b}",
                      "id", "res_example", "building_id", id_json("bld", bid), "name",
                      "Example room", "kind", "meeting_room", "tags", "pricing", "money",
                      "per_hour", 7000, "credits", "unit", "hour", "model", "fixed", "per_hour",
                      1, "increment_minutes", 30, "credit_only", 0)) != 0) {
        json_decref(p.resources);
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = p.resources;
    return 0;
}

/* The ctx price() sees for a booking of `minutes` from `start`, as the
 * booking path builds it (a quote: no payment method). */
static json_t *
probe_ctx(struct op *op, const struct building_row *bl, json_t *resource, int64_t start,
          int minutes)
{
    struct civil_time lt;
    if (tz_local_time(bl->timezone, start, &lt, op->err) != 0) {
        return NULL;
    }
    json_t *ctx = json_pack(
        "{s:{s:I, s:I, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:i}, s:O, s:{s:s, s:s, s:[]},"
        " s:{s:o, s:s, s:s}, s:I, s:i}",
        "booking", "start", (json_int_t)start, "end", (json_int_t)(start + minutes * 60),
        "minutes", minutes, "local_start", "year", lt.year, "month", lt.month, "day", lt.day,
        "hour", lt.hour, "minute", lt.minute, "wday", lt.wday, "discount_pm", 0, "resource",
        resource, "user", "id", "usr_example", "tenant_id", "ten_example", "roles", "building",
        "id", id_json("bld", bl->id), "timezone", bl->timezone, "currency", bl->currency, "now",
        (json_int_t)op->now, "user_usage_month", 0);
    if (ctx == NULL) {
        eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    return ctx;
}

/* One representative booking: 0 when the result passes (or is a refusal). */
static int
probe_one(struct op *op, struct policy_set *set, const struct building_row *bl,
          json_t *resource, int64_t start, int minutes)
{
    json_t *ctx = probe_ctx(op, bl, resource, start, minutes);
    if (ctx == NULL) {
        return op->err->status;
    }
    json_t *res = NULL, *again = NULL;
    struct policy_price price;
    const char *refusal = NULL;
    int rc = policy_set_call(set, POLICY_PRICING, ctx, &res, op->err);
    /* Pure (PRODUCT.md §6): the same booking priced twice costs the same. */
    if (rc == 0) {
        rc = policy_set_call(set, POLICY_PRICING, ctx, &again, op->err);
    }
    if (rc == 0 && !json_equal(res, again)) {
        rc = eng_error_code(op->err, ENG_EREJECTED, "policy_error",
                            "pricing gave another answer for the same booking when run again: "
                            "a policy must be pure, keeping no state between calls");
    }
    json_decref(again);
    json_decref(ctx);
    if (rc == 0) {
        rc = policy_price_read(res, &price, &refusal, op->err);
    }
    json_decref(res);
    if (rc == 0 || op->err->status == ENG_ESTORE || op->err->status == ENG_ENOMEM) {
        return rc;
    }
    /* The call failed (an error, NaN or inf, its budget) or its result
     * would be refused: say which booking showed it, then what. */
    char what[ENG_MSG_MAX];
    snprintf(what, sizeof what, "%s", op->err->msg);
    const char *rid = json_string_value(json_object_get(resource, "id"));
    if (rid == NULL || strcmp(rid, "res_example") == 0) {
        rid = "an example room";
    }
    return eng_error_code(op->err, ENG_EREJECTED, "policy_error",
                          "pricing check: a %d-minute booking of %s: %.400s", minutes, rid,
                          what);
}

/* Runs the staged set's pricing on the representative bookings. */
static int
pricing_probe(struct op *op, int64_t bid)
{
    struct building_row bl;
    bool found = false;
    if (store_building_get(op->store, bid, &bl, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "building");
    }
    /* 09:00 local, a week after now: a working morning in the future. */
    struct civil_time lt;
    int64_t midnight = 0;
    json_t *resources = NULL;
    if (tz_local_time(bl.timezone, op->now + 7 * 86400, &lt, op->err) != 0 ||
        tz_local_midnight(bl.timezone, (struct civil_date){lt.year, lt.month, lt.day},
                          &midnight, op->err) != 0 ||
        probe_resources(op, bid, &resources) != 0) {
        return op->err->status;
    }
    int rc = 0;
    size_t i;
    json_t *resource;
    json_array_foreach(resources, i, resource) {
        for (size_t m = 0; rc == 0 && m < sizeof probe_minutes / sizeof probe_minutes[0]; m++) {
            rc = probe_one(op, op->install_set, &bl, resource, midnight + 9 * 3600,
                           probe_minutes[m]);
        }
        if (rc != 0) {
            break;
        }
    }
    json_decref(resources);
    return rc;
}

static int
op_policies_put(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", "source", "author", NULL};
    int64_t bid;
    enum policy_kind kind;
    const char *source, *author;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        policy_target(op, args, true, &bid, &kind) ||
        args_string(op, args, "source", true, op->env->policy_source_max, &source) ||
        args_string(op, args, "author", false, POLICY_AUTHOR_BYTES_MAX, &author)) {
        return op->err->status;
    }
    const char *name = policy_kind_name(kind);
    char sha[65];
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    sha256_hex(source, strlen(source), sha);
    int64_t version = 0, version_id = 0;
    if (store_policy_next_version(op->store, bid, name, &version, op->err) != 0 ||
        store_policy_version_insert(op->store, bid, name, version, source, sha,
                                    author != NULL ? author : op->who->name, op->now,
                                    &version_id, op->err) != 0 ||
        store_policy_activate(op->store, bid, name, version_id, op->now, op->err) != 0 ||
        stage_set(op, bid, versions) != 0 ||
        (kind == POLICY_PRICING && pricing_probe(op, bid) != 0)) {
        return op->err->status;
    }
    *out = json_pack("{s:o, s:s, s:I, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     name, "version", (json_int_t)version, "sha256", sha, "label",
                     versions[kind]);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* Back to the default: the building's uploaded version of the kind stops
 * being active, so it serves its policy file if it has one, else the
 * shipped default (what a reload would build).  The answer says which, as
 * GET .../policies does ("file" or "default"): the deployment's files
 * under policies/buildings/ are the building's defaults, and only a
 * change to those files (and a reload) removes them. */
static int
op_policies_delete(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", NULL};
    int64_t bid;
    enum policy_kind kind;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        policy_target(op, args, true, &bid, &kind)) {
        return op->err->status;
    }
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    if (store_policy_deactivate(op->store, bid, policy_kind_name(kind), op->err) != 0 ||
        stage_set(op, bid, versions) != 0) {
        return op->err->status;
    }
    const char *label = versions[kind];
    bool file = strncmp(label, "file:", 5) == 0;
    *out = json_pack("{s:o, s:s, s:s, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     policy_kind_name(kind), "version", file ? "file" : "default", "sha256",
                     file ? label + 5 : op->env->policies->default_sha[kind], "label", label);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

struct history {
    struct op *op;
    json_t *rows;
};

static int
history_row(void *ud, const struct policy_version_row *row)
{
    struct history *h = ud;
    json_t *j = json_pack("{s:I, s:s, s:s, s:o, s:s, s:b}", "version", (json_int_t)row->version,
                          "sha256", row->sha256, "author", row->author, "created_at",
                          json_time(row->created_at), "source", row->source, "active",
                          row->active);
    if (j == NULL || json_array_append_new(h->rows, j) != 0) {
        return eng_error_set(h->op->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

static int
op_policies_history(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", NULL};
    int64_t bid;
    enum policy_kind kind;
    if (args_only(op, args, keys) || policy_target(op, args, true, &bid, &kind)) {
        return op->err->status;
    }
    struct history h = {op, json_array()};
    if (h.rows == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (store_policy_history_each(op->store, bid, policy_kind_name(kind), history_row, &h,
                                  op->err) != 0) {
        json_decref(h.rows);
        return op->err->status;
    }
    *out = json_pack("{s:o, s:s, s:o}", "building_id", id_json("bld", bid), "kind",
                     policy_kind_name(kind), "data", h.rows);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

static int
op_policies_rollback(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"building_id", "kind", "version", NULL};
    int64_t bid, version;
    enum policy_kind kind;
    if (op_require_assigner(op) || args_only(op, args, keys) ||
        policy_target(op, args, true, &bid, &kind) ||
        args_int(op, args, "version", 1, INT32_MAX, 0, &version)) {
        return op->err->status;
    }
    if (version == 0) {
        return op_invalid(op, "version", "'version' is required");
    }
    const char *name = policy_kind_name(kind);
    int64_t vid = 0;
    char sha[65];
    bool found = false;
    if (store_policy_version_find(op->store, bid, name, version, &vid, sha, &found, op->err) !=
        0) {
        return op->err->status;
    }
    if (!found) {
        return op_not_found(op, "policy version");
    }
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    if (store_policy_activate(op->store, bid, name, vid, op->now, op->err) != 0 ||
        stage_set(op, bid, versions) != 0 ||
        (kind == POLICY_PRICING && pricing_probe(op, bid) != 0)) {
        return op->err->status;
    }
    *out = json_pack("{s:o, s:s, s:I, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     name, "version", (json_int_t)version, "sha256", sha, "label",
                     versions[kind]);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* The reload of every building: each set is built from this read snapshot
 * and installed unless a committed change installed a set for that building
 * since the reload began (its set is newer than this snapshot: it stays).
 * Every building in the database is rebuilt, those created after start-up
 * included, and each reads its policy files afresh. */
struct reload {
    struct op *op;
    uint64_t epoch;
    int reloaded;
    json_t *failed;
};

static int
reload_building(void *ud, int64_t bid)
{
    struct reload *r = ud;
    struct policy_set *set = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    struct eng_error e = {0};
    if (policy_cache_build(r->op->env->policies, r->op->store, bid, NULL, &set, versions, &e) !=
        0) {
        if (e.status == ENG_ESTORE || e.status == ENG_ENOMEM) {
            *r->op->err = e;
            return e.status;
        }
        /* A building whose new set fails keeps the one it has. */
        json_t *f = json_pack("{s:o, s:s}", "building_id", id_json("bld", bid), "message", e.msg);
        if (f == NULL || json_array_append_new(r->failed, f) != 0) {
            return eng_error_set(r->op->err, ENG_ENOMEM, "out of memory");
        }
        return 0;
    }
    (void)policy_cache_install_since(r->op->env->policies, bid, set, versions, r->epoch);
    policy_set_release(set);
    r->reloaded++;
    return 0;
}

/* Rebuilds every building's set from its current sources (files included);
 * a building whose new set fails keeps the one it has. */
static int
op_policies_reload(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {NULL};
    if (op_require_super(op) || args_only(op, args, keys)) {
        return op->err->status;
    }
    /* Taken before this operation's first read starts its snapshot. */
    struct reload r = {op, policy_cache_epoch(op->env->policies), 0, json_array()};
    if (r.failed == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    if (store_policy_buildings_each(op->store, reload_building, &r, op->err) != 0) {
        json_decref(r.failed);
        return op->err->status;
    }
    *out = json_pack("{s:i, s:o}", "reloaded", r.reloaded, "failed", r.failed);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

const struct op_def ops_policies[] = {
    {"policies.get", op_policies_get, false},
    {"policies.put", op_policies_put, true},
    {"policies.delete", op_policies_delete, true},
    {"policies.history", op_policies_history, false},
    {"policies.rollback", op_policies_rollback, true},
    {"policies.reload", op_policies_reload, false},
    {NULL, NULL, false},
};
