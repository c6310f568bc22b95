/* keys.c - the api_key table. */
#include "keys.h"

#include <string.h>

#include "internal.h"

int
store_key_by_hash(struct store *s, const char *hash, struct key_row *out, bool *found,
                  struct eng_error *err)
{
    STORE_SQL(q, "SELECT k.id, k.role, k.tenant_id, k.user_id, k.building_ids, k.key_hash,"
                 " k.revoked_at, u.id, u.tenant_id FROM api_key k"
                 " LEFT JOIN user u ON u.id = k.user_id WHERE k.key_hash = ?");
    memset(out, 0, sizeof *out);
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, hash);
    int rc = sq_step(s, st, "api key lookup", err);
    if (rc <= 0) {
        return rc;
    }
    out->id = sq_col_int(st, 0);
    out->tenant_id = sq_col_int(st, 2);
    out->user_id = sq_col_int(st, 3);
    out->has_scope = !sq_col_null(st, 4);
    out->revoked = !sq_col_null(st, 6);
    out->user_exists = !sq_col_null(st, 7);
    out->user_tenant_id = sq_col_int(st, 8);
    rc = sq_col_copy(st, 1, out->role, sizeof out->role, "key role", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 5, out->key_hash, sizeof out->key_hash, "key hash", err);
    }
    if (rc == 0 && out->has_scope) {
        rc = sq_col_copy(st, 4, out->scope, sizeof out->scope, "key scope", err);
    }
    /* Reset at once: a statement left stepping would hold a read snapshot. */
    sq_reset(st);
    *found = rc == 0;
    return rc;
}

int
store_key_insert(struct store *s, const struct key_new *k, int64_t *id, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO api_key (name, role, tenant_id, user_id, building_ids, key_hash,"
                 " created_at) VALUES (?,?,?,?,?,?,?)");
    *id = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, k->name);
    sq_text(s, st, 2, k->role);
    if (k->tenant_id != 0) {
        sq_int(s, st, 3, k->tenant_id);
    } else {
        sq_null(s, st, 3);
    }
    if (k->user_id != 0) {
        sq_int(s, st, 4, k->user_id);
    } else {
        sq_null(s, st, 4);
    }
    sq_text(s, st, 5, k->building_ids);
    sq_text(s, st, 6, k->key_hash);
    sq_int(s, st, 7, k->created_at);
    int rc = sq_exec(s, st, "key insert", err);
    *id = rc == 0 ? sq_last_id(s) : 0;
    return rc;
}

int
store_key_revoke(struct store *s, int64_t id, int64_t now, bool *found, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE api_key SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?");
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, now);
    sq_int(s, st, 2, id);
    int rc = sq_exec(s, st, "key revoke", err);
    *found = rc == 0 && sq_changes(s) > 0;
    return rc;
}

int
store_key_name(struct store *s, int64_t id, char *buf, size_t len, bool *found,
               struct eng_error *err)
{
    STORE_SQL(q, "SELECT name FROM api_key WHERE id = ?");
    *found = false;
    if (len > 0) {
        buf[0] = '\0';
    }
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "api key name", err);
    if (rc <= 0) {
        return rc;
    }
    rc = sq_col_copy(st, 0, buf, len, "key name", err);
    sq_reset(st);
    *found = rc == 0;
    return rc;
}
