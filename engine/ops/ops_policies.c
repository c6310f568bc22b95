/* ops_policies.c - per-building policy versions: upload, history, rollback,
 * back to default, reload (PRODUCT.md §6).
 *
 * A new version is compiled in a fresh sandboxed state with the building's
 * other active kinds, its examples run, and only if that succeeds is it
 * stored; the new set is installed after the transaction commits, so a
 * refused upload leaves the running version serving and requests in flight
 * finish on the set they started with. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
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
    int rc;
    if (!op_is_admin(op)) {
        return op_forbidden(op, "read or change policies");
    }
    if (!op_sees_building(op, *bid) ||
        sql_scalar_int(op, "SELECT count(*) FROM building WHERE id = ?", *bid, 0, &rc) == 0) {
        return op_not_found(op, "building");
    }
    if (need_kind && policy_kind_parse(kind_s, kind, NULL) != 0) {
        return op_invalid(op, "kind", "'kind' must be pricing, eligibility, order, rollover, "
                                      "refund or validate");
    }
    return 0;
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
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        const char *name = policy_kind_name((enum policy_kind)k);
        json_t *row = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "kind", name, "label",
                                versions[k], "version", json_string("default"), "sha256",
                                json_string(op->env->policies->default_sha[k]), "loaded_at", json_null(),
                                "author", json_null());
        if (strncmp(versions[k], "file:", 5) == 0) {
            json_object_set_new(row, "version", json_string("file"));
            json_object_set_new(row, "sha256", json_string(versions[k] + 5));
        }
        sqlite3_stmt *st = store_prep(op->store,
                                      "SELECT pv.version, pv.sha256, pa.loaded_at, pv.author"
                                      " FROM policy_active pa JOIN policy_version pv ON"
                                      " pv.id = pa.version_id WHERE pa.building_id = ? AND"
                                      " pa.kind = ?",
                                      op->err);
        if (st == NULL) {
            json_decref(row);
            json_decref(kinds);
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, bid);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            json_object_set_new(row, "version", json_integer(sqlite3_column_int(st, 0)));
            json_object_set_new(row, "sha256",
                                json_string((const char *)sqlite3_column_text(st, 1)));
            json_object_set_new(row, "loaded_at", json_time(sqlite3_column_int64(st, 2)));
            json_object_set_new(row, "author",
                                json_string((const char *)sqlite3_column_text(st, 3)));
        }
        sqlite3_reset(st);
        json_object_set_new(kinds, name, row);
    }
    *out = json_pack("{s:o, s:o}", "building_id", id_json("bld", bid), "policies", kinds);
    return 0;
}

/* Compiles the building's set with `source` for `kind`; on success hands
 * it to the op for installation after commit. */
static int
stage_set(struct op *op, int64_t bid, enum policy_kind kind, const char *source, size_t len,
          const char *label)
{
    struct policy_candidate cand = {kind, source, len};
    struct policy_set *set = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    if (policy_cache_build(op->env->policies, op->store, bid, &cand, &set, versions, op->err) != 0) {
        /* The compiler's or the self-check's own words, with the line. */
        return eng_error_recode(op->err, ENG_EREJECTED, "policy_error");
    }
    snprintf(versions[kind], sizeof versions[kind], "%s", label);
    op->install_set = set;
    op->install_building = bid;
    memcpy(op->install_versions, versions, sizeof versions);
    return 0;
}

