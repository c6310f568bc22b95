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
    bool found = false;
    if (op_sees_building(op, *bid) &&
        store_exists(op->store, STORE_BUILDING, *bid, &found, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
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
        stage_set(op, bid, versions) != 0) {
        return op->err->status;
    }
    *out = json_pack("{s:o, s:s, s:I, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     name, "version", (json_int_t)version, "sha256", sha, "label",
                     versions[kind]);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* Back to the default: the building's uploaded version of the kind stops
 * being active, so it serves its policy file if it has one, else the
 * shipped default (what a reload would build). */
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
                     policy_kind_name(kind), "version", "default", "sha256",
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
        stage_set(op, bid, versions) != 0) {
        return op->err->status;
    }
    *out = json_pack("{s:o, s:s, s:I, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     name, "version", (json_int_t)version, "sha256", sha, "label",
                     versions[kind]);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* The reload of every building: each set is built from this read snapshot
 * and installed unless a committed change installed a set since the reload
 * began (its set is newer than this snapshot: it stays). */
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
