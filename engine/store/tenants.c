/* tenants.c - the tenant and tenant_building tables: lists and writes. */
#include "tenants.h"

#include "portfolio_rows.h"

int
store_tenant_each(struct store *s, int64_t after, int64_t limit,
                  int (*cb)(void *ud, const struct tenant_row *row), void *ud,
                  struct eng_error *err)
{
    STORE_SQL(q, "SELECT " TENANT_COLS " FROM tenant WHERE id > ? ORDER BY id LIMIT ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, after);
    sq_int(s, st, 2, limit);
    int rc;
    while ((rc = sq_step(s, st, "tenant list", err)) == 1) {
        struct tenant_row row;
        rc = rows_tenant(st, &row, err);
        if (rc == 0) {
            rc = cb(ud, &row);
        }
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

int
store_tenant_insert(struct store *s, const struct tenant_row *t, int64_t *id,
                    struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO tenant (name, cross_building, created_at) VALUES (?,?,?)");
    *id = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, t->name);
    sq_int(s, st, 2, t->cross_building);
    sq_int(s, st, 3, t->created_at);
    int rc = sq_exec(s, st, "tenant insert", err);
    *id = rc == 0 ? sq_last_id(s) : 0;
    return rc;
}

int
store_tenant_update(struct store *s, const struct tenant_row *t, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE tenant SET name = ?, cross_building = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, t->name);
    sq_int(s, st, 2, t->cross_building);
    sq_int(s, st, 3, t->id);
    return sq_exec(s, st, "tenant update", err);
}

int
store_tenant_buildings_set(struct store *s, int64_t tenant_id, const int64_t *building_ids,
                           size_t n, struct eng_error *err)
{
    STORE_SQL(q_del, "DELETE FROM tenant_building WHERE tenant_id = ?");
    STORE_SQL(q_ins, "INSERT OR IGNORE INTO tenant_building (tenant_id, building_id)"
                     " VALUES (?, ?)");
    sqlite3_stmt *st = sq_prep(s, &q_del, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, tenant_id);
    int rc = sq_exec(s, st, "tenant leases", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        st = sq_prep(s, &q_ins, err);
        if (st == NULL) {
            return err->status;
        }
        sq_int(s, st, 1, tenant_id);
        sq_int(s, st, 2, building_ids[i]);
        rc = sq_exec(s, st, "tenant lease", err);
    }
    return rc;
}