static int
activate(struct op *op, int64_t bid, const char *kind, int64_t version_id)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO policy_active (building_id, kind, version_id,"
                                  " loaded_at) VALUES (?, ?, ?, ?) ON CONFLICT (building_id, kind)"
                                  " DO UPDATE SET version_id = excluded.version_id,"
                                  " loaded_at = excluded.loaded_at",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, version_id);
    sqlite3_bind_int64(st, 4, op->now);
    return sql_step_done(op, st, "policy activate");
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
        args_string(op, args, "author", false, 100, &author)) {
        return op->err->status;
    }
    const char *name = policy_kind_name(kind);
    char sha[65], label[48];
    sha256_hex(source, strlen(source), sha);
    int rc;
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT coalesce(max(version), 0) + 1 FROM policy_version"
                                  " WHERE building_id = ? AND kind = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
    sqlite3_reset(st);
    snprintf(label, sizeof label, "v%d:%.12s", version, sha);
    if (stage_set(op, bid, kind, source, strlen(source), label) != 0) {
        return op->err->status;
    }
    st = store_prep(op->store,
                    "INSERT INTO policy_version (building_id, kind, version, source, sha256,"
                    " author, created_at) VALUES (?,?,?,?,?,?,?)",
                    op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, version);
    sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sha, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, author ? author : op->who->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, op->now);
    rc = sql_step_done(op, st, "policy version");
    if (rc == 0) {
        rc = activate(op, bid, name, sqlite3_last_insert_rowid(op->store->db));
    }
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:o, s:s, s:i, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     name, "version", version, "sha256", sha, "label", label);
    return 0;
}

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
    char label[48];
    snprintf(label, sizeof label, "default:%.12s", op->env->policies->default_sha[kind]);
    const struct policy_source *def = &op->env->policies->defaults[kind];
    if (stage_set(op, bid, kind, def->source, def->len, label) != 0) {
        return op->err->status;
    }
    sqlite3_stmt *st = store_prep(op->store,
                                  "DELETE FROM policy_active WHERE building_id = ? AND kind = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, policy_kind_name(kind), -1, SQLITE_STATIC);
    if (sql_step_done(op, st, "policy delete") != 0) {
        return ENG_ESTORE;
    }
    *out = json_pack("{s:o, s:s, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     policy_kind_name(kind), "version", "default", "sha256",
                     op->env->policies->default_sha[kind]);
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
    sqlite3_stmt *st = store_prep(
        op->store,
        "SELECT pv.version, pv.sha256, pv.author, pv.created_at, pv.source,"
        " pv.id = (SELECT version_id FROM policy_active WHERE building_id = pv.building_id"
        " AND kind = pv.kind) FROM policy_version pv WHERE pv.building_id = ? AND pv.kind = ?"
        " ORDER BY pv.version DESC",
        op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, policy_kind_name(kind), -1, SQLITE_STATIC);
    json_t *rows = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(
            rows, json_pack("{s:i, s:s, s:s, s:o, s:s, s:b}", "version", sqlite3_column_int(st, 0),
                            "sha256", (const char *)sqlite3_column_text(st, 1), "author",
                            (const char *)sqlite3_column_text(st, 2), "created_at",
                            json_time(sqlite3_column_int64(st, 3)), "source",
                            (const char *)sqlite3_column_text(st, 4), "active",
                            sqlite3_column_int(st, 5) != 0));
    }
    sqlite3_reset(st);
    *out = json_pack("{s:o, s:s, s:o}", "building_id", id_json("bld", bid), "kind",
                     policy_kind_name(kind), "data", rows);
    return 0;
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
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT id, source, sha256 FROM policy_version WHERE"
                                  " building_id = ? AND kind = ? AND version = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, policy_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return op_not_found(op, "policy version");
    }
    int64_t vid = sqlite3_column_int64(st, 0);
    char *source = strdup((const char *)sqlite3_column_text(st, 1));
    char sha[65], label[48];
    snprintf(sha, sizeof sha, "%s", (const char *)sqlite3_column_text(st, 2));
    sqlite3_reset(st);
    if (source == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    snprintf(label, sizeof label, "v%d:%.12s", (int)version, sha);
    int rc = stage_set(op, bid, kind, source, strlen(source), label);
    free(source);
    if (rc == 0) {
        rc = activate(op, bid, policy_kind_name(kind), vid);
    }
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:o, s:s, s:I, s:s, s:s}", "building_id", id_json("bld", bid), "kind",
                     policy_kind_name(kind), "version", (json_int_t)version, "sha256", sha,
                     "label", label);
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
    sqlite3_stmt *st = store_prep(op->store, "SELECT id FROM building ORDER BY id", op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    json_t *ids = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(ids, json_integer(sqlite3_column_int64(st, 0)));
    }
    sqlite3_reset(st);
    json_t *failed = json_array();
    int reloaded = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        int64_t bid = (int64_t)json_integer_value(v);
        struct policy_set *set = NULL;
        char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
        struct eng_error e = {0};
        if (policy_cache_build(op->env->policies, op->store, bid, NULL, &set, versions, &e) != 0) {
            json_array_append_new(failed, json_pack("{s:o, s:s}", "building_id",
                                                    id_json("bld", bid), "message", e.msg));
            continue;
        }
        policy_cache_install(op->env->policies, bid, set, versions);
        policy_set_release(set);
        reloaded++;
    }
    json_decref(ids);
    *out = json_pack("{s:i, s:o}", "reloaded", reloaded, "failed", failed);
    return 0;
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
