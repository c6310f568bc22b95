/* policies.c - policy_version and policy_active. */
#include "policies.h"

#include <string.h>

#include "cluster.h"
#include "internal.h"

int
store_policy_active_each(struct store *s, int64_t building_id,
                         int (*cb)(void *ud, const struct policy_active_row *row), void *ud,
                         struct eng_error *err)
{
    STORE_SQL(q, "SELECT pv.kind, pv.version, pv.source, pv.sha256"
                 " FROM policy_active pa JOIN policy_version pv ON pv.id = pa.version_id"
                 " WHERE pa.building_id = ? ORDER BY pv.kind");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    int rc;
    while ((rc = sq_step(s, st, "active policies", err)) == 1) {
        struct policy_active_row row = {
            .kind = sq_col_text(st, 0),
            .version = sq_col_int(st, 1),
            .source = sq_col_text(st, 2),
            .source_len = sq_col_bytes(st, 2),
            .sha256 = sq_col_text(st, 3),
        };
        int stop = cb(ud, &row);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_policy_active_get(struct store *s, int64_t building_id, const char *kind,
                        struct policy_active_info *out, bool *found, struct eng_error *err)
{
    STORE_SQL(q, "SELECT pv.id, pv.version, pv.sha256, pv.author, pa.loaded_at"
                 " FROM policy_active pa JOIN policy_version pv ON pv.id = pa.version_id"
                 " WHERE pa.building_id = ? AND pa.kind = ?");
    memset(out, 0, sizeof *out);
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    int rc = sq_step(s, st, "active policy", err);
    if (rc <= 0) {
        return rc;
    }
    out->version_id = sq_col_int(st, 0);
    out->version = sq_col_int(st, 1);
    out->loaded_at = sq_col_int(st, 4);
    rc = sq_col_copy(st, 2, out->sha256, sizeof out->sha256, "policy sha256", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 3, out->author, sizeof out->author, "policy author", err);
    }
    sq_reset(st);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    *found = true;
    return 0;
}

int
store_policy_next_version(struct store *s, int64_t building_id, const char *kind,
                          int64_t *version, struct eng_error *err)
{
    STORE_SQL(q, "SELECT coalesce(max(version), 0) + 1 FROM policy_version"
                 " WHERE building_id = ? AND kind = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    int rc = sq_step(s, st, "next policy version", err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 0) {
        /* An aggregate always returns a row: none is a broken statement. */
        return eng_error_code(err, ENG_ESTORE, "storage_error", "internal storage error");
    }
    *version = sq_col_int(st, 0);
    sq_reset(st);
    return 0;
}

int
store_policy_version_insert(struct store *s, int64_t building_id, const char *kind,
                            int64_t version, const char *source, const char *sha256,
                            const char *author, int64_t now, int64_t *id, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO policy_version (building_id, kind, version, source, sha256,"
                 " author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    sq_int(s, st, 3, version);
    sq_text(s, st, 4, source);
    sq_text(s, st, 5, sha256);
    sq_text(s, st, 6, author);
    sq_int(s, st, 7, now);
    int rc = sq_exec(s, st, "policy version insert", err);
    if (rc != 0) {
        return rc;
    }
    *id = sq_last_id(s);
    return 0;
}

int
store_policy_version_find(struct store *s, int64_t building_id, const char *kind,
                          int64_t version, int64_t *id, char sha256[POLICY_SHA256_HEX_LEN + 1],
                          bool *found, struct eng_error *err)
{
    STORE_SQL(q, "SELECT id, sha256 FROM policy_version"
                 " WHERE building_id = ? AND kind = ? AND version = ?");
    *found = false;
    *id = 0;
    sha256[0] = '\0';
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    sq_int(s, st, 3, version);
    int rc = sq_step(s, st, "policy version", err);
    if (rc <= 0) {
        return rc;
    }
    rc = sq_col_copy(st, 1, sha256, POLICY_SHA256_HEX_LEN + 1, "policy sha256", err);
    if (rc == 0) {
        *id = sq_col_int(st, 0);
        *found = true;
    }
    sq_reset(st);
    return rc;
}

int
store_policy_activate(struct store *s, int64_t building_id, const char *kind,
                      int64_t version_id, int64_t now, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO policy_active (building_id, kind, version_id, loaded_at)"
                 " VALUES (?, ?, ?, ?) ON CONFLICT (building_id, kind)"
                 " DO UPDATE SET version_id = excluded.version_id,"
                 " loaded_at = excluded.loaded_at");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    sq_int(s, st, 3, version_id);
    sq_int(s, st, 4, now);
    /* Other nodes learn of the change by the policy generation (cluster.h). */
    if (sq_exec(s, st, "policy activate", err) != 0) {
        return err->status;
    }
    return store_cluster_policy_bump(s, err);
}

int
store_policy_deactivate(struct store *s, int64_t building_id, const char *kind,
                        struct eng_error *err)
{
    STORE_SQL(q, "DELETE FROM policy_active WHERE building_id = ? AND kind = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    if (sq_exec(s, st, "policy deactivate", err) != 0) {
        return err->status;
    }
    return store_cluster_policy_bump(s, err);
}

int
store_policy_history_each(struct store *s, int64_t building_id, const char *kind,
                          int (*cb)(void *ud, const struct policy_version_row *row), void *ud,
                          struct eng_error *err)
{
    STORE_SQL(q, "SELECT pv.version, pv.sha256, pv.author, pv.created_at, pv.source,"
                 " pv.id = (SELECT version_id FROM policy_active WHERE building_id ="
                 " pv.building_id AND kind = pv.kind) FROM policy_version pv"
                 " WHERE pv.building_id = ? AND pv.kind = ? ORDER BY pv.version DESC");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_text(s, st, 2, kind);
    int rc;
    while ((rc = sq_step(s, st, "policy history", err)) == 1) {
        struct policy_version_row row = {
            .version = sq_col_int(st, 0),
            .sha256 = sq_col_text(st, 1),
            .author = sq_col_text(st, 2),
            .created_at = sq_col_int(st, 3),
            .source = sq_col_text(st, 4),
            .active = !sq_col_null(st, 5) && sq_col_int(st, 5) != 0,
        };
        int stop = cb(ud, &row);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_policy_buildings_each(struct store *s, int (*cb)(void *ud, int64_t building_id), void *ud,
                            struct eng_error *err)
{
    STORE_SQL(q, "SELECT id FROM building ORDER BY id");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "building ids", err)) == 1) {
        int stop = cb(ud, sq_col_int(st, 0));
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}
