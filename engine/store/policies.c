/* policies.c - policy_version and policy_active. */
#include "policies.h"

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
            .source_len = (size_t)sqlite3_column_bytes(st, 2),
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
