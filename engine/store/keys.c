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
